//! Writing container output to the local stdout/stderr: demultiplexing
//! Docker's 8-byte frames, and displaying JSON message streams.
//!
//! Writes are synchronous and flushed per chunk: a CLI that blocks on a full
//! stdout pipe is the right kind of backpressure, and it avoids a thread hop.

use std::io::{self, Write};

use anyhow::{Result, bail};
use berth_api_types::image::JsonMessage;
use berth_api_types::stream::{FrameDecoder, StreamKind};

/// Prints one line to stdout, reporting errors (a closed pipe included)
/// instead of panicking as `println!` does.
pub fn println(line: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(line.as_bytes())?;
    out.write_all(b"\n")
}

/// Sends output chunks to stdout/stderr: raw with a TTY, demultiplexed
/// without.
pub struct OutputWriter {
    tty: bool,
    decoder: FrameDecoder,
}

impl OutputWriter {
    pub fn new(tty: bool) -> OutputWriter {
        OutputWriter {
            tty,
            decoder: FrameDecoder::new(),
        }
    }

    pub fn write(&mut self, chunk: &[u8]) -> Result<()> {
        if self.tty {
            let mut out = io::stdout().lock();
            out.write_all(chunk)?;
            out.flush()?;
            return Ok(());
        }
        self.decoder.push(chunk);
        let mut wrote_stdout = false;
        while let Some((kind, payload)) = self.decoder.next_frame()? {
            match kind {
                StreamKind::Stdout | StreamKind::Stdin => {
                    io::stdout().lock().write_all(&payload)?;
                    wrote_stdout = true;
                }
                StreamKind::Stderr => {
                    if wrote_stdout {
                        io::stdout().flush()?;
                        wrote_stdout = false;
                    }
                    io::stderr().lock().write_all(&payload)?;
                }
                StreamKind::System => bail!(
                    "error from daemon in stream: {}",
                    String::from_utf8_lossy(&payload).trim_end()
                ),
            }
        }
        if wrote_stdout {
            io::stdout().flush()?;
        }
        Ok(())
    }

    /// Checks that the stream did not stop in the middle of a frame.
    pub fn finish(&self) -> Result<()> {
        if !self.tty && self.decoder.pending() > 0 {
            bail!(
                "unexpected EOF in the output stream ({} bytes of an incomplete frame)",
                self.decoder.pending()
            );
        }
        Ok(())
    }
}

/// Displays a stream of Docker JSON messages (`docker load`, later pull and
/// push): `stream` text as is, `status` lines (with their id), progress
/// updates only on a terminal; an `error` ends the stream as a failure.
#[derive(Default)]
pub struct JsonMessagePrinter {
    buf: Vec<u8>,
}

impl JsonMessagePrinter {
    pub fn push(&mut self, chunk: &[u8], out: &mut impl Write) -> Result<()> {
        self.buf.extend_from_slice(chunk);
        let mut it = serde_json::Deserializer::from_slice(&self.buf).into_iter::<JsonMessage>();
        let mut consumed = 0;
        loop {
            match it.next() {
                Some(Ok(msg)) => {
                    consumed = it.byte_offset();
                    display(&msg, out)?;
                }
                Some(Err(e)) if e.is_eof() => break,
                Some(Err(e)) => bail!("cannot decode a message from the daemon: {e}"),
                None => {
                    consumed = it.byte_offset();
                    break;
                }
            }
        }
        self.buf.drain(..consumed);
        Ok(())
    }

    pub fn finish(&self) -> Result<()> {
        if self.buf.iter().any(|b| !b.is_ascii_whitespace()) {
            bail!("the daemon's message stream ended in the middle of a message");
        }
        Ok(())
    }
}

fn display(msg: &JsonMessage, out: &mut impl Write) -> Result<()> {
    if let Some(err) = &msg.error {
        let text = msg
            .error_detail
            .as_ref()
            .map(|d| d.message.as_str())
            .filter(|m| !m.is_empty())
            .unwrap_or(err);
        bail!("{text}");
    }
    if let Some(stream) = &msg.stream {
        out.write_all(stream.as_bytes())?;
        out.flush()?;
        return Ok(());
    }
    let Some(status) = &msg.status else {
        return Ok(()); // aux and empty messages carry nothing to print
    };
    let has_progress = msg.progress.as_deref().is_some_and(|p| !p.is_empty())
        || msg
            .progress_detail
            .as_ref()
            .is_some_and(|d| d.total.is_some());
    if has_progress {
        // Progress bars only make sense on a terminal; docker skips them
        // otherwise.
        return Ok(());
    }
    if let Some(id) = msg.id.as_deref().filter(|i| !i.is_empty()) {
        write!(out, "{id}: ")?;
    }
    writeln!(out, "{status}")?;
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_messages_across_chunks() {
        let mut p = JsonMessagePrinter::default();
        let mut out = Vec::new();
        let all = b"{\"stream\":\"Loaded image: hello:latest\\n\"}\r\n{\"status\":\"Done\",\"id\":\"ab\"}\n";
        for c in all.chunks(7) {
            p.push(c, &mut out).unwrap();
        }
        p.finish().unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Loaded image: hello:latest\nab: Done\n"
        );
    }

    #[test]
    fn json_message_error_fails() {
        let mut p = JsonMessagePrinter::default();
        let mut out = Vec::new();
        let e = p
            .push(
                br#"{"error":"bad tar","errorDetail":{"message":"bad tar: unexpected EOF"}}"#,
                &mut out,
            )
            .unwrap_err();
        assert_eq!(e.to_string(), "bad tar: unexpected EOF");
    }
}
