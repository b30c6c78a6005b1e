//! Small helpers shared by the runtime's modules: identifiers, digests,
//! timestamps, durable file writes and the rule for user-given names. Nothing here knows about containers or
//! images.

pub mod digest;
pub mod dirfd;
pub mod fdio;
pub mod fsutil;
pub mod names;

pub use digest::Digest;

/// A new random 64-hex-digit identifier, as Docker uses for containers and
/// exec sessions.
pub fn random_id() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS random source is unavailable");
    hex::encode(bytes)
}

/// The current time as Docker formats it (RFC 3339 with nanoseconds, UTC).
pub fn now_rfc3339() -> String {
    rfc3339(chrono::Utc::now())
}

pub fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// Docker's zero time, shown for `StartedAt`/`FinishedAt` of a container that
/// never started or finished.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

pub fn parse_rfc3339(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}
