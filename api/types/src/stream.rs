//! Docker's multiplexed stream framing for non-TTY attach, exec and logs.
//!
//! Each frame is an 8-byte header `[stream, 0, 0, 0, size as u32 big-endian]`
//! followed by `size` bytes of payload. Stream 0 is stdin, 1 stdout, 2 stderr;
//! 3 is the "systemerr" stream Docker uses to report errors inside an attach.

/// Which standard stream a chunk of output belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum StreamKind {
    Stdin = 0,
    Stdout = 1,
    Stderr = 2,
    System = 3,
}

impl StreamKind {
    pub fn from_byte(b: u8) -> Option<StreamKind> {
        match b {
            0 => Some(StreamKind::Stdin),
            1 => Some(StreamKind::Stdout),
            2 => Some(StreamKind::Stderr),
            3 => Some(StreamKind::System),
            _ => None,
        }
    }

    /// The name Docker's json-file log driver records (`"stdout"`, `"stderr"`).
    pub fn as_str(self) -> &'static str {
        match self {
            StreamKind::Stdin => "stdin",
            StreamKind::Stdout => "stdout",
            StreamKind::Stderr => "stderr",
            StreamKind::System => "system",
        }
    }
}

/// Length of a frame header.
pub const HEADER_LEN: usize = 8;

/// Appends one frame (header and payload) to `out`.
pub fn encode_frame(kind: StreamKind, payload: &[u8], out: &mut Vec<u8>) {
    out.reserve(HEADER_LEN + payload.len());
    out.push(kind as u8);
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
}

/// Returns one frame as a new buffer.
pub fn frame(kind: StreamKind, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    encode_frame(kind, payload, &mut out);
    out
}

/// Incremental decoder for a multiplexed stream: feed bytes as they arrive and
/// take complete frames out.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
}

/// Why a multiplexed stream could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadFrame(pub u8);

impl std::fmt::Display for BadFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "malformed multiplexed stream: unknown stream type {}",
            self.0
        )
    }
}

impl std::error::Error for BadFrame {}

impl FrameDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame, if one has arrived.
    pub fn next_frame(&mut self) -> Result<Option<(StreamKind, Vec<u8>)>, BadFrame> {
        if self.buf.len() < HEADER_LEN {
            return Ok(None);
        }
        let kind = StreamKind::from_byte(self.buf[0]).ok_or(BadFrame(self.buf[0]))?;
        let size =
            u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]) as usize;
        if self.buf.len() < HEADER_LEN + size {
            return Ok(None);
        }
        let payload = self.buf[HEADER_LEN..HEADER_LEN + size].to_vec();
        self.buf.drain(..HEADER_LEN + size);
        Ok(Some((kind, payload)))
    }

    /// Bytes received that do not yet form a complete frame.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_header_is_dockers() {
        let f = frame(StreamKind::Stderr, b"hi");
        assert_eq!(f, vec![2, 0, 0, 0, 0, 0, 0, 2, b'h', b'i']);
    }

    #[test]
    fn decoder_reassembles_split_frames() {
        let mut all = Vec::new();
        encode_frame(StreamKind::Stdout, b"hello ", &mut all);
        encode_frame(StreamKind::Stderr, b"world", &mut all);
        let mut d = FrameDecoder::new();
        let mut got = Vec::new();
        for chunk in all.chunks(3) {
            d.push(chunk);
            while let Some(f) = d.next_frame().unwrap() {
                got.push(f);
            }
        }
        assert_eq!(
            got,
            vec![
                (StreamKind::Stdout, b"hello ".to_vec()),
                (StreamKind::Stderr, b"world".to_vec())
            ]
        );
        assert_eq!(d.pending(), 0);
    }

    #[test]
    fn decoder_rejects_unknown_stream() {
        let mut d = FrameDecoder::new();
        d.push(&[9, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(d.next_frame(), Err(BadFrame(9)));
    }
}
