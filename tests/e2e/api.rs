//! The Docker Engine API itself: versions, status codes, error bodies, bad
//! input, and the real docker CLI.

use crate::harness::*;
use serde_json::json;

#[test]
fn ping_version_and_prefixes() {
    let d = Daemon::start();
    let r = d.http("HEAD", "/_ping", None);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Api-Version"), Some("1.47"));
    assert_eq!(r.header("Ostype"), Some("linux"));
    assert_eq!(d.http("GET", "/_ping", None).text(), "OK");
    for prefix in ["", "/v1.24", "/v1.41", "/v1.47"] {
        let v = d.http("GET", &format!("{prefix}/version"), None);
        assert_eq!(v.status, 200, "{prefix}");
        assert_eq!(v.json()["ApiVersion"], "1.47");
    }
    let r = d.http("GET", "/v1.99/version", None);
    assert_eq!(r.status, 400);
    assert!(r.message().contains("too new"), "{}", r.text());
    let r = d.http("GET", "/v1.12/version", None);
    assert_eq!(r.status, 400);
    assert!(r.message().contains("too old"));
    let info = d.http("GET", "/info", None).json();
    assert_eq!(info["Wasm"]["Engine"], "wasmtime");
    assert_eq!(info["Wasm"]["PoolSlots"], 64);
}

#[test]
fn bad_create_requests_are_400_and_create_nothing() {
    let d = Daemon::start();
    d.import("hello.wasm", "hello");
    let cases: &[(&[u8], &str)] = &[
        (b"{not json", "invalid JSON"),
        (
            br#"{"Image": "hello", "HostConfig": {"Memory": "lots"}}"#,
            "invalid type",
        ),
        (br#"{"Image": 5}"#, "invalid type"),
        (br#"{"Image": "hello", "Env": "A=1"}"#, "invalid type"),
        (
            br#"{"Image": "hello", "HostConfig": {"RestartPolicy": {"Name": "sometimes"}}}"#,
            "restart policy",
        ),
        (
            br#"{"Image": "hello", "HostConfig": {"Privileged": true}}"#,
            "--privileged",
        ),
        (br#"{}"#, "Image is required"),
    ];
    for (body, want) in cases {
        let r = d.http(
            "POST",
            "/v1.47/containers/create",
            Some(("application/json", body)),
        );
        assert_eq!(
            r.status,
            400,
            "{}: {}",
            String::from_utf8_lossy(body),
            r.text()
        );
        assert!(
            r.message().contains(want),
            "{}: {}",
            String::from_utf8_lossy(body),
            r.message()
        );
    }
    let r = d.http(
        "POST",
        "/containers/create?name=x%20y",
        Some(("application/json", br#"{"Image":"hello"}"#)),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    // Options berth does not implement are refused, not dropped.
    for (body, want) in [
        (
            br#"{"Image": "hello", "HostConfig": {"Ulimits": [{"Name": "nofile", "Soft": 9, "Hard": 9}]}}"#
                as &[u8],
            "HostConfig.Ulimits (--ulimit) is not supported",
        ),
        (
            br#"{"Image": "hello", "HostConfig": {"Dns": ["192.0.2.1"]}}"#,
            "HostConfig.Dns (--dns) is not supported",
        ),
    ] {
        let r = d.http(
            "POST",
            "/containers/create",
            Some(("application/json", body)),
        );
        assert_eq!(r.status, 501, "{}", r.text());
        assert!(r.message().contains(want), "{}", r.message());
    }
    assert_eq!(
        d.http("GET", "/containers/json?all=1", None).json(),
        json!([])
    );
}

#[test]
fn unknown_image_container_and_name_conflicts() {
    let d = Daemon::start();
    d.import("hello.wasm", "hello");
    let r = d.http(
        "POST",
        "/containers/create",
        Some(("application/json", br#"{"Image":"nope"}"#)),
    );
    assert_eq!(r.status, 404);
    assert_eq!(r.message(), "No such image: nope");
    let r = d.http("GET", "/containers/nope/json", None);
    assert_eq!(r.status, 404);
    assert_eq!(r.message(), "No such container: nope");
    let body = br#"{"Image":"hello"}"#;
    let r = d.http(
        "POST",
        "/containers/create?name=same",
        Some(("application/json", body)),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["Id"].as_str().unwrap().to_string();
    let r = d.http(
        "POST",
        "/containers/create?name=same",
        Some(("application/json", body)),
    );
    assert_eq!(r.status, 409);
    assert!(r.message().contains("already in use"), "{}", r.message());
    // Found by name, full id and id prefix.
    for key in ["same", &id, &id[..8]] {
        assert_eq!(
            d.http("GET", &format!("/containers/{key}/json"), None)
                .status,
            200,
            "{key}"
        );
    }
    // Killing a container that is not running is a 409.
    assert_eq!(d.http("POST", "/containers/same/kill", None).status, 409);
}

#[test]
fn unimplemented_endpoints_answer_501_with_a_message() {
    let d = Daemon::start();
    for (method, path) in [
        ("GET", "/v1.47/networks"),
        ("POST", "/volumes/create"),
        ("GET", "/containers/abc/attach/ws"),
    ] {
        let r = d.http(method, path, None);
        assert_eq!(r.status, 501, "{method} {path}");
        let m = r.message();
        assert!(
            m.contains("does not implement") || m.contains("not supported"),
            "{}",
            r.text()
        );
    }
    let r = d.http("GET", "/no/such/thing", None);
    assert_eq!(r.status, 404);
    assert!(r.message().contains("page not found"));
}

#[test]
fn wait_conditions() {
    let d = Daemon::start();
    d.import("hello.wasm", "hello");
    d.ok(&["create", "--name", "wt", "hello", "--exit", "4"]);
    // not-running on a created container answers at once.
    let r = d.http("POST", "/containers/wt/wait", None);
    assert_eq!(r.json()["StatusCode"], 0);
    d.ok(&["start", "wt"]);
    d.eventually("exit", || d.inspect("wt")["State"]["Status"] == "exited");
    let r = d.http("POST", "/containers/wt/wait?condition=not-running", None);
    assert_eq!(r.json()["StatusCode"], 4);
    let r = d.http("POST", "/containers/wt/wait?condition=bogus", None);
    assert_eq!(r.status, 400);
}

#[test]
fn images_tag_inspect_save_load_and_remove() {
    let d = Daemon::start();
    d.import("hello.wasm", "hello");
    d.ok(&["tag", "hello", "localhost:5000/team/hello:v2"]);
    let img = d.http("GET", "/images/localhost:5000/team/hello:v2/json", None);
    assert_eq!(img.status, 200, "{}", img.text());
    let img = img.json();
    assert_eq!(img["Os"], "wasip1");
    assert_eq!(img["Architecture"], "wasm");
    assert_eq!(img["Executor"], "wasm");
    let mut tags: Vec<String> = serde_json::from_value(img["RepoTags"].clone()).unwrap();
    tags.sort();
    assert_eq!(tags, vec!["hello:latest", "localhost:5000/team/hello:v2"]);
    let images = d.ok(&["images"]);
    assert!(
        images.contains("localhost:5000/team/hello") && images.contains("v2"),
        "{images}"
    );

    let tar = d.dir.path().join("saved.tar");
    d.ok(&["save", "-o", tar.to_str().unwrap(), "hello"]);
    // Removing one of two tags only untags.
    let out = d.ok(&["rmi", "localhost:5000/team/hello:v2"]);
    assert!(
        out.contains("Untagged: localhost:5000/team/hello:v2"),
        "{out}"
    );
    let out = d.ok(&["rmi", "hello"]);
    assert!(out.contains("Deleted: sha256:"), "{out}");
    assert_eq!(d.ok(&["images", "-q"]), "");
    let out = d.ok(&["load", "-i", tar.to_str().unwrap()]);
    assert!(out.contains("Loaded image: hello:latest"), "{out}");
    // Each of those published Docker's image event.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let events = d.http(
        "GET",
        &format!("/events?since=0&until={now:.6}&filters=%7B%22type%22%3A%5B%22image%22%5D%7D"),
        None,
    );
    assert_eq!(events.status, 200, "{}", events.text());
    let actions: Vec<String> = events
        .text()
        .lines()
        .map(|l| {
            let e: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(e["Type"], "image", "{l}");
            format!(
                "{} {}",
                e["Action"].as_str().unwrap(),
                e["Actor"]["Attributes"]["name"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            "import hello:latest",
            "tag localhost:5000/team/hello:v2",
            "save hello",
            "untag localhost:5000/team/hello:v2",
            "untag hello:latest",
            "delete ",
            "load hello:latest",
        ],
        "{}",
        events.text()
    );
    assert!(
        d.ok(&["run", "--rm", "hello"])
            .starts_with("Hello from Wasm!")
    );
    // An image in use by a container needs force.
    d.ok(&["create", "--name", "user", "hello"]);
    let out = d.berth(&["rmi", "hello"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("conflict"), "{}", stderr(&out));
    // Garbage is refused and stores nothing.
    let junk = d.dir.path().join("junk.tar");
    std::fs::write(&junk, b"this is not a tarball at all").unwrap();
    let out = d.berth(&["load", "-i", junk.to_str().unwrap()]);
    assert!(!out.status.success());
    assert_eq!(d.ok(&["images", "-q"]).lines().count(), 1);
}

#[test]
fn docker_cli_drives_berthd() {
    let d = Daemon::start();
    if require("docker").is_none() {
        return;
    }
    d.import("hello.wasm", "hello");
    let out = d.docker(&["version"]).unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("1.47"), "{}", stdout(&out));
    let out = d
        .docker(&["run", "--rm", "-e", "GREETING=docker", "hello", "x"])
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "Hello from Wasm!\nargv[0]=hello.wasm\nargv[1]=x\nGREETING=docker\ncwd=/\n"
    );
    let out = d
        .docker(&["run", "--name", "dk", "hello", "--exit", "6"])
        .unwrap();
    assert_eq!(out.status.code(), Some(6));
    let out = d.docker(&["ps", "-a"]).unwrap();
    assert!(stdout(&out).contains("dk"), "{}", stdout(&out));
    let out = d.docker(&["logs", "dk"]).unwrap();
    assert!(stdout(&out).starts_with("Hello from Wasm!"));
    let out = d
        .docker(&["inspect", "-f", "{{.State.ExitCode}}", "dk"])
        .unwrap();
    assert_eq!(stdout(&out).trim(), "6");
    let out = d.docker(&["rm", "dk"]).unwrap();
    assert!(out.status.success());
    let out = d.docker(&["network", "ls"]).unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("does not implement"),
        "{}",
        stderr(&out)
    );
}

// ----- connections: timeouts, hijacked streams, kill, detach keys -------

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// A raw connection to the daemon, reads timing out after 30 s.
fn connect(d: &Daemon) -> UnixStream {
    let s = UnixStream::connect(&d.socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s
}

/// Asserts that the daemon closes `s` (a read sees end of file or a
/// reset) rather than keeping it open.
fn assert_closed_by_daemon(s: &mut UnixStream, what: &str) {
    let mut buf = [0u8; 4096];
    match s.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!(
            "{what}: unexpected data: {:?}",
            String::from_utf8_lossy(&buf[..n])
        ),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("{what}: the daemon kept the connection open ({e})"),
    }
}

/// Reads until end of file.
fn read_to_eof(s: &mut UnixStream) -> Vec<u8> {
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("reading to end of file");
    out
}

/// Sends a request that asks to upgrade the connection (`Upgrade: tcp`),
/// with a JSON body if one is given.
fn send_upgrade(d: &Daemon, method_path: &str, body: &[u8]) -> UnixStream {
    let mut s = connect(d);
    let mut req =
        format!("{method_path} HTTP/1.1\r\nHost: berth\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n");
    if !body.is_empty() {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    s
}

/// Sends a request whose answer is `101 Switching Protocols`, then reads
/// its head as a client with a buffered reader does (docker-py's
/// http.client): one large read once the output would long have been
/// sent. Returns (head, what that same read took beyond the head, the
/// connection).
fn upgrade_with_buffered_head_read(
    d: &Daemon,
    method_path: &str,
    body: &[u8],
) -> (String, Vec<u8>, UnixStream) {
    let mut s = send_upgrade(d, method_path, body);
    std::thread::sleep(Duration::from_millis(200));
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = Vec::new();
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "no answer to {method_path}");
        got.extend_from_slice(&buf[..n]);
    }
    let end = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&got[..end]).into_owned();
    (head, got[end..].to_vec(), s)
}

/// Payloads of a multiplexed stream, as (stream, bytes).
fn frames(mut b: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while !b.is_empty() {
        assert!(b.len() >= 8, "a cut frame header: {b:?}");
        let n = u32::from_be_bytes([b[4], b[5], b[6], b[7]]) as usize;
        assert!(b.len() >= 8 + n, "a cut frame: {b:?}");
        out.push((b[0], b[8..8 + n].to_vec()));
        b = &b[8 + n..];
    }
    out
}

#[test]
fn slow_and_idle_connections_are_closed_but_streams_and_uploads_are_not() {
    let d = Daemon::start_with_args(&["--api-header-timeout", "1", "--api-idle-timeout", "2"]);
    d.import("sleep.wasm", "wsleep");

    // Slowloris: half a request line, a head that never ends, a head
    // trickled slower than the timeout allows, and nothing at all.
    let mut s = connect(&d);
    s.write_all(b"GET /_pi").unwrap();
    assert_closed_by_daemon(&mut s, "half a request line");
    let mut s = connect(&d);
    s.write_all(b"GET /_ping HTTP/1.1\r\nHost: berth\r\n")
        .unwrap();
    assert_closed_by_daemon(&mut s, "a head without its end");
    let mut s = connect(&d);
    let mut trickle_cut = false;
    for b in b"GET /_ping HTTP/1.1\r\nHost: berth\r\nX-Slow: yes\r\n\r\n" {
        if s.write_all(&[*b]).is_err() {
            trickle_cut = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if !trickle_cut {
        let mut buf = [0u8; 64];
        assert!(
            matches!(s.read(&mut buf), Ok(0) | Err(_)),
            "a head trickled over 5 s was answered"
        );
    }
    let mut s = connect(&d);
    assert_closed_by_daemon(&mut s, "a connection that sends nothing");

    // Keep-alive works within the idle time; an idle connection is closed
    // after it.
    let mut s = connect(&d);
    for _ in 0..2 {
        s.write_all(b"GET /_ping HTTP/1.1\r\nHost: berth\r\n\r\n")
            .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        while !got.ends_with(b"\r\n\r\nOK") {
            let n = s.read(&mut buf).unwrap();
            assert!(
                n > 0,
                "closed before the answer: {:?}",
                String::from_utf8_lossy(&got)
            );
            got.extend_from_slice(&buf[..n]);
        }
        assert!(
            got.starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&got)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_closed_by_daemon(&mut s, "an idle kept-alive connection");

    // A body uploaded slower than both timeouts is read to its end.
    let body = br#"{"Image": "wsleep", "Cmd": ["3"]}"#;
    let mut s = connect(&d);
    s.write_all(
        format!(
            "POST /containers/create?name=quiet HTTP/1.1\r\nHost: berth\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .unwrap();
    for chunk in body.chunks(body.len() / 4 + 1) {
        std::thread::sleep(Duration::from_millis(1000));
        s.write_all(chunk).unwrap();
    }
    let answer = String::from_utf8_lossy(&read_to_eof(&mut s)).into_owned();
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");

    // Streams silent for longer than the timeouts stay open: an attach
    // (hijacked), `logs -f` and `wait` of a container that prints, then
    // sleeps 3 s, then exits.
    let mut attach = connect(&d);
    attach
        .write_all(b"POST /containers/quiet/attach?stream=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: berth\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
        .unwrap();
    let mut wait = connect(&d);
    wait.write_all(b"POST /containers/quiet/wait?condition=next-exit HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n\r\n")
        .unwrap();
    // The wait is registered once its head is back.
    let mut buf = [0u8; 1024];
    let n = wait.read(&mut buf).unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    let mut waited = buf[..n].to_vec();
    d.ok(&["start", "quiet"]);
    let mut logs = connect(&d);
    logs.write_all(b"GET /containers/quiet/logs?follow=1&stdout=1 HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n\r\n")
        .unwrap();
    let attached = String::from_utf8_lossy(&read_to_eof(&mut attach)).into_owned();
    assert!(attached.starts_with("HTTP/1.1 101"), "{attached}");
    assert!(attached.contains("sleeping 3"), "{attached}");
    let logged = String::from_utf8_lossy(&read_to_eof(&mut logs)).into_owned();
    assert!(logged.contains("sleeping 3"), "{logged}");
    // The chunked body ended properly: the stream was not cut.
    assert!(logged.ends_with("0\r\n\r\n"), "{logged:?}");
    waited.extend(read_to_eof(&mut wait));
    let waited = String::from_utf8_lossy(&waited).into_owned();
    assert!(waited.contains(r#""StatusCode":0"#), "{waited}");
}

#[test]
fn bad_connection_limits_are_refused_at_start() {
    for (flag, value) in [
        ("--api-max-connections", "0"),
        ("--api-header-timeout", "18446744073709551615"),
        ("--api-idle-timeout", "86401"),
        ("--api-idle-timeout", "-1"),
    ] {
        let out = std::process::Command::new(bin("berthd"))
            .args(["--root", "/nonexistent/berth-e2e"])
            .arg(format!("{flag}={value}"))
            .output()
            .unwrap();
        assert!(!out.status.success(), "{flag} {value}");
        assert!(
            stderr(&out).contains(flag),
            "{flag} {value}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn a_client_reading_the_head_buffered_gets_the_whole_attach_replay() {
    let d = Daemon::start();
    d.import("hello.wasm", "hello");
    d.ok(&["run", "--name", "said", "hello", "--stderr", "to-stderr"]);
    for i in 0..25 {
        let (head, early, mut s) = upgrade_with_buffered_head_read(
            &d,
            "POST /containers/said/attach?logs=1&stream=0&stdout=1&stderr=1",
            b"",
        );
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        // What a buffered client took along with the head is lost to it
        // (docker-py reads on from the raw socket).
        assert!(
            early.is_empty(),
            "round {i}: output came with the head: {:?}",
            String::from_utf8_lossy(&early)
        );
        let rest = read_to_eof(&mut s);
        let got = frames(&rest);
        assert_eq!(got.first().map(|f| f.0), Some(1), "round {i}: {got:?}");
        assert_eq!(
            got.iter()
                .filter(|f| f.0 == 1)
                .map(|f| f.1.clone())
                .collect::<Vec<_>>()
                .concat(),
            b"Hello from Wasm!\nargv[0]=hello.wasm\nargv[1]=--stderr\nargv[2]=to-stderr\ncwd=/\n"
        );
        assert_eq!(
            got.iter()
                .filter(|f| f.0 == 2)
                .map(|f| f.1.clone())
                .collect::<Vec<_>>()
                .concat(),
            b"to-stderr\n"
        );
    }
    // Without the upgrade, the same replay.
    let r = d.http(
        "POST",
        "/containers/said/attach?logs=1&stream=0&stdout=1",
        None,
    );
    assert_eq!(r.status, 200);
    assert_eq!(frames(&r.body).len(), 5, "{:?}", r.text());
}

/// A native container that runs until killed.
fn native_sleeper(d: &Daemon, name: &str) {
    d.ok(&[
        "run", "-d", "--init", "--name", name, "busybox", "sleep", "1000",
    ]);
}

/// `POST /containers/{c}/exec` with `config`; the exec's ID.
fn exec_create(d: &Daemon, c: &str, config: serde_json::Value) -> String {
    let r = d.http(
        "POST",
        &format!("/containers/{c}/exec"),
        Some(("application/json", config.to_string().as_bytes())),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["Id"].as_str().unwrap().to_string()
}

#[test]
fn a_client_reading_the_head_buffered_gets_all_exec_output() {
    if !native_ok() {
        return;
    }
    let d = Daemon::start();
    d.busybox();
    native_sleeper(&d, "ex");
    for i in 0..40 {
        let id = exec_create(
            &d,
            "ex",
            json!({"AttachStdout": true, "AttachStderr": true, "Cmd": ["echo", format!("out{i}")]}),
        );
        let (head, early, mut s) = upgrade_with_buffered_head_read(
            &d,
            &format!("POST /exec/{id}/start"),
            br#"{"Detach": false, "Tty": false}"#,
        );
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        assert!(
            early.is_empty(),
            "round {i}: output came with the head: {:?}",
            String::from_utf8_lossy(&early)
        );
        let got = frames(&read_to_eof(&mut s));
        assert_eq!(
            got,
            vec![(1, format!("out{i}\n").into_bytes())],
            "round {i}"
        );
    }
}

#[test]
fn exec_start_tty_decides_the_stream_format() {
    if !native_ok() {
        return;
    }
    let d = Daemon::start();
    d.busybox();
    native_sleeper(&d, "fmt");
    let run = |create_tty: bool, start_tty: bool| {
        let id = exec_create(
            &d,
            "fmt",
            json!({"AttachStdout": true, "AttachStderr": true, "Tty": create_tty,
                   "Cmd": ["sh", "-c", "echo out; echo err >&2"]}),
        );
        let body = json!({"Detach": false, "Tty": start_tty}).to_string();
        let (head, mut got, mut s) =
            upgrade_with_buffered_head_read(&d, &format!("POST /exec/{id}/start"), body.as_bytes());
        got.extend(read_to_eof(&mut s));
        (head.to_ascii_lowercase(), got)
    };
    // A TTY process, a framed stream: its terminal's output as stdout.
    let (head, got) = run(true, false);
    assert!(
        head.contains("content-type: application/vnd.docker.multiplexed-stream"),
        "{head}"
    );
    let f = frames(&got);
    assert!(f.iter().all(|(k, _)| *k == 1), "{f:?}");
    let text: Vec<u8> = f.into_iter().flat_map(|(_, b)| b).collect();
    assert_eq!(text, b"out\r\nerr\r\n");
    // A process without a TTY, a raw stream: both outputs as they come.
    let (head, got) = run(false, true);
    assert!(
        head.contains("content-type: application/vnd.docker.raw-stream"),
        "{head}"
    );
    let mut lines: Vec<&[u8]> = got
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    lines.sort();
    assert_eq!(
        lines,
        [&b"err"[..], b"out"],
        "{:?}",
        String::from_utf8_lossy(&got)
    );
    // Both the same: as before.
    let (_, got) = run(false, false);
    assert_eq!(frames(&got).len(), 2);
    let (_, got) = run(true, true);
    assert_eq!(got, b"out\r\nerr\r\n");
}

#[test]
fn sigkill_answers_once_the_container_is_stopped() {
    let d = Daemon::start();
    d.import("sleep.wasm", "wsleep");
    let native = native_ok();
    if native {
        d.busybox();
    }
    let mut kinds = vec![("wasm", vec!["run", "-d", "--name", "kk", "wsleep"])];
    if native {
        kinds.push((
            "native",
            vec![
                "run", "-d", "--init", "--name", "kk", "busybox", "sleep", "1000",
            ],
        ));
    }
    for (kind, run) in kinds {
        for i in 0..15 {
            d.ok(&run);
            let r = d.http("POST", "/containers/kk/kill", None);
            assert_eq!(r.status, 204, "{kind} {i}: {}", r.text());
            let state = d.inspect("kk")["State"].clone();
            assert_eq!(state["Running"], false, "{kind} round {i}: {state}");
            assert_eq!(state["Status"], "exited", "{kind} round {i}: {state}");
            assert_eq!(state["ExitCode"], 137, "{kind} round {i}: {state}");
            let r = d.http("DELETE", "/containers/kk", None);
            assert_eq!(r.status, 204, "{kind} round {i}: {}", r.text());
        }
        // Other signals answer once delivered; SIGKILL of a stopped
        // container is a conflict.
        d.ok(&run);
        let r = d.http("POST", "/containers/kk/kill?signal=SIGTERM", None);
        assert_eq!(r.status, 204, "{kind}: {}", r.text());
        d.eventually("SIGTERM to end it", || {
            d.inspect("kk")["State"]["Running"] == false
        });
        assert_eq!(d.http("POST", "/containers/kk/kill", None).status, 409);
        d.ok(&["rm", "kk"]);
    }
}

/// Reads from `s` until what was read contains `want`.
fn read_until(s: &mut UnixStream, got: &mut Vec<u8>, want: &str) {
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(got).contains(want) {
        let n = s.read(&mut buf).unwrap_or_else(|e| {
            panic!(
                "waiting for {want:?}: {e}; got {:?}",
                String::from_utf8_lossy(got)
            )
        });
        assert!(
            n > 0,
            "closed before {want:?}: {:?}",
            String::from_utf8_lossy(got)
        );
        got.extend_from_slice(&buf[..n]);
    }
}

/// Opens an upgraded session and returns it with what came after the head.
fn upgrade(d: &Daemon, method_path: &str, body: &[u8]) -> (UnixStream, Vec<u8>) {
    let mut s = send_upgrade(d, method_path, body);
    let mut got = Vec::new();
    read_until(&mut s, &mut got, "\r\n\r\n");
    let end = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&got[..end]).into_owned();
    assert!(head.starts_with("HTTP/1.1 101"), "{method_path}: {head}");
    (s, got[end..].to_vec())
}

#[test]
fn detach_keys_end_attach_and_exec_sessions_and_leave_the_process_running() {
    if !native_ok() {
        return;
    }
    let d = Daemon::start();
    d.busybox();
    let r = d.http(
        "POST",
        "/containers/create?name=shell",
        Some((
            "application/json",
            br#"{"Image": "busybox", "Cmd": ["sh"], "Tty": true, "OpenStdin": true, "StdinOnce": true,
                 "AttachStdin": true, "AttachStdout": true, "AttachStderr": true}"#,
        )),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let attach = "POST /containers/shell/attach?stream=1&stdin=1&stdout=1&stderr=1";
    // Bad keys are a 400 that says what is accepted, and attach nothing.
    let r = d.http("POST", &format!("{}&detachKeys=ctrl-1", &attach[5..]), None);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.message().contains("Invalid detach keys"),
        "{}",
        r.message()
    );

    // Custom keys: attached before the start, as `docker run -it`.
    let (mut s, mut got) = upgrade(&d, &format!("{attach}&detachKeys=ctrl-a,x"), b"");
    assert_eq!(d.http("POST", "/containers/shell/start", None).status, 204);
    s.write_all(b"echo one-$((40+2))\n").unwrap();
    read_until(&mut s, &mut got, "one-42");
    // The default keys are just input here.
    s.write_all(b"\x10\x11echo two-$((40+2))\n").unwrap();
    read_until(&mut s, &mut got, "two-42");
    s.write_all(b"\x01x").unwrap();
    read_to_eof(&mut s);
    assert_eq!(d.inspect("shell")["State"]["Running"], true);

    // Again with the default keys: the shell still reads its stdin (a
    // detach does not close it).
    let (mut s, mut got) = upgrade(&d, attach, b"");
    s.write_all(b"echo three-$((40+2))\n").unwrap();
    read_until(&mut s, &mut got, "three-42");
    s.write_all(b"\x10\x11").unwrap();
    read_to_eof(&mut s);
    assert_eq!(d.inspect("shell")["State"]["Running"], true);

    // An exec with a TTY detaches with its own keys; the process runs on.
    let r = d.http(
        "POST",
        "/containers/shell/exec",
        Some((
            "application/json",
            br#"{"Cmd": ["sh"], "DetachKeys": "ctrl-"}"#,
        )),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.message().contains("Invalid detach keys"),
        "{}",
        r.message()
    );
    let id = exec_create(
        &d,
        "shell",
        json!({"Cmd": ["sh"], "Tty": true, "AttachStdin": true, "AttachStdout": true,
               "DetachKeys": "ctrl-e,e"}),
    );
    let (mut s, mut got) = upgrade(
        &d,
        &format!("POST /exec/{id}/start"),
        br#"{"Detach": false, "Tty": true}"#,
    );
    s.write_all(b"echo four-$((40+2))\n").unwrap();
    read_until(&mut s, &mut got, "four-42");
    s.write_all(b"\x05e").unwrap();
    read_to_eof(&mut s);
    let r = d.http("GET", &format!("/exec/{id}/json"), None);
    assert_eq!(r.json()["Running"], true, "{}", r.text());
    assert_eq!(d.inspect("shell")["State"]["Running"], true);

    // Without a TTY the keys are input, as in Docker.
    d.ok(&["run", "-d", "-i", "--name", "cat", "busybox", "cat"]);
    let (mut s, mut got) = upgrade(
        &d,
        "POST /containers/cat/attach?stream=1&stdin=1&stdout=1",
        b"",
    );
    s.write_all(b"a\x10\x11b\n").unwrap();
    let mut buf = [0u8; 256];
    while frames_prefix(&got) < 5 {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "{got:?}");
        got.extend_from_slice(&buf[..n]);
    }
    let text: Vec<u8> = frames(&got).into_iter().flat_map(|(_, b)| b).collect();
    assert_eq!(text, b"a\x10\x11b\n");

    // Each detach is an event.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let events = d
        .http("GET", &format!("/events?since=0&until={now:.6}"), None)
        .text();
    let actions: Vec<String> = events
        .lines()
        .filter_map(|l| {
            let e: serde_json::Value = serde_json::from_str(l).ok()?;
            let a = e["Action"].as_str()?.to_string();
            a.contains("detach").then_some(a)
        })
        .collect();
    assert_eq!(actions, ["detach", "detach", "exec_detach"], "{events}");
}

/// Bytes of whole frames at the start of `b`.
fn frames_prefix(mut b: &[u8]) -> usize {
    let mut total = 0;
    while b.len() >= 8 {
        let n = u32::from_be_bytes([b[4], b[5], b[6], b[7]]) as usize;
        if b.len() < 8 + n {
            break;
        }
        total += n;
        b = &b[8 + n..];
    }
    total
}

#[test]
fn exec_output_is_drained_at_the_clients_pace_after_the_process_exits() {
    if !native_ok() {
        return;
    }
    let d = Daemon::start();
    d.busybox();
    native_sleeper(&d, "pace");
    // About what the daemon's socket, its pump and the process's pipe hold
    // together: the process ends with part of its output still in the
    // pipe while the client reads nothing.
    let sndbuf: usize = std::fs::read_to_string("/proc/sys/net/core/wmem_default")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(212_992);
    let size = sndbuf + 80 * 1024;
    // How much those hold varies a little; a few rounds make it likely
    // that one ends with output in the pipe.
    for round in 0..3 {
        let id = exec_create(
            &d,
            "pace",
            json!({"AttachStdout": true, "Cmd": ["head", "-c", size.to_string(), "/dev/zero"]}),
        );
        let (mut s, mut got) = upgrade(
            &d,
            &format!("POST /exec/{id}/start"),
            br#"{"Detach": false, "Tty": false}"#,
        );
        // The client reads nothing until the process has ended (or, where
        // the buffers hold less, reads slowly until it has)...
        let mut buf = [0u8; 4096];
        let started = std::time::Instant::now();
        loop {
            if d.http("GET", &format!("/exec/{id}/json"), None).json()["Running"] == false {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the exec never ended"
            );
            if started.elapsed() > Duration::from_secs(4) {
                let n = s.read(&mut buf).unwrap();
                assert!(n > 0, "the stream ended before the process did");
                got.extend_from_slice(&buf[..n]);
            }
            std::thread::sleep(Duration::from_millis(30));
        }
        // ...then looks away for longer than the daemon waits for output
        // that does not move.
        std::thread::sleep(Duration::from_secs(3));
        got.extend(read_to_eof(&mut s));
        assert_eq!(
            frames_prefix(&got),
            size,
            "round {round}: output lost at the end of the session"
        );
    }
}

#[test]
fn connections_over_the_cap_wait_for_a_free_slot() {
    let d = Daemon::start_with_args(&["--api-max-connections", "3"]);
    // A hijacked attach and two kept-alive connections fill the slots;
    // each is answered, so each holds one.
    d.import("sleep.wasm", "wsleep");
    d.ok(&["run", "-d", "--name", "busy", "wsleep", "600"]);
    let (attach, _) = upgrade(&d, "POST /containers/busy/attach?stream=1&stdout=1", b"");
    let kept_alive = || {
        let mut s = connect(&d);
        s.write_all(b"GET /_ping HTTP/1.1\r\nHost: berth\r\n\r\n")
            .unwrap();
        let mut got = Vec::new();
        read_until(&mut s, &mut got, "\r\n\r\nOK");
        s
    };
    let quiet = kept_alive();
    let quiet2 = kept_alive();
    let mut waiting = connect(&d);
    waiting
        .write_all(b"GET /_ping HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n\r\n")
        .unwrap();
    waiting
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut buf = [0u8; 256];
    match waiting.read(&mut buf) {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("a fourth connection was served past the cap of 3: {other:?}"),
    }
    // A slot frees: the waiting request is served.
    drop(quiet);
    waiting
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let answer = String::from_utf8_lossy(&read_to_eof(&mut waiting)).into_owned();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("OK"), "{answer}");
    drop((attach, quiet2));
    assert!(
        d.log_text().contains("--api-max-connections"),
        "the cap is logged"
    );
}
