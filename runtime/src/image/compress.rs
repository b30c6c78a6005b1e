//! The one decompressor of the image pipeline: every tar berth reads (a
//! layer being unpacked, a `docker load` or `docker import` archive, a
//! `docker cp` upload, a Wasm image's layer) passes through [`Decoder`].
//!
//! gzip is read as a sequence of members to the end of the stream (as
//! `gzip -d` does): `pigz` and some registries write a layer as several
//! members, and a single-member decoder would stop after the first one
//! and read the layer short. zstd frames are read to the end likewise.
//! The compression is either known (a layer's media type) or told from
//! the stream's first bytes ([`Decoder::sniff`]).

use crate::error::{Error, Result};
use std::io::{self, BufReader, Chain, Cursor, Read};

/// How a tar stream (a layer, an archive) is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// The first bytes of a gzip stream.
const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
/// The first bytes of a zstd frame.
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
const BZIP2_MAGIC: &[u8] = b"BZh";
const XZ_MAGIC: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0];

/// A reader that yields the uncompressed bytes of `R`.
pub enum Decoder<R: Read> {
    Plain(R),
    Gzip(flate2::read::MultiGzDecoder<R>),
    Zstd(zstd::Decoder<'static, BufReader<R>>),
}

impl<R: Read> Decoder<R> {
    /// A decoder of `reader`, compressed as `compression` says.
    pub fn new(reader: R, compression: Compression) -> Result<Decoder<R>> {
        Ok(match compression {
            Compression::None => Decoder::Plain(reader),
            Compression::Gzip => Decoder::Gzip(flate2::read::MultiGzDecoder::new(reader)),
            Compression::Zstd => Decoder::Zstd(
                zstd::Decoder::new(reader)
                    .map_err(|e| Error::internal(format!("opening a zstd stream: {e}")))?,
            ),
        })
    }
}

/// A stream whose first bytes were read to tell its compression, and are
/// yielded again.
pub type Sniffed<R> = Chain<Cursor<Vec<u8>>, R>;

/// What a stream's first bytes say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Magic {
    /// No bytes at all.
    Empty,
    Known(Compression),
    /// A compression berth does not read (bzip2, xz): the message says
    /// what to do.
    Unsupported(&'static str, &'static str),
}

/// Reads the first bytes of `reader` and says how it is compressed; the
/// returned reader yields the whole stream again. `what` names the stream
/// in messages ("the archive").
pub fn sniff<R: Read>(mut reader: R, what: &str) -> Result<(Magic, Sniffed<R>)> {
    let mut head = [0u8; 6];
    let mut n = 0;
    while n < head.len() {
        match reader.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::invalid(format!("reading {what}: {e}"))),
        }
    }
    let head = &head[..n];
    let magic = if n == 0 {
        Magic::Empty
    } else if head.starts_with(GZIP_MAGIC) {
        Magic::Known(Compression::Gzip)
    } else if head.starts_with(ZSTD_MAGIC) {
        Magic::Known(Compression::Zstd)
    } else if head.starts_with(BZIP2_MAGIC) {
        Magic::Unsupported("bzip2", "bunzip2")
    } else if head.starts_with(XZ_MAGIC) {
        Magic::Unsupported("xz", "unxz")
    } else {
        Magic::Known(Compression::None)
    };
    Ok((magic, Cursor::new(head.to_vec()).chain(reader)))
}

impl<R: Read> Decoder<Sniffed<R>> {
    /// A decoder of `reader`, its compression told from its first bytes:
    /// gzip, zstd or none. bzip2 and xz are refused with a message naming
    /// `what` and the tool that decompresses them; an empty stream is read
    /// as an empty plain one (callers that refuse it use [`sniff`]).
    pub fn sniff(reader: R, what: &str) -> Result<(Compression, Decoder<Sniffed<R>>)> {
        let (magic, whole) = sniff(reader, what)?;
        let compression = magic.compression(what)?;
        Ok((compression, Decoder::new(whole, compression)?))
    }
}

impl Magic {
    /// The compression, or the refusal of one berth does not read.
    pub fn compression(self, what: &str) -> Result<Compression> {
        match self {
            Magic::Empty => Ok(Compression::None),
            Magic::Known(c) => Ok(c),
            Magic::Unsupported(name, tool) => Err(Error::invalid(format!(
                "{what} is {name}-compressed, which berth does not read; decompress it ({tool}) \
                 or use gzip or zstd"
            ))),
        }
    }
}

impl<R: Read> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::Plain(r) => r.read(buf),
            Decoder::Gzip(r) => r.read(buf),
            Decoder::Zstd(r) => r.read(buf),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn read_all(mut r: impl Read) -> Vec<u8> {
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn gzip_of_several_members_is_read_whole() {
        let mut two = gzip(b"first member, ");
        two.extend_from_slice(&gzip(b"second member"));
        let d = Decoder::new(two.as_slice(), Compression::Gzip).unwrap();
        assert_eq!(read_all(d), b"first member, second member");
        let (c, d) = Decoder::sniff(two.as_slice(), "the archive").unwrap();
        assert_eq!(c, Compression::Gzip);
        assert_eq!(read_all(d), b"first member, second member");
    }

    #[test]
    fn compression_is_told_from_the_first_bytes() {
        let zst = zstd::encode_all(&b"zstd data"[..], 1).unwrap();
        let (c, d) = Decoder::sniff(zst.as_slice(), "the archive").unwrap();
        assert_eq!(c, Compression::Zstd);
        assert_eq!(read_all(d), b"zstd data");
        let (c, d) = Decoder::sniff(&b"plain"[..], "the archive").unwrap();
        assert_eq!(c, Compression::None);
        assert_eq!(read_all(d), b"plain");
        let (c, d) = Decoder::sniff(&b""[..], "the archive").unwrap();
        assert_eq!(c, Compression::None);
        assert!(read_all(d).is_empty());
        assert_eq!(
            sniff(&b""[..], "the archive").unwrap().0,
            Magic::Empty,
            "callers can refuse an empty stream"
        );
        let Err(e) = Decoder::sniff(&b"BZh91AY&SY"[..], "the tarball") else {
            panic!("bzip2 accepted");
        };
        assert!(
            e.message().contains("the tarball is bzip2-compressed"),
            "{e}"
        );
        let Err(e) = Decoder::sniff(&[0xfd, b'7', b'z', b'X', b'Z', 0, 1][..], "the archive")
        else {
            panic!("xz accepted");
        };
        assert!(e.message().contains("xz-compressed"), "{e}");
    }
}
