//! Streaming responses: log entries as Docker frames, hijacked attach and
//! exec connections (their output, their input, the detach keys, and how
//! they end), and bodies fed from channels.

use axum::body::Body;
use berth_api_types::detach::DetachWatch;
use berth_api_types::stream::{StreamKind, encode_frame};
use berth_runtime::container::logs::{Entry, Live};
use berth_runtime::container::{Attached, AttachedStdin};
use bytes::Bytes;
use futures_util::stream;
use std::future::{Future, pending};
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

/// A request body read synchronously, for archive code that runs on a
/// blocking thread (extraction, image loads and imports).
pub struct BodyReader {
    rx: mpsc::Receiver<Result<Bytes, String>>,
    cur: Bytes,
}

impl std::io::Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => return Err(std::io::Error::other(e)),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur.split_to(n));
        Ok(n)
    }
}

/// How much of a request body berthd reads and throws away after a handler
/// answered without reading it all, as Go's `net/http` server does.
pub const DRAIN_LIMIT: usize = 256 * 1024;

/// Reads and throws away up to [`DRAIN_LIMIT`] bytes of what is left of a
/// request body, for at most two seconds: a client still writing a body
/// the handler did not read then gets to read the answer (see
/// `server::drain_unread_body`).
pub async fn drain<S, E>(mut rest: S)
where
    S: futures_util::Stream<Item = Result<Bytes, E>> + Unpin,
{
    let read_on = async {
        let mut read = 0;
        while let Some(Ok(chunk)) = futures_util::StreamExt::next(&mut rest).await {
            read += chunk.len();
            if read > DRAIN_LIMIT {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), read_on).await;
}

/// Feeds `body` to a [`BodyReader`] from a task on the runtime.
pub fn body_reader(body: Body) -> BodyReader {
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        let mut stream = body.into_data_stream();
        while let Some(chunk) = futures_util::StreamExt::next(&mut stream).await {
            let item = chunk.map_err(|e| format!("reading request body: {e}"));
            let stop = item.is_err();
            if stop {
                return;
            }
            if tx.send(item).await.is_err() {
                // The handler gave up on the body (it answers an error).
                drain(stream).await;
                return;
            }
        }
    });
    BodyReader {
        rx,
        cur: Bytes::new(),
    }
}

/// A response body that yields what arrives on `rx` until it closes.
pub fn body_from_channel(rx: mpsc::Receiver<Bytes>) -> Body {
    Body::from_stream(stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, std::convert::Infallible>(b), rx))
    }))
}

/// A log entry as the client sees it: framed unless the container has a
/// TTY, with its timestamp in front when asked.
pub fn encode_entry(entry: &Entry, tty: bool, timestamps: bool, out: &mut Vec<u8>) {
    let mut payload = Vec::with_capacity(entry.log.len() + 32);
    if timestamps {
        payload.extend_from_slice(entry.time.as_bytes());
        payload.push(b' ');
    }
    payload.extend_from_slice(entry.log.as_bytes());
    encode_chunk(
        if entry.stream == "stderr" {
            StreamKind::Stderr
        } else {
            StreamKind::Stdout
        },
        &payload,
        tty,
        out,
    );
}

fn encode_chunk(kind: StreamKind, payload: &[u8], tty: bool, out: &mut Vec<u8>) {
    if tty {
        out.extend_from_slice(payload);
    } else {
        encode_frame(kind, payload, out);
    }
}

/// The connection a request came on: a request extension that
/// [`crate::server::serve`] sets, for hijacked streams.
#[derive(Debug, Clone, Copy)]
pub struct ClientConn {
    fd: RawFd,
}

/// How long a hijacked stream waits for its client to read the response
/// head before it sends output anyway.
pub const HEAD_READ_WAIT: Duration = Duration::from_secs(2);

/// How long a finished hijacked stream goes on reading (and dropping) what
/// its client still sends, so that closing it does not reset the
/// connection under the client's last reads.
const LINGER: Duration = Duration::from_secs(2);

/// How long an exec's output may stand still after the process exited
/// before the session ends without the rest.
const DRAIN_STALL: Duration = Duration::from_secs(2);

impl ClientConn {
    pub(crate) fn new(fd: RawFd) -> ClientConn {
        ClientConn { fd }
    }

    /// Bytes written to the connection that the client has not read yet
    /// (unix sockets) or not acknowledged (TCP).
    fn unread(&self) -> Option<i32> {
        let mut n: nix::libc::c_int = 0;
        // SAFETY: SIOCOUTQ (TIOCOUTQ) writes one int; the fd is the
        // connection's socket, which the caller's hijacked stream keeps
        // open.
        let rc = unsafe { nix::libc::ioctl(self.fd, nix::libc::TIOCOUTQ, &mut n) };
        (rc == 0).then_some(n)
    }

    /// Waits, for at most [`HEAD_READ_WAIT`], until the client has read
    /// everything sent so far: after a `101 Switching Protocols`, its head.
    ///
    /// A client that reads the head through a buffered reader and then
    /// reads the raw socket (docker-py, and so `exec_run` and `attach`)
    /// loses whatever output its buffer took along with the head; output
    /// sent only once the head is read cannot be taken so.
    pub async fn head_taken(&self) {
        let deadline = tokio::time::Instant::now() + HEAD_READ_WAIT;
        let mut tries = 0u32;
        while self.unread().is_some_and(|n| n > 0) && tokio::time::Instant::now() < deadline {
            tries += 1;
            if tries < 16 {
                tokio::task::yield_now().await;
            } else {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
}

/// Where a session's input goes.
trait InputSink: Send + 'static {
    /// Sends bytes on; false once nothing reads them any more.
    fn send(&mut self, data: &[u8]) -> impl Future<Output = bool> + Send;
}

impl InputSink for AttachedStdin {
    async fn send(&mut self, data: &[u8]) -> bool {
        AttachedStdin::send(self, Bytes::copy_from_slice(data)).await
    }
}

/// An exec's stdin: a pipe, or the pty master.
struct ExecStdin(tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>);

impl InputSink for ExecStdin {
    async fn send(&mut self, data: &[u8]) -> bool {
        berth_runtime::util::fdio::write_all_async(&self.0, data)
            .await
            .is_ok()
    }
}

/// Reads a session's input from its client: passes it to `sink` (if the
/// session takes input) until the client half-closes (dropping `sink`,
/// which ends the process's stdin where it should), and with `watch` (a
/// session with a TTY) looks for the detach keys, reporting them on
/// `detached`. Once the session has `ended` (or detached), reads and drops
/// what the client still sends, for at most [`LINGER`], so that closing
/// the connection on unread input does not reset it under the client.
async fn pump_input<R, S>(
    mut rd: R,
    sink: Option<S>,
    mut watch: Option<DetachWatch>,
    detached: oneshot::Sender<()>,
    mut ended: watch::Receiver<bool>,
) where
    R: AsyncRead + Unpin,
    S: InputSink,
{
    let mut sink = sink;
    let mut detached = Some(detached);
    let mut buf = vec![0u8; 32 * 1024];
    let mut passed = Vec::new();
    let mut linger_until: Option<tokio::time::Instant> = None;
    loop {
        let read = tokio::select! {
            r = rd.read(&mut buf) => r,
            _ = ended.wait_for(|e| *e), if linger_until.is_none() => {
                sink = None;
                linger_until = Some(tokio::time::Instant::now() + LINGER);
                continue;
            }
            _ = sleep_until(linger_until) => return,
        };
        let n = match read {
            Ok(n) if n > 0 => n,
            _ => break,
        };
        if linger_until.is_some() {
            continue;
        }
        let data = match watch.as_mut() {
            Some(w) => {
                passed.clear();
                if w.feed(&buf[..n], &mut passed) {
                    if let Some(s) = sink.as_mut()
                        && !passed.is_empty()
                    {
                        s.send(&passed).await;
                    }
                    // The session ends, the process does not: with a TTY
                    // its stdin stays open (see `Attached::take_stdin`).
                    sink = None;
                    if let Some(tx) = detached.take() {
                        let _ = tx.send(());
                    }
                    linger_until = Some(tokio::time::Instant::now() + LINGER);
                    continue;
                }
                &passed[..]
            }
            None => &buf[..n],
        };
        if let Some(s) = sink.as_mut()
            && !data.is_empty()
            && !s.send(data).await
        {
            // The process no longer reads stdin; the detach keys still
            // work.
            sink = None;
        }
    }
    // End of the client's input: what a partial sequence held back was
    // input after all.
    if let (Some(s), Some(w)) = (sink.as_mut(), watch.as_ref())
        && !w.held().is_empty()
    {
        s.send(w.held()).await;
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => pending().await,
    }
}

/// Resolves when the session's input reported the detach keys; never if
/// it ended otherwise.
async fn detach_requested(rx: &mut Option<oneshot::Receiver<()>>) {
    if let Some(r) = rx.as_mut()
        && r.await.is_ok()
    {
        return;
    }
    *rx = None;
    pending().await
}

/// Runs a hijacked attach connection: replayed and live output out, stdin
/// in, until the process exits or (with a TTY) the client types the
/// detach keys. Half-closing the client's side ends stdin but not the
/// output. With `conn`, output waits until the client has read the
/// response head ([`ClientConn::head_taken`]).
pub async fn pump_attach<IO>(
    io: IO,
    mut attached: Attached,
    stdout: bool,
    stderr: bool,
    detach_keys: Vec<u8>,
    conn: Option<ClientConn>,
) where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let (rd, mut wr) = tokio::io::split(io);
    let tty = attached.tty;
    let (ended_tx, ended_rx) = watch::channel(false);
    let (detach_tx, detach_rx) = oneshot::channel();
    let stdin = attached.take_stdin();
    // Docker watches for the detach keys in the input of sessions with a
    // TTY only.
    let keys = (tty && stdin.is_some()).then(|| DetachWatch::new(detach_keys));
    let mut detach_rx = keys.is_some().then_some(detach_rx);
    let input = tokio::spawn(pump_input(rd, stdin, keys, detach_tx, ended_rx));

    if let Some(c) = conn {
        c.head_taken().await;
    }
    let mut out = Vec::new();
    for e in &attached.replay {
        encode_entry(e, tty, false, &mut out);
    }
    let mut open = out.is_empty() || wr.write_all(&out).await.is_ok();
    if open && let Some(mut live) = attached.live.take() {
        loop {
            let msg = tokio::select! {
                m = live.recv() => m,
                _ = detach_requested(&mut detach_rx) => {
                    attached.detached();
                    break;
                }
            };
            let msg = match msg {
                Ok(m) => m,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(skipped = n, "attached client too slow; output dropped");
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => break,
            };
            match msg {
                Live::End => break,
                Live::Data(kind, data) => {
                    let wanted = match kind {
                        StreamKind::Stderr => stderr,
                        _ => stdout,
                    };
                    if !wanted {
                        continue;
                    }
                    out.clear();
                    encode_chunk(kind, &data, tty, &mut out);
                    if wr.write_all(&out).await.is_err() {
                        open = false;
                        break;
                    }
                }
            }
        }
    }
    if open {
        let _ = wr.flush().await;
        let _ = wr.shutdown().await;
    }
    // The input task reads on for a bounded while (LINGER), on its own.
    let _ = ended_tx.send(true);
    drop(input);
}

/// A hijacked exec connection's writing side, shared by the output pumps
/// until the session ends or detaches.
type SharedWriter<W> = Arc<tokio::sync::Mutex<Option<W>>>;

/// Runs a hijacked exec connection: the process's output out (framed
/// unless `raw`, which is the start request's `Tty`, as Docker), the
/// client's input to its stdin, until the process has exited and its
/// output is drained, or (with a TTY) the client types the detach keys:
/// then the client is let go and the process runs on, its output read and
/// dropped. With `conn`, output waits until the client has read the
/// response head ([`ClientConn::head_taken`]).
pub async fn pump_exec<IO>(
    io: IO,
    streams: berth_runtime::container::exec::ExecStreams,
    raw: bool,
    conn: Option<ClientConn>,
) where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    use berth_runtime::util::fdio::{nonblocking, read_async};
    let berth_runtime::container::exec::ExecStreams {
        tty,
        stdin,
        stdout,
        stderr,
        attach_stdout,
        attach_stderr,
        mut done,
        detach_keys,
        on_detach,
    } = streams;
    let (rd, wr) = tokio::io::split(io);
    let (ended_tx, ended_rx) = watch::channel(false);
    let (detach_tx, detach_rx) = oneshot::channel();
    let stdin = stdin.and_then(|fd| nonblocking(fd).ok()).map(ExecStdin);
    let keys = (tty && stdin.is_some()).then(|| DetachWatch::new(detach_keys));
    let mut detach_rx = keys.is_some().then_some(detach_rx);
    let input = tokio::spawn(pump_input(rd, stdin, keys, detach_tx, ended_rx));

    if let Some(c) = conn {
        c.head_taken().await;
    }
    let wr: SharedWriter<_> = Arc::new(tokio::sync::Mutex::new(Some(wr)));
    // Bytes read from the process, and writes to the client under way, so
    // that the end of a session can tell output still on its way (at the
    // client's pace) from a pipe held open by a process left behind.
    let moved = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let writing = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut readers = Vec::new();
    for (fd, kind, attached) in [
        (Some(stdout), StreamKind::Stdout, attach_stdout),
        (stderr, StreamKind::Stderr, attach_stderr),
    ] {
        let Some(fd) = fd.and_then(|f| nonblocking(f).ok()) else {
            continue;
        };
        let wr = wr.clone();
        let moved = moved.clone();
        let writing = writing.clone();
        readers.push(tokio::spawn(async move {
            use std::sync::atomic::Ordering::Relaxed;
            let mut buf = vec![0u8; 32 * 1024];
            let mut out = Vec::new();
            loop {
                let n = match read_async(&fd, &mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                moved.fetch_add(n as u64, Relaxed);
                match n {
                    // Not asked for: the process writes on, nobody sees it.
                    _ if !attached => {}
                    n => {
                        let mut w = wr.lock().await;
                        // After a detach or with the client gone, output is
                        // read (so the process never blocks on a full pipe)
                        // and dropped.
                        let Some(conn) = w.as_mut() else { continue };
                        out.clear();
                        encode_chunk(kind, &buf[..n], raw, &mut out);
                        writing.fetch_add(1, Relaxed);
                        let written = conn.write_all(&out).await;
                        writing.fetch_sub(1, Relaxed);
                        if written.is_err() {
                            *w = None;
                        }
                    }
                }
            }
        }));
    }
    // With a TTY, the pty master stays readable after the process ends only
    // while someone holds the slave: wait for the exit as well.
    let detached = tokio::select! {
        _ = done.wait_for(|c| c.is_some()) => false,
        _ = detach_requested(&mut detach_rx) => true,
    };
    if detached {
        on_detach.fire();
    } else {
        // The output is drained to its end, at the client's pace. Once the
        // readers have waited DRAIN_STALL on the process's side with
        // nothing coming, a process the command left behind holds the
        // pipe (or the pty) open, and the session ends without it. (Docker
        // cuts at 2 s even while output still moves.)
        use std::sync::atomic::Ordering::Relaxed;
        let mut all = futures_util::future::join_all(readers);
        loop {
            let before = moved.load(Relaxed);
            match tokio::time::timeout(DRAIN_STALL, &mut all).await {
                Ok(_) => break,
                Err(_) if moved.load(Relaxed) == before && writing.load(Relaxed) == 0 => break,
                Err(_) => {}
            }
        }
    }
    if let Some(mut w) = wr.lock().await.take() {
        let _ = w.flush().await;
        let _ = w.shutdown().await;
    }
    let _ = ended_tx.send(true);
    drop(input);
}
