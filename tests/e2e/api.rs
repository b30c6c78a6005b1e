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
