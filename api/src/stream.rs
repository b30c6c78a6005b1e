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
