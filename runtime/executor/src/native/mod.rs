//! The native executor: Linux containers from an OCI runtime spec, run with
//! namespaces, an overlayfs root, cgroups, capabilities and seccomp, each
//! under a small shim process that outlives the daemon.

pub mod caps;
pub mod cgroups;
pub mod devices;
pub mod exec;
pub mod init;
pub mod overlay;
pub mod protocol;
pub mod seccomp;
pub mod shim;

use super::{
    Control, Executor, ExecutorKind, ExitCallback, ExitStatus, Launch, OutputSink, Reattached,
    Running, Stdio,
};
use crate::error::{Error, Result, ResultExt};
use berth_api_types::stream::StreamKind;
use futures_util::future::BoxFuture;
use protocol::{ExitFile, StartReport};
use shim::ShimConfig;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::UnixStream;
use tokio::sync::mpsc;

/// Settings of the native executor.
#[derive(Debug, Clone)]
pub struct NativeConfig {
    /// The `berth-shim` binary. berthd runs a sealed view of it (see
    /// [`SealedShim`]), made once when the executor is.
    pub shim: PathBuf,
    /// Parent cgroup of every container (`berth`).
    pub cgroup_parent: String,
}

/// Runs native containers, each under a `berth-shim`.
pub struct NativeExecutor {
    config: NativeConfig,
    /// What berthd runs as `berth-shim`: never the host's file itself.
    sealed: Arc<SealedShim>,
    /// Per container, whether its last shim is gone: a new start waits for
    /// the old shim's cleanup (it unmounts the same root).
    shims: std::sync::Mutex<std::collections::HashMap<String, tokio::sync::watch::Receiver<bool>>>,
    /// Compiled seccomp filters by a fingerprint of their spec section (see
    /// [`fingerprint`]): compiling Docker's profile takes about half a
    /// millisecond, on every start.
    filters: std::sync::Mutex<std::collections::HashMap<u64, CompiledFilter>>,
    /// On cgroup v1 hosts, shims started ahead of time, each with a
    /// container child already cloned and in a cgroup (see
    /// `shim::standby_main`); oldest first, at most [`STANDBY_POOL`].
    standby: Arc<std::sync::Mutex<Vec<StandbyShim>>>,
    /// Overlays made at create for each container's first start (see
    /// [`Executor::created`]), by container id: a detached mount, or
    /// `None` if it could not be made (the child then mounts its own).
    premounts: std::sync::Mutex<
        std::collections::HashMap<String, tokio::sync::oneshot::Receiver<Option<OwnedFd>>>,
    >,
    /// The host's cgroups, when standbys are used (cgroup v1: moves
    /// between v1 cgroups wait for an RCU grace period; renaming a cgroup
    /// does not). berthd works out a standby's job with it.
    standby_cgroups: Option<cgroups::CgroupManager>,
}

/// A standby shim berthd can hand a container to.
struct StandbyShim {
    /// Tells a spawn's placeholder from the others.
    id: u64,
    jobs: std::os::fd::OwnedFd,
    /// It has said so (`r`).
    ready: bool,
    born: std::time::Instant,
    /// Its spawn is still under way.
    spawning: bool,
}

impl StandbyShim {
    /// Whether it has told berthd it is ready (`r`); `None` if it gave up
    /// (no cgroups, a failure) and must be forgotten.
    fn poll_ready(&mut self) -> Option<bool> {
        if self.spawning || self.ready {
            return Some(self.ready);
        }
        let mut b = [0u8; 1];
        // SAFETY: a non-blocking recv into a valid buffer.
        let n = unsafe {
            libc::recv(
                self.jobs.as_raw_fd(),
                b.as_mut_ptr().cast(),
                b.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n == 1 && b[0] == b'r' {
            self.ready = true;
            Some(true)
        } else if n >= 0 {
            None
        } else {
            Some(false)
        }
    }
}

/// A standby older than this is replaced rather than used: its container
/// child's mount namespace is a copy of the host's from when it was cloned.
const STANDBY_MAX_AGE: Duration = Duration::from_secs(60);

/// At most this many containers hold an overlay made at create and not
/// yet started (see [`Executor::created`]).
const MAX_PREMOUNTS: usize = 64;

/// How many standbys berthd keeps. A standby takes a few milliseconds to
/// get ready (its exec in idle time, which a burst of starts leaves little
/// of, then its namespaces and cgroup): with one, a start that came while
/// the refill was still getting ready spawned a shim from scratch, and in
/// back-to-back runs that was more than half of them. With two, each
/// refill has a whole start's time. Each costs an idle shim, its child and
/// their empty namespaces.
const STANDBY_POOL: usize = 2;

impl NativeExecutor {
    pub fn new(config: NativeConfig) -> Result<NativeExecutor> {
        if !config.shim.is_file() {
            return Err(Error::internal(format!(
                "berth-shim not found at {}: install it next to berthd, or set BERTH_SHIM",
                config.shim.display()
            )));
        }
        let t0 = std::time::Instant::now();
        let sealed = Arc::new(SealedShim::new(&config.shim)?);
        tracing::debug!(
            shim = %config.shim.display(),
            sealed = sealed.kind,
            us = t0.elapsed().as_micros() as u64,
            "berth-shim sealed"
        );
        let standby_cgroups = match cgroups::CgroupManager::detect()
            .and_then(|m| m.with_parent(&config.cgroup_parent))
        {
            Ok(m) => {
                m.sweep_standby();
                (m.version() == 1).then_some(m)
            }
            Err(_) => None,
        };
        Ok(NativeExecutor {
            config,
            sealed,
            shims: Default::default(),
            filters: Default::default(),
            standby: Default::default(),
            premounts: Default::default(),
            standby_cgroups,
        })
    }

    pub fn cgroup_parent(&self) -> &str {
        &self.config.cgroup_parent
    }

    /// The overlay made at create for this container's first start, once
    /// it is made (or could not be). Later starts have none.
    async fn take_premount(&self, id: &str) -> Option<OwnedFd> {
        let made = self.premounts.lock().unwrap().remove(id)?;
        made.await.ok().flatten()
    }

    /// Takes the oldest standby shim that is ready and fresh; forgets
    /// those that gave up or grew too old (closing their job socket ends
    /// them).
    fn take_standby(&self) -> Option<StandbyShim> {
        let mut pool = self.standby.lock().unwrap();
        let mut i = 0;
        while i < pool.len() {
            match pool[i].poll_ready() {
                Some(true) => {
                    let sb = pool.remove(i);
                    if sb.born.elapsed() < STANDBY_MAX_AGE {
                        return Some(sb);
                    }
                }
                Some(false) => i += 1,
                None => {
                    pool.remove(i);
                }
            }
        }
        None
    }

    /// Starts standby shims until [`STANDBY_POOL`] are there or on their
    /// way, each on a blocking thread: `posix_spawn` waits for the exec,
    /// which must not hold up a start.
    fn replenish_standby(&self) {
        if self.standby_cgroups.is_none() {
            return;
        }
        let mut pool = self.standby.lock().unwrap();
        while pool.len() < STANDBY_POOL {
            // A placeholder marks the spawn under way.
            let Ok((ours, _theirs)) = std::os::unix::net::UnixStream::pair() else {
                return;
            };
            static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            pool.push(StandbyShim {
                id,
                jobs: ours.into(),
                ready: false,
                born: std::time::Instant::now(),
                spawning: true,
            });
            self.spawn_standby(id);
        }
    }

    /// Spawns the standby whose placeholder is `id`, and puts it in its
    /// place (or drops the placeholder if the spawn failed).
    fn spawn_standby(&self, id: u64) {
        let pool = self.standby.clone();
        // Kept by the task: its descriptor is what the path names.
        let sealed = self.sealed.clone();
        let parent = self.config.cgroup_parent.clone();
        let handle = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            let spawned = std::os::unix::net::UnixStream::pair()
                .map_err(|e| e.to_string())
                .and_then(|(ours, theirs)| {
                    let args = ["berth-shim".to_string(), "standby".to_string(), parent];
                    // The exec itself runs at normal priority: until it,
                    // the child holds a copy of every descriptor berthd
                    // has (clients' connections, its listeners, the lock
                    // on its root), and a child starved as idle work
                    // would keep them open for as long as the machine is
                    // busy. posix_spawn returns once the exec is done;
                    // the standby's loading and start-up then take only
                    // idle time, until berthd's go byte lets it return to
                    // normal priority (see `shim::standby_main`).
                    let pid = spawn_shim(&sealed.exec_path(), &args, &[theirs.as_raw_fd()], None)
                        .map_err(|e| e.to_string())?;
                    let param = libc::sched_param { sched_priority: 0 };
                    // SAFETY: sched_setscheduler of our own child, valid parameter.
                    unsafe { libc::sched_setscheduler(pid.as_raw(), libc::SCHED_IDLE, &param) };
                    std::io::Write::write_all(&mut &ours, b"g").map_err(|e| e.to_string())?;
                    Ok((pid, ours))
                });
            if let Ok((pid, _)) = &spawned {
                handle.spawn(reap(*pid));
            }
            let mut pool = pool.lock().unwrap();
            // Only this task takes its placeholder out; should it be gone,
            // dropping `ours` ends the standby.
            let Some(slot) = pool.iter().position(|sb| sb.id == id) else {
                return;
            };
            match spawned {
                Ok((_, ours)) => {
                    pool[slot] = StandbyShim {
                        id,
                        jobs: ours.into(),
                        ready: false,
                        born: std::time::Instant::now(),
                        spawning: false,
                    };
                }
                Err(e) => {
                    pool.remove(slot);
                    tracing::warn!(error = %e, "could not start a standby shim");
                }
            }
        });
    }

    /// The compiled form of the spec's `linux.seccomp` (`None` when it has
    /// none), cached.
    fn compiled_filter(&self, spec: &oci_spec::runtime::Spec) -> Result<Option<Arc<Vec<u8>>>> {
        let Some(section) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) else {
            return Ok(None);
        };
        let key = fingerprint(section);
        if let Some(f) = self.filters.lock().unwrap().get(&key)
            && f.section == *section
        {
            return Ok(Some(f.program.clone()));
        }
        let program = Arc::new(seccomp::compile_oci(section)?.to_bytes());
        let mut filters = self.filters.lock().unwrap();
        if filters.len() > 64 {
            filters.clear();
        }
        filters.insert(
            key,
            CompiledFilter {
                section: section.clone(),
                program: program.clone(),
            },
        );
        Ok(Some(program))
    }

    /// Writes the bundle's files for a shim that starts from them: the OCI
    /// spec and the shim's settings.
    fn write_bundle(&self, launch: &Launch, premounted: bool) -> Result<()> {
        let cfg = ShimConfig {
            premounted,
            ..self.bundle_dirs(launch)?
        };
        self.write_bundle_files(launch, &cfg)
    }

    /// The shim's settings, and the directories the container's root is
    /// mounted from; a previous run's exit is cleared.
    fn bundle_dirs(&self, launch: &Launch) -> Result<ShimConfig> {
        let native = native_of(launch)?;
        let cfg = ShimConfig {
            id: launch.id.clone(),
            tty: launch
                .spec
                .process()
                .as_ref()
                .and_then(|p| p.terminal())
                .unwrap_or(false),
            open_stdin: native.open_stdin,
            lowers: native.lowers.clone(),
            upper: launch.bundle.join("upper"),
            work: launch.bundle.join("work"),
            runtime: native.runtime.clone(),
            cgroup_parent: self.config.cgroup_parent.clone(),
            init: native.init,
            console_size: native.console_size,
            premounted: false,
            nofile: container_nofile(),
        };
        for d in [&cfg.upper, &cfg.work, &launch.rootfs] {
            std::fs::create_dir_all(d).ctx(format!("creating {}", d.display()))?;
        }
        match std::fs::remove_file(launch.bundle.join(shim::EXIT_FILE)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::internal(format!("clearing the last exit: {e}")))
            }
            _ => Ok(cfg),
        }
    }

    /// The bundle's files: the OCI spec, the shim's settings and the
    /// compiled seccomp filter (what a new shim and an external runtime
    /// read; a standby is handed them, and `exec` gets its own).
    fn write_bundle_files(&self, launch: &Launch, cfg: &ShimConfig) -> Result<()> {
        let native = native_of(launch)?;
        let filter_path = launch.bundle.join(shim::SECCOMP_FILE);
        let filter = match native.runtime {
            None => self.compiled_filter(&launch.spec)?,
            Some(_) => None,
        };
        match filter {
            Some(f) => std::fs::write(&filter_path, f.as_slice()).ctx("writing seccomp.bpf")?,
            None => {
                let _ = std::fs::remove_file(&filter_path);
            }
        }
        let spec = match &native.runtime {
            None => serde_json::to_vec(&launch.spec),
            Some(_) => serde_json::to_vec_pretty(&external_spec(&launch.spec)),
        }
        .ctx("encoding config.json")?;
        std::fs::write(launch.bundle.join(shim::SPEC_FILE), spec).ctx("writing config.json")?;
        std::fs::write(
            launch.bundle.join(shim::CONFIG_FILE),
            serde_json::to_vec(cfg).ctx("encoding shim.json")?,
        )
        .ctx("writing shim.json")?;
        Ok(())
    }

    /// A standby's job for this container: what its shim would otherwise
    /// read from the bundle and work out on the start path.
    fn standby_job(&self, launch: &Launch, cfg: ShimConfig) -> Result<shim::Job> {
        let mgr = self
            .standby_cgroups
            .as_ref()
            .ok_or_else(|| Error::internal("a standby shim without cgroups"))?;
        let filter = self.compiled_filter(&launch.spec)?;
        shim::Job::new(
            cfg,
            &launch.spec,
            &launch.bundle,
            mgr,
            filter.as_deref().map(|f| f.as_slice()),
        )
        .map_err(Error::internal)
    }
}

/// A compiled seccomp filter and the section it was compiled from.
struct CompiledFilter {
    section: oci_spec::runtime::LinuxSeccomp,
    program: Arc<Vec<u8>>,
}

/// A cheap hash of a seccomp section (its actions, names, arguments,
/// architectures and flags), to find its compiled filter; a hit is then
/// compared in full.
fn fingerprint(section: &oci_spec::runtime::LinuxSeccomp) -> u64 {
    use std::hash::{Hash, Hasher};
    use std::mem::discriminant;
    let mut h = std::hash::DefaultHasher::new();
    discriminant(&section.default_action()).hash(&mut h);
    section.default_errno_ret().hash(&mut h);
    for a in section.architectures().iter().flatten() {
        discriminant(a).hash(&mut h);
    }
    for f in section.flags().iter().flatten() {
        discriminant(f).hash(&mut h);
    }
    for call in section.syscalls().iter().flatten() {
        call.names().hash(&mut h);
        discriminant(&call.action()).hash(&mut h);
        call.errno_ret().hash(&mut h);
        for a in call.args().iter().flatten() {
            (a.index(), a.value(), a.value_two()).hash(&mut h);
            discriminant(&a.op()).hash(&mut h);
        }
    }
    h.finish()
}

/// The spec as an external OCI runtime (runc, crun) gets it: as berth's
/// own runtime does (with the `linux.seccomp` the container layer resolved;
/// berth's runtime compiles it in [`NativeExecutor::compiled_filter`]), but
/// with `process.terminal` false (the shim hands the runtime a pty of its
/// own as plain stdio, so the runtime must not ask for a console socket).
fn external_spec(spec: &oci_spec::runtime::Spec) -> oci_spec::runtime::Spec {
    let mut spec = spec.clone();
    if let Some(process) = spec.process_mut() {
        process.set_terminal(Some(false));
    }
    spec
}

impl Executor for NativeExecutor {
    fn kind(&self) -> ExecutorKind {
        ExecutorKind::Native
    }

    fn prepare<'a>(&'a self, launch: &'a Launch) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let native = native_of(launch)?;
            for l in &native.lowers {
                if !l.is_dir() {
                    return Err(Error::internal(format!(
                        "layer directory {} is missing",
                        l.display()
                    )));
                }
            }
            Ok(())
        })
    }

    /// Makes the container's overlay on a blocking thread, as a detached
    /// mount its child later moves into place: overlayfs sets up its work
    /// directory at every mount (about seven inodes made and deleted),
    /// which on ext4 without a journal, scanning past recently deleted
    /// inodes, took a median 0.8 ms of the child's start. Made here, that
    /// overlaps with the client's next requests (attach, wait, start).
    fn created(&self, launch: &Launch) {
        let Ok(native) = native_of(launch) else {
            return;
        };
        if native.runtime.is_some() {
            return;
        }
        let mut premounts = self.premounts.lock().unwrap();
        // Each holds an overlay until its container starts or goes; many
        // containers created and left are mounted by their child instead.
        if premounts.len() >= MAX_PREMOUNTS {
            return;
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let lowers = native.lowers.clone();
        let (upper, work) = (launch.bundle.join("upper"), launch.bundle.join("work"));
        let id = launch.id.clone();
        premounts.insert(id.clone(), rx);
        drop(premounts);
        tokio::task::spawn_blocking(move || {
            let made = [&upper, &work]
                .iter()
                .try_for_each(std::fs::create_dir_all)
                .map_err(Error::from)
                .and_then(|()| overlay::premount_rootfs(&lowers, &upper, &work));
            match made {
                // Should the container be gone, the mount goes with `fd`.
                Ok(fd) => drop(tx.send(Some(fd))),
                Err(e) => {
                    tracing::debug!(container = %id, error = %e, "the child will mount its overlay");
                    drop(tx.send(None));
                }
            }
        });
    }

    fn release<'a>(&'a self, id: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move { drop(self.take_premount(id).await) })
    }

    fn start<'a>(
        &'a self,
        launch: &'a Launch,
        stdio: Stdio,
        on_exit: ExitCallback,
    ) -> BoxFuture<'a, Result<Running>> {
        Box::pin(async move {
            let previous = self.shims.lock().unwrap().get(&launch.id).cloned();
            if let Some(mut gone) = previous {
                let _ = tokio::time::timeout(Duration::from_secs(5), gone.wait_for(|g| *g)).await;
            }
            let t0 = std::time::Instant::now();
            let builtin = launch.native().is_some_and(|n| n.runtime.is_none());
            let standby = if builtin { self.take_standby() } else { None };
            // The overlay made at create, for the child to move into place
            // (with a standby's job, or as a spawned shim's fd 6).
            let premount = match builtin {
                true => self.take_premount(&launch.id).await,
                false => None,
            };
            // A standby is handed everything it needs; a new shim reads
            // the bundle's files.
            let job = match standby {
                Some(_) => Some(self.standby_job(launch, self.bundle_dirs(launch)?)?),
                None => {
                    self.write_bundle(launch, premount.is_some())?;
                    None
                }
            };
            tracing::trace!(
                us = t0.elapsed().as_micros() as u64,
                standby = job.is_some(),
                "native start: bundle ready"
            );
            let (ours, theirs) = std::os::unix::net::UnixStream::pair().ctx("socketpair")?;
            let (report_r, report_w) =
                nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ctx("pipe")?;
            let bundle_dir = nix::fcntl::open(
                &launch.bundle,
                nix::fcntl::OFlag::O_PATH
                    | nix::fcntl::OFlag::O_DIRECTORY
                    | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .ctx("opening the bundle")?;
            let mut fds = vec![
                report_w.as_raw_fd(),
                theirs.as_raw_fd(),
                bundle_dir.as_raw_fd(),
            ];
            fds.extend(premount.as_ref().map(|m| m.as_raw_fd()));
            let child = match standby.zip(job) {
                Some((sb, job)) => {
                    // Hand the container to the waiting shim.
                    let cmsg = [nix::sys::socket::ControlMessage::ScmRights(&fds)];
                    let iov = [std::io::IoSlice::new(b"j")];
                    nix::sys::socket::sendmsg::<()>(
                        sb.jobs.as_raw_fd(),
                        &iov,
                        &cmsg,
                        nix::sys::socket::MsgFlags::empty(),
                        None,
                    )
                    .map_err(std::io::Error::from)
                    .and_then(|_| job.send(&sb.jobs))
                    .map_err(|e| {
                        Error::internal(format!("handing the container to a standby shim: {e}"))
                    })?;
                    None
                }
                None => {
                    let log = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(launch.bundle.join("shim.log"))
                        .ctx("opening shim.log")?;
                    let args = ["berth-shim".to_string()];
                    let shim = self.sealed.exec_path();
                    let pid =
                        spawn_shim(&shim, &args, &fds, Some(log.as_raw_fd())).map_err(|e| {
                            Error::internal(format!("running {}: {e}", self.config.shim.display()))
                        })?;
                    Some(pid)
                }
            };
            tracing::trace!(
                us = t0.elapsed().as_micros() as u64,
                "native start: shim spawned"
            );
            drop(report_w);
            drop(theirs);
            drop(bundle_dir);
            let mut report = Vec::new();
            let mut pipe = tokio::fs::File::from_std(std::fs::File::from(report_r));
            let _ = pipe.read_to_end(&mut report).await;
            let report: StartReport = match serde_json::from_slice(&report) {
                Ok(r) => r,
                Err(_) => {
                    let status = match child {
                        Some(pid) => reap(pid).await,
                        None => None,
                    };
                    let log =
                        std::fs::read_to_string(launch.bundle.join("shim.log")).unwrap_or_default();
                    return Err(Error::internal(format!(
                        "berth-shim failed ({}): {}",
                        status.map(|s| format!("{s:?}")).unwrap_or_default(),
                        log.trim()
                    )));
                }
            };
            tracing::trace!(
                us = t0.elapsed().as_micros() as u64,
                "native start: shim reported"
            );
            // Reap the shim whenever it ends (a standby is reaped already).
            if let Some(pid) = child {
                tokio::spawn(reap(pid));
            }
            // The next start's standby, now that this one is off the path.
            if builtin {
                self.replenish_standby();
            }
            let pid = match report {
                StartReport::Started { pid } => pid,
                StartReport::Failed { error, code } => {
                    return Err(start_error(&error, code));
                }
            };
            ours.set_nonblocking(true).ctx("socket")?;
            let stream = UnixStream::from_std(ours).ctx("socket")?;
            let (control, gone) = attach_shim(stream, stdio, on_exit);
            self.shims.lock().unwrap().insert(launch.id.clone(), gone);
            Ok(Running {
                pid: pid as i64,
                control: Box::new(control),
            })
        })
    }

    fn exec(
        &self,
        launch: &Launch,
        spec: super::ExecSpec,
        stdin: bool,
        console: Option<[u16; 2]>,
    ) -> Result<super::ExecProcess> {
        // The container's filter, as its init got it; `--privileged` runs
        // without one.
        let filter = match spec.privileged {
            true => None,
            false => self.compiled_filter(&launch.spec)?,
        };
        exec::spawn(
            &self.sealed.exec_path(),
            &self.config.shim,
            launch,
            &spec,
            filter.as_deref().map(Vec::as_slice),
            stdin,
            console,
        )
    }

    fn reattach<'a>(
        &'a self,
        launch: &'a Launch,
        stdio: Stdio,
        on_exit: ExitCallback,
    ) -> BoxFuture<'a, Result<Reattached>> {
        Box::pin(async move {
            let connected = match shim::socket_path(&launch.bundle) {
                Ok((_dir, path)) => UnixStream::connect(&path).await.ok(),
                Err(_) => None,
            };
            if let Some(mut stream) = connected {
                protocol::write_frame(&mut stream, protocol::HELLO, &[])
                    .await
                    .ctx("talking to the shim")?;
                let state = tokio::time::timeout(Duration::from_secs(5), async {
                    loop {
                        match protocol::read_frame(&mut stream).await {
                            Ok(Some((protocol::STATE, p))) => {
                                return serde_json::from_slice::<protocol::State>(&p).ok();
                            }
                            Ok(Some(_)) => continue,
                            _ => return None,
                        }
                    }
                })
                .await
                .ok()
                .flatten();
                match state {
                    Some(protocol::State {
                        exited: Some(e), ..
                    }) => {
                        let _ = protocol::write_frame(&mut stream, protocol::ACK_EXIT, &[]).await;
                        return Ok(Reattached::Exited(exit_status(&e)));
                    }
                    Some(protocol::State { pid, exited: None }) => {
                        let (control, gone) = attach_shim(stream, stdio, on_exit);
                        self.shims.lock().unwrap().insert(launch.id.clone(), gone);
                        return Ok(Reattached::Running(Running {
                            pid: pid as i64,
                            control: Box::new(control),
                        }));
                    }
                    None => {}
                }
            }
            match std::fs::read(launch.bundle.join(shim::EXIT_FILE)) {
                Ok(b) => match serde_json::from_slice::<ExitFile>(&b) {
                    Ok(e) => Ok(Reattached::Exited(exit_status(&e))),
                    Err(_) => Ok(Reattached::Lost),
                },
                Err(_) => Ok(Reattached::Lost),
            }
        })
    }
}

/// `berth-shim` as berthd runs it: a read-only view of the binary that
/// nothing can write through, never the host's file itself.
///
/// Every process berth forks into a container (the container's child
/// until it executes the command, `--init`'s PID 1 for the container's
/// whole life, the standby's child, exec's child) is a copy of a shim,
/// and its `/proc/PID/exe` is the file the shim was executed from. Were
/// that the host's binary, a container process that may open it (one
/// with CAP_SYS_PTRACE; or any, once such a process executes a program
/// through `/proc/self/exe`) would hold a handle on the host's
/// berth-shim, which only ETXTBSY kept it from rewriting (CVE-2019-5736).
/// As runc 1.2 does, berthd executes shims from a private overlayfs whose
/// only layers are the binary's directory and an empty one: a lower-only
/// overlay is read-only in its superblock, so any open for writing fails
/// with EROFS, before ETXTBSY is looked at, and no mount flag of a
/// container's can undo it; it is mounted nowhere (`fsmount`, the mount
/// descriptor closed once the file is open), and it shares the binary's
/// page cache, so a shim starts as fast as from the host's path. Where
/// overlayfs cannot be used, a sealed memfd copy (`F_SEAL_WRITE`, as runc
/// 1.1) takes its place: writes fail with EPERM or ETXTBSY, and it costs
/// the binary's size in memory, once.
///
/// The binary is the one berth-shim was when the executor was made:
/// replacing the file on disk takes effect at berthd's next start (which
/// keeps berthd and its shims of one build).
pub struct SealedShim {
    /// The binary, `O_PATH`, close-on-exec.
    file: OwnedFd,
    /// How it was sealed, for the log.
    kind: &'static str,
}

impl SealedShim {
    pub fn new(shim: &std::path::Path) -> Result<SealedShim> {
        let real = std::fs::canonicalize(shim)
            .map_err(|e| Error::internal(format!("berth-shim at {}: {e}", shim.display())))?;
        match sealed_overlay(&real) {
            Ok(file) => Ok(SealedShim {
                file,
                kind: "read-only overlay",
            }),
            Err(overlay) => match sealed_memfd(&real) {
                Ok(file) => {
                    tracing::warn!(
                        shim = %real.display(),
                        error = %overlay,
                        "berth-shim is sealed as a memfd copy (overlayfs could not be used)"
                    );
                    Ok(SealedShim {
                        file,
                        kind: "memfd copy",
                    })
                }
                Err(copy) => Err(Error::internal(format!(
                    "sealing {} (berthd never runs the host's berth-shim itself): \
                     a read-only overlay failed ({overlay}), a sealed memfd copy failed ({copy})",
                    real.display()
                ))),
            },
        }
    }

    /// The path to execute it by: `/proc/self/fd/N`, which a child of
    /// this process resolves until it executes (the descriptor is
    /// close-on-exec). The kernel names the process after `N`; the shim
    /// renames itself.
    pub fn exec_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.file.as_raw_fd()))
    }
}

/// Opens `real` through a private lower-only overlayfs of its directory
/// (see [`SealedShim`]); the overlay is mounted nowhere.
fn sealed_overlay(real: &std::path::Path) -> std::io::Result<OwnedFd> {
    let (Some(dir), Some(name)) = (real.parent(), real.file_name()) else {
        return Err(std::io::Error::other("not a file in a directory"));
    };
    // A lower-only overlay needs two layers: the second an empty
    // directory, removed once the overlay holds it.
    let template = std::env::temp_dir().join("berth-shim-seal.XXXXXX");
    let empty = nix::unistd::mkdtemp(&template)?;
    struct Remove(PathBuf);
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir(&self.0);
        }
    }
    let empty = Remove(empty);
    // `:` separates layers and `\` escapes, in the option's syntax.
    let escape = |p: &std::path::Path| {
        p.to_string_lossy()
            .replace('\\', "\\\\")
            .replace(':', "\\:")
    };
    let lowerdir = format!("{}:{}", escape(dir), escape(&empty.0));
    // Not needed, and it would log when the layers' filesystems differ:
    // xino=off where the kernel takes it.
    let mnt = overlay::detached_overlay(
        &[("lowerdir", Some(&lowerdir))],
        &[("xino", "off")],
        libc::MOUNT_ATTR_RDONLY | libc::MOUNT_ATTR_NODEV | libc::MOUNT_ATTR_NOSUID,
    )?;
    // Closing the mount's descriptor (below) leaves the overlay in no
    // mount namespace at all.
    let file = nix::fcntl::openat(
        &mnt,
        std::path::Path::new(name),
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    check_same_binary(&file, real)?;
    Ok(file)
}

/// A sealed memfd copy of `real` (see [`SealedShim`]).
fn sealed_memfd(real: &std::path::Path) -> std::io::Result<OwnedFd> {
    use std::os::fd::FromRawFd;
    let create = |flags: libc::c_uint| {
        // SAFETY: memfd_create with a NUL-terminated name.
        unsafe { libc::memfd_create(c"berth-shim".as_ptr(), flags) }
    };
    let base = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    // Executable memfds must say so where `vm.memfd_noexec` asks (Linux
    // 6.3); older kernels refuse the flag.
    let mut fd = create(base | libc::MFD_EXEC);
    if fd < 0 {
        fd = create(base);
    }
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a descriptor memfd_create just returned.
    let mut copy = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    std::io::copy(&mut std::fs::File::open(real)?, &mut copy)?;
    use std::os::unix::fs::PermissionsExt;
    copy.set_permissions(std::fs::Permissions::from_mode(0o555))?;
    // SAFETY: fcntl on our memfd with integer arguments.
    let sealed = unsafe {
        libc::fcntl(copy.as_raw_fd(), libc::F_ADD_SEALS, libc::F_SEAL_EXEC);
        libc::fcntl(
            copy.as_raw_fd(),
            libc::F_ADD_SEALS,
            libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE,
        )
    };
    if sealed < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let fd = OwnedFd::from(copy);
    check_same_binary(&fd, real)?;
    Ok(fd)
}

/// What was opened as berth-shim is a regular file of the binary's size,
/// executable.
fn check_same_binary(file: &OwnedFd, real: &std::path::Path) -> std::io::Result<()> {
    let ours = nix::sys::stat::fstat(file)?;
    let theirs = std::fs::metadata(real)?;
    let regular = nix::sys::stat::SFlag::from_bits_truncate(ours.st_mode)
        & nix::sys::stat::SFlag::S_IFMT
        == nix::sys::stat::SFlag::S_IFREG;
    if !regular || ours.st_size as u64 != std::os::unix::fs::MetadataExt::size(&theirs) {
        return Err(std::io::Error::other(
            "the sealed file is not the binary (changed while it was sealed?)",
        ));
    }
    if ours.st_mode & 0o111 == 0 {
        return Err(std::io::Error::other("the sealed file is not executable"));
    }
    Ok(())
}

/// Starts `berth-shim` with `posix_spawn` (a vfork): forking berthd, whose
/// address space holds the Wasm engine's reservations, would copy its page
/// tables and take milliseconds. `fds` become the shim's 3, 4, ... (for a
/// container: report pipe, daemon socket, bundle directory); its stderr is
/// `log`, or /dev/null.
fn spawn_shim(
    shim: &std::path::Path,
    args: &[String],
    fds: &[i32],
    log: Option<i32>,
) -> nix::Result<nix::unistd::Pid> {
    use nix::spawn::{PosixSpawnAttr, PosixSpawnFileActions, posix_spawn};
    let mut actions = PosixSpawnFileActions::init()?;
    actions.add_open(
        0,
        "/dev/null",
        nix::fcntl::OFlag::O_RDONLY,
        nix::sys::stat::Mode::empty(),
    )?;
    actions.add_open(
        1,
        "/dev/null",
        nix::fcntl::OFlag::O_WRONLY,
        nix::sys::stat::Mode::empty(),
    )?;
    match log {
        Some(fd) => actions.add_dup2(fd, 2)?,
        None => actions.add_open(
            2,
            "/dev/null",
            nix::fcntl::OFlag::O_WRONLY,
            nix::sys::stat::Mode::empty(),
        )?,
    }
    for (i, fd) in fds.iter().enumerate() {
        actions.add_dup2(*fd, 3 + i as i32)?;
    }
    let attr = PosixSpawnAttr::init()?;
    let path = std::ffi::CString::new(shim.as_os_str().as_encoded_bytes())
        .map_err(|_| nix::errno::Errno::EINVAL)?;
    let argv: Vec<std::ffi::CString> = args
        .iter()
        .map(|a| std::ffi::CString::new(a.as_bytes()).map_err(|_| nix::errno::Errno::EINVAL))
        .collect::<nix::Result<_>>()?;
    // A clean environment: the shim's is what `--init` shows as the
    // container's /proc/1/environ.
    let mut env =
        vec![c"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_owned()];
    if let Some(t) = std::env::var_os("BERTH_SHIM_TRACE") {
        let mut v = b"BERTH_SHIM_TRACE=".to_vec();
        v.extend_from_slice(t.as_encoded_bytes());
        if let Ok(c) = std::ffi::CString::new(v) {
            env.push(c);
        }
    }
    posix_spawn(path.as_c_str(), &actions, &attr, &argv, &env)
}

/// Waits for a shim to end (through a pidfd, without a thread) and reaps it.
async fn reap(pid: nix::unistd::Pid) -> Option<nix::sys::wait::WaitStatus> {
    use nix::sys::wait::{WaitPidFlag, waitpid};
    // SAFETY: pidfd_open with a pid of our own child.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if fd >= 0 {
        // SAFETY: the kernel just gave us this descriptor.
        let fd =
            unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) };
        // SAFETY: the AsyncFd owns the pidfd and closes it when dropped.
        if let Ok(afd) = unsafe {
            tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE)
        } {
            let _ = afd.readable().await;
        }
    }
    loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(nix::sys::wait::WaitStatus::StillAlive) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Ok(st) => return Some(st),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return None,
        }
    }
}

/// A start failure as Docker reports it, with its exit code for `run`.
fn start_error(error: &str, code: i32) -> Error {
    let msg = format!(
        "failed to create task for container: failed to create shim task: OCI runtime create failed: {error}"
    );
    match code {
        126 | 127 => Error::invalid(msg),
        _ => Error::internal(msg),
    }
}

fn exit_status(e: &ExitFile) -> ExitStatus {
    ExitStatus {
        code: e.code,
        error: e.error.clone(),
        oom_killed: e.oom_killed,
        detail: None,
    }
}

/// The daemon's side of a shim connection.
struct ShimControl {
    tx: mpsc::UnboundedSender<(u8, Vec<u8>)>,
}

impl Control for ShimControl {
    fn signal(&self, signal: i32) -> Result<()> {
        self.tx
            .send((protocol::SIGNAL, (signal as u32).to_be_bytes().to_vec()))
            .map_err(|_| Error::conflict("the container is no longer running"))
    }

    fn resize(&self, rows: u16, cols: u16) -> Result<()> {
        let mut p = rows.to_be_bytes().to_vec();
        p.extend_from_slice(&cols.to_be_bytes());
        self.tx
            .send((protocol::RESIZE, p))
            .map_err(|_| Error::conflict("the container is no longer running"))
    }
}

/// Pumps a shim connection: output to the sink, stdin and commands to the
/// shim. The exit goes to `on_exit` as soon as it is reported; the returned
/// watch turns true when the shim has cleaned up and gone.
fn attach_shim(
    stream: UnixStream,
    stdio: Stdio,
    on_exit: ExitCallback,
) -> (ShimControl, tokio::sync::watch::Receiver<bool>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(u8, Vec<u8>)>();
    let (mut rd, mut wr) = stream.into_split();
    let (gone_tx, gone_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        while let Some((kind, payload)) = rx.recv().await {
            if protocol::write_frame(&mut wr, kind, &payload)
                .await
                .is_err()
            {
                return;
            }
        }
    });
    if let Some(mut stdin) = stdio.stdin {
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(b) = stdin.recv().await {
                if tx.send((protocol::STDIN, b.to_vec())).is_err() {
                    return;
                }
            }
            let _ = tx.send((protocol::STDIN_CLOSE, Vec::new()));
        });
    }
    let output: Arc<dyn OutputSink> = stdio.output;
    let ack = tx.clone();
    tokio::spawn(async move {
        let mut on_exit = Some(on_exit);
        loop {
            match protocol::read_frame(&mut rd).await {
                Ok(Some((protocol::STDOUT, data))) => output.relay(StreamKind::Stdout, &data),
                Ok(Some((protocol::STDERR, data))) => output.relay(StreamKind::Stderr, &data),
                Ok(Some((protocol::EXITED, data))) => {
                    let status = serde_json::from_slice::<ExitFile>(&data)
                        .map(|e| exit_status(&e))
                        .unwrap_or_else(|e| ExitStatus {
                            code: 255,
                            error: Some(format!("the shim reported an unreadable exit: {e}")),
                            ..Default::default()
                        });
                    let _ = ack.send((protocol::ACK_EXIT, Vec::new()));
                    if let Some(f) = on_exit.take() {
                        tokio::spawn(f(status));
                    }
                }
                Ok(Some(_)) => {}
                // The shim closes the connection when it has cleaned up.
                Ok(None) | Err(_) => break,
            }
        }
        drop(ack);
        let _ = gone_tx.send(true);
        if let Some(f) = on_exit.take() {
            f(ExitStatus {
                code: 255,
                error: Some("the container's shim ended without reporting an exit".into()),
                ..Default::default()
            })
            .await;
        }
    });
    (ShimControl { tx }, gone_rx)
}

/// A native container's layers and settings, which every native launch has.
fn native_of(launch: &Launch) -> Result<&super::NativeLaunch> {
    launch
        .native()
        .ok_or_else(|| Error::internal("a native container without its layers"))
}

// Descriptors and their limit. A process berth starts in a container must
// get its stdio and nothing else: a descriptor of the host (a directory
// berthd inherited, say) is a way out of the container through
// /proc/self/fd (CVE-2024-21626's class). Every process on the way
// (berthd, the shim, the exec helper, an external runtime) marks or closes
// what it does not hand on.

/// Marks every descriptor from `first` on close-on-exec: `close_range`
/// (Linux 5.11), else one `fcntl` per possible descriptor. Allocates
/// nothing, so a child may call it between `fork` and `execve`.
pub fn cloexec_from(first: u32) -> std::io::Result<()> {
    // SAFETY: close_range with the CLOEXEC flag only marks descriptors.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if r == 0 {
        return Ok(());
    }
    for fd in first..fd_ceiling() {
        // SAFETY: setting a descriptor flag; EBADF for those not open.
        unsafe { libc::fcntl(fd as i32, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok(())
}

/// Closes every descriptor from `first` on: `close_range` (Linux 5.9),
/// else one `close` per possible descriptor. Only for a process that
/// owns every descriptor it has (a shim or helper at its start, a child
/// before it executes). Allocates nothing.
pub fn close_from(first: u32) {
    // SAFETY: closing this process's own descriptors in a range.
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, 0u32) };
    if r == 0 {
        return;
    }
    for fd in first..fd_ceiling() {
        // SAFETY: as above; EBADF for those not open.
        unsafe { libc::close(fd as i32) };
    }
}

/// One past the highest descriptor this process can have open (its soft
/// `RLIMIT_NOFILE`, capped at 2^20).
fn fd_ceiling() -> u32 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit into a valid struct.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 1 << 20;
    }
    lim.rlim_cur.min(1 << 20) as u32
}

/// This process's open descriptors.
fn open_fds() -> std::io::Result<Vec<i32>> {
    Ok(std::fs::read_dir("/proc/self/fd")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect())
}

/// For berthd's first moment: marks every descriptor it inherited (3 and
/// up) close-on-exec, so that none reaches a shim, an exec helper, an
/// external runtime or a container, whatever started berthd left open.
/// Returns the descriptors it found, for the log.
pub fn cloexec_inherited() -> std::io::Result<Vec<i32>> {
    let mut fds: Vec<i32> = open_fds()?.into_iter().filter(|fd| *fd >= 3).collect();
    cloexec_from(3)?;
    // The listing's own descriptor was among them, and is closed.
    fds.retain(|fd| {
        // SAFETY: F_GETFD only reads a descriptor's flags.
        unsafe { libc::fcntl(*fd, libc::F_GETFD) >= 0 }
    });
    Ok(fds)
}

/// `RLIMIT_NOFILE` (soft, hard) as berthd found it, if it raised it: what
/// containers get (see [`raise_nofile_limit`]).
static ORIGINAL_NOFILE: std::sync::OnceLock<[u64; 2]> = std::sync::OnceLock::new();

/// Raises this process's soft `RLIMIT_NOFILE` to its hard limit, as Go
/// programs (dockerd, containerd) do at start, and returns the limits
/// (soft, hard) before and after. What berthd starts for containers (the
/// shim's container process, exec'd processes, an external runtime) gets
/// the limits from before, as Go restores them for its children: a
/// container's limits do not depend on berthd's own needs.
pub fn raise_nofile_limit() -> std::io::Result<([u64; 2], [u64; 2])> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft >= hard {
        return Ok(([soft, hard], [soft, hard]));
    }
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    let _ = ORIGINAL_NOFILE.set([soft, hard]);
    Ok(([soft, hard], [hard, hard]))
}

/// The `RLIMIT_NOFILE` containers get, when it is not this process's (see
/// [`raise_nofile_limit`]).
pub fn container_nofile() -> Option<[u64; 2]> {
    ORIGINAL_NOFILE.get().copied()
}

/// Sets this process's `RLIMIT_NOFILE` to `limits` (soft, hard), if given.
pub(crate) fn set_nofile(limits: Option<[u64; 2]>) -> std::io::Result<()> {
    match limits {
        Some([soft, hard]) => {
            nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, soft, hard)
                .map_err(std::io::Error::from)
        }
        None => Ok(()),
    }
}

/// Where berthd looks for `berth-shim`: `BERTH_SHIM`, else next to its own
/// executable.
pub fn default_shim_path() -> PathBuf {
    if let Some(p) = std::env::var_os("BERTH_SHIM") {
        return PathBuf::from(p);
    }
    std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join("berth-shim")))
        .unwrap_or_else(|| PathBuf::from("/usr/local/bin/berth-shim"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::process::CommandExt;

    /// Runs `sleep 30` from `sealed` and checks what its /proc/PID/exe is:
    /// not `original` (by identity and by path), and not writable however
    /// it is opened, with `errno` (not ETXTBSY).
    fn check_sealed(sealed: &OwnedFd, original: &std::path::Path, errno: i32) {
        let path = format!("/proc/self/fd/{}", sealed.as_raw_fd());
        let mut child = std::process::Command::new(&path)
            .arg0("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let exe = format!("/proc/{}/exe", child.id());
        let m = std::fs::metadata(&exe).unwrap();
        let o = std::fs::metadata(original).unwrap();
        assert_ne!(
            (m.dev(), m.ino()),
            (o.dev(), o.ino()),
            "it runs the original"
        );
        assert_eq!(m.len(), o.len());
        let link = std::fs::read_link(&exe).unwrap();
        let dir = original.parent().unwrap();
        assert!(!link.starts_with(dir), "{}", link.display());
        for (how, opts) in [
            ("write", std::fs::OpenOptions::new().write(true).clone()),
            (
                "truncate",
                std::fs::OpenOptions::new()
                    .write(true)
                    .truncate(true)
                    .clone(),
            ),
            ("append", std::fs::OpenOptions::new().append(true).clone()),
        ] {
            for target in [&exe, &path] {
                let e = opts
                    .open(target)
                    .err()
                    .unwrap_or_else(|| panic!("{how} {target}"));
                assert_eq!(e.raw_os_error(), Some(errno), "{how} {target}: {e}");
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
    }

    fn sleep_copy() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("berth-shim");
        let sleep = ["/bin/sleep", "/usr/bin/sleep"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .unwrap();
        std::fs::copy(sleep, &copy).unwrap();
        (dir, copy)
    }

    #[test]
    fn shims_run_from_a_read_only_overlay_of_the_binary() {
        if !crate::util::testing::have_root() {
            return;
        }
        let (_dir, copy) = sleep_copy();
        let before = std::fs::read(&copy).unwrap();
        let sealed = SealedShim::new(&copy).unwrap();
        assert_eq!(sealed.kind, "read-only overlay");
        check_sealed(&sealed.file, &copy, libc::EROFS);
        // Mounted nowhere.
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(
            !mounts.contains("berth-shim-seal"),
            "the overlay is mounted: {mounts}"
        );
        assert_eq!(std::fs::read(&copy).unwrap(), before);
    }

    #[test]
    fn without_overlayfs_shims_run_from_a_sealed_memfd_copy() {
        let (_dir, copy) = sleep_copy();
        let before = std::fs::read(&copy).unwrap();
        let sealed = sealed_memfd(&copy).unwrap();
        // Executed, a memfd refuses writers with ETXTBSY; its seals refuse
        // writes of a descriptor opened before (EPERM).
        check_sealed(&sealed, &copy, libc::ETXTBSY);
        let mut w = std::fs::OpenOptions::new()
            .write(true)
            .open(format!("/proc/self/fd/{}", sealed.as_raw_fd()))
            .unwrap();
        let e = std::io::Write::write(&mut w, b"x").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}");
        assert_eq!(std::fs::read(&copy).unwrap(), before);
    }
}
