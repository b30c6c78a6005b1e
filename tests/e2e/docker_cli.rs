//! The real `docker` CLI (and the `berth` CLI beside it) against berthd for
//! container management: rename, pause/unpause, top, update, events,
//! container and image prune, system df; and commands berth does not
//! implement, which must fail at once with berth's 501 message.
//!
//! Every docker invocation runs under a timeout: a command that hangs
//! fails the test instead of the suite.

use crate::harness::*;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A daemon, if the docker CLI is installed (required in CI).
pub(crate) fn daemon() -> Option<Daemon> {
    require("docker")?;
    Some(Daemon::start())
}

/// A daemon with busybox, for native containers (needs root).
pub(crate) fn native_daemon() -> Option<Daemon> {
    require("docker")?;
    if !native_ok() {
        return None;
    }
    let d = Daemon::start();
    d.busybox();
    Some(d)
}

pub(crate) fn docker_cmd(d: &Daemon, args: &[&str]) -> Command {
    let mut c = Command::new(which("docker").expect("docker is installed"));
    c.arg("-H")
        .arg(d.host())
        .args(args)
        .env("DOCKER_CONFIG", d.dir.path().join("docker-config"))
        .stdin(Stdio::null());
    c
}

/// `docker ARGS...` with a 60 s limit.
fn docker(d: &Daemon, args: &[&str]) -> Output {
    let child = docker_cmd(d, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_timeout(child, 60, &format!("docker {args:?}"))
}

/// `docker ARGS...` that must succeed; its stdout.
pub(crate) fn dok(d: &Daemon, args: &[&str]) -> String {
    let out = docker(d, args);
    assert!(
        out.status.success(),
        "docker {args:?} failed ({}):\nstdout: {}\nstderr: {}\ndaemon log:\n{}",
        out.status,
        stdout(&out),
        stderr(&out),
        tail(&d.log_text(), 40)
    );
    stdout(&out)
}

/// `docker ARGS...` that must fail; its stderr.
pub(crate) fn derr(d: &Daemon, args: &[&str]) -> String {
    let out = docker(d, args);
    assert!(
        !out.status.success(),
        "docker {args:?} should have failed:\nstdout: {}",
        stdout(&out)
    );
    stderr(&out)
}

pub(crate) fn status(d: &Daemon, name: &str) -> String {
    d.inspect(name)["State"]["Status"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn now_unix() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

// ----- rename ------------------------------------------------------------

#[test]
fn rename_through_docker_and_berth() {
    let Some(mut d) = daemon() else { return };
    d.import("sleep.wasm", "wsleep");
    dok(&d, &["create", "--name", "first", "wsleep", "100"]);
    dok(&d, &["create", "--name", "taken", "wsleep", "100"]);
    assert_eq!(dok(&d, &["rename", "first", "second"]), "");
    let names = dok(&d, &["ps", "-a", "--format", "{{.Names}}"]);
    assert!(names.lines().any(|l| l == "second"), "{names}");
    assert!(!names.lines().any(|l| l == "first"), "{names}");
    assert!(derr(&d, &["inspect", "first"]).contains("No such"));

    // A name in use is a 409 with Docker's message.
    let err = derr(&d, &["rename", "second", "taken"]);
    assert!(err.contains("is already in use"), "{err}");
    let r = d.http("POST", "/v1.47/containers/second/rename?name=taken", None);
    assert_eq!(r.status, 409, "{}", r.text());
    let r = d.http("POST", "/v1.47/containers/second/rename?name=", None);
    assert_eq!(r.status, 400, "{}", r.text());
    let r = d.http(
        "POST",
        "/v1.47/containers/second/rename?name=bad%20name",
        None,
    );
    assert_eq!(r.status, 400, "{}", r.text());
    let r = d.http("POST", "/v1.47/containers/nope/rename?name=x2", None);
    assert_eq!(r.status, 404, "{}", r.text());

    // The berth CLI, on a running container.
    d.ok(&["start", "second"]);
    assert_eq!(d.ok(&["rename", "second", "third"]), "");
    assert_eq!(d.inspect("third")["Name"], "/third");
    let out = d.berth(&["rename", "third", "taken"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("already in use"), "{}", stderr(&out));
    // The old name is free again.
    dok(&d, &["create", "--name", "second", "wsleep", "1"]);

    // Durable: the new name survives a daemon restart.
    d.restart();
    assert_eq!(d.inspect("third")["Name"], "/third");
    let names = dok(&d, &["ps", "-a", "--format", "{{.Names}}"]);
    let mut names: Vec<&str> = names.lines().collect();
    names.sort();
    assert_eq!(names, ["second", "taken", "third"]);
}

// ----- pause / unpause ---------------------------------------------------

#[test]
fn docker_start_attached_with_stdin_and_again_after_exit() {
    let Some(d) = native_daemon() else { return };
    dok(
        &d,
        &[
            "create",
            "-i",
            "--name",
            "reader",
            "busybox",
            "sh",
            "-c",
            "read l; echo got $l; exit 4",
        ],
    );
    let mut child = docker_cmd(&d, &["start", "-ai", "reader"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"hello\n").unwrap();
    let out = wait_timeout(child, 30, "docker start -ai");
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert_eq!(stdout(&out), "got hello\n");
    // The docker CLI attaches to the exited container, then starts it:
    // the daemon must stream that next run.
    let mut child = docker_cmd(&d, &["start", "-ai", "reader"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"again\n").unwrap();
    let out = wait_timeout(child, 30, "docker start -ai (exited)");
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert_eq!(stdout(&out), "got again\n");
    assert_eq!(dok(&d, &["logs", "reader"]), "got hello\ngot again\n");

    // docker attach to a running container: stdin in, output and status out.
    dok(
        &d,
        &[
            "run",
            "-d",
            "-i",
            "--name",
            "att",
            "busybox",
            "sh",
            "-c",
            "read l; echo attached $l; exit 6",
        ],
    );
    let mut child = docker_cmd(&d, &["attach", "att"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"x\n").unwrap();
    let out = wait_timeout(child, 30, "docker attach");
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert_eq!(stdout(&out), "attached x\n");
}

#[test]
fn pause_and_unpause_a_native_container() {
    let Some(d) = native_daemon() else { return };
    dok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "ticker",
            "busybox",
            "sh",
            "-c",
            "i=0; while true; do i=$((i+1)); echo $i; sleep 0.05; done",
        ],
    );
    let lines = |d: &Daemon| dok(d, &["logs", "ticker"]).lines().count();
    d.eventually("output", || lines(&d) > 2);
    assert_eq!(dok(&d, &["pause", "ticker"]), "ticker\n");
    assert_eq!(status(&d, "ticker"), "paused");
    let st = d.inspect("ticker");
    assert_eq!(st["State"]["Paused"], true);
    assert_eq!(st["State"]["Running"], true);
    let ps = dok(&d, &["ps"]);
    assert!(ps.contains("(Paused)"), "{ps}");
    // Frozen: no output while paused.
    let before = lines(&d);
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(lines(&d), before, "a frozen container printed");
    // Twice is a conflict; exec into a paused container is refused (409).
    assert!(derr(&d, &["pause", "ticker"]).contains("already paused"));
    let err = derr(&d, &["exec", "ticker", "true"]);
    assert!(err.contains("is paused"), "{err}");
    let r = d.http(
        "POST",
        "/v1.47/containers/ticker/exec",
        Some(("application/json", br#"{"Cmd":["true"]}"#)),
    );
    assert_eq!(r.status, 409, "{}", r.text());
    // A paused container cannot be removed without force.
    let err = derr(&d, &["rm", "ticker"]);
    assert!(err.contains("paused"), "{err}");

    assert_eq!(dok(&d, &["unpause", "ticker"]), "ticker\n");
    assert_eq!(status(&d, "ticker"), "running");
    d.eventually("output after unpause", || lines(&d) > before + 2);
    assert!(derr(&d, &["unpause", "ticker"]).contains("not paused"));

    // The berth CLI, and stop of a paused container.
    assert_eq!(d.ok(&["pause", "ticker"]), "ticker\n");
    assert!(d.ok(&["ps"]).contains("(Paused)"));
    assert_eq!(d.ok(&["unpause", "ticker"]), "ticker\n");
    d.ok(&["pause", "ticker"]);
    dok(&d, &["stop", "-t", "1", "ticker"]);
    assert_eq!(status(&d, "ticker"), "exited");

    // Kill of a paused container, and forced removal of one.
    dok(
        &d,
        &["run", "-d", "--name", "sleeper", "busybox", "sleep", "1000"],
    );
    dok(&d, &["pause", "sleeper"]);
    dok(&d, &["kill", "sleeper"]);
    assert_eq!(dok(&d, &["wait", "sleeper"]).trim(), "137");
    dok(&d, &["start", "sleeper"]);
    dok(&d, &["pause", "sleeper"]);
    dok(&d, &["rm", "-f", "sleeper"]);
    assert!(derr(&d, &["inspect", "sleeper"]).contains("No such"));
    // Not running: a conflict.
    let r = d.http("POST", "/v1.47/containers/ticker/pause", None);
    assert_eq!(r.status, 409, "{}", r.text());
}

#[test]
fn pause_suspends_a_wasm_guest() {
    let Some(d) = daemon() else { return };
    d.import("sleep.wasm", "wsleep");
    // It sleeps 2 s in one host call, then exits 0. Paused, the host call
    // ends but the guest stays suspended at its next epoch tick.
    dok(&d, &["run", "-d", "--name", "nap", "wsleep", "2"]);
    d.eventually("the guest to start", || {
        dok(&d, &["logs", "nap"]).contains("sleeping 2")
    });
    assert_eq!(dok(&d, &["pause", "nap"]), "nap\n");
    let paused_at = Instant::now();
    assert!(dok(&d, &["ps"]).contains("(Paused)"));
    let err = derr(&d, &["exec", "nap", "true"]);
    assert!(err.contains("is paused"), "{err}");
    std::thread::sleep(Duration::from_millis(3500));
    assert_eq!(status(&d, "nap"), "paused", "a paused guest ran to its end");
    assert!(paused_at.elapsed() > Duration::from_secs(3));
    assert_eq!(dok(&d, &["unpause", "nap"]), "nap\n");
    let out = docker_cmd(&d, &["wait", "nap"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_timeout(out, 10, "docker wait");
    assert_eq!(stdout(&out).trim(), "0");

    // The berth CLI; stop and kill of a paused guest.
    dok(&d, &["run", "-d", "--name", "nap2", "wsleep", "1000"]);
    assert_eq!(d.ok(&["pause", "nap2"]), "nap2\n");
    assert_eq!(status(&d, "nap2"), "paused");
    assert_eq!(d.ok(&["unpause", "nap2"]), "nap2\n");
    assert_eq!(status(&d, "nap2"), "running");
    d.ok(&["pause", "nap2"]);
    dok(&d, &["stop", "-t", "5", "nap2"]);
    assert_eq!(status(&d, "nap2"), "exited");
    dok(&d, &["start", "nap2"]);
    dok(&d, &["pause", "nap2"]);
    dok(&d, &["kill", "nap2"]);
    assert_eq!(dok(&d, &["wait", "nap2"]).trim(), "137");
}

// ----- rm of a restarting container ----------------------------------------

/// Runs a container that exits at once under `--restart always`, waits
/// until it sits in "restarting" with a backoff of 1.6 s or more, and
/// checks Docker's rules: `rm` without force (docker CLI, berth CLI, raw
/// HTTP) and prune leave it alone with a 409; `rm -f` removes it and its
/// pending restart never brings it back, not even after a daemon restart.
fn remove_a_restarting_container(d: &mut Daemon, name: &str, run: &[&str]) {
    let mut args = vec!["run", "-d", "--name", name, "--restart", "always"];
    args.extend_from_slice(run);
    let id = dok(d, &args).trim().to_string();
    let t0 = format!("{:.3}", now_unix());
    // The backoff doubles from 100 ms per restart: after the fourth, the
    // container waits 1.6 s or more in "restarting".
    let mut restarts = 0;
    d.eventually("a restarting container with a long backoff", || {
        let st = d.inspect(name);
        restarts = st["RestartCount"].as_i64().unwrap_or(0);
        st["State"]["Status"] == "restarting" && st["State"]["Restarting"] == true && restarts >= 4
    });
    let err = derr(d, &["rm", name]);
    assert!(
        err.contains(&format!("You cannot remove a restarting container {id}")),
        "{err}"
    );
    assert!(err.contains("force remove"), "{err}");
    // Running as Docker counts it: inspect, ps without -a, rmi -f.
    assert_eq!(d.inspect(name)["State"]["Running"], true);
    assert!(
        dok(d, &["ps", "--format", "{{.Names}}"])
            .lines()
            .any(|l| l == name)
    );
    let image = d.inspect(name)["Image"].as_str().unwrap().to_string();
    let err = derr(d, &["rmi", "-f", &image]);
    assert!(err.contains("being used by running container"), "{err}");
    let r = d.http("DELETE", &format!("/v1.47/containers/{name}"), None);
    assert_eq!(r.status, 409, "{}", r.text());
    let out = d.berth(&["rm", name]);
    assert!(!out.status.success());
    // Restarting still, or started again by now: refused either way.
    assert!(
        stderr(&out).contains("You cannot remove a"),
        "{}",
        stderr(&out)
    );
    // Prune skips it too.
    dok(d, &["container", "prune", "-f"]);
    assert_eq!(d.inspect(name)["Id"], id.as_str(), "removed without force");

    restarts = d.inspect(name)["RestartCount"].as_i64().unwrap();
    assert_eq!(dok(d, &["rm", "-f", name]).trim(), name);
    assert!(derr(d, &["inspect", name]).contains("No such"));
    // Past the pending restart's backoff: still gone, no start after the
    // destroy.
    let backoff = Duration::from_millis(100 * (1 << restarts.min(9))).min(Duration::from_secs(60));
    std::thread::sleep(backoff + Duration::from_millis(500));
    let r = d.http("GET", &format!("/v1.47/containers/{id}/json"), None);
    assert_eq!(r.status, 404, "it came back: {}", r.text());
    let until = format!("{:.3}", now_unix());
    let out = dok(
        d,
        &[
            "events",
            "--since",
            &t0,
            "--until",
            &until,
            "--filter",
            &format!("container={id}"),
            "--format",
            "{{json .}}",
        ],
    );
    let acts = actions(&json_lines(&out));
    let destroyed = acts.iter().position(|a| a == "destroy");
    assert!(destroyed.is_some(), "{acts:?}");
    assert!(
        !acts[destroyed.unwrap()..].iter().any(|a| a == "start"),
        "started after its removal: {acts:?}"
    );
    d.restart();
    assert!(derr(d, &["inspect", name]).contains("No such"));
    assert!(!dok(d, &["ps", "-aq", "--no-trunc"]).contains(&id));
}

#[test]
fn a_restarting_container_is_removed_only_with_force() {
    let Some(mut d) = daemon() else { return };
    d.import("exit7.wasm", "exit7");
    remove_a_restarting_container(&mut d, "wcrash", &["exit7"]);
    if native_ok() {
        d.busybox();
        remove_a_restarting_container(&mut d, "ncrash", &["busybox", "false"]);
    }
}

// ----- top ---------------------------------------------------------------

#[test]
fn top_lists_native_processes_and_refuses_wasm() {
    let Some(d) = native_daemon() else { return };
    dok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "tp",
            "busybox",
            "sh",
            "-c",
            "sleep 1000 & sleep 999",
        ],
    );
    d.eventually("two sleeps", || {
        dok(&d, &["top", "tp"]).contains("sleep 999")
    });
    let out = dok(&d, &["top", "tp"]);
    let lines: Vec<&str> = out.lines().collect();
    let titles: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        titles,
        ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    );
    assert!(out.contains("sleep 1000"), "{out}");
    assert!(out.contains("sleep 999"), "{out}");
    let pid = d.inspect("tp")["State"]["Pid"].as_i64().unwrap();
    let row: Vec<&str> = lines
        .iter()
        .find(|l| l.contains("sleep 999"))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(row[0], "root");
    assert_eq!(row[1], pid.to_string(), "{out}");
    // Every process is the container's.
    assert_eq!(lines.len(), 3, "{out}");

    // ps arguments, as Docker passes them to ps.
    let out = dok(&d, &["top", "tp", "-o", "pid,comm"]);
    assert_eq!(
        out.lines()
            .next()
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["PID", "COMMAND"]
    );
    assert_eq!(out.lines().count(), 3, "{out}");
    let r = d
        .http("GET", "/v1.47/containers/tp/top?ps_args=-ef", None)
        .json();
    assert_eq!(r["Titles"][7], "CMD");
    assert_eq!(r["Processes"].as_array().unwrap().len(), 2);

    // The berth CLI.
    let out = d.ok(&["top", "tp"]);
    assert!(out.starts_with("UID "), "{out}");
    assert!(out.contains("sleep 999"), "{out}");

    // Not running: 409.
    dok(&d, &["kill", "tp"]);
    let r = d.http("GET", "/v1.47/containers/tp/top", None);
    assert_eq!(r.status, 409, "{}", r.text());

    // Wasm: a clear refusal, not a made-up list.
    d.import("sleep.wasm", "wsleep");
    dok(&d, &["run", "-d", "--name", "wt", "wsleep", "100"]);
    let err = derr(&d, &["top", "wt"]);
    assert!(
        err.contains("top is not available for Wasm containers"),
        "{err}"
    );
    let r = d.http("GET", "/v1.47/containers/wt/top", None);
    assert_eq!(r.status, 400);
    let out = d.berth(&["top", "wt"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("one module instance"),
        "{}",
        stderr(&out)
    );
}

// ----- update ------------------------------------------------------------

/// The container's memory limit, CFS quota and pids limit as it sees them
/// in its cgroup (v1 or v2).
fn cgroup_limits(d: &Daemon, name: &str) -> String {
    dok(
        d,
        &[
            "exec",
            name,
            "sh",
            "-c",
            "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; \
             cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cut -d' ' -f1 /sys/fs/cgroup/cpu.max; \
             cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max",
        ],
    )
}

#[test]
fn update_changes_a_running_native_container() {
    let Some(d) = native_daemon() else { return };
    dok(
        &d,
        &["run", "-d", "--name", "up", "busybox", "sleep", "1000"],
    );
    assert_eq!(
        dok(
            &d,
            &[
                "update",
                "-m",
                "64m",
                "--cpus",
                "0.5",
                "--pids-limit",
                "50",
                "up"
            ]
        ),
        "up\n"
    );
    let limits = cgroup_limits(&d, "up");
    let l: Vec<&str> = limits.lines().collect();
    assert_eq!(l, [&(64u64 << 20).to_string(), "50000", "50"], "{limits}");
    let hc = d.inspect("up")["HostConfig"].clone();
    assert_eq!(hc["Memory"], 64 << 20);
    assert_eq!(hc["NanoCpus"], 500_000_000);
    assert_eq!(hc["PidsLimit"], 50);

    // The berth CLI; the restart policy.
    assert_eq!(
        d.ok(&[
            "update",
            "--memory",
            "32m",
            "--pids-limit",
            "40",
            "--restart",
            "on-failure:2",
            "up"
        ]),
        "up\n"
    );
    let l = cgroup_limits(&d, "up");
    assert_eq!(l.lines().next().unwrap(), (32u64 << 20).to_string(), "{l}");
    assert_eq!(l.lines().nth(2).unwrap(), "40", "{l}");
    let hc = d.inspect("up")["HostConfig"].clone();
    assert_eq!(hc["RestartPolicy"]["Name"], "on-failure");
    assert_eq!(hc["RestartPolicy"]["MaximumRetryCount"], 2);

    // The answer's shape; Docker's checks; options berth cannot change.
    let r = d.http(
        "POST",
        "/v1.47/containers/up/update",
        Some(("application/json", br#"{"CpuShares":512}"#)),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), serde_json::json!({"Warnings": []}));
    assert!(derr(&d, &["update", "-m", "1m", "up"]).contains("Minimum memory limit"));
    assert!(derr(&d, &["update", "--cpu-quota", "1000", "up"]).contains("NanoCPUs"));
    let err = derr(&d, &["update", "--blkio-weight", "300", "up"]);
    assert!(err.contains("cannot update BlkioWeight"), "{err}");
    dok(
        &d,
        &[
            "run", "-d", "--rm", "--name", "auto", "busybox", "sleep", "1000",
        ],
    );
    let err = derr(&d, &["update", "--restart", "always", "auto"]);
    assert!(err.contains("AutoRemove"), "{err}");

    // A stopped container keeps the update for its next start.
    dok(&d, &["stop", "-t", "0", "up"]);
    dok(&d, &["update", "-m", "48m", "up"]);
    dok(&d, &["start", "up"]);
    let l = cgroup_limits(&d, "up");
    assert_eq!(l.lines().next().unwrap(), (48u64 << 20).to_string(), "{l}");
}

#[test]
fn update_of_a_wasm_container() {
    let Some(d) = daemon() else { return };
    d.import("sleep.wasm", "wsleep");
    d.import("memhog.wasm", "memhog");
    dok(&d, &["run", "-d", "--name", "wu", "wsleep", "1000"]);
    // The running guest's cap changes at once: a cap below what it holds
    // already is refused by the guest's own limiter.
    let err = derr(&d, &["update", "-m", "64k", "wu"]);
    assert!(err.contains("already uses"), "{err}");
    assert_eq!(dok(&d, &["update", "-m", "64m", "wu"]), "wu\n");
    assert_eq!(d.inspect("wu")["HostConfig"]["Memory"], 64 << 20);
    let err = derr(&d, &["update", "--cpus", "1", "wu"]);
    assert!(err.contains("not supported for Wasm containers"), "{err}");
    let err = derr(&d, &["update", "--pids-limit", "10", "wu"]);
    assert!(err.contains("no meaning for a Wasm container"), "{err}");
    assert_eq!(d.ok(&["update", "--memory", "32m", "wu"]), "wu\n");
    assert_eq!(d.inspect("wu")["HostConfig"]["Memory"], 32 << 20);

    // Applied at the next start: memhog stops at the new cap.
    dok(&d, &["create", "--name", "hog", "memhog", "64"]);
    dok(&d, &["update", "-m", "16m", "hog"]);
    let out = docker(&d, &["start", "-a", "hog"]);
    assert_eq!(out.status.code(), Some(137), "{}", stderr(&out));
    assert_eq!(d.inspect("hog")["State"]["OOMKilled"], true);
}

// ----- events ------------------------------------------------------------

/// Parses `--format '{{json .}}'` output.
fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn actions(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["Action"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn events_stream_live_and_from_history() {
    let Some(d) = daemon() else { return };
    d.import("sleep.wasm", "wsleep");
    let t0 = format!("{:.3}", now_unix() - 1.0);

    // A live subscriber, filtered to one container.
    let mut live = docker_cmd(
        &d,
        &[
            "events",
            "--filter",
            "label=team=blue",
            "--format",
            "{{json .}}",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let reader = BufReader::new(live.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in reader.lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    // Give the CLI a moment to connect and subscribe.
    std::thread::sleep(Duration::from_millis(1000));
    dok(
        &d,
        &["create", "--name", "ev", "-l", "team=blue", "wsleep", "100"],
    );
    dok(&d, &["create", "--name", "other", "wsleep", "100"]);
    dok(&d, &["start", "ev"]);
    dok(&d, &["rename", "ev", "ev2"]);
    dok(&d, &["rename", "ev2", "ev"]);
    dok(&d, &["pause", "ev"]);
    dok(&d, &["unpause", "ev"]);
    dok(&d, &["update", "-m", "32m", "ev"]);
    dok(&d, &["stop", "-t", "5", "ev"]);
    dok(&d, &["rm", "ev"]);
    let want = [
        "create", "start", "rename", "rename", "pause", "unpause", "update", "kill", "die", "stop",
        "destroy",
    ];
    let mut got: Vec<Value> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while got.len() < want.len() && Instant::now() < deadline {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            got.push(serde_json::from_str(&l).unwrap_or_else(|e| panic!("{e}: {l}")));
        }
    }
    let _ = live.kill();
    let _ = live.wait();
    assert_eq!(actions(&got), want, "{got:#?}");
    let die = &got[8];
    assert_eq!(die["Type"], "container");
    assert_eq!(die["scope"], "local");
    assert_eq!(die["Actor"]["Attributes"]["exitCode"], "143");
    assert_eq!(die["Actor"]["Attributes"]["name"], "ev");
    assert_eq!(die["Actor"]["Attributes"]["image"], "wsleep");
    assert_eq!(die["Actor"]["Attributes"]["team"], "blue");
    assert_eq!(got[7]["Actor"]["Attributes"]["signal"], "15");
    assert_eq!(got[2]["Actor"]["Attributes"]["oldName"], "/ev");
    assert!(die["timeNano"].as_i64().unwrap() > 0);

    // History: with `until` in the past the answer ends by itself.
    let until = format!("{:.3}", now_unix());
    let out = dok(
        &d,
        &[
            "events",
            "--since",
            &t0,
            "--until",
            &until,
            "--filter",
            "event=die",
            "--format",
            "{{json .}}",
        ],
    );
    let ev = json_lines(&out);
    assert_eq!(actions(&ev), ["die"], "{out}");
    let out = dok(
        &d,
        &[
            "events",
            "--since",
            &t0,
            "--until",
            &until,
            "--filter",
            "type=container",
            "--filter",
            "label=team=blue",
        ],
    );
    assert!(out.lines().all(|l| l.contains("team=blue")), "{out}");
    assert!(out.contains("container destroy"), "{out}");
    // Image events: the import.
    let out = dok(
        &d,
        &[
            "events",
            "--since",
            &t0,
            "--until",
            &until,
            "--filter",
            "type=image",
            "--format",
            "{{json .}}",
        ],
    );
    let ev = json_lines(&out);
    assert_eq!(actions(&ev), ["import"], "{out}");
    assert_eq!(ev[0]["Actor"]["Attributes"]["name"], "wsleep:latest");

    // `until` in the near future: the stream ends then.
    let soon = format!("{:.3}", now_unix() + 1.5);
    let child = docker_cmd(&d, &["events", "--until", &soon])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_timeout(child, 15, "docker events --until (future)");
    assert!(out.status.success(), "{}", stderr(&out));

    // The berth CLI: default lines and JSON.
    let out = d.ok(&[
        "events",
        "--since",
        &t0,
        "--until",
        &until,
        "-f",
        "container=other",
    ]);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains(" container create "), "{out}");
    assert!(out.contains("(image=wsleep, name=other)"), "{out}");
    let out = d.ok(&[
        "events",
        "--since",
        "1m",
        "--until",
        &until,
        "-f",
        "event=rename",
        "--format",
        "{{json .}}",
    ]);
    assert_eq!(actions(&json_lines(&out)), ["rename", "rename"], "{out}");

    // Bad filters are a 400.
    let r = d.http(
        "GET",
        "/v1.47/events?filters=%7B%22colour%22%3A%5B%22red%22%5D%7D",
        None,
    );
    assert_eq!(r.status, 400, "{}", r.text());
}

#[test]
fn events_of_native_containers_and_exec() {
    let Some(d) = native_daemon() else { return };
    let t0 = format!("{:.3}", now_unix() - 1.0);
    dok(
        &d,
        &["run", "-d", "--name", "nx", "busybox", "sleep", "1000"],
    );
    dok(&d, &["exec", "nx", "true"]);
    dok(&d, &["restart", "-t", "1", "nx"]);
    dok(&d, &["rm", "-f", "nx"]);
    let until = format!("{:.3}", now_unix() + 0.2);
    std::thread::sleep(Duration::from_millis(300));
    let out = dok(
        &d,
        &[
            "events",
            "--since",
            &t0,
            "--until",
            &until,
            "--format",
            "{{json .}}",
        ],
    );
    let got: Vec<String> = actions(&json_lines(&out))
        .into_iter()
        .map(|a| a.split(':').next().unwrap().to_string())
        .collect();
    let pos = |a: &str| {
        got.iter()
            .position(|x| x == a)
            .unwrap_or_else(|| panic!("no {a} in {got:?}"))
    };
    assert!(pos("create") < pos("start"));
    assert!(pos("exec_create") < pos("exec_start"));
    assert!(pos("exec_start") < pos("exec_die"));
    assert!(pos("restart") < pos("destroy"));
    assert!(got.iter().filter(|a| *a == "start").count() >= 2, "{got:?}");
    assert!(out.contains("exec_start: true"), "{out}");
}

// ----- prune -------------------------------------------------------------

#[test]
fn container_prune_removes_stopped_containers() {
    let Some(d) = daemon() else { return };
    d.import("sleep.wasm", "wsleep");
    d.import("hello.wasm", "hello");
    dok(&d, &["run", "--name", "done1", "hello"]);
    dok(&d, &["run", "--name", "done2", "-l", "keep=yes", "hello"]);
    dok(&d, &["create", "--name", "fresh", "hello"]);
    dok(&d, &["run", "-d", "--name", "alive", "wsleep", "1000"]);
    let id = |n: &str| d.inspect(n)["Id"].as_str().unwrap().to_string();
    let (done1, done2, fresh) = (id("done1"), id("done2"), id("fresh"));

    // Filters: label! keeps done2.
    let out = dok(&d, &["container", "prune", "-f", "--filter", "label!=keep"]);
    assert!(out.starts_with("Deleted Containers:\n"), "{out}");
    assert!(out.contains(&done1) && out.contains(&fresh), "{out}");
    assert!(out.contains("Total reclaimed space: "), "{out}");
    let names = dok(&d, &["ps", "-a", "--format", "{{.Names}}"]);
    let mut names: Vec<&str> = names.lines().collect();
    names.sort();
    assert_eq!(names, ["alive", "done2"]);

    // Nothing more to prune but done2; the running one stays.
    let r = d.http("POST", "/v1.47/containers/prune", None);
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["ContainersDeleted"], serde_json::json!([done2]));
    assert!(j["SpaceReclaimed"].is_u64());
    assert_eq!(
        dok(&d, &["container", "prune", "-f"]),
        "Total reclaimed space: 0B\n"
    );
    assert_eq!(status(&d, "alive"), "running");

    // The berth CLI.
    dok(&d, &["stop", "-t", "1", "alive"]);
    let out = d.ok(&["container", "prune", "-f"]);
    assert!(out.starts_with("Deleted Containers:\n"), "{out}");
    assert_eq!(dok(&d, &["ps", "-aq"]), "");
    let r = d.http(
        "POST",
        "/v1.47/containers/prune?filters=%7B%22bogus%22%3A%5B%22x%22%5D%7D",
        None,
    );
    assert_eq!(r.status, 400, "{}", r.text());
}

#[test]
fn container_prune_reclaims_native_writable_layers() {
    let Some(d) = native_daemon() else { return };
    dok(
        &d,
        &[
            "run",
            "--name",
            "writer",
            "busybox",
            "sh",
            "-c",
            "dd if=/dev/zero of=/blob bs=1000 count=100 2>/dev/null",
        ],
    );
    let df = d.http("GET", "/v1.47/system/df", None).json();
    let c = df["Containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["Names"][0] == "/writer")
        .unwrap()
        .clone();
    assert!(c["SizeRw"].as_u64().unwrap() >= 100_000, "{c}");
    let r = d.http("POST", "/v1.47/containers/prune", None).json();
    assert!(r["SpaceReclaimed"].as_u64().unwrap() >= 100_000, "{r}");
}

#[test]
fn image_prune_removes_unused_images() {
    let Some(d) = daemon() else { return };
    // A dangling image: the tag moves to another module.
    d.import("hello.wasm", "app:1");
    let dangling = d.http("GET", "/images/app:1/json", None).json()["Id"]
        .as_str()
        .unwrap()
        .to_string();
    d.import("sleep.wasm", "app:1");
    d.import("exit7.wasm", "unused:1");
    d.import("cat.wasm", "used:1");
    dok(&d, &["create", "--name", "user", "used:1"]);

    let out = dok(&d, &["image", "prune", "-f"]);
    assert!(out.starts_with("Deleted Images:\n"), "{out}");
    assert!(out.contains(&format!("deleted: {dangling}")), "{out}");
    assert!(!out.contains("untagged"), "{out}");
    let reclaimed = out.lines().last().unwrap();
    assert!(reclaimed.starts_with("Total reclaimed space: "), "{out}");
    assert_ne!(reclaimed, "Total reclaimed space: 0B", "{out}");
    let images = dok(&d, &["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    let mut images: Vec<&str> = images.lines().collect();
    images.sort();
    assert_eq!(images, ["app:1", "unused:1", "used:1"]);

    // -a: every image no container uses; used:1 stays.
    let out = dok(&d, &["image", "prune", "-a", "-f"]);
    assert!(out.contains("untagged: unused:1"), "{out}");
    assert!(out.contains("untagged: app:1"), "{out}");
    assert!(!out.lines().any(|l| l == "untagged: used:1"), "{out}");
    let images = dok(&d, &["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert_eq!(images, "used:1\n");

    // The berth CLI and the API's shape.
    dok(&d, &["rm", "user"]);
    let out = d.ok(&["image", "prune", "-a", "-f"]);
    assert!(out.contains("untagged: used:1"), "{out}");
    assert_eq!(dok(&d, &["images", "-q"]), "");
    let r = d.http(
        "POST",
        "/v1.47/images/prune?filters=%7B%22dangling%22%3A%5B%22false%22%5D%7D",
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["ImagesDeleted"], serde_json::json!([]));
    assert_eq!(r.json()["SpaceReclaimed"], 0);
    // Untag and delete events.
    let out = dok(
        &d,
        &[
            "events",
            "--since",
            "5m",
            "--until",
            &format!("{:.3}", now_unix()),
            "--filter",
            "type=image",
            "--filter",
            "event=delete",
            "--format",
            "{{json .}}",
        ],
    );
    assert_eq!(json_lines(&out).len(), 4, "{out}");
}

// ----- image list filters ----------------------------------------------------

/// A query value, percent-encoded.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `GET /images/json?filters=` with this filter JSON.
fn image_list(d: &Daemon, filters: &str) -> crate::harness::HttpResponse {
    d.http(
        "GET",
        &format!("/v1.47/images/json?filters={}", enc(filters)),
        None,
    )
}

fn names(text: &str) -> Vec<String> {
    let mut v: Vec<String> = text.lines().map(String::from).collect();
    v.sort();
    v
}

#[test]
fn image_list_reference_filter_matches_like_docker() {
    let Some(d) = daemon() else { return };
    let Some(reg) = crate::registry::DistRegistry::start(false) else {
        return;
    };
    d.import("hello.wasm", "hello");
    d.import("sleep.wasm", "wsleep:v1");
    let app = format!("{}/app", reg.host());
    dok(&d, &["tag", "hello", &app]);
    dok(&d, &["tag", "hello", &format!("{app}:v2")]);
    dok(&d, &["push", &format!("{app}:v2")]);
    let fmt = ["--format", "{{.Repository}}:{{.Tag}}"];
    let images = |args: &[&str]| {
        let mut a = vec!["images"];
        a.extend_from_slice(args);
        a.extend_from_slice(&fmt);
        names(&dok(&d, &a))
    };
    let both = vec![format!("{app}:latest"), format!("{app}:v2")];

    // A name with a registry port, without a tag: every tag of it (the
    // old filter matched nothing), and only those names of the image.
    assert_eq!(images(&[&app]), both);
    assert_eq!(images(&["--filter", &format!("reference={app}")]), both);
    assert_eq!(images(&[&format!("{app}:v2")]), [format!("{app}:v2")]);
    assert_eq!(images(&[&format!("{app}:v3")]), Vec::<String>::new());
    // Globs: * and ? stop at /, classes, on name or name:tag.
    let port_glob = "127.0.0.1:*/app";
    assert_eq!(images(&[port_glob]), both);
    assert_eq!(images(&["*/app"]), both);
    assert_eq!(images(&["*"]), ["hello:latest", "wsleep:v1"]);
    assert_eq!(images(&["hel?o"]), ["hello:latest"]);
    assert_eq!(images(&["wsleep:v[0-9]"]), ["wsleep:v1"]);
    assert_eq!(
        images(&[
            "--filter",
            "reference=hello",
            "--filter",
            "reference=wsleep"
        ]),
        ["hello:latest", "wsleep:v1"]
    );
    // A digest: the image is listed under that repo digest only.
    let r = image_list(&d, &format!(r#"{{"reference":["{app}@sha256:*"]}}"#));
    assert_eq!(r.status, 200, "{}", r.text());
    let list = r.json();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["RepoTags"], serde_json::json!([]), "{list:?}");
    let digest = list[0]["RepoDigests"][0].as_str().unwrap().to_string();
    assert!(digest.starts_with(&format!("{app}@sha256:")), "{digest}");
    let r = image_list(&d, &format!(r#"{{"reference":{{"{digest}":true}}}}"#));
    assert_eq!(r.json().as_array().unwrap().len(), 1, "{}", r.text());
    // A malformed pattern is a bad request, not an empty list.
    let r = image_list(&d, r#"{"reference":["app["]}"#);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(derr(&d, &["images", "app["]).contains("invalid reference filter"));

    // Dangling, before/since name an image that must exist, label.
    d.import("exit7.wasm", "wsleep:v1");
    let dangling = dok(&d, &["images", "-q", "--filter", "dangling=true"]);
    assert_eq!(dangling.lines().count(), 1, "{dangling}");
    let tagged = images(&["--filter", "dangling=false"]);
    assert!(!tagged.iter().any(|t| t.contains("<none>")), "{tagged:?}");
    let r = image_list(&d, r#"{"dangling":["maybe"]}"#);
    assert_eq!(r.status, 400, "{}", r.text());
    let r = image_list(&d, r#"{"since":["no-such-image"]}"#);
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(images(&["--filter", "label=nope"]), Vec::<String>::new());

    // The berth CLI.
    for pattern in [app.as_str(), port_glob] {
        let out = d.ok(&["images", pattern]);
        let rows: Vec<&str> = out.lines().skip(1).collect();
        assert_eq!(rows.len(), 2, "{out}");
        assert!(rows.iter().all(|r| r.starts_with(&app)), "{out}");
    }
    let out = d.berth(&["images", "app["]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("invalid reference filter"),
        "{}",
        stderr(&out)
    );
}

// ----- what Docker clients trip over (issue 13, item 17) -------------------

#[test]
fn config_volumes_exist_in_native_containers_and_stay_inside() {
    let Some(d) = native_daemon() else { return };
    // From the request (-v /path makes Config.Volumes) and from the image.
    let out = dok(
        &d,
        &[
            "run",
            "--rm",
            "-v",
            "/data/sub",
            "busybox",
            "sh",
            "-c",
            "test -d /data/sub && echo ok",
        ],
    );
    assert_eq!(out, "ok\n");
    dok(&d, &["create", "--name", "base", "busybox", "true"]);
    dok(
        &d,
        &["commit", "--change", "VOLUME /vol/a", "base", "withvol"],
    );
    let out = dok(
        &d,
        &[
            "run",
            "--rm",
            "withvol",
            "sh",
            "-c",
            "test -d /vol/a && echo ok",
        ],
    );
    assert_eq!(out, "ok\n");

    // A symlink in the image that points at a host path is followed inside
    // the container's root, never on the host.
    let host_dir = tempfile::Builder::new()
        .prefix("berth-volume-escape-")
        .tempdir()
        .unwrap();
    let target = host_dir.path().display().to_string();
    dok(
        &d,
        &[
            "run", "--name", "linker", "busybox", "ln", "-s", &target, "/evil",
        ],
    );
    dok(
        &d,
        &["commit", "--change", "VOLUME /evil/x", "linker", "evil"],
    );
    let out = dok(
        &d,
        &[
            "run",
            "--rm",
            "evil",
            "sh",
            "-c",
            &format!("test -d {target}/x && echo inside"),
        ],
    );
    assert_eq!(out, "inside\n");
    assert!(
        !host_dir.path().join("x").exists(),
        "a volume directory was made on the host through a symlink"
    );

    // A file in the way is refused at create, as in Docker; nothing is left.
    dok(&d, &["run", "--name", "filer", "busybox", "touch", "/file"]);
    dok(
        &d,
        &["commit", "--change", "VOLUME /file", "filer", "fileimg"],
    );
    let before = dok(&d, &["ps", "-aq"]);
    let err = derr(&d, &["create", "fileimg"]);
    assert!(
        err.contains("cannot mount volume over existing file"),
        "{err}"
    );
    assert_eq!(dok(&d, &["ps", "-aq"]), before);
    // Hostile paths: / itself, a NUL byte.
    for bad in [r#"{"/":{}}"#, r#"{"/a\u0000b":{}}"#] {
        let body = format!(r#"{{"Image":"busybox","Cmd":["true"],"Volumes":{bad}}}"#);
        let r = d.http(
            "POST",
            "/v1.47/containers/create",
            Some(("application/json", body.as_bytes())),
        );
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
    }

    // A Wasm container takes the request (its volumes wait for preopens).
    d.import("hello.wasm", "hello");
    assert!(dok(&d, &["run", "--rm", "-v", "/data", "hello"]).starts_with("Hello"));
}

#[test]
fn failed_load_streams_the_error_in_a_200() {
    let Some(d) = daemon() else { return };
    let r = d.http(
        "POST",
        "/v1.47/images/load",
        Some(("application/x-tar", b"not a tarball")),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    let last = json_lines(&r.text()).pop().unwrap();
    let msg = last["errorDetail"]["message"].as_str().unwrap().to_string();
    assert!(!msg.is_empty());
    assert_eq!(last["error"], msg.as_str());
    // The docker CLI prints it and fails; so does berth's.
    let junk = d.dir.path().join("junk.tar");
    std::fs::write(&junk, b"this is not a tarball at all").unwrap();
    let err = derr(&d, &["load", "-i", junk.to_str().unwrap()]);
    assert!(err.contains(&msg[..msg.len().min(30)]), "{err} / {msg}");
    let out = d.berth(&["load", "-i", junk.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&msg[..msg.len().min(30)]),
        "{}",
        stderr(&out)
    );
    assert_eq!(dok(&d, &["images", "-q"]), "");

    // A good archive, with quiet either way.
    d.import("hello.wasm", "hello");
    let tar = d.dir.path().join("hello.tar");
    dok(&d, &["save", "-o", tar.to_str().unwrap(), "hello"]);
    dok(&d, &["rmi", "hello"]);
    let data = std::fs::read(&tar).unwrap();
    for q in ["", "?quiet=0", "?quiet=1"] {
        let r = d.http(
            "POST",
            &format!("/v1.47/images/load{q}"),
            Some(("application/x-tar", &data)),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(
            r.text().contains("Loaded image: hello:latest"),
            "{q}: {}",
            r.text()
        );
        assert!(!r.text().contains("error"), "{q}: {}", r.text());
    }
}

#[test]
fn inspect_names_the_runtime() {
    let Some(d) = daemon() else { return };
    d.import("hello.wasm", "hello");
    let runtime = |n: &str| dok(&d, &["inspect", "-f", "{{.HostConfig.Runtime}}", n]);
    dok(&d, &["create", "--name", "w1", "hello"]);
    assert_eq!(runtime("w1"), "berth\n");
    dok(
        &d,
        &["create", "--name", "w2", "--runtime", "wasmtime", "hello"],
    );
    assert_eq!(runtime("w2"), "wasmtime\n");
    if native_ok() {
        d.busybox();
        dok(&d, &["create", "--name", "n1", "busybox", "true"]);
        assert_eq!(runtime("n1"), "berth\n");
        if which("runc").is_some() {
            dok(
                &d,
                &[
                    "create",
                    "--name",
                    "r1",
                    "--runtime",
                    "runc",
                    "busybox",
                    "true",
                ],
            );
            assert_eq!(runtime("r1"), "runc\n");
        }
    }
}

#[test]
fn commit_records_the_parent_image() {
    let Some(d) = daemon() else { return };
    d.import("hello.wasm", "hello");
    let parent = d.http("GET", "/images/hello/json", None).json()["Id"]
        .as_str()
        .unwrap()
        .to_string();
    dok(&d, &["create", "--name", "c1", "hello"]);
    dok(&d, &["commit", "c1", "child:1"]);
    assert_eq!(
        dok(&d, &["inspect", "-f", "{{.Parent}}", "child:1"]).trim(),
        parent
    );
    let list = image_list(&d, r#"{"reference":["child"]}"#).json();
    assert_eq!(list[0]["ParentId"], parent.as_str(), "{list}");
    // The parent's own Parent is empty; once the parent is gone, so is the
    // child's.
    assert_eq!(
        dok(&d, &["inspect", "-f", "{{.Parent}}", "hello"]).trim(),
        ""
    );
    dok(&d, &["rm", "c1"]);
    dok(&d, &["rmi", "hello"]);
    assert_eq!(
        dok(&d, &["inspect", "-f", "{{.Parent}}", "child:1"]).trim(),
        ""
    );
}

#[test]
fn info_has_debug_and_what_docker_info_reads() {
    let Some(d) = daemon() else { return };
    // The harness runs berthd with BERTH_LOG=berth=debug.
    let out = dok(&d, &["info"]);
    assert!(out.contains(" Debug Mode: true\n"), "{out}");
    assert!(out.contains("  File Descriptors: "), "{out}");
    assert!(out.contains(" Live Restore Enabled: false\n"), "{out}");
    assert!(out.contains("  Log: json-file\n"), "{out}");
    assert!(
        out.contains(" Insecure Registries:\n  ::1/128\n  127.0.0.0/8\n"),
        "{out}"
    );
    let info = d.http("GET", "/v1.47/info", None).json();
    assert_eq!(info["Debug"], true);
    assert_eq!(info["IndexServerAddress"], "https://index.docker.io/v1/");
    assert!(info["NFd"].as_i64().unwrap() > 0, "{info}");
    assert!(info["SystemTime"].as_str().unwrap().contains('T'), "{info}");
    let out = d.ok(&["info"]);
    assert!(out.contains(" Debug Mode: true\n"), "{out}");

    let live = Daemon::start_with_args(&["--live-restore"]);
    let info = live.http("GET", "/v1.47/info", None).json();
    assert_eq!(info["LiveRestoreEnabled"], true);
}

#[test]
fn unknown_log_driver_is_a_bad_request() {
    let Some(d) = daemon() else { return };
    d.import("hello.wasm", "hello");
    let err = derr(&d, &["run", "--log-driver", "nosuch", "hello"]);
    assert!(
        err.contains("logger: no log driver named 'nosuch' is registered"),
        "{err}"
    );
    let create = |log: &str| {
        let body = format!(r#"{{"Image":"hello","HostConfig":{{"LogConfig":{log}}}}}"#);
        d.http(
            "POST",
            "/v1.47/containers/create",
            Some(("application/json", body.as_bytes())),
        )
    };
    assert_eq!(create(r#"{"Type":"nosuch"}"#).status, 400);
    assert_eq!(
        create(r#"{"Type":"json-file","Config":{"bogus":"1"}}"#).status,
        400
    );
    assert_eq!(
        create(r#"{"Type":"json-file","Config":{"mode":"sometimes"}}"#).status,
        400
    );
    // Known to Docker, not to berth: not implemented.
    assert_eq!(create(r#"{"Type":"syslog"}"#).status, 501);
    assert_eq!(
        create(r#"{"Type":"json-file","Config":{"max-size":"1m"}}"#).status,
        501
    );
    assert_eq!(create(r#"{"Type":"json-file"}"#).status, 201);
    assert_eq!(dok(&d, &["ps", "-aq"]).lines().count(), 1);
}

// ----- system df ---------------------------------------------------------

#[test]
fn system_df_reports_real_numbers() {
    let Some(d) = daemon() else { return };
    d.import("hello.wasm", "hello");
    d.import("sleep.wasm", "wsleep");
    dok(&d, &["run", "-d", "--name", "alive", "wsleep", "1000"]);
    dok(&d, &["run", "--name", "done", "hello"]);
    let out = dok(&d, &["system", "df"]);
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines[0],
        ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"],
        "{out}"
    );
    assert_eq!(&lines[1][..3], ["Images", "2", "2"], "{out}");
    assert_eq!(&lines[2][..3], ["Containers", "2", "1"], "{out}");
    assert_eq!(&lines[3][..4], ["Local", "Volumes", "0", "0"], "{out}");
    assert_eq!(&lines[4][..4], ["Build", "Cache", "0", "0"], "{out}");
    // Verbose output works too.
    let out = dok(&d, &["system", "df", "-v"]);
    assert!(out.contains("Images space usage:"), "{out}");
    assert!(out.contains("wsleep"), "{out}");

    // The numbers are the images' and containers' own.
    let df = d.http("GET", "/v1.47/system/df", None).json();
    let list = d.http("GET", "/v1.47/images/json", None).json();
    let mut total = 0;
    for img in list.as_array().unwrap() {
        let entry = df["Images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["Id"] == img["Id"])
            .unwrap();
        assert_eq!(entry["Size"], img["Size"]);
        assert_eq!(entry["Containers"], 1);
        assert_eq!(entry["SharedSize"], 0);
        total += img["Size"].as_i64().unwrap();
    }
    assert_eq!(df["LayersSize"].as_i64().unwrap(), total);
    assert_eq!(df["Containers"].as_array().unwrap().len(), 2);
    for c in df["Containers"].as_array().unwrap() {
        assert_eq!(c["SizeRw"], 0, "{c}");
    }
    assert_eq!(df["Volumes"], serde_json::json!([]));
    assert_eq!(df["BuildCache"], serde_json::json!([]));
    let only = d
        .http("GET", "/v1.47/system/df?type=container", None)
        .json();
    assert!(
        only.get("Images").is_none() && only.get("Containers").is_some(),
        "{only}"
    );

    // The berth CLI.
    let out = d.ok(&["system", "df"]);
    assert!(out.starts_with("TYPE "), "{out}");
    assert!(
        out.lines().nth(2).unwrap().starts_with("Containers "),
        "{out}"
    );
}

// ----- what berth does not implement ----------------------------------------

#[test]
fn unsupported_docker_commands_fail_at_once_with_501() {
    let Some(d) = daemon() else { return };
    for args in [
        &["network", "create", "x"][..],
        &["network", "ls"],
        &["volume", "ls"],
        &["volume", "create", "v1"],
        &["swarm", "init"],
        &["search", "busybox"],
        &["plugin", "ls"],
        &["network", "rm", "x"],
        &["volume", "prune", "-f"],
    ] {
        let started = Instant::now();
        let out = docker(&d, args);
        assert!(!out.status.success(), "docker {args:?} succeeded");
        let err = stderr(&out);
        assert!(
            err.contains("berthd does not implement"),
            "docker {args:?}: {err}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "docker {args:?} took {:?}",
            started.elapsed()
        );
    }
    let r = d.http("GET", "/v1.47/volumes", None);
    assert_eq!(r.status, 501);
    // `docker inspect` tries every kind of object: berth has no networks,
    // volumes or plugins, which it says with 404s, so a missing name is
    // "No such object", not a 501 on the way.
    let err = derr(&d, &["inspect", "nothing-here"]);
    assert!(err.contains("No such object: nothing-here"), "{err}");
    let err = derr(&d, &["network", "inspect", "nothing-here"]);
    assert!(err.contains("not found"), "{err}");
    let r = d.http("GET", "/v1.47/volumes/nothing-here", None);
    assert_eq!(r.status, 404);
    let r = d.http("GET", "/v1.47/plugins/vieux/sshfs:latest/json", None);
    assert_eq!(r.status, 404);
    // A 501 to a request with a body: the body is read first, so the
    // client sees the answer, not a broken pipe.
    let big = vec![b' '; 4 << 20];
    let r = d.http(
        "POST",
        "/v1.47/networks/create",
        Some(("application/json", &big)),
    );
    assert_eq!(r.status, 501);
    assert!(
        r.message().contains("berthd does not implement"),
        "{}",
        r.text()
    );
}

// ----- ps --format ---------------------------------------------------------

#[test]
fn berth_ps_format_matches_dockers() {
    let Some(d) = daemon() else { return };
    d.import("sleep.wasm", "wsleep");
    dok(
        &d,
        &[
            "create", "--name", "fmt1", "--label", "b=2", "--label", "a=1", "wsleep", "100",
        ],
    );
    dok(
        &d,
        &[
            "create", "--name", "fmt2", "wsleep", "--and", "a", "long", "argument",
        ],
    );
    // Fields whose text does not move with the clock (docker joins labels
    // in Go's random map order: berth's are sorted, checked below).
    for format in [
        "{{.ID}} {{.Names}} {{.Image}} {{.State}}",
        "{{.Command}}|{{.CreatedAt}}|{{.Ports}}|{{.Networks}}",
        r"table {{.ID}}\t{{.Names}}\t{{.Status}}",
        "{{json .Names}} {{upper .State}}",
    ] {
        let theirs = dok(&d, &["ps", "-a", "--format", format]);
        let ours = d.ok(&["ps", "-a", "--format", format]);
        let sorted = |s: &str| {
            let mut l: Vec<String> = s.lines().map(str::to_string).collect();
            // The header stays first.
            if format.starts_with("table") {
                l[1..].sort();
            } else {
                l.sort();
            }
            l
        };
        assert_eq!(sorted(&ours), sorted(&theirs), "format {format:?}");
    }
    // berth's own field, and `json`.
    let ours = d.ok(&["ps", "-a", "--format", "{{.Names}} {{.Executor}}"]);
    assert!(ours.lines().any(|l| l == "fmt1 wasm"), "{ours}");
    let line = d.ok(&["ps", "-a", "--filter", "name=fmt1", "--format", "json"]);
    let v: Value = serde_json::from_str(line.trim()).unwrap();
    assert_eq!(v["Names"], "fmt1");
    assert_eq!(v["Labels"], "a=1,b=2");
    // A template berth cannot evaluate is an error, not wrong output.
    let out = d.berth(&["ps", "--format", "{{range .Names}}x{{end}}"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
}
