//! The event bus behind `GET /events` (`docker events`): container and image
//! events in Docker's shape, live to subscribers and kept in a bounded
//! in-memory history for `since`/`until`.
//!
//! Publishers call [`EventBus::container`] or [`EventBus::image`] (the image
//! code's hook); the bus stamps the time, appends to the history ring and
//! broadcasts. A subscriber takes the history it asked for and a live
//! receiver under one lock, so it sees every event exactly once. Events are
//! not persisted: like Docker's, the history is lost with the daemon.
//!
//! This module knows nothing of containers or images beyond the attributes
//! it is handed, and nothing of HTTP.
//!
//! Who publishes what: the container manager publishes every container
//! event; `Engine::import_wasm` publishes `import`, image pruning
//! `untag`/`delete`/`prune`, and the image routes (`api/src/routes/images.rs`)
//! `pull` and `push` (ID = the reference, as Docker), `tag` (ID = image ID,
//! name = the new reference), `untag` and `delete` from `docker rmi`, `load`,
//! `save` and `import`.

use crate::error::{Error, Result};
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// How many past events the bus keeps (Docker keeps 256; a little more
/// costs nothing and helps `--since` on a busy host).
pub const HISTORY: usize = 1024;
/// How many events a slow live subscriber may fall behind before it misses
/// some.
const LIVE_BUFFER: usize = 1024;

/// `Actor` of an event: the object's ID and its attributes.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Actor {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Attributes")]
    pub attributes: BTreeMap<String, String>,
}

/// One event, serialized as Docker's `events.Message` (with the legacy
/// `status`/`id`/`from` fields that API versions before 1.52 carry).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Event {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub status: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub from: String,
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(rename = "Action")]
    pub action: String,
    #[serde(rename = "Actor")]
    pub actor: Actor,
    pub scope: String,
    pub time: i64,
    #[serde(rename = "timeNano")]
    pub time_nano: i64,
}

impl Event {
    fn new(kind: &str, action: &str, id: &str, attributes: BTreeMap<String, String>) -> Event {
        let now = chrono::Utc::now();
        let time_nano = now.timestamp_nanos_opt().unwrap_or(0);
        // The legacy fields: containers and images had them, others not.
        let (status, legacy_id, from) = match kind {
            "container" => (
                action.to_string(),
                id.to_string(),
                attributes.get("image").cloned().unwrap_or_default(),
            ),
            "image" => (action.to_string(), id.to_string(), String::new()),
            _ => Default::default(),
        };
        Event {
            status,
            id: legacy_id,
            from,
            kind: kind.to_string(),
            action: action.to_string(),
            actor: Actor {
                id: id.to_string(),
                attributes,
            },
            scope: "local".into(),
            time: now.timestamp(),
            time_nano,
        }
    }

    /// The action without the detail Docker appends after a colon
    /// (`exec_start: sh -c ...` is `exec_start`).
    pub fn base_action(&self) -> &str {
        self.action
            .split_once(':')
            .map(|(a, _)| a)
            .unwrap_or(&self.action)
    }
}

struct Inner {
    history: VecDeque<Arc<Event>>,
}

/// The daemon's event bus.
pub struct EventBus {
    inner: Mutex<Inner>,
    tx: broadcast::Sender<Arc<Event>>,
    capacity: usize,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus::new(HISTORY)
    }
}

impl EventBus {
    pub fn new(capacity: usize) -> EventBus {
        let (tx, _) = broadcast::channel(LIVE_BUFFER);
        EventBus {
            inner: Mutex::new(Inner {
                history: VecDeque::with_capacity(capacity.min(HISTORY)),
            }),
            tx,
            capacity: capacity.max(1),
        }
    }

    /// Publishes an event.
    pub fn publish(&self, event: Event) {
        let event = Arc::new(event);
        let mut inner = self.inner.lock().unwrap();
        if inner.history.len() == self.capacity {
            inner.history.pop_front();
        }
        inner.history.push_back(event.clone());
        // No subscribers is no error.
        let _ = self.tx.send(event);
    }

    /// A container event. `attributes` should hold `name` and `image`
    /// (and the container's labels, as Docker's do).
    pub fn container(&self, action: &str, id: &str, attributes: BTreeMap<String, String>) {
        tracing::trace!(container = %id, action, "event");
        self.publish(Event::new("container", action, id, attributes));
    }

    /// The hook for image code: `action` is one of Docker's image actions
    /// (`pull`, `push`, `tag`, `untag`, `delete`, `load`, `import`, `save`),
    /// `id` the image ID (or the reference for `pull`/`push`, as Docker),
    /// `name` the reference it concerns.
    pub fn image(&self, action: &str, id: &str, name: &str) {
        let mut attributes = BTreeMap::new();
        if !name.is_empty() {
            attributes.insert("name".to_string(), name.to_string());
        }
        self.publish(Event::new("image", action, id, attributes));
    }

    /// Docker's `prune` event of a kind of object (`container`, `image`),
    /// with the bytes it reclaimed.
    pub fn publish_prune(&self, kind: &str, reclaimed: u64) {
        let mut attributes = BTreeMap::new();
        attributes.insert("reclaimed".to_string(), reclaimed.to_string());
        self.publish(Event::new(kind, "prune", "", attributes));
    }

    /// Past events in `[since, until]` (Unix nanoseconds, both optional)
    /// and a receiver of the events to come, taken together so nothing is missed or doubled.
    /// As in Docker, no history is replayed unless `since` or `until` is
    /// given.
    pub fn subscribe(
        &self,
        since: Option<i64>,
        until: Option<i64>,
    ) -> (Vec<Arc<Event>>, broadcast::Receiver<Arc<Event>>) {
        let inner = self.inner.lock().unwrap();
        let rx = self.tx.subscribe();
        let history = if since.is_none() && until.is_none() {
            Vec::new()
        } else {
            inner
                .history
                .iter()
                .filter(|e| since.is_none_or(|s| e.time_nano >= s))
                .filter(|e| until.is_none_or(|u| e.time_nano <= u))
                .cloned()
                .collect()
        };
        (history, rx)
    }
}

/// `filters` of `GET /events`: `type`, `event`, `container`, `image`,
/// `label` (and `scope`, which is always `local` here). Values of one key
/// are alternatives; different keys must all match.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    kind: Vec<String>,
    event: Vec<String>,
    container: Vec<String>,
    image: Vec<String>,
    label: Vec<String>,
    scope: Vec<String>,
}

impl EventFilter {
    /// Parses Docker's filter JSON: `{"type":["container"],"event":["die"]}`
    /// (or the old `{"type":{"container":true}}`).
    pub fn parse(json: &str) -> Result<EventFilter> {
        let mut f = EventFilter::default();
        if json.trim().is_empty() {
            return Ok(f);
        }
        for (key, values) in super::filter_pairs(json)? {
            match key.as_str() {
                "type" => {
                    for t in &values {
                        if ![
                            "container",
                            "image",
                            "volume",
                            "network",
                            "daemon",
                            "plugin",
                            "node",
                            "service",
                            "secret",
                            "config",
                        ]
                        .contains(&t.as_str())
                        {
                            return Err(Error::invalid(format!("Invalid filter 'type={t}'")));
                        }
                    }
                    f.kind = values
                }
                "event" => f.event = values,
                "container" => f.container = values,
                "image" => f.image = values,
                "label" => f.label = values,
                "scope" => f.scope = values,
                // Objects berth has no events for yet: nothing matches.
                "volume" | "network" | "daemon" | "plugin" | "node" | "service" | "secret"
                | "config" => f.kind = vec![format!("{key}:none")],
                other => {
                    return Err(Error::invalid(format!(
                        "invalid filter '{other}': berth filters events by type, event, container, image, label and scope"
                    )));
                }
            }
        }
        Ok(f)
    }

    pub fn matches(&self, e: &Event) -> bool {
        if !self.kind.is_empty() && !self.kind.contains(&e.kind) {
            return false;
        }
        if !self.scope.is_empty() && !self.scope.iter().any(|s| s == &e.scope) {
            return false;
        }
        if !self.event.is_empty()
            && !self
                .event
                .iter()
                .any(|a| a == &e.action || a == e.base_action())
        {
            return false;
        }
        if !self.container.is_empty() {
            if e.kind != "container" {
                return false;
            }
            let name = e.actor.attributes.get("name");
            if !self.container.iter().any(|c| {
                let c = c.strip_prefix('/').unwrap_or(c);
                e.actor.id.starts_with(c) || name.is_some_and(|n| n == c)
            }) {
                return false;
            }
        }
        if !self.image.is_empty() {
            let subject: Vec<&str> = match e.kind.as_str() {
                "container" => e
                    .actor
                    .attributes
                    .get("image")
                    .map(|s| vec![s.as_str()])
                    .unwrap_or_default(),
                "image" => {
                    let mut v = vec![e.actor.id.as_str()];
                    if let Some(n) = e.actor.attributes.get("name") {
                        v.push(n);
                    }
                    v
                }
                _ => return false,
            };
            if !self
                .image
                .iter()
                .any(|want| subject.iter().any(|s| image_matches(want, s)))
            {
                return false;
            }
        }
        for l in &self.label {
            let ok = match l.split_once('=') {
                Some((k, v)) => e.actor.attributes.get(k).map(String::as_str) == Some(v),
                None => e.actor.attributes.contains_key(l.as_str()),
            };
            if !ok {
                return false;
            }
        }
        true
    }
}

/// Whether the filter value `want` names the image `have` (a reference or
/// an ID): equal, equal without the default `:latest` tag, or an ID prefix.
fn image_matches(want: &str, have: &str) -> bool {
    if want == have {
        return true;
    }
    let strip = |s: &str| s.strip_suffix(":latest").unwrap_or(s).to_string();
    if strip(want) == strip(have) {
        return true;
    }
    let hex = |s: &str| s.strip_prefix("sha256:").unwrap_or(s).to_string();
    let (w, h) = (hex(want), hex(have));
    w.len() >= 4 && w.bytes().all(|b| b.is_ascii_hexdigit()) && h.starts_with(&w)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn serializes_in_dockers_shape() {
        let e = Event::new(
            "container",
            "die",
            "abc",
            attrs(&[("name", "web"), ("image", "busybox"), ("exitCode", "3")]),
        );
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["Type"], "container");
        assert_eq!(v["Action"], "die");
        assert_eq!(v["Actor"]["ID"], "abc");
        assert_eq!(v["Actor"]["Attributes"]["exitCode"], "3");
        assert_eq!(v["scope"], "local");
        assert_eq!(v["status"], "die");
        assert_eq!(v["from"], "busybox");
        assert!(v["timeNano"].as_i64().unwrap() / 1_000_000_000 - v["time"].as_i64().unwrap() <= 1);
    }

    #[test]
    fn history_is_bounded_and_replayed_only_when_asked() {
        let bus = EventBus::new(3);
        for i in 0..5 {
            bus.image("tag", &format!("sha256:{i}"), "x");
        }
        let (h, _) = bus.subscribe(None, None);
        assert!(h.is_empty());
        let (h, _) = bus.subscribe(Some(0), None);
        let ids: Vec<_> = h.iter().map(|e| e.actor.id.clone()).collect();
        assert_eq!(ids, ["sha256:2", "sha256:3", "sha256:4"]);
        let (h, _) = bus.subscribe(None, Some(0));
        assert!(h.is_empty());
    }

    #[tokio::test]
    async fn live_events_follow_history_without_gaps() {
        let bus = EventBus::new(10);
        bus.image("tag", "a", "");
        let (h, mut rx) = bus.subscribe(Some(0), None);
        assert_eq!(h.len(), 1);
        bus.image("untag", "b", "");
        assert_eq!(rx.recv().await.unwrap().actor.id, "b");
    }

    #[test]
    fn filters_like_docker() {
        let die = Event::new(
            "container",
            "die",
            "0123456789ab",
            attrs(&[("name", "web"), ("image", "busybox:latest"), ("app", "x")]),
        );
        let exec = Event::new(
            "container",
            "exec_start: sh -c true",
            "0123456789ab",
            attrs(&[("name", "web"), ("image", "busybox")]),
        );
        let untag = Event::new(
            "image",
            "untag",
            "sha256:feed",
            attrs(&[("name", "busybox:latest")]),
        );
        let f = |j: &str| EventFilter::parse(j).unwrap();
        assert!(f("").matches(&die));
        assert!(f(r#"{"type":["container"]}"#).matches(&die));
        assert!(!f(r#"{"type":["image"]}"#).matches(&die));
        assert!(f(r#"{"event":["die","stop"]}"#).matches(&die));
        assert!(f(r#"{"event":["exec_start"]}"#).matches(&exec));
        assert!(f(r#"{"container":["web"]}"#).matches(&die));
        assert!(f(r#"{"container":["0123"]}"#).matches(&die));
        assert!(!f(r#"{"container":["other"]}"#).matches(&die));
        assert!(!f(r#"{"container":["web"]}"#).matches(&untag));
        assert!(f(r#"{"image":["busybox"]}"#).matches(&die));
        assert!(f(r#"{"image":["busybox"]}"#).matches(&untag));
        assert!(f(r#"{"image":["feed"]}"#).matches(&untag));
        assert!(f(r#"{"label":["app"]}"#).matches(&die));
        assert!(f(r#"{"label":["app=x"]}"#).matches(&die));
        assert!(!f(r#"{"label":["app=y"]}"#).matches(&die));
        assert!(f(r#"{"type":{"container":true}}"#).matches(&die));
        assert!(!f(r#"{"network":["x"]}"#).matches(&die));
        assert!(EventFilter::parse(r#"{"type":["bogus"]}"#).is_err());
        assert!(EventFilter::parse(r#"{"colour":["red"]}"#).is_err());
    }
}
