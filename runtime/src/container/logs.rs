//! Container output: log reading, and the writer the executors use
//! ([`crate::executor::log`], re-exported here).
//!
//! The log is Docker's json-file format, one JSON object per line:
//! `{"log":"hello\n","stream":"stdout","time":"2026-11-27T17:00:00.123456789Z"}`.

use crate::error::{Result, ResultExt};
use crate::util;
use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::Path;

pub use crate::executor::log::{Entry, Live, LogSink, MAX_HELD, Progress};

/// Which log entries to read.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub stdout: bool,
    pub stderr: bool,
    /// Only entries at or after this time.
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// Only entries before this time.
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    /// Only the last N entries (of those that pass the other filters).
    pub tail: Option<usize>,
}

impl Filter {
    fn wants(&self, e: &Entry) -> bool {
        let stream_ok = match e.stream.as_str() {
            "stdout" => self.stdout,
            "stderr" => self.stderr,
            _ => false,
        };
        if !stream_ok {
            return false;
        }
        if self.since.is_none() && self.until.is_none() {
            return true;
        }
        let Some(t) = util::parse_rfc3339(&e.time) else {
            return false;
        };
        self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t < u)
    }
}

/// Reads entries from byte `offset` up to `end`, returning them and the
/// offset after the last complete line read.
pub fn read_range(
    path: &Path,
    offset: u64,
    end: u64,
    filter: &Filter,
) -> Result<(Vec<Entry>, u64)> {
    let mut out = Vec::new();
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((out, offset)),
        Err(e) => return Err(e).ctx(format!("opening log {}", path.display())),
    };
    let mut reader = BufReader::new(file);
    reader.seek(SeekFrom::Start(offset)).ctx("seeking in log")?;
    let mut pos = offset;
    let mut line = Vec::new();
    while pos < end {
        line.clear();
        let n = reader.read_until(b'\n', &mut line).ctx("reading log")?;
        if n == 0 || line.last() != Some(&b'\n') {
            break;
        }
        pos += n as u64;
        match serde_json::from_slice::<Entry>(&line) {
            Ok(e) if filter.wants(&e) => out.push(e),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "skipping a malformed log line")
            }
        }
    }
    if let Some(n) = filter.tail
        && out.len() > n
    {
        out.drain(..out.len() - n);
    }
    Ok((out, pos))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::OutputSink;
    use berth_api_types::stream::StreamKind;

    fn all() -> Filter {
        Filter {
            stdout: true,
            stderr: true,
            ..Default::default()
        }
    }

    #[test]
    fn lines_partials_and_tail() {
        let dir = tempfile::tempdir().unwrap();
        let sink = LogSink::open(dir.path().join("log.json")).unwrap();
        sink.begin().unwrap();
        sink.write(StreamKind::Stdout, b"one\ntw");
        sink.write(StreamKind::Stderr, b"err\n");
        sink.write(StreamKind::Stdout, b"o\nthree");
        sink.end();
        let (entries, end) = read_range(sink.path(), 0, u64::MAX, &all()).unwrap();
        let logs: Vec<_> = entries
            .iter()
            .map(|e| (e.stream.as_str(), e.log.as_str()))
            .collect();
        assert_eq!(
            logs,
            vec![
                ("stdout", "one\n"),
                ("stderr", "err\n"),
                ("stdout", "two\n"),
                ("stdout", "three")
            ]
        );
        assert_eq!(end, std::fs::metadata(sink.path()).unwrap().len());
        let only_err = Filter {
            stderr: true,
            ..Default::default()
        };
        assert_eq!(
            read_range(sink.path(), 0, u64::MAX, &only_err)
                .unwrap()
                .0
                .len(),
            1
        );
        let tail = Filter {
            tail: Some(2),
            ..all()
        };
        let (t, _) = read_range(sink.path(), 0, u64::MAX, &tail).unwrap();
        assert_eq!(t[0].log, "two\n");
    }

    #[test]
    fn many_sinks_hold_a_bounded_number_of_descriptors() {
        let dir = tempfile::tempdir().unwrap();
        let sinks: Vec<LogSink> = (0..MAX_HELD + 20)
            .map(|i| {
                let s = LogSink::open(dir.path().join(format!("{i}.json"))).unwrap();
                s.begin().unwrap();
                s.write(StreamKind::Stdout, b"one\n");
                s
            })
            .collect();
        let holding = sinks.iter().filter(|s| s.holds_file()).count();
        assert!(holding <= MAX_HELD, "{holding} sinks hold their log open");
        // Every sink logged its line, held or not, and logs more.
        for s in &sinks {
            s.write(StreamKind::Stderr, b"two\n");
            s.end();
            let (entries, _) = read_range(s.path(), 0, u64::MAX, &all()).unwrap();
            let logs: Vec<_> = entries.iter().map(|e| e.log.as_str()).collect();
            assert_eq!(logs, ["one\n", "two\n"], "{}", s.path().display());
            assert!(!s.holds_file());
        }
        // Output after the end is not logged.
        sinks[0].write(StreamKind::Stdout, b"late\n");
        assert_eq!(
            read_range(sinks[0].path(), 0, u64::MAX, &all())
                .unwrap()
                .0
                .len(),
            2
        );
    }

    #[test]
    fn live_subscribers_get_raw_bytes_then_end() {
        let dir = tempfile::tempdir().unwrap();
        let sink = LogSink::open(dir.path().join("log.json")).unwrap();
        sink.begin().unwrap();
        let mut rx = sink.subscribe();
        sink.write(StreamKind::Stdout, b"partial");
        sink.end();
        assert!(
            matches!(rx.try_recv().unwrap(), Live::Data(StreamKind::Stdout, b) if &b[..] == b"partial")
        );
        assert!(matches!(rx.try_recv().unwrap(), Live::End));
        assert!(!sink.progress().borrow().open);
    }
}
