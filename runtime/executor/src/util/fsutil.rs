//! Durable file writes: write a temp file, fsync, rename into place, fsync the
//! directory. A crash leaves either the old file or the new one, never a torn
//! one.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

/// Writes `data` to `path` atomically and durably.
pub fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no parent"))?;
    let tmp = dir.join(format!(
        ".tmp-{}-{}",
        std::process::id(),
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file")
    ));
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// fsyncs a directory so that renames and creations in it are durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Removes a directory tree; a missing directory is not an error.
pub fn remove_dir_all_if_exists(dir: &Path) -> io::Result<()> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// `FS_TOPDIR_FL` of `linux/fs.h` (not in the libc crate).
const FS_TOPDIR_FL: libc::c_int = 0x0002_0000;

/// Marks `dir` as the top of directory hierarchies (`chattr +T`), so that
/// ext2/3/4 place each directory made in it in a block group of its own
/// choosing (the Orlov allocator) rather than next to `dir`, and the files
/// made in that directory follow it.
///
/// For directories of short-lived containers this matters on ext4 without
/// a journal: each inode allocation there skips every inode freed in its
/// group in the last minute, so thousands of containers made and deleted
/// in one group make each new file cost 100 µs or more; spread over the
/// disk's groups, a few µs. Other filesystems refuse or ignore the flag,
/// which is fine: the caller treats an error as "not spread".
pub fn spread_subdirectories(dir: &Path) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let f = File::open(dir)?;
    let flags = inode_flags(&f)?;
    if flags & FS_TOPDIR_FL != 0 {
        return Ok(());
    }
    let flags = flags | FS_TOPDIR_FL;
    // SAFETY: FS_IOC_SETFLAGS reads one int (the kernel's ABI, whatever the
    // request number's encoded size says) through a pointer to a live local.
    if unsafe { libc::ioctl(f.as_raw_fd(), libc::FS_IOC_SETFLAGS, &flags) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The inode flags of `f` (`FS_IOC_GETFLAGS`, what `lsattr` shows).
fn inode_flags(f: &File) -> io::Result<libc::c_int> {
    use std::os::fd::AsRawFd;
    let mut flags: libc::c_int = 0;
    // SAFETY: FS_IOC_GETFLAGS writes one int through a pointer to a live
    // local.
    if unsafe { libc::ioctl(f.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut flags) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(flags)
}

/// Whether `dir` has the flag [`spread_subdirectories`] sets; `None` where
/// the filesystem has no such flags. (For tests, here and in the runtime.)
#[doc(hidden)]
pub fn spreads_subdirectories(dir: &Path) -> Option<bool> {
    let flags = inode_flags(&File::open(dir).ok()?).ok()?;
    Some(flags & FS_TOPDIR_FL != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on_ext4(dir: &Path) -> bool {
        nix::sys::statfs::statfs(dir)
            .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::EXT4_SUPER_MAGIC)
    }

    #[test]
    fn spreading_sets_the_topdir_flag_on_ext4() {
        let d = tempfile::tempdir().unwrap();
        if !on_ext4(d.path()) {
            // tmpfs and others refuse the flag: an error, never a panic.
            let _ = spread_subdirectories(d.path());
            return;
        }
        assert_eq!(spreads_subdirectories(d.path()), Some(false));
        spread_subdirectories(d.path()).unwrap();
        assert_eq!(spreads_subdirectories(d.path()), Some(true));
        // Again: nothing to do.
        spread_subdirectories(d.path()).unwrap();
        assert_eq!(spreads_subdirectories(d.path()), Some(true));
        assert!(spread_subdirectories(&d.path().join("missing")).is_err());
    }
}
