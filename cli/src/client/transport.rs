//! Where the daemon lives (`-H` / `BERTH_HOST`) and how to open a byte stream
//! to it.
//!
//! This module owns address parsing and the connector. It knows nothing about
//! HTTP; `client` layers hyper on top of the [`Stream`] it returns. TLS for
//! `tcp://` is a later addition: it becomes one more [`Stream`] variant and a
//! `tls` field on [`Host::Tcp`], and nothing above this module changes.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};

/// The daemon address used when neither `-H` nor `BERTH_HOST` is given.
pub const DEFAULT_HOST: &str = "unix:///run/berth/berth.sock";
/// The socket path of [`DEFAULT_HOST`].
const DEFAULT_SOCKET: &str = "/run/berth/berth.sock";
/// Docker's default plain-HTTP port, used for `tcp://host` without a port.
const DEFAULT_TCP_PORT: u16 = 2375;

/// A parsed daemon address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// `unix:///path/to/socket`
    Unix(PathBuf),
    /// `tcp://host:port` (plain HTTP for now).
    Tcp { host: String, port: u16 },
}

impl Host {
    /// Parses `unix:///path`, `unix://` (the default socket), `tcp://host[:port]`
    /// (also `http://`), or a bare absolute socket path.
    pub fn parse(s: &str) -> Result<Host, String> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(Host::Unix(PathBuf::from(DEFAULT_SOCKET)));
        }
        if s.starts_with('/') {
            return Ok(Host::Unix(PathBuf::from(s)));
        }
        let Some((scheme, rest)) = s.split_once("://") else {
            return Err(format!(
                "invalid daemon address '{s}': expected unix:///path or tcp://host:port"
            ));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "unix" => {
                if rest.is_empty() {
                    Ok(Host::Unix(PathBuf::from(DEFAULT_SOCKET)))
                } else {
                    Ok(Host::Unix(PathBuf::from(rest)))
                }
            }
            "tcp" | "http" => parse_tcp(s, rest),
            "https" => Err(format!(
                "invalid daemon address '{s}': TLS is not supported yet; use tcp:// for plain HTTP"
            )),
            other => Err(format!(
                "invalid daemon address '{s}': unsupported scheme '{other}' (use unix:// or tcp://)"
            )),
        }
    }

    /// The value of the `Host` header for requests to this daemon.
    pub fn authority(&self) -> String {
        match self {
            // Any name works for a unix socket; Docker uses a dummy one too.
            Host::Unix(_) => "localhost".to_string(),
            Host::Tcp { host, port } if host.contains(':') => format!("[{host}]:{port}"),
            Host::Tcp { host, port } => format!("{host}:{port}"),
        }
    }
}

fn parse_tcp(whole: &str, rest: &str) -> Result<Host, String> {
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains('/') {
        return Err(format!(
            "invalid daemon address '{whole}': a path after host:port is not supported"
        ));
    }
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        // [::1]:2375
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("invalid daemon address '{whole}': unclosed '['"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err(format!("invalid daemon address '{whole}'")),
        };
        (h.to_string(), port)
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (rest.to_string(), None),
        }
    };
    let port = match port {
        None | Some("") => DEFAULT_TCP_PORT,
        Some(p) => p
            .parse::<u16>()
            .map_err(|_| format!("invalid daemon address '{whole}': invalid port '{p}'"))?,
    };
    let host = if host.is_empty() {
        "localhost".to_string()
    } else {
        host
    };
    Ok(Host::Tcp { host, port })
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Unix(p) => write!(f, "unix://{}", p.display()),
            Host::Tcp { .. } => write!(f, "tcp://{}", self.authority()),
        }
    }
}

impl std::str::FromStr for Host {
    type Err = String;
    fn from_str(s: &str) -> Result<Host, String> {
        Host::parse(s)
    }
}

/// An open byte stream to the daemon.
pub enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

/// Opens a stream to `host`.
pub async fn connect(host: &Host) -> io::Result<Stream> {
    match host {
        Host::Unix(path) => UnixStream::connect(path).await.map(Stream::Unix),
        Host::Tcp { host, port } => {
            let s = TcpStream::connect((host.as_str(), *port)).await?;
            s.set_nodelay(true)?;
            Ok(Stream::Tcp(s))
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Unix(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Unix(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
        }
    }

    /// Half-closes the write side (`shutdown(SHUT_WR)`), which is how an
    /// attach tells the daemon that stdin reached EOF.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(h: &str, p: u16) -> Host {
        Host::Tcp {
            host: h.to_string(),
            port: p,
        }
    }

    #[test]
    fn parses_unix_addresses() {
        assert_eq!(
            Host::parse("unix:///run/berth/berth.sock").unwrap(),
            Host::Unix("/run/berth/berth.sock".into())
        );
        assert_eq!(
            Host::parse("unix://").unwrap(),
            Host::Unix(DEFAULT_SOCKET.into())
        );
        assert_eq!(
            Host::parse("/tmp/b.sock").unwrap(),
            Host::Unix("/tmp/b.sock".into())
        );
        assert_eq!(Host::parse(DEFAULT_HOST).unwrap().to_string(), DEFAULT_HOST);
    }

    #[test]
    fn parses_tcp_addresses() {
        assert_eq!(
            Host::parse("tcp://127.0.0.1:2375").unwrap(),
            tcp("127.0.0.1", 2375)
        );
        assert_eq!(
            Host::parse("tcp://example.com").unwrap(),
            tcp("example.com", 2375)
        );
        assert_eq!(Host::parse("http://h:80/").unwrap(), tcp("h", 80));
        assert_eq!(Host::parse("tcp://:1234").unwrap(), tcp("localhost", 1234));
        assert_eq!(Host::parse("tcp://[::1]:99").unwrap(), tcp("::1", 99));
        assert_eq!(
            Host::parse("tcp://[::1]:99").unwrap().to_string(),
            "tcp://[::1]:99"
        );
        assert_eq!(Host::parse("tcp://h:99").unwrap().authority(), "h:99");
    }

    #[test]
    fn rejects_bad_addresses() {
        assert!(Host::parse("ssh://me@box").is_err());
        assert!(Host::parse("tcp://h:notaport").is_err());
        assert!(Host::parse("tcp://h:1/base").is_err());
        assert!(Host::parse("localhost:2375").is_err());
        assert!(Host::parse("https://h:2376").is_err());
    }
}
