//! Registries end to end: push, pull and run through the real distribution
//! registry (Debian's `docker-registry`), without auth and with htpasswd
//! basic auth; logins shared with the docker CLI; images pushed by skopeo
//! (including a multi-platform index with a Linux and a Wasm variant); and
//! a small fake registry that serves corrupt blobs or stalls, for the
//! failures a real one will not produce on demand.

use crate::harness::*;
use crate::images::{self, Layer};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// `alice:s3cret`, bcrypt as htpasswd wants it, made with
/// `perl -e 'print crypt("s3cret", q($2y$05$abcdefghijklmnopqrstuu))'`
/// (libcrypt does bcrypt; no apache2-utils needed).
const HTPASSWD: &str = "alice:$2y$05$abcdefghijklmnopqrstuuLK7U1u6pVRmL7L1BBM2aS35PSZnDXlK\n";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The distribution registry on a free loopback port, stopped on drop.
pub(crate) struct DistRegistry {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl DistRegistry {
    pub(crate) fn start(with_auth: bool) -> Option<DistRegistry> {
        let bin = require("docker-registry")?;
        let dir = tempfile::Builder::new()
            .prefix("berth-registry-")
            .tempdir()
            .unwrap();
        let port = free_port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        );
        if with_auth {
            let pw = dir.path().join("htpasswd");
            std::fs::write(&pw, HTPASSWD).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                pw.display()
            ));
        }
        let cfg = dir.path().join("config.yml");
        std::fs::write(&cfg, config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new(bin)
            .arg("serve")
            .arg(&cfg)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting docker-registry");
        let mut r = DistRegistry { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while http_status(port, "/v2/").is_none() {
            if let Some(st) = r.child.try_wait().unwrap() {
                panic!("docker-registry exited ({st}):\n{}", r.log());
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry did not start:\n{}",
                r.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(r)
    }

    pub(crate) fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }
}

impl Drop for DistRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The status of `GET path` on a loopback port, if anything answers.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).ok()?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// berth with its own Docker config directory (never the user's).
struct Cli<'a> {
    d: &'a Daemon,
    config: PathBuf,
}

impl<'a> Cli<'a> {
    fn new(d: &'a Daemon) -> Cli<'a> {
        Cli {
            d,
            config: d.dir.path().join("docker-config"),
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = self.d.berth_cmd(args);
        c.env("DOCKER_CONFIG", &self.config);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "berth {args:?} failed ({}):\nstdout: {}\nstderr: {}\ndaemon log:\n{}",
            out.status,
            stdout(&out),
            stderr(&out),
            tail(&self.d.log_text(), 40)
        );
        stdout(&out)
    }

    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "berth {args:?} should fail:\n{}",
            stdout(&out)
        );
        stderr(&out)
    }

    fn with_stdin(&self, args: &[&str], input: &str) -> Output {
        let mut c = self.cmd(args);
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    fn config_json(&self) -> Option<Value> {
        std::fs::read(self.config.join("config.json"))
            .ok()
            .map(|b| serde_json::from_slice(&b).unwrap())
    }
}

fn inspect_image(d: &Daemon, name: &str) -> Value {
    let r = d.http("GET", &format!("/images/{name}/json"), None);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

fn image_count(d: &Daemon) -> usize {
    d.http("GET", "/images/json", None)
        .json()
        .as_array()
        .unwrap()
        .len()
}

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Push, remove, pull, run: a Wasm artifact always, busybox as root.
fn round_trip(d: &Daemon, cli: &Cli, reg: &str) {
    let hello = format!("{reg}/hello:v1");
    d.import("hello.wasm", &hello);
    let out = cli.ok(&["push", &hello]);
    assert!(
        out.contains(&format!("The push refers to repository [{reg}/hello]")),
        "{out}"
    );
    assert!(out.contains("Pushed"), "{out}");
    let pushed = out
        .lines()
        .find_map(|l| l.strip_prefix("v1: digest: "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no digest line:\n{out}"))
        .to_string();
    // A second push finds everything there.
    let again = cli.ok(&["push", &hello]);
    assert!(again.contains("Layer already exists"), "{again}");
    cli.ok(&["rmi", &hello]);
    assert_eq!(
        image_count(d),
        0,
        "{}",
        cli.ok(&["images", "-a", "--digests"])
    );
    let out = cli.ok(&["pull", &hello]);
    assert!(out.contains("v1: Pulling from hello"), "{out}");
    assert!(out.contains(&format!("Digest: {pushed}")), "{out}");
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {hello}")),
        "{out}"
    );
    assert_eq!(
        d.ok(&["run", "--rm", &hello]).lines().next(),
        Some("Hello from Wasm!")
    );
    let insp = inspect_image(d, &hello);
    assert_eq!(
        insp["RepoDigests"],
        json!([format!("{reg}/hello@{pushed}")])
    );
    assert_eq!(insp["Executor"], "wasm");
    let digests = cli.ok(&["images", "--digests"]);
    assert!(digests.contains(&pushed), "{digests}");
    let out = cli.ok(&["pull", &hello]);
    assert!(out.contains("Status: Image is up to date"), "{out}");

    if !native_ok() {
        return;
    }
    d.busybox();
    let bb = format!("{reg}/busybox:latest");
    cli.ok(&["tag", "busybox", &bb]);
    let out = cli.ok(&["push", &bb]);
    let digest = out
        .lines()
        .find_map(|l| l.strip_prefix("latest: digest: "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string();
    cli.ok(&["rmi", &bb, "busybox"]);
    let out = cli.ok(&["pull", &bb]);
    assert!(out.contains("Pull complete"), "{out}");
    assert_eq!(
        cli.ok(&["run", "--rm", &bb, "echo", "pulled busybox"]),
        "pulled busybox\n"
    );
    assert_eq!(
        inspect_image(d, &bb)["RepoDigests"],
        json!([format!("{reg}/busybox@{digest}")])
    );
    // `run` pulls an image that is not here, its progress on stderr.
    cli.ok(&["rmi", &bb]);
    let out = cli.run(&["run", "--rm", &bb, "echo", "auto-pulled"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "auto-pulled\n");
    let err = stderr(&out);
    assert!(
        err.contains(&format!("Unable to find image '{bb}' locally"))
            && err.contains(&format!("Status: Downloaded newer image for {bb}")),
        "{err}"
    );
    // `--pull never` does not.
    cli.ok(&["rmi", &bb]);
    // Removing the last image that uses a layer removes it unpacked too.
    let unpacked: Vec<_> = std::fs::read_dir(d.root.join("layers"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit()))
        .collect();
    assert!(unpacked.is_empty(), "{unpacked:?}");
    let err = cli.fails(&["run", "--rm", "--pull", "never", &bb, "true"]);
    assert!(err.contains("No such image"), "{err}");
    assert_eq!(image_count(d), 1, "only hello is left");
    cli.ok(&["pull", "-q", &bb]);
}

#[test]
fn push_pull_and_run_through_a_registry() {
    let Some(reg) = DistRegistry::start(false) else {
        return;
    };
    let d = Daemon::start();
    let cli = Cli::new(&d);
    round_trip(&d, &cli, &reg.host());
    // skopeo reads back what berth pushed, with the same digest.
    let Some(skopeo) = require("skopeo") else {
        return;
    };
    let raw = Command::new(&skopeo)
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{}/hello:v1", reg.host()))
        .output()
        .unwrap();
    assert!(raw.status.success(), "{}", stderr(&raw));
    let local = inspect_image(&d, &format!("{}/hello:v1", reg.host()));
    let want = local["RepoDigests"][0]
        .as_str()
        .unwrap()
        .split('@')
        .nth(1)
        .unwrap()
        .to_string();
    assert_eq!(
        images::sha(&raw.stdout),
        want,
        "the artifact's manifest as pushed"
    );
    let m: Value = serde_json::from_slice(&raw.stdout).unwrap();
    assert_eq!(m["artifactType"], "application/vnd.wasm.config.v0+json");
    assert_eq!(m["layers"][0]["mediaType"], "application/wasm");
    if native_ok() {
        let out = Command::new(&skopeo)
            .args(["inspect", "--tls-verify=false"])
            .arg(format!("docker://{}/busybox:latest", reg.host()))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let local = inspect_image(&d, &format!("{}/busybox:latest", reg.host()));
        assert_eq!(
            format!("{}/busybox@{}", reg.host(), v["Digest"].as_str().unwrap()),
            local["RepoDigests"][0].as_str().unwrap()
        );
    }
}

#[test]
fn basic_auth_login_push_pull_and_wrong_password() {
    let Some(reg) = DistRegistry::start(true) else {
        return;
    };
    let d = Daemon::start();
    let cli = Cli::new(&d);
    let host = reg.host();
    d.import("hello.wasm", &format!("{host}/hello:v1"));
    // Without credentials: refused, with a hint.
    let err = cli.fails(&["push", &format!("{host}/hello:v1")]);
    assert!(err.contains("unauthorized") || err.contains("401"), "{err}");
    assert!(err.contains("berth login"), "{err}");
    cli.ok(&["rmi", &format!("{host}/hello:v1")]);
    // A wrong password: a clear error, nothing written.
    let out = cli.with_stdin(
        &["login", "-u", "alice", "--password-stdin", &host],
        "wrong\n",
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&format!(
            "login attempt to http://{host}/v2/ failed with status: 401 Unauthorized"
        )),
        "{}",
        stderr(&out)
    );
    assert!(
        cli.config_json().is_none(),
        "nothing written: {:?}",
        cli.config_json()
    );
    // The daemon answers 401 itself too.
    let r = d.http(
        "POST",
        "/auth",
        Some((
            "application/json",
            json!({"username": "alice", "password": "nope", "serveraddress": host})
                .to_string()
                .as_bytes(),
        )),
    );
    assert_eq!(r.status, 401, "{}", r.text());
    // The right one.
    let out = cli.with_stdin(
        &["login", "-u", "alice", "--password-stdin", &host],
        "s3cret\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "Login Succeeded");
    let cfg = cli.config_json().unwrap();
    assert_eq!(cfg["auths"][&host]["auth"], "YWxpY2U6czNjcmV0", "{cfg}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(cli.config.join("config.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "config.json is private");
    round_trip(&d, &cli, &host);
    // Logged out: pulls are refused again.
    assert!(
        cli.ok(&["logout", &host])
            .contains("Removing login credentials")
    );
    cli.ok(&["rmi", &format!("{host}/hello:v1")]);
    let err = cli.fails(&["pull", &format!("{host}/hello:v1")]);
    assert!(err.contains("unauthorized") || err.contains("401"), "{err}");
    // X-Registry-Auth from another client works, and is honoured.
    let header = base64_url(
        &json!({"username": "alice", "password": "s3cret", "serveraddress": host}).to_string(),
    );
    let r = http_with(
        &d,
        "POST",
        &format!("/images/create?fromImage={host}/hello&tag=v1"),
        &[("X-Registry-Auth", &header)],
    );
    assert_eq!(r.0, 200, "{}", r.1);
    assert!(r.1.contains("Status: Downloaded newer image"), "{}", r.1);
    // Credentials named for another registry are not sent to this one.
    cli.ok(&["rmi", &format!("{host}/hello:v1")]);
    let other = base64_url(
        &json!({"username": "alice", "password": "s3cret", "serveraddress": "elsewhere.example"})
            .to_string(),
    );
    let r = http_with(
        &d,
        "POST",
        &format!("/images/create?fromImage={host}/hello&tag=v1"),
        &[("X-Registry-Auth", &other)],
    );
    assert_eq!(r.0, 401, "{}", r.1);
}

fn base64_url(s: &str) -> String {
    // A tiny encoder: the test crate has no base64 dependency.
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let b = s.as_bytes();
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A request over the daemon's socket with extra headers; status and body
/// (chunked bodies decoded).
fn http_with(d: &Daemon, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut s = std::os::unix::net::UnixStream::connect(&d.socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("Content-Length: 0\r\n\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    (status, body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].strip_prefix("\r\n").unwrap_or(&rest[n..]);
    }
    out
}

#[test]
fn the_docker_cli_logs_in_pulls_and_pushes_through_berthd() {
    let Some(docker) = require("docker") else {
        return;
    };
    let Some(open) = DistRegistry::start(false) else {
        return;
    };
    let Some(locked) = DistRegistry::start(true) else {
        return;
    };
    let d = Daemon::start();
    let cli = Cli::new(&d);
    let docker_cmd = |args: &[&str]| {
        let mut c = Command::new(&docker);
        c.arg("-H")
            .arg(d.host())
            .args(args)
            .env("DOCKER_CONFIG", &cli.config)
            .stdin(Stdio::null());
        c
    };
    let hello = format!("{}/hello:latest", open.host());
    d.import("hello.wasm", &hello);
    let out = docker_cmd(&["push", &hello]).output().unwrap();
    assert!(out.status.success(), "docker push: {}", stderr(&out));
    assert!(
        stdout(&out).contains("latest: digest: sha256:"),
        "{}",
        stdout(&out)
    );
    cli.ok(&["rmi", &hello]);
    let out = docker_cmd(&["pull", &hello]).output().unwrap();
    assert!(
        out.status.success(),
        "docker pull: {}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("Downloaded newer image"),
        "{}",
        stdout(&out)
    );
    let out = docker_cmd(&["run", "--rm", &hello]).output().unwrap();
    assert!(
        stdout(&out).contains("Hello from Wasm!"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let out = docker_cmd(&["pull", &format!("{}/nothing-here", open.host())])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("not found"), "{}", stderr(&out));

    // `docker login` against berthd: verified by the registry, written by
    // docker; berth then uses what docker stored.
    let mut c = docker_cmd(&["login", "-u", "alice", "--password-stdin", &locked.host()]);
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"s3cret\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "docker login: {}", stderr(&out));
    assert!(stdout(&out).contains("Login Succeeded"), "{}", stdout(&out));
    assert!(cli.config_json().unwrap()["auths"][&locked.host()]["auth"].is_string());
    let priv_ref = format!("{}/hello:v2", locked.host());
    cli.ok(&["tag", &hello, &priv_ref]);
    cli.ok(&["push", &priv_ref]);
    cli.ok(&["rmi", &priv_ref]);
    let out = docker_cmd(&["pull", &priv_ref]).output().unwrap();
    assert!(
        out.status.success(),
        "docker pull with docker's login: {}",
        stderr(&out)
    );
    cli.ok(&["rmi", &priv_ref]);
    cli.ok(&["pull", &priv_ref]);
}

/// Writes `data` into an OCI layout's blobs; its digest.
fn put_blob(layout: &Path, data: &[u8]) -> String {
    let d = images::sha(data);
    let dir = layout.join("blobs/sha256");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(d.strip_prefix("sha256:").unwrap()), data).unwrap();
    d
}

fn descriptor(media_type: &str, data: &[u8]) -> Value {
    json!({"mediaType": media_type, "digest": images::sha(data), "size": data.len()})
}

/// An OCI layout directory whose `tag` is an index of a Linux busybox
/// image (printing "native variant") and the Wasm artifact of hello.wasm.
fn multi_platform_layout(dir: &Path, tag: &str) {
    let rootfs = std::fs::read(busybox_rootfs()).unwrap();
    let native_cfg = serde_json::to_vec(&json!({
        "architecture": host_arch(), "os": "linux",
        "config": {"Env": ["PATH=/bin:/usr/bin"], "Cmd": ["echo", "native variant"]},
        "rootfs": {"type": "layers", "diff_ids": [images::sha(&rootfs)]},
    }))
    .unwrap();
    put_blob(dir, &rootfs);
    put_blob(dir, &native_cfg);
    let native = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": descriptor("application/vnd.oci.image.config.v1+json", &native_cfg),
        "layers": [descriptor("application/vnd.oci.image.layer.v1.tar", &rootfs)],
    }))
    .unwrap();
    put_blob(dir, &native);
    let module = std::fs::read(sample("hello.wasm")).unwrap();
    let wasm_cfg = serde_json::to_vec(&json!({
        "architecture": "wasm", "os": "wasip1", "layerDigests": [images::sha(&module)],
    }))
    .unwrap();
    put_blob(dir, &module);
    put_blob(dir, &wasm_cfg);
    let mut layer = descriptor("application/wasm", &module);
    layer["annotations"] = json!({"org.opencontainers.image.title": "hello.wasm"});
    let wasm = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.wasm.config.v0+json",
        "config": descriptor("application/vnd.wasm.config.v0+json", &wasm_cfg),
        "layers": [layer],
    }))
    .unwrap();
    put_blob(dir, &wasm);
    let mut n = descriptor("application/vnd.oci.image.manifest.v1+json", &native);
    n["platform"] = json!({"os": "linux", "architecture": host_arch()});
    let mut w = descriptor("application/vnd.oci.image.manifest.v1+json", &wasm);
    w["platform"] = json!({"os": "wasi", "architecture": "wasm"});
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [n, w],
    }))
    .unwrap();
    put_blob(dir, &index);
    let mut top = descriptor("application/vnd.oci.image.index.v1+json", &index);
    top["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [top]})).unwrap(),
    )
    .unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
}

fn skopeo_copy(skopeo: &Path, args: &[&str]) {
    let out = Command::new(skopeo)
        .args(["copy", "--quiet", "--dest-tls-verify=false"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo copy {args:?}: {}{}",
        stdout(&out),
        stderr(&out)
    );
}

#[test]
fn a_multi_platform_index_pushed_by_skopeo_runs_either_way() {
    let Some(skopeo) = require("skopeo") else {
        return;
    };
    let Some(reg) = DistRegistry::start(false) else {
        return;
    };
    let d = Daemon::start();
    let cli = Cli::new(&d);
    let layout = d.dir.path().join("multi-layout");
    multi_platform_layout(&layout, "multi");
    let app = format!("{}/app:multi", reg.host());
    skopeo_copy(
        &skopeo,
        &[
            "--all",
            &format!("oci:{}:multi", layout.display()),
            &format!("docker://{app}"),
        ],
    );
    // What the registry holds under the tag is the index.
    let raw = Command::new(&skopeo)
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{app}"))
        .output()
        .unwrap();
    assert!(raw.status.success(), "{}", stderr(&raw));
    let index: Value = serde_json::from_slice(&raw.stdout).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 2, "{index}");
    let index_digest = images::sha(&raw.stdout);
    // The Wasm variant, asked for.
    let out = cli.ok(&["pull", "--platform", "wasi/wasm", &app]);
    assert!(out.contains(&format!("Digest: {index_digest}")), "{out}");
    let insp = inspect_image(&d, &app);
    assert_eq!(insp["Executor"], "wasm");
    assert_eq!(
        insp["RepoDigests"],
        json!([format!("{}/app@{index_digest}", reg.host())])
    );
    assert_eq!(
        cli.ok(&["run", "--rm", &app]).lines().next(),
        Some("Hello from Wasm!")
    );
    // No such platform: a clear error naming what there is.
    let err = cli.fails(&["pull", "--platform", "linux/s390x", &app]);
    assert!(
        err.contains("no matching manifest for linux/s390x"),
        "{err}"
    );
    assert!(err.contains("wasi/wasm"), "{err}");
    // The host's variant by default.
    let out = cli.ok(&["pull", &app]);
    assert!(out.contains("Downloaded newer image"), "{out}");
    assert_eq!(inspect_image(&d, &app)["Executor"], "native");
    if native_ok() {
        assert_eq!(cli.ok(&["run", "--rm", &app]), "native variant\n");
    }
}

#[test]
fn wasm_forms_and_docker_archives_pushed_by_skopeo_pull_and_run() {
    let Some(skopeo) = require("skopeo") else {
        return;
    };
    let Some(reg) = DistRegistry::start(false) else {
        return;
    };
    let d = Daemon::start();
    let cli = Cli::new(&d);
    let host = reg.host();
    let module = std::fs::read(sample("hello.wasm")).unwrap();
    // A WASI image with an ordinary tar layer whose entrypoint is the module.
    let rootfs_form = images::oci_layout(
        "docker.io/library/wasi-rootfs:latest",
        "application/vnd.oci.image.config.v1+json",
        &json!({
            "architecture": "wasm", "os": "wasip1",
            "config": {"Entrypoint": ["/hello.wasm"]},
            "rootfs": {"type": "layers", "diff_ids": [images::sha(&images::tar_with_file("hello.wasm", &module))]},
        }),
        &[Layer::new(
            "application/vnd.oci.image.layer.v1.tar",
            images::tar_with_file("hello.wasm", &module),
        )],
        json!({}),
    );
    let tar = d.dir.path().join("rootfs-form.tar");
    std::fs::write(&tar, rootfs_form).unwrap();
    let wasi = format!("{host}/wasi-rootfs:1");
    skopeo_copy(
        &skopeo,
        &[
            &format!("oci-archive:{}", tar.display()),
            &format!("docker://{wasi}"),
        ],
    );
    cli.ok(&["pull", &wasi]);
    assert_eq!(inspect_image(&d, &wasi)["Executor"], "wasm");
    assert_eq!(
        cli.ok(&["run", "--rm", &wasi]).lines().next(),
        Some("Hello from Wasm!")
    );
    // A component in the bytecodealliance layer type.
    let component = std::fs::read(sample("hello-p2.wasm")).unwrap();
    let cfg = json!({"architecture": "wasm", "os": "wasip2"});
    let comp_layout = images::oci_layout(
        "docker.io/library/comp:latest",
        "application/vnd.oci.image.config.v1+json",
        &cfg,
        &[Layer::new(
            "application/vnd.bytecodealliance.wasm.component.layer.v0+wasm",
            component,
        )],
        json!({}),
    );
    let tar = d.dir.path().join("component.tar");
    std::fs::write(&tar, comp_layout).unwrap();
    let comp = format!("{host}/comp:1");
    skopeo_copy(
        &skopeo,
        &[
            &format!("oci-archive:{}", tar.display()),
            &format!("docker://{comp}"),
        ],
    );
    cli.ok(&["pull", &comp]);
    assert_eq!(inspect_image(&d, &comp)["Executor"], "wasm");
    let out = cli.ok(&["run", "--rm", &comp]);
    assert!(out.starts_with("Hello from a component!"), "{out}");

    // A `berth save` archive pushed by skopeo, as a Docker schema 2 image.
    if !native_ok() {
        return;
    }
    d.busybox();
    let saved = d.dir.path().join("busybox.tar");
    cli.ok(&["save", "-o", saved.to_str().unwrap(), "busybox"]);
    cli.ok(&["rmi", "busybox"]);
    let sk = format!("{host}/from-skopeo:1");
    skopeo_copy(
        &skopeo,
        &[
            &format!("docker-archive:{}", saved.display()),
            &format!("docker://{sk}"),
        ],
    );
    cli.ok(&["pull", &sk]);
    assert_eq!(
        cli.ok(&["run", "--rm", &sk, "echo", "from skopeo"]),
        "from skopeo\n"
    );
}

// ---------------------------------------------------------------------------
// A fake registry, for corrupt and stalled blobs.

#[derive(Default)]
struct FakeState {
    /// Tag or digest to (media type, bytes).
    manifests: HashMap<String, (String, Vec<u8>)>,
    /// Digest to the bytes served for it (corrupt ones included).
    blobs: HashMap<String, Vec<u8>>,
    /// A blob that is served half, then held until released.
    stall: Mutex<Option<String>>,
    released: (Mutex<bool>, Condvar),
    stalls_started: AtomicUsize,
    /// Stalled responses whose client went away.
    stalls_abandoned: AtomicUsize,
    /// Requests for paths ending in this are answered one byte every
    /// 100 ms, until cleared.
    trickle: Mutex<Option<String>>,
    trickles_started: AtomicUsize,
    /// Requests for paths ending in this get no answer at all, until
    /// cleared or their client goes.
    hang: Mutex<Option<String>>,
    /// GET requests per path.
    gets: Mutex<HashMap<String, usize>>,
    /// Answer `Range: bytes=N-` with 206, as the distribution registry
    /// does (berth then checks the data alone; without, oci-client too).
    ranges: bool,
    /// The `Authorization` the `/v2/` routes insist on, and the challenge
    /// sent without it.
    require: Option<(String, String)>,
    /// Blob requests are redirected to this base URL.
    redirect_blobs: Option<String>,
    /// The `Authorization` of every request, by path (`/token` answers a
    /// token to anyone).
    seen_auth: Mutex<Vec<(String, Option<String>)>>,
    stop: AtomicBool,
}

struct FakeRegistry {
    ip: &'static str,
    port: u16,
    state: Arc<FakeState>,
}

impl FakeRegistry {
    fn start(state: FakeState) -> FakeRegistry {
        Self::start_on("127.0.0.1", state)
    }

    /// On another loopback address: another host, as far as credentials
    /// are concerned.
    fn start_on(ip: &'static str, state: FakeState) -> FakeRegistry {
        Self::serve_on(ip, TcpListener::bind((ip, 0)).unwrap(), state)
    }

    /// On a given port of 127.0.0.1.
    fn start_at(port: u16, state: FakeState) -> FakeRegistry {
        Self::serve_on(
            "127.0.0.1",
            TcpListener::bind(("127.0.0.1", port)).unwrap(),
            state,
        )
    }

    fn serve_on(ip: &'static str, listener: TcpListener, state: FakeState) -> FakeRegistry {
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(state);
        let st = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let st = st.clone();
                std::thread::spawn(move || serve(conn, &st));
            }
        });
        FakeRegistry { ip, port, state }
    }

    fn host(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    /// The `Authorization` headers requests to paths ending in `suffix`
    /// carried.
    fn auth_seen(&self, suffix: &str) -> Vec<Option<String>> {
        self.state
            .seen_auth
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p.split('?').next().unwrap_or("").ends_with(suffix))
            .map(|(_, a)| a.clone())
            .collect()
    }

    fn gets(&self, path_suffix: &str) -> usize {
        self.state
            .gets
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p.ends_with(path_suffix))
            .map(|(_, n)| n)
            .sum()
    }

    fn release(&self) {
        *self.state.stall.lock().unwrap() = None;
        let (m, cv) = &self.state.released;
        *m.lock().unwrap() = true;
        cv.notify_all();
    }

    fn wait_for(&self, what: &str, f: impl Fn(&FakeState) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !f(&self.state) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for FakeRegistry {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        self.release();
        let _ = TcpStream::connect((self.ip, self.port));
    }
}

fn serve(mut conn: TcpStream, st: &FakeState) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let mut range_start: Option<usize> = None;
    let mut authorization: Option<String> = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
        let Some((k, v)) = h.split_once(':') else {
            continue;
        };
        if k.trim().eq_ignore_ascii_case("range") {
            range_start = v
                .trim()
                .strip_prefix("bytes=")
                .and_then(|r| r.strip_suffix('-'))
                .and_then(|n| n.parse().ok());
        } else if k.trim().eq_ignore_ascii_case("authorization") {
            authorization = Some(v.trim().to_string());
        }
    }
    st.seen_auth
        .lock()
        .unwrap()
        .push((path.clone(), authorization.clone()));
    if method == "GET" {
        *st.gets.lock().unwrap().entry(path.clone()).or_default() += 1;
    }
    let respond = |conn: &mut TcpStream, status: &str, headers: &[(&str, String)], body: &[u8]| {
        let mut head = format!(
            "HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let _ = conn.write_all(head.as_bytes());
        if method != "HEAD" {
            let _ = conn.write_all(body);
        }
    };
    let not_found = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#;
    if path.starts_with("/token") {
        return respond(
            &mut conn,
            "200 OK",
            &[("Content-Type", "application/json".into())],
            br#"{"token":"t0k","access_token":"t0k","expires_in":300}"#,
        );
    }
    if let Some((want, challenge)) = &st.require
        && authorization.as_deref() != Some(want.as_str())
    {
        return respond(
            &mut conn,
            "401 Unauthorized",
            &[
                ("WWW-Authenticate", challenge.clone()),
                ("Content-Type", "application/json".into()),
            ],
            br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
        );
    }
    if let Some(base) = &st.redirect_blobs
        && path.contains("/blobs/")
    {
        return respond(
            &mut conn,
            "307 Temporary Redirect",
            &[("Location", format!("{base}{path}"))],
            b"",
        );
    }
    if st
        .hang
        .lock()
        .unwrap()
        .as_deref()
        .is_some_and(|h| path.ends_with(h))
    {
        // Headers never come; the client gives up or the test moves on.
        conn.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let mut b = [0u8; 1];
        while st
            .hang
            .lock()
            .unwrap()
            .as_deref()
            .is_some_and(|h| path.ends_with(h))
            && !st.stop.load(Ordering::SeqCst)
        {
            match conn.read(&mut b) {
                Ok(0) => return,
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                _ => return,
            }
        }
        return;
    }
    let trickled = |p: &str| {
        st.trickle
            .lock()
            .unwrap()
            .as_deref()
            .is_some_and(|t| p.ends_with(t))
    };
    if method == "GET" && trickled(&path) {
        let found = match path.split_once("/manifests/") {
            Some((_, r)) => st.manifests.get(r).cloned(),
            None => path.split_once("/blobs/").and_then(|(_, d)| {
                st.blobs
                    .get(d)
                    .map(|b| ("application/octet-stream".to_string(), b.clone()))
            }),
        };
        if let Some((ct, body)) = found {
            let head = format!(
                "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: {}\r\nContent-Type: {ct}\r\nDocker-Content-Digest: {}\r\n\r\n",
                body.len(),
                images::sha(&body)
            );
            let _ = conn.write_all(head.as_bytes());
            st.trickles_started.fetch_add(1, Ordering::SeqCst);
            for (i, b) in body.iter().enumerate() {
                if !trickled(&path) || st.stop.load(Ordering::SeqCst) {
                    let _ = conn.write_all(&body[i..]);
                    return;
                }
                if conn.write_all(&[*b]).and_then(|()| conn.flush()).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            return;
        }
    }
    if path == "/v2/" {
        return respond(
            &mut conn,
            "200 OK",
            &[("Content-Type", "application/json".into())],
            b"{}",
        );
    }
    if let Some((_, r)) = path.split_once("/manifests/") {
        return match st.manifests.get(r) {
            Some((mt, body)) => respond(
                &mut conn,
                "200 OK",
                &[
                    ("Content-Type", mt.clone()),
                    ("Docker-Content-Digest", images::sha(body)),
                ],
                body,
            ),
            None => respond(&mut conn, "404 Not Found", &[], not_found),
        };
    }
    if let Some((_, digest)) = path.split_once("/blobs/") {
        let Some(body) = st.blobs.get(digest) else {
            return respond(
                &mut conn,
                "404 Not Found",
                &[],
                br#"{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown"}]}"#,
            );
        };
        let stall = st.stall.lock().unwrap().as_deref() == Some(digest);
        if let Some(start) = range_start.filter(|_| st.ranges && !stall)
            && start < body.len()
        {
            let range = format!("bytes {start}-{}/{}", body.len() - 1, body.len());
            return respond(
                &mut conn,
                "206 Partial Content",
                &[
                    ("Content-Type", "application/octet-stream".into()),
                    ("Content-Range", range),
                ],
                &body[start..],
            );
        }
        if !stall || method != "GET" {
            return respond(
                &mut conn,
                "200 OK",
                &[("Content-Type", "application/octet-stream".into())],
                body,
            );
        }
        // Half now; the rest once released, unless the client leaves.
        let head = format!(
            "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\n\r\n",
            body.len()
        );
        let _ = conn.write_all(head.as_bytes());
        let _ = conn.write_all(&body[..body.len() / 2]);
        let _ = conn.flush();
        st.stalls_started.fetch_add(1, Ordering::SeqCst);
        conn.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let (m, cv) = &st.released;
        loop {
            let released = *m.lock().unwrap();
            if released {
                let _ = conn.write_all(&body[body.len() / 2..]);
                return;
            }
            let mut b = [0u8; 1];
            match conn.read(&mut b) {
                Ok(0) => {
                    st.stalls_abandoned.fetch_add(1, Ordering::SeqCst);
                    return;
                }
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                _ => {
                    st.stalls_abandoned.fetch_add(1, Ordering::SeqCst);
                    return;
                }
            }
            let _unused = cv.wait_timeout(m.lock().unwrap(), Duration::from_millis(1));
        }
    }
    respond(&mut conn, "404 Not Found", &[], b"{}")
}

/// The Wasm artifact of hello.wasm, as a fake registry serves it under
/// `app:latest`: (state, layer digest).
fn fake_hello(corrupt: bool) -> (FakeState, String) {
    let module = std::fs::read(sample("hello.wasm")).unwrap();
    let layer = images::sha(&module);
    let cfg = serde_json::to_vec(
        &json!({"architecture": "wasm", "os": "wasip1", "layerDigests": [layer]}),
    )
    .unwrap();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.wasm.config.v0+json",
        "config": descriptor("application/vnd.wasm.config.v0+json", &cfg),
        "layers": [descriptor("application/wasm", &module)],
    }))
    .unwrap();
    let mut served = module.clone();
    if corrupt {
        let mid = served.len() / 2;
        served[mid] ^= 0xff;
    }
    let mut st = FakeState {
        ranges: true,
        ..Default::default()
    };
    st.blobs.insert(images::sha(&cfg), cfg);
    st.blobs.insert(layer.clone(), served);
    st.manifests.insert(
        "latest".into(),
        (
            "application/vnd.oci.image.manifest.v1+json".into(),
            manifest.clone(),
        ),
    );
    st.manifests.insert(
        images::sha(&manifest),
        (
            "application/vnd.oci.image.manifest.v1+json".into(),
            manifest,
        ),
    );
    (st, layer)
}

fn blob_stored(d: &Daemon, digest: &str) -> bool {
    d.root
        .join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap())
        .exists()
}

#[test]
fn a_corrupt_blob_fails_the_pull_and_commits_nothing() {
    let d = Daemon::start();
    let cli = Cli::new(&d);
    // Served whole (oci-client checks as it streams) and as a range (the
    // blob store's check alone): refused either way.
    for ranges in [false, true] {
        let (mut state, layer) = fake_hello(true);
        state.ranges = ranges;
        let fake = FakeRegistry::start(state);
        let app = format!("{}/app", fake.host());
        let err = cli.fails(&["pull", &app]);
        assert!(err.contains("does not match"), "ranges {ranges}: {err}");
        assert!(err.contains(&layer), "names the blob: {err}");
        assert_eq!(image_count(&d), 0);
        assert!(!blob_stored(&d, &layer));
        assert_eq!(
            std::fs::read_dir(d.root.join("blobs/tmp")).unwrap().count(),
            0,
            "no temp files left"
        );
    }
    let (state, _) = fake_hello(true);
    let fake = FakeRegistry::start(state);
    let app = format!("{}/app", fake.host());
    // Through the API: the stream had started, so the error is in it.
    let (status, body) = http_with(
        &d,
        "POST",
        &format!("/images/create?fromImage={app}&tag=latest"),
        &[],
    );
    assert_eq!(status, 200);
    let last: Value = serde_json::from_str(body.trim().lines().last().unwrap()).unwrap();
    assert!(
        last["errorDetail"]["message"]
            .as_str()
            .unwrap()
            .contains("does not match"),
        "{body}"
    );
    assert!(last["error"].is_string());
    // An unknown image fails before the stream starts: a plain 404.
    let (status, body) = http_with(
        &d,
        "POST",
        &format!("/images/create?fromImage={}/nope&tag=1", fake.host()),
        &[],
    );
    assert_eq!(status, 404, "{body}");
    assert!(
        serde_json::from_str::<Value>(&body).unwrap()["message"]
            .as_str()
            .unwrap()
            .contains("not found")
    );
}

#[test]
fn a_cancelled_pull_stops_its_download_and_a_rerun_completes() {
    let (state, layer) = fake_hello(false);
    *state.stall.lock().unwrap() = Some(layer.clone());
    let fake = FakeRegistry::start(state);
    let d = Daemon::start();
    let cli = Cli::new(&d);
    let app = format!("{}/app", fake.host());
    let mut child = cli
        .cmd(&["pull", &app])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    fake.wait_for("the layer to stall", |s| {
        s.stalls_started.load(Ordering::SeqCst) == 1
    });
    child.kill().unwrap();
    child.wait().unwrap();
    // The client's going cancels the pull, and so the download.
    fake.wait_for("the download to be dropped", |s| {
        s.stalls_abandoned.load(Ordering::SeqCst) == 1
    });
    assert_eq!(image_count(&d), 0);
    assert!(!blob_stored(&d, &layer));
    fake.release();
    let out = cli.ok(&["pull", &app]);
    assert!(out.contains("Downloaded newer image"), "{out}");
    assert_eq!(
        cli.ok(&["run", "--rm", &app]).lines().next(),
        Some("Hello from Wasm!")
    );
}

#[test]
fn a_pull_killed_with_the_daemon_leaves_no_image_and_can_be_rerun() {
    let (state, layer) = fake_hello(false);
    *state.stall.lock().unwrap() = Some(layer.clone());
    let fake = FakeRegistry::start(state);
    let mut d = Daemon::start();
    let app = format!("{}/app", fake.host());
    let config = d.dir.path().join("docker-config");
    let mut child = d
        .berth_cmd(&["pull", &app])
        .env("DOCKER_CONFIG", &config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    fake.wait_for("the layer to stall", |s| {
        s.stalls_started.load(Ordering::SeqCst) == 1
    });
    d.crash();
    let st = child.wait().unwrap();
    assert!(!st.success(), "the pull fails with its daemon");
    d.start_again();
    let cli = Cli::new(&d);
    assert_eq!(image_count(&d), 0);
    fake.release();
    cli.ok(&["pull", &app]);
    assert_eq!(
        cli.ok(&["run", "--rm", &app]).lines().next(),
        Some("Hello from Wasm!")
    );
}

#[test]
fn concurrent_pulls_download_each_blob_once() {
    let (state, layer) = fake_hello(false);
    *state.stall.lock().unwrap() = Some(layer.clone());
    let fake = FakeRegistry::start(state);
    let d = Daemon::start();
    let cli = Cli::new(&d);
    let app = format!("{}/app", fake.host());
    let first = cli
        .cmd(&["pull", &app])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    fake.wait_for("the layer to stall", |s| {
        s.stalls_started.load(Ordering::SeqCst) == 1
    });
    // A second pull of the same image joins the download.
    let second = cli
        .cmd(&["pull", &app])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    fake.wait_for("the second pull's manifest request", |s| {
        s.gets
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p.ends_with("/manifests/latest"))
            .map(|(_, n)| *n)
            .sum::<usize>()
            == 2
    });
    std::thread::sleep(Duration::from_millis(300));
    fake.release();
    for child in [first, second] {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    }
    assert_eq!(
        fake.gets(&format!("/blobs/{layer}")),
        1,
        "the layer was downloaded once"
    );
    // Present layers are not downloaded again.
    let out = cli.ok(&["pull", &app]);
    assert!(out.contains("Image is up to date"), "{out}");
    assert_eq!(fake.gets(&format!("/blobs/{layer}")), 1);
    assert_eq!(
        cli.ok(&["run", "--rm", &app]).lines().next(),
        Some("Hello from Wasm!")
    );
}

/// Stores `alice:s3cret` for `host` as `docker login` would.
fn store_login(cli: &Cli, host: &str) {
    std::fs::create_dir_all(&cli.config).unwrap();
    std::fs::write(
        cli.config.join("config.json"),
        json!({"auths": {host: {"auth": "YWxpY2U6czNjcmV0"}}}).to_string(),
    )
    .unwrap();
}

#[test]
fn credentials_never_reach_another_host() {
    let d = Daemon::start();
    let cli = Cli::new(&d);

    // A token service on another host: berth keeps the credentials back
    // and asks for an anonymous token, which this registry accepts.
    let tokens = FakeRegistry::start_on("127.0.0.2", FakeState::default());
    let (mut state, _) = fake_hello(false);
    state.require = Some((
        "Bearer t0k".into(),
        format!(
            r#"Bearer realm="http://{}/token",service="fake""#,
            tokens.host()
        ),
    ));
    let reg = FakeRegistry::start(state);
    store_login(&cli, &reg.host());
    cli.ok(&["pull", &format!("{}/app", reg.host())]);
    let seen = tokens.auth_seen("/token");
    assert!(!seen.is_empty(), "a token was asked for");
    assert!(
        seen.iter().all(Option::is_none),
        "credentials went to the token service: {seen:?}"
    );
    let out = cli.with_stdin(
        &["login", "-u", "alice", "--password-stdin", &reg.host()],
        "s3cret\n",
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("token service"), "{}", stderr(&out));
    assert!(tokens.auth_seen("/token").iter().all(Option::is_none));

    // A token service on the registry's own host gets them.
    let (mut state, _) = fake_hello(false);
    let port = free_port();
    state.require = Some((
        "Bearer t0k".into(),
        format!(r#"Bearer realm="http://127.0.0.1:{port}/token",service="fake""#),
    ));
    let reg = FakeRegistry::start_at(port, state);
    store_login(&cli, &reg.host());
    cli.ok(&["pull", &format!("{}/app", reg.host())]);
    let seen = reg.auth_seen("/token");
    assert!(
        seen.iter()
            .any(|a| a.as_deref() == Some("Basic YWxpY2U6czNjcmV0")),
        "{seen:?}"
    );

    // Basic auth, with blobs redirected to another host: the registry
    // gets the credentials, the other host does not.
    let (blob_state, layer) = fake_hello(false);
    let blobs = FakeRegistry::start_on("127.0.0.2", blob_state);
    let (mut state, _) = fake_hello(false);
    state.require = Some((
        "Basic YWxpY2U6czNjcmV0".into(),
        r#"Basic realm="fake""#.into(),
    ));
    state.redirect_blobs = Some(format!("http://{}", blobs.host()));
    let reg = FakeRegistry::start(state);
    // A new daemon, so that the layer is not there yet.
    drop(d);
    let d = Daemon::start();
    let cli = Cli::new(&d);
    store_login(&cli, &reg.host());
    cli.ok(&["pull", &format!("{}/app", reg.host())]);
    assert!(
        reg.auth_seen("/manifests/latest")
            .iter()
            .any(|a| a.as_deref() == Some("Basic YWxpY2U6czNjcmV0"))
    );
    let redirected = blobs.auth_seen(&layer);
    assert!(!redirected.is_empty(), "the layer came from the other host");
    assert!(
        blobs.auth_seen("").iter().all(Option::is_none),
        "credentials followed a redirect: {:?}",
        blobs.auth_seen("")
    );
    assert_eq!(
        cli.ok(&["run", "--rm", &format!("{}/app", reg.host())])
            .lines()
            .next(),
        Some("Hello from Wasm!")
    );
}

fn blob_tmp_empty(d: &Daemon) -> bool {
    std::fs::read_dir(d.root.join("blobs/tmp")).unwrap().count() == 0
}

/// `pull` through the CLI, which must fail within a minute; its output.
fn pull_fails(cli: &Cli, what: &str) -> String {
    let child = cli
        .cmd(&["pull", what])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_timeout(child, 60, "a pull that must fail");
    assert!(!out.status.success(), "{}", stdout(&out));
    format!("{}{}", stdout(&out), stderr(&out))
}

#[test]
fn ambiguous_manifests_are_refused_on_pull() {
    let (mut state, _) = fake_hello(false);
    let (ct, good) = state.manifests["latest"].clone();
    let m: Value = serde_json::from_slice(&good).unwrap();
    let mut cases: Vec<(&str, String, Vec<u8>, &str)> = Vec::new();
    // Both shapes in one document.
    let mut both = m.clone();
    both["manifests"] = json!([descriptor(&ct, &good)]);
    cases.push((
        "both",
        ct.clone(),
        serde_json::to_vec(&both).unwrap(),
        "both `manifests`",
    ));
    // A mediaType other than the Content-Type.
    let mut typed = m.clone();
    typed["mediaType"] = json!("application/vnd.docker.distribution.manifest.v2+json");
    cases.push((
        "typed",
        ct.clone(),
        serde_json::to_vec(&typed).unwrap(),
        "own mediaType",
    ));
    // An index served as a manifest.
    let mut entry = descriptor(&ct, &good);
    entry["platform"] = json!({"os": "wasip1", "architecture": "wasm"});
    let index = serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [entry]})).unwrap();
    cases.push(("index", ct.clone(), index, "image index"));
    // An index whose descriptor calls the manifest an index.
    let mut entry = descriptor("application/vnd.oci.image.index.v1+json", &good);
    entry["platform"] = json!({"os": "wasip1", "architecture": "wasm"});
    let lying = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [entry],
    }))
    .unwrap();
    cases.push((
        "lying-index",
        "application/vnd.oci.image.index.v1+json".into(),
        lying,
        "descriptor in index",
    ));
    for (tag, ct, body, _) in &cases {
        state
            .manifests
            .insert(tag.to_string(), (ct.clone(), body.clone()));
        state
            .manifests
            .insert(images::sha(body), (ct.clone(), body.clone()));
    }
    let fake = FakeRegistry::start(state);
    let d = Daemon::start();
    let cli = Cli::new(&d);
    for (tag, _, body, want) in &cases {
        let out = pull_fails(&cli, &format!("{}/app:{tag}", fake.host()));
        assert!(out.contains(want), "{tag}: {out}");
        assert!(out.contains("CVE-2021-41190"), "{tag}: {out}");
        // The refused document is named (for the lying index, the
        // manifest its descriptor misnames).
        let named = if *tag == "lying-index" {
            images::sha(&good)
        } else {
            images::sha(body)
        };
        assert!(out.contains(&named), "{tag}: names {named}: {out}");
        assert_eq!(image_count(&d), 0, "{tag}");
    }
    // The plain manifest pulls.
    cli.ok(&["pull", &format!("{}/app", fake.host())]);
}

#[test]
fn a_slow_registry_fails_the_pull_cleanly_and_a_later_pull_completes() {
    let (state, layer) = fake_hello(false);
    *state.trickle.lock().unwrap() = Some(layer.clone());
    let fake = FakeRegistry::start(state);
    let d = Daemon::start_with_args(&[
        "--registry-stall-timeout",
        "1s",
        "--registry-response-timeout",
        "2s",
    ]);
    let cli = Cli::new(&d);
    let app = format!("{}/app", fake.host());
    // One byte every 100 ms: far below 1 KiB/s.
    let out = pull_fails(&cli, &app);
    assert!(fake.state.trickles_started.load(Ordering::SeqCst) >= 1);
    assert!(out.contains("stalled"), "{out}");
    assert!(out.contains("--registry-stall-timeout"), "{out}");
    assert!(out.contains(&layer), "names the blob: {out}");
    assert_eq!(image_count(&d), 0);
    assert!(!blob_stored(&d, &layer));
    assert!(blob_tmp_empty(&d), "no temp files left");

    // The manifest trickles.
    *fake.state.trickle.lock().unwrap() = Some("/manifests/latest".into());
    let out = pull_fails(&cli, &app);
    assert!(out.contains("stalled") && out.contains("manifest"), "{out}");
    *fake.state.trickle.lock().unwrap() = None;

    // The registry never answers.
    *fake.state.hang.lock().unwrap() = Some("/manifests/latest".into());
    let out = pull_fails(&cli, &app);
    assert!(out.contains("no response within 2s"), "{out}");
    assert!(out.contains("--registry-response-timeout"), "{out}");
    *fake.state.hang.lock().unwrap() = None;
    assert_eq!(image_count(&d), 0);

    // A registry at full speed again: the same pull completes.
    let out = cli.ok(&["pull", &app]);
    assert!(out.contains("Downloaded newer image"), "{out}");
    assert_eq!(
        cli.ok(&["run", "--rm", &app]).lines().next(),
        Some("Hello from Wasm!")
    );
}

/// A native image of one gzip layer, as a fake registry serves it under
/// `app:latest`; its descriptor claims `claimed` bytes when given.
fn fake_native(layer: &[u8], claimed: Option<u64>) -> FakeState {
    let cfg = serde_json::to_vec(&images::linux_config(&images::sha(b"unchecked"))).unwrap();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": descriptor("application/vnd.oci.image.config.v1+json", &cfg),
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": images::sha(layer),
            "size": claimed.unwrap_or(layer.len() as u64),
        }],
    }))
    .unwrap();
    let mut st = FakeState {
        ranges: true,
        ..Default::default()
    };
    st.blobs.insert(images::sha(&cfg), cfg);
    st.blobs.insert(images::sha(layer), layer.to_vec());
    let mt = "application/vnd.oci.image.manifest.v1+json".to_string();
    st.manifests
        .insert("latest".into(), (mt.clone(), manifest.clone()));
    st.manifests.insert(images::sha(&manifest), (mt, manifest));
    st
}

#[test]
fn a_gzip_bomb_or_a_layer_of_many_files_fails_the_pull_and_keeps_nothing() {
    if !native_ok() {
        return;
    }
    let d = Daemon::start_with_args(&["--max-layer-size", "8MiB", "--max-layer-entries", "1000"]);
    let cli = Cli::new(&d);
    let gz = |data: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    };
    for (layer, want) in [
        // 64 MiB of zeros in about 64 KiB, made as it is compressed.
        (images::gzip_bomb(64 << 20), "--max-layer-size"),
        (gz(&images::many_files_tar(2000)), "--max-layer-entries"),
    ] {
        let fake = FakeRegistry::start(fake_native(&layer, None));
        let out = pull_fails(&cli, &format!("{}/app", fake.host()));
        assert!(out.contains(want), "{out}");
        assert!(out.contains(&images::sha(&layer)), "names the layer: {out}");
        assert_eq!(image_count(&d), 0);
        images::assert_no_layers(&d);
    }
    // A layer that says it is larger than a layer may be is not
    // downloaded at all.
    let layer = images::gzip_bomb(1 << 20);
    let fake = FakeRegistry::start(fake_native(&layer, Some(9 << 20)));
    let out = pull_fails(&cli, &format!("{}/app", fake.host()));
    assert!(out.contains("--max-layer-size"), "{out}");
    assert_eq!(fake.gets(&format!("/blobs/{}", images::sha(&layer))), 0);
    assert_eq!(image_count(&d), 0);

    // The ratio, with a daemon that allows 10 times the compressed size
    // (past the first 16 MiB every layer may take).
    let d = Daemon::start_with_args(&["--max-layer-ratio", "10"]);
    let cli = Cli::new(&d);
    let layer = images::gzip_bomb(24 << 20);
    let fake = FakeRegistry::start(fake_native(&layer, None));
    let out = pull_fails(&cli, &format!("{}/app", fake.host()));
    assert!(out.contains("--max-layer-ratio"), "{out}");
    assert_eq!(image_count(&d), 0);
    images::assert_no_layers(&d);
}
