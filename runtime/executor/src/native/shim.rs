//! `berth-shim`: the small process that supervises one native container.
//!
//! berthd spawns it with the container's directory (the OCI bundle). The
//! shim mounts the container's root, creates its stdio, its cgroup and its
//! first process (with berth's built-in runtime, [`super::init`], or an
//! external OCI runtime such as crun or runc), then supervises it: it
//! writes the container's log itself, relays output to berthd and stdin,
//! signals and TTY resizes from it, and records the exit status in
//! `exit.json`. It does not depend on berthd staying up: a container keeps
//! running, and logging, while the daemon restarts, and berthd re-adopts it
//! through `shim.sock`.
//!
//! File descriptors at start: 3 is a pipe on which the shim reports the
//! start (`{"pid":N}` or `{"error":..,"code":..}`), 4 is berthd's end of a
//! socketpair, the first daemon connection, 5 the bundle directory, and 6,
//! when `shim.json` says `premounted`, the container's overlay made ahead
//! (a detached mount, see `overlay::premount_rootfs`), which the shim passes
//! on to the child. (Not an argument: with `--init`, a copy of this process
//! is the container's PID 1, and its command line is the shim's.)

use super::cgroups::{Cgroup, CgroupManager, Resources};
use super::init::{self, CgroupMount, InitConfig, MountOp};
use super::protocol::{self, ExitFile, StartReport, State};
use super::seccomp;
use crate::OutputSink;
use crate::log::LogSink;
use crate::util::fdio::{nonblocking, read_async, write_all_async};
use berth_api_types::stream::StreamKind;
use nix::mount::MsFlags;
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;

/// What berthd tells the shim beyond the OCI spec (`config.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShimConfig {
    pub id: String,
    pub tty: bool,
    pub open_stdin: bool,
    /// Overlay layers, top first; the upper and work directories.
    pub lowers: Vec<PathBuf>,
    pub upper: PathBuf,
    pub work: PathBuf,
    /// An external OCI runtime binary; `None` is berth's built-in one.
    pub runtime: Option<PathBuf>,
    /// Parent cgroup name (`berth`).
    pub cgroup_parent: String,
    /// `--init`.
    pub init: bool,
    /// Initial TTY size (rows, columns).
    pub console_size: Option<[u16; 2]>,
    /// berthd passes the overlay it made at create as fd 6 (a spawned
    /// shim; a standby gets it with its job).
    #[serde(default)]
    pub premounted: bool,
    /// `RLIMIT_NOFILE` (soft, hard) for the container: the limits berthd
    /// started with (see `super::container_nofile`); `None` keeps the
    /// shim's.
    #[serde(default)]
    pub nofile: Option<[u64; 2]>,
}

/// What berthd hands a standby shim with a container (after the job's
/// descriptors, as a 4-byte length and JSON): everything the shim would
/// otherwise read from the bundle and work out before the container's
/// child may go on, so that none of it is on the start path.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    pub shim: ShimConfig,
    pub init: InitConfig,
    pub resources: Resources,
}

impl Job {
    /// Works out a job from the container's spec, as the shim would.
    pub fn new(
        shim: ShimConfig,
        spec: &oci_spec::runtime::Spec,
        bundle: &Path,
        mgr: &CgroupManager,
        filter: Option<&[u8]>,
    ) -> Result<Job, String> {
        let rootfs = bundle.join("rootfs");
        let init = init_config(&shim, spec, &rootfs, bundle, mgr, filter).map_err(|(m, _)| m)?;
        Ok(Job {
            resources: resources_from_spec(spec),
            shim,
            init,
        })
    }

    /// Sends the job's payload (its descriptors went first).
    pub fn send(&self, socket: &OwnedFd) -> std::io::Result<()> {
        let json = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        let mut buf = (json.len() as u32).to_be_bytes().to_vec();
        buf.extend_from_slice(&json);
        std::fs::File::from(socket.try_clone()?).write_all(&buf)
    }

    fn receive(socket: &OwnedFd) -> std::io::Result<Job> {
        let mut f = std::fs::File::from(socket.try_clone()?);
        let mut len = [0u8; 4];
        f.read_exact(&mut len)?;
        let mut json = vec![0u8; u32::from_be_bytes(len) as usize];
        f.read_exact(&mut json)?;
        serde_json::from_slice(&json).map_err(std::io::Error::other)
    }
}

/// With `BERTH_SHIM_TRACE` set, the shim logs how long each step took to
/// `shim.log`, for finding where start and exit time goes.
fn trace(step: &str) {
    use std::sync::OnceLock;
    static START: OnceLock<Option<std::time::Instant>> = OnceLock::new();
    if let Some(t0) = START
        .get_or_init(|| std::env::var_os("BERTH_SHIM_TRACE").map(|_| std::time::Instant::now()))
    {
        eprintln!("berth-shim: {:>8} us  {step}", t0.elapsed().as_micros());
    }
}

pub const CONFIG_FILE: &str = "shim.json";
/// The container's seccomp filter, compiled by berthd.
pub const SECCOMP_FILE: &str = "seccomp.bpf";
pub const SPEC_FILE: &str = "config.json";
pub const SOCKET_FILE: &str = "shim.sock";
pub const EXIT_FILE: &str = "exit.json";
pub const LOG_FILE: &str = "log.json";
/// An external runtime's log (JSON lines).
pub const RUNTIME_LOG: &str = "runtime.log";

/// The shim's entry point: `berth-shim BUNDLE`. Never returns.
pub fn main() -> ! {
    // berthd executes a sealed view of this binary by a descriptor's path
    // (see `super::SealedShim`), which the kernel names the process after.
    // SAFETY: prctl with a NUL-terminated name of at most 16 bytes.
    unsafe { libc::prctl(libc::PR_SET_NAME, c"berth-shim".as_ptr(), 0, 0, 0) };
    // Not dumpable, from the start: every process berth forks into a
    // container (the container's child until it executes the command,
    // `--init`'s PID 1 for the container's life, a standby's child, exec's
    // child) is a copy of this one and inherits it, so that a container
    // process without CAP_SYS_PTRACE cannot open their /proc/PID/{exe, fd,
    // root, cwd, environ, mem}. `execve` of the container's program makes
    // that program dumpable again, as runc's init.
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.len() == 3 && args[1] == "exec" {
        super::exec::helper_main(Path::new(&args[2]));
    }
    if args.len() == 3 && args[1] == "standby" {
        standby_main(&args[2].to_string_lossy());
    }
    // The bundle comes as fd 5, not as an argument or variable, so that
    // nothing of the host's paths shows in the container's /proc/1 when
    // `--init` makes a copy of this process its PID 1.
    let bundle = match std::fs::read_link("/proc/self/fd/5") {
        Ok(b) => {
            // SAFETY: fd 5 is the bundle directory berthd passed; done with it.
            unsafe { libc::close(5) };
            b
        }
        Err(_) => {
            eprintln!(
                "berth-shim: berthd runs this with its bundle as fd 5; it is not meant to be run by hand"
            );
            std::process::exit(2);
        }
    };
    // SAFETY: fds 3 and 4 are the report pipe and the daemon socket that
    // berthd set up for this process, 6 perhaps the overlay. None may leak
    // into the container; nothing else berthd had open may reach this
    // process's children (an external runtime) either.
    for fd in [3, 4, 6] {
        // SAFETY: fcntl on a descriptor number changes only its flags; one
        // that is not open fails with EBADF.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    super::close_from(7);
    // SAFETY: berthd opened fds 3 and 4 for this process (see above), and
    // nothing else here owns them.
    let report = unsafe { std::fs::File::from_raw_fd(3) };
    // SAFETY: as above.
    let daemon = unsafe { std::os::unix::net::UnixStream::from_raw_fd(4) };
    let code = match Shim::start(&bundle, report, daemon, None, None, None) {
        Ok(shim) => shim.run(),
        Err(()) => 1,
    };
    std::process::exit(code)
}

struct Shim {
    bundle: PathBuf,
    cfg: ShimConfig,
    pid: Pid,
    cgroup: Option<Cgroup>,
    rootfs: PathBuf,
    daemon: std::os::unix::net::UnixStream,
    stdin: Option<OwnedFd>,
    stdout: OwnedFd,
    stderr: Option<OwnedFd>,
    pty_master: Option<OwnedFd>,
    /// The container's mount namespace. Its last process's exit would
    /// otherwise tear down its mounts (an RCU grace period, a few hundred
    /// microseconds) before the shim even hears of the exit; held, that
    /// happens after berthd has been told.
    mnt_ns: Option<OwnedFd>,
    /// Taken by [`Shim::run`].
    supervision: Option<Supervision>,
}

/// What supervising the container takes, made before its command may run:
/// the shim sleeps while the container's child sets up its root, and is
/// woken when the command has executed; with a short-lived command, the
/// scheduler often lets it run only once the command has exited, so what
/// is left to do then is on the way to the exit reaching berthd.
struct Supervision {
    rt: tokio::runtime::Runtime,
    sink: Arc<LogSink>,
    /// `shim.sock`, for a berthd that restarts; `None` if it could not be
    /// bound (the container runs, but cannot be re-adopted).
    listener: Option<UnixListener>,
    sigchld: tokio::signal::unix::Signal,
}

impl Supervision {
    fn prepare(bundle: &Path) -> Result<Supervision, (String, i32)> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| (format!("starting the shim's event loop: {e}"), 1))?;
        let sink = LogSink::open(bundle.join(LOG_FILE))
            .map_err(|e| (format!("opening the container's log: {e}"), 1))?;
        sink.begin()
            .map_err(|e| (format!("opening the container's log: {e}"), 1))?;
        let _ = std::fs::remove_file(bundle.join(SOCKET_FILE));
        let _entered = rt.enter();
        let listener = bind_socket(bundle);
        let sigchld = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::child())
            .map_err(|e| (format!("watching for the container's exit: {e}"), 1))?;
        drop(_entered);
        Ok(Supervision {
            rt,
            sink: Arc::new(sink),
            listener,
            sigchld,
        })
    }
}

fn report(mut pipe: std::fs::File, r: &StartReport) {
    let _ = pipe.write_all(&serde_json::to_vec(r).unwrap_or_default());
}

fn pipe_pair() -> std::io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(std::io::Error::from)
}

/// A child cloned into fresh namespaces, waiting for its config.
struct Waiting {
    pid: Pid,
    socket: OwnedFd,
    errors: OwnedFd,
    /// The child's mount namespace, held so that the container's exit
    /// does not wait for its mounts to be torn down (see [`Shim::mnt_ns`]).
    mnt_ns: Option<OwnedFd>,
}

impl Waiting {
    /// Clones the child. The shim must be single-threaded.
    fn clone() -> Result<Waiting, (String, i32)> {
        let (ours, theirs) = nix::sys::socket::socketpair(
            nix::sys::socket::AddressFamily::Unix,
            nix::sys::socket::SockType::Stream,
            None,
            nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| (format!("socketpair: {e}"), 1))?;
        let (err_r, err_w) = pipe_pair().map_err(|e| (format!("pipe: {e}"), 1))?;
        let flags = libc::CLONE_NEWNS
            | libc::CLONE_NEWUTS
            | libc::CLONE_NEWIPC
            | libc::CLONE_NEWNET
            | libc::CLONE_NEWPID;
        // SAFETY: the shim is single-threaded here (no runtime started
        // yet), so the child may run ordinary code until it execs.
        let pid = unsafe {
            libc::syscall(
                libc::SYS_clone,
                (flags | libc::SIGCHLD) as libc::c_ulong,
                0usize,
                0usize,
                0usize,
                0usize,
            )
        };
        if pid < 0 {
            return Err((
                format!(
                    "creating the container's namespaces: {}",
                    std::io::Error::last_os_error()
                ),
                1,
            ));
        }
        if pid == 0 {
            drop(ours);
            drop(err_r);
            // Nothing of the shim's but these two may reach the container.
            close_other_fds(&[theirs.as_raw_fd(), err_w.as_raw_fd()]);
            // SAFETY: in the freshly cloned child.
            unsafe { init::waiting_child_main(theirs, err_w) }
        }
        let mnt_ns = nix::fcntl::open(
            format!("/proc/{pid}/ns/mnt").as_str(),
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .ok();
        Ok(Waiting {
            pid: Pid::from_raw(pid as i32),
            socket: ours,
            errors: err_r,
            mnt_ns,
        })
    }

    fn kill(self) {
        let _ = nix::sys::signal::kill(self.pid, Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(self.pid, None);
    }
}

/// Closes every descriptor of this process except 0-2 and `keep`.
fn close_other_fds(keep: &[RawFd]) {
    let mut keep: Vec<RawFd> = keep.to_vec();
    keep.sort_unstable();
    let mut from = 3u32;
    for fd in keep {
        let fd = fd as u32;
        if fd >= from {
            if fd > from {
                // SAFETY: closing our own descriptors in a range.
                unsafe { libc::syscall(libc::SYS_close_range, from, fd - 1, 0u32) };
            }
            from = fd + 1;
        }
    }
    // SAFETY: as above.
    unsafe { libc::syscall(libc::SYS_close_range, from, u32::MAX, 0u32) };
}

/// A standby: a child cloned ahead of time and already in its cgroup.
struct Standby {
    child: Waiting,
    cgroup: Cgroup,
    /// The host's cgroups, as the standby found them.
    mgr: CgroupManager,
}

/// `berth-shim standby PARENT`: clones a container child into fresh
/// namespaces and a cgroup ahead of time, tells berthd it is ready (`r` on
/// fd 3), and waits on fd 3
/// for a container to run: the descriptors a normal shim gets as 3, 4 and
/// 5. Costly steps (exec of the shim, the namespaces, the cgroup move) are
/// then off the container's start path. If berthd closes fd 3 instead, it
/// cleans up and exits.
///
/// berthd puts it under `SCHED_IDLE` once its exec is done (until then it
/// holds copies of berthd's descriptors, which must not wait for an idle
/// CPU), so that its loading takes only time no one else wants, and then
/// sends a go byte on fd 3; from that byte on, it runs at normal priority
/// (the byte comes after the policy was set, whichever runs first). Those steps
/// hold kernel locks that a starting container needs too (the mount
/// namespace lock while its mount table is copied or read, the cgroup
/// mutex, rtnl while its loopback device is made), and an idle task
/// preempted while holding one kept a container's mounts, or its removal,
/// waiting for milliseconds. The container's child, cloned after this,
/// does not inherit the idle policy either.
pub fn standby_main(parent: &str) -> ! {
    let mut go = [0u8; 1];
    // SAFETY: a read of one byte from fd 3, the job socket berthd gave.
    if unsafe { libc::read(3, go.as_mut_ptr().cast(), 1) } != 1 {
        std::process::exit(0);
    }
    init::normal_scheduling();
    let _ = nix::unistd::setsid();
    // SAFETY: ignoring SIGPIPE and SIGHUP for this process.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
        libc::fcntl(3, libc::F_SETFD, libc::FD_CLOEXEC);
    }
    // Only the job socket is berthd's to give; nothing else it had open
    // may stay here.
    super::close_from(4);
    // SAFETY: fd 3 is the job socket berthd gave this process.
    let jobs = unsafe { OwnedFd::from_raw_fd(3) };
    let mgr = match CgroupManager::detect().and_then(|m| m.with_parent(parent)) {
        Ok(m) if m.version() == 1 => m,
        _ => std::process::exit(3),
    };
    let name = format!("standby-{}", &crate::util::random_id()[..16]);
    let cgroup = match mgr.create_standby(&name) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("berth-shim: standby cgroup: {e}");
            std::process::exit(1);
        }
    };
    let child = match Waiting::clone() {
        Ok(w) => w,
        Err((e, _)) => {
            eprintln!("berth-shim: {e}");
            let _ = cgroup.destroy();
            std::process::exit(1);
        }
    };
    if let Err(e) = cgroup.add_pid(child.pid.as_raw()) {
        eprintln!("berth-shim: {e}");
        child.kill();
        let _ = cgroup.destroy();
        std::process::exit(1);
    }
    let _ = nix::unistd::write(&jobs, b"r");
    // The job: one byte with the report pipe, daemon socket, bundle dir
    // (and the overlay, when made ahead).
    let mut byte = [0u8; 1];
    let mut space = nix::cmsg_space!([RawFd; 4]);
    let mut fds = Vec::new();
    let got = {
        let mut iov = [std::io::IoSliceMut::new(&mut byte)];
        match nix::sys::socket::recvmsg::<()>(
            jobs.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            nix::sys::socket::MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(msg) if msg.bytes == 1 => {
                for c in msg.cmsgs().into_iter().flatten() {
                    if let nix::sys::socket::ControlMessageOwned::ScmRights(r) = c {
                        fds.extend(r);
                    }
                }
                true
            }
            _ => false,
        }
    };
    // The report pipe, the daemon socket, the bundle directory, and the
    // container's overlay if berthd made it ahead.
    let job = if got && (3..=4).contains(&fds.len()) {
        Job::receive(&jobs).ok()
    } else {
        None
    };
    drop(jobs);
    let Some(job) = job else {
        child.kill();
        let _ = cgroup.destroy();
        std::process::exit(0);
    };
    // SAFETY: the descriptors berthd sent with the job.
    let (report, daemon, dir, premount) = unsafe {
        (
            std::fs::File::from_raw_fd(fds[0]),
            std::os::unix::net::UnixStream::from_raw_fd(fds[1]),
            OwnedFd::from_raw_fd(fds[2]),
            fds.get(3).map(|&fd| OwnedFd::from_raw_fd(fd)),
        )
    };
    let bundle = match std::fs::read_link(format!("/proc/self/fd/{}", dir.as_raw_fd())) {
        Ok(b) => b,
        Err(_) => std::process::exit(1),
    };
    drop(dir);
    // From here on this shim serves one container: its messages go to that
    // container's shim.log, as a freshly spawned shim's do.
    if let Ok(log) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(bundle.join("shim.log"))
    {
        // SAFETY: dup2 of an open file onto this process's stderr.
        unsafe { libc::dup2(log.as_raw_fd(), 2) };
    }
    let standby = Standby { child, cgroup, mgr };
    let code = match Shim::start(&bundle, report, daemon, Some(standby), Some(job), premount) {
        Ok(shim) => shim.run(),
        Err(()) => 1,
    };
    std::process::exit(code)
}

impl Shim {
    /// Everything up to the container's command running. Reports the
    /// outcome on the report pipe; on failure, undoes what it did.
    fn start(
        bundle: &Path,
        report_pipe: std::fs::File,
        daemon: std::os::unix::net::UnixStream,
        standby: Option<Standby>,
        job: Option<Job>,
        premount: Option<OwnedFd>,
    ) -> Result<Shim, ()> {
        let _ = nix::unistd::setsid();
        // SAFETY: ignoring SIGPIPE and SIGHUP for this process.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
            libc::signal(libc::SIGHUP, libc::SIG_IGN);
        }
        let rootfs = bundle.join("rootfs");
        let mut mounted = false;
        let mut cgroup: Option<Cgroup> = None;
        let mut standby = standby;
        let result = (|| -> Result<Shim, (String, i32)> {
            let e1 = |what: &str| {
                let what = what.to_string();
                move |e: String| (format!("{what}: {e}"), 1)
            };
            let (cfg, prepared) = match job {
                Some(job) => (job.shim, Some((job.init, job.resources))),
                None => (
                    read_json::<ShimConfig>(&bundle.join(CONFIG_FILE))
                        .map_err(e1("reading shim.json"))?,
                    None,
                ),
            };
            // A spawned shim: berthd passed the overlay as fd 6.
            let premount = match premount {
                // SAFETY: fd 6 is what berthd passed, owned from here.
                None if cfg.premounted => Some(unsafe {
                    libc::fcntl(6, libc::F_SETFD, libc::FD_CLOEXEC);
                    OwnedFd::from_raw_fd(6)
                }),
                None if standby.is_none() => {
                    // Nothing of berthd's is there: whatever fd 6 is, it
                    // is not for this shim to keep.
                    // SAFETY: closing a descriptor this process never used.
                    unsafe { libc::close(6) };
                    None
                }
                p => p,
            };
            trace("config read");

            // Stdio: a pty, or pipes.
            let (child_stdio, console, parent) =
                make_stdio(&cfg).map_err(|e| (format!("setting up stdio: {e}"), 1))?;
            let mgr = match &standby {
                Some(sb) => sb.mgr.clone(),
                None => CgroupManager::detect()
                    .and_then(|m| m.with_parent(&cfg.cgroup_parent))
                    .map_err(|e| (format!("cgroups: {e}"), 1))?,
            };

            if let Some(runtime) = &cfg.runtime {
                // An external runtime mounts nothing itself: the root must
                // be mounted where it looks, in the host's namespace.
                super::overlay::mount_rootfs(&cfg.lowers, &cfg.upper, &cfg.work, &rootfs)
                    .map_err(|e| e.to_string())
                    .map_err(e1("mounting the container's root filesystem"))?;
                mounted = true;
                prepare_external(bundle, &rootfs)?;
                // The runtime, and the container after it, inherit these.
                super::set_nofile(cfg.nofile)
                    .map_err(|e| (format!("setting RLIMIT_NOFILE: {e}"), 1))?;
                let supervision = Supervision::prepare(bundle);
                let spawned = supervision
                    .and_then(|s| Ok((s, start_external(runtime, bundle, &cfg.id, child_stdio)?)));
                close_child_ends(child_stdio, console);
                let (supervision, pid) = spawned?;
                return Ok(Shim {
                    bundle: bundle.to_path_buf(),
                    cfg,
                    pid,
                    cgroup: None,
                    rootfs: rootfs.clone(),
                    daemon: daemon.try_clone().map_err(|e| (e.to_string(), 1))?,
                    stdin: parent.stdin,
                    stdout: parent.stdout,
                    stderr: parent.stderr,
                    pty_master: parent.pty_master,
                    mnt_ns: None,
                    supervision: Some(supervision),
                });
            }

            let (mut init_cfg, resources) = match prepared {
                Some(p) => p,
                None => {
                    let spec: oci_spec::runtime::Spec =
                        read_json(&bundle.join(SPEC_FILE)).map_err(e1("reading config.json"))?;
                    let filter = std::fs::read(bundle.join(SECCOMP_FILE)).ok();
                    let init = init_config(&cfg, &spec, &rootfs, bundle, &mgr, filter.as_deref())?;
                    (init, resources_from_spec(&spec))
                }
            };
            trace("init config ready");
            let mut fds: Vec<RawFd> = match console {
                Some(c) => vec![c],
                None => child_stdio.to_vec(),
            };
            // The child moves the overlay into place if it came made, and
            // mounts it itself otherwise; what it is told follows the
            // descriptor, whatever berthd's config said.
            if let Some(o) = init_cfg.overlay.as_mut() {
                o.premounted = premount.is_some();
                fds.extend(premount.as_ref().map(|m| m.as_raw_fd()));
            }
            let send = |child: &Waiting, init_cfg: &InitConfig| {
                let sent = init::send(&child.socket, init_cfg, &fds);
                close_child_ends(child_stdio, console);
                sent.map_err(|e| (format!("handing the container its config: {e}"), 1))
            };
            let child = match standby.take() {
                Some(Standby {
                    child, cgroup: scg, ..
                }) => {
                    // Named first: the child binds its cgroup directories
                    // by their path; and its device rules are in place
                    // before it makes /dev. It then sets up the container's
                    // root while its limits are set here, and waits for
                    // the go (below) before it executes the command.
                    match scg.rename_to(mgr.parent(), &cfg.id) {
                        Ok(cg) => cgroup = Some(cg),
                        Err(e) => {
                            child.kill();
                            let _ = scg.destroy();
                            return Err((format!("naming the container's cgroup: {e}"), 1));
                        }
                    }
                    let cg = cgroup.as_ref().expect("just set");
                    if let Err(e) = cg.configure_devices(&resources) {
                        child.kill();
                        return Err((format!("configuring the container's cgroup: {e}"), 1));
                    }
                    if let Err(e) = send(&child, &init_cfg) {
                        child.kill();
                        return Err(e);
                    }
                    if let Err(e) = cg.configure_limits(&resources) {
                        child.kill();
                        return Err((format!("configuring the container's cgroup: {e}"), 1));
                    }
                    child
                }
                None => {
                    let child = Waiting::clone()?;
                    trace("cloned");
                    let cg = match mgr.create(&cfg.id, &resources) {
                        Ok(cg) => cg,
                        Err(e) => {
                            child.kill();
                            return Err((format!("creating the container's cgroup: {e}"), 1));
                        }
                    };
                    if let Err(e) = cg.add_pid(child.pid.as_raw()) {
                        child.kill();
                        let _ = cg.destroy();
                        return Err((format!("joining the container's cgroup: {e}"), 1));
                    }
                    cgroup = Some(cg);
                    if let Err(e) = send(&child, &init_cfg) {
                        child.kill();
                        return Err(e);
                    }
                    child
                }
            };
            trace("cgroup ready");
            // While the child sets up the container's root.
            let supervision = match Supervision::prepare(bundle) {
                Ok(s) => s,
                Err(e) => {
                    child.kill();
                    return Err(e);
                }
            };
            // The child is there (it must not inherit this).
            init::short_slice();
            // A child that failed meanwhile has gone: its message (read
            // below) says why, better than the write's error.
            let went = init::go(&child.socket);
            let Waiting {
                pid,
                socket,
                errors,
                mnt_ns,
            } = child;
            drop(socket);
            let mut parent = parent;
            if console.is_some() {
                // The console socket is `parent.stdout` until the master comes.
                if let Ok(master) = receive_master(&parent.stdout) {
                    parent.stdin = if cfg.open_stdin {
                        master.try_clone().ok()
                    } else {
                        None
                    };
                    parent.stdout = master.try_clone().map_err(|e| (e.to_string(), 1))?;
                    parent.pty_master = Some(master);
                }
            }
            let mut msg = String::new();
            let _ = std::fs::File::from(errors).read_to_string(&mut msg);
            trace("container exec'd");
            if let (true, Err(e)) = (msg.is_empty(), &went) {
                msg = format!("letting the container start: {e}");
            }
            if !msg.is_empty() {
                let code = match nix::sys::wait::waitpid(pid, None) {
                    Ok(nix::sys::wait::WaitStatus::Exited(_, c)) => c,
                    _ => 1,
                };
                return Err((msg, code));
            }
            Ok(Shim {
                bundle: bundle.to_path_buf(),
                cfg,
                pid,
                cgroup: cgroup.take(),
                rootfs: rootfs.clone(),
                daemon: daemon.try_clone().map_err(|e| (e.to_string(), 1))?,
                stdin: parent.stdin,
                stdout: parent.stdout,
                stderr: parent.stderr,
                pty_master: parent.pty_master,
                mnt_ns,
                supervision: Some(supervision),
            })
        })();
        if let Some(Standby {
            child, cgroup: scg, ..
        }) = standby
        {
            child.kill();
            let _ = scg.destroy();
        }
        match result {
            Ok(shim) => {
                report(
                    report_pipe,
                    &StartReport::Started {
                        pid: shim.pid.as_raw(),
                    },
                );
                Ok(shim)
            }
            Err((error, code)) => {
                if let Some(cg) = cgroup {
                    let _ = cg.destroy();
                }
                if mounted {
                    let _ = super::overlay::unmount(&rootfs);
                }
                // Bound before the command could run; nothing to adopt.
                let _ = std::fs::remove_file(bundle.join(SOCKET_FILE));
                report(report_pipe, &StartReport::Failed { error, code });
                Err(())
            }
        }
    }

    /// Supervises the container until it exits and its exit is recorded.
    fn run(mut self) -> i32 {
        let Some(Supervision {
            rt,
            sink,
            listener,
            sigchld,
        }) = self.supervision.take()
        else {
            return 1;
        };
        rt.block_on(self.supervise(sink, listener, sigchld))
    }

    async fn supervise(
        mut self,
        sink: Arc<LogSink>,
        listener: Option<UnixListener>,
        mut sigchld: tokio::signal::unix::Signal,
    ) -> i32 {
        let bundle = self.bundle.clone();

        // Frames for whichever daemon connection is current.
        let (out_tx, mut out_rx) = mpsc::channel::<(u8, Vec<u8>)>(256);
        let (conn_tx, mut conn_rx) = mpsc::channel::<UnixStream>(4);
        let (cmd_tx, mut cmd_rx) = mpsc::channel::<(u8, Vec<u8>)>(64);
        let first = self.daemon.try_clone().ok().and_then(|s| {
            s.set_nonblocking(true).ok()?;
            UnixStream::from_std(s).ok()
        });
        if let Some(s) = first {
            let _ = conn_tx.send(s).await;
        }
        // The connection manager: one current daemon; commands in, frames out.
        let state = Arc::new(std::sync::Mutex::new(State {
            pid: self.pid.as_raw(),
            exited: None,
        }));
        {
            tokio::spawn(async move {
                let mut current: Option<tokio::net::unix::OwnedWriteHalf> = None;
                loop {
                    tokio::select! {
                        conn = conn_rx.recv() => {
                            let Some(conn) = conn else { return };
                            let (mut rd, wr) = conn.into_split();
                            current = Some(wr);
                            let cmd_tx = cmd_tx.clone();
                            tokio::spawn(async move {
                                while let Ok(Some(frame)) = protocol::read_frame(&mut rd).await {
                                    if cmd_tx.send(frame).await.is_err() { return }
                                }
                            });
                        }
                        frame = out_rx.recv() => {
                            let Some((kind, payload)) = frame else { return };
                            if let Some(w) = current.as_mut()
                                && protocol::write_frame(w, kind, &payload).await.is_err()
                            {
                                current = None;
                            }
                        }
                    }
                }
            });
        }
        if let Some(listener) = listener {
            let conn_tx = conn_tx.clone();
            tokio::spawn(async move {
                while let Ok((s, _)) = listener.accept().await {
                    if conn_tx.send(s).await.is_err() {
                        return;
                    }
                }
            });
        }

        // Output readers.
        let (done_tx, mut done_rx) = mpsc::channel::<()>(2);
        let mut readers = 0;
        for (fd, kind) in [
            (
                Some(self.stdout.try_clone().expect("dup")),
                StreamKind::Stdout,
            ),
            (self.stderr.take(), StreamKind::Stderr),
        ] {
            let Some(fd) = fd else { continue };
            readers += 1;
            let sink = sink.clone();
            let out_tx = out_tx.clone();
            let done_tx = done_tx.clone();
            tokio::spawn(async move {
                let frame_kind = if kind == StreamKind::Stderr {
                    protocol::STDERR
                } else {
                    protocol::STDOUT
                };
                if let Ok(afd) = nonblocking(fd) {
                    let mut buf = vec![0u8; 32 * 1024];
                    loop {
                        match read_async(&afd, &mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                sink.write(kind, &buf[..n]);
                                let _ = out_tx.send((frame_kind, buf[..n].to_vec())).await;
                            }
                        }
                    }
                }
                let _ = done_tx.send(()).await;
            });
        }
        drop(done_tx);

        let mut stdin = self.stdin.take().and_then(|fd| nonblocking(fd).ok());
        let pid = self.pid;
        let mut acked = false;
        let status = loop {
            if let Some(st) = reap(pid) {
                break st;
            }
            tokio::select! {
                _ = sigchld.recv() => {}
                cmd = cmd_rx.recv() => {
                    let Some((kind, payload)) = cmd else { continue };
                    match kind {
                        protocol::HELLO => {
                            let st = state.lock().unwrap().clone();
                            let _ = out_tx.send((protocol::STATE, serde_json::to_vec(&st).unwrap_or_default())).await;
                        }
                        protocol::STDIN => {
                            if let Some(fd) = &stdin && write_all_async(fd, &payload).await.is_err() {
                                stdin = None;
                            }
                        }
                        protocol::STDIN_CLOSE => stdin = None,
                        protocol::SIGNAL if payload.len() == 4 => {
                            let sig = u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]) as i32;
                            if sig == libc::SIGKILL && self.cfg.runtime.is_some() {
                                // The whole container, whatever namespaces
                                // the runtime gave it: its cgroup.
                                if let Some(cg) = self.external_cgroup() {
                                    let _ = cg.kill_all(libc::SIGKILL);
                                    continue;
                                }
                            }
                            // Raw numbers: real-time signals (SIGRTMIN+3 is
                            // a common stop signal) have no `Signal` value.
                            // SAFETY: kill with a pid and a signal number.
                            unsafe { libc::kill(pid.as_raw(), sig) };
                        }
                        protocol::RESIZE if payload.len() == 4 => {
                            if let Some(m) = &self.pty_master {
                                let rows = u16::from_be_bytes([payload[0], payload[1]]);
                                let cols = u16::from_be_bytes([payload[2], payload[3]]);
                                set_winsize(m.as_raw_fd(), rows, cols);
                            }
                        }
                        protocol::ACK_EXIT => acked = true,
                        _ => {}
                    }
                }
            }
        };
        drop(stdin);
        trace("container exited");

        // The container's processes are gone with its init (pid namespace);
        // drain what they wrote.
        let drain = async {
            for _ in 0..readers {
                if done_rx.recv().await.is_none() {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
        sink.end();
        let oom = self
            .cgroup
            .as_ref()
            .map(|c| c.oom_killed())
            .or_else(|| {
                CgroupManager::detect()
                    .ok()
                    .and_then(|m| m.with_parent(&self.cfg.cgroup_parent).ok())
                    .and_then(|m| m.open(&self.cfg.id))
                    .map(|c| c.oom_killed())
            })
            .unwrap_or(false);
        let (code, signal) = status;
        let exit = ExitFile {
            code: if oom && signal == Some(9) { 137 } else { code },
            oom_killed: oom,
            error: None,
            finished_at: crate::util::now_rfc3339(),
        };
        trace("output drained, log ended");
        // berthd hears of the exit first (the frame goes out while this
        // task writes the file), and a berthd that reconnects before the
        // file exists gets it from `state`.
        state.lock().unwrap().exited = Some(exit.clone());
        let _ = out_tx
            .send((
                protocol::EXITED,
                serde_json::to_vec(&exit).unwrap_or_default(),
            ))
            .await;
        tokio::task::yield_now().await;
        // Now the container's mounts go.
        drop(self.mnt_ns.take());
        // Atomic but not fsynced: it must survive berthd being away, not the
        // host crashing (which ends the container anyway).
        let tmp = bundle.join(".exit.json.tmp");
        if std::fs::write(&tmp, serde_json::to_vec(&exit).unwrap_or_default()).is_ok() {
            let _ = std::fs::rename(&tmp, bundle.join(EXIT_FILE));
        }

        // Wait for berthd to record it (or give up: it reads exit.json
        // when it comes back).
        let wait_ack = async {
            while !acked {
                match cmd_rx.recv().await {
                    Some((protocol::ACK_EXIT, _)) => acked = true,
                    Some((protocol::HELLO, _)) => {
                        let st = state.lock().unwrap().clone();
                        let _ = out_tx
                            .send((protocol::STATE, serde_json::to_vec(&st).unwrap_or_default()))
                            .await;
                    }
                    Some(_) => {}
                    None => break,
                }
            }
        };
        trace("exit reported");
        let _ = tokio::time::timeout(Duration::from_secs(10), wait_ack).await;
        trace("exit acknowledged");
        self.cleanup();
        trace("cleaned up");
        0
    }

    /// The cgroup an external runtime made for the container (berth names
    /// it in `config.json`'s `cgroupsPath`).
    fn external_cgroup(&self) -> Option<Cgroup> {
        CgroupManager::detect()
            .ok()
            .and_then(|m| m.with_parent(&self.cfg.cgroup_parent).ok())
            .and_then(|m| m.open(&self.cfg.id))
    }

    fn cleanup(&self) {
        if let Some(cg) = &self.cgroup {
            let _ = cg.kill_all(libc::SIGKILL);
            trace("cgroup emptied");
            if let Err(e) = cg.destroy() {
                eprintln!("berth-shim: removing the cgroup: {e}");
            }
            trace("cgroup removed");
        } else if let Some(runtime) = &self.cfg.runtime
            && let Err(e) = delete_external(runtime, &self.bundle, &self.cfg.id)
        {
            eprintln!("berth-shim: {} delete: {e}", runtime.display());
        }
        if self.cfg.runtime.is_some()
            && let Some(cg) = self.external_cgroup()
        {
            // What the external runtime left: nothing may outlive the
            // container, and its cgroup goes with it.
            let _ = cg.kill_all(libc::SIGKILL);
            if let Err(e) = cg.destroy() {
                eprintln!("berth-shim: removing the cgroup: {e}");
            }
        }
        if let Err(e) = super::overlay::unmount(&self.rootfs) {
            eprintln!("berth-shim: unmounting the root filesystem: {e}");
        }
        let _ = std::fs::remove_file(self.bundle.join(SOCKET_FILE));
    }
}

/// A path to `shim.sock` in `bundle` short enough for a socket address (a
/// bundle path can pass the 108-byte limit): through an open descriptor of
/// the directory. The descriptor must stay open while the path is used.
pub fn socket_path(bundle: &Path) -> std::io::Result<(OwnedFd, PathBuf)> {
    let dir = nix::fcntl::open(
        bundle,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(std::io::Error::from)?;
    let path = PathBuf::from(format!("/proc/self/fd/{}/{SOCKET_FILE}", dir.as_raw_fd()));
    Ok((dir, path))
}

fn bind_socket(bundle: &Path) -> Option<UnixListener> {
    let (_dir, path) = socket_path(bundle).ok()?;
    match UnixListener::bind(&path) {
        Ok(l) => Some(l),
        Err(e) => {
            eprintln!(
                "berth-shim: listening on {SOCKET_FILE}: {e}; berthd cannot re-adopt this container after a restart"
            );
            None
        }
    }
}

/// The exit of `pid` if it has exited: (exit code, signal).
fn reap(pid: Pid) -> Option<(i64, Option<i32>)> {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => return Some((code as i64, None)),
            Ok(WaitStatus::Signaled(_, sig, _)) => {
                return Some((128 + sig as i64, Some(sig as i32)));
            }
            Ok(WaitStatus::StillAlive) => return None,
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return Some((255, None)),
        }
    }
}

struct ParentStdio {
    stdin: Option<OwnedFd>,
    stdout: OwnedFd,
    stderr: Option<OwnedFd>,
    pty_master: Option<OwnedFd>,
}

/// The container's stdio: the child's three fds, its console (a pty slave
/// to mount at /dev/console), and the shim's ends.
fn make_stdio(cfg: &ShimConfig) -> std::io::Result<([RawFd; 3], Option<RawFd>, ParentStdio)> {
    if cfg.tty && cfg.runtime.is_none() {
        // The container opens its pty in its own devpts and sends the
        // master back over this socket (see `init::child_main`).
        let (ours, theirs) = nix::sys::socket::socketpair(
            nix::sys::socket::AddressFamily::Unix,
            nix::sys::socket::SockType::Stream,
            None,
            nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        )
        .map_err(std::io::Error::from)?;
        let fd = theirs.as_raw_fd();
        std::mem::forget(theirs);
        return Ok((
            [-1, -1, -1],
            Some(fd),
            ParentStdio {
                stdin: None,
                stdout: ours,
                stderr: None,
                pty_master: None,
            },
        ));
    }
    if cfg.tty {
        // An external runtime gets a pty of ours as plain stdio.
        let ws = cfg.console_size.map(|[rows, cols]| nix::pty::Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        });
        let pty = nix::pty::openpty(ws.as_ref(), None).map_err(std::io::Error::from)?;
        let master = pty.master;
        nix::fcntl::fcntl(
            &master,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        )
        .map_err(std::io::Error::from)?;
        let slave = pty.slave.as_raw_fd();
        std::mem::forget(pty.slave);
        let stdin = cfg.open_stdin.then(|| master.try_clone()).transpose()?;
        return Ok((
            [slave, slave, slave],
            None,
            ParentStdio {
                stdin,
                stdout: master.try_clone()?,
                stderr: None,
                pty_master: Some(master),
            },
        ));
    }
    let (in_r, in_w) = if cfg.open_stdin {
        let (r, w) = nix::unistd::pipe().map_err(std::io::Error::from)?;
        (r, Some(w))
    } else {
        (
            nix::fcntl::open(
                "/dev/null",
                nix::fcntl::OFlag::O_RDONLY,
                nix::sys::stat::Mode::empty(),
            )
            .map_err(std::io::Error::from)?,
            None,
        )
    };
    let (out_r, out_w) = nix::unistd::pipe().map_err(std::io::Error::from)?;
    let (err_r, err_w) = nix::unistd::pipe().map_err(std::io::Error::from)?;
    for fd in [&out_r, &err_r] {
        nix::fcntl::fcntl(
            fd,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        )
        .map_err(std::io::Error::from)?;
    }
    if let Some(w) = &in_w {
        nix::fcntl::fcntl(
            w,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        )
        .map_err(std::io::Error::from)?;
    }
    let fds = [in_r.as_raw_fd(), out_w.as_raw_fd(), err_w.as_raw_fd()];
    std::mem::forget(in_r);
    std::mem::forget(out_w);
    std::mem::forget(err_w);
    Ok((
        fds,
        None,
        ParentStdio {
            stdin: in_w,
            stdout: out_r,
            stderr: Some(err_r),
            pty_master: None,
        },
    ))
}

/// Receives the pty master the container sends over the console socket.
fn receive_master(socket: &OwnedFd) -> std::io::Result<OwnedFd> {
    let mut buf = [0u8; 1];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = nix::sys::socket::recvmsg::<()>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        nix::sys::socket::MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(std::io::Error::from)?;
    for c in msg.cmsgs().map_err(std::io::Error::from)? {
        if let nix::sys::socket::ControlMessageOwned::ScmRights(fds) = c
            && let Some(fd) = fds.first()
        {
            // SAFETY: the kernel just gave us this descriptor.
            return Ok(unsafe { OwnedFd::from_raw_fd(*fd) });
        }
    }
    Err(std::io::Error::other("the container sent no pty"))
}

/// Closes the container's ends of its stdio in the shim (a pty slave may
/// appear several times).
fn close_child_ends(stdio: [RawFd; 3], console: Option<RawFd>) {
    let mut fds: Vec<RawFd> = stdio.iter().copied().filter(|fd| *fd >= 0).collect();
    fds.extend(console);
    fds.sort_unstable();
    fds.dedup();
    for fd in fds {
        // SAFETY: these fds belong to this process and are not used after.
        unsafe { libc::close(fd) };
    }
}

fn set_winsize(fd: RawFd, rows: u16, cols: u16) {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ with a valid winsize on the pty master.
    unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) };
}

/// The cgroup limits the spec asks for.
fn resources_from_spec(spec: &oci_spec::runtime::Spec) -> Resources {
    let mut r = Resources::default();
    let Some(res) = spec.linux().as_ref().and_then(|l| l.resources().as_ref()) else {
        return r;
    };
    if let Some(m) = res.memory() {
        r.memory = m.limit();
        r.memory_swap = m.swap();
    }
    if let Some(c) = res.cpu() {
        r.cpu_shares = c.shares();
        r.cpu_quota = c.quota();
        r.cpu_period = c.period();
    }
    if let Some(p) = res.pids() {
        r.pids_limit = Some(p.limit());
    }
    r.devices = res
        .devices()
        .iter()
        .flatten()
        .map(super::devices::DeviceRule::from)
        .collect();
    r
}

fn mount_flags(options: &[String]) -> (MsFlags, String) {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for o in options {
        match o.as_str() {
            "ro" => flags |= MsFlags::MS_RDONLY,
            "rw" => {}
            "nosuid" => flags |= MsFlags::MS_NOSUID,
            "nodev" => flags |= MsFlags::MS_NODEV,
            "noexec" => flags |= MsFlags::MS_NOEXEC,
            "strictatime" => flags |= MsFlags::MS_STRICTATIME,
            "relatime" => flags |= MsFlags::MS_RELATIME,
            "bind" | "rbind" => flags |= MsFlags::MS_BIND,
            other => data.push(other.to_string()),
        }
    }
    (flags, data.join(","))
}

/// A bundle file's JSON; the error as text.
fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    serde_json::from_slice(&bytes).map_err(|e| e.to_string())
}

/// Turns the OCI spec into what the container's init does.
fn init_config(
    cfg: &ShimConfig,
    spec: &oci_spec::runtime::Spec,
    rootfs: &Path,
    bundle: &Path,
    mgr: &CgroupManager,
    precompiled: Option<&[u8]>,
) -> Result<InitConfig, (String, i32)> {
    let err = |m: String| (m, 1);
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| err("config.json has no process".into()))?;
    let linux = spec.linux().as_ref();
    let mut mounts = Vec::new();
    let mut cgroup_mount = CgroupMount::None;
    for m in spec.mounts().as_deref().unwrap_or(&[]) {
        let dest = m.destination().to_string_lossy().into_owned();
        let fstype = m.typ().clone().unwrap_or_default();
        if fstype == "cgroup" || fstype == "cgroup2" {
            cgroup_mount = if mgr.version() == 2 {
                CgroupMount::V2
            } else {
                CgroupMount::V1(
                    mgr.hierarchies()
                        .iter()
                        .filter(|h| !h.unified)
                        .map(|h| {
                            let name = h
                                .mount_point
                                .file_name()
                                .map(|n| n.to_string_lossy().into_owned())
                                .unwrap_or_else(|| h.controllers.join(","));
                            let dir = h
                                .mount_point
                                .join(mgr.parent().trim_start_matches('/'))
                                .join(&cfg.id);
                            (dir, name)
                        })
                        .collect(),
                )
            };
            continue;
        }
        let (flags, data) = mount_flags(m.options().as_deref().unwrap_or(&[]));
        mounts.push(MountOp {
            destination: dest,
            bind: fstype == "bind" || flags.contains(MsFlags::MS_BIND),
            fstype,
            source: m
                .source()
                .as_ref()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            flags,
            data,
        });
    }
    let caps = process.capabilities().clone().unwrap_or_default();
    let section = linux.and_then(|l| l.seccomp().as_ref());
    let seccomp = match (section, precompiled) {
        // An external runtime installs its own filter from config.json.
        _ if cfg.runtime.is_some() => None,
        (None, _) => None,
        // berthd compiled it already (see `NativeExecutor::compiled_filter`).
        (Some(_), Some(bytes)) => {
            Some(seccomp::Program::from_bytes(bytes).map_err(|e| err(format!("seccomp: {e}")))?)
        }
        (Some(section), None) => {
            Some(seccomp::compile_oci(section).map_err(|e| err(format!("seccomp: {e}")))?)
        }
    };
    let mut etc_files = Vec::new();
    for (file, dest) in [
        ("hostname", "/etc/hostname"),
        ("hosts", "/etc/hosts"),
        ("resolv.conf", "/etc/resolv.conf"),
    ] {
        let p = bundle.join(file);
        if p.exists() {
            etc_files.push((p, dest.to_string()));
        }
    }
    let user = init::container_user(spec);
    let namespaces = linux.and_then(|l| l.namespaces().as_ref());
    let new_cgroup_ns = namespaces.is_some_and(|ns| {
        ns.iter()
            .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::Cgroup)
    });
    Ok(InitConfig {
        rootfs: rootfs.to_path_buf(),
        overlay: cfg.runtime.is_none().then(|| init::Overlay {
            lowers: cfg.lowers.clone(),
            upper: cfg.upper.clone(),
            work: cfg.work.clone(),
            premounted: false,
        }),
        readonly_rootfs: spec
            .root()
            .as_ref()
            .and_then(|r| r.readonly())
            .unwrap_or(false),
        hostname: spec.hostname().clone().unwrap_or_default(),
        mounts,
        cgroup_mount,
        masked: linux
            .and_then(|l| l.masked_paths().clone())
            .unwrap_or_default(),
        readonly: linux
            .and_then(|l| l.readonly_paths().clone())
            .unwrap_or_default(),
        etc_files,
        user,
        args: process.args().clone().unwrap_or_default(),
        env: process.env().clone().unwrap_or_default(),
        cwd: process.cwd().to_string_lossy().into_owned(),
        caps,
        no_new_privileges: process.no_new_privileges().unwrap_or(false),
        seccomp: seccomp.map(|p| hex::encode(p.to_bytes())),
        tty: cfg.tty,
        console_size: cfg.console_size,
        new_cgroup_ns,
        init: cfg.init,
        privileged: linux
            .and_then(|l| l.masked_paths().as_ref())
            .is_none_or(|m| m.is_empty()),
        nofile: cfg.nofile,
    })
}

/// What berth's own runtime does inside the container before it executes
/// the command, done for an external runtime on its `config.json`, with
/// the container's root mounted at `rootfs`: the user (which Docker names
/// and `config.json` only takes as numbers) resolved in the container's
/// own files, within berth's bounds; and the working directory resolved
/// inside the root (a missing one made, as Docker does), so that no path
/// through a magic link such as /proc/self/fd/N reaches the runtime.
fn prepare_external(bundle: &Path, rootfs: &Path) -> Result<(), (String, i32)> {
    let err = |m: String| (m, 1);
    let path = bundle.join(SPEC_FILE);
    let mut spec: oci_spec::runtime::Spec =
        read_json(&path).map_err(|e| err(format!("reading config.json: {e}")))?;
    let root = nix::fcntl::open(
        rootfs,
        nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| err(format!("opening the root filesystem: {e}")))?;
    let user = init::resolve_user(&root, &init::container_user(&spec)).map_err(err)?;
    let mut process = spec
        .process()
        .clone()
        .ok_or_else(|| err("config.json has no process".into()))?;
    let cwd = process.cwd().to_string_lossy().into_owned();
    init::open_cwd(&root, &cwd, true).map_err(err)?;
    process.set_user(
        oci_spec::runtime::UserBuilder::default()
            .uid(user.uid)
            .gid(user.gid)
            .additional_gids(user.groups.clone())
            .build()
            .map_err(|e| err(format!("the container's user: {e}")))?,
    );
    let mut env = process.env().clone().unwrap_or_default();
    if !env.iter().any(|v| v.starts_with("HOME=")) {
        env.push(format!("HOME={}", user.home));
        process.set_env(Some(env));
    }
    spec.set_process(Some(process));
    let json =
        serde_json::to_vec_pretty(&spec).map_err(|e| err(format!("encoding config.json: {e}")))?;
    std::fs::write(&path, json).map_err(|e| err(format!("writing config.json: {e}")))
}

/// `RUNTIME --root BUNDLE/runtime --log=BUNDLE/runtime.log ...`, with
/// its stdio on /dev/null: runc and crun take the same global options. The
/// log (JSON lines) is where a failed `create` or `start` says why.
fn runtime_command(runtime: &Path, bundle: &Path) -> std::process::Command {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(runtime);
    // The runtime gets its stdio and nothing else of the shim's.
    // SAFETY: system calls only (no allocation) between fork and exec,
    // after the stdio is in place.
    unsafe {
        cmd.pre_exec(|| super::cloexec_from(3));
    }
    cmd.arg("--root")
        .arg(bundle.join("runtime"))
        .arg(format!("--log={}", bundle.join(RUNTIME_LOG).display()))
        .arg("--log-format=json")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    cmd
}

/// Starts the container with an external OCI runtime as containerd's shim
/// does: `create` (the runtime sets the container up and leaves its init
/// waiting, with the container's stdio passed through, and exits), then
/// `start`. The shim is the subreaper the init is handed to when the
/// runtime exits, so the pid it reports and waits for is the container's
/// own; an error of either step is a start failure, with the runtime's
/// message, as Docker reports it.
fn start_external(
    runtime: &Path,
    bundle: &Path,
    id: &str,
    stdio: [RawFd; 3],
) -> Result<Pid, (String, i32)> {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err((
            format!(
                "becoming the container's subreaper: {}",
                std::io::Error::last_os_error()
            ),
            1,
        ));
    }
    let _ = std::fs::remove_file(bundle.join(RUNTIME_LOG));
    let pid_file = bundle.join("runtime.pid");
    let _ = std::fs::remove_file(&pid_file);
    let dup = |fd: RawFd| -> Result<std::process::Stdio, (String, i32)> {
        // SAFETY: duplicating a valid fd; the copy is owned by the Stdio.
        let d = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
        if d < 0 {
            return Err((format!("dup: {}", std::io::Error::last_os_error()), 1));
        }
        // SAFETY: `d` is the new descriptor just made, owned by no one else.
        Ok(unsafe { std::process::Stdio::from_raw_fd(d) })
    };
    let mut create = runtime_command(runtime, bundle);
    create
        .arg("create")
        .arg("--bundle")
        .arg(bundle)
        .arg("--pid-file")
        .arg(&pid_file)
        .arg(id)
        .stdin(dup(stdio[0])?)
        .stdout(dup(stdio[1])?)
        .stderr(dup(stdio[2])?)
        .process_group(0);
    let created = create
        .status()
        .map_err(|e| (format!("running {}: {e}", runtime.display()), 127))?;
    if !created.success() {
        let _ = delete_external(runtime, bundle, id);
        return Err(runtime_failure(bundle, "create", created));
    }
    let pid = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|p| p.trim().parse::<i32>().ok())
        .ok_or_else(|| {
            let _ = delete_external(runtime, bundle, id);
            (format!("{} create left no pid file", runtime.display()), 1)
        })?;
    let started = runtime_command(runtime, bundle)
        .arg("start")
        .arg(id)
        .status()
        .map_err(|e| (format!("running {}: {e}", runtime.display()), 127))?;
    if !started.success() {
        let _ = delete_external(runtime, bundle, id);
        return Err(runtime_failure(bundle, "start", started));
    }
    Ok(Pid::from_raw(pid))
}

/// `RUNTIME delete --force ID`: whatever is left of the container, and the
/// runtime's own state.
fn delete_external(runtime: &Path, bundle: &Path, id: &str) -> std::io::Result<()> {
    runtime_command(runtime, bundle)
        .args(["delete", "--force", id])
        .status()
        .map(drop)
}

/// A failed runtime step as a start error: the runtime's last error message
/// and the exit code Docker gives it (127 for a command that is not there,
/// 126 for one that cannot be run).
fn runtime_failure(bundle: &Path, step: &str, status: std::process::ExitStatus) -> (String, i32) {
    let log = std::fs::read_to_string(bundle.join(RUNTIME_LOG)).unwrap_or_default();
    let msg = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["level"] == "error" || v["level"] == "fatal")
        .filter_map(|v| v["msg"].as_str().map(str::to_string))
        .next_back()
        .unwrap_or_else(|| format!("{step} ended with {status}"));
    let code =
        if msg.contains("executable file not found") || msg.contains("no such file or directory") {
            127
        } else if msg.contains("permission denied") {
            126
        } else {
            1
        };
    (msg, code)
}
