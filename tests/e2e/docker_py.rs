//! docker-py (the PyPI `docker` package, Debian's `python3-docker`)
//! against berthd: runs tests/py/test_docker_sdk.py with `DOCKER_HOST` set
//! to a fresh daemon, the sample images imported and, for `images.pull`,
//! an image pushed by berth to the distribution registry on 127.0.0.1.
//!
//! Skipped outside CI when python3 cannot import `docker`; in CI (where
//! tests/setup.sh installs it) a missing module fails.

use crate::harness::*;
use crate::registry::DistRegistry;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Whether python3 has docker-py; a failure in CI if not.
fn docker_py() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import docker"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            !ci(),
            "docker-py is required in CI: python3 -c 'import docker' failed"
        );
        eprintln!("skipping: python3 cannot import docker (pip install docker)");
    }
    ok
}

#[test]
fn docker_py_drives_berthd() {
    if !docker_py() {
        return;
    }
    let Some(reg) = DistRegistry::start(false) else {
        return;
    };
    let d = Daemon::start();
    d.import("hello.wasm", "hello");
    d.import("sleep.wasm", "wsleep");
    let native = native_ok();
    if native {
        d.busybox();
    }
    // An image in the registry and not in berthd, for images.pull.
    let remote = format!("{}/py/hello:v1", reg.host());
    d.ok(&["tag", "hello", &remote]);
    let config = d.dir.path().join("docker-config");
    let push = |args: &[&str]| {
        let out = d
            .berth_cmd(args)
            .env("DOCKER_CONFIG", &config)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "berth {args:?}: {}{}",
            stdout(&out),
            stderr(&out)
        );
    };
    push(&["push", &remote]);
    push(&["rmi", &remote]);

    let script = repo_root().join("tests/py/test_docker_sdk.py");
    let mut child = Command::new("python3")
        .arg(&script)
        .env("DOCKER_HOST", d.host())
        .env("DOCKER_CONFIG", &config)
        .env("BERTH_TEST_REGISTRY_IMAGE", &remote)
        .env("BERTH_TEST_NATIVE", if native { "1" } else { "0" })
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CERT_PATH")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running python3");
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{} failed ({}):\n{}{}\ndaemon log:\n{}",
        script.display(),
        out.status,
        stdout(&out),
        stderr(&out),
        tail(&d.log_text(), 60)
    );
    // unittest reports on stderr; every test ran (none skipped but for a
    // reason given above).
    let report = stderr(&out);
    assert!(report.contains("\nOK"), "{report}");
    if native {
        assert!(!report.contains("skipped"), "{report}");
    }
}
