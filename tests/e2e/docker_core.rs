//! The real `docker` CLI against berthd for the everyday commands: version,
//! info, images, run (attached, detached, `--rm`, `-i` with half-close,
//! `-t` on a terminal, `-e`, `--name`, `-m`, `--platform`), ps and its
//! filters, logs (`-f`, `--tail`, `--timestamps`), stop, kill, restart, rm,
//! name conflicts, exec (with and without a TTY), inspect, wait, tag, rmi,
//! save, load, import and stats. Each asserts on output and exit code, for
//! native containers (busybox, as root) and Wasm ones where both make sense.
//!
//! Long-running native containers run under `--init`, which passes SIGTERM
//! on: `sleep` as PID 1 ignores it, and a daemon stopping at the end of a
//! test would wait out the stop timeout.

use crate::docker_cli::{daemon, derr, docker_cmd, dok, native_daemon, status};
use crate::harness::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Waits at most `secs` for a child whose stdout and stderr are pipes,
/// reading both meanwhile (a large output cannot fill a pipe and stall
/// it); kills it and fails after, with the end of what it printed.
fn collect(mut child: Child, secs: u64, what: &str) -> Output {
    type Buf = Arc<Mutex<Vec<u8>>>;
    let reader = |mut r: Box<dyn Read + Send>| {
        let buf: Buf = Arc::default();
        let b = buf.clone();
        let t = std::thread::spawn(move || {
            let mut chunk = [0u8; 16384];
            while let Ok(n) = r.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                b.lock().unwrap().extend_from_slice(&chunk[..n]);
            }
        });
        (buf, t)
    };
    let (out, t_out) = reader(Box::new(child.stdout.take().unwrap()));
    let (err, t_err) = reader(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let text = |b: &Buf| {
                let b = b.lock().unwrap();
                tail(
                    &String::from_utf8_lossy(&b[b.len().saturating_sub(2000)..]),
                    20,
                )
            };
            panic!(
                "{what} did not finish in {secs} s\nstdout: {}\nstderr: {}",
                text(&out),
                text(&err)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    t_out.join().unwrap();
    t_err.join().unwrap();
    let take = |b: Buf| std::mem::take(&mut *b.lock().unwrap());
    Output {
        status,
        stdout: take(out),
        stderr: take(err),
    }
}

/// `docker ARGS...` with a 60 s limit.
fn docker(d: &Daemon, args: &[&str]) -> Output {
    let child = docker_cmd(d, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    collect(child, 60, &format!("docker {args:?}"))
}

/// `docker ARGS...` with `input` on its stdin, which is then closed (the
/// half-close `echo hi | docker run -i` does). Written from a thread, so a
/// large input cannot deadlock against unread output.
fn docker_stdin(d: &Daemon, args: &[&str], input: &[u8]) -> Output {
    let mut child = docker_cmd(d, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = collect(child, 60, &format!("docker {args:?} with stdin"));
    writer.join().unwrap();
    out
}

fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// `docker ARGS...` on a terminal: under util-linux `script`, which runs it
/// on a pty and exits with its status. script's own stdin is a pipe kept
/// open (nothing written), so it never types an EOF into the terminal.
/// stdout has the terminal's `\r`s removed. None (a skip) without script.
fn docker_tty(d: &Daemon, args: &[&str]) -> Option<Output> {
    let script = require("script")?;
    let mut line = format!(
        "{} -H {}",
        sh_quote(which("docker").unwrap().to_str().unwrap()),
        sh_quote(&d.host())
    );
    for a in args {
        line.push(' ');
        line.push_str(&sh_quote(a));
    }
    let child = Command::new(script)
        .args(["-qec", &line, "/dev/null"])
        .env("DOCKER_CONFIG", d.dir.path().join("docker-config"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = collect(child, 60, &format!("docker {args:?} on a pty"));
    out.stdout.retain(|b| *b != b'\r');
    Some(out)
}

/// Asserts the exit code of a finished docker command.
fn code(out: &Output, want: i32, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(want),
        "{what}: exit code\nstdout: {}\nstderr: {}",
        stdout(out),
        stderr(out)
    );
}

fn inspect_f(d: &Daemon, name: &str, template: &str) -> String {
    dok(d, &["inspect", "-f", template, name])
        .trim_end()
        .to_string()
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn names(d: &Daemon, args: &[&str]) -> Vec<String> {
    let mut all = vec!["ps"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--format", "{{.Names}}"]);
    let mut v: Vec<String> = dok(d, &all).lines().map(str::to_string).collect();
    v.sort();
    v
}

/// A native container that runs until stopped, and stops at once.
fn native_sleeper(d: &Daemon, name: &str, extra: &[&str]) -> String {
    let mut args = vec!["run", "-d", "--init", "--name", name];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["busybox", "sleep", "1000"]);
    dok(d, &args).trim().to_string()
}

// ----- version, info, images ---------------------------------------------

#[test]
fn version_and_info_describe_berthd() {
    let Some(d) = daemon() else { return };
    d.import("hello.wasm", "hello");
    let api = d.http("GET", "/version", None).json()["ApiVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let out = docker(&d, &["version"]);
    code(&out, 0, "docker version");
    let text = stdout(&out);
    let server = text
        .split_once("\nServer:")
        .unwrap_or_else(|| panic!("no server section:\n{text}"))
        .1;
    assert!(server.starts_with(" berth"), "{text}");
    let line = server
        .lines()
        .find(|l| l.trim_start().starts_with("API version:"))
        .unwrap_or_else(|| panic!("no server API version:\n{text}"));
    assert!(
        line.contains(&format!("{api} (minimum version 1.24)")),
        "{line}"
    );
    assert_eq!(
        dok(&d, &["version", "--format", "{{.Server.APIVersion}}"]),
        format!("{api}\n")
    );
    assert_eq!(
        dok(&d, &["version", "--format", "{{.Server.Os}}"]),
        "linux\n"
    );

    dok(&d, &["create", "--name", "one", "hello"]);
    let out = docker(&d, &["info"]);
    code(&out, 0, "docker info");
    let text = stdout(&out);
    for want in [
        " Containers: 1\n",
        "  Stopped: 1\n",
        " Images: 1\n",
        " Server Version: ",
        " OSType: linux\n",
        &format!(" Docker Root Dir: {}\n", d.root.display()),
    ] {
        assert!(text.contains(want), "no {want:?} in:\n{text}");
    }
    assert!(!stderr(&out).contains("ERROR"), "{}", stderr(&out));
    let info: Value = serde_json::from_str(&dok(&d, &["info", "--format", "{{json .}}"])).unwrap();
    assert_eq!(info["Containers"], 1);
    assert_eq!(info["ContainersStopped"], 1);
    assert_eq!(info["Images"], 1);
    assert!(info["NCPU"].as_u64().unwrap() > 0, "{info}");
    assert!(info["MemTotal"].as_u64().unwrap() > 0, "{info}");
}

#[test]
fn images_lists_tags_and_quiet_ids() {
    let Some(d) = daemon() else { return };
    d.import("hello.wasm", "hello");
    d.import("cat.wasm", "wcat:1.0");
    dok(&d, &["tag", "hello", "hello:v2"]);
    let hello_id = dok(&d, &["image", "inspect", "-f", "{{.Id}}", "hello"]);
    let hello_id = hello_id.trim().strip_prefix("sha256:").unwrap();
    let short = &hello_id[..12];

    let out = docker(&d, &["images"]);
    code(&out, 0, "docker images");
    let text = stdout(&out);
    let rows: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows[0],
        ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"],
        "{text}"
    );
    assert_eq!(rows.len(), 4, "{text}");
    for (repo, tag) in [("hello", "latest"), ("hello", "v2"), ("wcat", "1.0")] {
        let row = rows
            .iter()
            .find(|r| r[0] == repo && r[1] == tag)
            .unwrap_or_else(|| panic!("no {repo}:{tag} in:\n{text}"));
        assert!(is_hex(row[2], 12), "{text}");
        if repo == "hello" {
            assert_eq!(row[2], short, "{text}");
        }
    }

    // -q: one short ID per image (a tag more does not add one).
    let q = dok(&d, &["images", "-q"]);
    let mut ids: Vec<&str> = q.lines().collect();
    assert!(ids.iter().all(|i| is_hex(i, 12)), "{q}");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 2, "{q}");
    assert!(ids.contains(&short), "{q}");
    let full = dok(&d, &["images", "-q", "--no-trunc", "wcat"]);
    let full = full.trim().strip_prefix("sha256:").unwrap_or("");
    assert!(is_hex(full, 64), "{full}");

    // A repository argument and a format.
    assert_eq!(
        dok(
            &d,
            &["images", "--format", "{{.Repository}}:{{.Tag}}", "wcat"]
        ),
        "wcat:1.0\n"
    );
    let mut refs: Vec<String> = dok(&d, &["images", "--format", "{{.Repository}}:{{.Tag}}"])
        .lines()
        .map(str::to_string)
        .collect();
    refs.sort();
    assert_eq!(refs, ["hello:latest", "hello:v2", "wcat:1.0"]);
    assert_eq!(dok(&d, &["images", "-q", "nothing-here"]), "");
}

// ----- run ---------------------------------------------------------------

#[test]
fn run_attached_propagates_output_and_exit_code() {
    let Some(d) = native_daemon() else { return };
    let out = docker(
        &d,
        &[
            "run",
            "--name",
            "att",
            "busybox",
            "sh",
            "-c",
            "echo out; echo err >&2; exit 3",
        ],
    );
    code(&out, 3, "run exit 3");
    assert_eq!(stdout(&out), "out\n");
    assert_eq!(stderr(&out), "err\n");
    assert_eq!(status(&d, "att"), "exited");
    assert_eq!(inspect_f(&d, "att", "{{.State.ExitCode}}"), "3");
    let out = docker(&d, &["run", "--rm", "busybox", "true"]);
    code(&out, 0, "run true");
    assert_eq!(stdout(&out), "");
    code(
        &docker(&d, &["run", "--rm", "busybox", "false"]),
        1,
        "run false",
    );
    // A command that is not there: 127, as Docker's.
    let out = docker(&d, &["run", "--rm", "busybox", "no-such-command"]);
    code(&out, 127, "run of a missing command");
    assert!(
        stderr(&out).contains("executable file not found"),
        "{}",
        stderr(&out)
    );
    // A killed process: 128 + the signal (not PID 1, which SIGKILL from
    // inside its own namespace does not end).
    let out = docker(
        &d,
        &["run", "--rm", "--init", "busybox", "sh", "-c", "kill -9 $$"],
    );
    code(&out, 137, "run of a killed process");

    // Wasm: stdout, stderr and the exit code kept apart.
    d.import("hello.wasm", "hello");
    let out = docker(&d, &["run", "hello", "--stderr", "oops", "--exit", "4"]);
    code(&out, 4, "wasm run --exit 4");
    assert!(
        stdout(&out).starts_with("Hello from Wasm!\n"),
        "{}",
        stdout(&out)
    );
    assert_eq!(stderr(&out), "oops\n");
}

#[test]
fn run_detached_and_run_rm() {
    let Some(d) = native_daemon() else { return };
    let out = docker(
        &d,
        &[
            "run", "-d", "--init", "--name", "det", "busybox", "sleep", "1000",
        ],
    );
    code(&out, 0, "run -d");
    let id = stdout(&out).trim().to_string();
    assert!(is_hex(&id, 64), "{}", stdout(&out));
    assert_eq!(stderr(&out), "");
    assert_eq!(inspect_f(&d, "det", "{{.Id}}"), id);
    assert_eq!(status(&d, "det"), "running");

    let out = docker(
        &d,
        &["run", "--rm", "--name", "gone", "busybox", "echo", "bye"],
    );
    code(&out, 0, "run --rm");
    assert_eq!(stdout(&out), "bye\n");
    assert!(derr(&d, &["inspect", "gone"]).contains("No such object"));
    assert_eq!(names(&d, &["-a"]), ["det"]);
    // The exit code survives the removal.
    let out = docker(
        &d,
        &[
            "run", "--rm", "--name", "gone", "busybox", "sh", "-c", "exit 2",
        ],
    );
    code(&out, 2, "run --rm exit 2");
    assert_eq!(names(&d, &["-a"]), ["det"]);
    // Detached and --rm: removed when it exits.
    dok(
        &d,
        &[
            "run", "-d", "--rm", "--name", "brief", "busybox", "sleep", "0.2",
        ],
    );
    d.eventually("the --rm container to go", || {
        d.http("GET", "/containers/brief/json", None).status == 404
    });

    // Wasm.
    d.import("hello.wasm", "hello");
    d.import("sleep.wasm", "wsleep");
    let id = dok(&d, &["run", "-d", "--name", "wdet", "wsleep", "1000"]);
    assert!(is_hex(id.trim(), 64), "{id}");
    assert_eq!(status(&d, "wdet"), "running");
    let out = docker(&d, &["run", "--rm", "--name", "wgone", "hello"]);
    code(&out, 0, "wasm run --rm");
    assert!(stdout(&out).starts_with("Hello from Wasm!"));
    assert!(derr(&d, &["inspect", "wgone"]).contains("No such object"));
    assert_eq!(names(&d, &["-a"]), ["det", "wdet"]);
}

#[test]
fn run_i_passes_stdin_and_half_closes() {
    let Some(d) = native_daemon() else { return };
    let out = docker_stdin(&d, &["run", "-i", "--rm", "busybox", "cat"], b"hi\n");
    code(&out, 0, "echo hi | docker run -i busybox cat");
    assert_eq!(stdout(&out), "hi\n");
    // The container sees EOF and goes on: output after the half-close
    // still arrives, and so does the exit code.
    let out = docker_stdin(
        &d,
        &[
            "run",
            "-i",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "cat; echo after eof; exit 5",
        ],
        b"line\n",
    );
    code(&out, 5, "run -i sh");
    assert_eq!(stdout(&out), "line\nafter eof\n");
    // Nothing on stdin at all.
    let out = docker_stdin(&d, &["run", "-i", "--rm", "busybox", "wc", "-c"], b"");
    code(&out, 0, "run -i with empty stdin");
    assert_eq!(stdout(&out).trim(), "0");
    // More than a pipe holds.
    let big: Vec<u8> = (0..300_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let out = docker_stdin(&d, &["run", "-i", "--rm", "busybox", "wc", "-c"], &big);
    code(&out, 0, "run -i with 300 kB");
    assert_eq!(stdout(&out).trim(), "300000");

    // Wasm: the cat sample.
    d.import("cat.wasm", "wcat");
    let out = docker_stdin(&d, &["run", "-i", "--rm", "wcat"], b"hi\n");
    code(&out, 0, "echo hi | docker run -i wcat");
    assert_eq!(stdout(&out), "hi\n");
    assert_eq!(stderr(&out), "cat: 3 bytes\n");
    let out = docker_stdin(&d, &["run", "-i", "--rm", "wcat"], &big);
    code(&out, 0, "wasm run -i with 300 kB");
    assert!(out.stdout == big, "{} bytes came back", out.stdout.len());
    // Without -i the container's stdin is empty.
    let out = docker(&d, &["run", "--rm", "wcat"]);
    code(&out, 0, "wasm run without -i");
    assert_eq!(stderr(&out), "cat: 0 bytes\n");
}

#[test]
fn run_t_gives_the_container_a_terminal() {
    let Some(d) = native_daemon() else { return };
    let probe = "test -t 0 && echo stdin-tty; test -t 1 && echo stdout-tty; tty; exit 5";
    let Some(out) = docker_tty(&d, &["run", "--rm", "-t", "busybox", "sh", "-c", probe]) else {
        return;
    };
    code(&out, 5, "run -t");
    assert_eq!(stdout(&out), "stdin-tty\nstdout-tty\n/dev/pts/0\n");
    let out = docker_tty(&d, &["run", "--rm", "-it", "busybox", "sh", "-c", probe]).unwrap();
    code(&out, 5, "run -it");
    assert_eq!(stdout(&out), "stdin-tty\nstdout-tty\n/dev/pts/0\n");
    let out = docker_tty(
        &d,
        &["run", "--name", "tt", "-t", "busybox", "stty", "size"],
    )
    .unwrap();
    code(&out, 0, "run -t stty");
    assert_eq!(inspect_f(&d, "tt", "{{.Config.Tty}}"), "true");
    // Without -t: no terminal, even when docker itself has one.
    let out = docker_tty(
        &d,
        &[
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "test -t 1 || echo no-tty",
        ],
    )
    .unwrap();
    code(&out, 0, "run without -t");
    assert_eq!(stdout(&out), "no-tty\n");
}

#[test]
fn run_env_name_and_memory() {
    let Some(d) = native_daemon() else { return };
    let out = docker(
        &d,
        &[
            "run",
            "--name",
            "envy",
            "-e",
            "FOO=bar baz",
            "-e",
            "EMPTY=",
            "-m",
            "64m",
            "busybox",
            "sh",
            "-c",
            "echo \"$FOO|$EMPTY|$HOSTNAME\"; \
             cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max",
        ],
    );
    code(&out, 0, "run -e -m");
    let id = inspect_f(&d, "envy", "{{.Id}}");
    assert_eq!(
        stdout(&out),
        format!("bar baz||{}\n{}\n", &id[..12], 64u64 << 20)
    );
    assert_eq!(inspect_f(&d, "envy", "{{.Name}}"), "/envy");
    assert_eq!(
        inspect_f(&d, "envy", "{{.HostConfig.Memory}}"),
        (64u64 << 20).to_string()
    );
    let env: Vec<String> =
        serde_json::from_str(&inspect_f(&d, "envy", "{{json .Config.Env}}")).unwrap();
    assert!(env.contains(&"FOO=bar baz".to_string()), "{env:?}");
    assert!(env.contains(&"EMPTY=".to_string()), "{env:?}");
    assert!(env.iter().any(|e| e.starts_with("PATH=")), "{env:?}");
    assert_eq!(names(&d, &["-a"]), ["envy"]);

    // Wasm.
    d.import("hello.wasm", "hello");
    let out = docker(
        &d,
        &[
            "run",
            "--name",
            "wenv",
            "-e",
            "GREETING=hey",
            "-m",
            "32m",
            "hello",
        ],
    );
    code(&out, 0, "wasm run -e -m");
    assert!(
        stdout(&out).contains("\nGREETING=hey\n"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        inspect_f(&d, "wenv", "{{.HostConfig.Memory}}"),
        (32u64 << 20).to_string()
    );
    assert_eq!(inspect_f(&d, "wenv", "{{.Name}}"), "/wenv");
}

#[test]
fn run_platform_wasi_on_a_wasm_image() {
    let Some(d) = daemon() else { return };
    d.import("hello.wasm", "hello");
    for platform in ["wasi/wasm", "wasip1/wasm"] {
        let out = docker(&d, &["run", "--rm", "--platform", platform, "hello", "a"]);
        code(&out, 0, &format!("run --platform {platform}"));
        assert_eq!(
            stdout(&out),
            "Hello from Wasm!\nargv[0]=hello.wasm\nargv[1]=a\ncwd=/\n"
        );
    }
    dok(
        &d,
        &["create", "--platform", "wasi/wasm", "--name", "pw", "hello"],
    );
    assert_eq!(inspect_f(&d, "pw", "{{.Platform}}"), "wasip1");
    // Another platform: the image is not the one asked for (Docker's 404,
    // so `--pull missing` would look for it in a registry).
    let linux = format!("linux/{}", host_arch());
    let err = derr(
        &d,
        &[
            "run",
            "--rm",
            "--pull",
            "never",
            "--platform",
            &linux,
            "hello",
        ],
    );
    assert!(
        err.contains("does not match the specified platform"),
        "{err}"
    );
    let r = d.http(
        "POST",
        &format!("/v1.47/containers/create?platform={linux}"),
        Some(("application/json", br#"{"Image":"hello"}"#)),
    );
    assert_eq!(r.status, 404, "{}", r.text());
    let r = d.http(
        "POST",
        "/v1.47/containers/create?platform=wasi%2Fwasm",
        Some(("application/json", br#"{"Image":"hello"}"#)),
    );
    assert_eq!(r.status, 201, "{}", r.text());

    if !native_ok() {
        return;
    }
    d.busybox();
    let out = docker(
        &d,
        &["run", "--rm", "--platform", &linux, "busybox", "echo", "ok"],
    );
    code(&out, 0, "native run --platform linux");
    assert_eq!(stdout(&out), "ok\n");
    let err = derr(
        &d,
        &[
            "run",
            "--rm",
            "--pull",
            "never",
            "--platform",
            "wasi/wasm",
            "busybox",
        ],
    );
    assert!(
        err.contains("its platform (linux/") && err.contains("(wasi/wasm)"),
        "{err}"
    );
}

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

// ----- ps ----------------------------------------------------------------

#[test]
fn ps_lists_filters_and_formats() {
    let Some(d) = daemon() else { return };
    d.import("hello.wasm", "hello");
    d.import("sleep.wasm", "wsleep");
    let up = dok(&d, &["run", "-d", "--name", "ps-up", "wsleep", "1000"]);
    let up = up.trim();
    code(
        &docker(&d, &["run", "--name", "ps-done", "hello", "--exit", "3"]),
        3,
        "run",
    );
    dok(&d, &["create", "--name", "ps-new", "hello"]);

    let out = docker(&d, &["ps"]);
    code(&out, 0, "docker ps");
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        [
            "CONTAINER",
            "ID",
            "IMAGE",
            "COMMAND",
            "CREATED",
            "STATUS",
            "PORTS",
            "NAMES"
        ],
        "{text}"
    );
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[1].starts_with(&up[..12]), "{text}");
    assert!(lines[1].contains(" Up "), "{text}");
    assert!(lines[1].ends_with(" ps-up"), "{text}");

    let text = dok(&d, &["ps", "-a"]);
    assert_eq!(text.lines().count(), 4, "{text}");
    let row = |n: &str| text.lines().find(|l| l.ends_with(n)).unwrap().to_string();
    assert!(row("ps-done").contains("Exited (3) "), "{text}");
    assert!(row("ps-new").contains(" Created "), "{text}");

    assert_eq!(dok(&d, &["ps", "-q"]), format!("{}\n", &up[..12]));
    assert_eq!(dok(&d, &["ps", "-q", "--no-trunc"]), format!("{up}\n"));
    let all = dok(&d, &["ps", "-aq"]);
    assert_eq!(all.lines().count(), 3, "{all}");
    assert!(all.lines().all(|l| is_hex(l, 12)), "{all}");

    assert_eq!(names(&d, &[]), ["ps-up"]);
    assert_eq!(names(&d, &["-a", "--filter", "name=ps-d"]), ["ps-done"]);
    assert_eq!(names(&d, &["-a", "--filter", "name=ps-"]).len(), 3);
    assert_eq!(names(&d, &["-a", "--filter", "status=exited"]), ["ps-done"]);
    assert_eq!(names(&d, &["-a", "--filter", "status=created"]), ["ps-new"]);
    assert_eq!(names(&d, &["-a", "--filter", "status=running"]), ["ps-up"]);
    assert_eq!(names(&d, &["-a", "--filter", "exited=3"]), ["ps-done"]);
    assert_eq!(
        names(&d, &["-a", "--filter", "ancestor=hello"]),
        ["ps-done", "ps-new"]
    );
    assert_eq!(names(&d, &["-n", "1"]), ["ps-new"]);
    assert_eq!(
        dok(
            &d,
            &[
                "ps",
                "-a",
                "--filter",
                "name=ps-done",
                "--format",
                "{{.Image}} {{.Command}}"
            ]
        ),
        "hello \"hello.wasm --exit 3\"\n"
    );
    let out = docker(&d, &["ps", "--filter", "colour=red"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("colour"), "{}", stderr(&out));
}

// ----- logs --------------------------------------------------------------

#[test]
fn logs_follow_tail_and_timestamps() {
    let Some(d) = native_daemon() else { return };
    dok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "lg",
            "busybox",
            "sh",
            "-c",
            "for i in 1 2 3 4 5; do echo $i; done; sleep 1; echo end",
        ],
    );
    // -f follows until the container exits, then ends with 0.
    let out = docker(&d, &["logs", "-f", "lg"]);
    code(&out, 0, "logs -f");
    assert_eq!(stdout(&out), "1\n2\n3\n4\n5\nend\n");
    assert_eq!(status(&d, "lg"), "exited");

    assert_eq!(dok(&d, &["logs", "--tail", "2", "lg"]), "5\nend\n");
    assert_eq!(dok(&d, &["logs", "--tail", "0", "lg"]), "");
    assert_eq!(dok(&d, &["logs", "-n", "1", "lg"]), "end\n");
    let out = dok(&d, &["logs", "--timestamps", "lg"]);
    let mut texts = Vec::new();
    for line in out.lines() {
        let (ts, text) = line.split_once(' ').unwrap();
        assert!(
            ts.len() >= 20 && ts.as_bytes()[10] == b'T' && ts.ends_with('Z'),
            "not an RFC 3339 timestamp: {line}"
        );
        texts.push(text);
    }
    assert_eq!(texts, ["1", "2", "3", "4", "5", "end"]);
    let out = dok(&d, &["logs", "-t", "--tail", "1", "lg"]);
    assert!(out.ends_with("Z end\n"), "{out}");

    // stdout and stderr stay apart.
    dok(
        &d,
        &[
            "run",
            "--name",
            "two",
            "busybox",
            "sh",
            "-c",
            "echo o; echo e >&2",
        ],
    );
    let out = docker(&d, &["logs", "two"]);
    code(&out, 0, "logs");
    assert_eq!(stdout(&out), "o\n");
    assert_eq!(stderr(&out), "e\n");

    // -f of a container that is stopped from outside ends too.
    native_sleeper(&d, "quiet", &[]);
    let child = docker_cmd(&d, &["logs", "-f", "quiet"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    dok(&d, &["stop", "quiet"]);
    let out = collect(child, 10, "logs -f of a stopped container");
    code(&out, 0, "logs -f");

    // Wasm.
    d.import("sleep.wasm", "wsleep");
    dok(&d, &["run", "-d", "--name", "wlg", "wsleep", "0.5"]);
    let started = Instant::now();
    let out = docker(&d, &["logs", "-f", "wlg"]);
    code(&out, 0, "wasm logs -f");
    assert_eq!(stdout(&out), "sleeping 0.5\n");
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(status(&d, "wlg"), "exited");
    assert_eq!(dok(&d, &["logs", "--tail", "1", "wlg"]), "sleeping 0.5\n");
    assert!(derr(&d, &["logs", "nothing-here"]).contains("No such container"));
}

// ----- stop, kill, restart, rm -------------------------------------------

#[test]
fn stop_kill_restart_and_rm_of_a_native_container() {
    let Some(d) = native_daemon() else { return };
    dok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "life",
            "busybox",
            "sh",
            "-c",
            "trap 'echo usr1; exit 4' USR1; trap 'exit 0' TERM; while true; do sleep 0.1; done",
        ],
    );
    d.eventually("the traps", || dok(&d, &["top", "life"]).contains("sleep"));
    // stop: SIGTERM, which the shell turns into exit 0.
    let started = Instant::now();
    assert_eq!(dok(&d, &["stop", "life"]), "life\n");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(status(&d, "life"), "exited");
    assert_eq!(inspect_f(&d, "life", "{{.State.ExitCode}}"), "0");
    // Again: Docker's 304, which the CLI takes as done.
    let out = docker(&d, &["stop", "life"]);
    code(&out, 0, "stop of a stopped container");
    assert_eq!(stdout(&out), "life\n");
    let r = d.http("POST", "/v1.47/containers/life/stop", None);
    assert_eq!(r.status, 304, "{}", r.text());

    // kill -s: the signal the container traps.
    dok(&d, &["start", "life"]);
    d.eventually("the traps", || dok(&d, &["top", "life"]).contains("sleep"));
    assert_eq!(dok(&d, &["kill", "-s", "USR1", "life"]), "life\n");
    assert_eq!(dok(&d, &["wait", "life"]), "4\n");
    assert!(dok(&d, &["logs", "life"]).contains("usr1\n"));
    // kill: SIGKILL, 137.
    dok(&d, &["start", "life"]);
    assert_eq!(dok(&d, &["kill", "life"]), "life\n");
    assert_eq!(dok(&d, &["wait", "life"]), "137\n");
    let err = derr(&d, &["kill", "life"]);
    assert!(err.contains("is not running"), "{err}");
    let r = d.http("POST", "/v1.47/containers/life/kill", None);
    assert_eq!(r.status, 409, "{}", r.text());

    // restart: a stopped container starts; a running one starts anew.
    assert_eq!(dok(&d, &["restart", "life"]), "life\n");
    assert_eq!(status(&d, "life"), "running");
    let (pid, started_at) = (
        inspect_f(&d, "life", "{{.State.Pid}}"),
        inspect_f(&d, "life", "{{.State.StartedAt}}"),
    );
    assert_eq!(dok(&d, &["restart", "-t", "2", "life"]), "life\n");
    assert_eq!(status(&d, "life"), "running");
    assert_ne!(inspect_f(&d, "life", "{{.State.Pid}}"), pid);
    assert_ne!(inspect_f(&d, "life", "{{.State.StartedAt}}"), started_at);

    // rm of a running container: Docker's 409, the container stays.
    let out = docker(&d, &["rm", "life"]);
    code(&out, 1, "rm of a running container");
    let err = stderr(&out).to_lowercase();
    assert!(
        err.contains("stop the container before") && err.contains("force remove"),
        "{err}"
    );
    let r = d.http("DELETE", "/v1.47/containers/life", None);
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(status(&d, "life"), "running");
    assert_eq!(dok(&d, &["rm", "-f", "life"]), "life\n");
    assert!(derr(&d, &["inspect", "life"]).contains("No such object"));
    // rm of a stopped one, and of one that is not there.
    dok(&d, &["create", "--name", "idle", "busybox"]);
    assert_eq!(dok(&d, &["rm", "idle"]), "idle\n");
    let out = docker(&d, &["rm", "idle"]);
    code(&out, 1, "rm of a missing container");
    assert!(
        stderr(&out).contains("No such container: idle"),
        "{}",
        stderr(&out)
    );
    assert_eq!(dok(&d, &["ps", "-aq"]), "");
}

#[test]
fn stop_kill_restart_and_rm_of_a_wasm_container() {
    let Some(d) = daemon() else { return };
    d.import("sleep.wasm", "wsleep");
    dok(&d, &["run", "-d", "--name", "wlife", "wsleep", "1000"]);
    assert_eq!(dok(&d, &["stop", "wlife"]), "wlife\n");
    assert_eq!(inspect_f(&d, "wlife", "{{.State.ExitCode}}"), "143");
    let out = docker(&d, &["stop", "wlife"]);
    code(&out, 0, "stop of a stopped container");
    let r = d.http("POST", "/v1.47/containers/wlife/stop", None);
    assert_eq!(r.status, 304, "{}", r.text());
    assert_eq!(dok(&d, &["restart", "wlife"]), "wlife\n");
    assert_eq!(status(&d, "wlife"), "running");
    assert_eq!(dok(&d, &["kill", "wlife"]), "wlife\n");
    assert_eq!(dok(&d, &["wait", "wlife"]), "137\n");
    assert!(derr(&d, &["kill", "wlife"]).contains("is not running"));
    dok(&d, &["start", "wlife"]);
    let err = derr(&d, &["rm", "wlife"]).to_lowercase();
    assert!(err.contains("stop the container before"), "{err}");
    assert_eq!(dok(&d, &["rm", "--force", "wlife"]), "wlife\n");
    assert_eq!(dok(&d, &["ps", "-aq"]), "");
}

#[test]
fn create_with_a_name_in_use_is_a_conflict() {
    let Some(d) = daemon() else { return };
    d.import("hello.wasm", "hello");
    let first = dok(&d, &["create", "--name", "dup", "hello"]);
    let first = first.trim();
    assert!(is_hex(first, 64), "{first}");
    let out = docker(&d, &["create", "--name", "dup", "hello"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("Conflict. The container name \"/dup\" is already in use by container")
            && err.contains(first),
        "{err}"
    );
    let out = docker(&d, &["run", "--name", "dup", "hello"]);
    code(&out, 125, "run with a name in use");
    assert!(
        stderr(&out).contains("is already in use"),
        "{}",
        stderr(&out)
    );
    let r = d.http(
        "POST",
        "/v1.47/containers/create?name=dup",
        Some(("application/json", br#"{"Image":"hello"}"#)),
    );
    assert_eq!(r.status, 409, "{}", r.text());
    // One container, and the name is free again once it is gone.
    assert_eq!(dok(&d, &["ps", "-aq", "--no-trunc"]), format!("{first}\n"));
    dok(&d, &["rm", "dup"]);
    dok(&d, &["create", "--name", "dup", "hello"]);
}

// ----- exec --------------------------------------------------------------

#[test]
fn exec_with_and_without_a_tty() {
    let Some(d) = native_daemon() else { return };
    native_sleeper(&d, "ex", &["-e", "FROM_RUN=1"]);
    let out = docker(&d, &["exec", "ex", "echo", "hi"]);
    code(&out, 0, "exec echo");
    assert_eq!(stdout(&out), "hi\n");
    let out = docker(
        &d,
        &["exec", "ex", "sh", "-c", "echo o; echo e >&2; exit 7"],
    );
    code(&out, 7, "exec exit 7");
    assert_eq!(stdout(&out), "o\n");
    assert_eq!(stderr(&out), "e\n");
    let out = docker(
        &d,
        &[
            "exec",
            "-e",
            "X=1",
            "-w",
            "/tmp",
            "ex",
            "sh",
            "-c",
            "echo $X $FROM_RUN; pwd; test -t 0 || echo no-tty",
        ],
    );
    code(&out, 0, "exec -e -w");
    assert_eq!(stdout(&out), "1 1\n/tmp\nno-tty\n");
    let out = docker_stdin(
        &d,
        &["exec", "-i", "ex", "sh", "-c", "cat; echo eof"],
        b"piped\n",
    );
    code(&out, 0, "exec -i");
    assert_eq!(stdout(&out), "piped\neof\n");
    // Over the API, the output streams the client did not ask for
    // (docker-py's `exec_run(stdout=False)`) are not sent.
    for (out, err, want) in [(false, true, "2:e\n"), (true, false, "1:o\n")] {
        let create = format!(
            r#"{{"Cmd":["sh","-c","echo o; echo e >&2"],"AttachStdout":{out},"AttachStderr":{err}}}"#
        );
        let r = d.http(
            "POST",
            "/v1.47/containers/ex/exec",
            Some(("application/json", create.as_bytes())),
        );
        assert_eq!(r.status, 201, "{}", r.text());
        let id = serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()["Id"]
            .as_str()
            .unwrap()
            .to_string();
        let r = d.http(
            "POST",
            &format!("/v1.47/exec/{id}/start"),
            Some(("application/json", br#"{"Detach":false,"Tty":false}"#)),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        let (mut got, mut rest) = (String::new(), &r.body[..]);
        while rest.len() >= 8 {
            let n = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
            got += &format!("{}:{}", rest[0], String::from_utf8_lossy(&rest[8..8 + n]));
            rest = &rest[8 + n..];
        }
        assert_eq!(got, want, "AttachStdout {out}, AttachStderr {err}");
    }
    let out = docker(&d, &["exec", "ex", "no-such-command"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("executable file not found"),
        "{}",
        stderr(&out)
    );
    // -d: runs on its own.
    assert_eq!(dok(&d, &["exec", "-d", "ex", "touch", "/tmp/flag"]), "");
    d.eventually("the detached exec", || {
        docker(&d, &["exec", "ex", "test", "-f", "/tmp/flag"])
            .status
            .success()
    });

    // On a terminal: the exec's own pty, one the container can name.
    let probe = "test -t 0 && echo stdin-tty; tty; exit 6";
    let Some(out) = docker_tty(&d, &["exec", "-it", "ex", "sh", "-c", probe]) else {
        return;
    };
    code(&out, 6, "exec -it");
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text:?}");
    assert_eq!(lines[0], "stdin-tty", "{text:?}");
    assert!(lines[1].starts_with("/dev/pts/"), "{text:?}");
    let out = docker_tty(&d, &["exec", "-t", "ex", "sh", "-c", probe]).unwrap();
    code(&out, 6, "exec -t");
    assert!(stdout(&out).contains("\n/dev/pts/"), "{}", stdout(&out));

    // Not running: Docker's 409.
    dok(&d, &["stop", "ex"]);
    let err = derr(&d, &["exec", "ex", "true"]);
    assert!(err.contains("is not running"), "{err}");
}

// ----- detach keys ---------------------------------------------------------

/// A command on a terminal (util-linux `script`), typed into and read as a
/// user would: what is written to script's stdin is typed on the terminal.
struct Terminal {
    child: Child,
    keys: std::process::ChildStdin,
    screen: Arc<Mutex<Vec<u8>>>,
    reader: std::thread::JoinHandle<()>,
    what: String,
}

impl Terminal {
    /// Runs `program ARGS...` on a terminal, with DOCKER_CONFIG `config`.
    /// None (a skip) without script.
    fn start(
        program: &std::path::Path,
        args: &[&str],
        config: &std::path::Path,
    ) -> Option<Terminal> {
        let script = require("script")?;
        let mut line = sh_quote(program.to_str().unwrap());
        for a in args {
            line.push(' ');
            line.push_str(&sh_quote(a));
        }
        let mut child = Command::new(script)
            .args(["-qec", &line, "/dev/null"])
            .env("DOCKER_CONFIG", config)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let keys = child.stdin.take().unwrap();
        let mut out = child.stdout.take().unwrap();
        let screen: Arc<Mutex<Vec<u8>>> = Arc::default();
        let s = screen.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                s.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Some(Terminal {
            child,
            keys,
            screen,
            reader,
            what: format!("{} {args:?}", program.display()),
        })
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.screen.lock().unwrap()).replace('\r', "")
    }

    /// Waits (at most 30 s) until the screen shows `want`.
    fn expect(&self, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.text().contains(want) {
            assert!(
                Instant::now() < deadline,
                "{}: {want:?} never showed; screen:\n{}",
                self.what,
                self.text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn type_keys(&mut self, keys: &[u8]) {
        self.keys.write_all(keys).unwrap();
        self.keys.flush().unwrap();
    }

    /// Waits (at most 30 s) for the command to end: its exit code and
    /// screen.
    fn finish(mut self) -> (i32, String) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "{}: still running after the detach keys; screen:\n{}",
                    self.what,
                    self.text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        drop(self.keys);
        self.reader.join().unwrap();
        let text = String::from_utf8_lossy(&self.screen.lock().unwrap()).replace('\r', "");
        (status.code().unwrap_or(-1), text)
    }
}

/// The processes of a container whose command is `sh`.
fn shells(d: &Daemon, name: &str) -> usize {
    let top = d
        .http("GET", &format!("/containers/{name}/top"), None)
        .json();
    top["Processes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p.as_array().unwrap().last().unwrap().as_str() == Some("sh"))
        .count()
}

/// The docker CLI and berth's CLI detach from `run -it`, `start -ai`,
/// `attach` and `exec -it` with ctrl-p,ctrl-q, `--detach-keys` or
/// `detachKeys` in config.json, and leave the container (or exec) running:
/// run and start exit 0, attach and exec fail with "read escape sequence",
/// as the docker CLI does.
#[test]
fn detach_keys_leave_the_container_running() {
    let Some(d) = native_daemon() else { return };
    let config = d.dir.path().join("docker-config");
    std::fs::create_dir_all(&config).unwrap();
    let docker_bin = which("docker").unwrap();
    let berth_bin = bin("berth");
    let host = d.host();
    for (cli, program) in [("docker", docker_bin), ("berth", berth_bin)] {
        let c = format!("{cli}-dt");
        let on_tty = |args: &[&str]| {
            let mut all = vec!["-H", host.as_str()];
            all.extend_from_slice(args);
            Terminal::start(&program, &all, &config)
        };
        // run -it, then the default keys.
        let Some(mut t) = on_tty(&["run", "-it", "--name", &c, "busybox", "sh"]) else {
            return;
        };
        t.expect("/ # ");
        t.type_keys(b"\x10\x11");
        let (code, screen) = t.finish();
        assert_eq!(code, 0, "{cli} run -it detached: {screen}");
        assert_eq!(d.inspect(&c)["State"]["Running"], true, "{cli}");

        // attach, then the default keys: the shell still has its stdin.
        let mut t = on_tty(&["attach", &c]).unwrap();
        t.type_keys(b"echo at-$((40+2))\r");
        t.expect("at-42");
        t.type_keys(b"\x10\x11");
        let (code, screen) = t.finish();
        assert_eq!(code, 1, "{cli} attach detached: {screen}");
        assert!(screen.contains("read escape sequence"), "{cli}: {screen}");
        assert_eq!(d.inspect(&c)["State"]["Running"], true, "{cli}");

        // --detach-keys: the default keys are input then.
        let mut t = on_tty(&["attach", "--detach-keys", "ctrl-a,x", &c]).unwrap();
        t.type_keys(b"echo cu-$((40+2))\r");
        t.expect("cu-42");
        t.type_keys(b"\x10\x11\x01x");
        let (code, screen) = t.finish();
        assert_eq!(code, 1, "{cli} attach --detach-keys: {screen}");
        assert_eq!(d.inspect(&c)["State"]["Running"], true, "{cli}");

        // detachKeys in config.json.
        std::fs::write(config.join("config.json"), r#"{"detachKeys": "ctrl-e,e"}"#).unwrap();
        let mut t = on_tty(&["attach", &c]).unwrap();
        t.type_keys(b"echo cf-$((40+2))\r");
        t.expect("cf-42");
        t.type_keys(b"\x05e");
        let (code, screen) = t.finish();
        std::fs::remove_file(config.join("config.json")).unwrap();
        assert_eq!(code, 1, "{cli} attach with config.json keys: {screen}");
        assert_eq!(d.inspect(&c)["State"]["Running"], true, "{cli}");

        // exec -it: the exec'd shell runs on beside the first.
        let mut t = on_tty(&["exec", "-it", &c, "sh"]).unwrap();
        t.expect("/ # ");
        t.type_keys(b"\x10\x11");
        let (code, screen) = t.finish();
        assert_eq!(code, 1, "{cli} exec -it detached: {screen}");
        assert!(screen.contains("read escape sequence"), "{cli}: {screen}");
        assert_eq!(shells(&d, &c), 2, "{cli}");

        // start -ai of a stopped container.
        let s = format!("{cli}-ds");
        dok(&d, &["create", "-it", "--name", &s, "busybox", "sh"]);
        let mut t = on_tty(&["start", "-ai", &s]).unwrap();
        t.type_keys(b"echo st-$((40+2))\r");
        t.expect("st-42");
        t.type_keys(b"\x10\x11");
        let (code, screen) = t.finish();
        assert_eq!(code, 0, "{cli} start -ai detached: {screen}");
        assert_eq!(d.inspect(&s)["State"]["Running"], true, "{cli}");

        // Bad keys: refused before anything is created.
        let out = Command::new(&program)
            .args(["-H", &host, "run", "--detach-keys", "ctrl-1", "--name"])
            .arg(format!("{cli}-bad"))
            .args(["busybox", "true"])
            .env("DOCKER_CONFIG", &config)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{cli}: {}", stdout(&out));
        if cli == "berth" {
            // berth checks them first; docker creates the container, then
            // its attach is refused (400: "unable to upgrade to tcp").
            assert!(
                stderr(&out).contains("Invalid detach keys"),
                "{}",
                stderr(&out)
            );
            assert_eq!(out.status.code(), Some(125), "{}", stderr(&out));
            assert_eq!(
                d.http("GET", &format!("/containers/{cli}-bad/json"), None)
                    .status,
                404
            );
        } else {
            let _ = d.http("DELETE", &format!("/containers/{cli}-bad?force=1"), None);
        }
        dok(&d, &["rm", "-f", &c, &s]);
    }
}

// ----- inspect, wait -----------------------------------------------------

#[test]
fn inspect_containers_and_images_with_templates() {
    let Some(d) = native_daemon() else { return };
    d.import("hello.wasm", "hello");
    let out = docker(
        &d,
        &[
            "run",
            "--name",
            "ic",
            "-l",
            "team=blue",
            "busybox",
            "sh",
            "-c",
            "exit 2",
        ],
    );
    code(&out, 2, "run");
    dok(&d, &["run", "--name", "iw", "hello", "x"]);
    assert_eq!(
        inspect_f(
            &d,
            "ic",
            "{{.Name}} {{.State.Status}} {{.State.ExitCode}} {{.Config.Image}} {{.Path}} {{json .Args}} {{index .Config.Labels \"team\"}}"
        ),
        r#"/ic exited 2 busybox sh ["-c","exit 2"] blue"#
    );
    assert_eq!(
        dok(
            &d,
            &[
                "container",
                "inspect",
                "-f",
                "{{.State.Running}} {{.RestartCount}}",
                "iw"
            ]
        ),
        "false 0\n"
    );
    // Both kinds of object, and both at once.
    assert_eq!(
        dok(
            &d,
            &[
                "image",
                "inspect",
                "-f",
                "{{.Os}}/{{.Architecture}} {{json .Config.Cmd}} {{json .RepoTags}}",
                "busybox"
            ]
        ),
        format!("linux/{} [\"sh\"] [\"busybox:latest\"]\n", host_arch())
    );
    assert_eq!(
        dok(
            &d,
            &[
                "inspect",
                "--type",
                "image",
                "-f",
                "{{.Architecture}}",
                "hello"
            ]
        ),
        "wasm\n"
    );
    let image_id = dok(&d, &["image", "inspect", "-f", "{{.Id}}", "busybox"]);
    assert_eq!(inspect_f(&d, "ic", "{{.Image}}"), image_id.trim());
    let both: Value = serde_json::from_str(&dok(&d, &["inspect", "ic", "busybox"])).unwrap();
    let both = both.as_array().unwrap();
    assert_eq!(both.len(), 2);
    assert_eq!(both[0]["Name"], "/ic");
    assert_eq!(both[1]["Id"], image_id.trim());
    let out = docker(&d, &["inspect", "ic", "nothing-here"]);
    code(&out, 1, "inspect of a missing object");
    assert!(
        stderr(&out).contains("No such object: nothing-here"),
        "{}",
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("\"Name\": \"/ic\""),
        "{}",
        stdout(&out)
    );
    assert!(derr(&d, &["inspect", "--type", "container", "busybox"]).contains("No such container"));
}

#[test]
fn wait_prints_the_exit_code() {
    let Some(d) = native_daemon() else { return };
    d.import("hello.wasm", "hello");
    dok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "w1",
            "busybox",
            "sh",
            "-c",
            "sleep 0.3; exit 9",
        ],
    );
    dok(&d, &["run", "-d", "--name", "w2", "hello", "--exit", "6"]);
    let out = docker(&d, &["wait", "w1", "w2"]);
    code(&out, 0, "wait");
    assert_eq!(stdout(&out), "9\n6\n");
    // A container that already exited: at once.
    assert_eq!(dok(&d, &["wait", "w1"]), "9\n");
    let out = docker(&d, &["wait", "nothing-here"]);
    code(&out, 1, "wait for a missing container");
    assert!(
        stderr(&out).contains("No such container"),
        "{}",
        stderr(&out)
    );
}

// ----- images: tag, rmi, save, load, import ------------------------------

#[test]
fn tag_and_rmi() {
    let Some(d) = daemon() else { return };
    d.import("hello.wasm", "hello");
    let id = dok(&d, &["image", "inspect", "-f", "{{.Id}}", "hello"]);
    let id = id.trim();
    assert_eq!(dok(&d, &["tag", "hello", "hello:v2"]), "");
    assert_eq!(
        dok(&d, &["tag", "hello:v2", "registry.test:5000/team/hi:v3"]),
        ""
    );
    assert_eq!(
        dok(
            &d,
            &[
                "image",
                "inspect",
                "-f",
                "{{.Id}}",
                "registry.test:5000/team/hi:v3"
            ]
        )
        .trim(),
        id
    );
    assert!(derr(&d, &["tag", "nothing-here", "x:1"]).contains("No such image"));
    assert!(derr(&d, &["tag", "hello", "Bad:Name"]).contains("invalid reference format"));

    // One tag of several: only the tag goes.
    let out = docker(&d, &["rmi", "hello:v2"]);
    code(&out, 0, "rmi of a tag");
    assert_eq!(stdout(&out), "Untagged: hello:v2\n");
    assert!(derr(&d, &["image", "inspect", "hello:v2"]).contains("No such image"));
    // A row per tag, as Docker prints them.
    assert_eq!(dok(&d, &["images", "-q"]).lines().count(), 2);

    // In use by a container: one tag of several goes, the last one is a
    // conflict.
    dok(&d, &["create", "--name", "user", "hello"]);
    let out = docker(&d, &["rmi", "registry.test:5000/team/hi:v3", "hello"]);
    code(&out, 1, "rmi of an image in use");
    assert_eq!(stdout(&out), "Untagged: registry.test:5000/team/hi:v3\n");
    let err = stderr(&out);
    assert!(
        err.contains("conflict: unable to remove repository reference \"hello\" (must force)"),
        "{err}"
    );
    dok(&d, &["rm", "user"]);
    let out = dok(&d, &["rmi", "hello"]);
    assert!(out.starts_with("Untagged: hello:latest\n"), "{out}");
    assert!(out.contains(&format!("Deleted: {id}\n")), "{out}");
    assert_eq!(dok(&d, &["images", "-q"]), "");
    let out = docker(&d, &["rmi", "hello"]);
    code(&out, 1, "rmi of a missing image");
    assert!(stderr(&out).contains("No such image"), "{}", stderr(&out));
}

#[test]
fn save_and_load_round_trip() {
    let Some(d) = daemon() else { return };
    d.import("hello.wasm", "hello");
    d.import("cat.wasm", "wcat");
    let file = d.dir.path().join("saved.tar");
    let out = docker(&d, &["save", "-o", file.to_str().unwrap(), "hello", "wcat"]);
    code(&out, 0, "save -o");
    assert_eq!(stdout(&out), "");
    let data = std::fs::read(&file).unwrap();
    let mut tags = Vec::new();
    let mut a = tar::Archive::new(&data[..]);
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_str() == Some("manifest.json") {
            let m: Value = serde_json::from_reader(&mut e).unwrap();
            for i in m.as_array().unwrap() {
                tags.extend(i["RepoTags"].as_array().unwrap().iter().cloned());
            }
        }
    }
    tags.sort_by_key(|t| t.to_string());
    assert_eq!(tags, ["hello:latest", "wcat:latest"]);

    dok(&d, &["rmi", "hello", "wcat"]);
    let out = docker(&d, &["load", "-i", file.to_str().unwrap()]);
    code(&out, 0, "load -i");
    let text = stdout(&out);
    assert!(text.contains("Loaded image: hello:latest\n"), "{text}");
    assert!(text.contains("Loaded image: wcat:latest\n"), "{text}");
    let out = docker(&d, &["run", "--rm", "hello"]);
    code(&out, 0, "run of a loaded image");
    assert!(stdout(&out).starts_with("Hello from Wasm!"));

    // To stdout and from stdin.
    let out = docker(&d, &["save", "wcat"]);
    code(&out, 0, "save to stdout");
    dok(&d, &["rmi", "wcat"]);
    let out = docker_stdin(&d, &["load"], &out.stdout);
    code(&out, 0, "load from stdin");
    assert!(
        stdout(&out).contains("Loaded image: wcat:latest"),
        "{}",
        stdout(&out)
    );
    let out = docker_stdin(&d, &["load", "-q"], &data);
    code(&out, 0, "load -q");
    // Garbage.
    let out = docker_stdin(&d, &["load"], b"not a tarball");
    assert!(!out.status.success());
    assert!(derr(&d, &["save", "nothing-here"]).contains("nothing-here"));

    if !native_ok() {
        return;
    }
    d.busybox();
    let file = d.dir.path().join("busybox.tar");
    dok(&d, &["save", "-o", file.to_str().unwrap(), "busybox"]);
    dok(&d, &["rmi", "busybox"]);
    assert!(
        dok(&d, &["load", "-i", file.to_str().unwrap()]).contains("Loaded image: busybox:latest")
    );
    let out = docker(&d, &["run", "--rm", "busybox", "echo", "loaded"]);
    code(&out, 0, "run of loaded busybox");
    assert_eq!(stdout(&out), "loaded\n");
}

#[test]
fn import_a_rootfs_tarball() {
    let Some(d) = daemon() else { return };
    let tar = busybox_rootfs();
    let tar = tar.to_str().unwrap();
    let out = docker(&d, &["import", tar, "imported:v1"]);
    code(&out, 0, "import");
    let id = stdout(&out);
    let hex = id.trim().strip_prefix("sha256:").unwrap_or("");
    assert!(is_hex(hex, 64), "{id}");
    assert_eq!(
        dok(
            &d,
            &["image", "inspect", "-f", "{{.Id}} {{.Os}}", "imported:v1"]
        ),
        format!("{} linux\n", id.trim())
    );
    assert_eq!(
        dok(
            &d,
            &["image", "inspect", "-f", "{{.Comment}}", "imported:v1"]
        ),
        "Imported from -\n"
    );
    // With Dockerfile changes, and from stdin.
    dok(
        &d,
        &[
            "import",
            "-c",
            "CMD [\"echo\", \"from cmd\"]",
            "-c",
            "ENV WHO=imp",
            tar,
            "imported:v2",
        ],
    );
    assert_eq!(
        dok(
            &d,
            &[
                "image",
                "inspect",
                "-f",
                "{{json .Config.Cmd}} {{json .Config.Env}}",
                "imported:v2"
            ]
        ),
        "[\"echo\",\"from cmd\"] [\"WHO=imp\"]\n"
    );
    let data = std::fs::read(tar).unwrap();
    let out = docker_stdin(&d, &["import", "-", "imported:v3"], &data);
    code(&out, 0, "import from stdin");
    assert!(stdout(&out).starts_with("sha256:"), "{}", stdout(&out));
    assert!(derr(&d, &["import", "/nonexistent.tar", "x"]).contains("nonexistent"));

    if !native_ok() {
        return;
    }
    let out = docker(&d, &["run", "--rm", "imported:v1", "/bin/echo", "imported"]);
    code(&out, 0, "run of an imported image");
    assert_eq!(stdout(&out), "imported\n");
    let out = docker(&d, &["run", "--rm", "imported:v2"]);
    code(&out, 0, "run of an imported image with a CMD");
    assert_eq!(stdout(&out), "from cmd\n");
}

// ----- stats -------------------------------------------------------------

#[test]
fn stats_no_stream_of_a_native_container() {
    let Some(d) = native_daemon() else { return };
    let id = native_sleeper(&d, "st", &["-m", "64m"]);
    let out = docker(&d, &["stats", "--no-stream", "st"]);
    code(&out, 0, "stats --no-stream");
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with("CONTAINER ID "), "{text}");
    assert!(lines[0].contains("MEM USAGE / LIMIT"), "{text}");
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(row[0], &id[..12], "{text}");
    assert_eq!(row[1], "st", "{text}");
    assert!(lines[1].contains(" / 64MiB "), "{text}");
    let mem = dok(
        &d,
        &[
            "stats",
            "--no-stream",
            "--format",
            "{{.Name}} {{.MemUsage}} {{.PIDs}}",
            "st",
        ],
    );
    let parts: Vec<&str> = mem.split_whitespace().collect();
    assert_eq!(parts[0], "st", "{mem}");
    // A figure with a unit: 512KiB, 1.2MiB, ...
    let usage = parts[1];
    let digits = usage.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    assert!(
        digits.parse::<f64>().is_ok_and(|v| v > 0.0) && usage.ends_with('B'),
        "{mem}"
    );
    assert_eq!(&parts[2..], ["/", "64MiB", "2"], "{mem}");
    // Every running container, by default.
    let all = dok(&d, &["stats", "--no-stream", "--format", "{{.Name}}"]);
    assert_eq!(all, "st\n");
    dok(&d, &["rm", "-f", "st"]);
}

#[test]
fn stats_of_a_wasm_container_come_from_the_engine() {
    let Some(d) = daemon() else { return };
    d.import("spin.wasm", "spin");
    dok(&d, &["run", "-d", "--name", "wst", "-m", "16m", "spin"]);
    // One sample a second apart: the busy guest used CPU in between.
    let r = d.http("GET", "/containers/wst/stats?stream=0", None);
    assert_eq!(r.status, 200, "{}", r.text());
    let s = r.json();
    let total = s["cpu_stats"]["cpu_usage"]["total_usage"].as_u64().unwrap();
    let before = s["precpu_stats"]["cpu_usage"]["total_usage"]
        .as_u64()
        .unwrap();
    assert!(
        total > before + 100_000_000,
        "a busy loop uses CPU: {before} -> {total}"
    );
    assert!(s["memory_stats"]["usage"].as_u64().unwrap() >= 65536, "{s}");
    assert_eq!(s["memory_stats"]["limit"], 16 * 1024 * 1024, "{s}");
    let out = dok(
        &d,
        &[
            "stats",
            "--no-stream",
            "--format",
            "{{.Name}} {{.CPUPerc}} {{.MemUsage}}",
            "wst",
        ],
    );
    let parts: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(parts[0], "wst", "{out}");
    let cpu: f64 = parts[1].trim_end_matches('%').parse().unwrap();
    assert!(cpu > 10.0, "{out}");
    assert_eq!(&parts[3..], ["/", "16MiB"], "{out}");
    dok(&d, &["rm", "-f", "wst"]);
    // A stopped one has zeros, as Docker's.
    dok(&d, &["create", "--name", "wst2", "spin"]);
    let s = d
        .http("GET", "/containers/wst2/stats?stream=0", None)
        .json();
    assert_eq!(s["cpu_stats"]["cpu_usage"]["total_usage"], 0);
    assert_eq!(s["memory_stats"], serde_json::json!({}));
}
