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
mod run;
mod stdio;

pub use compile::{HELPER_FLAG, helper_main};
pub use limits::WasmLimits;
use run::*;

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
                .wasm()
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
            target: if wasmparser::Parser::is_component(&bytes) {
                WasiTarget::Wasip2
            } else {
                WasiTarget::Wasip1
            },
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
