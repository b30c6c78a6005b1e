//! `berth logs`: fetch a container's output (demultiplexed unless it has a
//! TTY).

use anyhow::{Context, Result, bail};
use clap::Args;
use serde::Deserialize;

use crate::client::{Client, LogsOptions};
use crate::output::OutputWriter;

/// Fetch the logs of a container
#[derive(Args, Debug)]
pub struct LogsCommand {
    /// Follow log output
    #[arg(short = 'f', long)]
    pub follow: bool,

    /// Number of lines to show from the end of the logs ("all" for all)
    #[arg(short = 'n', long, value_name = "N|all", default_value = "all")]
    pub tail: String,

    /// Show timestamps
    #[arg(short = 't', long)]
    pub timestamps: bool,

    /// Show logs since a timestamp (2013-01-02T13:23:37Z) or relative (42m)
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,

    /// Show logs before a timestamp (2013-01-02T13:23:37Z) or relative (42m)
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,

    /// The container
    pub container: String,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct TtyOnly {
    config: TtyConfig,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct TtyConfig {
    tty: bool,
}

impl LogsCommand {
    pub async fn execute(self, client: &Client) -> Result<i32> {
        if self.tail != "all" && self.tail.parse::<i64>().is_err() {
            bail!(
                "invalid value for --tail: {:?} (a number or \"all\")",
                self.tail
            );
        }
        let now = chrono::Utc::now();
        let since = self
            .since
            .as_deref()
            .map(|s| timestamp(s, now))
            .transpose()
            .context("invalid value for --since")?;
        let until = self
            .until
            .as_deref()
            .map(|s| timestamp(s, now))
            .transpose()
            .context("invalid value for --until")?;
        let raw = client.container_inspect_raw(&self.container).await?;
        let tty = serde_json::from_slice::<TtyOnly>(&raw)
            .map(|t| t.config.tty)
            .unwrap_or(false);
        let opts = LogsOptions {
            follow: self.follow,
            timestamps: self.timestamps,
            tail: Some(self.tail),
            since,
            until,
        };
        let mut stream = client.container_logs(&self.container, &opts).await?;
        let mut out = OutputWriter::new(tty);
        while let Some(chunk) = stream.chunk().await.context("reading logs")? {
            out.write(&chunk)?;
        }
        out.finish()?;
        Ok(0)
    }
}

/// Docker's `timetypes.GetTimestamp`: a Go duration (`10m`, `1h30m`) counts
/// back from now; an RFC 3339 time or a local `2006-01-02[T15[:04[:05]]]`
/// becomes `secs.nanos`; a unix timestamp passes through.
pub fn timestamp(value: &str, now: chrono::DateTime<chrono::Utc>) -> Result<String> {
    if value != "0"
        && let Some(d) = go_duration(value)
    {
        let t = now - d;
        return Ok(t.timestamp().to_string());
    }
    let fmt = |t: chrono::DateTime<chrono::FixedOffset>| {
        format!("{}.{:09}", t.timestamp(), t.timestamp_subsec_nanos())
    };
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(value) {
        return Ok(fmt(t));
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%dT%H",
        "%Y-%m-%d",
    ] {
        let parsed = if f == "%Y-%m-%d" {
            chrono::NaiveDate::parse_from_str(value, f)
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        } else if f == "%Y-%m-%dT%H" {
            chrono::NaiveDateTime::parse_from_str(&format!("{value}:00"), "%Y-%m-%dT%H:%M").ok()
        } else {
            chrono::NaiveDateTime::parse_from_str(value, f).ok()
        };
        if let Some(naive) = parsed
            && let Some(local) = naive.and_local_timezone(chrono::Local).earliest()
        {
            return Ok(fmt(local.fixed_offset()));
        }
    }
    if !value.contains('-') {
        let (secs, frac) = value.split_once('.').unwrap_or((value, "0"));
        if !secs.is_empty()
            && secs.bytes().all(|b| b.is_ascii_digit())
            && frac.bytes().all(|b| b.is_ascii_digit())
        {
            return Ok(value.to_string());
        }
    }
    bail!("failed to parse value as time or duration: {value:?}")
}

/// Go's `time.ParseDuration`: `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`, units ns,
/// us, µs, ms, s, m, h.
fn go_duration(s: &str) -> Option<chrono::Duration> {
    let (neg, mut rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if rest.is_empty() {
        return None;
    }
    let mut nanos: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        nanos += n * mult;
    }
    let d = chrono::Duration::nanoseconds(nanos as i64);
    Some(if neg { -d } else { d })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(go_duration("10m"), Some(chrono::Duration::minutes(10)));
        assert_eq!(go_duration("1h30m"), Some(chrono::Duration::minutes(90)));
        assert_eq!(
            go_duration("1.5s"),
            Some(chrono::Duration::milliseconds(1500))
        );
        assert_eq!(go_duration("-2s"), Some(chrono::Duration::seconds(-2)));
        assert_eq!(go_duration("10"), None);
        assert_eq!(go_duration("m"), None);
        assert_eq!(go_duration("10x"), None);
    }

    #[test]
    fn timestamps_like_docker() {
        let now = chrono::DateTime::from_timestamp(1_000_000, 0).unwrap();
        assert_eq!(timestamp("10s", now).unwrap(), "999990");
        assert_eq!(
            timestamp("2013-01-02T13:23:37Z", now).unwrap(),
            "1357133017.000000000"
        );
        assert_eq!(
            timestamp("2013-01-02T13:23:37.5+01:00", now).unwrap(),
            "1357129417.500000000"
        );
        assert_eq!(timestamp("1357133017", now).unwrap(), "1357133017");
        assert_eq!(timestamp("1357133017.25", now).unwrap(), "1357133017.25");
        assert_eq!(timestamp("0", now).unwrap(), "0");
        assert!(timestamp("2013-01-02", now).is_ok());
        assert!(timestamp("yesterday", now).is_err());
        assert!(timestamp("2013-13-45", now).is_err());
    }
}
