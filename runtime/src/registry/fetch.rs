//! Blob downloads in flight, one per digest, shared by every pull that
//! needs the blob.
//!
//! A pull that needs a blob joins the download already running for its
//! digest or starts one. The download runs as its own task, so the pulls
//! waiting on it can come and go; it is aborted when the last of them is
//! gone (a cancelled request), which drops its temp file. Data is streamed
//! from the registry into a [`BlobStore::writer`] on a blocking thread,
//! and becomes visible only when [`BlobWriter::commit`] has checked digest
//! and size and made it durable.
//!
//! [`BlobWriter::commit`]: crate::store::blob::BlobWriter::commit

use super::RegistryResult;
use super::session::Session;
use crate::error::Error;
use crate::store::BlobStore;
use crate::util::Digest;
use bytes::Bytes;
use std::collections::HashMap;
use std::future::Future;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use tokio::sync::{mpsc, watch};

type Outcome = Option<RegistryResult<()>>;

/// One blob being downloaded. Held by every pull waiting for it; the
/// download stops when the last holder lets go.
pub(crate) struct Fetch {
    done: watch::Receiver<Outcome>,
    bytes: watch::Receiver<u64>,
    task: tokio::task::AbortHandle,
}

impl Drop for Fetch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Fetch {
    /// Bytes received so far.
    pub fn bytes(&self) -> watch::Receiver<u64> {
        self.bytes.clone()
    }

    /// Waits for the download to end.
    pub async fn wait(&self) -> RegistryResult<()> {
        let mut rx = self.done.clone();
        match rx.wait_for(Option::is_some).await {
            Ok(v) => v.clone().expect("checked"),
            Err(_) => Err(Error::internal("the download was cancelled")),
        }
    }
}

/// Downloads listed by digest, each with the id of its task.
type Listing = Arc<Mutex<HashMap<Digest, (u64, Weak<Fetch>)>>>;

#[derive(Default)]
pub(crate) struct InFlight {
    map: Listing,
    next: AtomicU64,
    /// Downloads started, for tests.
    started: AtomicU64,
}

impl InFlight {
    /// Joins the download of `digest` in flight (unless `fresh`), or starts
    /// `start` as a new one, unless the blob is `present` (checked under
    /// the lock, so that a download that just finished is not repeated:
    /// one commits its blob before it unlists itself). Says whether this
    /// call started it; `None` when the blob is there.
    pub fn join_or_start<F, Fut>(
        &self,
        digest: &Digest,
        fresh: bool,
        present: impl FnOnce() -> bool,
        start: F,
    ) -> Option<(Arc<Fetch>, bool)>
    where
        F: FnOnce(watch::Sender<u64>) -> Fut,
        Fut: Future<Output = RegistryResult<()>> + Send + 'static,
    {
        let mut map = self.map.lock().unwrap();
        if !fresh
            && let Some((_, w)) = map.get(digest)
            && let Some(f) = w.upgrade()
        {
            return Some((f, false));
        }
        if present() {
            return None;
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.started.fetch_add(1, Ordering::Relaxed);
        let (bytes_tx, bytes_rx) = watch::channel(0);
        let (done_tx, done_rx) = watch::channel(None);
        let fut = start(bytes_tx);
        let registry = Arc::clone(&self.map);
        let key = digest.clone();
        // The task unlists itself before it reports, so that a pull that
        // retries after a failure starts afresh. It cannot take the lock
        // before this function has listed it.
        let task = tokio::spawn(async move {
            let result = fut.await;
            {
                let mut m = registry.lock().unwrap();
                if m.get(&key).is_some_and(|(i, _)| *i == id) {
                    m.remove(&key);
                }
            }
            let _ = done_tx.send(Some(result));
        });
        let fetch = Arc::new(Fetch {
            done: done_rx,
            bytes: bytes_rx,
            task: task.abort_handle(),
        });
        map.insert(digest.clone(), (id, Arc::downgrade(&fetch)));
        Some((fetch, true))
    }

    #[cfg(test)]
    pub fn started(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }
}

enum Chunk {
    Data(Bytes),
    End,
}

/// Downloads the blob `digest` of `size` bytes into `blobs`, reporting the
/// bytes received on `progress`. The registry must keep up the pace the
/// transport asks for ([`Transport::pace`]); a download that stalls fails,
/// its temp file goes, and the next pull starts it afresh.
///
/// [`Transport::pace`]: super::transport::Transport::pace
pub(crate) async fn download(
    session: Arc<Session>,
    digest: Digest,
    size: u64,
    blobs: Arc<BlobStore>,
    progress: watch::Sender<u64>,
) -> RegistryResult<()> {
    let host = session.host.clone();
    let mut res = session.blob(&digest).await?;
    if let Some(n) = res.content_length()
        && n != size
    {
        return Err(Error::invalid(format!(
            "the registry {host} sends {n} bytes for blob {digest}, whose descriptor says {size}"
        )));
    }
    let (tx, mut rx) = mpsc::channel::<Chunk>(32);
    let want = digest.clone();
    let writer = tokio::task::spawn_blocking(move || -> crate::Result<bool> {
        let mut w = blobs.writer()?;
        while let Some(c) = rx.blocking_recv() {
            match c {
                Chunk::Data(b) => w
                    .write_all(&b)
                    .map_err(|e| Error::internal(format!("writing blob {want}: {e}")))?,
                Chunk::End => {
                    w.commit(Some(&want), Some(size))?;
                    return Ok(true);
                }
            }
        }
        // The download stopped: the temp file goes with the writer.
        Ok(false)
    });
    let streamed: RegistryResult<()> = async {
        let mut pace = session.transport().pace();
        let mut received = 0u64;
        loop {
            let data = match pace.chunk(&mut res).await {
                Ok(Some(d)) => d,
                Ok(None) => break,
                Err(e) => {
                    return Err(Error::internal(format!(
                        "{}; nothing was stored, and the next pull downloads it again",
                        e.describe(&format!("downloading blob {digest} from {host}"))
                    )));
                }
            };
            received += data.len() as u64;
            if received > size {
                return Err(Error::invalid(format!(
                    "the registry {host} sends more than the {size} bytes of blob {digest}"
                )));
            }
            if tx.send(Chunk::Data(data)).await.is_err() {
                // The writer failed; it says why below.
                return Ok(());
            }
            progress.send_replace(received);
        }
        let _ = tx.send(Chunk::End).await;
        Ok(())
    }
    .await;
    // The writer ends (and its temp file goes) before anyone hears of the
    // outcome.
    drop(tx);
    let written = writer
        .await
        .map_err(|e| Error::internal(format!("writing blob {digest}: {e}")))?;
    streamed?;
    match written {
        Ok(true) => Ok(()),
        Ok(false) => Err(Error::internal(format!("writing blob {digest} stopped"))),
        Err(e) if e.kind() == crate::ErrorKind::InvalidArgument => Err(Error::invalid(format!(
            "blob {digest} from {host} is corrupt, nothing was stored: {}",
            e.message()
        ))),
        Err(e) => Err(e.context(format!("storing blob {digest}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn concurrent_waiters_share_one_download() {
        let inflight = InFlight::default();
        let d = Digest::of(b"x");
        let (gate_tx, gate_rx) = tokio::sync::oneshot::channel::<()>();
        let (a, started) = inflight
            .join_or_start(
                &d,
                false,
                || false,
                |_p| async move {
                    let _ = gate_rx.await;
                    Ok(())
                },
            )
            .unwrap();
        assert!(started);
        let (b, started) = inflight
            .join_or_start(&d, false, || false, |_p| async { unreachable!() })
            .unwrap();
        assert!(!started);
        gate_tx.send(()).unwrap();
        a.wait().await.unwrap();
        b.wait().await.unwrap();
        assert_eq!(inflight.started(), 1);
        // Finished downloads are unlisted: the next one starts afresh.
        let (_c, started) = inflight
            .join_or_start(&d, false, || false, |_p| async { Ok(()) })
            .unwrap();
        assert!(started);
    }

    #[tokio::test]
    async fn the_last_waiter_leaving_stops_the_download() {
        let inflight = InFlight::default();
        let d = Digest::of(b"y");
        let (dropped_tx, dropped_rx) = tokio::sync::oneshot::channel::<()>();
        struct Tell(Option<tokio::sync::oneshot::Sender<()>>);
        impl Drop for Tell {
            fn drop(&mut self) {
                let _ = self.0.take().unwrap().send(());
            }
        }
        let (a, _) = inflight
            .join_or_start(
                &d,
                false,
                || false,
                move |_p| async move {
                    let _tell = Tell(Some(dropped_tx));
                    std::future::pending::<()>().await;
                    Ok(())
                },
            )
            .unwrap();
        let (b, _) = inflight
            .join_or_start(&d, false, || false, |_p| async { unreachable!() })
            .unwrap();
        drop(a);
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(b);
        tokio::time::timeout(Duration::from_secs(5), dropped_rx)
            .await
            .expect("download aborted")
            .unwrap();
        // A new pull starts a new download.
        let (_c, started) = inflight
            .join_or_start(&d, false, || false, |_p| async { Ok(()) })
            .unwrap();
        assert!(started);
    }

    #[tokio::test]
    async fn a_present_blob_starts_nothing() {
        let inflight = InFlight::default();
        let d = Digest::of(b"p");
        assert!(
            inflight
                .join_or_start(&d, false, || true, |_p| async { unreachable!() })
                .is_none()
        );
        assert_eq!(inflight.started(), 0);
    }

    #[tokio::test]
    async fn failures_reach_every_waiter_and_fresh_starts_anew() {
        let inflight = InFlight::default();
        let d = Digest::of(b"z");
        let (a, _) = inflight
            .join_or_start(
                &d,
                false,
                || false,
                |_p| async { Err(Error::invalid("corrupt")) },
            )
            .unwrap();
        assert!(a.wait().await.unwrap_err().to_string().contains("corrupt"));
        let (b, started) = inflight
            .join_or_start(&d, true, || false, |_p| async { Ok(()) })
            .unwrap();
        assert!(started);
        b.wait().await.unwrap();
    }
}
