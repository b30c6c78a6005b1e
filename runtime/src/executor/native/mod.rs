//! The native executor: Linux containers from an OCI runtime spec, run with
//! namespaces, an overlayfs root, cgroups, capabilities and seccomp, each
//! under a small shim process that outlives the daemon.

pub mod caps;
pub mod cgroups;
pub mod exec;
pub mod init;
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
use shim::{ExitFile, ShimConfig, StartReport};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::UnixStream;
use tokio::sync::mpsc;

/// Settings of the native executor.
#[derive(Debug, Clone)]
pub struct NativeConfig {
    /// The `berth-shim` binary.
    pub shim: PathBuf,
    /// Parent cgroup of every container (`berth`).
    pub cgroup_parent: String,
}

/// Runs native containers, each under a `berth-shim`.
pub struct NativeExecutor {
    config: NativeConfig,
    /// Per container, whether its last shim is gone: a new start waits for
    /// the old shim's cleanup (it unmounts the same root).
    shims: std::sync::Mutex<std::collections::HashMap<String, tokio::sync::watch::Receiver<bool>>>,
}

impl NativeExecutor {
    pub fn new(config: NativeConfig) -> Result<NativeExecutor> {
        if !config.shim.is_file() {
            return Err(Error::internal(format!(
                "berth-shim not found at {}: install it next to berthd, or set BERTH_SHIM",
                config.shim.display()
            )));
        }
        Ok(NativeExecutor {
            config,
            shims: Default::default(),
        })
    }

    pub fn cgroup_parent(&self) -> &str {
        &self.config.cgroup_parent
    }

    /// Writes the bundle's files: the OCI spec and the shim's settings.
    fn write_bundle(&self, launch: &Launch) -> Result<ShimConfig> {
        let native = launch
            .native
            .as_ref()
            .ok_or_else(|| Error::internal("a native container without its layers"))?;
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
            seccomp: native.seccomp.clone(),
            cgroup_parent: self.config.cgroup_parent.clone(),
            init: native.init,
            console_size: native.console_size,
        };
        for d in [&cfg.upper, &cfg.work, &launch.rootfs] {
            std::fs::create_dir_all(d).ctx(format!("creating {}", d.display()))?;
        }
        let spec = serde_json::to_vec_pretty(&launch.spec).ctx("encoding config.json")?;
        std::fs::write(launch.bundle.join(shim::SPEC_FILE), spec).ctx("writing config.json")?;
        std::fs::write(
            launch.bundle.join(shim::CONFIG_FILE),
            serde_json::to_vec(&cfg).ctx("encoding shim.json")?,
        )
        .ctx("writing shim.json")?;
        let _ = std::fs::remove_file(launch.bundle.join(shim::EXIT_FILE));
        Ok(cfg)
    }
}

impl Executor for NativeExecutor {
    fn kind(&self) -> ExecutorKind {
        ExecutorKind::Native
    }

    fn prepare<'a>(&'a self, launch: &'a Launch) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let native = launch
                .native
                .as_ref()
                .ok_or_else(|| Error::internal("a native container without its layers"))?;
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
            self.write_bundle(launch)?;
            let (ours, theirs) = std::os::unix::net::UnixStream::pair().ctx("socketpair")?;
            let (report_r, report_w) =
                nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ctx("pipe")?;
            let bundle_dir = nix::fcntl::open(
                &launch.bundle,
                nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .ctx("opening the bundle")?;
            let mut cmd = tokio::process::Command::new(&self.config.shim);
            // A clean environment: the shim's is what `--init` shows as the
            // container's /proc/1/environ.
            cmd.arg0("berth-shim")
                .env_clear()
                .env("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(launch.bundle.join("shim.log"))
                        .map(std::process::Stdio::from)
                        .unwrap_or_else(|_| std::process::Stdio::null()),
                );
            if let Some(t) = std::env::var_os("BERTH_SHIM_TRACE") {
                cmd.env("BERTH_SHIM_TRACE", t);
            }
            let (rw, sock, dir) = (report_w.as_raw_fd(), theirs.as_raw_fd(), bundle_dir.as_raw_fd());
            // SAFETY: dup2 only, between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::dup2(rw, 3) < 0 || libc::dup2(sock, 4) < 0 || libc::dup2(dir, 5) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            let mut child = cmd.spawn().map_err(|e| {
                Error::internal(format!(
                    "running {}: {e}",
                    self.config.shim.display()
                ))
            })?;
            drop(report_w);
            drop(theirs);
            drop(bundle_dir);
            let mut report = Vec::new();
            let mut pipe = tokio::fs::File::from_std(std::fs::File::from(report_r));
            let _ = pipe.read_to_end(&mut report).await;
            let report: StartReport = match serde_json::from_slice(&report) {
                Ok(r) => r,
                Err(_) => {
                    let status = child.wait().await.ok();
                    let log = std::fs::read_to_string(launch.bundle.join("shim.log")).unwrap_or_default();
                    return Err(Error::internal(format!(
                        "berth-shim failed ({}): {}",
                        status.map(|s| s.to_string()).unwrap_or_default(),
                        log.trim()
                    )));
                }
            };
            // Reap the shim whenever it ends.
            tokio::spawn(async move {
                let _ = child.wait().await;
            });
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
        spec: exec::ExecSpec,
        stdin: bool,
        console: Option<[u16; 2]>,
    ) -> Result<exec::ExecProcess> {
        let id = crate::util::random_id();
        exec::spawn(&self.config.shim, &launch.bundle, &id[..16], &spec, stdin, console)
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
                    Some(protocol::State { exited: Some(e), .. }) => {
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
            if protocol::write_frame(&mut wr, kind, &payload).await.is_err() {
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
