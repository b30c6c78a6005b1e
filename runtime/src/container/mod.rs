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

/// Docker's container states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }

    /// Running as Docker counts it (`State.Running`): with a process
    /// (running, paused) or between a crash and the restart its policy
    /// makes. Such a container is listed by `ps`, and `rm` and `rmi`
    /// refuse it without force.
    pub fn counts_as_running(self) -> bool {
        matches!(self, Status::Running | Status::Paused | Status::Restarting)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StateRecord {
    pub status: Status,
    pub pid: i64,
    pub exit_code: i64,
    pub error: String,
    pub oom_killed: bool,
    pub started_at: String,
    pub finished_at: String,
}

/// How a Wasm container finds its module: `module.wasm` in its directory.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WasmRecord {
    pub digest: Digest,
    pub target: WasiTarget,
}

/// What a native container runs on.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NativeRecord {
    /// Its image's layers, bottom first, as the manifest lists them.
    pub layers: Vec<image::Descriptor>,
    /// Its capabilities (`CAP_CHOWN`, ...), resolved at create.
    pub capabilities: Vec<String>,
    /// An external OCI runtime by name (`crun`); `None` is berth's own.
    pub runtime: Option<String>,
}

/// What a container runs: a Wasm module in the daemon's engine, or a
/// Linux process tree on its image's layers. One or the other, never both
/// nor neither.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkloadRecord {
    Wasm(WasmRecord),
    Native(NativeRecord),
}

impl WorkloadRecord {
    pub fn kind(&self) -> ExecutorKind {
        match self {
            WorkloadRecord::Wasm(_) => ExecutorKind::Wasm,
            WorkloadRecord::Native(_) => ExecutorKind::Native,
        }
    }

    pub fn wasm(&self) -> Option<&WasmRecord> {
        match self {
            WorkloadRecord::Wasm(w) => Some(w),
            WorkloadRecord::Native(_) => None,
        }
    }

    pub fn native(&self) -> Option<&NativeRecord> {
        match self {
            WorkloadRecord::Native(n) => Some(n),
            WorkloadRecord::Wasm(_) => None,
        }
    }
}

/// A [`WorkloadRecord`] as records store it: the fields `executor`, `wasm` and
/// `native` that records have always had, so that records written before
/// the enum (and by it, for a daemon rolled back) read the same.
#[derive(Serialize, Deserialize)]
struct WorkloadFields {
    executor: ExecutorKind,
    wasm: Option<WasmRecord>,
    #[serde(default)]
    native: Option<NativeRecord>,
}

impl Serialize for WorkloadRecord {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        WorkloadFields {
            executor: self.kind(),
            wasm: self.wasm().cloned(),
            native: self.native().cloned(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for WorkloadRecord {
    fn deserialize<D: serde::Deserializer<'de>>(
        d: D,
    ) -> std::result::Result<WorkloadRecord, D::Error> {
        let f = WorkloadFields::deserialize(d)?;
        match (f.executor, f.wasm, f.native) {
            (ExecutorKind::Wasm, Some(w), None) => Ok(WorkloadRecord::Wasm(w)),
            (ExecutorKind::Native, None, Some(n)) => Ok(WorkloadRecord::Native(n)),
            (kind, w, n) => Err(serde::de::Error::custom(format!(
                "a {} container record with {} Wasm module and {} native layers",
                kind.as_str(),
                if w.is_some() { "a" } else { "no" },
                if n.is_some() { "its" } else { "no" },
            ))),
        }
    }
}

/// Everything berth keeps about a container.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ContainerRecord {
    pub id: String,
    pub name: String,
    pub created: String,
    /// The image as the user named it.
    pub image: String,
    pub image_id: Digest,
    /// The merged configuration (request over image defaults).
    pub config: wire::Config,
    pub host_config: wire::HostConfig,
    pub path: String,
    pub args: Vec<String>,
    pub platform: String,
    /// Stored as the fields `executor`, `wasm` and `native`.
    #[serde(flatten)]
    pub workload: WorkloadRecord,
    pub state: StateRecord,
    pub restart_count: i64,
    /// Stopped by the user (stop, kill): restart policies leave it alone.
    pub manually_stopped: bool,
    /// It was running when the daemon went away (shut down or died).
    #[serde(default)]
    pub stopped_by_daemon: bool,
}

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

/// How long the flusher may hold a change a crash can lose without harm
/// (an exit, a removal) for others to share its commit.
const LAZY_COMMIT: Duration = Duration::from_millis(20);

/// Record changes staged for the flusher.
#[derive(Default)]
struct Pending {
    /// The newest snapshot of each changed container (`None`: removed).
    batch: HashMap<String, Option<ContainerRecord>>,
    /// Something in `batch` is to be flushed at once.
    urgent: bool,
    /// When the oldest change in `batch` was staged.
    since: Option<std::time::Instant>,
}

impl Pending {
    /// How long until the batch is due: `None` when there is nothing.
    fn due_in(&self) -> Option<Duration> {
        if self.batch.is_empty() {
            return None;
        }
        if self.urgent {
            return Some(Duration::ZERO);
        }
        let since = self.since.map_or(Duration::MAX, |t| t.elapsed());
        Some(LAZY_COMMIT.saturating_sub(since))
    }
}

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

    /// Commits a container's record. A registered container's *current*
    /// record is written, under its lock, rather than the caller's copy:
    /// callers clone the record, unlock, then persist, and a copy taken
    /// before a concurrent change (a rename during a start) must not undo
    /// it in the database. The caller must hold neither the registry nor
    /// the container lock.
    fn persist(&self, rec: &ContainerRecord, durability: Durability) -> Result<()> {
        let snapshot = self.newest(rec);
        match durability {
            // Group commit: staged now, written and fsynced by the flusher a
            // moment later with whatever else changed meanwhile.
            Durability::None => self.stage(&rec.id, Some(snapshot), true),
            _ => self.write_now(&snapshot, durability)?,
        }
        Ok(())
    }

    /// Commits an exit, as [`persist`](Self::persist) with
    /// `Durability::None`. A native container's may wait up to
    /// [`LAZY_COMMIT`] for other changes to share the commit: a crash
    /// before it loses nothing, as the record still says running and the
    /// next daemon learns the exit from the shim or its `exit.json`. A
    /// Wasm container's exit code lives only in the record, so it goes at
    /// once.
    fn persist_exit(&self, rec: &ContainerRecord) {
        let snapshot = self.newest(rec);
        let wasm = snapshot.workload.kind() == ExecutorKind::Wasm;
        self.stage(&rec.id, Some(snapshot), wasm);
    }

    /// The newest state of `rec`'s container: the registered container's
    /// record (`rec` itself while create commits, before it is registered).
    fn newest(&self, rec: &ContainerRecord) -> ContainerRecord {
        let registered = self.registry.read().unwrap().by_id.get(&rec.id).cloned();
        match registered {
            Some(c) => c.inner.lock().unwrap().record.clone(),
            None => rec.clone(),
        }
    }

    /// Stages a record change for the flusher (`None`: the record goes);
    /// `now`: flush at once, else within [`LAZY_COMMIT`].
    fn stage(&self, id: &str, rec: Option<ContainerRecord>, now: bool) {
        {
            let mut p = self.pending.lock().unwrap();
            p.batch.insert(id.to_string(), rec);
            p.urgent |= now;
            p.since.get_or_insert_with(std::time::Instant::now);
        }
        self.flush_wanted.notify_one();
    }

    /// Writes a record at once, superseding what is staged for it.
    fn write_now(&self, rec: &ContainerRecord, durability: Durability) -> Result<()> {
        let _w = self.write_lock.lock().unwrap();
        self.pending.lock().unwrap().batch.remove(&rec.id);
        self.db
            .write(durability, |tx| tx.put(CONTAINERS, &rec.id, rec))
    }

    /// Writes the staged record changes durably, in one transaction.
    pub fn flush(&self) -> Result<()> {
        let _w = self.write_lock.lock().unwrap();
        let batch = std::mem::take(&mut *self.pending.lock().unwrap()).batch;
        if batch.is_empty() {
            return Ok(());
        }
        let written = self.db.write(Durability::Immediate, |tx| {
            for (id, rec) in &batch {
                match rec {
                    Some(r) => tx.put(CONTAINERS, id, r)?,
                    None => tx.delete(CONTAINERS, id)?,
                }
            }
            Ok(())
        });
        if written.is_err() {
            // Kept for the next try (after a lazy commit's wait), unless
            // something newer was staged.
            let mut pending = self.pending.lock().unwrap();
            for (id, rec) in batch {
                pending.batch.entry(id).or_insert(rec);
            }
            pending.since.get_or_insert_with(std::time::Instant::now);
        }
        written
    }

    /// Flushes state changes off the request path: a start answers before
    /// its record is fsynced, and the record is durable a moment later.
    /// Most changes are flushed as soon as they are made; native exits and
    /// removals, which a crash may lose without harm, wait up to
    /// [`LAZY_COMMIT`] to share a commit (a `run --rm` then costs two
    /// commits, not three). Changes made during one flush are covered by
    /// the next. Ends when the manager is dropped.
    pub async fn run_flusher(this: std::sync::Weak<Containers>) {
        loop {
            let Some(me) = this.upgrade() else { return };
            let wait = me.pending.lock().unwrap().due_in();
            if wait != Some(Duration::ZERO) {
                let wanted = me.flush_wanted.clone();
                drop(me);
                match wait {
                    None => wanted.notified().await,
                    Some(d) => drop(tokio::time::timeout(d, wanted.notified()).await),
                }
                continue;
            }
            let result = tokio::task::spawn_blocking(move || me.flush()).await;
            match result {
                Ok(Err(e)) => tracing::warn!(error = %e, "flushing container state"),
                Err(e) => tracing::warn!(error = %e, "flushing container state"),
                Ok(Ok(())) => {}
            }
        }
    }

    fn executor(&self, kind: ExecutorKind) -> Result<&Arc<dyn Executor>> {
        self.executors.get(&kind).ok_or_else(|| {
            Error::not_implemented(format!(
                "this berthd cannot run {} containers yet",
                match kind {
                    ExecutorKind::Native => "native Linux",
                    ExecutorKind::Wasm => "Wasm",
                }
            ))
        })
    }

    fn launch(&self, c: &Container, rec: &ContainerRecord) -> Result<Launch> {
        let mut argv = vec![rec.path.clone()];
        argv.extend(rec.args.iter().cloned());
        let rootfs = c.dir.join("rootfs");
        let (spec, workload) = match &rec.workload {
            WorkloadRecord::Wasm(w) => (
                spec::oci_spec(&argv, &rec.config, &rec.host_config, &rootfs)?,
                Workload::Wasm(WasmModule {
                    digest: w.digest.clone(),
                    path: c.dir.join("module.wasm"),
                    target: w.target,
                }),
            ),
            WorkloadRecord::Native(n) => {
                let spec = spec::native_spec(&spec::NativeSpecInput {
                    id: &rec.id,
                    argv: &argv,
                    config: &rec.config,
                    host: &rec.host_config,
                    rootfs: &rootfs,
                    capabilities: &n.capabilities,
                    cgroups_path: &format!("/{}/{}", self.native.cgroup_parent, rec.id),
                })?;
                let runtime = match &n.runtime {
                    None => None,
                    Some(name) => {
                        Some(self.native.runtimes.get(name).cloned().ok_or_else(|| {
                            Error::invalid(format!(
                                "runtime {name} is no longer registered with berthd"
                            ))
                        })?)
                    }
                };
                let mut lowers = self.native.layers.lowers(&n.layers)?;
                match self.native.layers.init_layer(&lowers) {
                    Ok(Some(init)) => lowers.insert(0, init),
                    Ok(None) => {}
                    // The child then creates the files in the upper.
                    Err(e) => {
                        tracing::warn!(container = %rec.id, error = %e, "starting without an init layer")
                    }
                }
                let native = NativeLaunch {
                    lowers,
                    runtime,
                    init: rec.host_config.init.unwrap_or(false),
                    open_stdin: rec.config.open_stdin,
                    console_size: rec
                        .host_config
                        .console_size
                        .filter(|[h, w]| *h > 0 && *w > 0)
                        .map(|[h, w]| {
                            [h.min(u16::MAX as u64) as u16, w.min(u16::MAX as u64) as u16]
                        }),
                };
                (spec, Workload::Native(native))
            }
        };
        Ok(Launch {
            id: rec.id.clone(),
            spec,
            bundle: c.dir.clone(),
            rootfs,
            workload,
        })
    }

    /// `POST /containers/create`.
    #[tracing::instrument(level = "debug", skip_all, fields(name = name.unwrap_or_default(), image = %request.config.image))]
    pub async fn create(
        &self,
        name: Option<&str>,
        request: wire::CreateRequest,
    ) -> Result<wire::CreateResponse> {
        let began = std::time::Instant::now();
        if self.shutting_down.load(Ordering::Relaxed) {
            return Err(Error::conflict("berthd is shutting down"));
        }
        if request.config.image.is_empty() {
            return Err(Error::invalid(
                "Config.Image is required: give the image to create the container from",
            ));
        }
        let image = self.images.resolve(&request.config.image)?;
        if let Some(want) = request.platform.as_deref().filter(|p| !p.is_empty()) {
            check_platform(&request.config.image, &image, want)?;
        }
        let handle = self.images.handle(&image)?;
        let kind = spec::choose_executor(
            image.kind.executor(),
            &request.host_config.runtime,
            &self.native.runtimes,
        )?;
        let executor = self.executor(kind)?.clone();
        let config = spec::merge(&request, &handle.config.container_config());
        let warnings = spec::check_supported(kind, &config, &request.host_config)?;
        fs::volume_paths(&config)?;

        let module = match (&image.kind, kind) {
            (ImageKind::Wasm { form, .. }, ExecutorKind::Wasm) => {
                let entry = config
                    .entrypoint
                    .as_ref()
                    .and_then(|e| e.first())
                    .or_else(|| config.cmd.as_ref().and_then(|c| c.first()))
                    .cloned();
                Some(image::wasm::find_module(
                    &self.images,
                    &handle,
                    form,
                    entry.as_deref(),
                )?)
            }
            _ => None,
        };
        let argv = spec::argv(&config, module.as_ref().and_then(|m| m.argv0.as_deref()))?;
        let native = match kind {
            ExecutorKind::Wasm => None,
            ExecutorKind::Native => Some(self.native_record(&request, &handle).await?),
        };

        let id = util::random_id();
        let name = self.reserve_name(name, &id)?;
        let result = self
            .create_reserved(
                &id, &name, &request, config, argv, &image, kind, module, native, &executor,
            )
            .await;
        match result {
            Ok(()) => {
                if let Ok(c) = self.get(&id) {
                    c.inner.lock().unwrap().timings.create_micros =
                        began.elapsed().as_micros() as u64;
                    self.emit(&c, "create", &[]);
                }
                Ok(wire::CreateResponse { id, warnings })
            }
            Err(e) => {
                self.registry.write().unwrap().by_name.remove(&name);
                let _ = util::fsutil::remove_dir_all_if_exists(&self.dir.join(&id));
                Err(e)
            }
        }
    }

    /// A native container's layers (unpacked, so start mounts at once),
    /// capabilities and runtime, checked at create.
    async fn native_record(
        &self,
        request: &wire::CreateRequest,
        handle: &image::ImageHandle,
    ) -> Result<NativeRecord> {
        let host = &request.host_config;
        let caps =
            crate::executor::native::caps::resolve(&host.cap_add, &host.cap_drop, host.privileged)?;
        let security = spec::SecurityOpts::parse(&host.security_opt)?;
        if let Some(p) = &security.seccomp_profile {
            crate::executor::native::seccomp::parse(p.as_bytes())?;
        }
        let runtime = match host.runtime.as_str() {
            "" | "berth" => None,
            name => Some(name.to_string()),
        };
        let layers = handle.manifest.layers.clone();
        let store = self.native.layers.clone();
        // Usually all are: a stat each here, instead of a hop to a blocking
        // thread and back on every create.
        if !layers.iter().all(|l| store.contains(&l.digest)) {
            let blobs = self.images.blobs().clone();
            let to_unpack = layers.clone();
            tokio::task::spawn_blocking(move || {
                for l in &to_unpack {
                    store.ensure(&blobs, l)?;
                }
                Ok::<_, Error>(())
            })
            .await
            .ctx("unpacking layers")??;
        }
        Ok(NativeRecord {
            layers,
            capabilities: caps.iter().map(|c| c.to_string()).collect(),
            runtime,
        })
    }

    fn reserve_name(&self, requested: Option<&str>, id: &str) -> Result<String> {
        let mut reg = self.registry.write().unwrap();
        if let Some(n) = requested.filter(|n| !n.is_empty()) {
            let n = names::validate(n)?;
            if let Some(other) = reg.by_name.get(&n) {
                return Err(Error::conflict(format!(
                    "Conflict. The container name \"/{n}\" is already in use by container \"{other}\". \
                     You have to remove (or rename) that container to be able to reuse that name."
                )));
            }
            reg.by_name.insert(n.clone(), id.to_string());
            return Ok(n);
        }
        for attempt in 0..100 {
            let n = names::random(attempt / 10);
            if !reg.by_name.contains_key(&n) {
                reg.by_name.insert(n.clone(), id.to_string());
                return Ok(n);
            }
        }
        Err(Error::internal("could not find a free container name"))
    }

    #[allow(clippy::too_many_arguments)]
    async fn create_reserved(
        &self,
        id: &str,
        name: &str,
        request: &wire::CreateRequest,
        config: wire::Config,
        argv: Vec<String>,
        image: &image::ImageRecord,
        kind: ExecutorKind,
        module: Option<image::wasm::ModuleRef>,
        native: Option<NativeRecord>,
        executor: &Arc<dyn Executor>,
    ) -> Result<()> {
        let dir = self.dir.join(id);
        let spare = match kind {
            ExecutorKind::Wasm => spares::Kind::Wasm,
            ExecutorKind::Native => spares::Kind::Native,
        };
        self.spares
            .take_into(&dir, spare)
            .ctx(format!("creating {}", dir.display()))?;
        if native.is_some() {
            write_etc_files(&dir, &spec::hostname(&config, id))?;
        }
        let wasm = match module {
            None => None,
            Some(m) => {
                let path = dir.join("module.wasm");
                let target = match m.data {
                    image::wasm::ModuleData::Blob(blob) => {
                        if std::fs::hard_link(&blob, &path).is_err() {
                            std::fs::copy(&blob, &path).ctx("copying the module")?;
                        }
                        image::wasm::detect_blob(&path, &m.digest)?
                    }
                    image::wasm::ModuleData::Bytes(bytes) => {
                        std::fs::write(&path, &bytes).ctx("writing the module")?;
                        image::wasm::detect(&bytes)?
                    }
                };
                Some(WasmRecord {
                    digest: m.digest,
                    target,
                })
            }
        };
        let workload = match (wasm, native) {
            (Some(w), None) => WorkloadRecord::Wasm(w),
            (None, Some(n)) => WorkloadRecord::Native(n),
            _ => {
                return Err(Error::internal(format!(
                    "a {} container needs {}",
                    kind.as_str(),
                    match kind {
                        ExecutorKind::Wasm => "its module and no native layers",
                        ExecutorKind::Native => "its layers and no Wasm module",
                    }
                )));
            }
        };
        let platform = match &workload {
            WorkloadRecord::Wasm(w) => w.target.as_str().to_string(),
            WorkloadRecord::Native(_) => image.os.clone(),
        };
        let mut config = config;
        config.image = request.config.image.clone();
        // The log driver in effect, as Docker records it (docker-py reads
        // it to decide whether `containers.run` can return the logs).
        let mut host_config = request.host_config.clone();
        if host_config.log_config.kind.is_empty() {
            host_config.log_config.kind = "json-file".into();
        }
        let record = ContainerRecord {
            id: id.to_string(),
            name: name.to_string(),
            created: util::now_rfc3339(),
            image: request.config.image.clone(),
            image_id: image.id.clone(),
            config,
            host_config,
            path: argv[0].clone(),
            args: argv[1..].to_vec(),
            platform,
            workload,
            state: StateRecord {
                status: Status::Created,
                pid: 0,
                exit_code: 0,
                error: String::new(),
                oom_killed: false,
                started_at: util::ZERO_TIME.into(),
                finished_at: util::ZERO_TIME.into(),
            },
            restart_count: 0,
            manually_stopped: false,
            stopped_by_daemon: false,
        };
        let c = Self::container(&self.dir, record.clone())?;
        let launch = self.launch(&c, &record)?;
        executor.prepare(&launch).await?;
        // `Config.Volumes` paths exist in a native container (a Wasm
        // container's would be WASI preopens, which wait for volumes).
        if let Some(n) = record.workload.native() {
            let paths = fs::volume_paths(&record.config)?;
            if !paths.is_empty() {
                let lowers = self.native.layers.lowers(&n.layers)?;
                let (dir, cdir, id) = (self.dir.clone(), c.dir.clone(), id.to_string());
                tokio::task::spawn_blocking(move || {
                    fs::make_volume_dirs(&dir, &id, &lowers, &cdir, &paths)
                })
                .await
                .ctx("making the volume directories")??;
            }
        }
        // Committed at once, fsynced by the flusher a moment later (group
        // commit): an fsync here would be most of a Wasm container's
        // create-to-exit time.
        self.persist(&record, Durability::None)?;
        self.registry
            .write()
            .unwrap()
            .by_id
            .insert(id.to_string(), c);
        executor.created(&launch);
        Ok(())
    }

    /// `POST /containers/{id}/start`.
    #[tracing::instrument(level = "debug", skip_all, fields(container = name))]
    pub async fn start(self: &Arc<Self>, name: &str) -> Result<()> {
        let c = self.get(name)?;
        let _op = c.ops.lock().await;
        {
            let mut inner = c.inner.lock().unwrap();
            inner.record.manually_stopped = false;
            inner.record.restart_count = 0;
        }
        self.start_locked(&c).await
    }

    /// Starts a container whose `ops` lock the caller holds. Boxed because
    /// restart policies make start and exit handling mutually recursive.
    fn start_locked<'a>(
        self: &'a Arc<Self>,
        c: &'a Arc<Container>,
    ) -> futures_util::future::BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let began = std::time::Instant::now();
            if self.shutting_down.load(Ordering::Relaxed) {
                return Err(Error::conflict("berthd is shutting down"));
            }
            let rec = {
                let inner = c.inner.lock().unwrap();
                if inner.removed {
                    return Err(Error::not_found(format!("No such container: {}", c.id)));
                }
                match inner.record.state.status {
                    Status::Running => {
                        return Err(Error::not_modified("container already started"));
                    }
                    Status::Paused => {
                        return Err(Error::conflict(
                            "cannot start a paused container, try unpause instead",
                        ));
                    }
                    Status::Removing | Status::Dead => {
                        return Err(Error::conflict(format!(
                            "cannot start container {}: it is being removed",
                            c.id
                        )));
                    }
                    _ => {}
                }
                inner.record.clone()
            };
            let executor = self.executor(rec.workload.kind())?.clone();
            let launch = self.launch(c, &rec)?;
            if let Err(e) = executor.prepare(&launch).await {
                self.remove_after_failed_start(c).await;
                return Err(e);
            }
            c.logs.begin()?;
            let stdin_rx = {
                let mut inner = c.inner.lock().unwrap();
                inner.stdin_writer();
                inner.stdin_pending.take()
            };
            let stdio = Stdio {
                output: c.logs.clone() as Arc<dyn OutputSink>,
                stdin: stdin_rx,
            };
            tracing::trace!(container = %c.id, "start: prepared");
            // The exit may come before this start is recorded (a Wasm hello
            // runs in microseconds): its handling waits for `started`.
            let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
            let on_exit: crate::executor::ExitCallback = {
                let this = self.clone();
                let c = c.clone();
                Box::new(move |status| {
                    Box::pin(async move {
                        let _ = started_rx.await;
                        this.on_exit(c, status).await;
                    })
                })
            };
            let running = match executor.start(&launch, stdio, on_exit).await {
                Ok(r) => r,
                Err(e) => {
                    c.logs.end();
                    let rec = {
                        let mut inner = c.inner.lock().unwrap();
                        inner.record.state.error = e.to_string();
                        inner.record.state.exit_code = 128;
                        inner.record.clone()
                    };
                    let _ = self.persist(&rec, Durability::None);
                    self.remove_after_failed_start(c).await;
                    return Err(e);
                }
            };
            tracing::trace!(container = %c.id, "start: executor returned");
            let rec = {
                let mut inner = c.inner.lock().unwrap();
                let st = &mut inner.record.state;
                st.status = Status::Running;
                st.pid = running.pid;
                st.exit_code = 0;
                st.error.clear();
                st.oom_killed = false;
                st.started_at = util::now_rfc3339();
                inner.record.stopped_by_daemon = false;
                inner.control = Some(Arc::from(running.control));
                inner.start_began = Some(began);
                inner.timings.start_micros = Some(began.elapsed().as_micros() as u64);
                inner.timings.start_to_exit_micros = None;
                inner.record.clone()
            };
            c.watch.send_modify(|s| s.running = true);
            if let Err(e) = self.persist(&rec, Durability::None) {
                tracing::warn!(container = %c.id, error = %e, "recording start");
            }
            tracing::trace!(container = %c.id, "start: recorded");
            self.emit(c, "start", &[]);
            let _ = started_tx.send(());
            Ok(())
        })
    }

    /// A start that failed removes an `--rm` container, as Docker does: a
    /// client waiting for its removal (`docker run --rm`) then returns.
    async fn remove_after_failed_start(&self, c: &Container) {
        if !c.inner.lock().unwrap().record.host_config.auto_remove {
            return;
        }
        if let Err(e) = self.remove_locked(c).await {
            tracing::warn!(container = %c.id, error = %e, "auto-removing container");
        }
    }

    async fn on_exit(self: Arc<Self>, c: Arc<Container>, status: ExitStatus) {
        tracing::trace!(container = %c.id, "exit: monitor woke");
        c.logs.end();
        let shutting_down = self.shutting_down.load(Ordering::Relaxed);
        let (rec, restart) = {
            let mut inner = c.inner.lock().unwrap();
            inner.control = None;
            inner.stdin = None;
            inner.stdin_pending = None;
            if let Some(b) = inner.start_began.take() {
                inner.timings.start_to_exit_micros = Some(b.elapsed().as_micros() as u64);
            }
            let rec = &mut inner.record;
            rec.state.status = Status::Exited;
            rec.state.pid = 0;
            rec.state.exit_code = status.code;
            rec.state.error = status.error.clone().unwrap_or_default();
            rec.state.oom_killed = status.oom_killed;
            rec.state.finished_at = util::now_rfc3339();
            if shutting_down {
                rec.stopped_by_daemon = true;
            }
            let policy = Restart::parse(&rec.host_config).unwrap_or(Restart::No);
            let restart = !shutting_down
                && !rec.manually_stopped
                && match policy {
                    Restart::No => false,
                    Restart::Always | Restart::UnlessStopped => true,
                    Restart::OnFailure { max_retries } => {
                        status.code != 0 && (max_retries == 0 || rec.restart_count < max_retries)
                    }
                };
            if restart {
                rec.state.status = Status::Restarting;
            }
            (rec.clone(), restart)
        };
        self.persist_exit(&rec);
        tracing::debug!(container = %c.id, code = status.code, "container exited");
        if status.oom_killed {
            self.emit(&c, "oom", &[]);
        }
        self.emit(&c, "die", &[("exitCode", status.code.to_string())]);
        c.watch.send_modify(|s| {
            s.running = false;
            s.exits += 1;
            s.exit_code = status.code;
        });
        if rec.host_config.auto_remove && !shutting_down {
            let _op = c.ops.lock().await;
            tracing::trace!(container = %c.id, "auto-remove: locked");
            if !c.inner.lock().unwrap().removed
                && let Err(e) = self.remove_locked(&c).await
            {
                tracing::warn!(container = %c.id, error = %e, "auto-removing container");
            }
            return;
        }
        if restart {
            self.restart_after_exit(c, &rec).await;
        }
    }

    /// Restarts a container its policy says to restart, after Docker's
    /// backoff: 100 ms doubling per consecutive restart, reset when it ran
    /// for at least 10 seconds.
    async fn restart_after_exit(self: Arc<Self>, c: Arc<Container>, rec: &ContainerRecord) {
        let ran = match (
            util::parse_rfc3339(&rec.state.started_at),
            util::parse_rfc3339(&rec.state.finished_at),
        ) {
            (Some(s), Some(f)) => (f - s).to_std().unwrap_or_default(),
            _ => Duration::ZERO,
        };
        let n = if ran >= Duration::from_secs(10) {
            0
        } else {
            rec.restart_count.min(10) as u32
        };
        let delay = Duration::from_millis(100) * 2u32.pow(n);
        let delay = delay.min(Duration::from_secs(60));
        tokio::time::sleep(delay).await;
        let _op = c.ops.lock().await;
        {
            let mut inner = c.inner.lock().unwrap();
            if inner.removed
                || inner.record.manually_stopped
                || inner.record.state.status != Status::Restarting
            {
                return;
            }
            inner.record.state.status = Status::Exited;
            inner.record.restart_count += 1;
        }
        if let Err(e) = self.start_locked(&c).await {
            tracing::warn!(container = %c.id, error = %e, "restart failed");
        }
    }

    /// Waits until the exit count passes `exits`, for at most `timeout`.
    async fn wait_exit(c: &Container, exits: u64, timeout: Option<Duration>) -> bool {
        let mut rx = c.watch.subscribe();
        let fut = rx.wait_for(|s| s.exits > exits || s.removed);
        match timeout {
            None => fut.await.is_ok(),
            Some(t) => matches!(tokio::time::timeout(t, fut).await, Ok(Ok(_))),
        }
    }

    /// `POST /containers/{id}/stop`: the stop signal, then SIGKILL after
    /// the timeout (-1 waits forever).
    #[tracing::instrument(level = "debug", skip_all, fields(container = name))]
    pub async fn stop(&self, name: &str, timeout: Option<i64>, signal: Option<&str>) -> Result<()> {
        let c = self.get(name)?;
        let _op = c.ops.lock().await;
        self.stop_locked(&c, timeout, signal).await
    }

    async fn stop_locked(
        &self,
        c: &Container,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<()> {
        // A frozen process would get the signal only when thawed: unpause
        // first, as Docker does, so that stop ends a paused container.
        self.unpause_if_paused(c).await?;
        let (control, rec) = {
            let mut inner = c.inner.lock().unwrap();
            match inner.record.state.status {
                Status::Running | Status::Paused => {}
                Status::Restarting => {
                    inner.record.manually_stopped = true;
                    inner.record.state.status = Status::Exited;
                    let rec = inner.record.clone();
                    drop(inner);
                    self.persist(&rec, Durability::None)?;
                    return Ok(());
                }
                _ => return Err(Error::not_modified("container already stopped")),
            }
            inner.record.manually_stopped = true;
            (inner.control.clone(), inner.record.clone())
        };
        self.persist(&rec, Durability::None)?;
        let Some(control) = control else {
            return Ok(());
        };
        let sig_name = signal
            .filter(|s| !s.is_empty())
            .or(Some(rec.config.stop_signal.as_str()).filter(|s| !s.is_empty()))
            .unwrap_or("SIGTERM");
        let sig = parse_signal(sig_name)?;
        let timeout = timeout.or(rec.config.stop_timeout).unwrap_or(10);
        let exits = c.snapshot().exits;
        self.emit(c, "kill", &[("signal", sig.to_string())]);
        control.signal(sig)?;
        let grace = (timeout >= 0).then(|| Duration::from_secs(timeout as u64));
        if !Self::wait_exit(c, exits, grace).await {
            tracing::info!(container = %c.id, "did not stop in time; killing it");
            self.emit(c, "kill", &[("signal", "9".into())]);
            control.signal(9)?;
            if !Self::wait_exit(c, exits, Some(KILL_EXIT_WAIT)).await {
                return Err(Error::internal(format!(
                    "tried to kill container {}, but did not receive an exit event within {} s",
                    c.id,
                    KILL_EXIT_WAIT.as_secs()
                )));
            }
        }
        self.emit(c, "stop", &[]);
        Ok(())
    }

    /// `POST /containers/{id}/kill`. SIGKILL unpauses a paused container
    /// first (a frozen process cannot die); other signals to a paused
    /// native container wait for the unpause, as the kernel queues them.
    ///
    /// Other signals answer once delivered. SIGKILL answers once the exit
    /// is recorded, as Docker's: a client that inspects or removes the
    /// container right after finds it stopped. An exit not recorded within
    /// [`KILL_EXIT_WAIT`] is an error, as Docker's.
    #[tracing::instrument(level = "debug", skip_all, fields(container = name))]
    pub async fn kill(&self, name: &str, signal: Option<&str>) -> Result<()> {
        let c = self.get(name)?;
        let sig = parse_signal(signal.filter(|s| !s.is_empty()).unwrap_or("SIGKILL"))?;
        if sig == 9 {
            self.unpause_if_paused(&c).await?;
        }
        let (control, exits) = {
            let mut inner = c.inner.lock().unwrap();
            if !matches!(inner.record.state.status, Status::Running | Status::Paused) {
                return Err(Error::conflict(format!(
                    "Cannot kill container: {}: Container {} is not running",
                    name, c.id
                )));
            }
            if crate::executor::default_action(sig) == crate::executor::DefaultAction::Terminate {
                inner.record.manually_stopped = true;
            }
            // Counted before the signal goes, so its exit is not missed.
            (inner.control.clone(), c.snapshot().exits)
        };
        let Some(ctl) = control else {
            return Err(Error::conflict(format!(
                "Container {} is not running",
                c.id
            )));
        };
        self.emit(&c, "kill", &[("signal", sig.to_string())]);
        ctl.signal(sig)?;
        if sig == 9 && !Self::wait_exit(&c, exits, Some(KILL_EXIT_WAIT)).await {
            tracing::warn!(container = %c.id, "SIGKILL sent, but no exit recorded in time");
            return Err(Error::internal(format!(
                "tried to kill container {}, but did not receive an exit event within {} s",
                c.id,
                KILL_EXIT_WAIT.as_secs()
            )));
        }
        Ok(())
    }

    /// `POST /containers/{id}/resize`: the TTY's rows and columns.
    pub fn resize(&self, name: &str, rows: u16, cols: u16) -> Result<()> {
        let c = self.get(name)?;
        let (control, tty) = {
            let inner = c.inner.lock().unwrap();
            (inner.control.clone(), inner.record.config.tty)
        };
        if !tty {
            return Err(Error::invalid(format!(
                "container {} has no TTY to resize",
                c.id
            )));
        }
        match control {
            Some(ctl) => ctl.resize(rows, cols),
            None => Err(Error::conflict(format!(
                "Container {} is not running",
                c.id
            ))),
        }
    }

    /// `POST /containers/{id}/restart`.
    #[tracing::instrument(level = "debug", skip_all, fields(container = name))]
    pub async fn restart(
        self: &Arc<Self>,
        name: &str,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<()> {
        let c = self.get(name)?;
        let _op = c.ops.lock().await;
        match self.stop_locked(&c, timeout, signal).await {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotModified => {}
            Err(e) => return Err(e),
        }
        {
            let mut inner = c.inner.lock().unwrap();
            inner.record.manually_stopped = false;
            inner.record.restart_count = 0;
        }
        self.start_locked(&c).await?;
        self.emit(&c, "restart", &[]);
        Ok(())
    }

    /// `DELETE /containers/{id}`.
    #[tracing::instrument(level = "debug", skip_all, fields(container = name))]
    pub async fn remove(&self, name: &str, force: bool) -> Result<()> {
        let c = self.get(name)?;
        let _op = c.ops.lock().await;
        // A restarting container is between a crash and its next start: it
        // counts as running, as in Docker, and a forced removal ends its
        // restart loop (`manually_stopped` below, then `removed`, which the
        // pending restart checks under the `ops` lock held here).
        let status = c.inner.lock().unwrap().record.state.status;
        if status.counts_as_running() && !force {
            let procedure = if status == Status::Paused {
                "Unpause and then stop the container before attempting removal or force remove"
            } else {
                "Stop the container before attempting removal or force remove"
            };
            return Err(Error::conflict(format!(
                "You cannot remove a {} container {}. {procedure}",
                status.as_str(),
                c.id
            )));
        }
        let running = c.is_running();
        if running {
            self.unpause_if_paused(&c).await?;
            let (control, exits) = {
                let mut inner = c.inner.lock().unwrap();
                inner.record.manually_stopped = true;
                (inner.control.clone(), c.snapshot().exits)
            };
            if let Some(ctl) = control {
                self.emit(&c, "kill", &[("signal", "9".into())]);
                ctl.signal(9)?;
                if !Self::wait_exit(&c, exits, Some(KILL_EXIT_WAIT)).await {
                    return Err(Error::internal(format!(
                        "Could not kill running container {}, cannot remove: no exit event within {} s",
                        c.id,
                        KILL_EXIT_WAIT.as_secs()
                    )));
                }
            }
        }
        {
            let mut inner = c.inner.lock().unwrap();
            inner.record.manually_stopped = true;
        }
        self.remove_locked(&c).await
    }

    async fn remove_locked(&self, c: &Container) -> Result<()> {
        let rec = {
            let mut inner = c.inner.lock().unwrap();
            if inner.removed {
                return Ok(());
            }
            inner.record.state.status = Status::Removing;
            inner.record.clone()
        };
        // The record goes first, then the files. A crash in between leaves
        // either a record without its directory or a directory without its
        // record; the next start removes both kinds (see `open`), which is
        // also why the removal can wait for a lazy commit.
        self.stage(&rec.id, None, false);
        let dir = c.dir.clone();
        if let Ok(executor) = self.executor(rec.workload.kind()) {
            executor.release(&rec.id).await;
        }
        if rec.workload.native().is_some() {
            // The shim unmounts at exit; make sure before moving the files.
            let _ = crate::executor::native::overlay::unmount(&dir.join("rootfs"));
        }
        // The files move to the trash at once (one rename) and are deleted
        // in the background (see `trash`): `rm` and `run --rm` do not wait
        // for a container's writable layer to be deleted file by file.
        match self.trash.put(&dir, &rec.id) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !dir.exists() => {}
            Err(_) => {
                tokio::task::spawn_blocking(move || util::fsutil::remove_dir_all_if_exists(&dir))
                    .await
                    .ctx("removing container files")?
                    .ctx("removing container files")?;
            }
        }
        tracing::trace!(container = %rec.id, "remove: files removed");
        {
            let mut reg = self.registry.write().unwrap();
            reg.by_id.remove(&rec.id);
            if reg.by_name.get(&rec.name) == Some(&rec.id) {
                reg.by_name.remove(&rec.name);
            }
        }
        c.inner.lock().unwrap().removed = true;
        // Clients attached to a container that will not run again (it was
        // created, or stopped, and never started) are done.
        c.logs.end();
        self.execs.forget(&rec.id);
        self.events
            .container("destroy", &rec.id, event_attributes(&rec, &[]));
        c.watch.send_modify(|s| s.removed = true);
        Ok(())
    }

    /// `POST /containers/{id}/wait`. Registers the wait at once and returns
    /// a future of the result, so that the API can answer with headers
    /// before the container exits (the docker CLI starts the container only
    /// after it sees them).
    pub fn wait(
        &self,
        name: &str,
        condition: WaitCondition,
    ) -> Result<impl std::future::Future<Output = wire::WaitResponse> + Send + 'static> {
        let c = self.get(name)?;
        let mut rx = c.watch.subscribe();
        let start = rx.borrow().clone();
        let c2 = c.clone();
        Ok(async move {
            let done = |s: &Snapshot| match condition {
                WaitCondition::NotRunning => !s.running,
                WaitCondition::NextExit => s.exits > start.exits || s.removed,
                WaitCondition::Removed => s.removed,
            };
            let code = match rx.wait_for(done).await {
                Ok(s) => s.exit_code,
                // The container is gone.
                Err(_) => c2.snapshot().exit_code,
            };
            wire::WaitResponse {
                status_code: code,
                error: None,
            }
        })
    }

    /// `POST /containers/{id}/attach`.
    pub fn attach(&self, name: &str, opts: AttachOptions) -> Result<Attached> {
        let c = self.get(name)?;
        let rec = c.record();
        let filter = logs::Filter {
            stdout: opts.stdout,
            stderr: opts.stderr,
            ..Default::default()
        };
        let (len, rx) = c.logs.subscribe_after_log();
        let replay = if opts.logs {
            logs::read_range(c.logs.path(), 0, len, &filter)?.0
        } else {
            Vec::new()
        };
        // A stopped container's next run streams too: `docker start -a`
        // attaches before it starts an exited container.
        let live_ok = matches!(
            rec.state.status,
            Status::Created
                | Status::Running
                | Status::Restarting
                | Status::Paused
                | Status::Exited
        );
        self.events
            .container("attach", &rec.id, event_attributes(&rec, &[]));
        let stdin = if opts.stdin && live_ok {
            c.inner.lock().unwrap().stdin_writer()
        } else {
            None
        };
        Ok(Attached {
            tty: rec.config.tty,
            replay,
            live: (opts.stream && live_ok).then_some(rx),
            stdin,
            stdin_once: rec.config.stdin_once,
            container: c,
            events: self.events.clone(),
        })
    }

    /// `GET /containers/{id}/logs`: entries already logged and, with
    /// `follow`, those to come until the container stops.
    pub fn logs(
        &self,
        name: &str,
        opts: LogOptions,
    ) -> Result<(bool, mpsc::Receiver<logs::Entry>)> {
        let c = self.get(name)?;
        let tty = c.record().config.tty;
        let (tx, rx) = mpsc::channel(256);
        let sink = c.logs.clone();
        let mut progress = sink.progress();
        let path = sink.path().to_path_buf();
        let filter = opts.filter.clone();
        let follow = opts.follow;
        // Read the history now (tail applies to it only), then follow.
        let p = *progress.borrow_and_update();
        let (history, mut offset) = logs::read_range(&path, 0, p.len, &filter)?;
        let live_filter = logs::Filter {
            tail: None,
            ..filter
        };
        tokio::spawn(async move {
            for e in history {
                if tx.send(e).await.is_err() {
                    return;
                }
            }
            if !follow {
                return;
            }
            loop {
                let p = *progress.borrow_and_update();
                if p.len > offset {
                    let (entries, next) = match logs::read_range(&path, offset, p.len, &live_filter)
                    {
                        Ok(x) => x,
                        Err(e) => {
                            tracing::warn!(error = %e, "following log");
                            return;
                        }
                    };
                    offset = next;
                    for e in entries {
                        if tx.send(e).await.is_err() {
                            return;
                        }
                    }
                    continue;
                }
                if !p.open {
                    return;
                }
                tokio::select! {
                    r = progress.changed() => if r.is_err() { return },
                    _ = tx.closed() => return,
                }
            }
        });
        Ok((tty, rx))
    }

    /// `GET /containers/{id}/json`.
    pub fn inspect(&self, name: &str) -> Result<wire::Inspect> {
        let c = self.get(name)?;
        let (rec, timings) = {
            let inner = c.inner.lock().unwrap();
            let t = &inner.timings;
            let known = t.create_micros > 0 || t.start_micros.is_some();
            (inner.record.clone(), known.then(|| t.clone()))
        };
        Ok(wire::Inspect {
            id: rec.id.clone(),
            created: rec.created.clone(),
            path: rec.path.clone(),
            args: rec.args.clone(),
            state: wire::State {
                status: rec.state.status.as_str().into(),
                // Docker's paused containers are running, and paused; its
                // restarting ones are running, and restarting.
                running: rec.state.status.counts_as_running(),
                paused: rec.state.status == Status::Paused,
                restarting: rec.state.status == Status::Restarting,
                oom_killed: rec.state.oom_killed,
                dead: rec.state.status == Status::Dead,
                pid: rec.state.pid,
                exit_code: rec.state.exit_code,
                error: rec.state.error.clone(),
                started_at: rec.state.started_at.clone(),
                finished_at: rec.state.finished_at.clone(),
            },
            image: rec.image_id.to_string(),
            // The files bind-mounted into a native container (a Wasm
            // container has none), as Docker shows them.
            resolv_conf_path: etc_path(&rec, &c.dir, "resolv.conf"),
            hostname_path: etc_path(&rec, &c.dir, "hostname"),
            hosts_path: etc_path(&rec, &c.dir, "hosts"),
            log_path: c.logs.path().display().to_string(),
            name: format!("/{}", rec.name),
            restart_count: rec.restart_count,
            driver: "berth".into(),
            platform: rec.platform.clone(),
            mount_label: String::new(),
            process_label: String::new(),
            app_armor_profile: String::new(),
            exec_ids: Some(self.execs.of(&rec.id)).filter(|v| !v.is_empty()),
            host_config: wire::HostConfig {
                // The runtime that runs it, as Docker names its default
                // ("runc"): berth's own, for native and Wasm containers.
                runtime: Some(rec.host_config.runtime.as_str())
                    .filter(|r| !r.is_empty())
                    .unwrap_or(DEFAULT_RUNTIME)
                    .to_string(),
                ..rec.host_config.clone()
            },
            graph_driver: wire::GraphDriver {
                name: "berth".into(),
                data: [(
                    "RootDir".to_string(),
                    c.dir.join("rootfs").display().to_string(),
                )]
                .into(),
            },
            mounts: Vec::new(),
            config: rec.config.clone(),
            network_settings: serde_json::json!({"Networks": {}}),
            executor: rec.workload.kind().as_str().into(),
            timings,
        })
    }

    /// `GET /containers/json`.
    pub fn list(&self, all: bool, filters: &ListFilters) -> Result<Vec<wire::Summary>> {
        let cs: Vec<Arc<Container>> = self
            .registry
            .read()
            .unwrap()
            .by_id
            .values()
            .cloned()
            .collect();
        let mut recs: Vec<ContainerRecord> = cs.iter().map(|c| c.record()).collect();
        recs.sort_by(|a, b| b.created.cmp(&a.created));
        let now = chrono::Utc::now();
        let mut out = Vec::new();
        for rec in recs {
            let running = rec.state.status.counts_as_running();
            if !all && !running && filters.status.is_empty() {
                continue;
            }
            if !filters.matches(&rec, &self.images) {
                continue;
            }
            let mut command = vec![rec.path.clone()];
            command.extend(rec.args.iter().cloned());
            out.push(wire::Summary {
                id: rec.id.clone(),
                names: vec![format!("/{}", rec.name)],
                image: rec.image.clone(),
                image_id: rec.image_id.to_string(),
                command: command.join(" "),
                created: util::parse_rfc3339(&rec.created)
                    .map(|t| t.timestamp())
                    .unwrap_or(0),
                ports: Vec::new(),
                labels: rec.config.labels.clone(),
                state: rec.state.status.as_str().into(),
                status: status_text(&rec.state, now),
                host_config: wire::SummaryHostConfig {
                    network_mode: if rec.host_config.network_mode.is_empty() {
                        "default".into()
                    } else {
                        rec.host_config.network_mode.clone()
                    },
                },
                network_settings: serde_json::json!({"Networks": {}}),
                mounts: Vec::new(),
                executor: rec.workload.kind().as_str().into(),
            });
        }
        Ok(out)
    }

    /// Stops every running container for a daemon shutdown and waits for
    /// them (Wasm containers cannot outlive the daemon).
    ///
    /// With `live_restore`, native containers are left running under their
    /// shims, to be re-adopted by the next daemon (Docker's
    /// `--live-restore`); Wasm containers live in the daemon and always
    /// stop.
    pub async fn shutdown(&self, live_restore: bool) {
        self.shutting_down.store(true, Ordering::Relaxed);
        let cs: Vec<Arc<Container>> = self
            .registry
            .read()
            .unwrap()
            .by_id
            .values()
            .cloned()
            .collect();
        let mut waits = Vec::new();
        for c in cs {
            let (control, exits) = {
                let inner = c.inner.lock().unwrap();
                if !matches!(inner.record.state.status, Status::Running | Status::Paused) {
                    continue;
                }
                if live_restore && inner.record.workload.kind() == ExecutorKind::Native {
                    continue;
                }
                (inner.control.clone(), c.snapshot().exits)
            };
            if let Err(e) = self.unpause_if_paused(&c).await {
                tracing::warn!(container = %c.id, error = %e, "unpausing for shutdown");
            }
            if let Some(ctl) = control {
                let _ = ctl.signal(15);
                waits.push(async move {
                    if !Self::wait_exit(&c, exits, Some(Duration::from_secs(10))).await {
                        let _ = ctl.signal(9);
                        Self::wait_exit(&c, exits, Some(Duration::from_secs(5))).await;
                    }
                });
            }
        }
        futures_util::future::join_all(waits).await;
        // Give the monitors a moment to record the exits.
        tokio::task::yield_now().await;
        if let Err(e) = self.flush() {
            tracing::error!(error = %e, "flushing container state at shutdown");
        }
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

/// `create?platform=...` on a local image, as Docker checks it: an image of
/// another platform is "not found" (so a client pulls the one asked for).
/// A Wasm image satisfies any WASI platform, whatever OS its config names.
fn check_platform(reference: &str, image: &image::ImageRecord, want: &str) -> Result<()> {
    use image::manifest::Platform;
    let want = Platform::parse(want)?;
    if image.os.is_empty() {
        return Ok(());
    }
    let have = Platform {
        os: image.os.clone(),
        architecture: image.architecture.clone(),
        ..Default::default()
    };
    if have.satisfies(&want) || (want.is_wasm() && matches!(image.kind, ImageKind::Wasm { .. })) {
        return Ok(());
    }
    Err(Error::not_found(format!(
        "image with reference {reference} was found but its platform ({}) does not match the specified platform ({})",
        have.name(),
        want.name()
    )))
}

/// `/etc/hostname`, `/etc/hosts` and `/etc/resolv.conf` for a native
/// container, bind-mounted over its own.
/// Where a native container's `/etc/<name>` comes from; empty for Wasm.
fn etc_path(rec: &ContainerRecord, dir: &Path, name: &str) -> String {
    if rec.workload.native().is_some() {
        dir.join(name).display().to_string()
    } else {
        String::new()
    }
}

fn write_etc_files(dir: &Path, hostname: &str) -> Result<()> {
    std::fs::write(dir.join("hostname"), format!("{hostname}\n")).ctx("writing hostname")?;
    std::fs::write(
        dir.join("hosts"),
        format!(
            "127.0.0.1\tlocalhost {hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
        ),
    )
    .ctx("writing hosts")?;
    // The host's resolver settings, without loopback servers the container
    // cannot reach.
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let resolv: String = host
        .lines()
        .filter(|l| {
            !(l.trim_start().starts_with("nameserver")
                && l.split_whitespace()
                    .nth(1)
                    .is_some_and(|ip| ip.starts_with("127.") || ip == "::1"))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(dir.join("resolv.conf"), resolv).ctx("writing resolv.conf")?;
    Ok(())
}

/// Docker's `Status` column: "Up 5 seconds", "Exited (0) 2 minutes ago".
pub fn status_text(st: &StateRecord, now: chrono::DateTime<chrono::Utc>) -> String {
    use berth_api_types::units::human_duration;
    let since = |t: &str| {
        util::parse_rfc3339(t)
            .and_then(|t| (now - t).to_std().ok())
            .map(|d| human_duration(d.as_secs_f64()))
    };
    match st.status {
        Status::Created => "Created".into(),
        Status::Running => format!("Up {}", since(&st.started_at).unwrap_or_default()),
        Status::Paused => format!("Up {} (Paused)", since(&st.started_at).unwrap_or_default()),
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            st.exit_code,
            since(&st.finished_at).unwrap_or_default()
        ),
        Status::Exited => match since(&st.finished_at) {
            Some(d) if st.finished_at != util::ZERO_TIME => {
                format!("Exited ({}) {} ago", st.exit_code, d)
            }
            _ => format!("Exited ({})", st.exit_code),
        },
        Status::Removing => "Removal In Progress".into(),
        Status::Dead => "Dead".into(),
    }
}

/// `filters` of `GET /containers/json`.
#[derive(Debug, Clone, Default)]
pub struct ListFilters {
    pub id: Vec<String>,
    pub name: Vec<String>,
    pub label: Vec<String>,
    pub status: Vec<String>,
    pub exited: Vec<i64>,
    pub ancestor: Vec<String>,
}

/// Docker's filter JSON as (key, values) pairs: `{"status":["exited"]}`,
/// or the old `{"status":{"exited":true}}` whose keys are the values.
pub(crate) fn filter_pairs(json: &str) -> Result<Vec<(String, Vec<String>)>> {
    let v: serde_json::Value =
        serde_json::from_str(json).map_err(|e| Error::invalid(format!("invalid filters: {e}")))?;
    let obj = v
        .as_object()
        .ok_or_else(|| Error::invalid("invalid filters: expected a JSON object"))?;
    let mut pairs = Vec::with_capacity(obj.len());
    for (key, values) in obj {
        let values: Vec<String> = match values {
            serde_json::Value::Array(a) => a
                .iter()
                .map(|x| x.as_str().unwrap_or_default().to_string())
                .collect(),
            serde_json::Value::Object(o) => o.keys().cloned().collect(),
            _ => return Err(Error::invalid(format!("invalid filter values for '{key}'"))),
        };
        pairs.push((key.clone(), values));
    }
    Ok(pairs)
}

impl ListFilters {
    /// Parses Docker's filter JSON: `{"status":["exited"]}` (or the old
    /// `{"status":{"exited":true}}`).
    pub fn parse(json: &str) -> Result<ListFilters> {
        let mut f = ListFilters::default();
        if json.is_empty() {
            return Ok(f);
        }
        for (key, values) in filter_pairs(json)? {
            match key.as_str() {
                "id" => f.id = values,
                "name" => f.name = values,
                "label" => f.label = values,
                "status" => {
                    for s in &values {
                        if ![
                            "created",
                            "restarting",
                            "running",
                            "removing",
                            "paused",
                            "exited",
                            "dead",
                        ]
                        .contains(&s.as_str())
                        {
                            return Err(Error::invalid(format!(
                                "invalid filter 'status={s}': use created, restarting, running, removing, paused, exited or dead"
                            )));
                        }
                    }
                    f.status = values
                }
                "exited" => {
                    f.exited = values
                        .iter()
                        .map(|s| {
                            s.parse()
                                .map_err(|_| Error::invalid(format!("invalid filter 'exited={s}'")))
                        })
                        .collect::<Result<_>>()?
                }
                "ancestor" => f.ancestor = values,
                other => {
                    return Err(Error::invalid(format!(
                        "invalid filter '{other}': berth filters containers by id, name, label, status, exited and ancestor"
                    )));
                }
            }
        }
        Ok(f)
    }

    fn matches(&self, rec: &ContainerRecord, images: &Images) -> bool {
        if !self.id.is_empty() && !self.id.iter().any(|p| rec.id.starts_with(p.as_str())) {
            return false;
        }
        if !self.name.is_empty()
            && !self
                .name
                .iter()
                .any(|n| rec.name.contains(n.trim_start_matches('/')))
        {
            return false;
        }
        for l in &self.label {
            let ok = match l.split_once('=') {
                Some((k, v)) => rec.config.labels.get(k).map(String::as_str) == Some(v),
                None => rec.config.labels.contains_key(l),
            };
            if !ok {
                return false;
            }
        }
        if !self.status.is_empty() && !self.status.iter().any(|s| s == rec.state.status.as_str()) {
            return false;
        }
        if !self.exited.is_empty()
            && (rec.state.status != Status::Exited || !self.exited.contains(&rec.state.exit_code))
        {
            return false;
        }
        if !self.ancestor.is_empty()
            && !self.ancestor.iter().any(|a| {
                *a == rec.image
                    || images
                        .resolve(a)
                        .map(|i| i.id == rec.image_id)
                        .unwrap_or(false)
            })
        {
            return false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lazy_changes_wait_for_company_and_urgent_ones_do_not() {
        let mut p = Pending::default();
        assert_eq!(p.due_in(), None, "nothing to write");
        p.batch.insert("a".into(), None);
        p.since = Some(std::time::Instant::now());
        let d = p.due_in().unwrap();
        assert!(d > Duration::ZERO && d <= LAZY_COMMIT, "{d:?}");
        p.since = Some(std::time::Instant::now() - 2 * LAZY_COMMIT);
        assert_eq!(p.due_in(), Some(Duration::ZERO), "waited long enough");
        p.since = Some(std::time::Instant::now());
        p.urgent = true;
        assert_eq!(p.due_in(), Some(Duration::ZERO), "urgent goes at once");
    }

    /// A record as berthd wrote them before `WorkloadRecord`: the
    /// executor's kind beside an optional Wasm module and optional native
    /// layers (`native` absent from the oldest).
    fn record_json(
        executor: &str,
        wasm: serde_json::Value,
        native: Option<serde_json::Value>,
    ) -> String {
        let mut v = serde_json::json!({
            "id": "c0ffee", "name": "n", "created": "2026-01-01T00:00:00Z",
            "image": "app", "image_id": format!("sha256:{}", "a".repeat(64)),
            "config": serde_json::to_value(wire::Config::default()).unwrap(),
            "host_config": serde_json::to_value(wire::HostConfig::default()).unwrap(),
            "path": "/app", "args": ["x"], "executor": executor, "platform": "wasip1",
            "wasm": wasm,
            "state": {"status": "exited", "pid": 0, "exit_code": 3, "error": "",
                      "oom_killed": false, "started_at": "", "finished_at": ""},
            "restart_count": 0, "manually_stopped": false,
        });
        if let Some(n) = native {
            v["native"] = n;
        }
        v.to_string()
    }

    #[test]
    fn records_of_before_the_workload_enum_read_and_write_the_same() {
        let digest = format!("sha256:{}", "b".repeat(64));
        let wasm = serde_json::json!({"digest": digest, "target": "wasip1"});
        // The oldest Wasm records have no `native` at all.
        for json in [
            record_json("wasm", wasm.clone(), None),
            record_json("wasm", wasm.clone(), Some(serde_json::Value::Null)),
        ] {
            let rec: ContainerRecord = serde_json::from_str(&json).unwrap();
            let WorkloadRecord::Wasm(w) = &rec.workload else {
                panic!("{rec:?}")
            };
            assert_eq!(w.digest.to_string(), digest);
            assert_eq!(w.target, WasiTarget::Wasip1);
            // Written back in the same shape, which an older berthd reads.
            let out: serde_json::Value = serde_json::to_value(&rec).unwrap();
            assert_eq!(out["executor"], "wasm");
            assert_eq!(out["wasm"], wasm);
            assert_eq!(out["native"], serde_json::Value::Null);
            assert_eq!(out["state"]["exit_code"], 3);
            let again: ContainerRecord = serde_json::from_value(out).unwrap();
            assert_eq!(again, rec);
        }
        let native = serde_json::json!({
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": digest, "size": 10}],
            "capabilities": ["CAP_CHOWN"], "runtime": null,
        });
        let rec: ContainerRecord = serde_json::from_str(&record_json(
            "native",
            serde_json::Value::Null,
            Some(native.clone()),
        ))
        .unwrap();
        let WorkloadRecord::Native(n) = &rec.workload else {
            panic!("{rec:?}")
        };
        assert_eq!(n.capabilities, ["CAP_CHOWN"]);
        assert_eq!(n.layers.len(), 1);
        let out = serde_json::to_value(&rec).unwrap();
        assert_eq!(out["executor"], "native");
        assert_eq!(out["wasm"], serde_json::Value::Null);
        assert_eq!(out["native"]["capabilities"], native["capabilities"]);
        assert_eq!(serde_json::from_value::<ContainerRecord>(out).unwrap(), rec);
    }

    #[test]
    fn a_record_with_both_workloads_or_neither_is_refused() {
        let digest = format!("sha256:{}", "b".repeat(64));
        let wasm = serde_json::json!({"digest": digest, "target": "wasip1"});
        let native = serde_json::json!({"layers": [], "capabilities": [], "runtime": null});
        for json in [
            record_json("wasm", wasm.clone(), Some(native.clone())),
            record_json("native", wasm, Some(native)),
            record_json("wasm", serde_json::Value::Null, None),
            record_json("native", serde_json::Value::Null, None),
        ] {
            let e = serde_json::from_str::<ContainerRecord>(&json).unwrap_err();
            assert!(e.to_string().contains("container record with"), "{e}");
        }
    }
}
