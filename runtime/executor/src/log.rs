//! The json-file log writer: a container's output as Docker's json-file
//! log, one JSON object per line:
//! `{"log":"hello\n","stream":"stdout","time":"2026-11-27T17:00:00.123456789Z"}`.
//! Output is split at newlines (a partial line is held until its newline, the
//! end of the run, or 16 KiB), as Docker's log copier does. Attached clients
//! get the raw bytes as they are written, over a broadcast channel that ends
//! with [`Live::End`] when the process exits.
//!
//! The log file is held open between writes by at most [`MAX_HELD`] sinks
//! of the process at a time; the others open it for each batch of output
//! (one write of the process) and close it after. A daemon with thousands
//! of running containers, most of them idle, so holds a bounded number of
//! log descriptors, while the shim of a native container (one sink) keeps
//! its log open.
//!
//! The executors write logs (the shim of a native container, berthd for
//! Wasm); the container layer reads them (`container::logs`).

use super::OutputSink;
use crate::error::{Result, ResultExt};
use crate::util;
use berth_api_types::stream::StreamKind;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::{broadcast, watch};

/// Longest partial line held back before it is logged anyway.
const MAX_PARTIAL: usize = 16 * 1024;

/// Log files this process holds open between writes, over all its sinks.
pub const MAX_HELD: usize = 128;
static HELD: AtomicUsize = AtomicUsize::new(0);

/// Takes one of the [`MAX_HELD`] places, if one is free.
fn take_held() -> bool {
    HELD.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
        (n < MAX_HELD).then_some(n + 1)
    })
    .is_ok()
}

fn give_held() {
    HELD.fetch_sub(1, Ordering::AcqRel);
}

/// What attached clients receive.
#[derive(Debug, Clone)]
pub enum Live {
    Data(StreamKind, Bytes),
    /// The process exited and all its output was sent.
    End,
}

/// How far the log file has been written, and whether more may come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub len: u64,
    pub open: bool,
}

/// One line of the log file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    pub log: String,
    pub stream: String,
    pub time: String,
}

pub struct LogSink {
    path: PathBuf,
    inner: Mutex<Inner>,
    live: broadcast::Sender<Live>,
    progress: watch::Sender<Progress>,
}

struct Inner {
    /// The log, while this sink holds one of the [`MAX_HELD`] places.
    file: Option<File>,
    /// Between `begin` and `end`: output is logged.
    active: bool,
    /// Held partial lines for stdout and stderr.
    partial: [Vec<u8>; 2],
    len: u64,
}

impl LogSink {
    /// Opens (creating) the log at `path` for appending.
    pub fn open(path: PathBuf) -> Result<LogSink> {
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let (live, _) = broadcast::channel(1024);
        let (progress, _) = watch::channel(Progress { len, open: false });
        Ok(LogSink {
            path,
            inner: Mutex::new(Inner {
                file: None,
                active: false,
                partial: [Vec::new(), Vec::new()],
                len,
            }),
            live,
            progress,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this sink holds its log open between writes (one of the
    /// [`MAX_HELD`] places).
    pub fn holds_file(&self) -> bool {
        self.inner.lock().unwrap().file.is_some()
    }

    /// A process is starting: output may come. Creates the log, so that
    /// a log that cannot be written fails the start.
    pub fn begin(&self) -> Result<()> {
        let mut inner = self.inner.lock().unwrap();
        if inner.file.is_none() {
            let file = self.open_file()?;
            if take_held() {
                inner.file = Some(file);
            }
        }
        inner.active = true;
        let len = inner.len;
        self.progress.send_replace(Progress { len, open: true });
        Ok(())
    }

    /// The process exited: log held partial lines, tell followers and
    /// attached clients that this run's output is complete.
    pub fn end(&self) {
        let mut inner = self.inner.lock().unwrap();
        for (i, kind) in [StreamKind::Stdout, StreamKind::Stderr]
            .into_iter()
            .enumerate()
        {
            let rest = std::mem::take(&mut inner.partial[i]);
            if !rest.is_empty() {
                let mut batch = Vec::new();
                Self::entry(&mut batch, kind, &rest);
                self.append(&mut inner, &batch);
            }
        }
        if inner.file.take().is_some() {
            give_held();
        }
        inner.active = false;
        let len = inner.len;
        let _ = self.live.send(Live::End);
        self.progress.send_replace(Progress { len, open: false });
    }

    /// Subscribes to live output from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Live> {
        self.live.subscribe()
    }

    /// Subscribes to live output and returns how much of the log was written
    /// before, so that a reader can replay exactly that part without gaps or
    /// duplicates.
    pub fn subscribe_after_log(&self) -> (u64, broadcast::Receiver<Live>) {
        let inner = self.inner.lock().unwrap();
        (inner.len, self.live.subscribe())
    }

    pub fn progress(&self) -> watch::Receiver<Progress> {
        self.progress.subscribe()
    }

    fn open_file(&self) -> Result<File> {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .ctx(format!("opening log {}", self.path.display()))
    }

    /// Adds one log line for `line` to `batch`.
    fn entry(batch: &mut Vec<u8>, kind: StreamKind, line: &[u8]) {
        let entry = Entry {
            log: String::from_utf8_lossy(line).into_owned(),
            stream: kind.as_str().to_string(),
            time: util::now_rfc3339(),
        };
        serde_json::to_writer(&mut *batch, &entry).expect("log entries serialize");
        batch.push(b'\n');
    }

    /// Writes a batch of lines, through the held file or one opened for
    /// this batch (and held from now on if a place is free).
    fn append(&self, inner: &mut Inner, batch: &[u8]) {
        if batch.is_empty() || !inner.active {
            return;
        }
        if inner.file.is_none() {
            match self.open_file() {
                Ok(f) => {
                    let written = write_batch(&f, batch);
                    if written.is_ok() && take_held() {
                        inner.file = Some(f);
                    }
                    self.wrote(inner, written);
                }
                Err(e) => tracing::warn!(error = %e, "writing container log"),
            }
            return;
        }
        let written = write_batch(inner.file.as_ref().expect("checked"), batch);
        self.wrote(inner, written);
    }

    fn wrote(&self, inner: &mut Inner, written: std::io::Result<usize>) {
        match written {
            Ok(n) => inner.len += n as u64,
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "writing container log")
            }
        }
    }
}

fn write_batch(mut f: &File, batch: &[u8]) -> std::io::Result<usize> {
    f.write_all(batch).map(|()| batch.len())
}

impl Drop for LogSink {
    fn drop(&mut self) {
        if self.inner.get_mut().unwrap().file.take().is_some() {
            give_held();
        }
    }
}

impl OutputSink for LogSink {
    fn relay(&self, stream: StreamKind, data: &[u8]) {
        if self.live.receiver_count() > 0 {
            let _ = self
                .live
                .send(Live::Data(stream, Bytes::copy_from_slice(data)));
        }
        // The shim wrote the log before relaying; followers catch up to the
        // file's length.
        let len = std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
        self.inner.lock().unwrap().len = len;
        self.progress.send_if_modified(|p| {
            let changed = p.len != len;
            p.len = len;
            changed
        });
    }

    fn write(&self, stream: StreamKind, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let slot = match stream {
            StreamKind::Stderr => 1,
            _ => 0,
        };
        let mut inner = self.inner.lock().unwrap();
        if self.live.receiver_count() > 0 {
            let _ = self
                .live
                .send(Live::Data(stream, Bytes::copy_from_slice(data)));
        }
        let mut batch = Vec::new();
        let mut rest = data;
        while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
            let (line, tail) = rest.split_at(nl + 1);
            if inner.partial[slot].is_empty() {
                Self::entry(&mut batch, stream, line);
            } else {
                let mut whole = std::mem::take(&mut inner.partial[slot]);
                whole.extend_from_slice(line);
                Self::entry(&mut batch, stream, &whole);
            }
            rest = tail;
        }
        if !rest.is_empty() {
            inner.partial[slot].extend_from_slice(rest);
            if inner.partial[slot].len() >= MAX_PARTIAL {
                let whole = std::mem::take(&mut inner.partial[slot]);
                Self::entry(&mut batch, stream, &whole);
            }
        }
        self.append(&mut inner, &batch);
        let len = inner.len;
        drop(inner);
        self.progress.send_if_modified(|p| {
            let changed = p.len != len;
            p.len = len;
            changed
        });
    }
}
