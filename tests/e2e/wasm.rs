//! Wasm containers end to end: running, exit codes, logs, stop, limits,
//! stdin, every Wasm image form, and what happens to bad modules.

use crate::harness::*;
use crate::images::{self, Layer};
use serde_json::json;
use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

#[test]
fn hello_runs_and_prints_args_and_env() {
    let d = Daemon::start();
    d.import("hello.wasm", "hello");
    let out = d.ok(&["run", "--rm", "-e", "GREETING=hi", "hello", "a", "b c"]);
    assert_eq!(
        out,
        "Hello from Wasm!\nargv[0]=hello.wasm\nargv[1]=a\nargv[2]=b c\nGREETING=hi\ncwd=/\n"
    );
}

#[test]
fn exit_code_propagates_to_berth_run() {
    let d = Daemon::start();
    d.import("hello.wasm", "hello");
    let out = d.berth(&["run", "--rm", "hello", "--exit", "3"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    d.import("exit7.wasm", "exit7");
    let out = d.berth(&["run", "exit7"]);
    assert_eq!(out.status.code(), Some(7));
}

#[test]
fn stderr_is_kept_apart_from_stdout() {
    let d = Daemon::start();
    d.import("hello.wasm", "hello");
    let out = d.berth(&["run", "--name", "err", "hello", "--stderr", "oops"]);
    assert!(out.status.success());
    assert!(
        !stdout(&out).lines().any(|l| l == "oops"),
        "{}",
        stdout(&out)
    );
    assert_eq!(stderr(&out), "oops\n");
    // The log keeps the streams apart too.
    let logs = d.berth(&["logs", "err"]);
    assert!(stdout(&logs).starts_with("Hello from Wasm!\n"));
    assert_eq!(stderr(&logs), "oops\n");
}

#[test]
fn rm_flag_removes_the_container() {
    let d = Daemon::start();
    d.import("hello.wasm", "hello");
    d.ok(&["run", "--rm", "--name", "gone", "hello"]);
    let ps = d.ok(&["ps", "-a"]);
    assert!(!ps.contains("gone"), "{ps}");
    let r = d.http("GET", "/containers/gone/json", None);
    assert_eq!(r.status, 404);
}

#[test]
fn detached_logs_follow_then_stop_a_sleeping_module() {
    let d = Daemon::start();
    d.import("sleep.wasm", "sleep");
    let id = d.ok(&["run", "-d", "--name", "sl", "sleep", "3600"]);
    assert_eq!(id.trim().len(), 64, "run -d prints the full id: {id}");
    // Follow the log from another process while the module runs.
    let follower = d
        .berth_cmd(&["logs", "-f", "sl"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    d.eventually("the module to print", || {
        d.ok(&["logs", "sl"]).contains("sleeping 3600")
    });
    let ps = d.ok(&["ps"]);
    assert!(ps.contains("sl") && ps.contains("Up "), "{ps}");
    // The module is blocked in a host call; stop ends it at once.
    d.ok(&["stop", "-t", "30", "sl"]);
    let out = follower.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "logs -f ends when the container stops"
    );
    assert_eq!(stdout(&out), "sleeping 3600\n");
    let st = d.inspect("sl");
    assert_eq!(st["State"]["Status"], "exited");
    assert_eq!(
        st["State"]["ExitCode"], 143,
        "ended by the stop signal, not a kill"
    );
    // Stopping a stopped container is a 304, and the CLI says nothing went wrong.
    let r = d.http("POST", "/containers/sl/stop", None);
    assert_eq!(r.status, 304);
}

#[test]
fn a_full_instance_pool_refuses_the_next_start_clearly() {
    let d = Daemon::start_with_pool(2);
    d.import("sleep.wasm", "sleep");
    d.ok(&["run", "-d", "--name", "p1", "sleep", "3600"]);
    d.ok(&["run", "-d", "--name", "p2", "sleep", "3600"]);
    let out = d.berth(&["run", "-d", "--name", "p3", "sleep", "3600"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("already runs 2 Wasm containers")
            && stderr(&out).contains("--wasm-pool-slots"),
        "{}",
        stderr(&out)
    );
    assert_eq!(d.inspect("p3")["State"]["Status"], "created");
    // A slot freed is a slot to use.
    d.ok(&["rm", "-f", "p1"]);
    d.ok(&["start", "p3"]);
    assert_eq!(d.inspect("p3")["State"]["Status"], "running");
}

#[test]
fn busy_loop_is_stopped_within_its_timeout() {
    let d = Daemon::start();
    d.import("spin.wasm", "spin");
    d.ok(&["run", "-d", "--name", "busy", "spin"]);
    d.eventually("spinning", || d.ok(&["logs", "busy"]).contains("spinning"));
    // With -t 5 a module that ignored the stop would be killed (137) after
    // 5 s; a Wasm module has no signal handlers, so the stop ends it (143).
    d.ok(&["stop", "-t", "5", "busy"]);
    let st = d.inspect("busy");
    assert_eq!(st["State"]["ExitCode"], 143);
    // kill works on a busy loop as well.
    d.ok(&["start", "busy"]);
    d.ok(&["kill", "busy"]);
    d.eventually("the kill", || {
        d.inspect("busy")["State"]["Running"] == false
    });
    assert_eq!(d.inspect("busy")["State"]["ExitCode"], 137);
}

#[test]
fn memory_limit_stops_a_growing_module() {
    let d = Daemon::start();
    d.import("memhog.wasm", "memhog");
    let out = d.berth(&["run", "--name", "hog", "--memory", "32m", "memhog"]);
    assert_eq!(out.status.code(), Some(137), "{}", stderr(&out));
    let st = d.inspect("hog");
    assert_eq!(st["State"]["OOMKilled"], true);
    let err = st["State"]["Error"].as_str().unwrap();
    assert!(err.contains("memory limit"), "{err}");
    assert_eq!(st["HostConfig"]["Memory"], 32 * 1024 * 1024);
    // Without the limit the same module runs to its own end.
    let out = d.berth(&["run", "--rm", "memhog", "40"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("allocated 32 MiB"));
}

#[test]
fn trap_ends_the_container_with_the_message() {
    let d = Daemon::start();
    d.import("trap.wasm", "trap");
    let out = d.berth(&["run", "--name", "tr", "trap"]);
    assert_eq!(out.status.code(), Some(134));
    assert_eq!(stdout(&out), "about to trap\n");
    assert!(stderr(&out).contains("unreachable"), "{}", stderr(&out));
    let st = d.inspect("tr");
    assert!(
        st["State"]["Error"]
            .as_str()
            .unwrap()
            .contains("unreachable")
    );
    let logs = d.berth(&["logs", "tr"]);
    assert!(stderr(&logs).contains("wasm trap"), "{}", stderr(&logs));
}

#[test]
fn stdin_reaches_the_module_when_interactive() {
    let d = Daemon::start();
    d.import("cat.wasm", "cat");
    let mut child = d
        .berth_cmd(&["run", "--rm", "-i", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"hi\nthere\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "hi\nthere\n");
    assert_eq!(stderr(&out), "cat: 9 bytes\n");
}

#[test]
fn preview2_component_runs() {
    let d = Daemon::start();
    d.import("hello-p2.wasm", "hello-p2");
    let out = d.ok(&["run", "--name", "p2", "-e", "GREETING=yo", "hello-p2", "x"]);
    assert!(out.starts_with("Hello from a component!\n"), "{out}");
    assert!(
        out.contains("argv[1]=x\n") && out.contains("GREETING=yo\n"),
        "{out}"
    );
    let st = d.inspect("p2");
    assert_eq!(st["Platform"], "wasip2");
    assert_eq!(st["Executor"], "wasm");
    let out = d.berth(&["run", "--rm", "hello-p2", "--exit", "5"]);
    assert_ne!(
        out.status.code(),
        Some(0),
        "a failing component fails the container"
    );
}

#[test]
fn wat_module_imports_and_runs() {
    let d = Daemon::start();
    // Text format is accepted as is.
    let wat = crate::harness::repo_root().join("samples/wat/hello.wat");
    d.ok(&["wasm", "import", wat.to_str().unwrap(), "wat-text"]);
    assert_eq!(d.ok(&["run", "--rm", "wat-text"]), "Hello from WAT!\n");
    d.import("wat-hello.wasm", "wat-bin");
    assert_eq!(d.ok(&["run", "--rm", "wat-bin"]), "Hello from WAT!\n");
}

/// Loads `tar` and returns the loader's output.
fn load(d: &Daemon, tar: &[u8]) -> String {
    let path = d.dir.path().join(format!("img-{}.tar", images::sha(tar)));
    std::fs::write(&path, tar).unwrap();
    d.ok(&["load", "-i", path.to_str().unwrap()])
}

#[test]
fn every_wasm_image_form_runs() {
    let d = Daemon::start();
    let module = std::fs::read(sample("hello.wasm")).unwrap();

    // 1. The CNCF Wasm OCI artifact, as another tool would have written it.
    for (tag, media) in [
        ("form-cncf", "application/wasm"),
        (
            "form-bca",
            "application/vnd.bytecodealliance.wasm.component.layer.v0+wasm",
        ),
        ("form-content", "application/vnd.wasm.content.layer.v1+wasm"),
    ] {
        // Distinct configs, so that each is an image of its own.
        let wasm_config = json!({"architecture": "wasm", "os": "wasip1", "author": tag});
        let mut layer = Layer::new(media, module.clone());
        layer.annotations = json!({"org.opencontainers.image.title": format!("{tag}.wasm")});
        let tar = images::oci_layout(
            &format!("docker.io/library/{tag}:latest"),
            "application/vnd.wasm.config.v0+json",
            &wasm_config,
            &[layer],
            json!({}),
        );
        let loaded = load(&d, &tar);
        assert!(
            loaded.contains(&format!("Loaded image: {tag}:latest")),
            "{loaded}"
        );
        let out = d.ok(&["run", "--rm", tag, "x"]);
        assert_eq!(
            out,
            format!("Hello from Wasm!\nargv[0]={tag}.wasm\nargv[1]=x\ncwd=/\n"),
            "{media}"
        );
    }

    // 2. A wasi/wasm platform image: a tar layer holding the module, named
    //    by the entrypoint. Shipped as an old-style docker save archive.
    let layer = images::tar_with_file("app/hello.wasm", &module);
    let config = json!({
        "architecture": "wasm", "os": "wasip1",
        "config": {"Entrypoint": ["/app/hello.wasm"], "Cmd": ["default-arg"], "Env": ["GREETING=from-image"]},
    });
    let loaded = load(
        &d,
        &images::docker_archive("form-platform:v1", &config, &[layer]),
    );
    assert!(
        loaded.contains("Loaded image: form-platform:v1"),
        "{loaded}"
    );
    assert_eq!(
        d.ok(&["run", "--rm", "form-platform:v1"]),
        "Hello from Wasm!\nargv[0]=/app/hello.wasm\nargv[1]=default-arg\nGREETING=from-image\ncwd=/\n"
    );

    // 3. A linux-platform image marked with the compat annotation.
    let layer = images::tar_with_file("hello.wasm", &module);
    let config = json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Entrypoint": ["/hello.wasm"]},
    });
    let tar = images::oci_layout(
        "docker.io/library/form-compat:latest",
        "application/vnd.oci.image.config.v1+json",
        &config,
        &[Layer::new("application/vnd.oci.image.layer.v1.tar", layer)],
        json!({"module.wasm.image/variant": "compat"}),
    );
    load(&d, &tar);
    let out = d.ok(&["run", "--rm", "form-compat"]);
    assert!(
        out.starts_with("Hello from Wasm!\nargv[0]=/hello.wasm\n"),
        "{out}"
    );

    // Every one of them is shown as a Wasm image.
    let imgs = d.http("GET", "/images/json", None).json();
    for img in imgs.as_array().unwrap() {
        assert_eq!(img["Executor"], "wasm", "{img}");
    }
}

#[test]
fn bad_modules_are_refused_and_the_daemon_stays_up() {
    let d = Daemon::start();
    for (file, want) in [
        ("not-wasm.txt", "not a WebAssembly binary"),
        ("missing-import.wasm", "does_not_exist"),
    ] {
        let path = sample(file);
        let out = d.berth(&["wasm", "import", path.to_str().unwrap(), "bad"]);
        assert!(!out.status.success());
        let err = stderr(&out);
        assert!(err.contains(want), "{file}: {err}");
    }
    // Nothing was stored.
    assert_eq!(d.http("GET", "/images/json", None).json(), json!([]));
    // A loaded image whose module cannot link is refused at create.
    let bad = std::fs::read(sample("missing-import.wasm")).unwrap();
    let tar = images::oci_layout(
        "docker.io/library/badlink:latest",
        "application/vnd.wasm.config.v0+json",
        &json!({"architecture": "wasm", "os": "wasip1"}),
        &[Layer::new("application/wasm", bad)],
        json!({}),
    );
    load(&d, &tar);
    let out = d.berth(&["run", "badlink"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(stderr(&out).contains("does_not_exist"), "{}", stderr(&out));
    assert_eq!(d.ok(&["ps", "-aq"]), "", "no container was left behind");
    assert_eq!(d.http("GET", "/_ping", None).status, 200);
}

#[test]
fn compiled_modules_are_cached_across_restarts() {
    let mut d = Daemon::start();
    d.import("hello.wasm", "hello");
    d.ok(&["run", "--rm", "hello"]);
    let cache = d.root.join("wasm-cache");
    let cwasm = find_files(&cache, "cwasm");
    assert_eq!(cwasm.len(), 1, "one compiled module in {}", cache.display());
    let before = std::fs::metadata(&cwasm[0]).unwrap().modified().unwrap();
    d.restart();
    std::thread::sleep(Duration::from_millis(20));
    assert!(
        d.ok(&["run", "--rm", "hello"])
            .starts_with("Hello from Wasm!")
    );
    let after = std::fs::metadata(&cwasm[0]).unwrap().modified().unwrap();
    assert_eq!(before, after, "the cached code was used, not rewritten");
}

fn find_files(dir: &std::path::Path, ext: &str) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(find_files(&p, ext));
        } else if p.extension().is_some_and(|x| x == ext) {
            out.push(p);
        }
    }
    out
}

#[test]
fn restart_policy_restarts_a_failing_module() {
    let d = Daemon::start();
    d.import("hello.wasm", "hello");
    d.ok(&[
        "run",
        "-d",
        "--name",
        "rp",
        "--restart",
        "on-failure:2",
        "hello",
        "--exit",
        "1",
    ]);
    d.eventually("two restarts", || {
        let st = d.inspect("rp");
        st["RestartCount"] == 2 && st["State"]["Status"] == "exited"
    });
    let logs = d.ok(&["logs", "rp"]);
    assert_eq!(logs.matches("Hello from Wasm!").count(), 3, "{logs}");
}

/// A core module of `n` empty functions (the first exported as `_start`),
/// encoded by hand: what a hostile upload looks like.
fn empty_functions(n: u32) -> Vec<u8> {
    fn leb(mut n: u64, out: &mut Vec<u8>) {
        loop {
            let b = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }
    fn section(id: u8, body: Vec<u8>, out: &mut Vec<u8>) {
        out.push(id);
        leb(body.len() as u64, out);
        out.extend(body);
    }
    let mut m = b"\0asm\x01\0\0\0".to_vec();
    section(1, vec![1, 0x60, 0, 0], &mut m);
    let mut funcs = Vec::new();
    leb(n.into(), &mut funcs);
    funcs.extend(std::iter::repeat_n(0u8, n as usize));
    section(3, funcs, &mut m);
    let mut exports = vec![1, 6];
    exports.extend_from_slice(b"_start");
    exports.extend_from_slice(&[0, 0]);
    section(7, exports, &mut m);
    let mut code = Vec::new();
    leb(n.into(), &mut code);
    for _ in 0..n {
        code.extend_from_slice(&[2, 0, 0x0b]);
    }
    section(10, code, &mut m);
    m
}

/// `VmHWM` (peak resident memory) of a process, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status")
}

/// POSTs `len` bytes that start like a module to `/berth/wasm/import` in
/// chunked encoding (no length given up front), as a client streaming a
/// file does; returns the status and body of the answer.
fn stream_upload(d: &Daemon, tag: &str, len: usize) -> (u16, String) {
    use std::io::{BufRead, BufReader, Read};
    use std::os::unix::net::UnixStream;
    let s = UnixStream::connect(&d.socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let mut w = s.try_clone().unwrap();
    let head = format!(
        "POST /berth/wasm/import?tag={tag} HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n\
         Content-Type: application/wasm\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    let writer = std::thread::spawn(move || {
        let chunk = vec![0u8; 1 << 20];
        let mut sent = 0;
        let mut first = true;
        let _ = w.write_all(head.as_bytes());
        while sent < len {
            let mut c = chunk.clone();
            if first {
                c[..8].copy_from_slice(b"\0asm\x01\0\0\0");
                first = false;
            }
            let n = c.len().min(len - sent);
            let frame = format!("{n:x}\r\n");
            if w.write_all(frame.as_bytes()).is_err()
                || w.write_all(&c[..n]).is_err()
                || w.write_all(b"\r\n").is_err()
            {
                // The daemon answered and stopped reading: as it should.
                return;
            }
            sent += n;
        }
        let _ = w.write_all(b"0\r\n\r\n");
    });
    let mut r = BufReader::new(s);
    let mut status = String::new();
    r.read_line(&mut status).unwrap();
    let code: u16 = status.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut rest = Vec::new();
    let _ = r.read_to_end(&mut rest);
    let _ = writer.join();
    let text = String::from_utf8_lossy(&rest).into_owned();
    let body = text
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    (code, body)
}

#[test]
fn a_module_upload_past_the_cap_is_413_and_never_held_in_memory() {
    let d = Daemon::start();
    let before = peak_rss_kib(d.pid());
    // 16 MiB past the default cap of 256 MiB, streamed without a length.
    let (status, body) = stream_upload(&d, "huge", (256 + 16) << 20);
    assert_eq!(status, 413, "{body}");
    assert!(
        body.contains("268435456 bytes") && body.contains("--wasm-limit module-size="),
        "{body}"
    );
    let grown = peak_rss_kib(d.pid()).saturating_sub(before);
    assert!(
        grown < 32 * 1024,
        "berthd's peak memory grew by {grown} KiB while refusing a 272 MiB upload"
    );
    // Nothing was kept: no image, no blob, no temp file.
    assert_eq!(d.http("GET", "/images/json", None).json(), json!([]));
    let tmp = std::fs::read_dir(d.root.join("blobs/tmp")).unwrap().count();
    assert_eq!(tmp, 0, "temp blobs left behind");
    let blobs = std::fs::read_dir(d.root.join("blobs/sha256"))
        .unwrap()
        .count();
    assert_eq!(blobs, 0);
    // A length over the cap is refused before the body is sent.
    let mut s = std::os::unix::net::UnixStream::connect(&d.socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "POST /berth/wasm/import?tag=huge HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n\
         Content-Type: application/wasm\r\nContent-Length: {}\r\n\r\n\0asm\x01\0\0\0",
        300u64 << 20
    )
    .unwrap();
    let mut answer = String::new();
    use std::io::Read;
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert_eq!(d.http("GET", "/_ping", None).status, 200);
}

#[test]
fn a_module_with_too_many_functions_is_refused_before_compiling() {
    let d = Daemon::start();
    // 300,000 empty functions in 1.2 MB: above the default limit. Compiling
    // it would take seconds and over a gigabyte.
    let module = empty_functions(300_000);
    let r = d.http(
        "POST",
        "/berth/wasm/import?tag=many",
        Some(("application/wasm", &module)),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    let msg = r.message();
    assert!(
        msg.contains("300000 functions") && msg.contains("--wasm-limit functions=N"),
        "{msg}"
    );
    assert_eq!(d.http("GET", "/images/json", None).json(), json!([]));
    let cwasm = find_files(&d.root.join("wasm-cache"), "cwasm");
    assert!(cwasm.is_empty(), "nothing was compiled: {cwasm:?}");
}

#[test]
fn wasm_limits_are_daemon_options_and_apply_at_run_too() {
    let module = empty_functions(1500);
    let tar = images::oci_layout(
        "docker.io/library/fns:latest",
        "application/vnd.wasm.config.v0+json",
        &json!({"architecture": "wasm", "os": "wasip1"}),
        &[Layer::new("application/wasm", module.clone())],
        json!({}),
    );
    {
        let d = Daemon::start_with_args(&["--wasm-limit", "functions=1000"]);
        let r = d.http(
            "POST",
            "/berth/wasm/import?tag=fns",
            Some(("application/wasm", &module)),
        );
        assert_eq!(r.status, 400, "{}", r.text());
        assert!(
            r.message().contains("limit of 1000 functions"),
            "{}",
            r.message()
        );
        // An image loaded (or pulled) is not compiled until it runs: the
        // run is refused, clearly, and nothing is left behind.
        load(&d, &tar);
        let out = d.berth(&["run", "fns"]);
        assert_eq!(out.status.code(), Some(125));
        assert!(
            stderr(&out).contains("1500 functions")
                && stderr(&out).contains("--wasm-limit functions=N"),
            "{}",
            stderr(&out)
        );
        assert_eq!(d.ok(&["ps", "-aq"]), "");
    }
    // The same module under a raised limit imports and runs.
    let d = Daemon::start_with_args(&["--wasm-limit", "functions=2000"]);
    let r = d.http(
        "POST",
        "/berth/wasm/import?tag=fns",
        Some(("application/wasm", &module)),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    d.ok(&["run", "--rm", "fns"]);
    // A bad value is refused at start, naming the option.
    let out = std::process::Command::new(bin("berthd"))
        .args(["--wasm-limit", "functoins=5"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("unknown limit"), "{}", stderr(&out));
}

#[test]
fn compiling_runs_outside_berthd_within_a_memory_and_time_budget() {
    // A module that takes a few hundred megabytes to compile: compiled in
    // the helper, so berthd's own memory does not grow by it.
    let d = Daemon::start();
    let before = peak_rss_kib(d.pid());
    let module = empty_functions(50_000);
    let r = d.http(
        "POST",
        "/berth/wasm/import?tag=fifty",
        Some(("application/wasm", &module)),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let grown = peak_rss_kib(d.pid()).saturating_sub(before);
    assert!(
        grown < 96 * 1024,
        "berthd's peak memory grew by {grown} KiB compiling the module"
    );
    d.ok(&["run", "--rm", "fifty"]);
    drop(d);

    // Over the memory budget: refused, saying which limit.
    let d = Daemon::start_with_args(&["--wasm-limit", "compile-memory=64m"]);
    let r = d.http(
        "POST",
        "/berth/wasm/import?tag=fifty",
        Some(("application/wasm", &module)),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.message().contains("more than 64 MiB")
            && r.message().contains("--wasm-limit compile-memory="),
        "{}",
        r.message()
    );
    // The small ones still compile.
    d.import("hello.wasm", "hello");
    assert!(
        d.ok(&["run", "--rm", "hello"])
            .starts_with("Hello from Wasm!")
    );
    drop(d);

    // Over the time budget: the compile is stopped, and the daemon answered
    // other requests meanwhile.
    let d = Daemon::start_with_args(&[
        "--wasm-limit",
        "compile-time=1",
        "--wasm-limit",
        "functions=400000",
    ]);
    d.import("hello.wasm", "hello");
    let slow = empty_functions(400_000);
    let socket = d.socket.clone();
    let upload = std::thread::spawn(move || {
        let d = Probe { socket };
        d.post("/berth/wasm/import?tag=slow", &slow)
    });
    // Meanwhile: other containers start.
    assert!(
        d.ok(&["run", "--rm", "hello"])
            .starts_with("Hello from Wasm!")
    );
    let (status, body) = upload.join().unwrap();
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("longer than 1 s") && body.contains("--wasm-limit compile-time="),
        "{body}"
    );
    assert!(
        std::fs::read_dir(find_cache_dir(&d.root))
            .unwrap()
            .flatten()
            .all(|e| !e.file_name().to_string_lossy().ends_with(".tmp")),
        "the killed compile left a temp file"
    );
}

/// The one fingerprint directory of a daemon's code cache.
fn find_cache_dir(root: &std::path::Path) -> std::path::PathBuf {
    std::fs::read_dir(root.join("wasm-cache"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_dir())
        .unwrap()
}

/// A bare HTTP client for another thread (the `Daemon` stays with the test).
struct Probe {
    socket: std::path::PathBuf,
}

impl Probe {
    fn post(&self, path: &str, body: &[u8]) -> (u16, String) {
        use std::io::Read;
        let mut s = std::os::unix::net::UnixStream::connect(&self.socket).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n\
             Content-Type: application/wasm\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(body).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let text = String::from_utf8_lossy(&out).into_owned();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = text
            .split("\r\n\r\n")
            .nth(1)
            .unwrap_or_default()
            .to_string();
        (status, body)
    }
}

/// A module that can reach its filesystem (it imports `fd_prestat_get`, so
/// its root is preopened and held) and sleeps an hour in `poll_oneoff`.
const FS_SLEEPER: &str = r#"(module
  (import "wasi_snapshot_preview1" "poll_oneoff"
    (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get"
    (func $prestat (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    ;; One clock subscription at 0: monotonic clock, 3600 s.
    (i32.store (i32.const 16) (i32.const 1))
    (i64.store (i32.const 24) (i64.const 3600000000000))
    (drop (call $poll (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128)))))"#;

/// Creates and starts a detached container through the API; returns the
/// start's answer.
fn start_detached(d: &Daemon, image: &str, cmd: &[&str]) -> crate::harness::HttpResponse {
    let body = json!({"Image": image, "Cmd": cmd}).to_string();
    let r = d.http(
        "POST",
        "/containers/create",
        Some(("application/json", body.as_bytes())),
    );
    assert_eq!(r.status, 201, "create: {}", r.text());
    let id = r.json()["Id"].as_str().unwrap().to_string();
    d.http("POST", &format!("/containers/{id}/start"), None)
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

#[test]
fn idle_wasm_containers_hold_no_descriptors_and_the_limit_is_named() {
    let Some(prlimit) = require("prlimit") else {
        return;
    };
    let d = Daemon::start_with_pool(2000);
    d.import("sleep.wasm", "sleep");
    let wat = d.dir.path().join("fs-sleeper.wat");
    std::fs::write(&wat, FS_SLEEPER).unwrap();
    d.ok(&["wasm", "import", wat.to_str().unwrap(), "fs-sleeper"]);
    // berthd may open 1024 files from now on.
    const LIMIT: usize = 1024;
    let out = std::process::Command::new(prlimit)
        .arg(format!("--pid={}", d.pid()))
        .arg(format!("--nofile={LIMIT}:{LIMIT}"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));

    // More idle containers than the limit has descriptors: each blocked in
    // a sleep, none holding one (they held two each, their log and root).
    let before = open_fds(d.pid());
    for i in 0..LIMIT + 50 {
        let r = start_detached(&d, "sleep", &["3600"]);
        assert_eq!(r.status, 204, "container {i}: {}", r.text());
    }
    let held = open_fds(d.pid()) - before;
    assert!(
        held <= 200,
        "{} sleeping containers hold {held} descriptors",
        LIMIT + 50
    );
    eprintln!("{} sleeping containers hold {held} descriptors", LIMIT + 50);

    // Containers that can use their filesystem hold their root open: more
    // than half the limit of them run, and the one past what berthd can
    // spare is refused with the limit and the ways to change it.
    let mut started = 0;
    let refusal = loop {
        let r = start_detached(&d, "fs-sleeper", &[]);
        if r.status != 204 {
            break r;
        }
        started += 1;
        assert!(started <= LIMIT, "no refusal before the limit");
    };
    assert!(started > LIMIT / 2, "only {started} ran");
    eprintln!("{started} containers holding their root ran");
    let msg = refusal.message();
    assert_eq!(refusal.status, 409, "{msg}");
    assert!(
        msg.contains(&LIMIT.to_string())
            && msg.contains("RLIMIT_NOFILE")
            && msg.contains("ulimit -n")
            && msg.contains("LimitNOFILE")
            && msg.contains("--wasm-pool-slots"),
        "{msg}"
    );
    // The API stayed reachable: berthd kept descriptors for it.
    let running = d.ok(&["ps", "-q"]).lines().count();
    assert_eq!(running, LIMIT + 50 + started);
    assert!(open_fds(d.pid()) < LIMIT);
}

#[test]
fn berthd_warns_at_start_when_the_pool_outgrows_its_descriptor_limit() {
    let Some(prlimit) = require("prlimit") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("b.sock");
    let log = dir.path().join("berthd.log");
    let mut child = std::process::Command::new(prlimit)
        .arg("--nofile=1024:1024")
        .arg(bin("berthd"))
        .arg("--root")
        .arg(dir.path().join("root"))
        .arg("--host")
        .arg(format!("unix://{}", socket.display()))
        .arg("--wasm-pool-slots")
        .arg("5000")
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // The socket is bound before the engine starts: wait for "ready".
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut text = String::new();
    while !text.contains("berthd ready") && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        text = std::fs::read_to_string(&log).unwrap();
    }
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.wait();
    assert!(
        text.contains("--wasm-pool-slots 5000 is more than berthd's descriptor limit allows")
            && text.contains("RLIMIT_NOFILE 1024")
            && text.contains("ulimit -n"),
        "{text}"
    );
}
