//! Running a Wasm guest: its store and WASI context, the memory limiter,
//! the first slice on the starting thread and the rest as a task, how its
//! end is told, and the control that signals, pauses and limits it.

use super::*;

pub(super) struct P1State {
    pub(super) wasi: WasiP1Ctx,
    pub(super) limits: MemoryLimit,
}

pub(super) struct P2State {
    pub(super) ctx: WasiCtx,
    pub(super) table: ResourceTable,
    pub(super) limits: MemoryLimit,
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
pub(super) struct MemoryLimit {
    pub(super) cell: Arc<LimitCell>,
    pub(super) exceeded: Option<u64>,
}

/// A running guest's memory cap and use, shared between its store and its
/// control.
pub(super) struct LimitCell {
    /// The cap in bytes; `u64::MAX` is none.
    pub(super) max: AtomicU64,
    /// Linear memory in use, in bytes.
    pub(super) used: AtomicU64,
}

impl LimitCell {
    pub(super) fn new(max: Option<u64>) -> LimitCell {
        LimitCell {
            max: AtomicU64::new(max.unwrap_or(u64::MAX)),
            used: AtomicU64::new(0),
        }
    }

    pub(super) fn max(&self) -> Option<u64> {
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

/// How many descriptors Wasm containers may hold: berthd's soft
/// RLIMIT_NOFILE less what it had open at start and a reserve (an eighth of
/// the limit, at least 256) for API connections, held logs, image work and
/// shims.
pub(super) struct DescriptorBudget {
    pub(super) limit: u64,
    pub(super) reserve: u64,
    pub(super) for_containers: u64,
}

impl DescriptorBudget {
    pub(super) fn now(at_start: u64) -> DescriptorBudget {
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
pub(super) fn lowest_free_descriptor() -> Option<u64> {
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
pub(super) fn open_descriptors() -> u64 {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count() as u64)
        .unwrap_or(0)
}

/// Says at start when the pool could run more containers that hold a
/// descriptor than the descriptor limit allows.
pub(super) fn warn_if_descriptors_short(slots: u64, at_start: u64) {
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

impl WasmExecutor {
    /// Starting a Wasm guest needs no waiting: it is spawned at once.
    pub(super) fn start_now(
        &self,
        launch: &Launch,
        stdio: Stdio,
        on_exit: ExitCallback,
    ) -> Result<Running> {
        let slots = self.config.pool_slots.max(1) as i64;
        if self.running.load(Ordering::Relaxed) >= slots {
            return Err(Error::conflict(format!(
                "berthd already runs {slots} Wasm containers, its limit: stop some, or start \
                 berthd with a larger --wasm-pool-slots"
            )));
        }
        let module = launch
            .wasm()
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
pub(super) async fn poll_once<F: Future + Unpin>(f: &mut F) -> Poll<F::Output> {
    std::future::poll_fn(|cx| Poll::Ready(std::pin::Pin::new(&mut *f).poll(cx))).await
}

/// How a guest's run ended: its status and store (`None`: the engine
/// failed), or killed by a signal.
pub(super) enum Outcome<S> {
    Done(Option<(ExitStatus, S)>),
    Killed(i32),
}

/// A store that yields at every epoch tick, and while `paused` is true
/// stays suspended at the tick until it turns false (or its sender goes).
pub(super) fn new_store<T: Send>(
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

pub(super) async fn run_module(
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
pub(super) type Spent = Box<dyn std::any::Any + Send>;

pub(super) async fn run_component(
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
pub(super) fn classify(result: wasmtime::Result<i64>, limits: &MemoryLimit) -> ExitStatus {
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

pub(super) struct WasmControl {
    pub(super) kill: Mutex<Option<oneshot::Sender<i32>>>,
    /// True while paused; the store's epoch callback waits on it.
    pub(super) pause: watch::Sender<bool>,
    pub(super) limit: Arc<LimitCell>,
    /// Time spent running the guest.
    pub(super) cpu_ns: Arc<AtomicU64>,
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
                crate::executor::signal_name(sig)
            ))),
        }
    }
}
