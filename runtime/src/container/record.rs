//! What berth keeps about a container ([`ContainerRecord`]: its
//! configuration, [`WorkloadRecord`] and state) and how changes reach the
//! database: staged in memory and written by one background flusher in
//! group commits ([`Containers::run_flusher`]).

use super::*;

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
pub(super) struct WorkloadFields {
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

/// How long the flusher may hold a change a crash can lose without harm
/// (an exit, a removal) for others to share its commit.
pub(super) const LAZY_COMMIT: Duration = Duration::from_millis(20);

/// Record changes staged for the flusher.
#[derive(Default)]
pub(super) struct Pending {
    /// The newest snapshot of each changed container (`None`: removed).
    batch: HashMap<String, Option<ContainerRecord>>,
    /// Something in `batch` is to be flushed at once.
    urgent: bool,
    /// When the oldest change in `batch` was staged.
    since: Option<std::time::Instant>,
}

impl Pending {
    /// How long until the batch is due: `None` when there is nothing.
    pub(super) fn due_in(&self) -> Option<Duration> {
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

impl Containers {
    /// Commits a container's record. A registered container's *current*
    /// record is written, under its lock, rather than the caller's copy:
    /// callers clone the record, unlock, then persist, and a copy taken
    /// before a concurrent change (a rename during a start) must not undo
    /// it in the database. The caller must hold neither the registry nor
    /// the container lock.
    pub(super) fn persist(&self, rec: &ContainerRecord, durability: Durability) -> Result<()> {
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
    pub(super) fn persist_exit(&self, rec: &ContainerRecord) {
        let snapshot = self.newest(rec);
        let wasm = snapshot.workload.kind() == ExecutorKind::Wasm;
        self.stage(&rec.id, Some(snapshot), wasm);
    }

    /// The newest state of `rec`'s container: the registered container's
    /// record (`rec` itself while create commits, before it is registered).
    pub(super) fn newest(&self, rec: &ContainerRecord) -> ContainerRecord {
        let registered = self.registry.read().unwrap().by_id.get(&rec.id).cloned();
        match registered {
            Some(c) => c.inner.lock().unwrap().record.clone(),
            None => rec.clone(),
        }
    }

    /// Stages a record change for the flusher (`None`: the record goes);
    /// `now`: flush at once, else within [`LAZY_COMMIT`].
    pub(super) fn stage(&self, id: &str, rec: Option<ContainerRecord>, now: bool) {
        {
            let mut p = self.pending.lock().unwrap();
            p.batch.insert(id.to_string(), rec);
            p.urgent |= now;
            p.since.get_or_insert_with(std::time::Instant::now);
        }
        self.flush_wanted.notify_one();
    }

    /// Writes a record at once, superseding what is staged for it.
    pub(super) fn write_now(&self, rec: &ContainerRecord, durability: Durability) -> Result<()> {
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
