//! `docker exec` for native containers: a process started inside a running
//! container's namespaces and cgroup, as its user, with its capabilities and
//! seccomp filter.
//!
//! berthd runs `berth-shim exec SPEC` (a sealed view of the binary, see
//! `super::SealedShim`) with the new process's stdio as fds 0-2. That
//! helper joins the container (its cgroups, then its namespaces, through a
//! pidfd of its init), forks so that the process is inside the pid
//! namespace, and waits for it, exiting with its status; so berthd sees the
//! exec's exit code as the helper's. The child finds the program inside the
//! container's root (`init::prepare_exec`). This module holds both sides.

use super::init::{self, User};
use super::{caps, seccomp};
use crate::error::{Error, Result, ResultExt};
use crate::{ExecProcess, ExecSpec};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// Everything the helper needs, in the file it is given: the exec and what
/// it inherits from the container (berthd works it out from the
/// container's spec; the helper reads nothing else of the bundle).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct HelperInput {
    exec: ExecSpec,
    /// The compiled form of the spec's `linux.seccomp`, as
    /// [`seccomp::Program::to_bytes`] in hex; `None` for an exec with
    /// `--privileged` or a container without a filter.
    seccomp: Option<String>,
    capabilities: Option<oci_spec::runtime::LinuxCapabilities>,
    no_new_privileges: bool,
    /// The container's user, for an exec that names none.
    user: String,
    /// The container's id: its init's cgroup is named after it, which
    /// tells the init from a process that took its pid.
    container: String,
    /// `RLIMIT_NOFILE` for the process (see `super::container_nofile`).
    #[serde(default)]
    nofile: Option<[u64; 2]>,
}

impl HelperInput {
    fn new(launch: &crate::Launch, exec: &ExecSpec, filter: Option<&[u8]>) -> HelperInput {
        let process = launch.spec.process().as_ref();
        HelperInput {
            exec: exec.clone(),
            seccomp: filter.map(hex::encode),
            capabilities: process.and_then(|p| p.capabilities().clone()),
            no_new_privileges: process.and_then(|p| p.no_new_privileges()).unwrap_or(true),
            user: init::container_user(&launch.spec),
            container: launch.id.clone(),
            nofile: super::container_nofile(),
        }
    }
}

/// The helper's entry: `berth-shim exec SPEC_FILE` (relative to the
/// bundle directory it starts in). Never returns. Like every shim, it is
/// not dumpable (see `super::shim::main`) until its child executes the
/// command, as runc's setns process.
pub fn helper_main(spec_file: &Path) -> ! {
    // The helper needs no descriptor but its stdio: nothing berthd (or
    // whatever started berthd) left open may follow it into the container.
    super::close_from(3);
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
    let program = match (&input.seccomp, spec.privileged) {
        (None, _) | (_, true) => None,
        (Some(hex), false) => Some(
            hex::decode(hex)
                .map_err(|x| x.to_string())
                .and_then(|b| seccomp::Program::from_bytes(&b).map_err(|x| x.to_string()))
                .map_err(|x| e(format!("seccomp program: {x}")))?,
        ),
    };
    let no_new_privs = input.no_new_privileges;
    let user_spec = if spec.user.is_empty() {
        input.user.clone()
    } else {
        spec.user.clone()
    };

    // Join the container's cgroups, then its namespaces: those of the
    // process checked to be its init.
    let init = Init::open(spec.pid, &input.container).map_err(e)?;
    join_cgroups(&init.cgroups).map_err(|x| e(format!("joining the container's cgroup: {x}")))?;
    init.enter().map_err(e)?;
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
    let entered = init::enter_cwd(&cwd, cwd_path, false);
    init::switch_user(&user).map_err(|m| (126, m))?;
    if !no_new_privs && let Some(p) = program {
        seccomp::install(p).map_err(|x| (126, format!("seccomp: {x}")))?;
    }
    caps::apply(sets).map_err(|x| (126, format!("capabilities: {x}")))?;
    if entered.is_err() {
        // Not searchable by root: maybe by the user (runc tries both).
        init::enter_cwd(&cwd, cwd_path, true).map_err(failed)?;
    }
    drop(cwd);
    // Resolved inside the root, never through a magic link (see
    // `init::prepare_exec`), as the user, before the filter.
    let (path, argv, envp) = init::prepare_exec_pub(&root, &spec.args, &env)
        .map_err(|(c, m)| (c, format!("OCI runtime exec failed: exec failed: {m}")))?;
    drop(root);
    if no_new_privs {
        seccomp::set_no_new_privs().map_err(|x| (126, format!("no_new_privs: {x}")))?;
        if let Some(p) = program {
            seccomp::install(p).map_err(|x| (126, format!("seccomp: {x}")))?;
        }
    }
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

/// The container's init as the helper joins it. berthd knows it by its
/// pid, which another process may have taken if the init has exited (and
/// been reaped) since: the helper holds it by a pidfd (Linux 5.3), checks
/// that its cgroup is the container's, and that it is still alive after
/// (so what was read was of the process the pidfd holds), and then joins
/// that process's namespaces through the pidfd (Linux 5.8), all at once.
/// Without pidfds, by `/proc/PID`, as before.
struct Init {
    pid: i32,
    pidfd: Option<OwnedFd>,
    /// Its `/proc/PID/cgroup`.
    cgroups: String,
}

/// The namespaces an exec joins (a container has no user namespace).
const NAMESPACES: [(libc::c_int, &str); 6] = [
    (libc::CLONE_NEWCGROUP, "cgroup"),
    (libc::CLONE_NEWIPC, "ipc"),
    (libc::CLONE_NEWUTS, "uts"),
    (libc::CLONE_NEWNET, "net"),
    (libc::CLONE_NEWPID, "pid"),
    (libc::CLONE_NEWNS, "mnt"),
];

impl Init {
    fn open(pid: i32, container: &str) -> std::result::Result<Init, String> {
        let gone = || format!("container process {pid} is gone");
        // SAFETY: pidfd_open with integer arguments; the result is checked.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        let pidfd = if fd >= 0 {
            // SAFETY: a descriptor the kernel just returned.
            Some(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) })
        } else if nix::errno::Errno::last() == nix::errno::Errno::ESRCH {
            return Err(gone());
        } else {
            None
        };
        let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).map_err(|_| gone())?;
        if !in_cgroup_of(&cgroups, container) {
            return Err(format!(
                "process {pid} is not container {}'s init any more: it has exited",
                container.chars().take(12).collect::<String>()
            ));
        }
        let init = Init {
            pid,
            pidfd,
            cgroups,
        };
        init.alive()?;
        Ok(init)
    }

    /// Still running: then everything read of `/proc/PID` since the pidfd
    /// was opened was of this process.
    fn alive(&self) -> std::result::Result<(), String> {
        let Some(fd) = &self.pidfd else {
            return Ok(());
        };
        // SAFETY: pidfd_send_signal of signal 0 (a check) on our pidfd.
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                fd.as_raw_fd(),
                0,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if r == 0 || nix::errno::Errno::last() != nix::errno::Errno::ESRCH {
            Ok(())
        } else {
            Err(format!("container process {} is gone", self.pid))
        }
    }

    /// Joins its cgroup, ipc, uts, net, pid and mount namespaces (the pid
    /// namespace for this process's children).
    fn enter(&self) -> std::result::Result<(), String> {
        if let Some(fd) = &self.pidfd {
            let all = NAMESPACES.iter().fold(0, |a, (flag, _)| a | flag);
            // SAFETY: setns on our pidfd with namespace flags.
            if unsafe { libc::setns(fd.as_raw_fd(), all) } == 0 {
                return Ok(());
            }
            match nix::errno::Errno::last() {
                // Before Linux 5.8, setns takes namespace descriptors only.
                nix::errno::Errno::EINVAL => {}
                nix::errno::Errno::ESRCH => {
                    return Err(format!("container process {} is gone", self.pid));
                }
                x => return Err(format!("entering the container's namespaces: {x}")),
            }
        }
        let pid = self.pid;
        let ns_fds: Vec<(OwnedFd, &str)> = NAMESPACES
            .iter()
            .filter_map(|(_, ns)| {
                nix::fcntl::open(
                    format!("/proc/{pid}/ns/{ns}").as_str(),
                    nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
                    nix::sys::stat::Mode::empty(),
                )
                .ok()
                .map(|fd| (fd, *ns))
            })
            .collect();
        if ns_fds.len() < 5 {
            return Err(format!("container process {pid} is gone"));
        }
        // Opened while it ran: they are its namespaces.
        self.alive()?;
        for (fd, ns) in &ns_fds {
            nix::sched::setns(fd.as_fd(), nix::sched::CloneFlags::empty())
                .map_err(|x| format!("entering the container's {ns} namespace: {x}"))?;
        }
        Ok(())
    }
}

/// Whether a `/proc/PID/cgroup` shows a process in container `id`'s
/// cgroup (`PARENT/ID`, or below it), in any hierarchy.
fn in_cgroup_of(cgroups: &str, id: &str) -> bool {
    !id.is_empty()
        && cgroups.lines().any(|line| {
            line.splitn(3, ':')
                .nth(2)
                .is_some_and(|path| path.split('/').any(|c| c == id))
        })
}

/// Joins every cgroup in `text` (the container's init's
/// `/proc/PID/cgroup`).
fn join_cgroups(text: &str) -> std::io::Result<()> {
    let me = std::process::id().to_string();
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

/// Starts `berth-shim exec` for a container: `sealed` is the path to
/// execute (see `super::SealedShim`), `shim` the binary's name for
/// messages, `filter` the compiled form of the container spec's
/// `linux.seccomp` (none for `--privileged`).
///
/// The helper's child lives in the container's pid namespace until it
/// executes the command, and anyone there may read its command line: it
/// is `berth-shim exec exec-ID.json` (the helper starts in the bundle
/// directory), with no path of the host's, and its environment is a clean
/// one, not berthd's.
pub fn spawn(
    sealed: &Path,
    shim: &Path,
    launch: &crate::Launch,
    spec: &ExecSpec,
    filter: Option<&[u8]>,
    stdin: bool,
    console: Option<[u16; 2]>,
) -> Result<ExecProcess> {
    let bundle = &launch.bundle;
    let id = crate::util::random_id();
    let spec_name = format!("exec-{}.json", &id[..16]);
    let spec_file = bundle.join(&spec_name);
    std::fs::write(
        &spec_file,
        serde_json::to_vec(&HelperInput::new(launch, spec, filter))
            .ctx("encoding the exec spec")?,
    )
    .ctx("writing the exec spec")?;
    let mut cmd = tokio::process::Command::new(sealed);
    cmd.arg0("berth-shim")
        .arg("exec")
        .arg(&spec_name)
        .current_dir(bundle)
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        );
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

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4f1d9c0e2b7a4f1d9c0e2b7a4f1d9c0e2b7a4f1d9c0e2b7a4f1d9c0e2b7a4f1d";

    #[test]
    fn a_container_is_known_by_its_cgroup_in_any_hierarchy() {
        let v1 =
            format!("12:pids:/berth/{ID}\n11:memory:/berth/{ID}\n1:name=systemd:/user.slice\n");
        assert!(in_cgroup_of(&v1, ID));
        assert!(in_cgroup_of(&format!("0::/berth/{ID}/sub\n"), ID));
        assert!(in_cgroup_of(&format!("0::/{ID}\n"), ID));
        for other in [
            "0::/user.slice/session-1.scope\n".to_string(),
            format!("0::/berth/{ID}x\n"),
            format!("0::/berth/x{ID}\n"),
            format!("0::/berth/{}\n", &ID[..63]),
            String::new(),
        ] {
            assert!(!in_cgroup_of(&other, ID), "{other}");
        }
        assert!(!in_cgroup_of("0::/berth/\n", ""));
    }

    #[test]
    fn a_pid_that_is_not_the_containers_init_is_not_joined() {
        // A host process where the container's init was (its pid taken
        // after the init exited): refused before anything is joined.
        let mut host = std::process::Command::new("sleep")
            .arg("100")
            .spawn()
            .unwrap();
        let pid = host.id() as i32;
        let e = Init::open(pid, ID)
            .err()
            .expect("a host process passed as the init");
        assert!(e.contains("is not container 4f1d9c0e2b7a's init"), "{e}");
        host.kill().unwrap();
        host.wait().unwrap();
        // Gone altogether.
        let e = Init::open(pid, ID).err().expect("a gone process passed");
        assert!(e.contains("is gone"), "{e}");
    }
}
