//! The container's first process: everything between `clone` and `execve`
//! in berth's built-in OCI runtime.
//!
//! The shim prepares an [`InitConfig`] from the runtime spec, clones a child
//! into new mount, uts, ipc, net and pid namespaces, places it in its
//! cgroup, and lets it go. The child (this module) then builds the
//! container's world — mounts, devices, masked paths, `pivot_root`,
//! hostname, loopback — resolves its user inside the new root, drops to
//! that user, applies capabilities, no-new-privileges and seccomp, and
//! executes the command (found inside the root, never through a magic
//! link). Every failure is written to the error pipe and ends the child; a
//! successful `execve` closes the pipe (it is close-on-exec), which is how
//! the shim knows the command runs. Until then the child is a copy of the
//! shim, not dumpable, running a sealed view of its binary (see
//! `super::SealedShim`); with `--init`, PID 1 stays that for good.
//!
//! Paths inside the container's root are resolved with `openat2` and
//! `RESOLVE_IN_ROOT`, so a symlink in an image (`/proc -> /etc`) cannot make
//! a mount land outside the container. This module must not touch berthd's
//! state or anything of the host but the container's own mounts.

use super::caps::{self, CapSets};
use super::seccomp;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::{Mode, SFlag, makedev, mknodat};
use nix::unistd::{Gid, Uid};
use serde::{Deserialize, Serialize};
use std::ffi::{CStr, CString};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

/// The user the container's processes run as when none is named: the
/// image's or `--user`, which `container/spec.rs` records in an annotation
/// (resolved in the container's own `/etc/passwd` at start and exec).
pub fn container_user(spec: &oci_spec::runtime::Spec) -> String {
    spec.annotations()
        .as_ref()
        .and_then(|a| a.get("org.berth.user").cloned())
        .unwrap_or_default()
}

/// One mount to make inside the container's root.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MountOp {
    /// Absolute path inside the container.
    pub destination: String,
    pub fstype: String,
    pub source: String,
    #[serde(with = "ms_flags")]
    pub flags: MsFlags,
    pub data: String,
    /// A bind mount of a host file or directory (`source` is a host path).
    pub bind: bool,
}

mod ms_flags {
    use nix::mount::MsFlags;
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(f: &MsFlags, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(f.bits())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<MsFlags, D::Error> {
        Ok(MsFlags::from_bits_truncate(u64::deserialize(d)?))
    }
}

/// Which cgroup filesystem to show at `/sys/fs/cgroup`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum CgroupMount {
    V2,
    /// cgroup v1: per hierarchy, the container's own cgroup directory on the
    /// host and the name to show it under (`memory`). Binding the directory
    /// shows the same tree a fresh mount in the cgroup namespace would, and
    /// costs a fraction of one.
    V1(Vec<(PathBuf, String)>),
    None,
}

/// The container's overlay root, mounted by the child in its own mount
/// namespace (so no host mount exists for it, and none is left behind).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Overlay {
    pub lowers: Vec<PathBuf>,
    pub upper: PathBuf,
    pub work: PathBuf,
    /// It comes made, as a detached mount (berthd's, from create; see
    /// `overlay::premount_rootfs`): the last descriptor sent with the
    /// config. The child only moves it into place.
    #[serde(default)]
    pub premounted: bool,
}

/// Everything the child needs. The shim computes it and sends it to the
/// child after `clone` (see [`waiting_child_main`]), so that a child can be
/// cloned ahead of time, before its container is known.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InitConfig {
    pub rootfs: PathBuf,
    /// `None` when the root is already mounted (an external runtime's).
    pub overlay: Option<Overlay>,
    pub readonly_rootfs: bool,
    pub hostname: String,
    pub mounts: Vec<MountOp>,
    pub cgroup_mount: CgroupMount,
    pub masked: Vec<String>,
    pub readonly: Vec<String>,
    /// Host files bind-mounted over `/etc/hostname`, `/etc/hosts`,
    /// `/etc/resolv.conf`.
    pub etc_files: Vec<(PathBuf, String)>,
    /// The user as Docker takes it: `name`, `uid`, `name:group`, `uid:gid`.
    pub user: String,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub caps: oci_spec::runtime::LinuxCapabilities,
    pub no_new_privileges: bool,
    /// The compiled filter, as [`seccomp::Program::to_bytes`] in hex.
    pub seccomp: Option<String>,
    pub tty: bool,
    /// Initial TTY size (rows, columns).
    pub console_size: Option<[u16; 2]>,
    pub new_cgroup_ns: bool,
    /// Run a minimal init as PID 1 that reaps zombies and forwards signals
    /// (`--init`).
    pub init: bool,
    pub privileged: bool,
    /// `RLIMIT_NOFILE` (soft, hard) for the container's process: the
    /// limits berthd was started with, before it raised its own (see
    /// `super::raise_nofile_limit`); `None` leaves what the shim has.
    #[serde(default)]
    pub nofile: Option<[u64; 2]>,
}

/// What the child reports before ending: a message and the exit code to
/// use (127 when the command is not found, 126 when it cannot run).
#[derive(Debug)]
struct Failure(i32, String);

fn fail<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> Failure + '_ {
    move |e| Failure(1, format!("{what}: {e}"))
}

/// The child's entry point after `clone`: waits for its [`InitConfig`]
/// and stdio on `socket`, then becomes the container. Never returns.
///
/// The shim sends, once the child is in its cgroup, a 4-byte length with
/// the descriptors attached (stdin, stdout, stderr — or, with a TTY, one
/// console socket on which the child returns the master of the pty it opens
/// in the container's own devpts, as runc's console socket; then the
/// overlay if it comes made), then the config as JSON. The child builds the container and, before it executes
/// the command, waits for one more byte ([`go`]): the shim sends it once
/// the child's cgroup is named and limited, which it does meanwhile. If
/// the shim goes away first, the child ends.
///
/// # Safety
/// Must run in a freshly cloned child of a single-threaded process (the
/// shim), which is the only way the shim calls it.
pub unsafe fn waiting_child_main(socket: OwnedFd, errors: OwnedFd) -> ! {
    // Without its shim nobody logs it or records its exit: it goes too.
    // SAFETY: prctl with integer arguments.
    unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    let mut errors = std::fs::File::from(errors);
    let code = match receive(&socket).and_then(|(cfg, mut fds)| {
        let premount = match &cfg.overlay {
            Some(o) if o.premounted => match fds.pop() {
                // SAFETY: received with the config, owned from here on.
                Some(fd) => Some(unsafe { OwnedFd::from_raw_fd(fd) }),
                None => return Err(Failure(1, "the shim sent no overlay".into())),
            },
            _ => None,
        };
        let (stdio, console) = if cfg.tty {
            ([-1, -1, -1], fds.first().copied())
        } else if fds.len() == 3 {
            ([fds[0], fds[1], fds[2]], None)
        } else {
            return Err::<Never, Failure>(Failure(1, "the shim sent no stdio".into()));
        };
        match run(&cfg, stdio, console, premount, &socket) {
            Ok(never) => match never {},
            Err(f) => Err(f),
        }
    }) {
        Ok(never) => match never {},
        Err(Failure(code, msg)) => {
            let _ = errors.write_all(msg.as_bytes());
            code
        }
    };
    // SAFETY: ending the child without running the parent's atexit handlers.
    unsafe { libc::_exit(code) }
}

/// Back to the normal scheduling policy: a standby shim starts up under
/// `SCHED_IDLE` (see `shim::standby_main`), and neither its namespaces and
/// cgroup nor the container's child may be made as idle work.
pub fn normal_scheduling() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: sched_setscheduler on the calling thread, valid parameter.
    unsafe { libc::sched_setscheduler(0, libc::SCHED_OTHER, &param) };
}

/// Asks the scheduler to run the calling thread promptly when it wakes: a
/// fair-class time slice of 100 µs instead of the default (0.75 ms times
/// 1 + log2 of the CPUs), so that with EEVDF (Linux 6.12 and later) its
/// earlier deadline preempts what runs on the CPU it wakes on. For the
/// shim: it sleeps until the container's command has executed, and then
/// has a few microseconds of work that the container's start and exit
/// wait for; with the default slice a short-lived command often ran to
/// its end first. Older kernels ignore the slice. Only for a thread that
/// has no children to come: they would inherit it.
pub fn short_slice() {
    // SAFETY: getpriority of the calling process; -1 may be a valid nice
    // value, so errno is not consulted (an error leaves 0 below).
    let nice = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
    let attr = libc::sched_attr {
        size: std::mem::size_of::<libc::sched_attr>() as u32,
        sched_policy: libc::SCHED_OTHER as u32,
        sched_flags: 0,
        sched_nice: nice,
        sched_priority: 0,
        sched_runtime: 100_000,
        sched_deadline: 0,
        sched_period: 0,
    };
    // SAFETY: sched_setattr on the calling thread with a valid attribute.
    unsafe {
        libc::syscall(
            libc::SYS_sched_setattr,
            0,
            &attr as *const libc::sched_attr,
            0,
        )
    };
}

/// Lets a child that has its config execute the command: its cgroup is
/// ready (see [`waiting_child_main`]).
pub fn go(socket: &OwnedFd) -> std::io::Result<()> {
    nix::unistd::write(socket, b"g")
        .map(drop)
        .map_err(std::io::Error::from)
}

/// Waits for the shim's [`go`].
fn wait_go(socket: &OwnedFd) -> Result<(), Failure> {
    let mut b = [0u8; 1];
    match nix::unistd::read(socket, &mut b) {
        Ok(1) if b[0] == b'g' => Ok(()),
        _ => Err(Failure(
            1,
            "the shim went away before the container started".into(),
        )),
    }
}

/// Sends a child its config and stdio (see [`waiting_child_main`]).
pub fn send(socket: &OwnedFd, cfg: &InitConfig, fds: &[RawFd]) -> std::io::Result<()> {
    let json = serde_json::to_vec(cfg).map_err(std::io::Error::other)?;
    let len = (json.len() as u32).to_be_bytes();
    let cmsg = [nix::sys::socket::ControlMessage::ScmRights(fds)];
    let iov = [std::io::IoSlice::new(&len)];
    nix::sys::socket::sendmsg::<()>(
        socket.as_raw_fd(),
        &iov,
        &cmsg,
        nix::sys::socket::MsgFlags::empty(),
        None,
    )
    .map_err(std::io::Error::from)?;
    let mut f = std::fs::File::from(socket.try_clone()?);
    f.write_all(&json)
}

fn receive(socket: &OwnedFd) -> Result<(InitConfig, Vec<RawFd>), Failure> {
    let mut len = [0u8; 4];
    let mut space = nix::cmsg_space!([RawFd; 4]);
    let mut fds = Vec::new();
    {
        let mut iov = [std::io::IoSliceMut::new(&mut len)];
        let msg = nix::sys::socket::recvmsg::<()>(
            socket.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            nix::sys::socket::MsgFlags::empty(),
        )
        .map_err(fail("waiting for the container's config"))?;
        if msg.bytes != 4 {
            return Err(Failure(
                1,
                "the shim went away before the container started".into(),
            ));
        }
        for c in msg.cmsgs().map_err(fail("reading the container's stdio"))? {
            if let nix::sys::socket::ControlMessageOwned::ScmRights(r) = c {
                fds.extend(r);
            }
        }
    }
    let mut json = vec![0u8; u32::from_be_bytes(len) as usize];
    let mut f = std::fs::File::from(socket.try_clone().map_err(fail("dup"))?);
    f.read_exact(&mut json)
        .map_err(fail("reading the container's config"))?;
    let cfg = serde_json::from_slice(&json).map_err(fail("the container's config"))?;
    Ok((cfg, fds))
}

enum Never {}

fn run(
    cfg: &InitConfig,
    stdio: [RawFd; 3],
    console: Option<RawFd>,
    premount: Option<OwnedFd>,
    shim: &OwnedFd,
) -> Result<Never, Failure> {
    if cfg.new_cgroup_ns {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP)
            .map_err(fail("creating the cgroup namespace"))?;
    }
    nix::unistd::setsid().map_err(fail("setsid"))?;
    if console.is_none() {
        dup_stdio(stdio)?;
    }

    setup_rootfs(cfg, console, premount)?;
    nix::unistd::sethostname(&cfg.hostname).map_err(fail("setting the hostname"))?;
    loopback_up().map_err(fail("bringing up the loopback interface"))?;

    super::set_nofile(cfg.nofile).map_err(fail("setting RLIMIT_NOFILE"))?;

    // What the process takes from its root (its user, its working
    // directory) is resolved in that root by descriptor, after pivot_root
    // and never through a magic link.
    let root = open_root().map_err(fail("opening the root filesystem"))?;
    let user = resolve_user(&root, &cfg.user).map_err(|m| Failure(1, m))?;
    let mut env = cfg.env.clone();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", user.home));
    }
    // Docker creates a missing working directory.
    let cwd = open_cwd(&root, &cfg.cwd, true).map_err(|m| Failure(1, m))?;
    let entered = enter_cwd(&cwd, &cfg.cwd, false);

    switch_user(&user).map_err(|m| Failure(1, m))?;
    let caps = CapSets::from_oci(&cfg.caps).map_err(fail("capabilities"))?;
    let program = match &cfg.seccomp {
        Some(h) => Some(
            hex::decode(h)
                .map_err(fail("seccomp program"))
                .and_then(|b| seccomp::Program::from_bytes(&b).map_err(fail("seccomp program")))?,
        ),
        None => None,
    };
    if !cfg.no_new_privileges
        && let Some(prog) = &program
    {
        // Without no-new-privileges the filter needs CAP_SYS_ADMIN, which
        // the capability step may drop: install it first, as runc does.
        seccomp::install(prog).map_err(fail("installing the seccomp filter"))?;
    }
    caps::apply(&caps).map_err(fail("setting capabilities"))?;
    if entered.is_err() {
        // Not searchable by root: maybe by the user (runc tries both).
        enter_cwd(&cwd, &cfg.cwd, true).map_err(|m| Failure(1, m))?;
    }
    drop(cwd);
    // The program, resolved inside the root with the user's credentials
    // and capabilities (as `execve` checks it), and before the filter
    // (as runc looks it up), which then needs no more system calls.
    let (path, argv, envp) = prepare_exec(&root, &cfg.args, &env)?;
    drop(root);
    if cfg.no_new_privileges {
        seccomp::set_no_new_privs().map_err(fail("prctl(PR_SET_NO_NEW_PRIVS)"))?;
        if let Some(prog) = &program {
            seccomp::install(prog).map_err(fail("installing the seccomp filter"))?;
        }
    }
    // Whatever else is open (the error pipe included) closes at exec: the
    // container gets its stdio and nothing of the shim's.
    super::cloexec_from(3).map_err(fail("marking descriptors close-on-exec"))?;
    wait_go(shim)?;
    if cfg.init {
        run_as_init(&path, &argv, &envp)
    } else {
        Err(exec(&path, &argv, &envp))
    }
}

fn dup_stdio(stdio: [RawFd; 3]) -> Result<(), Failure> {
    for (i, fd) in stdio.iter().enumerate() {
        if *fd != i as RawFd {
            // SAFETY: plain dup2 on descriptors the shim handed over.
            if unsafe { libc::dup2(*fd, i as RawFd) } < 0 {
                return Err(Failure(
                    1,
                    format!("setting up stdio: {}", std::io::Error::last_os_error()),
                ));
            }
        }
    }
    Ok(())
}

/// Opens a pty in the container's devpts (so that `/dev/pts/N` inside is
/// its terminal), makes it stdio, the controlling terminal and
/// `/dev/console`, and sends the master to the shim over `socket`.
fn setup_console(cfg: &InitConfig, root: &OwnedFd, socket: RawFd) -> Result<(), Failure> {
    let master = open_in(root, "/dev/pts/ptmx", OFlag::O_RDWR | OFlag::O_NOCTTY)
        .map_err(fail("opening /dev/pts/ptmx"))?;
    let mut n: libc::c_uint = 0;
    let mut unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK and TIOCGPTN on a ptmx fd with valid pointers.
    unsafe {
        if libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &mut unlock) < 0
            || libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut n) < 0
        {
            return Err(Failure(
                1,
                format!("setting up the pty: {}", std::io::Error::last_os_error()),
            ));
        }
    }
    if let Some([rows, cols]) = cfg.console_size {
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ with a valid winsize.
        unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    }
    let slave_path = format!("/dev/pts/{n}");
    let slave = open_in(root, &slave_path, OFlag::O_RDWR).map_err(fail("opening the pty slave"))?;
    let target = touch_in(root, "/dev/console").map_err(fail("creating /dev/console"))?;
    let slave_in_root =
        open_in(root, &slave_path, OFlag::O_PATH).map_err(fail("opening the pty slave"))?;
    mount(
        Some(fd_path(&slave_in_root).as_str()),
        fd_path(&target).as_str(),
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(fail("mounting /dev/console"))?;
    let fd = slave.as_raw_fd();
    dup_stdio([fd, fd, fd])?;
    // SAFETY: stdin is the pty slave; make it our controlling terminal.
    if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } < 0 {
        return Err(Failure(
            1,
            format!(
                "setting the controlling terminal: {}",
                std::io::Error::last_os_error()
            ),
        ));
    }
    let fds = [master.as_raw_fd()];
    let cmsg = [nix::sys::socket::ControlMessage::ScmRights(&fds)];
    let iov = [std::io::IoSlice::new(b"m")];
    nix::sys::socket::sendmsg::<()>(
        socket,
        &iov,
        &cmsg,
        nix::sys::socket::MsgFlags::empty(),
        None,
    )
    .map_err(fail("sending the pty to the shim"))?;
    // SAFETY: done with the socket.
    unsafe { libc::close(socket) };
    Ok(())
}

fn set_keepcaps(on: bool) -> std::io::Result<()> {
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, on as libc::c_ulong, 0, 0, 0) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Opens `path` inside the root `root` (an fd), symlinks resolved as if
/// `root` were `/`.
pub(super) fn open_in(root: &OwnedFd, path: &str, flags: OFlag) -> nix::Result<OwnedFd> {
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let rel = path.trim_start_matches('/');
    let rel = if rel.is_empty() { "." } else { rel };
    let mut tries = 0;
    loop {
        match openat2(root.as_fd(), rel, how) {
            // A rename or mount raced the lookup: the kernel asks to retry.
            Err(nix::errno::Errno::EAGAIN) if tries < 16 => tries += 1,
            r => return r,
        }
    }
}

/// `mkdir -p` of `path` inside `root`, every component resolved inside
/// the root. Returns the directory, opened.
fn mkdir_all_at(root: &OwnedFd, path: &str) -> nix::Result<OwnedFd> {
    let mut cur = String::new();
    let mut dir = open_in(root, "/", OFlag::O_DIRECTORY | OFlag::O_PATH)?;
    for comp in path.split('/').filter(|c| !c.is_empty() && *c != ".") {
        cur.push('/');
        cur.push_str(comp);
        match open_in(root, &cur, OFlag::O_DIRECTORY | OFlag::O_PATH) {
            Ok(d) => dir = d,
            Err(nix::errno::Errno::ENOENT) => {
                match nix::sys::stat::mkdirat(dir.as_fd(), comp, Mode::from_bits_truncate(0o755)) {
                    Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
                    Err(e) => return Err(e),
                }
                dir = open_in(root, &cur, OFlag::O_DIRECTORY | OFlag::O_PATH)?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(dir)
}

/// Creates (if missing) a file at `path` inside the root, for a bind mount
/// of a file over it, and returns it opened `O_PATH`.
fn touch_in(root: &OwnedFd, path: &str) -> nix::Result<OwnedFd> {
    if let Ok(f) = open_in(root, path, OFlag::O_PATH | OFlag::O_NOFOLLOW) {
        return Ok(f);
    }
    let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
    let dir = mkdir_all_at(root, parent)?;
    match nix::fcntl::openat(
        dir.as_fd(),
        name,
        OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o644),
    ) {
        Ok(_) | Err(nix::errno::Errno::EEXIST) => {}
        Err(e) => return Err(e),
    }
    open_in(root, path, OFlag::O_PATH | OFlag::O_NOFOLLOW)
}

/// `/proc/self/fd/N`: mount targets are given as the magic link of an fd
/// resolved safely inside the root, so the mount lands where it was
/// resolved.
fn fd_path(fd: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

fn setup_rootfs(
    cfg: &InitConfig,
    console: Option<RawFd>,
    premount: Option<OwnedFd>,
) -> Result<(), Failure> {
    // Nothing we mount may propagate back to the host.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(fail("making mounts private"))?;
    match (&cfg.overlay, premount) {
        (Some(_), Some(made)) => super::overlay::attach_premount(&made, &cfg.rootfs)
            .map_err(fail("mounting the container's root filesystem"))?,
        (Some(o), None) => super::overlay::mount_rootfs(&o.lowers, &o.upper, &o.work, &cfg.rootfs)
            .map_err(fail("mounting the container's root filesystem"))?,
        (None, _) => {}
    }
    let rootfs = cfg
        .rootfs
        .to_str()
        .ok_or_else(|| Failure(1, "rootfs path is not UTF-8".into()))?;
    // pivot_root needs the new root to be a mount point.
    mount(
        Some(rootfs),
        rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(fail("bind-mounting the root filesystem"))?;
    let root = nix::fcntl::open(
        rootfs,
        OFlag::O_DIRECTORY | OFlag::O_PATH | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(fail("opening the root filesystem"))?;

    for m in &cfg.mounts {
        let target = mkdir_all_at(&root, &m.destination)
            .map_err(fail(&format!("creating mount point {}", m.destination)))?;
        let data = (!m.data.is_empty()).then_some(m.data.as_str());
        let source = m.source.as_str();
        let flags = if m.bind {
            MsFlags::MS_BIND | MsFlags::MS_REC
        } else {
            m.flags
        };
        mount(
            Some(source),
            fd_path(&target).as_str(),
            (!m.bind).then_some(m.fstype.as_str()),
            flags,
            data,
        )
        .map_err(fail(&format!("mounting {} on {}", m.fstype, m.destination)))?;
        if m.bind && m.flags.contains(MsFlags::MS_RDONLY) {
            let t = open_in(&root, &m.destination, OFlag::O_PATH)
                .map_err(fail("reopening a bind mount"))?;
            mount(
                None::<&str>,
                fd_path(&t).as_str(),
                None::<&str>,
                MsFlags::MS_BIND
                    | MsFlags::MS_REMOUNT
                    | MsFlags::MS_RDONLY
                    | (m.flags & (MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC)),
                None::<&str>,
            )
            .map_err(fail(&format!("making {} read-only", m.destination)))?;
        }
    }
    mount_cgroups(cfg, &root)?;
    make_devices(&root, cfg.privileged).map_err(fail("creating devices in /dev"))?;
    if let Some(socket) = console {
        setup_console(cfg, &root, socket)?;
    }
    for (src, dest) in &cfg.etc_files {
        let target = touch_in(&root, dest.as_str()).map_err(fail(&format!("creating {dest}")))?;
        mount(
            Some(src.as_path()),
            fd_path(&target).as_str(),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(fail(&format!("mounting {dest}")))?;
    }
    for p in &cfg.masked {
        let Ok(t) = open_in(&root, p, OFlag::O_PATH | OFlag::O_NOFOLLOW) else {
            continue;
        };
        let is_dir = nix::sys::stat::fstat(t.as_fd())
            .map(|s| SFlag::from_bits_truncate(s.st_mode).contains(SFlag::S_IFDIR))
            .unwrap_or(false);
        let r = if is_dir {
            mount(
                Some("tmpfs"),
                fd_path(&t).as_str(),
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                None::<&str>,
            )
        } else {
            mount(
                Some("/dev/null"),
                fd_path(&t).as_str(),
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
        };
        r.map_err(fail(&format!("masking {p}")))?;
    }
    for p in &cfg.readonly {
        let Ok(t) = open_in(&root, p, OFlag::O_PATH | OFlag::O_NOFOLLOW) else {
            continue;
        };
        let path = fd_path(&t);
        mount(
            Some(path.as_str()),
            path.as_str(),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(fail(&format!("binding {p}")))?;
        let t = open_in(&root, p, OFlag::O_PATH | OFlag::O_NOFOLLOW)
            .map_err(fail("reopening a read-only path"))?;
        mount(
            None::<&str>,
            fd_path(&t).as_str(),
            None::<&str>,
            MsFlags::MS_BIND
                | MsFlags::MS_REMOUNT
                | MsFlags::MS_RDONLY
                | MsFlags::MS_NOSUID
                | MsFlags::MS_NODEV
                | MsFlags::MS_NOEXEC,
            None::<&str>,
        )
        .map_err(fail(&format!("making {p} read-only")))?;
    }

    // pivot_root(".", ".") stacks the old root under the new one; detaching
    // it leaves only the container's root.
    nix::unistd::fchdir(&root).map_err(fail("entering the root filesystem"))?;
    nix::unistd::pivot_root(".", ".").map_err(fail("pivot_root"))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(fail("detaching the old root"))?;
    nix::unistd::chdir("/").map_err(fail("chdir /"))?;
    if cfg.readonly_rootfs {
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .map_err(fail("making the root filesystem read-only"))?;
    }
    Ok(())
}

fn mount_cgroups(cfg: &InitConfig, root: &OwnedFd) -> Result<(), Failure> {
    let flags = MsFlags::MS_NOSUID
        | MsFlags::MS_NOEXEC
        | MsFlags::MS_NODEV
        | if cfg.privileged {
            MsFlags::empty()
        } else {
            MsFlags::MS_RDONLY
        };
    match &cfg.cgroup_mount {
        CgroupMount::None => Ok(()),
        CgroupMount::V2 => {
            let t =
                mkdir_all_at(root, "/sys/fs/cgroup").map_err(fail("creating /sys/fs/cgroup"))?;
            mount(
                Some("cgroup2"),
                fd_path(&t).as_str(),
                Some("cgroup2"),
                flags,
                None::<&str>,
            )
            .map_err(fail("mounting cgroup2"))
        }
        CgroupMount::V1(controllers) => {
            let t =
                mkdir_all_at(root, "/sys/fs/cgroup").map_err(fail("creating /sys/fs/cgroup"))?;
            mount(
                Some("tmpfs"),
                fd_path(&t).as_str(),
                Some("tmpfs"),
                MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV,
                Some("mode=755"),
            )
            .map_err(fail("mounting /sys/fs/cgroup"))?;
            for (dir, name) in controllers {
                let dest = format!("/sys/fs/cgroup/{name}");
                let t = mkdir_all_at(root, &dest).map_err(fail(&format!("creating {dest}")))?;
                mount(
                    Some(dir.as_path()),
                    fd_path(&t).as_str(),
                    None::<&str>,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None::<&str>,
                )
                .map_err(fail(&format!("mounting the {name} cgroup")))?;
                let t = open_in(root, &dest, OFlag::O_PATH)
                    .map_err(fail(&format!("reopening {dest}")))?;
                mount(
                    None::<&str>,
                    fd_path(&t).as_str(),
                    None::<&str>,
                    MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags,
                    None::<&str>,
                )
                .map_err(fail(&format!("making the {name} cgroup read-only")))?;
            }
            if !cfg.privileged {
                let t = open_in(root, "/sys/fs/cgroup", OFlag::O_PATH)
                    .map_err(fail("reopening /sys/fs/cgroup"))?;
                mount(
                    None::<&str>,
                    fd_path(&t).as_str(),
                    None::<&str>,
                    MsFlags::MS_REMOUNT
                        | MsFlags::MS_RDONLY
                        | MsFlags::MS_NOSUID
                        | MsFlags::MS_NOEXEC
                        | MsFlags::MS_NODEV,
                    Some("mode=755"),
                )
                .map_err(fail("making /sys/fs/cgroup read-only"))?;
            }
            Ok(())
        }
    }
}

/// The usual device nodes in the container's /dev (a fresh tmpfs) and
/// their symlinks.
fn make_devices(root: &OwnedFd, privileged: bool) -> nix::Result<()> {
    let _ = privileged;
    let dev = open_in(root, "/dev", OFlag::O_DIRECTORY)?;
    for (name, major, minor) in [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ] {
        match mknodat(
            dev.as_fd(),
            name,
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o666),
            makedev(major, minor),
        ) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => return Err(e),
        }
        // mknod is subject to the umask.
        nix::sys::stat::fchmodat(
            dev.as_fd(),
            name,
            Mode::from_bits_truncate(0o666),
            nix::sys::stat::FchmodatFlags::NoFollowSymlink,
        )
        .or_else(|e| {
            if e == nix::errno::Errno::EOPNOTSUPP {
                Ok(())
            } else {
                Err(e)
            }
        })?;
    }
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
        ("core", "/proc/kcore"),
    ] {
        match nix::unistd::symlinkat(target, dev.as_fd(), link) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `ip link set lo up` in the container's network namespace.
fn loopback_up() -> std::io::Result<()> {
    // SAFETY: a socket and two ioctls on a zeroed ifreq naming "lo".
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let sock = OwnedFd::from_raw_fd(fd);
        let mut req: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo\0".iter().enumerate() {
            req.ifr_name[i] = *b as libc::c_char;
        }
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The container's user, resolved in its own /etc/passwd and /etc/group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub home: String,
}

/// The largest uid or gid berth gives a process: 2^31 - 1, Docker's and
/// runc's rule. Past it, 2^32 - 1 is `(uid_t)-1`, which `setresuid` and
/// `setresgid` take as "leave this id unchanged" (root, here), and other
/// large values mean -1 to programs that read ids as signed.
pub const MAX_ID: u32 = 0x7fff_ffff;

/// runc's wording, which Docker users know.
pub const ID_RANGE: &str = "uids and gids must be in range 0-2147483647";

/// The most of a container's `/etc/passwd` or `/etc/group` berth reads to
/// resolve a user (4 MiB, some 50,000 entries: far more than real images
/// hold); a larger file fails the start or exec, saying so.
pub const MAX_USER_FILE: u64 = 4 << 20;

/// The most groups (primary and supplementary) a user gets: Linux's
/// `NGROUPS_MAX`, past which `setgroups` fails anyway.
pub const MAX_GROUPS: usize = 65536;

/// A uid or gid written as a number, as Docker and runc read one (an
/// optional sign, then digits): `None` if `s` is a name, `Some(Err(()))` if
/// the number is outside `0..=MAX_ID`.
pub fn numeric_id(s: &str) -> Option<Result<u32, ()>> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(match (s.starts_with('-'), digits.parse::<u32>()) {
        (false, Ok(n)) if n <= MAX_ID => Ok(n),
        (true, Ok(0)) => Ok(0),
        _ => Err(()),
    })
}

/// Refuses a user (`user`, `uid`, `user:group`, `uid:gid`) whose uid or
/// gid is a number outside `0..=MAX_ID`; names are left to resolution in
/// the container's files at start.
pub fn check_user_ids(spec: &str) -> Result<(), String> {
    let (u, g) = spec.split_once(':').unwrap_or((spec, ""));
    for part in [u, g] {
        if let Some(Err(())) = numeric_id(part) {
            return Err(format!("invalid user {spec:?}: {ID_RANGE}"));
        }
    }
    Ok(())
}

/// The calling process's root directory, as a descriptor to resolve the
/// container's paths from (after `pivot_root`, or after joining the
/// container's mount namespace).
pub fn open_root() -> nix::Result<OwnedFd> {
    nix::fcntl::open(
        "/",
        OFlag::O_DIRECTORY | OFlag::O_PATH | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// The container's user, resolved in its own `/etc/passwd` and
/// `/etc/group` under `root` (each read whole up to [`MAX_USER_FILE`]).
pub fn resolve_user(root: &OwnedFd, spec: &str) -> Result<User, String> {
    let passwd = read_user_file(root, "/etc/passwd")?;
    let group = read_user_file(root, "/etc/group")?;
    resolve_user_in(spec, &passwd, &group)
}

/// One of the container's user files, resolved inside `root` (a symlink in
/// the image stays inside it; a magic link such as `/proc/self/fd/N` is
/// refused), read only if it is a regular file (a FIFO would block the
/// reader, a device never end) and no larger than [`MAX_USER_FILE`]. A
/// missing file reads as empty: numeric users need none.
fn read_user_file(root: &OwnedFd, path: &str) -> Result<String, String> {
    let fd = match open_in(
        root,
        path,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY,
    ) {
        Ok(fd) => fd,
        Err(nix::errno::Errno::ENOENT) => return Ok(String::new()),
        Err(e) => {
            return Err(format!(
                "reading the container's {path}: {}",
                resolve_error(e)
            ));
        }
    };
    let st = nix::sys::stat::fstat(fd.as_fd())
        .map_err(|e| format!("reading the container's {path}: {e}"))?;
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
        return Err(format!(
            "the container's {path} is not a regular file: berth reads users and groups from a regular file only"
        ));
    }
    let mut bytes = Vec::new();
    std::fs::File::from(fd)
        .take(MAX_USER_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("reading the container's {path}: {e}"))?;
    if bytes.len() as u64 > MAX_USER_FILE {
        return Err(format!(
            "the container's {path} is larger than {} MiB, the most berth reads to resolve a user: make it smaller",
            MAX_USER_FILE >> 20
        ));
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// What an error resolving a path inside the container's root means.
fn resolve_error(e: nix::errno::Errno) -> String {
    match e {
        nix::errno::Errno::ELOOP => "it leads through a descriptor or process link \
             (such as /proc/self/fd/N or /dev/fd/N), which could leave the container, \
             or through too many symlinks"
            .to_string(),
        nix::errno::Errno::ENOENT => "no such file or directory".to_string(),
        nix::errno::Errno::ENOTDIR => "not a directory".to_string(),
        e => e.desc().to_lowercase(),
    }
}

/// The process's working directory, resolved inside `root` as
/// [`open_in`] does, and created (as Docker does at run, not at exec) if
/// `create` and it is missing. The message is runc's, which Docker shows.
pub fn open_cwd(root: &OwnedFd, cwd: &str, create: bool) -> Result<OwnedFd, String> {
    let dir = if create {
        mkdir_all_at(root, cwd)
    } else {
        open_in(root, cwd, OFlag::O_PATH | OFlag::O_DIRECTORY)
    };
    dir.map_err(|e| {
        format!(
            "chdir to cwd (\"{cwd}\") set in config.json failed: {}",
            resolve_error(e)
        )
    })
}

/// Makes `dir` (from [`open_cwd`]) the working directory, and checks that
/// it is inside the process's root. `last_try`: a failure is the error to
/// report; otherwise it may be retried after the user switch.
pub fn enter_cwd(dir: &OwnedFd, cwd: &str, last_try: bool) -> Result<(), String> {
    match nix::unistd::fchdir(dir) {
        Ok(()) => {}
        Err(nix::errno::Errno::EACCES) if !last_try => {
            return Err("permission denied".into());
        }
        Err(e) => {
            return Err(format!(
                "chdir to cwd (\"{cwd}\") set in config.json failed: {}",
                resolve_error(e)
            ));
        }
    }
    // What runc checks since CVE-2024-21626: a directory outside the root
    // has no path from it (the kernel says "(unreachable)").
    match nix::unistd::getcwd() {
        Ok(p) if p.is_absolute() => Ok(()),
        _ => Err(format!(
            "the working directory \"{cwd}\" is outside the container's root: refusing to start"
        )),
    }
}

/// Switches to `user`'s groups, gid and uid, keeping the capabilities
/// (which the caller sets next). Every id is checked against [`MAX_ID`]
/// once more: `(uid_t)-1` would leave the process root.
pub fn switch_user(user: &User) -> Result<(), String> {
    if user.uid > MAX_ID || user.gid > MAX_ID || user.groups.iter().any(|g| *g > MAX_ID) {
        return Err(format!("user {}:{}: {ID_RANGE}", user.uid, user.gid));
    }
    if user.groups.len() > MAX_GROUPS {
        return Err(format!(
            "{} groups: Linux takes at most {MAX_GROUPS}",
            user.groups.len()
        ));
    }
    if user.uid != 0 {
        set_keepcaps(true).map_err(|e| format!("prctl(PR_SET_KEEPCAPS): {e}"))?;
    }
    let groups: Vec<Gid> = user.groups.iter().map(|g| Gid::from_raw(*g)).collect();
    nix::unistd::setgroups(&groups).map_err(|e| format!("setgroups: {e}"))?;
    let (gid, uid) = (Gid::from_raw(user.gid), Uid::from_raw(user.uid));
    nix::unistd::setresgid(gid, gid, gid).map_err(|e| format!("setgid: {e}"))?;
    nix::unistd::setresuid(uid, uid, uid).map_err(|e| format!("setuid: {e}"))?;
    if user.uid != 0 {
        set_keepcaps(false).map_err(|e| format!("prctl(PR_SET_KEEPCAPS): {e}"))?;
    }
    Ok(())
}

/// Docker's user resolution: `""` is root; `name` or `uid`, optionally
/// `:group` or `:gid`. Names must exist in the container's files; numbers
/// need not (a number is always an id, as runc takes it). Supplementary
/// groups are those listing the user by name, at most [`MAX_GROUPS`] in
/// all. Every id, given or read, must be in `0..=MAX_ID`.
pub fn resolve_user_in(spec: &str, passwd: &str, group: &str) -> Result<User, String> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let out_of_range = |what: String| format!("{what}: {ID_RANGE}");
    let users: Vec<Vec<&str>> = passwd
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 7)
        .collect();
    let groups: Vec<Vec<&str>> = group
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 3)
        .collect();
    let u = if u.is_empty() { "0" } else { u };
    let wanted_uid = match numeric_id(u) {
        Some(Err(())) => return Err(out_of_range(format!("invalid user {spec:?}"))),
        Some(Ok(n)) => Some(n),
        None => None,
    };
    let entry = users.iter().find(|f| match wanted_uid {
        Some(n) => numeric_id(f[2]) == Some(Ok(n)),
        None => f[0] == u,
    });
    let (uid, mut gid, name, home) = match (entry, wanted_uid) {
        (Some(f), _) => {
            let id = |field: &str, what: &str| match numeric_id(field) {
                Some(Ok(n)) => Ok(n),
                Some(Err(())) => Err(out_of_range(format!(
                    "user {} in the container's /etc/passwd has {what} {field}",
                    f[0]
                ))),
                None => Err(format!("invalid {what} in /etc/passwd for {}", f[0])),
            };
            (
                id(f[2], "uid")?,
                id(f[3], "gid")?,
                Some(f[0]),
                f[5].to_string(),
            )
        }
        (None, Some(n)) => (n, 0, None, "/".to_string()),
        (None, None) => {
            return Err(format!(
                "unable to find user {u}: no matching entries in passwd file"
            ));
        }
    };
    if let Some(g) = g.filter(|g| !g.is_empty()) {
        gid = match numeric_id(g) {
            Some(Ok(n)) => n,
            Some(Err(())) => return Err(out_of_range(format!("invalid user {spec:?}"))),
            None => match groups.iter().find(|f| f[0] == g) {
                Some(f) => match numeric_id(f[2]) {
                    Some(Ok(n)) => n,
                    Some(Err(())) => {
                        return Err(out_of_range(format!(
                            "group {g} in the container's /etc/group has gid {}",
                            f[2]
                        )));
                    }
                    None => return Err(format!("invalid gid in /etc/group for {g}")),
                },
                None => {
                    return Err(format!(
                        "unable to find group {g}: no matching entries in group file"
                    ));
                }
            },
        };
    }
    let mut all = vec![gid];
    let mut seen: std::collections::HashSet<u32> = [gid].into();
    if let Some(name) = name {
        for f in &groups {
            if f.len() < 4 || !f[3].split(',').any(|m| m == name) {
                continue;
            }
            let id = match numeric_id(f[2]) {
                Some(Ok(n)) => n,
                Some(Err(())) => {
                    return Err(out_of_range(format!(
                        "group {} in the container's /etc/group, which lists user {name}, has gid {}",
                        f[0], f[2]
                    )));
                }
                // Not a number: skipped, as before.
                None => continue,
            };
            if seen.insert(id) {
                all.push(id);
                if all.len() > MAX_GROUPS {
                    return Err(format!(
                        "user {name} is listed in more than {MAX_GROUPS} supplementary groups in the container's /etc/group, more than Linux allows (NGROUPS_MAX): list it in fewer"
                    ));
                }
            }
        }
    }
    Ok(User {
        uid,
        gid,
        groups: all,
        home: if home.is_empty() { "/".into() } else { home },
    })
}

/// A resolved program: its path, argv and envp, ready for `execve`.
pub type Program = (CString, Vec<CString>, Vec<CString>);

/// [`prepare_exec`] for the exec helper: (exit code, message) on failure.
pub fn prepare_exec_pub(
    root: &OwnedFd,
    args: &[String],
    env: &[String],
) -> Result<Program, (i32, String)> {
    prepare_exec(root, args, env).map_err(|Failure(c, m)| (c, m))
}

/// Finds the program as `execvp` would, in the container's `PATH`, and
/// checks it inside the container's root (`root`, which is also this
/// process's root; the working directory is the container's): every
/// candidate is opened with `RESOLVE_NO_MAGICLINKS` (absolute ones with
/// `RESOLVE_IN_ROOT`), so that a program given or found through a
/// descriptor's or a process's link (`/proc/self/exe`, which is berth's
/// own binary until the exec, `/proc/self/fd/N`, a symlink to either) is
/// refused rather than run, and so is a script whose interpreter is one.
/// Docker's messages and exit codes: 127 when nothing is found, 126 when
/// it cannot be run.
///
/// The program is then executed by the path that was checked, not by the
/// descriptor: a script run through a descriptor gets `/dev/fd/N` as its
/// `$0` (or fails, the descriptor being close-on-exec), and before Linux
/// 6.14 the process would be named after the descriptor's number. A
/// container process that swaps the file in between gains nothing of the
/// host's: what the exec could then reach through a magic link is this
/// process's own (its executable is a sealed read-only view of berth-shim,
/// see `super::SealedShim`; its descriptors are stdio and close-on-exec
/// ones of the container's).
fn prepare_exec(root: &OwnedFd, args: &[String], env: &[String]) -> Result<Program, Failure> {
    let cstr = |s: &str| {
        CString::new(s).map_err(|_| Failure(1, format!("argument {s:?} contains a NUL byte")))
    };
    let prog = args
        .first()
        .ok_or_else(|| Failure(1, "no command specified".into()))?;
    let path = if prog.contains('/') {
        match check_program(root, prog, 0) {
            Checked::Runnable => prog.clone(),
            Checked::Missing => {
                return Err(Failure(
                    127,
                    format!("exec: \"{prog}\": stat {prog}: no such file or directory"),
                ));
            }
            Checked::NotRunnable => {
                return Err(Failure(126, format!("exec: \"{prog}\": permission denied")));
            }
            Checked::Refused(why) => {
                return Err(Failure(
                    126,
                    format!("exec: \"{prog}\": permission denied: {why}"),
                ));
            }
        }
    } else {
        let search = env
            .iter()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        let mut refused = None;
        let found = search
            .split(':')
            .filter(|d| !d.is_empty())
            .map(|d| format!("{}/{prog}", d.trim_end_matches('/')))
            .find(|p| match check_program(root, p, 0) {
                Checked::Runnable => true,
                Checked::Refused(why) => {
                    refused.get_or_insert(why);
                    false
                }
                // As Go's LookPath, which runc uses: not found.
                Checked::Missing | Checked::NotRunnable => false,
            });
        match (found, refused) {
            (Some(p), _) => p,
            (None, Some(why)) => {
                return Err(Failure(
                    126,
                    format!("exec: \"{prog}\": permission denied: {why}"),
                ));
            }
            (None, None) => {
                return Err(Failure(
                    127,
                    format!("exec: \"{prog}\": executable file not found in $PATH"),
                ));
            }
        }
    };
    let argv = args
        .iter()
        .map(|a| cstr(a))
        .collect::<Result<Vec<_>, _>>()?;
    let envp = env.iter().map(|a| cstr(a)).collect::<Result<Vec<_>, _>>()?;
    Ok((cstr(&path)?, argv, envp))
}

/// What [`check_program`] found.
#[derive(Debug, PartialEq)]
enum Checked {
    Runnable,
    /// Nothing there (ENOENT, ENOTDIR).
    Missing,
    /// Not a regular file, or not executable by this process.
    NotRunnable,
    /// Reached through a magic link (or too many symlinks), or its
    /// interpreter is: why, naming the path.
    Refused(String),
}

/// How deep scripts may name scripts as their interpreters (Linux's
/// `BINPRM_MAX_RECURSION`; past it `execve` fails with ELOOP).
const MAX_INTERPRETERS: u32 = 4;

/// Checks a program as `execve` would take it, inside the root: `path`
/// absolute (resolved in `root`) or relative to the working directory,
/// never through a magic link; a regular file this process may execute;
/// and, for a script, its interpreter likewise (which the kernel looks up
/// from this process, before the exec).
fn check_program(root: &OwnedFd, path: &str, depth: u32) -> Checked {
    use nix::errno::Errno;
    use nix::unistd::AccessFlags;
    let open = |flags: OFlag| {
        if path.starts_with('/') {
            open_in(root, path, flags)
        } else {
            open_here(path, flags)
        }
    };
    let file = match open(OFlag::O_PATH) {
        Ok(f) => f,
        // No openat2 (before Linux 5.6), or a seccomp profile of the
        // container's own that filters it (installed first when
        // no-new-privileges is off): the lookup by path of old, and the
        // sealed berth-shim is what a magic link could reach.
        Err(Errno::ENOSYS | Errno::EPERM) => {
            return match std::fs::metadata(path) {
                Err(_) => Checked::Missing,
                Ok(m) if m.is_file() && nix::unistd::access(path, AccessFlags::X_OK).is_ok() => {
                    Checked::Runnable
                }
                Ok(_) => Checked::NotRunnable,
            };
        }
        Err(Errno::ENOENT | Errno::ENOTDIR) => return Checked::Missing,
        Err(Errno::EACCES) => return Checked::NotRunnable,
        Err(Errno::ELOOP) => {
            return Checked::Refused(format!(
                "{path} leads through a descriptor or process link (such as \
                 /proc/self/exe or /proc/self/fd/N), which could leave the container, \
                 or through too many symlinks"
            ));
        }
        Err(e) => return Checked::Refused(format!("{path}: {}", resolve_error(e))),
    };
    match nix::sys::stat::fstat(&file) {
        Ok(st) if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG => {}
        _ => return Checked::NotRunnable,
    }
    if !may_execute(&file) {
        return Checked::NotRunnable;
    }
    if depth < MAX_INTERPRETERS
        && let Some(interpreter) = open(OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY)
            .ok()
            .and_then(|f| script_interpreter(&f))
        && let Checked::Refused(why) = check_program(root, &interpreter, depth + 1)
    {
        return Checked::Refused(format!("{path} is a script whose interpreter {why}"));
    }
    // A file this process cannot read: the interpreter could not read it
    // either, and an ELF binary needs no reading of ours.
    Checked::Runnable
}

/// Opens `path` relative to the working directory (and beneath the root,
/// which is this process's), never through a magic link.
fn open_here(path: &str, flags: OFlag) -> nix::Result<OwnedFd> {
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let mut tries = 0;
    loop {
        match openat2(nix::fcntl::AT_FDCWD, path, how) {
            Err(nix::errno::Errno::EAGAIN) if tries < 16 => tries += 1,
            r => return r,
        }
    }
}

/// Whether this process may execute `file` (its effective ids and
/// capabilities, the mount's `noexec`), as `execve` decides.
fn may_execute(file: &OwnedFd) -> bool {
    // SAFETY: faccessat2 on a descriptor we own with an empty path.
    let r = unsafe {
        libc::syscall(
            libc::SYS_faccessat2,
            file.as_raw_fd(),
            c"".as_ptr(),
            libc::X_OK,
            libc::AT_EMPTY_PATH | libc::AT_EACCESS,
        )
    };
    if r == 0 {
        return true;
    }
    match nix::errno::Errno::last() {
        // Before Linux 5.8 (or filtered): an execute bit, at least; the
        // exec itself decides the rest.
        nix::errno::Errno::ENOSYS | nix::errno::Errno::EPERM | nix::errno::Errno::EINVAL => {
            nix::sys::stat::fstat(file).is_ok_and(|st| st.st_mode & 0o111 != 0)
        }
        _ => false,
    }
}

/// The interpreter a script names on its `#!` line, read as the kernel
/// reads it (the first 256 bytes; blanks before the name, which ends at a
/// blank or the line's end); `None` if it is not a script.
fn script_interpreter(file: &OwnedFd) -> Option<String> {
    match nix::sys::stat::fstat(file) {
        Ok(st) if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG => {}
        _ => return None,
    }
    let mut head = [0u8; 256];
    let n = nix::sys::uio::pread(file, &mut head, 0).ok()?;
    script_interpreter_in(&head[..n])
}

fn script_interpreter_in(head: &[u8]) -> Option<String> {
    let line = head.strip_prefix(b"#!")?;
    let line = &line[..line.iter().position(|b| *b == b'\n').unwrap_or(line.len())];
    let start = line.iter().position(|b| *b != b' ' && *b != b'\t')?;
    let rest = &line[start..];
    let end = rest
        .iter()
        .position(|b| matches!(b, b' ' | b'\t' | 0))
        .unwrap_or(rest.len());
    (end > 0).then(|| String::from_utf8_lossy(&rest[..end]).into_owned())
}

fn exec(path: &CStr, argv: &[CString], envp: &[CString]) -> Failure {
    let err = nix::unistd::execve(path, argv, envp).unwrap_err();
    let prog = path.to_string_lossy();
    match err {
        nix::errno::Errno::ENOENT => Failure(
            127,
            format!("exec: \"{prog}\": stat {prog}: no such file or directory"),
        ),
        nix::errno::Errno::EACCES => Failure(126, format!("exec: \"{prog}\": permission denied")),
        e => Failure(126, format!("exec: \"{prog}\": {}", e.desc())),
    }
}

/// `--init`: PID 1 forks the command, forwards signals to it, reaps every
/// zombie, and exits with the command's status.
fn run_as_init(path: &CStr, argv: &[CString], envp: &[CString]) -> Result<Never, Failure> {
    use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
    // The init of a pid namespace never gets a signal it leaves at SIG_DFL
    // from outside; give every catchable one a handler (it never runs: the
    // signals stay blocked and are taken with sigwait).
    extern "C" fn noop(_: libc::c_int) {}
    for sig in Signal::iterator() {
        if matches!(sig, Signal::SIGKILL | Signal::SIGSTOP) {
            continue;
        }
        // SAFETY: installing a handler that does nothing.
        unsafe { libc::signal(sig as libc::c_int, noop as *const () as libc::sighandler_t) };
    }
    let all = SigSet::all();
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&all), None).map_err(fail("blocking signals"))?;
    // SAFETY: the process is single-threaded here.
    let child = match unsafe { nix::unistd::fork() }.map_err(fail("fork"))? {
        nix::unistd::ForkResult::Child => {
            for sig in Signal::iterator() {
                if !matches!(sig, Signal::SIGKILL | Signal::SIGSTOP) {
                    // SAFETY: restoring default dispositions before exec.
                    unsafe { libc::signal(sig as libc::c_int, libc::SIG_DFL) };
                }
            }
            let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
            let Failure(code, msg) = exec(path, argv, envp);
            eprintln!("berth-init: {msg}");
            // SAFETY: ending the forked child.
            unsafe { libc::_exit(code) }
        }
        nix::unistd::ForkResult::Parent { child } => child,
    };
    // The init never execs: drop every descriptor it inherited from the
    // shim (the report pipe, the daemon's socket, the error pipe) so that
    // none of them stays open for the container's life.
    super::close_from(3);
    loop {
        let sig = match all.wait() {
            Ok(s) => s,
            Err(_) => continue,
        };
        if sig == Signal::SIGCHLD {
            loop {
                match nix::sys::wait::waitpid(None, Some(nix::sys::wait::WaitPidFlag::WNOHANG)) {
                    Ok(nix::sys::wait::WaitStatus::Exited(pid, code)) if pid == child => {
                        // SAFETY: PID 1 ends; the kernel ends the rest.
                        unsafe { libc::_exit(code) }
                    }
                    Ok(nix::sys::wait::WaitStatus::Signaled(pid, s, _)) if pid == child => {
                        // SAFETY: as above.
                        unsafe { libc::_exit(128 + s as i32) }
                    }
                    Ok(nix::sys::wait::WaitStatus::StillAlive) | Err(_) => break,
                    Ok(_) => continue,
                }
            }
        } else {
            let _ = nix::sys::signal::kill(child, sig);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\napp:x:1000:1000:app:/home/app:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nwheel:x:10:app,other\napp:x:1000:\nstaff:x:50:\n";

    #[test]
    fn users_resolve_like_docker() {
        let r = |s| resolve_user_in(s, PASSWD, GROUP);
        assert_eq!(
            r("").unwrap(),
            User {
                uid: 0,
                gid: 0,
                groups: vec![0],
                home: "/root".into()
            }
        );
        assert_eq!(
            r("app").unwrap(),
            User {
                uid: 1000,
                gid: 1000,
                groups: vec![1000, 10],
                home: "/home/app".into()
            }
        );
        assert_eq!(r("1000").unwrap().home, "/home/app");
        assert_eq!(r("app:staff").unwrap().gid, 50);
        assert_eq!(
            r("4242:4343").unwrap(),
            User {
                uid: 4242,
                gid: 4343,
                groups: vec![4343],
                home: "/".into()
            }
        );
        assert!(
            r("ghost")
                .unwrap_err()
                .contains("unable to find user ghost")
        );
        assert!(
            r("app:nogroup")
                .unwrap_err()
                .contains("unable to find group")
        );
    }

    #[test]
    fn ids_past_2_pow_31_minus_1_are_refused_wherever_they_come_from() {
        // (uid_t)-1 would leave setresuid's ids unchanged: root.
        for spec in [
            "4294967295",
            "2147483648",
            "-1",
            "0:4294967295",
            "app:-1",
            "99999999999999999999",
        ] {
            let e = resolve_user_in(spec, PASSWD, GROUP).unwrap_err();
            assert!(e.contains(ID_RANGE), "{spec}: {e}");
            let e = check_user_ids(spec).unwrap_err();
            assert!(e.contains(ID_RANGE), "{spec}: {e}");
        }
        for spec in ["2147483647:2147483647", "0", "app", "app:staff", "-0", "+5"] {
            assert!(check_user_ids(spec).is_ok(), "{spec}");
        }
        assert_eq!(
            resolve_user_in("2147483647", PASSWD, GROUP).unwrap().uid,
            MAX_ID
        );
        // From the image's files: a user's uid or gid, the group named,
        // a supplementary group.
        let passwd =
            format!("{PASSWD}evil:x:4294967295:0::/:/bin/sh\nevilg:x:0:4294967295::/:/bin/sh\n");
        let group = format!("{GROUP}huge:x:4294967295:\nsup:x:2147483648:app\n");
        for spec in ["evil", "evilg", "0:huge", "app"] {
            let e = resolve_user_in(spec, &passwd, &group).unwrap_err();
            assert!(e.contains(ID_RANGE), "{spec}: {e}");
        }
        // Not listed: the others still resolve.
        assert_eq!(
            resolve_user_in("nobody", &passwd, &group).unwrap().uid,
            65534
        );
        assert_eq!(numeric_id("007"), Some(Ok(7)));
        assert_eq!(numeric_id("app"), None);
        assert_eq!(numeric_id("4294967295"), Some(Err(())));
    }

    #[test]
    fn supplementary_groups_stop_at_ngroups_max() {
        let mut group = String::from(GROUP);
        for g in 0..MAX_GROUPS - 2 {
            group.push_str(&format!("g{g}:x:{}:app\n", 100_000 + g));
        }
        // The primary group, wheel and these: exactly the limit.
        let u = resolve_user_in("app", PASSWD, &group).unwrap();
        assert_eq!(u.groups.len(), MAX_GROUPS);
        assert_eq!(&u.groups[..2], &[1000, 10]);
        group.push_str("one:x:99:app\n");
        let e = resolve_user_in("app", PASSWD, &group).unwrap_err();
        assert!(
            e.contains("supplementary groups") && e.contains("65536"),
            "{e}"
        );
        // Listed twice, taken once.
        let twice = format!("{GROUP}again:x:10:app\n");
        assert_eq!(
            resolve_user_in("app", PASSWD, &twice).unwrap().groups,
            vec![1000, 10]
        );
    }

    #[test]
    fn user_files_are_read_inside_the_root_regular_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let root_path = dir.path().join("root");
        std::fs::create_dir_all(root_path.join("etc")).unwrap();
        let outside = dir.path().join("outside");
        std::fs::write(&outside, "app:x:0:0::/:/bin/sh\n").unwrap();
        let root = nix::fcntl::open(
            &root_path,
            OFlag::O_DIRECTORY | OFlag::O_PATH | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .unwrap();
        // None: numbers still resolve.
        assert_eq!(resolve_user(&root, "42").unwrap().uid, 42);
        // A symlink out of the root stays in it.
        std::os::unix::fs::symlink("../../outside", root_path.join("etc/passwd")).unwrap();
        assert!(resolve_user(&root, "app").is_err());
        std::fs::remove_file(root_path.join("etc/passwd")).unwrap();
        // Through a descriptor: refused.
        let held = std::fs::File::open(dir.path()).unwrap();
        std::os::unix::fs::symlink(
            format!("/proc/self/fd/{}/outside", held.as_raw_fd()),
            root_path.join("etc/passwd"),
        )
        .unwrap();
        // (Absolute targets resolve inside the root, which has no /proc.)
        let e = resolve_user(&root, "app").unwrap_err();
        assert!(e.contains("unable to find user app"), "{e}");
        std::fs::remove_file(root_path.join("etc/passwd")).unwrap();
        // Through a magic link, as in a container with /proc: refused.
        let slash = open_root().unwrap();
        let e = read_user_file(
            &slash,
            &format!("/proc/self/fd/{}/outside", held.as_raw_fd()),
        )
        .unwrap_err();
        assert!(e.contains("descriptor"), "{e}");
        // Not a regular file.
        nix::unistd::mkfifo(
            &root_path.join("etc/passwd"),
            Mode::from_bits_truncate(0o644),
        )
        .unwrap();
        let e = resolve_user(&root, "0").unwrap_err();
        assert!(e.contains("not a regular file"), "{e}");
        std::fs::remove_file(root_path.join("etc/passwd")).unwrap();
        // At the bound, and past it.
        let mut passwd = String::from(PASSWD);
        passwd.push_str(&"#".repeat(MAX_USER_FILE as usize - PASSWD.len()));
        std::fs::write(root_path.join("etc/passwd"), &passwd).unwrap();
        assert_eq!(resolve_user(&root, "app").unwrap().uid, 1000);
        passwd.push('#');
        std::fs::write(root_path.join("etc/passwd"), &passwd).unwrap();
        let e = resolve_user(&root, "app").unwrap_err();
        assert!(e.contains("/etc/passwd") && e.contains("4 MiB"), "{e}");
        drop(held);
    }

    #[test]
    fn the_working_directory_is_resolved_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root_path = dir.path().join("root");
        std::fs::create_dir_all(root_path.join("tmp")).unwrap();
        let root = nix::fcntl::open(
            &root_path,
            OFlag::O_DIRECTORY | OFlag::O_PATH | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .unwrap();
        std::os::unix::fs::symlink("/tmp", root_path.join("t")).unwrap();
        std::os::unix::fs::symlink("../../../tmp", root_path.join("up")).unwrap();
        let held = std::fs::File::open(dir.path()).unwrap();
        let magic = format!("/proc/self/fd/{}", held.as_raw_fd());
        let resolved =
            |fd: OwnedFd| std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap();
        assert_eq!(
            resolved(open_cwd(&root, "/t", false).unwrap()),
            root_path.join("tmp")
        );
        // `..` and absolute links stop at the root: created inside it.
        assert_eq!(
            resolved(open_cwd(&root, "/up/x", true).unwrap()),
            root_path.join("tmp/x")
        );
        let e = open_cwd(&root, "/nonexistent", false).unwrap_err();
        assert!(e.contains("no such file or directory"), "{e}");
        // In a root with /proc (the host's, here): a descriptor's magic
        // link is no way out, whether given or reached through a symlink.
        let slash = open_root().unwrap();
        let via_dev = format!("/dev/fd/{}", held.as_raw_fd());
        for p in [
            magic.as_str(),
            &format!("{magic}/outside"),
            &via_dev,
            "/proc/self/cwd",
        ] {
            for create in [false, true] {
                let e = open_cwd(&slash, p, create).unwrap_err();
                assert!(e.contains("descriptor"), "{p}: {e}");
            }
        }
        drop(held);
    }

    #[test]
    fn interpreters_are_read_as_the_kernel_reads_them() {
        let i = |h: &[u8]| script_interpreter_in(h);
        assert_eq!(i(b"#!/bin/sh\necho\n").as_deref(), Some("/bin/sh"));
        assert_eq!(i(b"#! /bin/sh -e\n").as_deref(), Some("/bin/sh"));
        assert_eq!(
            i(b"#!\t/usr/bin/env python3\n").as_deref(),
            Some("/usr/bin/env")
        );
        assert_eq!(i(b"#!/proc/self/exe").as_deref(), Some("/proc/self/exe"));
        assert_eq!(i(b"#!rel/x\n").as_deref(), Some("rel/x"));
        assert_eq!(i(b"#!\n/bin/sh"), None);
        assert_eq!(i(b"#!   \n"), None);
        assert_eq!(i(b"\x7fELF\x02\x01"), None);
        assert_eq!(i(b"echo #!/bin/sh"), None);
    }

    #[test]
    fn programs_are_found_inside_the_root_and_never_through_a_magic_link() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        let write = |name: &str, text: &str, mode: u32| {
            let p = base.join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, text).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        let at = |name: &str| base.join(name).to_str().unwrap().to_string();
        write("bin/hello", "#!/bin/sh\necho hello\n", 0o755);
        write("bin/data", "not a program\n", 0o644);
        write("bin/shebang", "#!/proc/self/exe\n", 0o755);
        write("bad/tool", "#!/proc/self/fd/0\n", 0o755);
        write("good/tool", "#!/bin/sh\n", 0o755);
        std::os::unix::fs::symlink("/proc/self/exe", base.join("bin/selfexe")).unwrap();
        std::os::unix::fs::symlink(base.join("bin/selfexe"), base.join("bin/viaselfexe")).unwrap();
        write("bin/nested", &format!("#!{}\n", at("bin/shebang")), 0o755);
        write(
            "bin/nested2",
            &format!("#!{}\n", at("bin/viaselfexe")),
            0o755,
        );
        std::fs::create_dir_all(base.join("bin/adir")).unwrap();
        // This process's root has /proc, as a container's has.
        let root = open_root().unwrap();
        let check = |p: &str| check_program(&root, p, 0);
        assert_eq!(check(&at("bin/hello")), Checked::Runnable);
        assert_eq!(check("/bin/sh"), Checked::Runnable);
        assert_eq!(check(&at("bin/missing")), Checked::Missing);
        assert_eq!(check(&at("bin/data/x")), Checked::Missing);
        assert_eq!(check(&at("bin/data")), Checked::NotRunnable);
        assert_eq!(check(&at("bin/adir")), Checked::NotRunnable);
        for (p, says) in [
            ("/proc/self/exe".to_string(), "/proc/self/exe leads through"),
            (at("bin/selfexe"), "selfexe leads through"),
            (at("bin/viaselfexe"), "viaselfexe leads through"),
            ("/dev/fd/0".to_string(), "/dev/fd/0 leads through"),
            (at("bin/shebang"), "whose interpreter /proc/self/exe leads"),
            (at("bin/nested"), "whose interpreter /proc/self/exe leads"),
            (at("bin/nested2"), "whose interpreter"),
        ] {
            match check(&p) {
                Checked::Refused(why) => assert!(why.contains(says), "{p}: {why}"),
                other => panic!("{p}: {other:?}"),
            }
        }
        // In a root of its own, an absolute link stays in it: nothing there.
        let inner = nix::fcntl::open(
            base,
            OFlag::O_DIRECTORY | OFlag::O_PATH | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .unwrap();
        assert_eq!(check_program(&inner, "/bin/hello", 0), Checked::Runnable);
        assert_eq!(check_program(&inner, "/bin/selfexe", 0), Checked::Missing);

        // The PATH search: a refused candidate is skipped for a good one
        // later in PATH, and named when there is none (126); nothing at all
        // is Docker's 127.
        let env = |path: String| vec![format!("PATH={path}")];
        let run = |prog: &str, path: String| {
            prepare_exec(&root, &[prog.to_string()], &env(path)).map(|(p, ..)| p)
        };
        let p = run("tool", format!("{}:{}", at("bad"), at("good"))).unwrap();
        assert_eq!(p.to_str().unwrap(), at("good/tool"));
        let Failure(code, msg) = run("tool", at("bad")).unwrap_err();
        assert_eq!(code, 126, "{msg}");
        assert!(
            msg.contains("permission denied") && msg.contains("/proc/self/fd/0"),
            "{msg}"
        );
        let Failure(code, msg) = run("selfexe", at("bin")).unwrap_err();
        assert_eq!(code, 126, "{msg}");
        let Failure(code, msg) = run("data", at("bin")).unwrap_err();
        assert_eq!(code, 127, "{msg}");
        assert!(msg.contains("executable file not found in $PATH"), "{msg}");
        let Failure(code, msg) = run("/proc/self/exe", at("bin")).unwrap_err();
        assert_eq!(code, 126, "{msg}");
        assert!(
            msg.starts_with("exec: \"/proc/self/exe\": permission denied"),
            "{msg}"
        );
        let Failure(code, msg) = run(&at("bin/missing"), at("bin")).unwrap_err();
        assert_eq!(code, 127, "{msg}");
        assert!(msg.contains("no such file or directory"), "{msg}");
        let Failure(code, _) = run(&at("bin/data"), at("bin")).unwrap_err();
        assert_eq!(code, 126);
        assert_eq!(
            run("hello", at("bin")).unwrap().to_str().unwrap(),
            at("bin/hello")
        );
    }
}
