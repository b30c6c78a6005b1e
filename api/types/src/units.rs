//! Human-readable durations and sizes, as Docker prints them (go-units'
//! `HumanDuration` and `HumanSize`), shared by berthd's `Status` strings and
//! the CLI's tables.

use std::time::Duration;

/// `HumanDuration`: "Less than a second", "5 seconds", "About a minute",
/// "3 hours", "2 weeks", ...
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    let s = d.as_secs();
    if secs < 1.0 {
        return "Less than a second".into();
    }
    if s == 1 {
        return "1 second".into();
    }
    if s < 60 {
        return format!("{s} seconds");
    }
    let minutes = s / 60;
    if minutes == 1 {
        return "About a minute".into();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    let hours = (secs / 3600.0).round() as u64;
    if hours == 1 {
        return "About an hour".into();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", hours / 24 / 365)
}

/// `HumanSize`: decimal units with 3 significant digits ("1.23MB", "512B").
pub fn human_size(bytes: f64) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut size = bytes;
    let mut i = 0;
    while size >= 1000.0 && i < UNITS.len() - 1 {
        size /= 1000.0;
        i += 1;
    }
    format!("{}{}", format_significant(size, 4), UNITS[i])
}

/// Go's `%.4g`: at most `digits` significant digits, no trailing zeros.
fn format_significant(v: f64, digits: usize) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let magnitude = v.abs().log10().floor() as i32;
    let decimals = (digits as i32 - 1 - magnitude).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let d = |s| human_duration(Duration::from_secs(s));
        assert_eq!(human_duration(Duration::from_millis(300)), "Less than a second");
        assert_eq!(d(1), "1 second");
        assert_eq!(d(45), "45 seconds");
        assert_eq!(d(90), "About a minute");
        assert_eq!(d(600), "10 minutes");
        assert_eq!(d(3600), "About an hour");
        assert_eq!(d(5 * 3600), "5 hours");
        assert_eq!(d(3 * 86400), "3 days");
        assert_eq!(d(20 * 86400), "2 weeks");
    }

    #[test]
    fn sizes() {
        assert_eq!(human_size(512.0), "512B");
        assert_eq!(human_size(1234.0), "1.234kB");
        assert_eq!(human_size(59598.0), "59.6kB");
        assert_eq!(human_size(4_800_000.0), "4.8MB");
        assert_eq!(human_size(0.0), "0B");
    }
}
