//! Container directories made ahead of time.
//!
//! Every container needs a directory with a `rootfs` directory and a
//! `log.json` in it; a native container also its overlay's `upper` and
//! `work` directories, its shim's `shim.log`, and the `hostname`, `hosts`
//! and `resolv.conf` it gets bind-mounted. Allocating those inodes while the client waits is most
//! of a Wasm container's create on some filesystems (ext4 without a journal
//! scans past every recently deleted inode before it reuses one), so berthd
//! keeps a few ready under `ROOT/containers/.spare` and a create renames
//! one into place. They are never reused: a removed container's directory
//! is deleted as before, and the spares are made fresh, off the request
//! path. Spares left by a stopped daemon are deleted at the next start.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The directory, under `ROOT/containers`.
pub const DIR: &str = ".spare";

/// How many berthd keeps ready: enough for a burst of creates while the
/// background refill catches up.
const COUNT: usize = 4;

/// What a container directory is made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Wasm = 0,
    Native = 1,
}

pub struct Spares {
    dir: PathBuf,
    /// Ready directories, by [`Kind`].
    ready: Mutex<[Vec<PathBuf>; 2]>,
    filling: [AtomicBool; 2],
    next: AtomicU64,
}

impl Spares {
    /// Empties `containers/.spare` (what an earlier daemon left there).
    pub fn open(containers: &Path) -> std::io::Result<Arc<Spares>> {
        let dir = containers.join(DIR);
        crate::util::fsutil::remove_dir_all_if_exists(&dir)?;
        std::fs::create_dir(&dir)?;
        // Each spare in a block group of its own choosing: on ext4 without
        // a journal, allocating an inode skips every inode freed in its
        // group in the last minute, and all of a container's inodes
        // (its files, its overlay's work directory, its shim's socket)
        // are made in its directory's group and freed at its removal
        // (docs/benchmarks.md, "The filesystem").
        if let Err(e) = crate::util::fsutil::spread_subdirectories(&dir) {
            tracing::debug!(error = %e, "spare directories are not spread over block groups");
        }
        Ok(Arc::new(Spares {
            dir,
            ready: Mutex::new([Vec::new(), Vec::new()]),
            filling: [AtomicBool::new(false), AtomicBool::new(false)],
            next: AtomicU64::new(0),
        }))
    }

    /// Makes `dest` a container directory of `kind`: a spare renamed into
    /// place, or made now if none is ready. Starts a refill of that kind
    /// in the background.
    pub fn take_into(self: &Arc<Self>, dest: &Path, kind: Kind) -> std::io::Result<()> {
        let spare = self.ready.lock().unwrap()[kind as usize].pop();
        self.fill(kind);
        if let Some(spare) = spare {
            match std::fs::rename(&spare, dest) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    tracing::warn!(path = %spare.display(), error = %e, "could not use a spare container directory");
                    let _ = crate::util::fsutil::remove_dir_all_if_exists(&spare);
                }
            }
        }
        make(dest, kind)
    }

    /// Refills the spares on a blocking thread, unless a refill runs.
    fn fill(self: &Arc<Self>, kind: Kind) {
        let filling = &self.filling[kind as usize];
        if filling.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            filling.store(false, Ordering::Release);
            return;
        };
        let this = self.clone();
        handle.spawn_blocking(move || {
            this.refill(kind);
            this.filling[kind as usize].store(false, Ordering::Release);
        });
    }

    /// Makes spares of `kind` until there are [`COUNT`].
    fn refill(&self, kind: Kind) {
        while self.ready.lock().unwrap()[kind as usize].len() < COUNT {
            let n = self.next.fetch_add(1, Ordering::Relaxed);
            let path = self.dir.join(n.to_string());
            if let Err(e) = make(&path, kind) {
                tracing::warn!(path = %path.display(), error = %e, "making a spare container directory");
                let _ = crate::util::fsutil::remove_dir_all_if_exists(&path);
                break;
            }
            self.ready.lock().unwrap()[kind as usize].push(path);
        }
    }
}

fn make(dir: &Path, kind: Kind) -> std::io::Result<()> {
    std::fs::create_dir_all(dir.join("rootfs"))?;
    let mut files = vec!["log.json"];
    if kind == Kind::Native {
        std::fs::create_dir(dir.join("upper"))?;
        std::fs::create_dir(dir.join("work"))?;
        files.extend(["shim.log", "hostname", "hosts", "resolv.conf"]);
    }
    for f in files {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(f))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_create_takes_a_fresh_spare_and_the_pool_refills() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join(DIR).join("old")).unwrap();
        let spares = Spares::open(root.path()).unwrap();
        assert_eq!(
            std::fs::read_dir(root.path().join(DIR)).unwrap().count(),
            0,
            "left-overs are deleted"
        );
        // Spread over block groups where the filesystem can (ext4, as CI's
        // and this project's machines have under /tmp).
        let fs = nix::sys::statfs::statfs(root.path()).unwrap();
        if fs.filesystem_type() == nix::sys::statfs::EXT4_SUPER_MAGIC {
            assert_eq!(
                crate::util::fsutil::spreads_subdirectories(&root.path().join(DIR)),
                Some(true)
            );
        }
        // None ready yet: made on the spot.
        let a = root.path().join("a");
        spares.take_into(&a, Kind::Wasm).unwrap();
        assert!(a.join("rootfs").is_dir() && a.join("log.json").is_file());
        assert!(!a.join("upper").exists(), "a Wasm container has no overlay");
        for _ in 0..200 {
            if spares.ready.lock().unwrap()[Kind::Wasm as usize].len() == COUNT {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert_eq!(
            spares.ready.lock().unwrap()[Kind::Wasm as usize].len(),
            COUNT
        );
        assert!(
            spares.ready.lock().unwrap()[Kind::Native as usize].is_empty(),
            "only the kind taken is refilled"
        );
        let b = root.path().join("b");
        spares.take_into(&b, Kind::Wasm).unwrap();
        assert!(b.join("rootfs").is_dir());
        assert_eq!(std::fs::read_dir(b.join("rootfs")).unwrap().count(), 0);
        assert_eq!(std::fs::metadata(b.join("log.json")).unwrap().len(), 0);
        let n = root.path().join("n");
        spares.take_into(&n, Kind::Native).unwrap();
        for d in ["rootfs", "upper", "work"] {
            assert!(n.join(d).is_dir(), "{d}");
        }
        for f in ["log.json", "shim.log", "hostname", "hosts", "resolv.conf"] {
            assert_eq!(std::fs::metadata(n.join(f)).unwrap().len(), 0, "{f}");
        }
    }
}
