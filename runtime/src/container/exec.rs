//! Exec sessions (`docker exec`): created against a running container,
//! started once, inspected for their exit code. Kept in memory, as Docker
//! keeps them; they go with their container.

use super::{Containers, Status};
use crate::error::{Error, Result};
use crate::executor::{ExecProcess, ExecSpec};
use berth_api_types::container as wire;
use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

pub struct Exec {
    pub id: String,
    pub container_id: String,
    pub config: wire::ExecConfig,
    state: Mutex<ExecState>,
    done: watch::Sender<Option<i64>>,
}

#[derive(Default)]
struct ExecState {
    started: bool,
    running: bool,
    exit_code: Option<i64>,
    pid: i64,
    pty: Option<Arc<OwnedFd>>,
}

/// A started exec's streams, for the API to pump.
pub struct ExecStreams {
    pub tty: bool,
    pub stdin: Option<OwnedFd>,
    pub stdout: OwnedFd,
    pub stderr: Option<OwnedFd>,
    /// Whether the client asked for each output stream (`AttachStdout`,
    /// `AttachStderr`); what it did not ask for is read and thrown away.
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    /// Turns `Some(code)` when the process has exited.
    pub done: watch::Receiver<Option<i64>>,
    /// The detach keys of the exec (`DetachKeys`, else ctrl-p,ctrl-q),
    /// which end a client's session on an exec with a TTY.
    pub detach_keys: Vec<u8>,
    /// Records a detach.
    pub on_detach: ExecDetach,
}

/// Records that an exec's client typed the detach keys (Docker's
/// `exec_detach` event); the process runs on.
pub struct ExecDetach {
    events: Arc<super::events::EventBus>,
    container: String,
    attributes: std::collections::BTreeMap<String, String>,
}

impl ExecDetach {
    pub fn fire(&self) {
        self.events
            .container("exec_detach", &self.container, self.attributes.clone());
    }
}

#[derive(Default)]
pub struct Execs {
    by_id: Mutex<HashMap<String, Arc<Exec>>>,
}

impl Execs {
    fn get(&self, id: &str) -> Result<Arc<Exec>> {
        self.by_id
            .lock()
            .unwrap()
            .get(id)
            .cloned()
            .ok_or_else(|| Error::not_found(format!("No such exec instance: {id}")))
    }

    /// IDs of a container's execs, for its inspect.
    pub fn of(&self, container: &str) -> Vec<String> {
        self.by_id
            .lock()
            .unwrap()
            .values()
            .filter(|e| e.container_id == container)
            .map(|e| e.id.clone())
            .collect()
    }

    /// Forgets a container's execs (it was removed).
    pub fn forget(&self, container: &str) {
        self.by_id
            .lock()
            .unwrap()
            .retain(|_, e| e.container_id != container);
    }
}

impl Containers {
    /// `POST /containers/{id}/exec`.
    pub fn exec_create(&self, name: &str, config: wire::ExecConfig) -> Result<String> {
        let c = self.get(name)?;
        let rec = c.record();
        if rec.state.status == Status::Paused {
            return Err(Error::conflict(format!(
                "Container {} is paused, unpause the container before exec",
                c.id
            )));
        }
        if rec.state.status != Status::Running {
            return Err(Error::conflict(format!(
                "Container {} is not running",
                c.id
            )));
        }
        if config.cmd.as_ref().is_none_or(|c| c.is_empty()) {
            return Err(Error::invalid("No exec command specified"));
        }
        crate::executor::native::init::check_user_ids(&config.user).map_err(Error::invalid)?;
        berth_api_types::detach::parse_detach_keys(&config.detach_keys).map_err(Error::invalid)?;
        if rec.workload.kind() == crate::executor::ExecutorKind::Wasm {
            return Err(Error::invalid(
                "exec is not available for Wasm containers: a Wasm container is one module instance, with no process to join",
            ));
        }
        let id = crate::util::random_id();
        let cmd = config.cmd.clone().unwrap_or_default().join(" ");
        self.emit(
            &c,
            &format!("exec_create: {cmd}"),
            &[("execID", id.clone())],
        );
        let (done, _) = watch::channel(None);
        let exec = Arc::new(Exec {
            id: id.clone(),
            container_id: c.id.clone(),
            config,
            state: Mutex::new(ExecState::default()),
            done,
        });
        self.execs.by_id.lock().unwrap().insert(id.clone(), exec);
        Ok(id)
    }

    /// `POST /exec/{id}/start`: runs the process and hands back its streams.
    pub fn exec_start(&self, id: &str, console: Option<[u16; 2]>) -> Result<ExecStreams> {
        let exec = self.execs.get(id)?;
        {
            let mut st = exec.state.lock().unwrap();
            if st.started {
                return Err(Error::conflict(format!(
                    "Error: Exec command {id} is already running"
                )));
            }
            st.started = true;
        }
        let c = self.get(&exec.container_id)?;
        let rec = c.record();
        if rec.state.status == Status::Paused {
            return Err(Error::conflict(format!(
                "Container {} is paused, unpause the container before exec",
                c.id
            )));
        }
        if rec.state.status != Status::Running {
            return Err(Error::conflict(format!(
                "Container {} is not running",
                c.id
            )));
        }
        let launch = self.launch(&c, &rec)?;
        let mut env = crate::container::spec::native_env(
            &rec.config,
            &crate::container::spec::hostname(&rec.config, &rec.id),
        );
        for kv in &exec.config.env {
            let key = kv.split('=').next().unwrap_or(kv);
            env.retain(|e| e.split('=').next() != Some(key));
            env.push(kv.clone());
        }
        let spec = ExecSpec {
            args: exec.config.cmd.clone().unwrap_or_default(),
            env,
            cwd: if exec.config.working_dir.is_empty() {
                if rec.config.working_dir.is_empty() {
                    "/".into()
                } else {
                    rec.config.working_dir.clone()
                }
            } else {
                exec.config.working_dir.clone()
            },
            user: exec.config.user.clone(),
            tty: exec.config.tty,
            privileged: exec.config.privileged,
            pid: rec.state.pid as i32,
        };
        let console = console.or_else(|| {
            exec.config
                .console_size
                .filter(|[h, w]| *h > 0 && *w > 0)
                .map(|[h, w]| [h as u16, w as u16])
        });
        let executor = self.executor(rec.workload.kind())?.clone();
        let ExecProcess {
            mut child,
            stdin,
            stdout,
            stderr,
            pty,
        } = executor.exec(&launch, spec, exec.config.attach_stdin, console)?;
        {
            let mut st = exec.state.lock().unwrap();
            st.running = true;
            st.pid = child.id().map(|p| p as i64).unwrap_or(0);
            st.pty = pty.map(Arc::new);
        }
        let cmd = exec.config.cmd.clone().unwrap_or_default().join(" ");
        self.emit(
            &c,
            &format!("exec_start: {cmd}"),
            &[("execID", exec.id.clone())],
        );
        let events = self.events.clone();
        let die_attrs = super::event_attributes(&rec, &[("execID", exec.id.clone())]);
        let on_detach = ExecDetach {
            events: events.clone(),
            container: c.id.clone(),
            attributes: die_attrs.clone(),
        };
        let e2 = exec.clone();
        tokio::spawn(async move {
            let code = match child.wait().await {
                Ok(s) => s.code().map(|c| c as i64).unwrap_or_else(|| {
                    use std::os::unix::process::ExitStatusExt;
                    128 + s.signal().unwrap_or(0) as i64
                }),
                Err(_) => 126,
            };
            {
                let mut st = e2.state.lock().unwrap();
                st.running = false;
                st.exit_code = Some(code);
                st.pty = None;
            }
            let mut attrs = die_attrs;
            attrs.insert("exitCode".into(), code.to_string());
            events.container("exec_die", &e2.container_id, attrs);
            e2.done.send_replace(Some(code));
        });
        Ok(ExecStreams {
            tty: exec.config.tty,
            stdin,
            stdout,
            stderr,
            attach_stdout: exec.config.attach_stdout,
            attach_stderr: exec.config.attach_stderr,
            done: exec.done.subscribe(),
            // Checked at create.
            detach_keys: berth_api_types::detach::parse_detach_keys(&exec.config.detach_keys)
                .unwrap_or_else(|_| berth_api_types::detach::DEFAULT_DETACH_KEYS.to_vec()),
            on_detach,
        })
    }

    /// `GET /exec/{id}/json`.
    pub fn exec_inspect(&self, id: &str) -> Result<wire::ExecInspect> {
        let exec = self.execs.get(id)?;
        let st = exec.state.lock().unwrap();
        let cmd = exec.config.cmd.clone().unwrap_or_default();
        Ok(wire::ExecInspect {
            id: exec.id.clone(),
            running: st.running,
            exit_code: st.exit_code,
            process_config: wire::ProcessConfig {
                privileged: exec.config.privileged,
                user: exec.config.user.clone(),
                tty: exec.config.tty,
                entrypoint: cmd.first().cloned().unwrap_or_default(),
                arguments: cmd.iter().skip(1).cloned().collect(),
            },
            open_stdin: exec.config.attach_stdin,
            open_stderr: exec.config.attach_stderr,
            open_stdout: exec.config.attach_stdout,
            can_remove: false,
            container_id: exec.container_id.clone(),
            detach_keys: exec.config.detach_keys.clone(),
            pid: st.pid,
        })
    }

    /// `POST /exec/{id}/resize`.
    pub fn exec_resize(&self, id: &str, rows: u16, cols: u16) -> Result<()> {
        let exec = self.execs.get(id)?;
        let st = exec.state.lock().unwrap();
        let Some(pty) = &st.pty else {
            return Err(Error::invalid(format!("exec {id} has no TTY to resize")));
        };
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        use std::os::fd::AsRawFd;
        // SAFETY: TIOCSWINSZ on the exec's pty master with a valid winsize.
        if unsafe { libc::ioctl(pty.as_raw_fd(), libc::TIOCSWINSZ, &ws) } < 0 {
            return Err(Error::internal(format!(
                "resizing the TTY: {}",
                std::io::Error::last_os_error()
            )));
        }
        Ok(())
    }
}
