//! The files of removed containers, deleted when the daemon is quiet.
//!
//! `rm` and `run --rm` move a container's directory here (one rename) and
//! return; the files are deleted in the background. Not at once: deleting
//! a container's files takes as much time as making them, and during a
//! burst of short-lived containers it would compete with the next ones for
//! the CPU and the disk (on ext4 without a journal, each inode freed also
//! makes every inode allocation of the next minute scan past it). So the
//! trash is emptied once no container has been removed for [`QUIET`], or
//! when it holds [`MAX_PENDING`] containers, or when its oldest has waited
//! [`MAX_WAIT`]: what a removed container held on disk is freed within
//! seconds, whatever the load. What a stopped daemon left here is deleted
//! at the next start.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The directory, under `ROOT/containers`.
pub const DIR: &str = ".trash";

/// How long without a removal counts as quiet.
const QUIET: Duration = Duration::from_secs(1);
/// The most containers waiting to be deleted.
const MAX_PENDING: usize = 256;
/// The longest a removed container's files wait.
const MAX_WAIT: Duration = Duration::from_secs(10);

pub struct Trash {
    dir: PathBuf,
    state: Mutex<State>,
    wake: tokio::sync::Notify,
    collector: AtomicBool,
}

#[derive(Default)]
struct State {
    /// Containers moved in and not deleted yet.
    pending: usize,
    /// When the oldest of them and the latest came.
    oldest: Option<Instant>,
    latest: Option<Instant>,
}

impl Trash {
    /// Empties the trash under `containers` (what an earlier daemon left).
    pub fn open(containers: &Path) -> std::io::Result<Arc<Trash>> {
        let dir = containers.join(DIR);
        crate::util::fsutil::remove_dir_all_if_exists(&dir)?;
        std::fs::create_dir_all(&dir)?;
        Ok(Arc::new(Trash {
            dir,
            state: Mutex::new(State::default()),
            wake: tokio::sync::Notify::new(),
            collector: AtomicBool::new(false),
        }))
    }

    /// Moves the container directory `dir` (named by the container's id)
    /// into the trash.
    pub fn put(self: &Arc<Self>, dir: &Path, id: &str) -> std::io::Result<()> {
        std::fs::rename(dir, self.dir.join(id))?;
        {
            let mut st = self.state.lock().unwrap();
            let now = Instant::now();
            st.pending += 1;
            st.oldest.get_or_insert(now);
            st.latest = Some(now);
        }
        if !self.collector.swap(true, Ordering::AcqRel) {
            match tokio::runtime::Handle::try_current() {
                Ok(h) => {
                    h.spawn(self.clone().collect());
                }
                Err(_) => self.collector.store(false, Ordering::Release),
            }
        }
        self.wake.notify_one();
        Ok(())
    }

    /// Empties the trash whenever it is time, for as long as the daemon runs.
    async fn collect(self: Arc<Self>) {
        loop {
            let wait = {
                let st = self.state.lock().unwrap();
                match (st.oldest, st.latest) {
                    (Some(oldest), Some(latest)) => {
                        Some(due_in(st.pending, oldest.elapsed(), latest.elapsed()))
                    }
                    _ => None,
                }
            };
            match wait {
                None => self.wake.notified().await,
                Some(d) if !d.is_zero() => {
                    let _ = tokio::time::timeout(d, self.wake.notified()).await;
                }
                Some(_) => {
                    let taken = std::mem::take(&mut *self.state.lock().unwrap()).pending;
                    let dir = self.dir.clone();
                    let _ = tokio::task::spawn_blocking(move || empty(&dir)).await;
                    tracing::trace!(containers = taken, "trash emptied");
                }
            }
        }
    }
}

/// How long until the trash is due to be emptied: now if it is full, its
/// oldest has waited long enough, or it has been quiet long enough.
fn due_in(pending: usize, oldest: Duration, latest: Duration) -> Duration {
    if pending >= MAX_PENDING {
        return Duration::ZERO;
    }
    QUIET
        .saturating_sub(latest)
        .min(MAX_WAIT.saturating_sub(oldest))
}

/// Deletes everything in `dir`, keeping `dir`.
fn empty(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        if let Err(err) = crate::util::fsutil::remove_dir_all_if_exists(&path) {
            tracing::warn!(path = %path.display(), error = %err, "deleting a removed container's files");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_when_quiet_full_or_old() {
        let ms = Duration::from_millis;
        // A removal just now: wait for a quiet second.
        assert_eq!(due_in(1, ms(0), ms(0)), QUIET);
        assert_eq!(due_in(3, ms(600), ms(400)), ms(600));
        assert_eq!(due_in(3, ms(1500), ms(1000)), Duration::ZERO);
        // Busy for longer than MAX_WAIT: the oldest is due anyway.
        assert_eq!(due_in(50, ms(9_800), ms(10)), ms(200));
        assert_eq!(due_in(50, ms(10_000), ms(10)), Duration::ZERO);
        assert_eq!(due_in(MAX_PENDING, ms(0), ms(0)), Duration::ZERO);
    }

    #[tokio::test]
    async fn removed_directories_go_once_the_daemon_is_quiet() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join(DIR).join("left-by-a-crash")).unwrap();
        let trash = Trash::open(d.path()).unwrap();
        assert_eq!(std::fs::read_dir(d.path().join(DIR)).unwrap().count(), 0);
        for id in ["a", "b"] {
            let c = d.path().join(id);
            std::fs::create_dir_all(c.join("upper/etc")).unwrap();
            trash.put(&c, id).unwrap();
            assert!(!c.exists());
        }
        assert_eq!(std::fs::read_dir(d.path().join(DIR)).unwrap().count(), 2);
        let deadline = Instant::now() + QUIET + Duration::from_secs(5);
        while std::fs::read_dir(d.path().join(DIR)).unwrap().count() > 0 {
            assert!(Instant::now() < deadline, "the trash was not emptied");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(d.path().join(DIR).is_dir());
    }
}
