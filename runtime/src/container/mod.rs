//! Containers: their records, their state machine, and the lifecycle
//! operations of the Docker API (create, start, stop, kill, restart, wait,
//! remove, attach, logs; rename, pause, top and update in [`manage`], prune
//! and disk usage in [`prune`]). Every lifecycle step is published on the
//! [`events`] bus.
//!
//! A container's record is persisted in the metadata database; its log and
//! files live in `ROOT/containers/<id>/`. Creating, renaming and removing are
//! durable before they return; state transitions are committed at once but
//! made durable in batches, since the daemon reconciles state on start.
//! Lifecycle operations on one container are serialized by its `ops` lock;
//! exits arrive from the executor on a monitor task.
//!
//! This module turns Docker options into an OCI runtime spec (see [`spec`])
//! and hands it to an executor; it never runs anything itself.

pub mod events;
pub mod exec;
pub mod fs;
pub mod logdriver;
pub mod logs;
pub mod manage;
pub mod names;
pub mod prune;
pub mod spares;
pub mod spec;
pub mod stats;
pub mod trash;

mod create;
mod launch;
mod lifecycle;
mod record;
mod view;

use record::Pending;
pub use record::{ContainerRecord, NativeRecord, StateRecord, Status, WasmRecord, WorkloadRecord};
pub(crate) use view::filter_pairs;
pub use view::{ListFilters, status_text};

use crate::error::{Error, ErrorKind, Result, ResultExt};
use crate::executor::{
    Control, Executor, ExecutorKind, ExitStatus, Launch, NativeLaunch, OutputSink, Reattached,
    StdinWriter, Stdio, WasiTarget, WasmModule, Workload, parse_signal,
};
use crate::image::{self, ImageKind, Images};
use crate::store::db::CONTAINERS;
use crate::store::{Db, Durability};
use crate::util::{self, Digest};
use berth_api_types::container as wire;
use events::EventBus;
use logs::{Live, LogSink};
use serde::{Deserialize, Serialize};
use spec::Restart;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};

/// The name of berth's built-in runtime (`--runtime berth`, Docker's
/// "runc"): it runs native containers under berth's shim and Wasm ones in
/// wasmtime, whichever the image calls for.
pub const DEFAULT_RUNTIME: &str = "berth";

/// What waiters watch.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub running: bool,
    /// Exits so far (in this daemon's life).
    pub exits: u64,
    pub exit_code: i64,
    pub removed: bool,
}

/// Conditions of `POST /containers/{id}/wait`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    NotRunning,
    NextExit,
    Removed,
}

impl WaitCondition {
    pub fn parse(s: &str) -> Result<WaitCondition> {
        match s {
            "" | "not-running" => Ok(WaitCondition::NotRunning),
            "next-exit" => Ok(WaitCondition::NextExit),
            "removed" => Ok(WaitCondition::Removed),
            other => Err(Error::invalid(format!(
                "invalid condition: \"{other}\": use not-running, next-exit or removed"
            ))),
        }
    }
}

pub struct Container {
    id: String,
    dir: PathBuf,
    inner: Mutex<Inner>,
    /// Serializes start, stop, restart and remove.
    ops: tokio::sync::Mutex<()>,
    watch: watch::Sender<Snapshot>,
    logs: Arc<LogSink>,
}

struct Inner {
    record: ContainerRecord,
    control: Option<Arc<dyn Control>>,
    /// The container's end of its stdin channel, for attached clients.
    stdin: Option<StdinWriter>,
    /// The reading end, until a start hands it to the process.
    stdin_pending: Option<mpsc::Receiver<bytes::Bytes>>,
    removed: bool,
    timings: wire::Timings,
    /// When the current run's start request arrived.
    start_began: Option<std::time::Instant>,
}

impl Inner {
    /// The stdin writer of a container created with `OpenStdin`, making the
    /// channel if this run has none yet.
    ///
    /// A client attached before the start may already have sent its input
    /// and closed it (`echo hi | docker run -i IMG cat` half-closes as soon
    /// as `echo` is done): then the channel waiting for the process holds
    /// that input and no writer, and it must stay so — a fresh channel
    /// would drop the input and never end.
    fn stdin_writer(&mut self) -> Option<StdinWriter> {
        if !self.record.config.open_stdin {
            return None;
        }
        if self.stdin.is_none() && self.stdin_pending.is_some() {
            return None;
        }
        if self.stdin.is_none() {
            let (tx, rx) = mpsc::channel(64);
            self.stdin = Some(tx);
            self.stdin_pending = Some(rx);
        }
        self.stdin.clone()
    }
}

impl Container {
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn record(&self) -> ContainerRecord {
        self.inner.lock().unwrap().record.clone()
    }

    pub fn logs(&self) -> &Arc<LogSink> {
        &self.logs
    }

    pub fn snapshot(&self) -> Snapshot {
        self.watch.borrow().clone()
    }

    /// Running or paused: it has a process.
    fn is_running(&self) -> bool {
        matches!(
            self.inner.lock().unwrap().record.state.status,
            Status::Running | Status::Paused
        )
    }
}

#[derive(Default)]
struct Registry {
    by_id: HashMap<String, Arc<Container>>,
    by_name: HashMap<String, String>,
}

/// Options of `POST /containers/{id}/attach`.
#[derive(Debug, Clone, Copy, Default)]
pub struct AttachOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub logs: bool,
    pub stream: bool,
}

/// An attached client's view of a container.
pub struct Attached {
    pub tty: bool,
    /// Logged output to send first (`logs=1`).
    pub replay: Vec<logs::Entry>,
    /// Live output until the process exits (`stream=1`).
    pub live: Option<broadcast::Receiver<Live>>,
    pub stdin: Option<StdinWriter>,
    stdin_once: bool,
    container: Arc<Container>,
    events: Arc<EventBus>,
}

impl Attached {
    /// Takes the stdin side of the attachment, to be fed from the client.
    pub fn take_stdin(&mut self) -> Option<AttachedStdin> {
        let tx = self.stdin.take()?;
        Some(AttachedStdin {
            tx: Some(tx),
            // As Docker: a container with a TTY keeps its stdin when its
            // client goes (a `run -it` whose client detached or died goes
            // on running); `StdinOnce` ends the stdin of one without.
            close_container_stdin: (self.stdin_once && !self.tty).then(|| self.container.clone()),
        })
    }

    /// The client typed the detach keys: the session ends, the container
    /// runs on. Records Docker's `detach` event.
    pub fn detached(&self) {
        let rec = self.container.record();
        self.events
            .container("detach", &rec.id, event_attributes(&rec, &[]));
    }
}

/// An attached client's stdin. When the client is done sending (end of
/// file), dropping this closes the container's stdin too if it was created
/// with `StdinOnce` (`docker run -i`) and has no TTY, so the process reads
/// end of file.
pub struct AttachedStdin {
    tx: Option<StdinWriter>,
    close_container_stdin: Option<Arc<Container>>,
}

impl AttachedStdin {
    /// Sends bytes to the process; false once it no longer reads stdin.
    pub async fn send(&self, data: bytes::Bytes) -> bool {
        match &self.tx {
            Some(tx) => tx.send(data).await.is_ok(),
            None => false,
        }
    }
}

impl Drop for AttachedStdin {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(c) = self.close_container_stdin.take() {
            c.inner.lock().unwrap().stdin = None;
        }
    }
}

/// Options of `GET /containers/{id}/logs`.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub filter: logs::Filter,
    pub follow: bool,
}

/// Where native containers' parts come from.
pub struct NativeSetup {
    pub layers: Arc<crate::image::layers::LayerStore>,
    /// External OCI runtimes by name (`crun`, `runc`).
    pub runtimes: HashMap<String, PathBuf>,
    /// Parent cgroup of every container.
    pub cgroup_parent: String,
    /// The host's cgroups, for stats; `None` where none are mounted.
    pub cgroups: Option<crate::executor::native::cgroups::CgroupManager>,
}

/// How long `kill` with SIGKILL waits for the exit to be recorded.
pub const KILL_EXIT_WAIT: Duration = Duration::from_secs(5);

pub struct Containers {
    dir: PathBuf,
    db: Arc<Db>,
    images: Arc<Images>,
    executors: HashMap<ExecutorKind, Arc<dyn Executor>>,
    native: NativeSetup,
    /// Native containers recorded as running at start, to re-adopt.
    to_reattach: Mutex<Vec<String>>,
    execs: exec::Execs,
    registry: RwLock<Registry>,
    shutting_down: AtomicBool,
    /// Record changes not written yet, which the flusher writes in one
    /// durable transaction (group commit).
    pending: Mutex<Pending>,
    /// Held while records are written, so that a staged snapshot never
    /// lands after a newer record written at once.
    write_lock: Mutex<()>,
    /// Wakes the flusher when something is pending.
    flush_wanted: Arc<tokio::sync::Notify>,
    /// Where lifecycle events go (`docker events`).
    events: Arc<EventBus>,
    /// Container directories made ahead of time.
    spares: Arc<spares::Spares>,
    /// Where removed containers' files wait to be deleted.
    trash: Arc<trash::Trash>,
}

impl Containers {
    /// Loads container records and reconciles them with reality: a
    /// container recorded as running is not (its process died with the
    /// daemon that ran it), so it is marked exited with the reason.
    pub fn open(
        dir: PathBuf,
        db: Arc<Db>,
        images: Arc<Images>,
        executors: Vec<Arc<dyn Executor>>,
        native: NativeSetup,
    ) -> Result<Containers> {
        std::fs::create_dir_all(&dir).ctx(format!("creating {}", dir.display()))?;
        // Container directories made here (when no spare is ready) spread
        // over the disk too (see `spares`).
        if let Err(e) = util::fsutil::spread_subdirectories(&dir) {
            tracing::debug!(error = %e, "container directories are not spread over block groups");
        }
        let (records, bad) = db.load_all::<ContainerRecord>(CONTAINERS)?;
        for (id, e) in bad {
            tracing::error!(container = %id, error = %e, "skipping unreadable container record");
        }
        let mut registry = Registry::default();
        let mut changed = Vec::new();
        let mut gone = Vec::new();
        let mut to_reattach = Vec::new();
        for (_, mut rec) in records {
            if !dir.join(&rec.id).is_dir() {
                // Its removal was interrupted after the files went.
                gone.push(rec.id.clone());
                continue;
            }
            match rec.state.status {
                // A native container outlives the daemon under its shim:
                // `restore` finds out.
                Status::Running | Status::Paused if rec.workload.kind() == ExecutorKind::Native => {
                    to_reattach.push(rec.id.clone());
                }
                Status::Running | Status::Paused | Status::Restarting => {
                    let was_running = rec.state.status != Status::Restarting;
                    rec.state.status = Status::Exited;
                    rec.state.pid = 0;
                    if was_running && !rec.stopped_by_daemon {
                        rec.state.exit_code = 255;
                        rec.state.error = "berthd stopped while the container was running".into();
                        rec.state.finished_at = util::now_rfc3339();
                    }
                    rec.stopped_by_daemon = true;
                    changed.push(rec.clone());
                }
                Status::Removing => {
                    // A removal was interrupted: finish it.
                    let _ = util::fsutil::remove_dir_all_if_exists(&dir.join(&rec.id));
                    db.write(Durability::Immediate, |tx| tx.delete(CONTAINERS, &rec.id))?;
                    continue;
                }
                _ => {}
            }
            let c = Self::container(&dir, rec)?;
            registry
                .by_name
                .insert(c.record().name.clone(), c.id.clone());
            registry.by_id.insert(c.id.clone(), c);
        }
        if !changed.is_empty() || !gone.is_empty() {
            db.write(Durability::Immediate, |tx| {
                for r in &changed {
                    tx.put(CONTAINERS, &r.id, r)?;
                }
                for id in &gone {
                    tx.delete(CONTAINERS, id)?;
                }
                Ok(())
            })?;
        }
        // Files of removed containers not deleted before the daemon stopped.
        let trash = trash::Trash::open(&dir).ctx("emptying the removed containers' trash")?;
        let spares = spares::Spares::open(&dir).ctx("emptying the spare container directories")?;
        // Directories without a record: a removal interrupted before its
        // files went, or a create that never committed.
        for entry in std::fs::read_dir(&dir).ctx(format!("listing {}", dir.display()))? {
            let entry = entry.ctx("listing containers")?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name != trash::DIR && name != spares::DIR && !registry.by_id.contains_key(&name) {
                tracing::info!(container = %name, "removing files of a container that has no record");
                let _ = util::fsutil::remove_dir_all_if_exists(&entry.path());
            }
        }
        Ok(Containers {
            dir,
            db,
            images,
            executors: executors.into_iter().map(|e| (e.kind(), e)).collect(),
            native,
            to_reattach: Mutex::new(to_reattach),
            execs: exec::Execs::default(),
            registry: RwLock::new(registry),
            shutting_down: AtomicBool::new(false),
            pending: Mutex::new(Pending::default()),
            write_lock: Mutex::new(()),
            flush_wanted: Arc::new(tokio::sync::Notify::new()),
            events: Arc::new(EventBus::default()),
            spares,
            trash,
        })
    }

    /// The daemon's event bus: container events are published here, and
    /// image code publishes through [`EventBus::image`].
    pub fn events(&self) -> &Arc<EventBus> {
        &self.events
    }

    /// Publishes a container event with Docker's attributes: the
    /// container's labels, `name` and `image`, then `extra`.
    fn emit(&self, c: &Container, action: &str, extra: &[(&str, String)]) {
        let attributes = {
            let inner = c.inner.lock().unwrap();
            event_attributes(&inner.record, extra)
        };
        self.events.container(action, &c.id, attributes);
    }

    fn container(dir: &Path, rec: ContainerRecord) -> Result<Arc<Container>> {
        let cdir = dir.join(&rec.id);
        let logs = Arc::new(LogSink::open(cdir.join("log.json"))?);
        let (watch, _) = watch::channel(Snapshot {
            running: rec.state.status == Status::Running,
            exits: 0,
            exit_code: rec.state.exit_code,
            removed: false,
        });
        Ok(Arc::new(Container {
            id: rec.id.clone(),
            dir: cdir,
            inner: Mutex::new(Inner {
                record: rec,
                control: None,
                stdin: None,
                stdin_pending: None,
                removed: false,
                timings: wire::Timings::default(),
                start_began: None,
            }),
            ops: tokio::sync::Mutex::new(()),
            watch,
            logs,
        }))
    }

    /// Re-adopts the native containers that were running when the daemon
    /// went away: their shims kept them running (or recorded how they
    /// ended). Call once, right after `open`.
    pub async fn restore(self: &Arc<Self>) {
        let ids = std::mem::take(&mut *self.to_reattach.lock().unwrap());
        for id in ids {
            let Ok(c) = self.get(&id) else { continue };
            let rec = c.record();
            let attempt = async {
                let executor = self.executor(rec.workload.kind())?.clone();
                let launch = self.launch(&c, &rec)?;
                let stdin = {
                    let mut inner = c.inner.lock().unwrap();
                    inner.stdin_writer();
                    inner.stdin_pending.take()
                };
                c.logs.begin()?;
                let stdio = Stdio {
                    output: c.logs.clone() as Arc<dyn OutputSink>,
                    stdin,
                };
                let on_exit: crate::executor::ExitCallback = {
                    let this = self.clone();
                    let c = c.clone();
                    Box::new(move |status| Box::pin(async move { this.on_exit(c, status).await }))
                };
                executor.reattach(&launch, stdio, on_exit).await
            };
            match attempt.await {
                Ok(Reattached::Running(r)) => {
                    // Paused when the daemon went: still frozen?
                    let frozen = rec.state.status == Status::Paused
                        && self.cgroup_of(&id).is_ok_and(|cg| cg.frozen());
                    {
                        let mut inner = c.inner.lock().unwrap();
                        inner.control = Some(Arc::from(r.control));
                        inner.record.state.pid = r.pid;
                        if inner.record.state.status == Status::Paused && !frozen {
                            inner.record.state.status = Status::Running;
                        }
                    }
                    c.watch.send_modify(|s| s.running = true);
                    tracing::info!(container = %id, pid = r.pid, "re-adopted a running container");
                }
                Ok(Reattached::Exited(status)) => {
                    tracing::info!(container = %id, code = status.code, "container exited while berthd was away");
                    self.clone().on_exit(c.clone(), status).await;
                }
                Ok(Reattached::Lost) | Err(_) => {
                    let status = ExitStatus {
                        code: 255,
                        error: Some("berthd lost track of the container: its shim is gone".into()),
                        ..Default::default()
                    };
                    self.clone().on_exit(c.clone(), status).await;
                }
            }
        }
    }

    /// Starts the containers whose restart policy says so after a daemon
    /// start. Call once the API is up.
    pub async fn restart_on_boot(self: &Arc<Self>) {
        let all: Vec<_> = self
            .registry
            .read()
            .unwrap()
            .by_id
            .values()
            .cloned()
            .collect();
        for c in all {
            let rec = c.record();
            let policy = Restart::parse(&rec.host_config).unwrap_or(Restart::No);
            let go = match policy {
                Restart::No => false,
                Restart::Always => rec.state.status == Status::Exited,
                Restart::UnlessStopped => {
                    rec.state.status == Status::Exited && !rec.manually_stopped
                }
                Restart::OnFailure { max_retries } => {
                    rec.stopped_by_daemon
                        && rec.state.exit_code != 0
                        && (max_retries == 0 || rec.restart_count < max_retries)
                }
            };
            if rec.host_config.auto_remove && rec.stopped_by_daemon {
                let _ = self.remove(&rec.id, true).await;
                continue;
            }
            if go {
                tracing::info!(container = %rec.id, policy = ?policy, "restarting after daemon start");
                let _op = c.ops.lock().await;
                if let Err(e) = self.start_locked(&c).await {
                    tracing::warn!(container = %rec.id, error = %e, "restart after daemon start failed");
                }
            }
        }
    }

    /// Finds a container by full ID, name, or unique ID prefix.
    pub fn get(&self, name: &str) -> Result<Arc<Container>> {
        let reg = self.registry.read().unwrap();
        let n = name.strip_prefix('/').unwrap_or(name);
        if let Some(c) = reg.by_id.get(n) {
            return Ok(c.clone());
        }
        if let Some(id) = reg.by_name.get(n) {
            return Ok(reg.by_id[id].clone());
        }
        if !n.is_empty() && n.bytes().all(|b| b.is_ascii_hexdigit()) {
            let mut hits = reg.by_id.values().filter(|c| c.id.starts_with(n));
            if let Some(first) = hits.next() {
                if hits.next().is_some() {
                    return Err(Error::invalid(format!(
                        "multiple containers found with provided prefix: {n}"
                    )));
                }
                return Ok(first.clone());
            }
        }
        Err(Error::not_found(format!("No such container: {name}")))
    }

    pub fn count(&self) -> (i64, i64, i64) {
        let reg = self.registry.read().unwrap();
        let mut running = 0;
        let mut paused = 0;
        for c in reg.by_id.values() {
            match c.inner.lock().unwrap().record.state.status {
                Status::Running => running += 1,
                Status::Paused => paused += 1,
                _ => {}
            }
        }
        (reg.by_id.len() as i64, running, paused)
    }

    /// Containers using an image: `(short id, running)`.
    pub fn users_of(&self, image: &Digest) -> Vec<(String, bool)> {
        let reg = self.registry.read().unwrap();
        reg.by_id
            .values()
            .filter_map(|c| {
                let inner = c.inner.lock().unwrap();
                (inner.record.image_id == *image).then(|| {
                    (
                        c.id[..12].to_string(),
                        inner.record.state.status.counts_as_running(),
                    )
                })
            })
            .collect()
    }
}

/// A container event's attributes as Docker's: the container's labels,
/// then `name` and `image`, then `extra`.
fn event_attributes(rec: &ContainerRecord, extra: &[(&str, String)]) -> BTreeMap<String, String> {
    let mut a: BTreeMap<String, String> = rec
        .config
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    a.insert("name".into(), rec.name.clone());
    a.insert("image".into(), rec.image.clone());
    for (k, v) in extra {
        a.insert((*k).to_string(), v.clone());
    }
    a
}
