//! Streaming responses: log entries as Docker frames, hijacked attach
//! connections, and bodies fed from channels.

use axum::body::Body;
use berth_api_types::stream::{StreamKind, encode_frame};
use berth_runtime::container::Attached;
use berth_runtime::container::logs::{Entry, Live};
use bytes::Bytes;
use futures_util::stream;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{broadcast, mpsc};

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

/// Runs a hijacked attach connection: replayed and live output out, stdin
/// in, until the process exits. Half-closing the client's side ends stdin
/// but not the output.
pub async fn pump_attach<IO>(io: IO, mut attached: Attached, stdout: bool, stderr: bool)
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(io);
    let tty = attached.tty;
    let reader = attached.take_stdin().map(|stdin| {
        tokio::spawn(async move {
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match rd.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if !stdin.send(Bytes::copy_from_slice(&buf[..n])).await {
                            break;
                        }
                    }
                }
            }
            // Dropping `stdin` here ends the container's stdin (StdinOnce).
        })
    });

    let mut out = Vec::new();
    for e in &attached.replay {
        encode_entry(e, tty, false, &mut out);
    }
    if !out.is_empty() && wr.write_all(&out).await.is_err() {
        return;
    }
    if let Some(mut live) = attached.live.take() {
        loop {
            let msg = match live.recv().await {
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
                        break;
                    }
                }
            }
        }
    }
    let _ = wr.flush().await;
    let _ = wr.shutdown().await;
    if let Some(r) = reader {
        // The process is gone; stdin still in flight has nowhere to go.
        r.abort();
    }
}

/// Runs a hijacked exec connection: the process's output out (framed
/// unless it has a TTY), the client's input to its stdin, until the process
/// has exited and its output is drained.
pub async fn pump_exec<IO>(io: IO, streams: berth_runtime::container::exec::ExecStreams)
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    use berth_runtime::util::fdio::{nonblocking, read_async, write_all_async};
    let (mut rd, wr) = tokio::io::split(io);
    let tty = streams.tty;
    let stdin_task = streams.stdin.and_then(|fd| nonblocking(fd).ok()).map(|fd| {
        tokio::spawn(async move {
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match rd.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if write_all_async(&fd, &buf[..n]).await.is_err() {
                            break;
                        }
                    }
                }
            }
            // Dropping `fd` closes the process's stdin.
        })
    });
    let wr = std::sync::Arc::new(tokio::sync::Mutex::new(wr));
    let mut readers = Vec::new();
    for (fd, kind, attached) in [
        (
            Some(streams.stdout),
            StreamKind::Stdout,
            streams.attach_stdout,
        ),
        (streams.stderr, StreamKind::Stderr, streams.attach_stderr),
    ] {
        let Some(fd) = fd.and_then(|f| nonblocking(f).ok()) else {
            continue;
        };
        let wr = wr.clone();
        readers.push(tokio::spawn(async move {
            let mut buf = vec![0u8; 32 * 1024];
            let mut out = Vec::new();
            loop {
                match read_async(&fd, &mut buf).await {
                    Ok(0) | Err(_) => break,
                    // Not asked for: the process writes on, nobody sees it.
                    Ok(_) if !attached => {}
                    Ok(n) => {
                        out.clear();
                        encode_chunk(kind, &buf[..n], tty, &mut out);
                        if wr.lock().await.write_all(&out).await.is_err() {
                            break;
                        }
                    }
                }
            }
        }));
    }
    // With a TTY, the pty master stays readable after the process ends only
    // while someone holds the slave: wait for the exit as well.
    let mut done = streams.done;
    let _ = done.wait_for(|c| c.is_some()).await;
    for r in readers {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), r).await;
    }
    let mut w = wr.lock().await;
    let _ = w.flush().await;
    let _ = w.shutdown().await;
    if let Some(t) = stdin_task {
        t.abort();
    }
}
