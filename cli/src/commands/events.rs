//! `berth events`: the daemon's container and image events, live or from
//! its history (`--since`, `--until`), as `docker events` prints them.

use std::io::Write;

use anyhow::{Result, bail};
use clap::Args;
use serde_json::Value;

use crate::client::Client;
use crate::format::template::Template;
use crate::opts::filters_json;

/// Get real time events from the server
#[derive(Args, Debug)]
pub struct EventsCommand {
    /// Show all events created since timestamp (Unix seconds, RFC 3339, or a duration such as 10m)
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,

    /// Stream events until this timestamp
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,

    /// Filter output based on conditions provided (type, event, container, image, label)
    #[arg(short = 'f', long = "filter", value_name = "FILTER")]
    pub filter: Vec<String>,

    /// Format output using a Go template ('{{json .}}' prints each event as JSON)
    #[arg(long, value_name = "TEMPLATE")]
    pub format: Option<String>,
}

/// Docker's `GetTimestamp`: a duration (`10m`, `1h30m`) counts back from
/// now and becomes Unix seconds; anything else is sent as given (Unix
/// seconds, RFC 3339), for the daemon to read.
fn timestamp(value: &str, now: chrono::DateTime<chrono::Utc>) -> String {
    match go_duration(value) {
        Some(d) => {
            let t = now - d;
            format!("{}.{:09}", t.timestamp(), t.timestamp_subsec_nanos())
        }
        None => value.to_string(),
    }
}

fn go_duration(s: &str) -> Option<chrono::Duration> {
    let mut rest = s.trim();
    if rest.is_empty() || rest.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    let mut secs = 0f64;
    while !rest.is_empty() {
        let n = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        if n == 0 {
            return None;
        }
        let v: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        secs += v * match &rest[..u] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[u..];
    }
    chrono::Duration::from_std(std::time::Duration::from_secs_f64(secs)).ok()
}

/// docker events' default line: local time with nanoseconds, type, action,
/// actor, and the attributes sorted by name.
fn line(e: &Value) -> String {
    let mut out = String::new();
    let nanos = e["timeNano"].as_i64().filter(|n| *n != 0);
    let secs = e["time"].as_i64().filter(|n| *n != 0);
    let when = nanos
        .map(chrono::DateTime::from_timestamp_nanos)
        .or_else(|| secs.and_then(|s| chrono::DateTime::from_timestamp(s, 0)));
    if let Some(t) = when {
        // Go's RFC3339NanoFixed: "Z" for UTC, else the offset.
        let local = t.with_timezone(&chrono::Local);
        out.push_str(&local.format("%Y-%m-%dT%H:%M:%S%.9f").to_string());
        if local.offset().local_minus_utc() == 0 {
            out.push_str("Z ");
        } else {
            out.push_str(&local.format("%:z ").to_string());
        }
    }
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    out.push_str(&format!(
        "{} {} {}",
        s(&e["Type"]),
        s(&e["Action"]),
        s(&e["Actor"]["ID"])
    ));
    if let Some(attrs) = e["Actor"]["Attributes"]
        .as_object()
        .filter(|a| !a.is_empty())
    {
        let mut keys: Vec<&String> = attrs.keys().collect();
        keys.sort();
        let parts: Vec<String> = keys
            .iter()
            .map(|k| format!("{k}={}", s(&attrs[*k])))
            .collect();
        out.push_str(&format!(" ({})", parts.join(", ")));
    }
    out
}

impl EventsCommand {
    pub async fn execute(self, client: &Client) -> Result<i32> {
        let filters = filters_json(&self.filter).map_err(anyhow::Error::msg)?;
        let template = self
            .format
            .as_deref()
            .filter(|f| !f.is_empty())
            .map(|f| if f == "json" { "{{json .}}" } else { f })
            .map(Template::parse)
            .transpose()
            .map_err(anyhow::Error::msg)?;
        let now = chrono::Utc::now();
        let since = self.since.as_deref().map(|v| timestamp(v, now));
        let until = self.until.as_deref().map(|v| timestamp(v, now));
        let mut stream = match client
            .events(since.as_deref(), until.as_deref(), filters.as_deref())
            .await
        {
            Ok(s) => s,
            Err(e) => {
                eprintln!("{e}");
                return Ok(1);
            }
        };
        let mut buf: Vec<u8> = Vec::new();
        loop {
            let chunk = stream.chunk().await?;
            let Some(chunk) = chunk else { break };
            buf.extend_from_slice(&chunk);
            let mut it = serde_json::Deserializer::from_slice(&buf).into_iter::<Value>();
            let mut consumed = 0;
            let mut out = std::io::stdout().lock();
            loop {
                match it.next() {
                    Some(Ok(ev)) => {
                        consumed = it.byte_offset();
                        let text = match &template {
                            Some(t) => t.execute(&ev).map_err(anyhow::Error::msg)?,
                            None => line(&ev),
                        };
                        writeln!(out, "{text}")?;
                    }
                    Some(Err(e)) if e.is_eof() => break,
                    Some(Err(e)) => bail!("cannot decode an event from the daemon: {e}"),
                    None => {
                        consumed = it.byte_offset();
                        break;
                    }
                }
            }
            out.flush()?;
            buf.drain(..consumed);
        }
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_become_timestamps() {
        let now = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        assert_eq!(timestamp("10m", now), "1699999400.000000000");
        assert_eq!(timestamp("1700000000", now), "1700000000");
        assert_eq!(
            timestamp("2023-11-14T22:13:20Z", now),
            "2023-11-14T22:13:20Z"
        );
    }

    #[test]
    fn default_line_like_docker() {
        let e = serde_json::json!({
            "Type": "container", "Action": "die",
            "Actor": {"ID": "abc", "Attributes": {"name": "web", "exitCode": "0", "image": "busybox"}},
            "time": 1_700_000_000, "timeNano": 1_700_000_000_123_456_789i64,
        });
        let l = line(&e);
        assert!(l.contains(".123456789"), "{l}");
        assert!(
            l.ends_with("container die abc (exitCode=0, image=busybox, name=web)"),
            "{l}"
        );
    }
}
