//! A container's root directory, opened for one operation: a running
//! native container's as its init sees it, a stopped one's overlay
//! mounted for the operation, a Wasm container's directory.

use super::super::{Container, Status};
use crate::error::{Error, Result, ResultExt};
use crate::image::tarwrite::errno;
use crate::util;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// A container's root directory, opened for one operation.
pub(super) struct Root {
    pub fd: OwnedFd,
}

pub(super) fn open_dir(path: &Path) -> Result<OwnedFd> {
    nix::fcntl::open(
        path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| errno(&format!("opening {}", path.display()), e))
}

/// The root of a running native container, as its init sees it; `None`
/// if it is not running.
pub(super) fn running_root(c: &Container) -> Result<Option<OwnedFd>> {
    let rec = c.record();
    if !matches!(rec.state.status, Status::Running | Status::Paused) {
        return Ok(None);
    }
    let not_running = || Error::conflict(format!("container {} is not running", c.id));
    let pid = rec.state.pid;
    if pid <= 0 {
        return Err(Error::conflict(format!(
            "container {} is starting; try again in a moment",
            c.id
        )));
    }
    // SAFETY: pidfd_open has no memory arguments.
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if raw < 0 {
        return Err(not_running());
    }
    // SAFETY: the call returned a new descriptor that we own.
    let pidfd = unsafe { OwnedFd::from_raw_fd(raw as i32) };
    // The pid still belongs to this container now that it is pinned.
    let again = c.record();
    if again.state.pid != pid || !matches!(again.state.status, Status::Running | Status::Paused) {
        return Err(not_running());
    }
    let ns = |p: &str| nix::sys::stat::stat(p).map(|s| (s.st_dev, s.st_ino));
    let theirs = ns(&format!("/proc/{pid}/ns/mnt")).map_err(|_| not_running())?;
    let ours = ns("/proc/self/ns/mnt").map_err(|e| errno("reading berthd's mount namespace", e))?;
    if theirs == ours {
        return Err(Error::internal(format!(
            "the process {pid} of container {} shares berthd's mount namespace; refusing to \
             use its root",
            c.id
        )));
    }
    let fd = open_dir(Path::new(&format!("/proc/{pid}/root"))).map_err(|_| not_running())?;
    // Still alive after the open: the root is that process's.
    // SAFETY: pidfd_send_signal with signal 0 and no siginfo.
    let alive = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            0,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    } == 0;
    if !alive {
        return Err(not_running());
    }
    Ok(Some(fd))
}

/// A stopped native container's overlay, mounted for one operation.
pub(super) struct TempMount {
    pub(super) path: PathBuf,
}

impl TempMount {
    pub(super) fn new(
        root: &Path,
        id: &str,
        lowers: &[PathBuf],
        upper: &Path,
        work: &Path,
    ) -> Result<TempMount> {
        let base = root.join("tmp-mounts");
        sweep_temp_mounts_once(&base);
        std::fs::create_dir_all(&base).ctx(format!("creating {}", base.display()))?;
        for d in [upper, work] {
            std::fs::create_dir_all(d).ctx(format!("creating {}", d.display()))?;
        }
        let path = base.join(format!(
            "{}-{}",
            &id[..12.min(id.len())],
            &util::random_id()[..8]
        ));
        std::fs::create_dir(&path).ctx(format!("creating {}", path.display()))?;
        if let Err(e) = crate::executor::native::overlay::mount_rootfs(lowers, upper, work, &path) {
            let _ = std::fs::remove_dir(&path);
            return Err(e);
        }
        // Containers started meanwhile must not get a copy of it.
        let _ = nix::mount::mount(
            None::<&str>,
            &path,
            None::<&str>,
            nix::mount::MsFlags::MS_PRIVATE,
            None::<&str>,
        );
        Ok(TempMount { path })
    }
}

impl Drop for TempMount {
    fn drop(&mut self) {
        if let Err(e) = crate::executor::native::overlay::unmount(&self.path) {
            tracing::warn!(path = %self.path.display(), error = %e, "unmounting a container's filesystem");
            return;
        }
        let _ = std::fs::remove_dir(&self.path);
    }
}

/// Unmounts and removes what earlier daemons left in `ROOT/tmp-mounts`
/// (a daemon that died during a copy). Safe only before this daemon
/// mounts anything there; [`TempMount`] calls it once per process.
pub fn sweep_temp_mounts(root: &Path) {
    let base = root.join("tmp-mounts");
    let Ok(entries) = std::fs::read_dir(&base) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let _ = crate::executor::native::overlay::unmount(&p);
        if std::fs::remove_dir(&p).is_err() {
            tracing::warn!(path = %p.display(), "could not remove a stale temporary mount");
        }
    }
}

fn sweep_temp_mounts_once(base: &Path) {
    static SWEPT: std::sync::Once = std::sync::Once::new();
    SWEPT.call_once(|| {
        if let Some(root) = base.parent() {
            sweep_temp_mounts(root);
        }
    });
}
