//! Docker's JSON progress messages for pull and push, as `docker pull`
//! prints them: `{"status":"Downloading","progressDetail":{...},"id":"<12 hex>"}`.
//!
//! The registry code says what happens; the API layer turns the messages
//! into a response stream. Nothing here blocks: messages go into an
//! unbounded channel, and byte progress is throttled by the callers.

use berth_api_types::image::{JsonMessage, ProgressDetail};
use tokio::sync::mpsc;

/// Where the progress of one pull or push goes.
#[derive(Clone, Default)]
pub struct Progress {
    tx: Option<mpsc::UnboundedSender<JsonMessage>>,
}

impl Progress {
    /// A progress sink and the receiving end of its messages. The receiver
    /// ends when every clone of the sink is gone.
    pub fn channel() -> (Progress, mpsc::UnboundedReceiver<JsonMessage>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Progress { tx: Some(tx) }, rx)
    }

    /// A sink that drops everything.
    pub fn discard() -> Progress {
        Progress { tx: None }
    }

    pub fn send(&self, msg: JsonMessage) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(msg);
        }
    }

    /// `{"status": text}`.
    pub fn status(&self, text: impl Into<String>) {
        self.send(JsonMessage {
            status: Some(text.into()),
            ..Default::default()
        });
    }

    /// `{"status": text, "id": id}` (an image tag or a layer).
    pub fn status_id(&self, id: &str, text: impl Into<String>) {
        self.send(JsonMessage {
            status: Some(text.into()),
            id: Some(id.to_string()),
            ..Default::default()
        });
    }

    /// A layer's state change, with Docker's empty `progressDetail`.
    pub fn layer(&self, id: &str, text: &str) {
        self.send(JsonMessage {
            status: Some(text.to_string()),
            id: Some(id.to_string()),
            progress_detail: Some(ProgressDetail::default()),
            ..Default::default()
        });
    }

    /// Bytes moved for a layer: `Downloading`, `Pushing`.
    pub fn bytes(&self, id: &str, text: &str, current: u64, total: u64) {
        self.send(JsonMessage {
            status: Some(text.to_string()),
            id: Some(id.to_string()),
            progress: Some(bar(current, total)),
            progress_detail: Some(ProgressDetail {
                current: Some(current as i64),
                total: Some(total as i64),
            }),
            ..Default::default()
        });
    }

    /// `{"aux": value}`: push's final `{"Tag","Digest","Size"}`.
    pub fn aux(&self, value: serde_json::Value) {
        self.send(JsonMessage {
            progress_detail: Some(ProgressDetail::default()),
            aux: Some(value),
            ..Default::default()
        });
    }
}

/// Docker's progress text: `[=====>      ]  1.15MB/2.3MB`.
pub fn bar(current: u64, total: u64) -> String {
    const WIDTH: usize = 50;
    if total == 0 {
        return format!("{:>8}", human_size(current));
    }
    let filled = ((current.min(total) as f64 / total as f64) * WIDTH as f64) as usize;
    let head = if filled < WIDTH { ">" } else { "" };
    format!(
        "[{}{head}{}] {:>8}/{}",
        "=".repeat(filled),
        " ".repeat(WIDTH.saturating_sub(filled + head.len())),
        human_size(current),
        human_size(total)
    )
}

/// Decimal sizes with four significant digits, as Docker's `HumanSize`.
pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    let decimals = if v >= 1000.0 {
        0
    } else if v >= 100.0 {
        1
    } else if v >= 10.0 {
        2
    } else {
        3
    };
    let mut s = format!("{v:.decimals$}");
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{s}{}", UNITS[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_docker() {
        assert_eq!(human_size(527), "527B");
        assert_eq!(human_size(1024), "1.024kB");
        assert_eq!(human_size(3_145_728), "3.146MB");
        assert_eq!(human_size(50_000_000), "50MB");
    }

    #[test]
    fn bars_fill_with_progress() {
        let b = bar(0, 100);
        assert!(b.starts_with("[>"), "{b}");
        let b = bar(50, 100);
        assert!(b.starts_with(&format!("[{}>", "=".repeat(25))), "{b}");
        let b = bar(100, 100);
        assert!(b.starts_with(&format!("[{}]", "=".repeat(50))), "{b}");
        assert!(b.ends_with("100B/100B"), "{b}");
    }

    #[test]
    fn messages_reach_the_receiver_until_the_sinks_are_gone() {
        let (p, mut rx) = Progress::channel();
        p.layer("abc", "Pull complete");
        p.bytes("abc", "Downloading", 1, 2);
        drop(p);
        let m = rx.try_recv().unwrap();
        assert_eq!(m.status.as_deref(), Some("Pull complete"));
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"status":"Pull complete","id":"abc","progressDetail":{}}"#
        );
        let m = rx.try_recv().unwrap();
        assert_eq!(m.progress_detail.unwrap().total, Some(2));
        assert!(rx.try_recv().is_err());
    }
}
