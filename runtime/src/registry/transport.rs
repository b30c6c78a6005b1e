//! The HTTP client berth's own registry requests go through, and the time
//! and size bounds on every answer: a registry (or token service, or the
//! storage a blob is redirected to) that never connects, never sends its
//! response headers, or sends its body too slowly fails the request with a
//! message naming the daemon option that changes the bound, instead of
//! holding a pull forever.
//!
//! The bounds ([`RegistryTimeouts`], set by berthd's `--registry-*`
//! options): connecting; the response headers, from the request's start;
//! and the body, which must bring at least `min_rate × stall` bytes in
//! every window of `stall` (a registry that sends one byte a second makes
//! no progress by this measure). Bodies that are read whole (manifests,
//! tokens, error documents) also have a size limit.
//!
//! What it must not touch: what the bytes mean (`session.rs`, `fetch.rs`).

use super::{RegistryError, RegistryResult};
use crate::error::Error;
use bytes::Bytes;
use std::time::Duration;
use tokio::time::Instant;

/// The time bounds of registry requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistryTimeouts {
    /// Establishing a connection (TCP and TLS).
    /// `berthd --registry-connect-timeout`.
    pub connect: Duration,
    /// From sending a request to its response's headers.
    /// `berthd --registry-response-timeout`.
    pub response: Duration,
    /// The window over which a body must make progress.
    /// `berthd --registry-stall-timeout`.
    pub stall: Duration,
    /// The progress a body must make, in bytes per second, averaged over
    /// `stall`. `berthd --registry-min-rate`.
    pub min_rate: u64,
}

pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// 1 KiB/s: 30 KiB in 30 s. A link that slow takes 12 days for a 1 GiB
/// layer; anything slower is a stalled or hostile peer.
pub const DEFAULT_MIN_RATE: u64 = 1024;

impl Default for RegistryTimeouts {
    fn default() -> RegistryTimeouts {
        RegistryTimeouts {
            connect: DEFAULT_CONNECT_TIMEOUT,
            response: DEFAULT_RESPONSE_TIMEOUT,
            stall: DEFAULT_STALL_TIMEOUT,
            min_rate: DEFAULT_MIN_RATE,
        }
    }
}

/// `n` seconds, or milliseconds below one second, for messages.
pub(crate) fn secs(d: Duration) -> String {
    if d >= Duration::from_secs(1) && d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// berth's own HTTP client for registries, with its bounds.
#[derive(Clone)]
pub(crate) struct Transport {
    pub http: reqwest::Client,
    pub timeouts: RegistryTimeouts,
}

impl Transport {
    pub fn new(timeouts: RegistryTimeouts) -> crate::Result<Transport> {
        let http = reqwest::Client::builder()
            .user_agent(super::USER_AGENT)
            // Headers are waited for in `send`, bodies paced in `Pace`
            // (a read timeout here would cut the header wait short).
            .connect_timeout(timeouts.connect)
            .build()
            .map_err(|e| Error::internal(format!("setting up the registry client: {e}")))?;
        Ok(Transport { http, timeouts })
    }

    /// Sends `req`, waiting at most the response timeout for the headers.
    /// `what` names the request in messages (a URL); transport errors go
    /// through `on_error`.
    pub async fn send(
        &self,
        req: reqwest::RequestBuilder,
        what: &str,
        on_error: impl FnOnce(reqwest::Error) -> RegistryError,
    ) -> RegistryResult<reqwest::Response> {
        match tokio::time::timeout(self.timeouts.response, req.send()).await {
            Ok(r) => r.map_err(on_error),
            Err(_) => Err(Error::internal(format!(
                "{what}: no response within {} (berthd --registry-response-timeout)",
                secs(self.timeouts.response)
            ))
            .into()),
        }
    }

    pub fn pace(&self) -> Pace {
        Pace::new(&self.timeouts)
    }

    /// A whole body of at most `limit` bytes, at the required pace.
    pub async fn read_limited(
        &self,
        res: &mut reqwest::Response,
        limit: u64,
    ) -> Result<Bytes, ReadError> {
        if res.content_length().is_some_and(|n| n > limit) {
            return Err(ReadError::TooBig);
        }
        let mut pace = self.pace();
        let mut out = Vec::new();
        while let Some(chunk) = pace.chunk(res).await? {
            if (out.len() + chunk.len()) as u64 > limit {
                return Err(ReadError::TooBig);
            }
            out.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(out))
    }
}

/// Why a body could not be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// Past the size limit.
    TooBig,
    /// Too slow: fewer than `needed` bytes came in a window of `window`.
    Stalled {
        window: Duration,
        needed: u64,
    },
    Io(reqwest::Error),
}

impl ReadError {
    /// The error in words, for the body of `what`.
    pub fn describe(&self, what: &str) -> String {
        match self {
            ReadError::TooBig => format!("{what} is larger than berth accepts"),
            ReadError::Stalled { window, needed } => format!(
                "{what} stalled: fewer than {needed} bytes arrived in {} (berthd \
                 --registry-stall-timeout and --registry-min-rate set how slow a registry may be)",
                secs(*window)
            ),
            ReadError::Io(e) => format!("reading {what}: {}", chain(e)),
        }
    }
}

/// Watches the pace of one body: it has stalled when a window of `stall`
/// ends with fewer than `min_rate × stall` bytes received in it. Windows
/// are consecutive, so a stall is noticed within two of them.
pub(crate) struct Pace {
    window: Duration,
    needed: u64,
    start: Instant,
    got: u64,
}

impl Pace {
    fn new(t: &RegistryTimeouts) -> Pace {
        let needed = (t.min_rate as u128 * t.stall.as_millis() / 1000).max(1) as u64;
        Pace {
            window: t.stall,
            needed,
            start: Instant::now(),
            got: 0,
        }
    }

    /// Closes the window if it is over: an error when it saw too little.
    fn check(&mut self, now: Instant) -> Result<(), ReadError> {
        if now < self.start + self.window {
            return Ok(());
        }
        if self.got < self.needed {
            return Err(ReadError::Stalled {
                window: self.window,
                needed: self.needed,
            });
        }
        self.start = now;
        self.got = 0;
        Ok(())
    }

    /// The next chunk of `res`, or `None` at its end.
    pub async fn chunk(&mut self, res: &mut reqwest::Response) -> Result<Option<Bytes>, ReadError> {
        loop {
            let deadline = self.start + self.window;
            match tokio::time::timeout_at(deadline, res.chunk()).await {
                Ok(Ok(Some(c))) => {
                    self.got += c.len() as u64;
                    self.check(Instant::now())?;
                    return Ok(Some(c));
                }
                Ok(Ok(None)) => return Ok(None),
                Ok(Err(e)) => return Err(ReadError::Io(e)),
                Err(_) => self.check(Instant::now())?,
            }
        }
    }
}

/// An error and its causes on one line.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let cs = c.to_string();
        if !s.contains(&cs) {
            s.push_str(": ");
            s.push_str(&cs);
        }
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trickle_stalls_and_a_steady_flow_does_not() {
        let t = RegistryTimeouts {
            stall: Duration::from_secs(10),
            min_rate: 100,
            ..Default::default()
        };
        let mut p = Pace::new(&t);
        assert_eq!(p.needed, 1000);
        let t0 = p.start;
        let at = |s: u64| t0 + Duration::from_secs(s);
        // 200 bytes a second for a minute: fine.
        for s in 1..=60 {
            p.got += 200;
            p.check(at(s)).unwrap();
        }
        // Then one byte a second: the window that sees it ends in error.
        let mut failed = None;
        for s in 61..=90 {
            p.got += 1;
            if let Err(e) = p.check(at(s)) {
                assert!(matches!(e, ReadError::Stalled { needed: 1000, .. }));
                assert!(e.describe("blob x").contains("--registry-stall-timeout"));
                failed = Some(s);
                break;
            }
        }
        assert!(failed.is_some_and(|s| s <= 60 + 20), "a trickle must stall");
    }
}
