//! Container filesystems end to end: `cp` both ways (running and stopped,
//! files and directories), `export`, `diff` and `commit`, with the berth
//! CLI and the real docker CLI, for native containers (as root) and Wasm
//! containers; and hostile archives and symlinks that must not reach the
//! host.

use crate::harness::*;
use std::io::Read;
use std::path::{Path, PathBuf};

fn native() -> Option<Daemon> {
    if !native_ok() {
        return None;
    }
    let d = Daemon::start();
    d.busybox();
    Some(d)
}

fn docker_ok(d: &Daemon, args: &[&str]) -> Option<String> {
    let out = d.docker(args)?;
    assert!(
        out.status.success(),
        "docker {args:?} failed ({}):\nstdout: {}\nstderr: {}\ndaemon log:\n{}",
        out.status,
        stdout(&out),
        stderr(&out),
        tail(&d.log_text(), 40)
    );
    Some(stdout(&out))
}

fn has_docker() -> bool {
    require("docker").is_some()
}

/// `(name, content or link target, is symlink)` of every entry.
fn tar_entries(data: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut a = tar::Archive::new(data);
    let mut out = Vec::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let mut body = Vec::new();
        if e.header().entry_type() == tar::EntryType::Symlink {
            body = e.link_name_bytes().unwrap().into_owned();
        } else {
            e.read_to_end(&mut body).unwrap();
        }
        out.push((name, body));
    }
    out
}

fn entry<'a>(entries: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    entries
        .iter()
        .find(|(n, _)| n.trim_start_matches("./") == name)
        .map(|(_, b)| b.as_slice())
}

fn no_temp_mounts(d: &Daemon) {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let tmp = d.root.join("tmp-mounts");
    assert!(
        !mounts.contains(tmp.to_str().unwrap()),
        "a temporary mount was left behind:\n{mounts}"
    );
    if let Ok(rd) = std::fs::read_dir(&tmp) {
        assert_eq!(rd.count(), 0, "temporary mount points were left behind");
    }
}

fn scratch(d: &Daemon, name: &str) -> PathBuf {
    let p = d.dir.path().join(name);
    std::fs::create_dir_all(&p).unwrap();
    p
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn cp_into_a_running_native_container_and_back() {
    let Some(d) = native() else { return };
    d.ok(&["run", "-d", "--name", "box", "busybox", "sleep", "1000"]);
    let work = scratch(&d, "cp");
    std::fs::write(work.join("hello.txt"), "hello from the host\n").unwrap();
    d.ok(&["cp", s(&work.join("hello.txt")), "box:/tmp/"]);
    assert_eq!(
        d.ok(&["exec", "box", "cat", "/tmp/hello.txt"]),
        "hello from the host\n"
    );
    // Under a new name.
    d.ok(&["cp", s(&work.join("hello.txt")), "box:/root/renamed.txt"]);
    assert_eq!(
        d.ok(&["exec", "box", "cat", "/root/renamed.txt"]),
        "hello from the host\n"
    );
    // Out again.
    d.ok(&[
        "exec",
        "box",
        "sh",
        "-c",
        "echo made inside > /tmp/inside.txt",
    ]);
    d.ok(&["cp", "box:/tmp/inside.txt", s(&work.join("out.txt"))]);
    assert_eq!(
        std::fs::read_to_string(work.join("out.txt")).unwrap(),
        "made inside\n"
    );
    // The stat header, and a 404 for a missing path.
    let r = d.http(
        "HEAD",
        "/v1.47/containers/box/archive?path=/tmp/inside.txt",
        None,
    );
    assert_eq!(r.status, 200);
    let stat = r
        .header("X-Docker-Container-Path-Stat")
        .expect("the stat header");
    let stat = berth_stat(stat);
    assert_eq!(stat["name"], "inside.txt");
    assert_eq!(stat["size"], 12);
    let r = d.http("HEAD", "/v1.47/containers/box/archive?path=/nope", None);
    assert_eq!(r.status, 404);
    let out = d.berth(&["cp", "box:/nope", s(&work.join("x"))]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("Could not find the file /nope in container box"),
        "{}",
        stderr(&out)
    );
    // A tar on stdout.
    let out = d.berth(&["cp", "box:/tmp/inside.txt", "-"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let e = tar_entries(&out.stdout);
    assert_eq!(entry(&e, "inside.txt"), Some(&b"made inside\n"[..]));

    if !has_docker() {
        return;
    }
    std::fs::write(work.join("d.txt"), "from docker cp\n").unwrap();
    docker_ok(&d, &["cp", s(&work.join("d.txt")), "box:/tmp/docker.txt"]);
    assert_eq!(
        d.ok(&["exec", "box", "cat", "/tmp/docker.txt"]),
        "from docker cp\n"
    );
    docker_ok(
        &d,
        &["cp", "box:/tmp/inside.txt", s(&work.join("docker-out.txt"))],
    );
    assert_eq!(
        std::fs::read_to_string(work.join("docker-out.txt")).unwrap(),
        "made inside\n"
    );
    let out = d.docker(&["cp", "box:/nope", s(&work.join("y"))]).unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("Could not find the file /nope"),
        "{}",
        stderr(&out)
    );
}

fn berth_stat(header: &str) -> serde_json::Value {
    // Standard base64, decoded by hand (no dependency for one header).
    let table = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in header.trim_end_matches('=').bytes() {
        let v = table.iter().position(|t| *t == c).expect("base64") as u32;
        bits = (bits << 6) | v;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    serde_json::from_slice(&out).unwrap()
}

#[test]
fn cp_directories_both_ways_with_a_stopped_container() {
    let Some(d) = native() else { return };
    d.ok(&[
        "run",
        "--name",
        "st",
        "busybox",
        "sh",
        "-c",
        "mkdir -p /data/sub && echo a > /data/a && echo b > /data/sub/b && ln -sf a /data/link \
         && cat /newdir/deep/er/f 2>/dev/null; true",
    ]);
    let work = scratch(&d, "dirs");
    // Out of a stopped container, to a new name.
    d.ok(&["cp", "st:/data", s(&work.join("out"))]);
    assert_eq!(std::fs::read_to_string(work.join("out/a")).unwrap(), "a\n");
    assert_eq!(
        std::fs::read_to_string(work.join("out/sub/b")).unwrap(),
        "b\n"
    );
    assert_eq!(
        std::fs::read_link(work.join("out/link")).unwrap(),
        Path::new("a")
    );
    // Into an existing directory: under its own name.
    std::fs::create_dir_all(work.join("into")).unwrap();
    d.ok(&["cp", "st:/data", s(&work.join("into"))]);
    assert_eq!(
        std::fs::read_to_string(work.join("into/data/sub/b")).unwrap(),
        "b\n"
    );
    // The contents only.
    d.ok(&["cp", "st:/data/.", s(&work.join("contents"))]);
    assert_eq!(
        std::fs::read_to_string(work.join("contents/a")).unwrap(),
        "a\n"
    );
    // A local directory into the stopped container, then back.
    let src = work.join("local");
    std::fs::create_dir_all(src.join("deep/er")).unwrap();
    std::fs::write(src.join("deep/er/f"), "local file\n").unwrap();
    d.ok(&["cp", s(&src), "st:/newdir"]);
    d.ok(&["cp", "st:/newdir/deep/er/f", s(&work.join("back.txt"))]);
    assert_eq!(
        std::fs::read_to_string(work.join("back.txt")).unwrap(),
        "local file\n"
    );
    no_temp_mounts(&d);
    // The container starts again with the copied files in place.
    d.ok(&["start", "st"]);
    assert_eq!(d.ok(&["wait", "st"]).trim(), "0");
    assert_eq!(d.ok(&["logs", "st"]), "local file\n");
    no_temp_mounts(&d);

    if !has_docker() {
        return;
    }
    docker_ok(&d, &["cp", s(&src), "st:/dockerdir"]);
    docker_ok(&d, &["cp", "st:/dockerdir", s(&work.join("dout"))]);
    assert_eq!(
        std::fs::read_to_string(work.join("dout/deep/er/f")).unwrap(),
        "local file\n"
    );
    docker_ok(&d, &["cp", "st:/data/.", s(&work.join("dcontents"))]);
    assert_eq!(
        std::fs::read_to_string(work.join("dcontents/sub/b")).unwrap(),
        "b\n"
    );
    no_temp_mounts(&d);
}

#[test]
fn export_holds_the_image_and_what_the_container_wrote() {
    let Some(d) = native() else { return };
    d.ok(&[
        "run",
        "--name",
        "ex",
        "busybox",
        "sh",
        "-c",
        "echo exported > /root/mine",
    ]);
    let work = scratch(&d, "export");
    let tar = work.join("ex.tar");
    d.ok(&["export", "-o", s(&tar), "ex"]);
    let e = tar_entries(&std::fs::read(&tar).unwrap());
    assert!(entry(&e, "bin/busybox").is_some_and(|b| b.len() > 100_000));
    assert_eq!(entry(&e, "root/mine"), Some(&b"exported\n"[..]));
    // A running container: its own view, without the kernel filesystems'
    // contents.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "live",
        "busybox",
        "sh",
        "-c",
        "echo live > /tmp/live; exec sleep 1000",
    ]);
    d.eventually("the file to be written", || {
        d.berth(&["exec", "live", "cat", "/tmp/live"])
            .status
            .success()
    });
    let out = d.berth(&["export", "live"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let e = tar_entries(&out.stdout);
    assert_eq!(entry(&e, "tmp/live"), Some(&b"live\n"[..]));
    assert!(entry(&e, "proc/").is_some() || entry(&e, "proc").is_some());
    assert!(
        !e.iter()
            .any(|(n, _)| n.starts_with("proc/1/") || n.starts_with("sys/kernel")),
        "the kernel's filesystems are not exported"
    );

    if !has_docker() {
        return;
    }
    let tar2 = work.join("ex2.tar");
    docker_ok(&d, &["export", "-o", s(&tar2), "ex"]);
    let e = tar_entries(&std::fs::read(&tar2).unwrap());
    assert_eq!(entry(&e, "root/mine"), Some(&b"exported\n"[..]));
}

#[test]
fn diff_reports_added_changed_and_deleted() {
    let Some(d) = native() else { return };
    d.ok(&[
        "run",
        "--name",
        "df",
        "busybox",
        "sh",
        "-c",
        "echo new > /tmp/added; echo more >> /etc/passwd; rm /bin/ls",
    ]);
    let out = d.ok(&["diff", "df"]);
    let lines: Vec<&str> = out.lines().collect();
    for want in [
        "A /tmp/added",
        "C /etc/passwd",
        "D /bin/ls",
        "C /tmp",
        "C /bin",
    ] {
        assert!(lines.contains(&want), "{want} missing from:\n{out}");
    }
    for runtime in [
        "/etc/hostname",
        "/etc/hosts",
        "/etc/resolv.conf",
        "/proc",
        "/dev",
        "/sys",
    ] {
        assert!(
            !out.contains(runtime),
            "{runtime} is berth's, not the container's:\n{out}"
        );
    }
    // A container that changed nothing.
    d.ok(&["run", "--name", "clean", "busybox", "true"]);
    assert_eq!(d.ok(&["diff", "clean"]), "");
    d.ok(&["create", "--name", "fresh", "busybox"]);
    assert_eq!(d.ok(&["diff", "fresh"]), "");

    if !has_docker() {
        return;
    }
    let out = docker_ok(&d, &["diff", "df"]).unwrap();
    for want in ["A /tmp/added", "C /etc/passwd", "D /bin/ls"] {
        assert!(
            out.lines().any(|l| l == want),
            "{want} missing from:\n{out}"
        );
    }
}

#[test]
fn commit_makes_an_image_that_runs_with_the_changes() {
    let Some(d) = native() else { return };
    d.ok(&[
        "run",
        "--name",
        "cm",
        "busybox",
        "sh",
        "-c",
        "echo hello-commit > /hello; rm /bin/ls",
    ]);
    let id = d.ok(&[
        "commit",
        "-c",
        r#"CMD ["cat","/hello"]"#,
        "-m",
        "a message",
        "-a",
        "me",
        "cm",
        "committed:v1",
    ]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    assert_eq!(d.ok(&["run", "--rm", "committed:v1"]), "hello-commit\n");
    // The deletion is in the image too.
    let out = d.ok(&[
        "run",
        "--rm",
        "committed:v1",
        "sh",
        "-c",
        "test -e /bin/ls; echo $?",
    ]);
    assert_eq!(out, "1\n");
    let img = d
        .http("GET", "/v1.47/images/committed:v1/json", None)
        .json();
    assert_eq!(img["Id"], id.trim());
    assert_eq!(img["Author"], "me", "{img}");
    assert_eq!(img["Comment"], "a message", "{img}");
    assert_eq!(img["Config"]["Cmd"][0], "cat", "{img}");
    // Committed again from a container of the new image: layers stack.
    d.ok(&[
        "run",
        "--name",
        "cm2",
        "committed:v1",
        "sh",
        "-c",
        "echo second > /second",
    ]);
    d.ok(&["commit", "cm2", "committed:v2"]);
    let img = d.http("GET", "/images/committed:v2/json", None).json();
    assert_eq!(img["Comment"], "", "a commit without -m has no comment");
    assert_eq!(
        d.ok(&["run", "--rm", "committed:v2", "cat", "/hello", "/second"]),
        "hello-commit\nsecond\n"
    );
    // A running container can be committed too.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "running",
        "busybox",
        "sh",
        "-c",
        "echo r > /r; exec sleep 1000",
    ]);
    d.eventually("the file to be written", || {
        d.berth(&["exec", "running", "cat", "/r"]).status.success()
    });
    d.ok(&["commit", "running", "fromrunning"]);
    assert_eq!(d.ok(&["run", "--rm", "fromrunning", "cat", "/r"]), "r\n");
    // Bad changes are refused before anything is stored.
    let out = d.berth(&["commit", "-c", "RUN echo no", "cm", "bad"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("RUN is not a valid change"),
        "{}",
        stderr(&out)
    );

    if !has_docker() {
        return;
    }
    let id = docker_ok(
        &d,
        &[
            "commit",
            "-c",
            r#"CMD ["cat","/hello"]"#,
            "cm",
            "dcommitted",
        ],
    )
    .unwrap();
    assert!(id.trim().starts_with("sha256:"), "{id}");
    assert_eq!(
        docker_ok(&d, &["run", "--rm", "dcommitted"]).unwrap(),
        "hello-commit\n"
    );
}

/// A module that prints `/in.txt` (if there is one) and writes
/// `/out.txt`, through WASI preview 1.
const FS_WAT: &str = r#"(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "in.txt")
  (data (i32.const 32) "out.txt")
  (data (i32.const 48) "written by wasm\n")
  (func (export "_start")
    (local $fd i32)
    (if (i32.eqz (call $path_open (i32.const 3) (i32.const 0) (i32.const 16) (i32.const 6)
                   (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 64)))
      (then
        (local.set $fd (i32.load (i32.const 64)))
        (i32.store (i32.const 72) (i32.const 1024))
        (i32.store (i32.const 76) (i32.const 4096))
        (drop (call $fd_read (local.get $fd) (i32.const 72) (i32.const 1) (i32.const 80)))
        (i32.store (i32.const 76) (i32.load (i32.const 80)))
        (drop (call $fd_write (i32.const 1) (i32.const 72) (i32.const 1) (i32.const 80)))
        (drop (call $fd_close (local.get $fd)))))
    (if (i32.eqz (call $path_open (i32.const 3) (i32.const 0) (i32.const 32) (i32.const 7)
                   (i32.const 9) (i64.const 64) (i64.const 0) (i32.const 0) (i32.const 64)))
      (then
        (local.set $fd (i32.load (i32.const 64)))
        (i32.store (i32.const 72) (i32.const 48))
        (i32.store (i32.const 76) (i32.const 16))
        (drop (call $fd_write (local.get $fd) (i32.const 72) (i32.const 1) (i32.const 80)))
        (drop (call $fd_close (local.get $fd)))))))
"#;

#[test]
fn wasm_containers_copy_export_diff_and_commit() {
    let d = Daemon::start();
    let work = scratch(&d, "wasm");
    std::fs::write(work.join("fs.wat"), FS_WAT).unwrap();
    d.ok(&["wasm", "import", s(&work.join("fs.wat")), "fsdemo"]);
    d.ok(&["create", "--name", "wfs", "fsdemo"]);
    std::fs::write(work.join("in.txt"), "hello wasm file\n").unwrap();
    d.ok(&["cp", s(&work.join("in.txt")), "wfs:/"]);
    d.ok(&["start", "wfs"]);
    assert_eq!(d.ok(&["wait", "wfs"]).trim(), "0");
    assert_eq!(
        d.ok(&["logs", "wfs"]),
        "hello wasm file\n",
        "the module reads the copied file"
    );
    d.ok(&["cp", "wfs:/out.txt", s(&work.join("out.txt"))]);
    assert_eq!(
        std::fs::read_to_string(work.join("out.txt")).unwrap(),
        "written by wasm\n"
    );
    assert_eq!(d.ok(&["diff", "wfs"]), "A /in.txt\nA /out.txt\n");
    let out = d.berth(&["export", "wfs"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let e = tar_entries(&out.stdout);
    assert_eq!(entry(&e, "out.txt"), Some(&b"written by wasm\n"[..]));
    assert_eq!(entry(&e, "in.txt"), Some(&b"hello wasm file\n"[..]));
    // A directory, both ways.
    std::fs::create_dir_all(work.join("tree/sub")).unwrap();
    std::fs::write(work.join("tree/sub/leaf"), "leaf\n").unwrap();
    d.ok(&["cp", s(&work.join("tree")), "wfs:/tree"]);
    d.ok(&["cp", "wfs:/tree", s(&work.join("tree-back"))]);
    assert_eq!(
        std::fs::read_to_string(work.join("tree-back/sub/leaf")).unwrap(),
        "leaf\n"
    );
    // Its files cannot become an image: refused, not dropped.
    let out = d.berth(&["commit", "wfs", "nope"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("Wasm container"), "{}", stderr(&out));
    // Without files, a commit is the module with a new config.
    d.import("hello.wasm", "hello");
    d.ok(&["create", "--name", "hw", "hello"]);
    d.ok(&["commit", "-c", "ENV GREETING=committed", "hw", "hello2"]);
    let out = d.ok(&["run", "--rm", "hello2"]);
    assert!(out.contains("GREETING=committed"), "{out}");

    if !has_docker() {
        return;
    }
    docker_ok(&d, &["cp", "wfs:/out.txt", s(&work.join("dout.txt"))]);
    assert_eq!(
        std::fs::read_to_string(work.join("dout.txt")).unwrap(),
        "written by wasm\n"
    );
    std::fs::write(work.join("d-in.txt"), "via docker\n").unwrap();
    docker_ok(&d, &["cp", s(&work.join("d-in.txt")), "wfs:/d-in.txt"]);
    let out = docker_ok(&d, &["diff", "wfs"]).unwrap();
    assert!(out.lines().any(|l| l == "A /d-in.txt"), "{out}");
}

#[test]
fn a_read_only_wasm_container_cannot_write_its_filesystem() {
    let d = Daemon::start();
    let work = scratch(&d, "wasm-ro");
    std::fs::write(work.join("fs.wat"), FS_WAT).unwrap();
    d.ok(&["wasm", "import", s(&work.join("fs.wat")), "fsdemo"]);
    // The module skips the write when path_open fails, and exits 0.
    d.ok(&["run", "--name", "ro", "--read-only", "fsdemo"]);
    assert_eq!(
        d.ok(&["diff", "ro"]),
        "",
        "nothing written with --read-only"
    );
    let out = d.berth(&["cp", "ro:/out.txt", s(&work.join("out.txt"))]);
    assert!(
        !out.status.success(),
        "no /out.txt in a read-only container"
    );
    d.ok(&["run", "--name", "rw", "fsdemo"]);
    assert_eq!(d.ok(&["diff", "rw"]), "A /out.txt\n", "written without it");
}

/// A tar with one entry whose name climbs out with `..`.
fn climbing_tar(name: &str) -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    {
        let raw = &mut h.as_old_mut().name;
        raw[..name.len()].copy_from_slice(name.as_bytes());
    }
    h.set_size(6);
    h.set_mode(0o644);
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    out.extend_from_slice(b"pwned\n");
    out.resize(1024, 0);
    out.extend_from_slice(&[0u8; 1024]);
    out
}

#[test]
fn hostile_archives_and_symlinks_stay_inside_the_container() {
    let Some(d) = native() else { return };
    let marker = format!("berth-escape-{}", std::process::id());
    let host_file = Path::new("/tmp").join(&marker);
    let _ = std::fs::remove_file(&host_file);
    d.ok(&["run", "-d", "--name", "hz", "busybox", "sleep", "1000"]);
    d.ok(&["exec", "hz", "ln", "-s", "/", "/hostroot"]);
    let tar = climbing_tar(&format!("../../../../../../../../tmp/{marker}"));
    let check = |who: &str| {
        let r = d.http(
            "PUT",
            "/v1.47/containers/hz/archive?path=/tmp",
            Some(("application/x-tar", &tar)),
        );
        assert_eq!(r.status, 400, "{who}: {}", r.text());
        assert!(r.message().contains("climbs out"), "{who}: {}", r.message());
        assert!(!host_file.exists(), "{who}: the archive wrote on the host");
        // Through the CLI, from stdin.
        let mut cmd = d.berth_cmd(&["cp", "-", "hz:/tmp"]);
        cmd.stdin(std::process::Stdio::piped());
        cmd.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(&tar).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(!out.status.success(), "{who}");
        assert!(!host_file.exists(), "{who}: the archive wrote on the host");
    };
    check("running");
    // A host file the container must not see through its symlink to /.
    // (In the test's own directory, so it goes with it.)
    let secret = d.dir.path().join("host-secret");
    std::fs::write(&secret, "host secret\n").unwrap();
    let inside = format!("hz:/hostroot{}", secret.display());
    let work = scratch(&d, "hostile");
    let out = d.berth(&["cp", &inside, s(&work.join("leak"))]);
    assert!(
        !out.status.success(),
        "the host's /tmp is not the container's"
    );
    assert!(!work.join("leak").exists());
    // The symlink itself is what is copied, and -L follows it inside.
    let out = d.berth(&["cp", "hz:/hostroot", "-"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let e = tar_entries(&out.stdout);
    assert_eq!(
        e.len(),
        1,
        "{:?}",
        e.iter().map(|x| &x.0).collect::<Vec<_>>()
    );
    assert_eq!(e[0].1, b"/");
    // Through the symlink, a copy in lands in the container's own /tmp.
    std::fs::write(work.join("through"), "through\n").unwrap();
    d.ok(&[
        "cp",
        s(&work.join("through")),
        "hz:/hostroot/tmp/through-link",
    ]);
    assert_eq!(
        d.ok(&["exec", "hz", "cat", "/tmp/through-link"]),
        "through\n"
    );
    assert!(!Path::new("/tmp/through-link").exists());
    if has_docker() {
        let out = d.docker(&["cp", &inside, s(&work.join("dleak"))]).unwrap();
        assert!(
            !out.status.success(),
            "docker cp must not leak the host file"
        );
        assert!(!work.join("dleak").exists());
    }
    // The same when it is stopped.
    d.ok(&["stop", "-t", "1", "hz"]);
    check("stopped");
    let out = d.berth(&["cp", &inside, s(&work.join("leak2"))]);
    assert!(!out.status.success());
    no_temp_mounts(&d);
    // And for a Wasm container's directory.
    d.import("hello.wasm", "hello");
    d.ok(&["create", "--name", "wz", "hello"]);
    let r = d.http(
        "PUT",
        "/v1.47/containers/wz/archive?path=/",
        Some(("application/x-tar", &tar)),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(!host_file.exists());
    let id = d.inspect("wz")["Id"].as_str().unwrap().to_string();
    assert!(!d.root.join("containers").join(&id).join(&marker).exists());
}

/// A request body the daemon does not read to its end must not cost the
/// client its answer: `docker cp` into a container that does not exist
/// used to end in "write: broken pipe" about one time in five (berthd
/// answered 404 and closed on the unread tar), and into one that exists
/// now and then too (the tar's padding after its end was left unread).
#[test]
fn docker_cp_always_gets_the_answer() {
    if !has_docker() {
        return;
    }
    let d = Daemon::start();
    d.import("hello.wasm", "hello");
    d.ok(&["create", "--name", "cpdest", "hello"]);
    let work = scratch(&d, "cp-answer");
    let file = work.join("in.txt");
    std::fs::write(&file, "x\n").unwrap();
    for _ in 0..20 {
        let out = d.docker(&["cp", s(&file), "nosuch:/in.txt"]).unwrap();
        assert!(!out.status.success());
        assert!(
            stderr(&out).contains("No such container"),
            "{}",
            stderr(&out)
        );
        docker_ok(&d, &["cp", s(&file), "cpdest:/in.txt"]);
    }
}
