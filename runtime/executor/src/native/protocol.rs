//! The wire between berthd and a container's shim: a unix stream carrying
//! frames `[kind: u8][length: u32 big-endian][payload]`.
//!
//! The first connection is a socketpair berthd hands the shim at spawn, so
//! no output is lost before berthd could connect; after a daemon restart,
//! berthd reconnects through `shim.sock` in the container's directory.

use serde::{Deserialize, Serialize};
use std::io;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Shim to daemon: a chunk of the container's stdout.
pub const STDOUT: u8 = 1;
/// Shim to daemon: a chunk of the container's stderr.
pub const STDERR: u8 = 2;
/// Shim to daemon: the container exited; payload is [`ExitFile`] JSON.
pub const EXITED: u8 = 3;
/// Shim to daemon: answer to [`HELLO`]; payload is [`State`] JSON.
pub const STATE: u8 = 4;
/// Daemon to shim: who is there and in what state?
pub const HELLO: u8 = 10;
/// Daemon to shim: bytes for the container's stdin.
pub const STDIN: u8 = 11;
/// Daemon to shim: close the container's stdin.
pub const STDIN_CLOSE: u8 = 12;
/// Daemon to shim: send a signal (u32 big-endian) to the container's init.
pub const SIGNAL: u8 = 13;
/// Daemon to shim: resize the TTY (rows u16, cols u16, big-endian).
pub const RESIZE: u8 = 14;
/// Daemon to shim: the exit was recorded; clean up and go.
pub const ACK_EXIT: u8 = 15;

/// Largest frame accepted.
pub const MAX_FRAME: usize = 1 << 20;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct State {
    /// The container's init in the host's pid namespace.
    pub pid: i32,
    /// Set once the container has exited.
    pub exited: Option<ExitFile>,
}

/// One frame, encoded.
pub fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(5 + payload.len());
    buf.push(kind);
    buf.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    buf.extend_from_slice(payload);
    buf
}

pub async fn write_frame<W: AsyncWrite + Unpin>(
    w: &mut W,
    kind: u8,
    payload: &[u8],
) -> io::Result<()> {
    w.write_all(&frame(kind, payload)).await
}

/// Reads one frame; `None` at a clean end of stream.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<Option<(u8, Vec<u8>)>> {
    let mut head = [0u8; 5];
    match r.read_exact(&mut head).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes is too large"),
        ));
    }
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload).await?;
    Ok(Some((head[0], payload)))
}

/// `exit.json`: how the container ended.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ExitFile {
    pub code: i64,
    pub oom_killed: bool,
    pub error: Option<String>,
    pub finished_at: String,
}

/// The start report on fd 3.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StartReport {
    Started { pid: i32 },
    Failed { error: String, code: i32 },
}
