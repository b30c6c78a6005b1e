//! The overlay root of a native container: mounted by the container's
//! child (or made ahead as a detached mount by berthd and attached by the
//! child), unmounted by the shim. The layer store (`image::layers`) unpacks
//! the layers; this module stacks them.

use crate::error::{Error, Result};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{MntFlags, MsFlags};
use nix::sys::stat::Mode;
use std::ffi::CString;
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

/// overlayfs refuses more lower layers than this (`OVL_MAX_STACK`).
pub const MAX_LOWERS: usize = 500;

/// Mounts an overlay at `target`: `lowers` (top layer first, at least one;
/// see `image::layers::LayerStore::lowers`) under the writable `upper`, with `work` as
/// overlayfs's work directory (same filesystem as `upper`, empty or left by
/// an earlier mount of the same upper).
///
/// The mount options must fit in one page. When the absolute paths do not
/// (about 40 layers under `/var/lib/berth`), or a path holds a character
/// the option syntax cannot carry (`,` `:` `\`), each directory is opened
/// with `O_PATH` and named by its `/proc/self/fd/N` link instead: about 18
/// bytes a layer whatever the root's length, no working-directory change
/// (which a multi-threaded daemon must never do), and nothing on disk to
/// manage. The kernel resolves the links at mount time; the descriptors are
/// closed right after.
pub fn mount_rootfs(lowers: &[PathBuf], upper: &Path, work: &Path, target: &Path) -> Result<()> {
    mount_rootfs_inner(lowers, upper, work, target, false)
}

#[doc(hidden)]
pub fn mount_rootfs_inner(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
    force_fds: bool,
) -> Result<()> {
    if lowers.is_empty() {
        return Err(Error::internal(
            "an overlay needs at least one lower directory (the layer store gives the empty one)",
        ));
    }
    if lowers.len() > MAX_LOWERS {
        return Err(Error::invalid(format!(
            "the image has {} layers; overlayfs stacks at most {MAX_LOWERS}",
            lowers.len()
        )));
    }
    let limit = page_size() - 1;
    let plain = if force_fds {
        None
    } else {
        overlay_options(lowers.iter().map(|p| p.as_path()), upper, work)
            .filter(|o| o.len() <= limit)
    };
    let (options, _fds) = match plain {
        Some(o) => (o, Vec::new()),
        None => {
            let open = |p: &Path| -> Result<OwnedFd> {
                nix::fcntl::open(
                    p,
                    OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| Error::internal(format!("opening {}: {e}", p.display())))
            };
            let mut fds = Vec::with_capacity(lowers.len() + 2);
            for l in lowers {
                fds.push(open(l)?);
            }
            fds.push(open(upper)?);
            fds.push(open(work)?);
            let names: Vec<PathBuf> = fds
                .iter()
                .map(|fd| PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd())))
                .collect();
            let n = names.len();
            let o = overlay_options(
                names[..n - 2].iter().map(|p| p.as_path()),
                &names[n - 2],
                &names[n - 1],
            )
            .expect("fd paths need no escaping");
            if o.len() > limit {
                return Err(Error::invalid(format!(
                    "the image has too many layers ({}) for one overlay mount",
                    lowers.len()
                )));
            }
            (o, fds)
        }
    };
    // `volatile`: the upper directory is never synced. Unmounting an
    // overlay otherwise syncs the whole filesystem under it (every dirty
    // page of the host's disk), which takes hundreds of milliseconds on a
    // busy host and sits on every container's exit path. A container's
    // writable layer does not survive a host crash consistently this way;
    // after one, the next mount clears the marker overlayfs leaves and the
    // container runs on what was written.
    let volatile = format!("{options},volatile");
    let mount = |opts: &str| {
        nix::mount::mount(
            Some("overlay"),
            target,
            Some("overlay"),
            MsFlags::empty(),
            Some(opts),
        )
    };
    let result = match mount(&volatile) {
        Err(_) if work.join(VOLATILE_MARKER).exists() => {
            let _ = fs::remove_dir_all(work.join(VOLATILE_MARKER));
            mount(&volatile)
        }
        Ok(()) => Ok(()),
        // A kernel without `volatile` (before 5.10), or options too long.
        Err(_) => mount(&options),
    };
    result.map_err(|e| {
        Error::internal(format!(
            "mounting the overlay rootfs at {} ({} layers): {e}",
            target.display(),
            lowers.len()
        ))
    })
}

/// What a `volatile` overlay leaves in its work directory; the next
/// volatile mount of that directory fails until it is removed.
const VOLATILE_MARKER: &str = "work/incompat/volatile";

/// Makes a container's overlay ahead of its start, as a detached mount
/// (`fsopen`, `fsconfig`, `fsmount`: Linux 5.2): the work directory's set
/// up (overlayfs creates and deletes about seven inodes in it at every
/// mount, which on some filesystems costs more than all the container's
/// other mounts together) then happens before the container's child needs
/// its root, which [`attach_premount`] then moves into place. The same
/// options as [`mount_rootfs`], `volatile` included; an `Err` leaves
/// nothing mounted, and the child mounts the overlay itself.
pub fn premount_rootfs(lowers: &[PathBuf], upper: &Path, work: &Path) -> Result<OwnedFd> {
    let options = overlay_options(lowers.iter().map(|p| p.as_path()), upper, work)
        .filter(|_| !lowers.is_empty() && lowers.len() <= MAX_LOWERS)
        .ok_or_else(|| Error::invalid("these layer paths need the child's own mount"))?;
    let mut config: Vec<(&str, Option<&str>)> = options
        .split(',')
        .map(|option| {
            let (k, v) = option
                .split_once('=')
                .expect("overlay_options writes key=value");
            (k, Some(v))
        })
        .collect();
    config.push(("volatile", None));
    // A volatile overlay refuses a work directory whose last volatile
    // mount left its marker (as `mount_rootfs` finds out by failing).
    let marker = work.join(VOLATILE_MARKER);
    if marker.exists() {
        let _ = fs::remove_dir_all(&marker);
    }
    detached_overlay(&config, &[], 0).map_err(|e| Error::internal(e.to_string()))
}

/// A detached overlay mount, in no mount namespace until it is moved
/// somewhere (`fsopen`, `fsconfig`, `fsmount`: Linux 5.2): `options` are
/// set in order (a `None` value sets a flag), `optional` ones where the
/// kernel takes them, and the mount gets `attrs` (`MOUNT_ATTR_*`). Errors
/// say which step failed.
pub fn detached_overlay(
    options: &[(&str, Option<&str>)],
    optional: &[(&str, &str)],
    attrs: u64,
) -> io::Result<OwnedFd> {
    let fail = |what: &str| {
        let e = io::Error::last_os_error();
        io::Error::new(e.kind(), format!("{what}: {e}"))
    };
    // SAFETY: fsopen with a NUL-terminated name; the result is checked.
    let fs = unsafe {
        libc::syscall(
            libc::SYS_fsopen,
            c"overlay".as_ptr(),
            libc::FSOPEN_CLOEXEC as libc::c_uint,
        )
    };
    if fs < 0 {
        return Err(fail("fsopen overlay"));
    }
    // SAFETY: a descriptor fsopen just returned, owned from here on.
    let fs = unsafe { OwnedFd::from_raw_fd(fs as RawFd) };
    let config = |cmd: libc::c_uint, key: Option<&str>, value: Option<&str>| -> io::Result<()> {
        let nul = |_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL in an overlay option");
        let key = key.map(CString::new).transpose().map_err(nul)?;
        let value = value.map(CString::new).transpose().map_err(nul)?;
        // SAFETY: fsconfig on our fs context with NUL-terminated strings
        // (or null pointers) that outlive the call.
        let r = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                fs.as_raw_fd(),
                cmd,
                key.as_ref().map_or(std::ptr::null(), |k| k.as_ptr()),
                value.as_ref().map_or(std::ptr::null(), |v| v.as_ptr()),
                0 as libc::c_int,
            )
        };
        if r < 0 {
            return Err(fail(&format!(
                "fsconfig overlay {}",
                key.as_ref()
                    .map_or("create".into(), |k| k.to_string_lossy())
            )));
        }
        Ok(())
    };
    for (k, v) in options {
        let cmd = match v {
            Some(_) => libc::FSCONFIG_SET_STRING,
            None => libc::FSCONFIG_SET_FLAG,
        };
        config(cmd as libc::c_uint, Some(k), *v)?;
    }
    for (k, v) in optional {
        let _ = config(libc::FSCONFIG_SET_STRING as libc::c_uint, Some(k), Some(v));
    }
    config(libc::FSCONFIG_CMD_CREATE as libc::c_uint, None, None)?;
    // SAFETY: fsmount of the created context; the result is checked.
    let mnt = unsafe {
        libc::syscall(
            libc::SYS_fsmount,
            fs.as_raw_fd(),
            libc::FSMOUNT_CLOEXEC as libc::c_uint,
            attrs as libc::c_uint,
        )
    };
    if mnt < 0 {
        return Err(fail("fsmount overlay"));
    }
    // SAFETY: a descriptor fsmount just returned.
    Ok(unsafe { OwnedFd::from_raw_fd(mnt as RawFd) })
}

/// Moves a mount from [`premount_rootfs`] onto `target`, in the caller's
/// mount namespace.
pub fn attach_premount(mount: &OwnedFd, target: &Path) -> Result<()> {
    let target_c = std::ffi::CString::new(target.as_os_str().as_encoded_bytes())
        .map_err(|_| Error::invalid("a NUL in the root's path"))?;
    // SAFETY: move_mount of our detached mount onto a NUL-terminated path.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mount.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            target_c.as_ptr(),
            libc::MOVE_MOUNT_F_EMPTY_PATH as libc::c_uint,
        )
    };
    if r < 0 {
        return Err(Error::internal(format!(
            "moving the overlay onto {}: {}",
            target.display(),
            std::io::Error::last_os_error()
        )));
    }
    Ok(())
}

/// `lowerdir=...,upperdir=...,workdir=...,index=off`, or `None` if a path
/// cannot be written in the option syntax.
pub fn overlay_options<'a>(
    lowers: impl Iterator<Item = &'a Path>,
    upper: &Path,
    work: &Path,
) -> Option<String> {
    let text = |p: &Path| -> Option<String> {
        let s = p.to_str()?;
        if s.contains([',', ':', '\\', '=']) || s.is_empty() {
            None
        } else {
            Some(s.to_string())
        }
    };
    let mut lower = String::new();
    for (i, l) in lowers.enumerate() {
        if i > 0 {
            lower.push(':');
        }
        lower.push_str(&text(l)?);
    }
    // index=off: layers are shared by many overlays, and berth never needs
    // overlayfs's inode index (Docker mounts the same way).
    Some(format!(
        "lowerdir={lower},upperdir={},workdir={},index=off",
        text(upper)?,
        text(work)?
    ))
}

pub fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 { n as usize } else { 4096 }
}

/// Unmounts `target`; succeeds if nothing is mounted there (or it does not
/// exist). A busy mount is detached lazily.
pub fn unmount(target: &Path) -> Result<()> {
    match nix::mount::umount2(target, MntFlags::empty()) {
        Ok(()) | Err(Errno::EINVAL | Errno::ENOENT) => Ok(()),
        Err(Errno::EBUSY) => match nix::mount::umount2(target, MntFlags::MNT_DETACH) {
            Ok(()) | Err(Errno::EINVAL | Errno::ENOENT) => Ok(()),
            Err(e) => Err(Error::internal(format!(
                "unmounting {}: {e}",
                target.display()
            ))),
        },
        Err(e) => Err(Error::internal(format!(
            "unmounting {}: {e}",
            target.display()
        ))),
    }
}
