//! The end-to-end harness: a real `berthd` on a temp root and socket, driven
//! by the `berth` CLI, the real `docker` CLI and raw HTTP.
//!
//! Binaries come from the workspace's target directory (`cargo build
//! --workspace` first; `tests/run.sh` does). Samples come from `samples/out`,
//! built on first use with `samples/build.sh`.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Where cargo put the binaries: next to this test's own `deps/` dir.
/// `BERTH_TEST_CLI` names another `berth` to test instead (tests/run.sh
/// gives the statically linked one that releases ship).
pub fn bin(name: &str) -> PathBuf {
    if name == "berth"
        && let Some(cli) = std::env::var_os("BERTH_TEST_CLI")
    {
        let p = PathBuf::from(cli);
        assert!(p.exists(), "BERTH_TEST_CLI={} does not exist", p.display());
        return p;
    }
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let p = dir.join(name);
    assert!(
        p.exists(),
        "{} is missing: build the workspace first (cargo build --workspace)",
        p.display()
    );
    p
}

/// Is this CI? Then a missing prerequisite fails instead of skipping.
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// A sample module, building the samples once if needed.
pub fn sample(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let out = Command::new(repo_root().join("samples/build.sh"))
            .output()
            .expect("running samples/build.sh");
        assert!(
            out.status.success(),
            "samples/build.sh failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    });
    let p = repo_root().join("samples/out").join(name);
    assert!(p.exists(), "sample {} was not built", p.display());
    p
}

/// The busybox rootfs tarball, built once from Debian's busybox-static.
pub fn busybox_rootfs() -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let out = Command::new(repo_root().join("samples/busybox/build.sh"))
            .output()
            .expect("running samples/busybox/build.sh");
        assert!(
            out.status.success(),
            "samples/busybox/build.sh failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    });
    repo_root().join("samples/out/busybox-rootfs.tar")
}

/// Native containers need root (namespaces, mounts, cgroups). In CI a
/// non-root run fails; elsewhere the test is skipped with the reason.
pub fn native_ok() -> bool {
    if nix::unistd::Uid::effective().is_root() {
        return true;
    }
    assert!(!ci(), "native container tests need root in CI");
    eprintln!("skipping: native containers need root");
    false
}

pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub root: PathBuf,
    pub socket: PathBuf,
    child: Option<Child>,
    log: PathBuf,
    /// `--wasm-pool-slots` (64: tests never run more at once).
    pool_slots: u32,
    /// More berthd options, given again at each restart.
    extra_args: Vec<String>,
    /// Descriptors berthd inherits without close-on-exec, as a supervisor
    /// or a shell may leave them: (number, host path opened read-only).
    inherited: Vec<(i32, PathBuf)>,
}

impl Daemon {
    /// Starts berthd on a fresh root.
    pub fn start() -> Daemon {
        Daemon::start_with_pool(64)
    }

    /// Starts berthd on a fresh root with room for `slots` Wasm containers.
    pub fn start_with_pool(slots: u32) -> Daemon {
        Daemon::start_with(slots, &[])
    }

    /// Starts berthd on a fresh root with more options (kept for restarts).
    pub fn start_with_args(args: &[&str]) -> Daemon {
        Daemon::start_with(64, args)
    }

    /// Starts berthd on a fresh root holding, besides its stdio, each
    /// `(fd, path)` open (read-only, not close-on-exec) as descriptor `fd`:
    /// what a careless supervisor hands a daemon. Kept across restarts.
    pub fn start_inheriting(fds: &[(i32, &Path)]) -> Daemon {
        let mut d = Daemon::new(64, &[]);
        d.inherited = fds.iter().map(|(n, p)| (*n, p.to_path_buf())).collect();
        d.spawn();
        d
    }

    fn start_with(slots: u32, args: &[&str]) -> Daemon {
        let mut d = Daemon::new(slots, args);
        d.spawn();
        d
    }

    fn new(slots: u32, args: &[&str]) -> Daemon {
        let dir = tempfile::Builder::new()
            .prefix("berth-e2e-")
            .tempdir()
            .unwrap();
        let root = dir.path().join("root");
        let socket = dir.path().join("berth.sock");
        let log = dir.path().join("berthd.log");
        Daemon {
            dir,
            root,
            socket,
            child: None,
            log,
            pool_slots: slots,
            extra_args: args.iter().map(|a| a.to_string()).collect(),
            inherited: Vec::new(),
        }
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut cmd = Command::new(bin("berthd"));
        if !self.inherited.is_empty() {
            use std::os::unix::process::CommandExt;
            let fds: Vec<(i32, std::ffi::CString)> = self
                .inherited
                .iter()
                .map(|(n, p)| {
                    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
                    (*n, c)
                })
                .collect();
            // SAFETY: only open, dup2 and close (async-signal-safe) between
            // fork and exec, on paths prepared before the fork.
            unsafe {
                cmd.pre_exec(move || {
                    for (n, path) in &fds {
                        let fd = nix::libc::open(path.as_ptr(), nix::libc::O_RDONLY);
                        if fd < 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                        // dup2 leaves the copy without close-on-exec.
                        if fd != *n {
                            if nix::libc::dup2(fd, *n) < 0 {
                                return Err(std::io::Error::last_os_error());
                            }
                            nix::libc::close(fd);
                        } else {
                            nix::libc::fcntl(fd, nix::libc::F_SETFD, 0);
                        }
                    }
                    Ok(())
                });
            }
        }
        let child = cmd
            .arg("--root")
            .arg(&self.root)
            .arg("--host")
            .arg(self.host())
            .arg("--wasm-pool-slots")
            .arg(self.pool_slots.to_string())
            .args(&self.extra_args)
            .env("BERTH_LOG", "berth=debug,info")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting berthd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            // An answer, not a connect: after a crash, a child the dead
            // berthd was spawning may hold its listener for a moment.
            if self.answers_ping() {
                return;
            }
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("berthd exited early ({st}):\n{}", self.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "berthd did not listen in time:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Does a daemon answer `HEAD /_ping` on the socket?
    fn answers_ping(&self) -> bool {
        let Ok(mut c) = UnixStream::connect(&self.socket) else {
            return false;
        };
        let _ = c.set_read_timeout(Some(Duration::from_millis(500)));
        let mut head = [0u8; 5];
        c.write_all(b"HEAD /_ping HTTP/1.1\r\nHost: berthd\r\nConnection: close\r\n\r\n")
            .is_ok()
            && c.read_exact(&mut head).is_ok()
            && &head == b"HTTP/"
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops berthd with SIGTERM and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if c.try_wait().unwrap().is_some() {
                    break;
                }
                if Instant::now() > deadline {
                    let _ = c.kill();
                    let _ = c.wait();
                    panic!("berthd did not stop on SIGTERM:\n{}", self.log_text());
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    /// Kills berthd with SIGKILL, as a crash would.
    pub fn crash(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "berthd still running");
        self.spawn();
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// `berth -H <this daemon> ARGS...`
    pub fn berth(&self, args: &[&str]) -> Output {
        self.berth_cmd(args).output().unwrap()
    }

    pub fn berth_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin("berth"));
        c.arg("-H").arg(self.host()).args(args);
        c.stdin(Stdio::null());
        c
    }

    /// Runs berth and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.berth(args);
        assert!(
            out.status.success(),
            "berth {args:?} failed ({}):\nstdout: {}\nstderr: {}\ndaemon log:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            tail(&self.log_text(), 40)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Imports the busybox rootfs as `busybox:latest`, as Docker Hub's
    /// busybox image is configured (`CMD ["sh"]`).
    pub fn busybox(&self) {
        let tar = busybox_rootfs();
        self.ok(&[
            "import",
            "-c",
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "-c",
            "CMD [\"sh\"]",
            tar.to_str().unwrap(),
            "busybox:latest",
        ]);
    }

    /// Imports a sample as an image.
    pub fn import(&self, sample_name: &str, tag: &str) {
        let path = sample(sample_name);
        self.ok(&["wasm", "import", path.to_str().unwrap(), tag]);
    }

    /// `docker -H <this daemon> ARGS...`, if the docker CLI is installed.
    pub fn docker(&self, args: &[&str]) -> Option<Output> {
        let docker = which("docker")?;
        Some(
            Command::new(docker)
                .arg("-H")
                .arg(self.host())
                .args(args)
                .env("DOCKER_CONFIG", self.dir.path().join("docker-config"))
                .stdin(Stdio::null())
                .output()
                .unwrap(),
        )
    }

    /// One HTTP request over the socket; returns status, headers and body
    /// (chunked bodies decoded).
    pub fn http(&self, method: &str, path: &str, body: Option<(&str, &[u8])>) -> HttpResponse {
        let mut s = UnixStream::connect(&self.socket).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n");
        if let Some((ct, b)) = body {
            req.push_str(&format!(
                "Content-Type: {ct}\r\nContent-Length: {}\r\n",
                b.len()
            ));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).unwrap();
        if let Some((_, b)) = body {
            s.write_all(b).unwrap();
        }
        read_response(s)
    }

    pub fn inspect(&self, name: &str) -> serde_json::Value {
        let r = self.http("GET", &format!("/v1.47/containers/{name}/json"), None);
        assert_eq!(
            r.status,
            200,
            "inspect {name}: {}\ndaemon log:\n{}",
            r.text(),
            tail(&self.log_text(), 60)
        );
        r.json()
    }

    /// Polls `f` until it is true or 10 s pass.
    pub fn eventually(&self, what: &str, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !f() {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}\ndaemon log:\n{}",
                tail(&self.log_text(), 40)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    /// A clean stop: berthd stops its containers on SIGTERM, so no native
    /// container outlives the test that made it.
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let deadline = Instant::now() + Duration::from_secs(20);
            while c.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// The `message` of a Docker error body.
    pub fn message(&self) -> String {
        self.json()["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

fn read_response(s: UnixStream) -> HttpResponse {
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("bad status line {line:?}"))
        .parse()
        .unwrap();
    let mut headers = Vec::new();
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':').unwrap();
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            r.read_line(&mut line).unwrap();
            let n = usize::from_str_radix(line.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            let mut chunk = vec![0u8; n];
            r.read_exact(&mut chunk).unwrap();
            body.extend_from_slice(&chunk);
            line.clear();
            r.read_line(&mut line).unwrap();
        }
    } else if status != 204 && status != 304 {
        let _ = r.read_to_end(&mut body);
    }
    HttpResponse {
        status,
        headers,
        body,
    }
}

pub fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(tool))
            .find(|p| p.is_file())
    })
}

/// A required tool: in CI its absence fails the test; elsewhere the test
/// is skipped with the reason printed.
pub fn require(tool: &str) -> Option<PathBuf> {
    match which(tool) {
        Some(p) => Some(p),
        None if ci() => panic!("{tool} is required in CI but is not installed"),
        None => {
            eprintln!("skipping: {tool} is not installed");
            None
        }
    }
}

pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Waits for a child for at most `secs`, killing it (and failing) after.
pub fn wait_timeout(mut child: Child, secs: u64, what: &str) -> Output {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{what} did not finish in {secs} s\nstdout: {}\nstderr: {}",
                stdout(&out),
                stderr(&out)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
