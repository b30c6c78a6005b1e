//! Container filesystem shapes: the path stat of the archive endpoints
//! (`docker cp`), the entries of `GET /containers/{id}/changes` (`docker
//! diff`), and the base64 that carries a path stat in a header.

use serde::{Deserialize, Serialize};

/// The header that carries a [`PathStat`] on `HEAD` and `GET
/// /containers/{id}/archive`: base64 (standard alphabet, padded) of its
/// JSON.
pub const PATH_STAT_HEADER: &str = "X-Docker-Container-Path-Stat";

/// What the archive endpoints say about a path in a container (Docker's
/// `container.PathStat`). `mode` is Go's `os.FileMode`: permission bits
/// plus the type bits below.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct PathStat {
    pub name: String,
    pub size: i64,
    pub mode: u32,
    /// RFC 3339 with nanoseconds.
    pub mtime: String,
    /// For a symlink: its target, fully resolved inside the container, as
    /// an absolute path.
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

/// Go's `os.FileMode` type and special bits.
pub mod mode {
    pub const DIR: u32 = 1 << 31;
    pub const SYMLINK: u32 = 1 << 27;
    pub const DEVICE: u32 = 1 << 26;
    pub const NAMED_PIPE: u32 = 1 << 25;
    pub const SOCKET: u32 = 1 << 24;
    pub const SETUID: u32 = 1 << 23;
    pub const SETGID: u32 = 1 << 22;
    pub const CHAR_DEVICE: u32 = 1 << 21;
    pub const STICKY: u32 = 1 << 20;
    pub const IRREGULAR: u32 = 1 << 19;
}

impl PathStat {
    pub fn is_dir(&self) -> bool {
        self.mode & mode::DIR != 0
    }

    pub fn is_symlink(&self) -> bool {
        self.mode & mode::SYMLINK != 0
    }

    /// The header value: base64 of the JSON.
    pub fn to_header(&self) -> String {
        base64_encode(&serde_json::to_vec(self).expect("a PathStat serializes"))
    }

    /// Parses a header value.
    pub fn from_header(value: &str) -> Result<PathStat, String> {
        let json = base64_decode(value.trim())
            .ok_or_else(|| format!("the {PATH_STAT_HEADER} header is not base64"))?;
        serde_json::from_slice(&json)
            .map_err(|e| format!("the {PATH_STAT_HEADER} header is not a path stat: {e}"))
    }
}

/// Converts a Unix `st_mode` to Go's `os.FileMode`.
pub fn go_file_mode(st_mode: u32) -> u32 {
    let mut m = st_mode & 0o777;
    if st_mode & 0o4000 != 0 {
        m |= mode::SETUID;
    }
    if st_mode & 0o2000 != 0 {
        m |= mode::SETGID;
    }
    if st_mode & 0o1000 != 0 {
        m |= mode::STICKY;
    }
    m | match st_mode & 0o170000 {
        0o040000 => mode::DIR,
        0o120000 => mode::SYMLINK,
        0o010000 => mode::NAMED_PIPE,
        0o140000 => mode::SOCKET,
        0o060000 => mode::DEVICE,
        0o020000 => mode::DEVICE | mode::CHAR_DEVICE,
        0o100000 => 0,
        _ => mode::IRREGULAR,
    }
}

/// One entry of `GET /containers/{id}/changes`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Change {
    pub path: String,
    /// 0 modified, 1 added, 2 deleted.
    pub kind: u8,
}

impl Change {
    pub const MODIFIED: u8 = 0;
    pub const ADDED: u8 = 1;
    pub const DELETED: u8 = 2;

    /// Docker's letter for the kind: `C`, `A` or `D`.
    pub fn letter(&self) -> char {
        match self.kind {
            Change::ADDED => 'A',
            Change::DELETED => 'D',
            _ => 'C',
        }
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard (or URL-safe) base64, padded or not.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_and_matches_known_values() {
        assert_eq!(base64_encode(b""), "");
        assert_eq!(base64_encode(b"f"), "Zg==");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_encode(b"foo"), "Zm9v");
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        for n in 0..40u8 {
            let data: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37) ^ 0xa5).collect();
            assert_eq!(base64_decode(&base64_encode(&data)).unwrap(), data);
        }
        assert_eq!(base64_decode("Zm9vYg").unwrap(), b"foob");
        assert!(base64_decode("Zm9v!").is_none());
    }

    #[test]
    fn path_stat_header_round_trips_with_dockers_field_names() {
        let st = PathStat {
            name: "hosts".into(),
            size: 12,
            mode: go_file_mode(0o100644),
            mtime: "2024-01-02T03:04:05.000000006Z".into(),
            link_target: String::new(),
        };
        let json: serde_json::Value = serde_json::to_value(&st).unwrap();
        assert_eq!(json["linkTarget"], "");
        assert_eq!(json["mode"], 0o644);
        assert_eq!(PathStat::from_header(&st.to_header()).unwrap(), st);
    }

    #[test]
    fn file_modes_are_gos() {
        assert_eq!(go_file_mode(0o040755), mode::DIR | 0o755);
        assert_eq!(go_file_mode(0o120777), mode::SYMLINK | 0o777);
        assert_eq!(
            go_file_mode(0o020620),
            mode::DEVICE | mode::CHAR_DEVICE | 0o620
        );
        assert_eq!(go_file_mode(0o104755), mode::SETUID | 0o755);
        assert_eq!(go_file_mode(0o041777), mode::DIR | mode::STICKY | 0o777);
        assert!(
            PathStat {
                mode: go_file_mode(0o040700),
                ..Default::default()
            }
            .is_dir()
        );
    }
}
