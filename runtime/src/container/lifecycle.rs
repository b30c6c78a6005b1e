//! The lifecycle of a created container: start, its exit (restart
//! policies, auto-remove), stop, kill, restart, remove, wait, attach, and
//! the daemon's shutdown.

use super::*;

impl Containers {
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
    pub(super) fn start_locked<'a>(
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
    pub(super) async fn remove_after_failed_start(&self, c: &Container) {
        if !c.inner.lock().unwrap().record.host_config.auto_remove {
            return;
        }
        if let Err(e) = self.remove_locked(c).await {
            tracing::warn!(container = %c.id, error = %e, "auto-removing container");
        }
    }

    pub(super) async fn on_exit(self: Arc<Self>, c: Arc<Container>, status: ExitStatus) {
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
    pub(super) async fn restart_after_exit(
        self: Arc<Self>,
        c: Arc<Container>,
        rec: &ContainerRecord,
    ) {
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
    pub(super) async fn wait_exit(c: &Container, exits: u64, timeout: Option<Duration>) -> bool {
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

    pub(super) async fn stop_locked(
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

    pub(super) async fn remove_locked(&self, c: &Container) -> Result<()> {
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
