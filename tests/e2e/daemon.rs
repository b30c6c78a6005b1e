//! The daemon's life: state that survives restarts and crashes, the lock on
//! its root, and what the CLI says when no daemon answers.

use crate::harness::*;

#[test]
fn records_and_logs_survive_a_daemon_restart() {
    let mut d = Daemon::start();
    d.import("hello.wasm", "hello");
    d.ok(&["run", "--name", "kept", "hello", "one"]);
    d.ok(&["create", "--name", "fresh", "hello"]);
    d.restart();
    let ps = d.ok(&["ps", "-a"]);
    assert!(ps.contains("kept") && ps.contains("fresh"), "{ps}");
    assert!(d.ok(&["logs", "kept"]).contains("argv[1]=one"));
    assert_eq!(d.inspect("fresh")["State"]["Status"], "created");
    // And they still work.
    d.ok(&["start", "fresh"]);
    d.eventually("fresh to exit", || {
        d.inspect("fresh")["State"]["Status"] == "exited"
    });
    assert!(d.ok(&["logs", "fresh"]).starts_with("Hello from Wasm!"));
    assert_eq!(d.ok(&["images", "-q"]).lines().count(), 1);
}

#[test]
fn running_module_is_marked_exited_after_a_crash_and_restarted_by_policy() {
    let mut d = Daemon::start();
    d.import("sleep.wasm", "sleep");
    d.ok(&["run", "-d", "--name", "plain", "sleep"]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "always",
        "--restart",
        "always",
        "sleep",
    ]);
    d.eventually("both running", || {
        d.inspect("plain")["State"]["Running"] == true
            && d.inspect("always")["State"]["Running"] == true
    });
    // State changes are staged and written durably by the flusher a
    // moment later (group commit, within milliseconds); a crash inside that
    // window loses the change. Give it a generous moment.
    std::thread::sleep(std::time::Duration::from_millis(500));
    d.crash();
    d.start_again();
    let plain = d.inspect("plain");
    assert_eq!(plain["State"]["Status"], "exited");
    assert_eq!(plain["State"]["ExitCode"], 255);
    assert!(
        plain["State"]["Error"]
            .as_str()
            .unwrap()
            .contains("berthd stopped"),
        "{plain}"
    );
    d.eventually("the always container to run again", || {
        d.inspect("always")["State"]["Running"] == true
    });
}

#[test]
fn clean_shutdown_stops_modules_and_restart_brings_back_always() {
    let mut d = Daemon::start();
    d.import("sleep.wasm", "sleep");
    d.ok(&[
        "run",
        "-d",
        "--name",
        "keep-a",
        "--restart",
        "unless-stopped",
        "sleep",
    ]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "keep-b",
        "--restart",
        "unless-stopped",
        "sleep",
    ]);
    d.ok(&["stop", "keep-b"]);
    d.restart();
    d.eventually("a to run again", || {
        d.inspect("keep-a")["State"]["Running"] == true
    });
    assert_eq!(
        d.inspect("keep-b")["State"]["Status"],
        "exited",
        "stopped by the user: stays stopped"
    );
}

#[test]
fn two_daemons_cannot_share_a_root() {
    let d = Daemon::start();
    let out = std::process::Command::new(bin("berthd"))
        .arg("--root")
        .arg(&d.root)
        .arg("--host")
        .arg(format!(
            "unix://{}",
            d.dir.path().join("other.sock").display()
        ))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("another berthd") && err.contains(&d.pid().to_string()),
        "{err}"
    );
    assert_eq!(
        d.http("GET", "/_ping", None).status,
        200,
        "the first one is unharmed"
    );
}

#[test]
fn cli_says_where_it_looked_when_no_daemon_answers() {
    let out = std::process::Command::new(bin("berth"))
        .args(["-H", "unix:///nonexistent/berth.sock", "ps"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("unix:///nonexistent/berth.sock"), "{err}");
    assert!(err.contains("berthd"), "says how to start one: {err}");
    // BERTH_HOST chooses the daemon too.
    let out = std::process::Command::new(bin("berth"))
        .arg("ps")
        .env("BERTH_HOST", "unix:///nonexistent/other.sock")
        .output()
        .unwrap();
    assert!(stderr(&out).contains("/nonexistent/other.sock"));
}

/// After a crash, a child the dead berthd was spawning (a standby shim
/// waiting for an idle CPU to `exec`) may still hold copies of its
/// listener and of its lock on the root. The next berthd takes both over
/// instead of taking the unanswering socket for a live daemon.
#[test]
fn a_listener_and_lock_left_with_a_dead_daemons_child_are_taken_over() {
    use nix::fcntl::{Flock, FlockArg};
    let mut d = Daemon::start();
    d.import("hello.wasm", "hello");
    let dead_pid = d.pid();
    d.crash();
    // What the child holds: a listener on the socket that never accepts,
    // and the lock, whose file still names the dead daemon.
    let _ = std::fs::remove_file(&d.socket);
    let listener = std::os::unix::net::UnixListener::bind(&d.socket).unwrap();
    let lock_file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(d.root.join("berthd.lock"))
        .unwrap();
    let lock = Flock::lock(lock_file, FlockArg::LockExclusiveNonblock).expect("the lock is free");
    std::fs::write(d.root.join("berthd.lock"), dead_pid.to_string()).unwrap();
    // The child's exec closes both a moment later (the lock after berthd
    // has taken over the socket, so that it waits for both).
    let exec = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(1));
        drop(listener);
        std::thread::sleep(std::time::Duration::from_secs(4));
        drop(lock);
    });
    d.start_again();
    exec.join().unwrap();
    assert_eq!(
        d.ok(&["run", "--rm", "hello"]).lines().next(),
        Some("Hello from Wasm!")
    );
    assert!(
        d.log_text().contains("berthd ready"),
        "{}",
        tail(&d.log_text(), 20)
    );
}
