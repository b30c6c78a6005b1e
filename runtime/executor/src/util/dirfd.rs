//! Descriptor-relative filesystem operations shared by layer unpacking
//! (`image/unpack.rs`) and the container filesystem endpoints
//! (`container/fs.rs`): both walk untrusted trees one component at a time
//! from a directory descriptor, never following a symlink.

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstatat};
use nix::unistd::{UnlinkatFlags, unlinkat};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};

/// Flags to open a directory without following a symlink in its place.
pub fn dir_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC
}

/// The file type bits of a stat.
pub fn file_type(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits())
}

/// `lstat` of `name` in `dir`; `None` if there is nothing there.
pub fn lstat_at(dir: BorrowedFd<'_>, name: &[u8]) -> nix::Result<Option<FileStat>> {
    match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The names in a directory, sorted, `.` and `..` left out.
pub fn read_dir_names(dir: BorrowedFd<'_>) -> io::Result<Vec<Vec<u8>>> {
    let raw = openat(dir, ".", dir_flags(), Mode::empty())?.into_raw_fd();
    // SAFETY: `raw` is an open directory descriptor we own; fdopendir takes
    // it over and closedir closes it.
    let d = unsafe { libc::fdopendir(raw) };
    if d.is_null() {
        let e = io::Error::last_os_error();
        // SAFETY: fdopendir failed, so the descriptor is still ours.
        drop(unsafe { OwnedFd::from_raw_fd(raw) });
        return Err(e);
    }
    let mut out = Vec::new();
    let result = loop {
        Errno::clear();
        // SAFETY: `d` is a valid DIR* until closedir below.
        let ent = unsafe { libc::readdir(d) };
        if ent.is_null() {
            break match Errno::last_raw() {
                0 => Ok(()),
                e => Err(io::Error::from_raw_os_error(e)),
            };
        }
        // SAFETY: readdir returned a valid dirent whose d_name is
        // NUL-terminated.
        let name = unsafe { std::ffi::CStr::from_ptr((*ent).d_name.as_ptr()) }.to_bytes();
        if name != b"." && name != b".." {
            out.push(name.to_vec());
        }
    };
    // SAFETY: `d` came from fdopendir and is closed once.
    unsafe { libc::closedir(d) };
    out.sort();
    result.map(|()| out)
}

/// Removes `name` in `dir` and everything under it, without following
/// symlinks.
pub fn remove_tree(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    let fd = openat(dir, name, dir_flags(), Mode::empty())?;
    for child in read_dir_names(fd.as_fd())? {
        let st = fstatat(fd.as_fd(), child.as_slice(), AtFlags::AT_SYMLINK_NOFOLLOW)?;
        if file_type(&st) == SFlag::S_IFDIR {
            remove_tree(fd.as_fd(), &child)?;
        } else {
            unlinkat(fd.as_fd(), child.as_slice(), UnlinkatFlags::NoRemoveDir)?;
        }
    }
    unlinkat(dir, name, UnlinkatFlags::RemoveDir)?;
    Ok(())
}

/// A C string of `b`; a NUL inside is invalid input.
pub fn cstring(b: &[u8]) -> io::Result<std::ffi::CString> {
    std::ffi::CString::new(b).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// Sets an extended attribute on an open file.
pub fn set_xattr_fd(fd: BorrowedFd<'_>, key: &str, value: &[u8]) -> io::Result<()> {
    let k = cstring(key.as_bytes())?;
    // SAFETY: valid descriptor, NUL-terminated name, value pointer and
    // length from one slice.
    let r = unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            k.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
