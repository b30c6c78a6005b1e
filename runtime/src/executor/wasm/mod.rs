//! The Wasm executor: every Wasm container runs in-process on one long-lived
//! `wasmtime::Engine`.
//!
//! - The pooling instance allocator with copy-on-write memory images keeps
//!   instantiation in the microseconds and bounds how many containers run.
//! - A guest's first slice runs on the thread that handled its start, so a
//!   short-lived guest ends without a hop to another thread; one still
//!   running after it goes on as an async task on a runtime of its own, so
//!   a busy module cannot starve the API. Epoch interruption makes every
//!   guest yield at each tick, so `stop` and `kill` take effect within a tick even in a
//!   busy loop, and a guest blocked in a host call is simply dropped.
//! - Memory is capped per container by a resource limiter (`--memory`),
//!   whose cap `docker update` can change while the guest runs.
//! - `pause` suspends a guest at its next epoch tick: the deadline callback
//!   sees the pause flag and yields on a future that waits for unpause. A
//!   guest blocked in a host call stays blocked (it is not running either).
//! - Compiled code is cached on disk keyed by the module digest and the
//!   engine's compatibility fingerprint, and the linked `InstancePre` is kept
//!   in memory, so only the first create of a module compiles. Precompiled
//!   code is never accepted from outside: the cache is written only here.
//! - Compiling has a budget ([`limits`], [`compile`]): a pre-parse refuses
//!   modules with more functions, declarations or bytes than the limits, and
//!   the compile itself runs in a helper process with a memory limit and a
//!   deadline, a few at a time, so one tenant's module cannot starve the
//!   daemon. A module refused for its cost stays refused (without another
//!   compile) until berthd restarts.
//! - A running container holds no descriptor it does not need: its root
//!   directory is preopened only for modules that can reach a filesystem
//!   (that import WASI's path functions or preopens), so an idle container
//!   blocked in a sleep holds none. Containers that do hold one are counted
//!   against berthd's RLIMIT_NOFILE, keeping a reserve for the API.
//!
//! Core modules get WASI preview 1; components get WASI 0.2 and must be
//! `wasi:cli/command`s.

mod compile;
pub mod limits;
mod stdio;

pub use compile::{HELPER_FLAG, helper_main};
pub use limits::WasmLimits;

use super::{
    Control, DefaultAction, ExecutorKind, ExitCallback, ExitStatus, Launch, Running, Stdio, Usage,
    WasiTarget, WasmModule, default_action,
};
use crate::error::{Error, Result, ResultExt};
use crate::util::Digest;
use berth_api_types::stream::StreamKind;
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;
use tokio::sync::{OnceCell, oneshot, watch};
use wasmtime::component::{Component, ResourceTable};
use wasmtime::{
    Engine, InstanceAllocationStrategy, InstancePre, Linker, Module, PoolingAllocationConfig,
    ResourceLimiter, Store, UpdateDeadline,
};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi::{I32Exit, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// Exit code of a container whose module trapped, as the wasmtime CLI
/// reports a trap (128 + SIGABRT).
pub const TRAP_EXIT_CODE: i64 = 134;
/// Exit code when the memory limit stopped the module (as an OOM kill).
pub const OOM_EXIT_CODE: i64 = 137;

/// Wasm containers that may run at once by default. Each slot reserves
/// address space for one linear memory (4 GiB plus guard pages), not memory:
/// 10,000 slots take about 42 TB of the 128 TB a process can address.
pub const DEFAULT_POOL_SLOTS: u32 = 10_000;

/// Settings for the Wasm engine.
#[derive(Debug, Clone)]
pub struct WasmConfig {
    /// Where compiled code is cached (a fingerprint subdirectory is used).
    pub cache_dir: PathBuf,
    /// How many Wasm containers can run at once (instance pool slots).
    pub pool_slots: u32,
    /// Largest linear memory a module may have, in bytes.
    pub max_memory: u64,
    /// The epoch tick: the longest a guest runs without yielding.
    pub tick: Duration,
    /// Threads that run guests.
    pub threads: usize,
    /// What compiling one module may cost.
    pub limits: WasmLimits,
    /// The berthd binary that compiles modules in a process of its own
    /// (see [`compile`]); `None` compiles on a thread of this process.
    pub compile_helper: Option<PathBuf>,
}

impl WasmConfig {
    pub fn new(cache_dir: PathBuf) -> WasmConfig {
        WasmConfig {
            cache_dir,
            pool_slots: DEFAULT_POOL_SLOTS,
            max_memory: 4 << 30,
            tick: Duration::from_millis(10),
            threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            limits: WasmLimits::default(),
            compile_helper: None,
        }
    }
}

/// A module compiled and linked, ready to instantiate.
#[derive(Clone)]
struct Prepared {
    linked: Linked,
    /// The module can reach a filesystem, so it gets its root preopened.
    fs: bool,
}

#[derive(Clone)]
enum Linked {
    Module(InstancePre<P1State>),
    Component(CommandPre<P2State>),
}

pub struct WasmExecutor {
    engine: Engine,
    p1: Linker<P1State>,
    p2: wasmtime::component::Linker<P2State>,
    cache_dir: PathBuf,
    prepared: Mutex<HashMap<Digest, Arc<OnceCell<Prepared>>>>,
    /// Modules refused for what they are (invalid, or too costly to
    /// compile), so that they are not compiled again.
    refused: Mutex<HashMap<Digest, Error>>,
    compiler: compile::Compiler,
    runtime: Option<tokio::runtime::Runtime>,
    running: Arc<AtomicI64>,
    /// Running containers that hold their root directory open.
    fd_holders: Arc<AtomicU64>,
    /// Descriptors berthd had open when the engine started.
    fds_at_start: u64,
    stop_ticker: Arc<AtomicBool>,
    config: WasmConfig,
}

struct P1State {
    wasi: WasiP1Ctx,
    limits: MemoryLimit,
}

struct P2State {
    ctx: WasiCtx,
    table: ResourceTable,
    limits: MemoryLimit,
}

impl WasiView for P2State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

/// Caps the total linear memory of one container and remembers whether the
/// cap was hit. The cap lives in [`LimitCell`], shared with the container's
/// control so that `docker update --memory` takes effect at the next growth.
struct MemoryLimit {
    cell: Arc<LimitCell>,
    exceeded: Option<u64>,
}

/// A running guest's memory cap and use, shared between its store and its
/// control.
struct LimitCell {
    /// The cap in bytes; `u64::MAX` is none.
    max: AtomicU64,
    /// Linear memory in use, in bytes.
    used: AtomicU64,
}

impl LimitCell {
    fn new(max: Option<u64>) -> LimitCell {
        LimitCell {
            max: AtomicU64::new(max.unwrap_or(u64::MAX)),
            used: AtomicU64::new(0),
        }
    }

    fn max(&self) -> Option<u64> {
        Some(self.max.load(Ordering::Relaxed)).filter(|m| *m != u64::MAX)
    }
}

impl ResourceLimiter for MemoryLimit {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let after = self.cell.used.load(Ordering::Relaxed) + (desired - current) as u64;
        if let Some(max) = self.cell.max()
            && after > max
        {
            self.exceeded = Some(after);
            wasmtime::bail!(
                "memory limit exceeded: the module asked for {after} bytes of linear memory; the container's limit is {max} bytes"
            );
        }
        self.cell.used.store(after, Ordering::Relaxed);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(true)
    }
}

impl WasmExecutor {
    pub fn new(config: WasmConfig) -> Result<WasmExecutor> {
        let mut pool = PoolingAllocationConfig::default();
        let slots = config.pool_slots.max(1);
        pool.total_core_instances(slots)
            .total_component_instances(slots)
            .total_memories(slots)
            .total_tables(slots)
            .total_stacks(slots)
            .max_memory_size(config.max_memory as usize)
            // Components built by wasm-component-ld hold a few core instances.
            .max_core_instances_per_component(16)
            .max_memories_per_component(4)
            .max_tables_per_component(8);
        let mut cfg = compile::engine_config();
        cfg.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&cfg)
            .map_err(|e| Error::internal(format!("starting the Wasm engine: {e:#}")))?;

        let mut p1 = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut p1, |s: &mut P1State| &mut s.wasi)
            .map_err(|e| Error::internal(format!("linking WASI preview 1: {e:#}")))?;
        let mut p2 = wasmtime::component::Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut p2)
            .map_err(|e| Error::internal(format!("linking WASI 0.2: {e:#}")))?;

        let cache_dir = config.cache_dir.join(engine_fingerprint(&engine));
        std::fs::create_dir_all(&cache_dir).ctx(format!("creating {}", cache_dir.display()))?;
        compile::sweep_temp_files(&cache_dir);
        let fds_at_start = open_descriptors();
        warn_if_descriptors_short(slots as u64, fds_at_start);

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.threads.max(1))
            .thread_name("berth-wasm")
            .enable_all()
            .build()
            .ctx("starting the Wasm runtime")?;

        let stop_ticker = Arc::new(AtomicBool::new(false));
        {
            let engine = engine.clone();
            let stop = stop_ticker.clone();
            let tick = config.tick;
            std::thread::Builder::new()
                .name("berth-wasm-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(tick);
                        engine.increment_epoch();
                    }
                })
                .ctx("starting the epoch ticker")?;
        }

        Ok(WasmExecutor {
            engine,
            p1,
            p2,
            cache_dir,
            prepared: Mutex::new(HashMap::new()),
            refused: Mutex::new(HashMap::new()),
            compiler: compile::Compiler::new(config.limits.clone(), config.compile_helper.clone()),
            runtime: Some(runtime),
            running: Arc::new(AtomicI64::new(0)),
            fd_holders: Arc::new(AtomicU64::new(0)),
            fds_at_start,
            stop_ticker,
            config,
        })
    }

    pub fn config(&self) -> &WasmConfig {
        &self.config
    }

    pub fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }

    /// Wasm containers running now.
    pub fn running(&self) -> i64 {
        self.running.load(Ordering::Relaxed)
    }

    /// Compiles and links a module without running it: what an import does
    /// to refuse a module that could never run. Returns the component's
    /// world description for components.
    pub async fn check(&self, module: &WasmModule) -> Result<Option<serde_json::Value>> {
        let prepared = self.load(module).await?;
        Ok(match prepared.linked {
            Linked::Module(_) => None,
            Linked::Component(pre) => Some(describe_component(
                &self.engine,
                pre.instance_pre().component(),
            )),
        })
    }

    async fn load(&self, module: &WasmModule) -> Result<Prepared> {
        if let Some(e) = self.refused.lock().unwrap().get(&module.digest) {
            return Err(e.clone());
        }
        let cell = self
            .prepared
            .lock()
            .unwrap()
            .entry(module.digest.clone())
            .or_default()
            .clone();
        let result = cell
            .get_or_try_init(|| self.compile_and_link(module))
            .await
            .cloned();
        if result.is_err() {
            let mut prepared = self.prepared.lock().unwrap();
            if prepared
                .get(&module.digest)
                .is_some_and(|c| c.get().is_none())
            {
                prepared.remove(&module.digest);
            }
        }
        result
    }

    /// Links the module from the code cache, compiling it into the cache
    /// first when it is not there.
    async fn compile_and_link(&self, module: &WasmModule) -> Result<Prepared> {
        let loader = WasmLoader {
            engine: self.engine.clone(),
            p1: self.p1.clone(),
            p2: self.p2.clone(),
        };
        let cached = self
            .cache_dir
            .join(format!("{}.cwasm", module.digest.hex()));
        let from_cache = || {
            let loader = loader.clone();
            let module = module.clone();
            let cached = cached.clone();
            async move {
                tokio::task::spawn_blocking(move || loader.link_cached(&module, &cached))
                    .await
                    .map_err(|e| Error::internal(format!("loading module: {e}")))?
            }
        };
        if let Some(p) = from_cache().await? {
            return Ok(p);
        }
        if let Err(refused) = self
            .compiler
            .compile(&self.engine, &module.path, module.target, &cached)
            .await
        {
            if refused.lasting {
                let mut map = self.refused.lock().unwrap();
                if map.len() >= 1024 {
                    map.clear();
                }
                map.insert(module.digest.clone(), refused.error.clone());
            }
            return Err(refused.error);
        }
        from_cache().await?.ok_or_else(|| {
            Error::internal(
                "the module was compiled but its code cannot be loaded (see berthd's log)",
            )
        })
    }

    /// Refuses a container that would hold a descriptor when berthd has no
    /// more to spare: when the running ones hold their share, or when the
    /// lowest free descriptor (what the kernel hands out next; every one
    /// below it is open) is within the reserve of the limit.
    fn check_descriptors(&self) -> Result<()> {
        let held = self.fd_holders.load(Ordering::Relaxed);
        let budget = DescriptorBudget::now(self.fds_at_start);
        let next = lowest_free_descriptor();
        let crowded = next.is_none_or(|fd| fd + budget.reserve >= budget.limit);
        if held >= budget.for_containers || crowded {
            let in_use = next.map_or(budget.limit, |fd| fd.max(held));
            return Err(Error::conflict(format!(
                "cannot start another Wasm container that uses a filesystem: berthd has {in_use} or \
                 more of its {} descriptors in use (its RLIMIT_NOFILE), {held} of them held by \
                 running Wasm containers (one each), and keeps {} free for its API. Raise \
                 berthd's limit (`ulimit -n`, or LimitNOFILE= in its systemd unit), stop some \
                 containers, or lower --wasm-pool-slots so that fewer run at once",
                budget.limit, budget.reserve
            )));
        }
        Ok(())
    }
}

impl Drop for WasmExecutor {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// How many descriptors Wasm containers may hold: berthd's soft
/// RLIMIT_NOFILE less what it had open at start and a reserve (an eighth of
/// the limit, at least 256) for API connections, held logs, image work and
/// shims.
struct DescriptorBudget {
    limit: u64,
    reserve: u64,
    for_containers: u64,
}

impl DescriptorBudget {
    fn now(at_start: u64) -> DescriptorBudget {
        let limit = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
            .map(|(soft, _)| soft)
            .unwrap_or(1024);
        let reserve = (limit / 8).max(256);
        DescriptorBudget {
            limit,
            reserve,
            for_containers: limit.saturating_sub(at_start + reserve),
        }
    }
}

/// The descriptor the kernel would hand out next (`None`: none is free).
fn lowest_free_descriptor() -> Option<u64> {
    // SAFETY: opens a path descriptor and closes it at once.
    let fd = unsafe { libc::open(c"/".as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
    if fd < 0 {
        return None;
    }
    // SAFETY: `fd` was just opened here.
    unsafe { libc::close(fd) };
    Some(fd as u64)
}

/// Descriptors this process has open.
fn open_descriptors() -> u64 {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count() as u64)
        .unwrap_or(0)
}

/// Says at start when the pool could run more containers that hold a
/// descriptor than the descriptor limit allows.
fn warn_if_descriptors_short(slots: u64, at_start: u64) {
    let budget = DescriptorBudget::now(at_start);
    if slots > budget.for_containers {
        tracing::warn!(
            "--wasm-pool-slots {slots} is more than berthd's descriptor limit allows: with \
             RLIMIT_NOFILE {} (less {} kept for the API and berthd's own work), only {} Wasm \
             containers that use a filesystem can run at once (each holds its root directory \
             open; modules without filesystem imports hold none). Raise the limit (`ulimit -n`, \
             or LimitNOFILE= in berthd's systemd unit) or lower --wasm-pool-slots",
            budget.limit,
            budget.reserve,
            budget.for_containers
        );
    }
}

/// Links compiled code from the cache, on a blocking thread.
#[derive(Clone)]
struct WasmLoader {
    engine: Engine,
    p1: Linker<P1State>,
    p2: wasmtime::component::Linker<P2State>,
}

impl WasmLoader {
    /// The module linked from its compiled code at `cached`; `None` when
    /// there is none (or it was unusable, and removed).
    fn link_cached(&self, module: &WasmModule, cached: &Path) -> Result<Option<Prepared>> {
        match module.target {
            WasiTarget::Wasip1 => {
                let Some(m) = self.cached(cached, |e, p| unsafe {
                    // SAFETY: the cache directory is written only by
                    // `compile`, from modules berth compiled itself with
                    // this engine configuration.
                    Module::deserialize_file(e, p)
                }) else {
                    return Ok(None);
                };
                match m.get_export("_start") {
                    Some(wasmtime::ExternType::Func(_)) => {}
                    _ => {
                        return Err(Error::invalid(
                            "the module exports no _start function: berth runs WASI command modules \
                             (a reactor or library module cannot run as a container)",
                        ));
                    }
                }
                let fs = module_uses_fs(&m);
                let pre = self.p1.instantiate_pre(&m).map_err(link_error)?;
                Ok(Some(Prepared {
                    linked: Linked::Module(pre),
                    fs,
                }))
            }
            WasiTarget::Wasip2 => {
                let Some(c) = self.cached(cached, |e, p| unsafe {
                    // SAFETY: as above; only berth writes this cache.
                    Component::deserialize_file(e, p)
                }) else {
                    return Ok(None);
                };
                let fs = component_uses_fs(&self.engine, &c);
                let pre = self.p2.instantiate_pre(&c).map_err(link_error)?;
                let pre = CommandPre::new(pre).map_err(|e| {
                    Error::invalid(format!(
                        "the component is not a wasi:cli/command (it must export wasi:cli/run): {e:#}"
                    ))
                })?;
                Ok(Some(Prepared {
                    linked: Linked::Component(pre),
                    fs,
                }))
            }
        }
    }

    fn cached<T>(
        &self,
        path: &Path,
        load: impl FnOnce(&Engine, &Path) -> wasmtime::Result<T>,
    ) -> Option<T> {
        if !path.exists() {
            return None;
        }
        match load(&self.engine, path) {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "discarding unusable compiled module");
                let _ = std::fs::remove_file(path);
                None
            }
        }
    }
}

/// Can this core module reach a filesystem? Only through WASI's path
/// functions, or the preopens it finds with `fd_prestat_get` and lists with
/// `fd_readdir`; one that imports none of them gets no preopened root.
fn module_uses_fs(m: &Module) -> bool {
    m.imports().any(|i| {
        i.module() == "wasi_snapshot_preview1"
            && (i.name().starts_with("path_")
                || matches!(
                    i.name(),
                    "fd_prestat_get" | "fd_prestat_dir_name" | "fd_readdir"
                ))
    })
}

/// Can this component reach a filesystem? Descriptors come only from
/// `wasi:filesystem/preopens`.
fn component_uses_fs(engine: &Engine, c: &Component) -> bool {
    c.component_type()
        .imports(engine)
        .any(|(name, _)| name.starts_with("wasi:filesystem/preopens"))
}

fn link_error(e: wasmtime::Error) -> Error {
    Error::invalid(format!(
        "cannot run this module: {e:#}. berth provides WASI preview 1 (wasi_snapshot_preview1) \
         to core modules and WASI 0.2 (wasi:cli/command) to components, and nothing else"
    ))
}

/// A stable name for this engine's compiled-code format.
fn engine_fingerprint(engine: &Engine) -> String {
    let mut h = std::hash::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    env!("CARGO_PKG_VERSION").hash(&mut h);
    format!("{:016x}", h.finish())
}

/// The component section of a CNCF Wasm config: the world's imports and
/// exports by name.
fn describe_component(engine: &Engine, component: &Component) -> serde_json::Value {
    let ty = component.component_type();
    let imports: Vec<String> = ty.imports(engine).map(|(n, _)| n.to_string()).collect();
    let exports: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_string()).collect();
    let target = if exports.iter().any(|e| e.starts_with("wasi:cli/run")) {
        "wasi:cli/command@0.2.0"
    } else {
        ""
    };
    serde_json::json!({ "imports": imports, "exports": exports, "target": target })
}

impl super::Executor for WasmExecutor {
    fn kind(&self) -> ExecutorKind {
        ExecutorKind::Wasm
    }

    fn prepare<'a>(&'a self, launch: &'a Launch) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let module = launch
                .wasm
                .as_ref()
                .ok_or_else(|| Error::internal("a Wasm container without a module"))?;
            self.load(module).await.map(|_| ())
        })
    }

    fn start<'a>(
        &'a self,
        launch: &'a Launch,
        stdio: Stdio,
        on_exit: ExitCallback,
    ) -> BoxFuture<'a, Result<Running>> {
        let started = self.start_now(launch, stdio, on_exit);
        Box::pin(async move { started })
    }
}

impl WasmExecutor {
    /// Starting a Wasm guest needs no waiting: it is spawned at once.
    fn start_now(&self, launch: &Launch, stdio: Stdio, on_exit: ExitCallback) -> Result<Running> {
        let slots = self.config.pool_slots.max(1) as i64;
        if self.running.load(Ordering::Relaxed) >= slots {
            return Err(Error::conflict(format!(
                "berthd already runs {slots} Wasm containers, its limit: stop some, or start \
                 berthd with a larger --wasm-pool-slots"
            )));
        }
        let module = launch
            .wasm
            .as_ref()
            .ok_or_else(|| Error::internal("a Wasm container without a module"))?;
        let prepared = self
            .prepared
            .lock()
            .unwrap()
            .get(&module.digest)
            .and_then(|c| c.get().cloned())
            .ok_or_else(|| Error::internal("module was not prepared before start"))?;

        tracing::trace!("wasm: start");
        let mut b = WasiCtxBuilder::new();
        b.args(launch.args());
        for kv in launch.env() {
            let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
            b.env(k, v);
        }
        b.stdout(stdio::SinkStream::new(
            stdio.output.clone(),
            StreamKind::Stdout,
        ));
        b.stderr(stdio::SinkStream::new(
            stdio.output.clone(),
            StreamKind::Stderr,
        ));
        if let Some(rx) = stdio.stdin {
            b.stdin(wasmtime_wasi::cli::AsyncStdinStream::new(
                stdio::ChannelReader::new(rx),
            ));
        }
        // The root directory stays open while the guest runs: only for a
        // module that can use it.
        let holds_fd = if prepared.fs {
            self.check_descriptors()?;
            // `--read-only`: the guest may read its filesystem, not change it.
            let perms = if launch.spec.root().as_ref().and_then(|r| r.readonly()) == Some(true) {
                wasmtime_wasi::FsPerms::ReadOnly
            } else {
                wasmtime_wasi::FsPerms::ReadWrite
            };
            b.preopened_dir(&launch.rootfs, "/", perms).map_err(|e| {
                Error::internal(crate::error::with_fd_hint(format!(
                    "opening the container's filesystem: {e:#}"
                )))
            })?;
            self.fd_holders.fetch_add(1, Ordering::Relaxed);
            Some(self.fd_holders.clone())
        } else {
            None
        };
        b.initial_cwd(launch.cwd());
        let cell = Arc::new(LimitCell::new(launch.memory_limit()));
        let limits = MemoryLimit {
            cell: cell.clone(),
            exceeded: None,
        };
        let (pause_tx, pause_rx) = watch::channel(false);

        let (kill_tx, kill_rx) = oneshot::channel::<i32>();
        let engine = self.engine.clone();
        let output = stdio.output;
        let running = self.running.clone();
        running.fetch_add(1, Ordering::Relaxed);
        let cpu_ns = Arc::new(AtomicU64::new(0));
        let cpu = cpu_ns.clone();
        let wasm_runtime = self
            .runtime
            .as_ref()
            .expect("runtime lives as long as the executor")
            .handle()
            .clone();
        let task = async move {
            tracing::trace!("wasm: task running");
            let run = async move {
                match prepared.linked {
                    Linked::Module(pre) => {
                        let state = P1State {
                            wasi: b.build_p1(),
                            limits,
                        };
                        run_module(&engine, pre, state, pause_rx).await
                    }
                    Linked::Component(pre) => {
                        let state = P2State {
                            ctx: b.build(),
                            table: ResourceTable::new(),
                            limits,
                        };
                        run_component(&engine, pre, state, pause_rx).await
                    }
                }
            };
            // A panic in wasmtime or WASI must still end the container.
            let run = std::panic::AssertUnwindSafe(run).catch_unwind();
            // The time spent in its polls is the guest's CPU time: the
            // guest, and the host calls it makes, run inside them.
            let mut run = Box::pin(run);
            let mut run = Box::pin(std::future::poll_fn(move |cx| {
                let began = std::time::Instant::now();
                let r = run.as_mut().poll(cx);
                cpu.fetch_add(began.elapsed().as_nanos() as u64, Ordering::Relaxed);
                r
            }));
            let mut kill_rx = kill_rx;
            // The guest's first slice (until it waits or its first epoch
            // tick) runs right here, on the thread that handled the start:
            // a short-lived guest ends without waking another thread. One
            // still running goes on on the Wasm runtime's threads, so that
            // guests do not hold up the API's.
            let first = tokio::select! {
                biased;
                Ok(sig) = &mut kill_rx => Some(Outcome::Killed(sig)),
                r = poll_once(&mut run) => match r {
                    Poll::Ready(done) => Some(Outcome::Done(done.ok())),
                    Poll::Pending => None,
                },
            };
            let outcome = match first {
                Some(o) => o,
                None => {
                    let rest = async move {
                        tokio::select! {
                            done = run => Outcome::Done(done.ok()),
                            Ok(sig) = kill_rx => Outcome::Killed(sig),
                        }
                    };
                    wasm_runtime
                        .spawn(rest)
                        .await
                        .unwrap_or(Outcome::Done(None))
                }
            };
            let mut spent = None;
            let status = match outcome {
                Outcome::Done(Some((status, store))) => {
                    spent = Some(store);
                    status
                }
                Outcome::Done(None) => ExitStatus {
                    code: 255,
                    error: Some(
                        "the Wasm engine failed while running this container (see berthd's log)"
                            .into(),
                    ),
                    ..Default::default()
                },
                Outcome::Killed(sig) => ExitStatus {
                    code: 128 + sig as i64,
                    ..Default::default()
                },
            };
            if let Some(msg) = status.detail.as_ref().or(status.error.as_ref()) {
                output.write(
                    StreamKind::Stderr,
                    format!("{}\n", msg.trim_end()).as_bytes(),
                );
            }
            // The exit is recorded right here, on this thread, by the first
            // poll of its handling (everything up to its first wait), before
            // the instance slot is given back (resetting the memory the
            // guest touched): the client waiting for the exit waits for
            // neither a hop to another task nor that reset. The rest (an
            // auto-remove, a restart's backoff) runs after the slot is free.
            let mut exit = on_exit(status);
            let first = poll_once(&mut exit).await;
            drop(spent);
            if let Some(holders) = holds_fd {
                holders.fetch_sub(1, Ordering::Relaxed);
            }
            running.fetch_sub(1, Ordering::Relaxed);
            if first.is_pending() {
                exit.await;
            }
        };
        tracing::trace!("wasm: spawning");
        match tokio::runtime::Handle::try_current() {
            Ok(here) => here.spawn(task),
            Err(_) => self
                .runtime
                .as_ref()
                .expect("runtime lives as long as the executor")
                .spawn(task),
        };
        Ok(Running {
            pid: 0,
            control: Box::new(WasmControl {
                kill: Mutex::new(Some(kill_tx)),
                pause: pause_tx,
                limit: cell,
                cpu_ns,
            }),
        })
    }
}

/// Polls `f` once, and says whether it finished.
async fn poll_once<F: Future + Unpin>(f: &mut F) -> Poll<F::Output> {
    std::future::poll_fn(|cx| Poll::Ready(std::pin::Pin::new(&mut *f).poll(cx))).await
}

/// How a guest's run ended: its status and store (`None`: the engine
/// failed), or killed by a signal.
enum Outcome<S> {
    Done(Option<(ExitStatus, S)>),
    Killed(i32),
}

/// A store that yields at every epoch tick, and while `paused` is true
/// stays suspended at the tick until it turns false (or its sender goes).
fn new_store<T: Send>(
    engine: &Engine,
    state: T,
    limits: fn(&mut T) -> &mut MemoryLimit,
    paused: watch::Receiver<bool>,
) -> Store<T> {
    let mut store = Store::new(engine, state);
    store.limiter(move |s| limits(s) as &mut dyn ResourceLimiter);
    store.epoch_deadline_callback(move |_| {
        if !*paused.borrow() {
            return Ok(UpdateDeadline::Yield(1));
        }
        let mut rx = paused.clone();
        Ok(UpdateDeadline::YieldCustom(
            1,
            Box::pin(async move {
                let _ = rx.wait_for(|p| !*p).await;
            }),
        ))
    });
    store.set_epoch_deadline(1);
    store
}

async fn run_module(
    engine: &Engine,
    pre: InstancePre<P1State>,
    state: P1State,
    paused: watch::Receiver<bool>,
) -> (ExitStatus, Spent) {
    let mut store = new_store(engine, state, |s| &mut s.limits, paused);
    let result = async {
        let instance = pre.instantiate_async(&mut store).await?;
        tracing::trace!("wasm: instantiated");
        let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
        start.call_async(&mut store, ()).await
    }
    .await;
    tracing::trace!("wasm: returned");
    let status = classify(result.map(|()| 0), &store.data().limits);
    (status, Box::new(store))
}

/// A finished guest's store, dropped beside the recording of its exit:
/// giving its instance slot back to the pool (resetting the memory it
/// touched) is not on the way to the client waiting for the exit.
type Spent = Box<dyn std::any::Any + Send>;

async fn run_component(
    engine: &Engine,
    pre: CommandPre<P2State>,
    state: P2State,
    paused: watch::Receiver<bool>,
) -> (ExitStatus, Spent) {
    let mut store = new_store(engine, state, |s| &mut s.limits, paused);
    let result = async {
        let command = pre.instantiate_async(&mut store).await?;
        command.wasi_cli_run().call_run(&mut store).await
    }
    .await;
    let status = classify(
        result.map(|r| if r.is_ok() { 0 } else { 1 }),
        &store.data().limits,
    );
    (status, Box::new(store))
}

/// Turns a guest's result into an exit status: `proc_exit`/`exit` give their
/// code, a hit memory limit reads as an OOM kill, any other error is a trap.
fn classify(result: wasmtime::Result<i64>, limits: &MemoryLimit) -> ExitStatus {
    match result {
        Ok(code) => ExitStatus {
            code,
            ..Default::default()
        },
        Err(e) => {
            if let Some(exit) = e.downcast_ref::<I32Exit>() {
                return ExitStatus {
                    code: exit.0 as i64,
                    ..Default::default()
                };
            }
            if limits.exceeded.is_some() {
                return ExitStatus {
                    code: OOM_EXIT_CODE,
                    error: Some(format!("{}", e.root_cause())),
                    oom_killed: true,
                    detail: None,
                };
            }
            // "wasm trap: wasm `unreachable` instruction executed", with the
            // backtrace kept for the log.
            let error = match e.downcast_ref::<wasmtime::Trap>() {
                Some(trap) => format!("wasm trap: {trap}"),
                None => format!("wasm trap: {}", e.root_cause()),
            };
            let detail = e
                .downcast_ref::<wasmtime::WasmBacktrace>()
                .map(|bt| format!("{error}\n{bt}"));
            ExitStatus {
                code: TRAP_EXIT_CODE,
                error: Some(error),
                oom_killed: false,
                detail,
            }
        }
    }
}

struct WasmControl {
    kill: Mutex<Option<oneshot::Sender<i32>>>,
    /// True while paused; the store's epoch callback waits on it.
    pause: watch::Sender<bool>,
    limit: Arc<LimitCell>,
    /// Time spent running the guest.
    cpu_ns: Arc<AtomicU64>,
}

impl Control for WasmControl {
    fn usage(&self) -> Option<Usage> {
        Some(Usage {
            cpu_ns: self.cpu_ns.load(Ordering::Relaxed),
            memory: self.limit.used.load(Ordering::Relaxed),
            memory_limit: self.limit.max(),
        })
    }

    /// WASI has no terminal size: there is nothing to resize.
    fn resize(&self, _rows: u16, _cols: u16) -> Result<()> {
        Ok(())
    }

    fn pause(&self) -> Result<()> {
        self.pause.send_replace(true);
        Ok(())
    }

    fn resume(&self) -> Result<()> {
        self.pause.send_replace(false);
        Ok(())
    }

    /// Takes effect at the guest's next memory growth. Linear memory never
    /// shrinks, so a cap below what the guest holds already is refused.
    fn set_memory_limit(&self, limit: Option<u64>) -> Result<()> {
        let used = self.limit.used.load(Ordering::Relaxed);
        if let Some(l) = limit
            && l < used
        {
            return Err(Error::invalid(format!(
                "cannot lower the memory limit to {l} bytes: the module already uses {used} bytes of linear memory, which cannot shrink"
            )));
        }
        self.limit
            .max
            .store(limit.unwrap_or(u64::MAX), Ordering::Relaxed);
        Ok(())
    }

    fn signal(&self, sig: i32) -> Result<()> {
        match default_action(sig) {
            DefaultAction::Ignore => Ok(()),
            DefaultAction::Terminate => {
                if let Some(tx) = self.kill.lock().unwrap().take() {
                    let _ = tx.send(sig);
                }
                Ok(())
            }
            DefaultAction::Stop | DefaultAction::Continue => Err(Error::invalid(format!(
                "signal {} cannot be delivered to a Wasm container: a module has no job control",
                super::signal_name(sig)
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn executor(dir: &Path, limits: WasmLimits) -> WasmExecutor {
        let mut config = WasmConfig::new(dir.join("cache"));
        config.pool_slots = 2;
        config.limits = limits;
        WasmExecutor::new(config).unwrap()
    }

    fn module(dir: &Path, name: &str, wat: &str) -> WasmModule {
        let bytes = wat::parse_str(wat).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, &bytes).unwrap();
        WasmModule {
            digest: Digest::of(&bytes),
            path,
            target: crate::image::wasm::detect(&bytes).unwrap(),
        }
    }

    #[test]
    fn the_helpers_engine_writes_code_the_daemons_engine_loads() {
        let dir = tempfile::tempdir().unwrap();
        let daemon = executor(dir.path(), WasmLimits::default());
        let helper = Engine::new(&compile::engine_config()).unwrap();
        assert_eq!(
            engine_fingerprint(&daemon.engine),
            engine_fingerprint(&helper)
        );
        let wasm = wat::parse_str(r#"(module (func (export "_start")))"#).unwrap();
        let code = helper.precompile_module(&wasm).unwrap();
        // SAFETY: compiled just now by wasmtime.
        unsafe { Module::deserialize(&daemon.engine, &code) }.unwrap();
    }

    #[tokio::test]
    async fn a_module_over_a_limit_is_refused_and_stays_refused() {
        let dir = tempfile::tempdir().unwrap();
        let limits = WasmLimits {
            functions: 3,
            ..Default::default()
        };
        let ex = executor(dir.path(), limits);
        let ok = module(
            dir.path(),
            "ok.wasm",
            r#"(module (func (export "_start")) (func) (func))"#,
        );
        ex.check(&ok).await.unwrap();
        let big = module(
            dir.path(),
            "big.wasm",
            r#"(module (func (export "_start")) (func) (func) (func))"#,
        );
        let e = ex.check(&big).await.unwrap_err().to_string();
        assert!(
            e.contains("4 functions") && e.contains("--wasm-limit functions=N"),
            "{e}"
        );
        assert!(
            !ex.cache_dir
                .join(format!("{}.cwasm", big.digest.hex()))
                .exists()
        );
        // Remembered: refused again without reading the module.
        std::fs::remove_file(&big.path).unwrap();
        let again = ex.check(&big).await.unwrap_err().to_string();
        assert_eq!(again, e);
    }

    #[tokio::test]
    async fn a_compile_past_its_deadline_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let limits = WasmLimits {
            compile_time: Duration::from_millis(1),
            ..Default::default()
        };
        let ex = executor(dir.path(), limits);
        let wat = format!(
            r#"(module (func (export "_start")) {})"#,
            "(func (local i32) (local.set 0 (i32.add (local.get 0) (i32.const 1))))".repeat(20_000)
        );
        let m = module(dir.path(), "slow.wasm", &wat);
        let e = ex.check(&m).await.unwrap_err().to_string();
        assert!(e.contains("--wasm-limit compile-time=SECONDS"), "{e}");
    }

    #[tokio::test]
    async fn only_modules_with_filesystem_imports_get_a_preopened_root() {
        let dir = tempfile::tempdir().unwrap();
        let ex = executor(dir.path(), WasmLimits::default());
        let plain = module(
            dir.path(),
            "plain.wasm",
            r#"(module
                (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
                (memory (export "memory") 1)
                (func (export "_start")))"#,
        );
        assert!(!ex.load(&plain).await.unwrap().fs);
        for import in ["path_open", "fd_prestat_get", "fd_readdir"] {
            let (params, results) = match import {
                "path_open" => ("i32 i32 i32 i32 i32 i64 i64 i32 i32", "i32"),
                "fd_prestat_get" => ("i32 i32", "i32"),
                _ => ("i32 i32 i32 i64 i32", "i32"),
            };
            let m = module(
                dir.path(),
                &format!("{import}.wasm"),
                &format!(
                    r#"(module
                        (import "wasi_snapshot_preview1" "{import}" (func (param {params}) (result {results})))
                        (memory (export "memory") 1)
                        (func (export "_start")))"#
                ),
            );
            assert!(ex.load(&m).await.unwrap().fs, "{import}");
        }
        let engine = Engine::new(&compile::engine_config()).unwrap();
        let with = Component::new(
            &engine,
            r#"(component (import "wasi:filesystem/preopens@0.2.0" (instance)))"#,
        )
        .unwrap();
        assert!(component_uses_fs(&engine, &with));
        let without = Component::new(
            &engine,
            r#"(component (import "wasi:cli/stdout@0.2.0" (instance)))"#,
        )
        .unwrap();
        assert!(!component_uses_fs(&engine, &without));
    }
}
