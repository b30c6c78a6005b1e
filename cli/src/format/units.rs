//! Docker's unit conventions for the CLI: "2 seconds ago" and `--memory`
//! style byte counts. Sizes and durations come from the shared
//! `berth_api_types::units`.

pub use berth_api_types::units::{bytes_size, human_duration};

/// `docker images` shows sizes with three significant digits.
pub fn human_size(bytes: i64) -> String {
    berth_api_types::units::human_size(bytes, 3)
}

/// "2 seconds ago" for a unix timestamp, as `docker ps` / `docker images`
/// show CREATED; `N/A` for a zero timestamp.
pub fn ago(unix_secs: i64, now: chrono::DateTime<chrono::Utc>) -> String {
    if unix_secs <= 0 {
        return "N/A".to_string();
    }
    let now_ms = now.timestamp_millis();
    let secs = (now_ms - unix_secs * 1000).max(0) as f64 / 1000.0;
    format!("{} ago", human_duration(secs))
}

/// go-units `RAMInBytes`: `64m`, `1g`, `512k`, `1.5GiB`, `100`, `64 MB`;
/// binary multiples (k = 1024), as `docker run -m` takes them.
pub fn parse_ram(s: &str) -> Result<i64, String> {
    let invalid = || format!("invalid size: '{s}'");
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
        i += 1;
    }
    let (number, mut rest) = s.split_at(i);
    if number.is_empty() || !number.as_bytes()[0].is_ascii_digit() {
        return Err(invalid());
    }
    let value: f64 = number.parse().map_err(|_| invalid())?;
    rest = rest.strip_prefix(' ').unwrap_or(rest);
    let mut mult: i64 = 1;
    if let Some(c) = rest.chars().next() {
        let m = match c.to_ascii_lowercase() {
            'k' => Some(1i64 << 10),
            'm' => Some(1 << 20),
            'g' => Some(1 << 30),
            't' => Some(1 << 40),
            'p' => Some(1 << 50),
            _ => None,
        };
        if let Some(m) = m {
            mult = m;
            rest = &rest[1..];
        }
    }
    rest = rest
        .strip_prefix('i')
        .or_else(|| rest.strip_prefix('I'))
        .unwrap_or(rest);
    rest = rest
        .strip_prefix('b')
        .or_else(|| rest.strip_prefix('B'))
        .unwrap_or(rest);
    if !rest.is_empty() {
        return Err(invalid());
    }
    Ok((value * mult as f64) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api_types::units::go_g;

    #[test]
    fn go_g_matches_go() {
        assert_eq!(go_g(1.0, 3), "1");
        assert_eq!(go_g(1.5, 3), "1.5");
        assert_eq!(go_g(1.23456, 3), "1.23");
        assert_eq!(go_g(12.0, 3), "12");
        assert_eq!(go_g(123.4, 3), "123");
        assert_eq!(go_g(999.5, 3), "1e+03");
        assert_eq!(go_g(0.0001234, 3), "0.000123");
        assert_eq!(go_g(0.00001234, 3), "1.23e-05");
        assert_eq!(go_g(31.0625, 4), "31.06");
    }

    #[test]
    fn human_sizes_are_decimal_with_three_digits() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(1000), "1kB");
        assert_eq!(human_size(1234), "1.23kB");
        assert_eq!(human_size(1_234_567), "1.23MB");
        assert_eq!(human_size(7_800_000), "7.8MB");
        assert_eq!(human_size(77_800_000), "77.8MB");
        assert_eq!(human_size(1_000_000_000), "1GB");
        assert_eq!(human_size(123_456_789_012), "123GB");
    }

    #[test]
    fn bytes_sizes_are_binary_with_four_digits() {
        assert_eq!(bytes_size(1024), "1KiB");
        assert_eq!(bytes_size(33_352_704_000), "31.06GiB");
        assert_eq!(bytes_size(512), "512B");
    }

    #[test]
    fn human_durations_match_go_units() {
        assert_eq!(human_duration(0.4), "Less than a second");
        assert_eq!(human_duration(1.0), "1 second");
        assert_eq!(human_duration(2.0), "2 seconds");
        assert_eq!(human_duration(59.9), "59 seconds");
        assert_eq!(human_duration(60.0), "About a minute");
        assert_eq!(human_duration(119.0), "About a minute");
        assert_eq!(human_duration(120.0), "2 minutes");
        assert_eq!(human_duration(59.0 * 60.0), "59 minutes");
        assert_eq!(human_duration(3600.0), "About an hour");
        assert_eq!(human_duration(1.5 * 3600.0), "2 hours");
        assert_eq!(human_duration(47.0 * 3600.0), "47 hours");
        assert_eq!(human_duration(48.0 * 3600.0), "2 days");
        assert_eq!(human_duration(14.0 * 86400.0), "2 weeks");
        assert_eq!(human_duration(60.0 * 86400.0), "2 months");
        assert_eq!(human_duration(800.0 * 86400.0), "2 years");
    }

    #[test]
    fn ago_uses_now() {
        let now = chrono::DateTime::from_timestamp(1_000_100, 0).unwrap();
        assert_eq!(ago(1_000_098, now), "2 seconds ago");
        assert_eq!(ago(0, now), "N/A");
    }

    #[test]
    fn ram_sizes_use_binary_units() {
        assert_eq!(parse_ram("64m"), Ok(64 << 20));
        assert_eq!(parse_ram("64M"), Ok(64 << 20));
        assert_eq!(parse_ram("1g"), Ok(1 << 30));
        assert_eq!(parse_ram("512k"), Ok(512 << 10));
        assert_eq!(parse_ram("1048576"), Ok(1_048_576));
        assert_eq!(parse_ram("100b"), Ok(100));
        assert_eq!(parse_ram("1.5g"), Ok(3 << 29));
        assert_eq!(parse_ram("64MiB"), Ok(64 << 20));
        assert_eq!(parse_ram("64mb"), Ok(64 << 20));
        assert_eq!(parse_ram("64 m"), Ok(64 << 20));
        assert_eq!(parse_ram("lots"), Err("invalid size: 'lots'".into()));
        assert!(parse_ram("").is_err());
        assert!(parse_ram("-1m").is_err());
        assert!(parse_ram("12x").is_err());
        assert!(parse_ram("1.2.3m").is_err());
        assert!(parse_ram(".5m").is_err());
    }
}
