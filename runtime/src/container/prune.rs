//! `POST /containers/prune` and the container half of `GET /system/df`:
//! what a container's writable layer holds on disk (`SizeRw`: a native
//! container's overlay upper directory, a Wasm container's root
//! directory), and removing the containers that are not running.
//!
//! Also the `filters` of the prune endpoints (`until`, `label`, `label!`,
//! and `dangling` for images), shared with image pruning in the engine.

use super::{Containers, Status};
use crate::error::{Error, Result, ResultExt};
use crate::util;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;

/// `filters` of the prune endpoints.
#[derive(Debug, Clone, Default)]
pub struct PruneFilters {
    /// Only objects created before this time.
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    /// `label=KEY` or `label=KEY=VALUE`: all must match.
    pub label: Vec<String>,
    /// `label!=KEY` or `label!=KEY=VALUE`: none may match.
    pub label_not: Vec<String>,
    /// Images only: `dangling=true|false`.
    pub dangling: Option<bool>,
}

impl PruneFilters {
    /// Parses Docker's filter JSON. `dangling` is accepted only when
    /// `images` is true (image prune).
    pub fn parse(json: &str, images: bool) -> Result<PruneFilters> {
        let mut f = PruneFilters::default();
        if json.trim().is_empty() {
            return Ok(f);
        }
        for (key, values) in super::filter_pairs(json)? {
            match key.as_str() {
                "until" => {
                    if values.len() > 1 {
                        return Err(Error::invalid("filters: more than one value for 'until'"));
                    }
                    if let Some(v) = values.first() {
                        f.until = Some(parse_timestamp(v, chrono::Utc::now())?);
                    }
                }
                "label" => f.label = values,
                "label!" => f.label_not = values,
                "dangling" if images => {
                    let v = values.first().map(String::as_str).unwrap_or("true");
                    f.dangling = Some(match v.to_ascii_lowercase().as_str() {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => {
                            return Err(Error::invalid(format!(
                                "Invalid filter 'dangling={v}': use true or false"
                            )));
                        }
                    });
                }
                other => {
                    return Err(Error::invalid(format!(
                        "invalid filter '{other}': berth prunes by {}",
                        if images {
                            "dangling, until, label and label!"
                        } else {
                            "until, label and label!"
                        }
                    )));
                }
            }
        }
        Ok(f)
    }

    /// Whether an object with these labels, created at `created`, passes.
    pub fn matches(&self, created: &str, labels: &BTreeMap<String, String>) -> bool {
        if let Some(until) = self.until {
            match util::parse_rfc3339(created) {
                Some(t) if t < until => {}
                _ => return false,
            }
        }
        let has = |l: &str| match l.split_once('=') {
            Some((k, v)) => labels.get(k).map(String::as_str) == Some(v),
            None => labels.contains_key(l),
        };
        self.label.iter().all(|l| has(l)) && !self.label_not.iter().any(|l| has(l))
    }
}

/// Docker's timestamps in filters and `since`/`until`: Unix seconds with an
/// optional fraction, RFC 3339 (with or without a zone), a date, or a Go
/// duration (`10m`, `1h30m`) counted back from `now`.
pub fn parse_timestamp(
    s: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<chrono::DateTime<chrono::Utc>> {
    let s = s.trim();
    let bad = || {
        Error::invalid(format!(
            "invalid timestamp {s:?}: give Unix seconds, an RFC 3339 time or a duration such as 10m"
        ))
    };
    if s.is_empty() {
        return Err(bad());
    }
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    let unsigned = secs.strip_prefix('-').unwrap_or(secs);
    if !unsigned.is_empty() && digits(unsigned) && digits(frac) {
        let secs: i64 = secs.parse().map_err(|_| bad())?;
        let frac = &frac[..frac.len().min(9)];
        let nanos: u32 = format!("{frac:0<9}").parse().map_err(|_| bad())?;
        return chrono::DateTime::from_timestamp(secs, nanos).ok_or_else(bad);
    }
    if let Some(t) = util::parse_rfc3339(s) {
        return Ok(t);
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, fmt) {
            return Ok(t.and_utc());
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).ok_or_else(bad)?.and_utc());
    }
    let d = parse_go_duration(s).ok_or_else(bad)?;
    Ok(now - d)
}

/// A Go duration: `300ms`, `1.5h`, `2h45m`.
fn parse_go_duration(s: &str) -> Option<chrono::Duration> {
    let mut rest = s;
    let mut total = 0f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if n == 0 {
            return None;
        }
        let value: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..u] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[u..];
        total += value * unit;
    }
    chrono::Duration::from_std(std::time::Duration::from_secs_f64(total)).ok()
}

/// Bytes of the files under `dir` (regular files, symlinks and the like;
/// hard links once), as Docker's `SizeRw` counts them. Missing is 0.
pub fn dir_size(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut seen = HashSet::new();
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(md) = e.path().symlink_metadata() else {
                continue;
            };
            if md.is_dir() {
                stack.push(e.path());
                continue;
            }
            if md.nlink() > 1 && !seen.insert((md.dev(), md.ino())) {
                continue;
            }
            total += md.len();
        }
    }
    total
}

/// What `POST /containers/prune` removed.
#[derive(Debug, Clone, Default)]
pub struct ContainerPruneReport {
    pub deleted: Vec<String>,
    pub space_reclaimed: u64,
}

impl Containers {
    /// The bytes in a container's writable layer: a native container's
    /// overlay upper directory, a Wasm container's root directory. Reads
    /// the disk: call off the async threads.
    pub fn size_rw(&self, id: &str) -> u64 {
        let dir = self.dir.join(id);
        let Ok(c) = self.get(id) else { return 0 };
        if c.record().workload.native().is_some() {
            dir_size(&dir.join("upper"))
        } else {
            dir_size(&dir.join("rootfs"))
        }
    }

    /// `SizeRw` and `SizeRootFs` (the writable layer plus the image) of a
    /// container. Reads the disk: call off the async threads.
    pub fn sizes(&self, id: &str) -> Result<(u64, u64)> {
        let c = self.get(id)?;
        let rec = c.record();
        let rw = self.size_rw(&c.id);
        let image = self
            .images
            .resolve(&rec.image_id.to_string())
            .map(|i| i.size)
            .unwrap_or(0);
        Ok((rw, rw + image))
    }

    /// `POST /containers/prune`: removes every container that is not
    /// running (created, exited or dead) and passes the filters.
    pub async fn prune(&self, filters: &PruneFilters) -> Result<ContainerPruneReport> {
        let candidates: Vec<(String, bool)> = self
            .registry
            .read()
            .unwrap()
            .by_id
            .values()
            .filter_map(|c| {
                let inner = c.inner.lock().unwrap();
                let r = &inner.record;
                let stopped = matches!(
                    r.state.status,
                    Status::Created | Status::Exited | Status::Dead
                );
                (stopped && filters.matches(&r.created, &r.config.labels))
                    .then(|| (r.id.clone(), r.workload.native().is_some()))
            })
            .collect();
        let mut report = ContainerPruneReport::default();
        for (id, native) in candidates {
            let dir = self.dir.join(&id);
            let size = tokio::task::spawn_blocking(move || {
                dir_size(&dir.join(if native { "upper" } else { "rootfs" }))
            })
            .await
            .ctx("measuring a container")?;
            match self.remove(&id, false).await {
                Ok(()) => {
                    report.deleted.push(id);
                    report.space_reclaimed += size;
                }
                // Started or removed meanwhile: not ours to prune.
                Err(e) => tracing::debug!(container = %id, error = %e, "not pruned"),
            }
        }
        self.events
            .publish_prune("container", report.space_reclaimed);
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_like_docker() {
        let now = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let t = |s: &str| parse_timestamp(s, now).unwrap().timestamp();
        assert_eq!(t("1600000000"), 1_600_000_000);
        assert_eq!(t("1600000000.5"), 1_600_000_000);
        assert_eq!(
            parse_timestamp("1600000000.5", now)
                .unwrap()
                .timestamp_subsec_millis(),
            500
        );
        assert_eq!(t("10m"), 1_700_000_000 - 600);
        assert_eq!(t("1h30m"), 1_700_000_000 - 5400);
        assert_eq!(t("2023-11-14T22:13:20Z"), 1_700_000_000);
        assert_eq!(t("2023-11-14"), 1_699_920_000);
        assert!(parse_timestamp("yesterday", now).is_err());
    }

    #[test]
    fn prune_filters() {
        let f = PruneFilters::parse(r#"{"label":["a"],"label!":["b=1"]}"#, false).unwrap();
        let labels = |p: &[(&str, &str)]| -> BTreeMap<String, String> {
            p.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert!(f.matches("2020-01-01T00:00:00Z", &labels(&[("a", "x")])));
        assert!(!f.matches("2020-01-01T00:00:00Z", &labels(&[("a", "x"), ("b", "1")])));
        assert!(!f.matches("2020-01-01T00:00:00Z", &labels(&[])));
        let f = PruneFilters::parse(r#"{"until":["2021-01-01T00:00:00Z"]}"#, false).unwrap();
        assert!(f.matches("2020-01-01T00:00:00Z", &labels(&[])));
        assert!(!f.matches("2022-01-01T00:00:00Z", &labels(&[])));
        assert!(PruneFilters::parse(r#"{"dangling":["true"]}"#, false).is_err());
        assert_eq!(
            PruneFilters::parse(r#"{"dangling":["false"]}"#, true)
                .unwrap()
                .dangling,
            Some(false)
        );
    }

    #[test]
    fn dir_size_counts_files_once() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a"), vec![0u8; 1000]).unwrap();
        std::fs::create_dir(d.path().join("sub")).unwrap();
        std::fs::write(d.path().join("sub/b"), vec![0u8; 24]).unwrap();
        std::fs::hard_link(d.path().join("a"), d.path().join("sub/a2")).unwrap();
        assert_eq!(dir_size(d.path()), 1024);
        assert_eq!(dir_size(&d.path().join("missing")), 0);
    }
}
