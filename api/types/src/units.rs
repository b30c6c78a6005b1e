//! Docker's unit conventions (github.com/docker/go-units): human durations
//! and decimal and binary sizes, shared by berthd's `Status` strings and the
//! CLI's tables.

/// Go's `fmt.Sprintf("%.*g", prec, v)`: `prec` significant digits, trailing
/// zeros removed, exponent form (`1e+03`) when the exponent is < -4 or >= prec.
pub fn go_g(v: f64, prec: usize) -> String {
    let prec = prec.max(1);
    if v == 0.0 {
        return "0".to_string();
    }
    if !v.is_finite() {
        return if v.is_nan() {
            "NaN".into()
        } else if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let sci = format!("{:.*e}", prec - 1, v);
    let (mantissa, exp) = sci.split_once('e').expect("{:e} has an exponent");
    let exp: i32 = exp.parse().expect("{:e} exponent is an integer");
    if exp < -4 || exp >= prec as i32 {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim_fraction(mantissa), exp.abs())
    } else {
        let decimals = (prec as i32 - 1 - exp).max(0) as usize;
        trim_fraction(&format!("{v:.decimals$}")).to_string()
    }
}

fn trim_fraction(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

const DECIMAL: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
const BINARY: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];

fn scaled(size: f64, base: f64, units: &[&'static str]) -> (f64, &'static str) {
    let mut size = size;
    let mut i = 0;
    while size >= base && i < units.len() - 1 {
        size /= base;
        i += 1;
    }
    (size, units[i])
}

/// go-units `HumanSizeWithPrecision(size, precision)`: decimal units
/// (`1.23MB`, `512B`); `docker images` uses precision 3, `HumanSize` 4.
pub fn human_size(bytes: i64, precision: usize) -> String {
    let (v, unit) = scaled(bytes as f64, 1000.0, &DECIMAL);
    format!("{}{unit}", go_g(v, precision))
}

/// go-units `BytesSize`: `%.4g` over binary units (`31.06GiB`).
pub fn bytes_size(bytes: i64) -> String {
    let (v, unit) = scaled(bytes as f64, 1024.0, &BINARY);
    format!("{}{unit}", go_g(v, 4))
}

/// go-units `HumanDuration` for a number of seconds (Docker's "CREATED"
/// column appends " ago").
pub fn human_duration(secs: f64) -> String {
    let seconds = secs as i64;
    if seconds < 1 {
        return "Less than a second".to_string();
    }
    if seconds == 1 {
        return "1 second".to_string();
    }
    if seconds < 60 {
        return format!("{seconds} seconds");
    }
    let minutes = (secs / 60.0) as i64;
    if minutes == 1 {
        return "About a minute".to_string();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    let hours = (secs / 3600.0 + 0.5) as i64;
    if hours == 1 {
        return "About an hour".to_string();
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
    format!("{} years", (secs / 3600.0) as i64 / 24 / 365)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(human_duration(0.3), "Less than a second");
        assert_eq!(human_duration(1.0), "1 second");
        assert_eq!(human_duration(45.0), "45 seconds");
        assert_eq!(human_duration(90.0), "About a minute");
        assert_eq!(human_duration(600.0), "10 minutes");
        assert_eq!(human_duration(3600.0), "About an hour");
        assert_eq!(human_duration(5.0 * 3600.0), "5 hours");
        assert_eq!(human_duration(3.0 * 86400.0), "3 days");
        assert_eq!(human_duration(20.0 * 86400.0), "2 weeks");
    }

    #[test]
    fn sizes() {
        assert_eq!(human_size(512, 3), "512B");
        assert_eq!(human_size(1234, 3), "1.23kB");
        assert_eq!(human_size(1234, 4), "1.234kB");
        assert_eq!(human_size(59598, 3), "59.6kB");
        assert_eq!(human_size(0, 3), "0B");
        assert_eq!(bytes_size(33_350_000_000), "31.06GiB");
        assert_eq!(go_g(1000.0, 3), "1e+03");
    }
}
