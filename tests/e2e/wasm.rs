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
