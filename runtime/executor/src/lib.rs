//! berth's executor seam: what an executor is given and hands back (the
//! OCI runtime spec, stdio, a running process), the json-file log writer,
//! and the native executor with its shim (`berth-shim`), plus the error
//! type and small helpers the whole runtime shares.
//!
//! An executor gets a [`Launch`] (the OCI runtime spec and what it runs) and
//! the container's stdio, and hands back a [`Running`] process: its pid, a
//! way to signal it, and a future of its [`ExitStatus`]. Executors never
//! touch the stores; the container module of `berth-runtime` owns records
//! and logs. Executors know the OCI spec, not Docker.
//!
//! This crate depends on nothing of the runtime above it (no wasmtime, no
//! metadata store, no registry client), so that `berth-shim` links none of
//! them. The Wasm executor lives in `berth-runtime` (`executor::wasm`),
//! which re-exports this crate as its `executor` module.

pub mod error;
pub mod log;
pub mod native;
pub mod util;

pub use error::{Error, ErrorKind, Result};

use berth_api_types::stream::StreamKind;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::Arc;

/// Which executor runs a container: fixed from its image at create.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutorKind {
    Wasm,
    Native,
}

impl ExecutorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutorKind::Wasm => "wasm",
            ExecutorKind::Native => "native",
        }
    }
}

/// Which WASI a binary targets, judged from its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WasiTarget {
    /// A core module (WASI preview 1).
    Wasip1,
    /// A component (WASI 0.2).
    Wasip2,
}

impl WasiTarget {
    pub fn as_str(self) -> &'static str {
        match self {
            WasiTarget::Wasip1 => "wasip1",
            WasiTarget::Wasip2 => "wasip2",
        }
    }
}

/// Where a container's output goes: the log and any attached clients.
pub trait OutputSink: Send + Sync + 'static {
    fn write(&self, stream: StreamKind, data: &[u8]);
    /// Output that someone else (a native container's shim) already wrote
    /// to the log: only attached clients and log followers need to hear of
    /// it.
    fn relay(&self, stream: StreamKind, data: &[u8]) {
        self.write(stream, data)
    }
}

/// The module a Wasm container runs.
#[derive(Debug, Clone)]
pub struct WasmModule {
    /// The module's digest: the key of the compiled-code cache.
    pub digest: util::Digest,
    /// Where the module's bytes are (the container's own copy).
    pub path: PathBuf,
    pub target: WasiTarget,
}

/// What a native container runs on besides its spec.
#[derive(Debug, Clone)]
pub struct NativeLaunch {
    /// Its image's unpacked layers, top first.
    pub lowers: Vec<PathBuf>,
    /// An external OCI runtime (`crun`, `runc`); `None` is berth's own.
    pub runtime: Option<PathBuf>,
    /// `--init`.
    pub init: bool,
    pub open_stdin: bool,
    pub console_size: Option<[u16; 2]>,
}

/// Everything an executor needs to start a container's process.
#[derive(Debug, Clone)]
pub struct Launch {
    pub id: String,
    /// The OCI runtime spec: process args, env, cwd, terminal, resources,
    /// and for a native container its capabilities and seccomp section,
    /// which every runtime installs as they are.
    pub spec: oci_spec::runtime::Spec,
    /// The container's state directory.
    pub bundle: PathBuf,
    /// The directory a Wasm container sees as `/`.
    pub rootfs: PathBuf,
    pub workload: Workload,
}

/// What a container runs besides its spec: a Wasm module or a native
/// container's layers and settings, one or the other.
#[derive(Debug, Clone)]
pub enum Workload {
    Wasm(WasmModule),
    Native(NativeLaunch),
}

impl Launch {
    /// The module of a Wasm container.
    pub fn wasm(&self) -> Option<&WasmModule> {
        match &self.workload {
            Workload::Wasm(m) => Some(m),
            Workload::Native(_) => None,
        }
    }

    /// The layers and settings of a native container.
    pub fn native(&self) -> Option<&NativeLaunch> {
        match &self.workload {
            Workload::Native(n) => Some(n),
            Workload::Wasm(_) => None,
        }
    }

    pub fn args(&self) -> &[String] {
        self.spec
            .process()
            .as_ref()
            .and_then(|p| p.args().as_deref())
            .unwrap_or(&[])
    }

    pub fn env(&self) -> &[String] {
        self.spec
            .process()
            .as_ref()
            .and_then(|p| p.env().as_deref())
            .unwrap_or(&[])
    }

    pub fn cwd(&self) -> &str {
        self.spec
            .process()
            .as_ref()
            .and_then(|p| p.cwd().to_str())
            .unwrap_or("/")
    }

    /// The memory limit in bytes, if any.
    pub fn memory_limit(&self) -> Option<u64> {
        self.spec
            .linux()
            .as_ref()?
            .resources()
            .as_ref()?
            .memory()
            .as_ref()?
            .limit()
            .filter(|l| *l > 0)
            .map(|l| l as u64)
    }
}

/// Bytes written to a container's stdin; `None`-terminated by dropping the
/// writer.
pub type StdinWriter = tokio::sync::mpsc::Sender<Bytes>;
pub type StdinReader = tokio::sync::mpsc::Receiver<Bytes>;

/// A container's standard streams.
pub struct Stdio {
    pub output: Arc<dyn OutputSink>,
    /// `Some` when the container was created with `OpenStdin`.
    pub stdin: Option<StdinReader>,
}

/// How a container's process ended.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExitStatus {
    /// The exit code; 128 + signal number when a signal ended it.
    pub code: i64,
    /// Why it ended abnormally (a trap, a limit), for `State.Error`.
    pub error: Option<String>,
    pub oom_killed: bool,
    /// A longer account for the log (a trap's backtrace), if any.
    pub detail: Option<String>,
}

/// Signals a running process.
pub trait Control: Send + Sync {
    fn signal(&self, signal: i32) -> Result<()>;
    /// Resizes its TTY.
    fn resize(&self, rows: u16, cols: u16) -> Result<()> {
        let _ = (rows, cols);
        Err(Error::invalid("this container has no TTY to resize"))
    }
    /// Suspends the process (`docker pause`) where the executor does it
    /// itself; native containers are frozen through their cgroup instead.
    fn pause(&self) -> Result<()> {
        Err(Error::not_implemented(
            "this executor cannot pause a container",
        ))
    }
    /// Resumes a paused process.
    fn resume(&self) -> Result<()> {
        Err(Error::not_implemented(
            "this executor cannot unpause a container",
        ))
    }
    /// What the process has used, for executors that account for it
    /// themselves (Wasm); native containers are read from their cgroup.
    fn usage(&self) -> Option<Usage> {
        None
    }
    /// Changes the memory limit of the running process (`docker update
    /// --memory`), in bytes; `None` lifts it. Native containers are updated
    /// through their cgroup instead.
    fn set_memory_limit(&self, limit: Option<u64>) -> Result<()> {
        let _ = limit;
        Err(Error::not_implemented(
            "this executor cannot change a running container's memory limit",
        ))
    }
}

/// Resources a running container has used (see [`Control::usage`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Time spent running the guest, in nanoseconds.
    pub cpu_ns: u64,
    /// Memory in use, in bytes.
    pub memory: u64,
    /// The memory limit, if there is one.
    pub memory_limit: Option<u64>,
}

/// A started process.
pub struct Running {
    /// The host pid, or 0 for a Wasm container (it has none).
    pub pid: i64,
    pub control: Box<dyn Control>,
}

/// Called once with the exit status when the process ends. Executors call
/// it where they learn of the exit, so that recording it costs no extra
/// hop between threads.
pub type ExitCallback = Box<dyn FnOnce(ExitStatus) -> BoxFuture<'static, ()> + Send>;

/// What to run, from `POST /containers/{id}/exec`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, Default)]
pub struct ExecSpec {
    pub args: Vec<String>,
    /// The container's environment with the exec's additions.
    pub env: Vec<String>,
    pub cwd: String,
    /// `user`, `uid`, `user:group`; empty for the container's user.
    pub user: String,
    pub tty: bool,
    pub privileged: bool,
    /// The container's init, in the host's pid namespace.
    pub pid: i32,
}

/// A process started by [`Executor::exec`], berthd's side: the running
/// helper and the ends of its stdio.
pub struct ExecProcess {
    pub child: tokio::process::Child,
    /// Where to write the process's stdin (a pipe, or the pty master).
    pub stdin: Option<OwnedFd>,
    /// Its stdout (or the pty master).
    pub stdout: OwnedFd,
    pub stderr: Option<OwnedFd>,
    /// The pty master, for resizes.
    pub pty: Option<OwnedFd>,
}

/// Runs containers of one kind.
pub trait Executor: Send + Sync + 'static {
    fn kind(&self) -> ExecutorKind;

    /// Checks that the container can run and does the slow work once
    /// (compiling a module), so that start is fast. Called at create and
    /// again at start when the daemon has restarted since.
    fn prepare<'a>(&'a self, launch: &'a Launch) -> BoxFuture<'a, Result<()>>;

    /// The container was created: the executor may get its first start
    /// ready in the background (berth's native runtime makes its overlay).
    fn created(&self, launch: &Launch) {
        let _ = launch;
    }

    /// Lets go of what [`created`](Self::created) got ready, before the
    /// container's files are used another way (copied, exported, removed);
    /// waits for it if it is still being made.
    fn release<'a>(&'a self, id: &'a str) -> BoxFuture<'a, ()> {
        let _ = id;
        Box::pin(async {})
    }

    /// Starts the process. `on_exit` is called exactly once if this returns
    /// `Ok`, never if it returns an error.
    fn start<'a>(
        &'a self,
        launch: &'a Launch,
        stdio: Stdio,
        on_exit: ExitCallback,
    ) -> BoxFuture<'a, Result<Running>>;

    /// Starts another process in a running container (`docker exec`).
    fn exec(
        &self,
        launch: &Launch,
        spec: ExecSpec,
        stdin: bool,
        console: Option<[u16; 2]>,
    ) -> Result<ExecProcess> {
        let _ = (launch, spec, stdin, console);
        Err(Error::invalid(
            "exec is not available for Wasm containers: a Wasm container is one module instance, with no process to join",
        ))
    }

    /// After a daemon restart: finds the process of a container that was
    /// running and takes it over, or learns how it ended.
    fn reattach<'a>(
        &'a self,
        launch: &'a Launch,
        stdio: Stdio,
        on_exit: ExitCallback,
    ) -> BoxFuture<'a, Result<Reattached>> {
        let _ = (launch, stdio, on_exit);
        Box::pin(async { Ok(Reattached::Lost) })
    }
}

/// What [`Executor::reattach`] found.
pub enum Reattached {
    /// Still running, taken over.
    Running(Running),
    /// It ended while the daemon was away.
    Exited(ExitStatus),
    /// Nothing is known of it (a Wasm container ran inside the daemon).
    Lost,
}

/// Parses a signal as Docker accepts it: `SIGKILL`, `KILL`, `kill` or `9`.
pub fn parse_signal(s: &str) -> Result<i32> {
    let s = s.trim();
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        return Err(Error::invalid(format!("invalid signal: {s}")));
    }
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let full = format!("SIG{name}");
    full.parse::<nix::sys::signal::Signal>()
        .map(|sig| sig as i32)
        .map_err(|_| Error::invalid(format!("invalid signal: {s}")))
}

/// The signal's name (`SIGTERM`), or its number.
pub fn signal_name(sig: i32) -> String {
    nix::sys::signal::Signal::try_from(sig)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| sig.to_string())
}

/// What a signal does to a process that has not set up a handler, which is
/// every Wasm module: WASI has no signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultAction {
    Terminate,
    Ignore,
    Stop,
    Continue,
}

pub fn default_action(sig: i32) -> DefaultAction {
    use nix::sys::signal::Signal::*;
    match nix::sys::signal::Signal::try_from(sig) {
        Ok(SIGCHLD | SIGURG | SIGWINCH) => DefaultAction::Ignore,
        Ok(SIGSTOP | SIGTSTP | SIGTTIN | SIGTTOU) => DefaultAction::Stop,
        Ok(SIGCONT) => DefaultAction::Continue,
        // Real-time signals and the rest terminate.
        _ => DefaultAction::Terminate,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_signals_like_docker() {
        assert_eq!(parse_signal("SIGKILL").unwrap(), 9);
        assert_eq!(parse_signal("kill").unwrap(), 9);
        assert_eq!(parse_signal("TERM").unwrap(), 15);
        assert_eq!(parse_signal("15").unwrap(), 15);
        assert!(parse_signal("SIGNOPE").is_err());
        assert!(parse_signal("0").is_err());
        assert_eq!(signal_name(15), "SIGTERM");
    }

    #[test]
    fn default_actions() {
        assert_eq!(default_action(15), DefaultAction::Terminate);
        assert_eq!(default_action(28), DefaultAction::Ignore);
        assert_eq!(default_action(19), DefaultAction::Stop);
    }
}
