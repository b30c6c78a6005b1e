//! `berth run`: create, attach, wait, start, stream, exit with the
//! container's status, in the order the docker CLI uses.

use std::future::pending;
use std::pin::pin;
use std::time::Duration;

use anyhow::Result;
use berth_api_types::container::WaitResponse;
use clap::Args;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::oneshot;

use super::create::{AttachConfig, ContainerOptions};
use crate::client::{AttachOptions, AttachStream, Client, ClientError};
use crate::output::OutputWriter;
use crate::term;
use berth_api_types::detach::DetachWatch;

/// How long to wait for the daemon to acknowledge `wait` (by sending the
/// response headers, as moby does once the waiter is registered) before
/// starting anyway. A daemon that acknowledges never hits this.
const WAIT_ACK_GRACE: Duration = Duration::from_millis(250);

/// Create and run a new container from an image
#[derive(Args, Debug)]
#[command(
    override_usage = "berth run [OPTIONS] IMAGE [COMMAND] [ARG...]",
    disable_help_flag = true
)]
pub struct RunCommand {
    /// Run container in background and print container ID
    #[arg(short = 'd', long)]
    pub detach: bool,

    #[command(flatten)]
    pub sig: SigProxy,

    /// Override the key sequence for detaching a container
    #[arg(long, value_name = "KEYS")]
    pub detach_keys: Option<String>,

    #[command(flatten)]
    pub opts: ContainerOptions,

    /// The image, then the command and its arguments (everything after IMAGE goes to the container)
    #[arg(value_name = "IMAGE", trailing_var_arg = true, required = true, num_args = 1..)]
    pub image_and_command: Vec<String>,
}

/// Docker's `--sig-proxy[=false]` (`run`, `attach`).
#[derive(Args, Debug)]
pub struct SigProxy {
    /// Proxy received signals to the process (`--sig-proxy=false` to not)
    #[arg(
        long,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_value_t = true,
        default_missing_value = "true",
        action = clap::ArgAction::Set
    )]
    pub sig_proxy: bool,
}

/// What `start -a` and `attach` need to know of a container.
#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Brief {
    pub id: String,
    #[serde(default)]
    pub config: BriefConfig,
    #[serde(default)]
    pub host_config: BriefHostConfig,
    #[serde(default)]
    pub state: BriefState,
}

#[derive(serde::Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
pub(crate) struct BriefConfig {
    pub tty: bool,
    pub open_stdin: bool,
}

#[derive(serde::Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
pub(crate) struct BriefHostConfig {
    pub auto_remove: bool,
}

#[derive(serde::Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
pub(crate) struct BriefState {
    pub running: bool,
    pub paused: bool,
    pub restarting: bool,
}

impl Brief {
    /// `GET /containers/{name}/json`, the fields above.
    pub async fn fetch(client: &Client, name: &str) -> Result<Brief> {
        let raw = client.container_inspect_raw(name).await?;
        serde_json::from_slice(&raw)
            .map_err(|e| anyhow::anyhow!("reading the container's inspect data: {e}"))
    }
}

/// The exit code a wait result gives: the container's status, or
/// `failed` (after saying why) when the wait itself failed.
pub(crate) fn exit_code(status: Result<WaitResponse, ClientError>, failed: i32) -> i32 {
    match status {
        Ok(WaitResponse {
            error: Some(err), ..
        }) if !err.message.is_empty() => {
            eprintln!("berth: error waiting for container: {}", err.message);
            failed
        }
        Ok(w) => w.status_code as i32,
        Err(e) => {
            eprintln!("berth: error waiting for container: {e}");
            failed
        }
    }
}

/// A failure that `run` (and `start -a`) reports itself: `berth: <error>`
/// and an exit code (125 for daemon errors, as docker does).
pub(crate) struct Fail(pub i32, pub anyhow::Error);

impl Fail {
    /// Prints the error and gives the exit code.
    pub fn report(self) -> i32 {
        eprintln!("berth: {:#}", self.1);
        self.0
    }
}

impl<E: Into<anyhow::Error>> From<E> for Fail {
    fn from(e: E) -> Fail {
        Fail(125, e.into())
    }
}

/// Docker's exit code for a failed start: 127 when the command was not
/// found, 126 when it could not be executed, else 125.
fn start_failure(e: ClientError) -> Fail {
    let text = e.to_string();
    let code = if text.contains("executable file not found")
        || text.contains("no such file or directory")
        || text.contains("system cannot find the file specified")
    {
        127
    } else if text.contains("permission denied") {
        126
    } else {
        125
    };
    Fail(code, e.into())
}

impl RunCommand {
    pub async fn execute(self, client: &Client) -> Result<i32> {
        match self.run(client).await {
            Ok(Ok(code)) => Ok(code),
            // Errors of the attached session (local I/O, the stream) go to
            // main, which treats a closed stdout as a quiet success.
            Ok(Err(e)) => Err(e),
            Err(fail) => Ok(fail.report()),
        }
    }

    async fn run(self, client: &Client) -> Result<Result<i32>, Fail> {
        self.opts.validate().map_err(anyhow::Error::msg)?;
        let (image, cmd) = self
            .image_and_command
            .split_first()
            .expect("clap requires IMAGE");
        let tty = self.opts.tty;
        let interactive = self.opts.interactive;
        let attach = AttachConfig {
            stdin: !self.detach && interactive,
            stdout: !self.detach,
            stderr: !self.detach,
            stdin_once: !self.detach && interactive,
        };
        if attach.stdin && tty && !term::stdin_is_tty() {
            return Err(Fail(1, anyhow::anyhow!("the input device is not a TTY")));
        }
        // Checked before anything is created; `-d` attaches nothing, so
        // has no use for them (nor does docker check them then).
        let detach = if self.detach {
            term::DetachKeys::default()
        } else {
            term::detach_keys(self.detach_keys.as_deref())?
        };
        let console = if tty && !self.detach {
            term::size()
        } else {
            None
        };
        let req = self
            .opts
            .create_request(image, cmd, attach, console)
            .map_err(anyhow::Error::msg)?;
        let id = self.opts.create(client, image, &req).await?;

        if self.detach {
            client.container_start(&id).await.map_err(start_failure)?;
            crate::output::println(&id)?;
            return Ok(Ok(0));
        }
        let condition = if self.opts.rm { "removed" } else { "next-exit" };
        let session = AttachedSession {
            tty,
            interactive,
            sig_proxy: self.sig.sig_proxy,
            condition,
            detach: &detach,
        };
        attached(client, &id, session).await
    }
}

/// How [`attached`] runs a container's session.
pub(crate) struct AttachedSession<'a> {
    pub tty: bool,
    pub interactive: bool,
    pub sig_proxy: bool,
    /// What to wait for: "next-exit", or "removed" for an auto-removed
    /// container.
    pub condition: &'a str,
    pub detach: &'a term::DetachKeys,
}

/// Runs a container's attached session as `run` and `start -a` do: attach
/// (with stdin when `interactive`), wait for `condition` ("next-exit", or
/// "removed" for an auto-removed container), start, stream until the
/// daemon closes the stream (forwarding signals with `sig_proxy`, see
/// [`stream_session`]), and give the container's exit code. A session
/// ended with the detach keys gives 0 and leaves the container running, as
/// the docker CLI does.
///
/// The outer error is one the caller reports with its exit code; the inner
/// one comes from the session's own I/O.
pub(crate) async fn attached(
    client: &Client,
    id: &str,
    s: AttachedSession<'_>,
) -> Result<Result<i32>, Fail> {
    let AttachedSession {
        tty,
        interactive,
        sig_proxy,
        condition,
        detach,
    } = s;
    // The wait request runs beside everything else; it tells us (via
    // `ack`) when its headers arrive, i.e. when the daemon has
    // registered the waiter and it is safe to start.
    let (ack_tx, ack_rx) = oneshot::channel::<()>();
    let wait = async {
        let pending = client.container_wait(id, Some(condition)).await?;
        let _ = ack_tx.send(());
        pending.status().await
    };
    let mut wait = pin!(wait);
    let mut wait_result: Option<Result<WaitResponse, ClientError>> = None;

    let session = async {
        let stream = client
            .container_attach(
                id,
                AttachOptions {
                    stdin: interactive,
                    stdout: true,
                    stderr: true,
                    detach_keys: &detach.spec,
                },
            )
            .await?;
        let _ = tokio::time::timeout(WAIT_ACK_GRACE, ack_rx).await;
        let raw = if tty && interactive && term::stdin_is_tty() {
            Some(term::RawMode::enable().map_err(|e| Fail(125, e.into()))?)
        } else {
            None
        };
        client.container_start(id).await.map_err(start_failure)?;
        let streamed = stream_session(
            client,
            Session::Container(id),
            stream,
            SessionOptions {
                tty,
                interactive,
                sig_proxy,
                detach_keys: Some(&detach.keys),
            },
        )
        .await;
        drop(raw);
        Ok::<_, Fail>(streamed)
    };
    let mut session = pin!(session);

    let streamed = loop {
        tokio::select! {
            r = &mut session => break r?,
            w = &mut wait, if wait_result.is_none() => wait_result = Some(w),
        }
    };
    match streamed {
        Err(e) => return Ok(Err(e)),
        // The container runs on; nothing to wait for.
        Ok(Ended::Detached) => return Ok(Ok(0)),
        Ok(Ended::Closed) => {}
    }
    let status = match wait_result {
        Some(w) => w,
        None => wait.await,
    };
    Ok(Ok(exit_code(status, 125)))
}

/// What a hijacked stream belongs to.
#[derive(Debug, Clone, Copy)]
pub enum Session<'a> {
    Container(&'a str),
    Exec(&'a str),
}

/// How [`stream_session`] runs.
#[derive(Debug, Clone, Copy)]
pub struct SessionOptions<'a> {
    /// The process has a TTY: output is raw, not framed.
    pub tty: bool,
    /// Send stdin (`-i`).
    pub interactive: bool,
    /// Forward signals to a container without a TTY (`--sig-proxy`).
    pub sig_proxy: bool,
    /// The detach keys, watched for on stdin when the session has a TTY
    /// and takes input (as the docker CLI does).
    pub detach_keys: Option<&'a [u8]>,
}

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The daemon closed the stream: the process is done.
    Closed,
    /// The user typed the detach keys; the process runs on.
    Detached,
}

/// Copies the attach (or exec) stream to stdout/stderr and, with `-i`,
/// stdin to the stream (half-closing it at EOF), until the daemon closes
/// the stream or the user types the detach keys. Meanwhile forwards
/// signals (with `sig_proxy`, to a container without a TTY, as docker's
/// `--sig-proxy`) and window size changes (with a TTY).
pub async fn stream_session(
    client: &Client,
    session: Session<'_>,
    stream: AttachStream,
    opts: SessionOptions<'_>,
) -> Result<Ended> {
    let SessionOptions {
        tty,
        interactive,
        sig_proxy,
        detach_keys,
    } = opts;
    let mut watch = detach_keys
        .filter(|k| tty && interactive && !k.is_empty())
        .map(|k| DetachWatch::new(k.to_vec()));
    let (mut rd, mut wr) = tokio::io::split(stream);
    let output = async {
        let mut out = OutputWriter::new(tty);
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = rd.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            out.write(&buf[..n])?;
        }
        out.finish()
    };
    let input = async {
        if interactive {
            let mut stdin = tokio::io::stdin();
            let mut buf = vec![0u8; 32 * 1024];
            let mut passed = Vec::new();
            loop {
                let n = match stdin.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let data = match watch.as_mut() {
                    Some(w) => {
                        passed.clear();
                        if w.feed(&buf[..n], &mut passed) {
                            let _ = wr.write_all(&passed).await;
                            return Ended::Detached;
                        }
                        &passed[..]
                    }
                    None => &buf[..n],
                };
                // A write error means the daemon closed its side; stop
                // sending.
                if wr.write_all(data).await.is_err() {
                    break;
                }
            }
            // A partial sequence held back at the end was input after all.
            if let Some(w) = &watch {
                let _ = wr.write_all(w.held()).await;
            }
            let _ = wr.shutdown().await;
        }
        pending::<Ended>().await
    };
    let io = async {
        tokio::select! {
            r = output => r.map(|()| Ended::Closed),
            ended = input => Ok(ended),
        }
    };
    let mut io = pin!(io);

    // Docker's --sig-proxy: on by default, off with a TTY (^C is then a
    // byte on stdin); never for exec.
    let mut signals = match session {
        Session::Container(_) if !tty && sig_proxy => SignalProxy::new().ok(),
        _ => None,
    };
    let mut winch = if tty && term::stdout_is_tty() {
        signal(SignalKind::window_change()).ok()
    } else {
        None
    };
    loop {
        tokio::select! {
            r = &mut io => return r,
            name = next_signal(&mut signals) => {
                if let Session::Container(id) = session
                    && let Err(e) = client.container_kill(id, Some(name)).await
                {
                    eprintln!("berth: forwarding {name}: {e}");
                }
            }
            () = next_winch(&mut winch) => {
                if let Some((h, w)) = term::size() {
                    let _ = match session {
                        Session::Container(id) => client.container_resize(id, h, w).await,
                        Session::Exec(id) => client.exec_resize(id, h, w).await,
                    };
                }
            }
        }
    }
}

/// The signals forwarded to the container while attached.
struct SignalProxy {
    int: Signal,
    term: Signal,
    hup: Signal,
    quit: Signal,
}

impl SignalProxy {
    fn new() -> std::io::Result<SignalProxy> {
        Ok(SignalProxy {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
            quit: signal(SignalKind::quit())?,
        })
    }
}

async fn next_signal(p: &mut Option<SignalProxy>) -> &'static str {
    let Some(p) = p else {
        return pending().await;
    };
    tokio::select! {
        Some(()) = p.int.recv() => "SIGINT",
        Some(()) = p.term.recv() => "SIGTERM",
        Some(()) = p.hup.recv() => "SIGHUP",
        Some(()) = p.quit.recv() => "SIGQUIT",
        else => pending().await,
    }
}

async fn next_winch(s: &mut Option<Signal>) {
    if let Some(s) = s
        && s.recv().await.is_some()
    {
        return;
    }
    pending().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        run: RunCommand,
    }

    #[test]
    fn arguments_after_the_image_go_to_the_container() {
        let t =
            T::try_parse_from(["run", "--rm", "-e", "A=1", "hello", "--exit", "3", "-d"]).unwrap();
        assert!(t.run.opts.rm);
        assert!(!t.run.detach);
        assert_eq!(t.run.image_and_command, ["hello", "--exit", "3", "-d"]);
        assert!(t.run.sig.sig_proxy);
        let t = T::try_parse_from(["run", "-d", "--entrypoint", "", "img"]).unwrap();
        assert!(t.run.detach);
        assert_eq!(t.run.opts.entrypoint.as_deref(), Some(""));
        assert_eq!(t.run.image_and_command, ["img"]);
        let t = T::try_parse_from(["run", "--sig-proxy=false", "img"]).unwrap();
        assert!(!t.run.sig.sig_proxy);
        let t = T::try_parse_from(["run", "--sig-proxy", "img", "x"]).unwrap();
        assert!(t.run.sig.sig_proxy);
        assert_eq!(t.run.image_and_command, ["img", "x"]);
        let t = T::try_parse_from([
            "run",
            "-it",
            "-m",
            "64m",
            "--restart",
            "on-failure:2",
            "img",
            "sh",
        ])
        .unwrap();
        assert!(t.run.opts.interactive && t.run.opts.tty);
        assert_eq!(t.run.opts.memory, Some(64 << 20));
        assert_eq!(t.run.opts.restart.unwrap().maximum_retry_count, 2);
        assert!(T::try_parse_from(["run", "-m", "lots", "img"]).is_err());
        assert!(T::try_parse_from(["run"]).is_err());
    }

    #[test]
    fn start_failures_map_to_dockers_exit_codes() {
        let daemon = |m: &str| ClientError::Daemon {
            status: hyper::StatusCode::BAD_REQUEST,
            message: m.to_string(),
        };
        assert_eq!(
            start_failure(daemon("exec: \"nope\": executable file not found in $PATH")).0,
            127
        );
        assert_eq!(start_failure(daemon("open /x: permission denied")).0, 126);
        assert_eq!(start_failure(daemon("boom")).0, 125);
    }
}
