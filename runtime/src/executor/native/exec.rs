//! `docker exec` for native containers: a process started inside a running
//! container's namespaces and cgroup, as its user, with its capabilities and
//! seccomp filter.
//!
//! berthd runs `berth-shim exec SPEC` with the new process's stdio
//! as fds 0-2. That helper joins the container (`setns` into its
//! namespaces, its cgroups), forks so that the process is inside the pid
//! namespace, and waits for it, exiting with its status; so berthd sees the
//! exec's exit code as the helper's. This module holds both sides.

use super::init::{self, User};
use super::shim::SeccompChoice;
use super::{caps, seccomp};
use crate::error::{Error, Result, ResultExt};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// What to run, from `POST /containers/{id}/exec`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
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

/// Everything the helper needs, in the file it is given: the exec and what
/// it inherits from the container (berthd works it out from the
/// container's launch; the helper reads nothing else of the bundle).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct HelperInput {
    exec: ExecSpec,
    seccomp: SeccompChoice,
    capabilities: Option<oci_spec::runtime::LinuxCapabilities>,
    no_new_privileges: bool,
    /// The container's user, for an exec that names none.
    user: String,
    /// `RLIMIT_NOFILE` for the process (see `super::container_nofile`).
    #[serde(default)]
    nofile: Option<[u64; 2]>,
}

impl HelperInput {
    fn new(launch: &super::super::Launch, exec: &ExecSpec) -> Result<HelperInput> {
        let process = launch.spec.process().as_ref();
        Ok(HelperInput {
            exec: exec.clone(),
            seccomp: super::native_of(launch)?.seccomp.clone(),
            capabilities: process.and_then(|p| p.capabilities().clone()),
            no_new_privileges: process.and_then(|p| p.no_new_privileges()).unwrap_or(true),
            user: super::shim::container_user(&launch.spec),
            nofile: super::container_nofile(),
        })
    }
}

/// The helper's entry: `berth-shim exec SPEC_FILE`. Never returns.
pub fn helper_main(spec_file: &Path) -> ! {
    // The helper needs no descriptor but its stdio: nothing berthd (or
    // whatever started berthd) left open may follow it into the container.
    super::close_from(3);
    // Until the command is executed, the helper's /proc entries (its
    // executable is a host file) are not for the container's processes
    // to open: not dumpable, as runc's setns process. `execve` makes the
    // command dumpable again.
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    let code = match run_helper(spec_file) {
        Ok(code) => code,
        Err((code, msg)) => {
            let _ = writeln!(std::io::stderr(), "berth: exec failed: {msg}");
            code
        }
    };
    std::process::exit(code)
}

fn run_helper(spec_file: &Path) -> std::result::Result<i32, (i32, String)> {
    let e = |m: String| (126, m);
    let input: HelperInput =
        serde_json::from_slice(&std::fs::read(spec_file).map_err(|x| e(x.to_string()))?)
            .map_err(|x| e(format!("exec spec: {x}")))?;
    let _ = std::fs::remove_file(spec_file);
    let spec = &input.exec;

    // Compile what the process will need before entering the container.
    let sets = match (spec.privileged, &input.capabilities) {
        (true, _) => caps::CapSets::docker(&caps::all_supported()),
        (false, Some(c)) => caps::CapSets::from_oci(c).map_err(|x| e(x.to_string()))?,
        (false, None) => caps::CapSets::docker(&[]),
    };
    let keep: Vec<caps::Capability> = sets.bounding.to_vec();
    let program = match (&input.seccomp, spec.privileged) {
        (SeccompChoice::Unconfined, _) | (_, true) => None,
        (SeccompChoice::Default, _) => Some(
            seccomp::compile(seccomp::default_profile(), &keep).map_err(|x| e(x.to_string()))?,
        ),
        (SeccompChoice::Profile(json), _) => {
            let p = seccomp::parse(json.as_bytes()).map_err(|x| e(x.to_string()))?;
            Some(seccomp::compile(&p, &keep).map_err(|x| e(x.to_string()))?)
        }
    };
    let no_new_privs = input.no_new_privileges;
    let user_spec = if spec.user.is_empty() {
        input.user.clone()
    } else {
        spec.user.clone()
    };

    // Join the container's cgroups, then its namespaces.
    join_cgroups(spec.pid).map_err(|x| e(format!("joining the container's cgroup: {x}")))?;
    let pid = spec.pid;
    let ns_fds: Vec<(OwnedFd, &str)> = ["cgroup", "ipc", "uts", "net", "pid", "mnt"]
        .into_iter()
        .filter_map(|ns| {
            nix::fcntl::open(
                format!("/proc/{pid}/ns/{ns}").as_str(),
                nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .ok()
            .map(|fd| (fd, ns))
        })
        .collect();
    if ns_fds.len() < 5 {
        return Err(e(format!("container process {pid} is gone")));
    }
    for (fd, ns) in &ns_fds {
        nix::sched::setns(fd.as_fd(), nix::sched::CloneFlags::empty())
            .map_err(|x| e(format!("entering the container's {ns} namespace: {x}")))?;
    }
    // Entering the pid namespace takes effect for children: fork.
    // SAFETY: this helper is single-threaded.
    match unsafe { nix::unistd::fork() }.map_err(|x| e(format!("fork: {x}")))? {
        nix::unistd::ForkResult::Child => {
            let code = match child(
                spec,
                &user_spec,
                &sets,
                no_new_privs,
                program.as_ref(),
                input.nofile,
            ) {
                Ok(never) => match never {},
                Err((code, msg)) => {
                    let _ = writeln!(std::io::stderr(), "{msg}");
                    code
                }
            };
            // SAFETY: ending the forked child.
            unsafe { libc::_exit(code) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            // Forward termination signals to the process.
            forward_signals(child);
            loop {
                match nix::sys::wait::waitpid(child, None) {
                    Ok(nix::sys::wait::WaitStatus::Exited(_, c)) => return Ok(c),
                    Ok(nix::sys::wait::WaitStatus::Signaled(_, s, _)) => return Ok(128 + s as i32),
                    Err(nix::errno::Errno::EINTR) | Ok(_) => continue,
                    Err(x) => return Err((1, format!("waiting: {x}"))),
                }
            }
        }
    }
}

enum Never {}

fn child(
    spec: &ExecSpec,
    user_spec: &str,
    sets: &caps::CapSets,
    no_new_privs: bool,
    program: Option<&seccomp::Program>,
    nofile: Option<[u64; 2]>,
) -> std::result::Result<Never, (i32, String)> {
    // What runc prefixes its exec failures with, which Docker shows.
    let failed = |m: String| {
        (
            126,
            format!("OCI runtime exec failed: exec failed: unable to start container process: {m}"),
        )
    };
    nix::unistd::setsid().map_err(|x| (126, format!("setsid: {x}")))?;
    if spec.tty {
        // SAFETY: the pty slave berthd gave us is stdin.
        unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) };
    }
    super::set_nofile(nofile).map_err(|x| failed(format!("setting RLIMIT_NOFILE: {x}")))?;
    // The container's root, which joining its mount namespace made this
    // process's: its user and the working directory are resolved inside
    // it by descriptor, never through a magic link.
    let root = init::open_root().map_err(|x| failed(format!("opening the root: {x}")))?;
    let user: User = init::resolve_user(&root, user_spec).map_err(|m| (126, m))?;
    let mut env = spec.env.clone();
    if !env.iter().any(|v| v.starts_with("HOME=")) {
        env.push(format!("HOME={}", user.home));
    }
    let cwd_path = if spec.cwd.is_empty() {
        "/"
    } else {
        spec.cwd.as_str()
    };
    // Docker's exec does not create a missing working directory.
    let cwd = init::open_cwd(&root, cwd_path, false).map_err(failed)?;
    drop(root);
    let entered = init::enter_cwd(&cwd, cwd_path, false);
    init::switch_user(&user).map_err(|m| (126, m))?;
    if !no_new_privs && let Some(p) = program {
        seccomp::install(p).map_err(|x| (126, format!("seccomp: {x}")))?;
    }
    caps::apply(sets).map_err(|x| (126, format!("capabilities: {x}")))?;
    if no_new_privs {
        seccomp::set_no_new_privs().map_err(|x| (126, format!("no_new_privs: {x}")))?;
        if let Some(p) = program {
            seccomp::install(p).map_err(|x| (126, format!("seccomp: {x}")))?;
        }
    }
    if entered.is_err() {
        // Not searchable by root: maybe by the user (runc tries both).
        init::enter_cwd(&cwd, cwd_path, true).map_err(failed)?;
    }
    drop(cwd);
    let (path, argv, envp) = init::prepare_exec_pub(&spec.args, &env)
        .map_err(|(c, m)| (c, format!("OCI runtime exec failed: exec failed: {m}")))?;
    // Only stdio reaches the command (the namespace descriptors are
    // close-on-exec already; this is the rule, not a hope).
    super::cloexec_from(3)
        .map_err(|x| failed(format!("marking descriptors close-on-exec: {x}")))?;
    let err = nix::unistd::execve(&path, &argv, &envp).unwrap_err();
    let prog = path.to_string_lossy().into_owned();
    Err(match err {
        nix::errno::Errno::ENOENT => (
            127,
            format!(
                "OCI runtime exec failed: exec failed: unable to start container process: exec: \"{prog}\": stat {prog}: no such file or directory"
            ),
        ),
        e => (
            126,
            format!(
                "OCI runtime exec failed: exec failed: unable to start container process: exec: \"{prog}\": {}",
                e.desc()
            ),
        ),
    })
}

/// Joins every cgroup the container's init is in.
fn join_cgroups(pid: i32) -> std::io::Result<()> {
    let me = std::process::id().to_string();
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))?;
    let mounts = std::fs::read_to_string("/proc/self/mountinfo")?;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = match (parts.next(), parts.next(), parts.next()) {
            (Some(a), Some(b), Some(c)) => (a, b, c),
            _ => continue,
        };
        // Find the mount of this hierarchy.
        let mount = mounts.lines().find_map(|m| {
            let fields: Vec<&str> = m.split(' ').collect();
            let sep = fields.iter().position(|f| *f == "-")?;
            let fstype = fields.get(sep + 1)?;
            let opts = fields.get(sep + 3)?;
            let point = fields.get(4)?;
            let ok = if controllers.is_empty() {
                *fstype == "cgroup2"
            } else {
                *fstype == "cgroup"
                    && controllers
                        .split(',')
                        .all(|c| opts.split(',').any(|o| o == c))
            };
            ok.then(|| PathBuf::from(point))
        });
        if let Some(m) = mount {
            let procs = m.join(path.trim_start_matches('/')).join("cgroup.procs");
            if procs.exists() {
                std::fs::write(&procs, &me)?;
            }
        }
    }
    Ok(())
}

/// SIGTERM, SIGINT, SIGHUP and SIGQUIT to the helper go to the process.
fn forward_signals(child: nix::unistd::Pid) {
    static CHILD: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);
    CHILD.store(child.as_raw(), std::sync::atomic::Ordering::SeqCst);
    extern "C" fn forward(sig: libc::c_int) {
        let pid = CHILD.load(std::sync::atomic::Ordering::SeqCst);
        if pid > 0 {
            // SAFETY: kill is async-signal-safe.
            unsafe { libc::kill(pid, sig) };
        }
    }
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT] {
        // SAFETY: installing a handler that only calls kill.
        unsafe { libc::signal(sig, forward as *const () as libc::sighandler_t) };
    }
}

/// berthd's side: the running helper and the ends of its stdio.
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

/// A pty in the container's own devpts, as runc makes exec consoles, so
/// that the process's terminal is a `/dev/pts/N` it can see (`tty` names
/// it). The master is opened inside the container's root; the slave comes
/// from the master (`TIOCGPTPEER`), never by path. None if that fails.
fn container_pty(pid: i32, ws: Option<&nix::pty::Winsize>) -> Option<(OwnedFd, OwnedFd)> {
    use nix::fcntl::OFlag;
    let root = nix::fcntl::open(
        format!("/proc/{pid}/root").as_str(),
        OFlag::O_DIRECTORY | OFlag::O_PATH | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ok()?;
    let master = init::open_in(&root, "/dev/pts/ptmx", OFlag::O_RDWR | OFlag::O_NOCTTY).ok()?;
    pty_pair(master, ws)
}

/// A pty of the host's devpts, when the container's cannot be used: both
/// ends close-on-exec from the start (`openpty` makes them inheritable,
/// and another thread's spawn could take them along meanwhile).
fn host_pty(ws: Option<&nix::pty::Winsize>) -> Result<(OwnedFd, OwnedFd)> {
    use nix::fcntl::OFlag;
    let master = nix::fcntl::open(
        "/dev/ptmx",
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ctx("opening /dev/ptmx")?;
    pty_pair(master, ws).ok_or_else(|| {
        Error::internal(format!(
            "setting up a pty: {}",
            std::io::Error::last_os_error()
        ))
    })
}

/// Unlocks a pty master and opens its slave (close-on-exec) from it.
fn pty_pair(master: OwnedFd, ws: Option<&nix::pty::Winsize>) -> Option<(OwnedFd, OwnedFd)> {
    let mut unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK with a valid pointer; TIOCGPTPEER returns a new fd.
    let slave = unsafe {
        if libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &mut unlock) < 0 {
            return None;
        }
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if slave < 0 {
        return None;
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    let slave = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(slave) };
    if let Some(ws) = ws {
        // SAFETY: TIOCSWINSZ with a valid winsize.
        unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, ws) };
    }
    Some((master, slave))
}

/// Starts `berth-shim exec` for a container.
pub fn spawn(
    shim: &Path,
    launch: &super::super::Launch,
    id: &str,
    spec: &ExecSpec,
    stdin: bool,
    console: Option<[u16; 2]>,
) -> Result<ExecProcess> {
    let bundle = &launch.bundle;
    let spec_file = bundle.join(format!("exec-{id}.json"));
    std::fs::write(
        &spec_file,
        serde_json::to_vec(&HelperInput::new(launch, spec)?).ctx("encoding the exec spec")?,
    )
    .ctx("writing the exec spec")?;
    let mut cmd = tokio::process::Command::new(shim);
    cmd.arg("exec").arg(&spec_file);
    let proc_ = if spec.tty {
        let ws = console.map(|[rows, cols]| nix::pty::Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        });
        let (master, slave) = match container_pty(spec.pid, ws.as_ref()) {
            Some(pair) => pair,
            None => host_pty(ws.as_ref())?,
        };
        cmd.stdin(std::process::Stdio::from(slave.try_clone().ctx("dup")?))
            .stdout(std::process::Stdio::from(slave.try_clone().ctx("dup")?))
            .stderr(std::process::Stdio::from(slave));
        let child = cmd
            .spawn()
            .map_err(|x| Error::internal(format!("running {}: {x}", shim.display())))?;
        ExecProcess {
            child,
            stdin: if stdin {
                Some(master.try_clone().ctx("dup")?)
            } else {
                None
            },
            stdout: master.try_clone().ctx("dup")?,
            stderr: None,
            pty: Some(master),
        }
    } else {
        let (in_r, in_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ctx("pipe")?;
        let (out_r, out_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ctx("pipe")?;
        let (err_r, err_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ctx("pipe")?;
        if stdin {
            cmd.stdin(std::process::Stdio::from(in_r));
        } else {
            cmd.stdin(std::process::Stdio::null());
        }
        cmd.stdout(std::process::Stdio::from(out_w))
            .stderr(std::process::Stdio::from(err_w));
        let child = cmd
            .spawn()
            .map_err(|x| Error::internal(format!("running {}: {x}", shim.display())))?;
        ExecProcess {
            child,
            stdin: stdin.then_some(in_w),
            stdout: out_r,
            stderr: Some(err_r),
            pty: None,
        }
    };
    let _ = proc_.stdout.as_raw_fd();
    Ok(proc_)
}
