//! Small helpers shared by the runtime's modules: identifiers, digests,
//! timestamps, durable file writes and the rule for user-given names. Nothing here knows about containers or
//! images.

pub mod digest;
pub mod dirfd;
pub mod fdio;
pub mod fsutil;
pub mod names;
#[doc(hidden)]
pub mod testing;

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

/// A size as daemon options take it: bytes, or a number with a unit `k`,
/// `m`, `g`, `t` (powers of 1024; `KiB`, `kb`, `K` and the like are the
/// same).
pub fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size: use bytes, or a number with k, m, g or t"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        other => return Err(format!("{s:?}: unknown unit {other:?}; use k, m, g or t")),
    };
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// A duration as daemon options take it: `500ms`, `30s`, `2m`, `1h`, or
/// seconds alone. Zero is refused.
pub fn parse_duration(s: &str) -> std::result::Result<std::time::Duration, String> {
    use std::time::Duration;
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration: use 500ms, 30s, 2m or 1h"))?;
    let d = match unit.trim() {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        other => return Err(format!("{s:?}: unknown unit {other:?}; use ms, s, m or h")),
    };
    if d.is_zero() {
        return Err(format!("{s:?}: a timeout must be longer than zero"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("100GiB"), Ok(100 << 30));
        assert_eq!(parse_size("16m"), Ok(16 << 20));
        assert_eq!(parse_size("0"), Ok(0));
        assert!(parse_size("1.5g").is_err());
        assert!(parse_size("99999999999t").is_err());
        assert!(parse_size("10x").is_err());
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("1d").is_err());
    }
}
