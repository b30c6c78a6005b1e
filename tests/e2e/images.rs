//! Builds image tarballs for tests, in the formats others produce them: OCI
//! image layouts (what `skopeo copy oci-archive:` and `docker save` 25+
//! write) and old-style `docker save` archives, and hostile ones (ambiguous
//! manifests, gzip bombs, layers of many files); and the tests of what
//! `load` and `import` refuse, and of the rules for names.

use crate::harness::*;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};

pub fn sha(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

fn append(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) {
    let mut h = tar::Header::new_ustar();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    b.append_data(&mut h, path, data).unwrap();
}

/// A tar holding one file.
pub fn tar_with_file(path: &str, data: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    append(&mut b, path, data);
    b.into_inner().unwrap()
}

pub struct Layer {
    pub media_type: String,
    pub data: Vec<u8>,
    pub annotations: Value,
}

impl Layer {
    pub fn new(media_type: &str, data: Vec<u8>) -> Layer {
        Layer {
            media_type: media_type.into(),
            data,
            annotations: json!({}),
        }
    }
}

/// An OCI image layout tarball with one manifest named `name` (a full
/// reference such as `docker.io/library/app:latest`).
pub fn oci_layout(
    name: &str,
    config_media_type: &str,
    config: &Value,
    layers: &[Layer],
    manifest_annotations: Value,
) -> Vec<u8> {
    let config_bytes = serde_json::to_vec(config).unwrap();
    let mut blobs: Vec<Vec<u8>> = vec![config_bytes.clone()];
    let layer_descs: Vec<Value> = layers
        .iter()
        .map(|l| {
            blobs.push(l.data.clone());
            let mut d = json!({
                "mediaType": l.media_type,
                "digest": sha(&l.data),
                "size": l.data.len(),
            });
            if l.annotations.as_object().is_some_and(|o| !o.is_empty()) {
                d["annotations"] = l.annotations.clone();
            }
            d
        })
        .collect();
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": config_media_type, "digest": sha(&config_bytes), "size": config_bytes.len()},
        "layers": layer_descs,
    });
    if manifest_annotations
        .as_object()
        .is_some_and(|o| !o.is_empty())
    {
        manifest["annotations"] = manifest_annotations;
    }
    let manifest_bytes = serde_json::to_vec(&manifest).unwrap();
    blobs.push(manifest_bytes.clone());
    let tag = name.rsplit_once(':').map(|x| x.1).unwrap_or("latest");
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": sha(&manifest_bytes),
            "size": manifest_bytes.len(),
            "annotations": {
                "io.containerd.image.name": name,
                "org.opencontainers.image.ref.name": tag,
            }
        }]
    });
    let mut b = tar::Builder::new(Vec::new());
    append(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    append(&mut b, "index.json", &serde_json::to_vec(&index).unwrap());
    for blob in &blobs {
        let d = sha(blob);
        append(
            &mut b,
            &format!("blobs/sha256/{}", d.strip_prefix("sha256:").unwrap()),
            blob,
        );
    }
    b.into_inner().unwrap()
}

/// An old-style `docker save` archive: `manifest.json`, `<hex>.json`
/// config, `<id>/layer.tar` layers.
pub fn docker_archive(tag: &str, config: &Value, layers: &[Vec<u8>]) -> Vec<u8> {
    let mut config = config.clone();
    config["rootfs"] = json!({
        "type": "layers",
        "diff_ids": layers.iter().map(|l| sha(l)).collect::<Vec<_>>(),
    });
    let config_bytes = serde_json::to_vec(&config).unwrap();
    let config_hex = sha(&config_bytes)
        .strip_prefix("sha256:")
        .unwrap()
        .to_string();
    let mut b = tar::Builder::new(Vec::new());
    let mut layer_paths = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let id = format!("{:064x}", i + 1);
        let p = format!("{id}/layer.tar");
        append(&mut b, &p, l);
        append(&mut b, &format!("{id}/VERSION"), b"1.0");
        layer_paths.push(p);
    }
    append(&mut b, &format!("{config_hex}.json"), &config_bytes);
    let manifest = json!([{
        "Config": format!("{config_hex}.json"),
        "RepoTags": [tag],
        "Layers": layer_paths,
    }]);
    append(
        &mut b,
        "manifest.json",
        &serde_json::to_vec(&manifest).unwrap(),
    );
    b.into_inner().unwrap()
}

// ---------------------------------------------------------------------------
// Hostile archives and layers, and the rules for names.

/// A gzip of a tar holding one file of `zeros` zero bytes, made as it is
/// compressed (nothing the size of the file is ever held or written).
pub fn gzip_bomb(zeros: u64) -> Vec<u8> {
    let mut h = tar::Header::new_ustar();
    h.set_path("bomb").unwrap();
    h.set_size(zeros);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    let pad = (512 - zeros % 512) % 512;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(h.as_bytes()).unwrap();
    std::io::copy(&mut std::io::repeat(0).take(zeros + pad + 1024), &mut enc).unwrap();
    enc.finish().unwrap()
}

/// A tar of `n` empty files.
pub fn many_files_tar(n: usize) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for i in 0..n {
        append(&mut b, &format!("f{i}"), b"");
    }
    b.into_inner().unwrap()
}

/// A native image config with one layer of uncompressed digest `diff_id`.
pub fn linux_config(diff_id: &str) -> Value {
    json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    })
}

/// An OCI layout tarball of the given `index.json` and blobs, as is.
pub fn raw_layout(index: &Value, blobs: &[&[u8]]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    append(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    append(&mut b, "index.json", &serde_json::to_vec(index).unwrap());
    for blob in blobs {
        let d = sha(blob);
        append(
            &mut b,
            &format!("blobs/sha256/{}", d.strip_prefix("sha256:").unwrap()),
            blob,
        );
    }
    b.into_inner().unwrap()
}

pub fn desc(media_type: &str, data: &[u8]) -> Value {
    json!({"mediaType": media_type, "digest": sha(data), "size": data.len()})
}

fn image_count(d: &Daemon) -> usize {
    d.http("GET", "/images/json", None)
        .json()
        .as_array()
        .unwrap()
        .len()
}

/// Unpacked layers under the root: none but the store's own directories,
/// and nothing in its `tmp/`.
pub fn assert_no_layers(d: &Daemon) {
    let layers = d.root.join("layers");
    let mut names: Vec<String> = std::fs::read_dir(&layers)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["empty", "tmp"], "unpacked layers left behind");
    assert_eq!(
        std::fs::read_dir(layers.join("tmp")).unwrap().count(),
        0,
        "a partial unpack was left behind"
    );
}

fn load_fails(d: &Daemon, archive: &[u8]) -> String {
    let file = d.dir.path().join("archive.tar");
    std::fs::write(&file, archive).unwrap();
    let out = d.berth(&["load", "-i", file.to_str().unwrap()]);
    assert!(
        !out.status.success(),
        "the load should fail:\n{}",
        stdout(&out)
    );
    format!("{}{}", stdout(&out), stderr(&out))
}

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

#[test]
fn load_refuses_ambiguous_manifests() {
    let d = Daemon::start();
    let layer = tar_with_file("hello", b"hi");
    let cfg = serde_json::to_vec(&linux_config(&sha(&layer))).unwrap();
    let good = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": desc(OCI_CONFIG, &cfg),
        "layers": [desc("application/vnd.oci.image.layer.v1.tar", &layer)],
    }))
    .unwrap();
    let named = |d: Value| {
        let mut d = d;
        d["annotations"] = json!({"io.containerd.image.name": "docker.io/library/amb:latest"});
        d
    };
    // A manifest that also lists manifests: one digest, two images.
    let both = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": desc(OCI_CONFIG, &cfg),
        "layers": [desc("application/vnd.oci.image.layer.v1.tar", &layer)],
        "manifests": [desc(OCI_MANIFEST, &good)],
    }))
    .unwrap();
    let index = json!({"schemaVersion": 2, "manifests": [named(desc(OCI_MANIFEST, &both))]});
    let out = load_fails(&d, &raw_layout(&index, &[&layer, &cfg, &good, &both]));
    assert!(out.contains(&sha(&both)), "names the digest: {out}");
    assert!(out.contains("both `manifests`"), "{out}");
    // A descriptor that says index for a manifest.
    let index = json!({"schemaVersion": 2, "manifests": [named(desc(OCI_INDEX, &good))]});
    let out = load_fails(&d, &raw_layout(&index, &[&layer, &cfg, &good]));
    assert!(
        out.contains(&sha(&good)) && out.contains("descriptor"),
        "{out}"
    );
    // A manifest whose mediaType is not what the descriptor says.
    let docker_typed = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": desc(OCI_CONFIG, &cfg),
        "layers": [desc("application/vnd.oci.image.layer.v1.tar", &layer)],
    }))
    .unwrap();
    let index =
        json!({"schemaVersion": 2, "manifests": [named(desc(OCI_MANIFEST, &docker_typed))]});
    let out = load_fails(&d, &raw_layout(&index, &[&layer, &cfg, &docker_typed]));
    assert!(out.contains("own mediaType"), "{out}");
    // An index.json that is also a manifest.
    let index = json!({
        "schemaVersion": 2,
        "manifests": [named(desc(OCI_MANIFEST, &good))],
        "config": desc(OCI_CONFIG, &cfg),
    });
    let out = load_fails(&d, &raw_layout(&index, &[&layer, &cfg, &good]));
    assert!(out.contains("both `manifests`"), "{out}");
    assert_eq!(image_count(&d), 0);

    // The same image, unambiguous, loads.
    let index = json!({"schemaVersion": 2, "manifests": [named(desc(OCI_MANIFEST, &good))]});
    let file = d.dir.path().join("good.tar");
    std::fs::write(&file, raw_layout(&index, &[&layer, &cfg, &good])).unwrap();
    assert!(
        d.ok(&["load", "-i", file.to_str().unwrap()])
            .contains("amb:latest")
    );
}

#[test]
fn layer_limits_refuse_bombs_on_load_and_import_and_keep_nothing() {
    if !native_ok() {
        return;
    }
    let d = Daemon::start_with_args(&["--max-layer-size", "8MiB", "--max-layer-entries", "1000"]);
    // 64 MiB of zeros in about 64 KiB.
    let bomb = gzip_bomb(64 << 20);
    assert!(bomb.len() < 1 << 20, "{}", bomb.len());
    let file = d.dir.path().join("bomb.tar.gz");
    std::fs::write(&file, &bomb).unwrap();
    let out = d.berth(&["import", file.to_str().unwrap(), "bomb:1"]);
    assert!(!out.status.success(), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("8388608 bytes") && err.contains("--max-layer-size"),
        "{err}"
    );
    assert_eq!(image_count(&d), 0);
    assert_no_layers(&d);

    let many = many_files_tar(2000);
    let file = d.dir.path().join("many.tar");
    std::fs::write(&file, &many).unwrap();
    let out = d.berth(&["import", file.to_str().unwrap(), "many:1"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("1000 entries") && err.contains("--max-layer-entries"),
        "{err}"
    );
    assert_no_layers(&d);

    // The same layers in an archive to load, each after an image that
    // is fine: the load records neither.
    let small = tar_with_file("ok", b"ok");
    for (layer, media_type, want) in [
        (&bomb, OCI_LAYER_GZIP, "--max-layer-size"),
        (
            &many,
            "application/vnd.oci.image.layer.v1.tar",
            "--max-layer-entries",
        ),
    ] {
        // diff_ids are not checked at load; a placeholder does.
        let cfg_ok = serde_json::to_vec(&linux_config(&sha(&small))).unwrap();
        let cfg_bad = serde_json::to_vec(&linux_config(&sha(b"x"))).unwrap();
        let m_ok = serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": desc(OCI_CONFIG, &cfg_ok),
            "layers": [desc("application/vnd.oci.image.layer.v1.tar", &small)],
        }))
        .unwrap();
        let m_bad = serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": desc(OCI_CONFIG, &cfg_bad),
            "layers": [desc(media_type, layer)],
        }))
        .unwrap();
        let mut first = desc(OCI_MANIFEST, &m_ok);
        first["annotations"] = json!({"io.containerd.image.name": "docker.io/library/fine:1"});
        let mut second = desc(OCI_MANIFEST, &m_bad);
        second["annotations"] = json!({"io.containerd.image.name": "docker.io/library/bad:1"});
        let index = json!({"schemaVersion": 2, "manifests": [first, second]});
        let out = load_fails(
            &d,
            &raw_layout(&index, &[&small, layer, &cfg_ok, &cfg_bad, &m_ok, &m_bad]),
        );
        assert!(out.contains(want), "{out}");
        assert_eq!(image_count(&d), 0, "nothing recorded");
        assert!(
            std::fs::read_dir(d.root.join("layers/tmp"))
                .unwrap()
                .count()
                == 0,
            "a partial unpack was left behind"
        );
    }
    // Within the limits, the same daemon imports.
    let file = d.dir.path().join("ok.tar");
    std::fs::write(&file, many_files_tar(900)).unwrap();
    d.ok(&["import", file.to_str().unwrap(), "fine:2"]);
}

#[test]
fn names_and_references_have_dockers_rules_and_a_length_cap() {
    let d = Daemon::start();
    d.import("hello.wasm", "hello");
    let long = "a".repeat(10_000);
    // Container names: create and rename, through the CLI and the API.
    let out = d.berth(&["create", "--name", &long, "hello"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("at most 255"), "{}", stderr(&out));
    assert!(stderr(&out).len() < 1000, "the message quotes a little");
    let r = d.http(
        "POST",
        &format!("/containers/create?name={long}"),
        Some(("application/json", br#"{"Image":"hello"}"#)),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.message().contains("at most 255"), "{}", r.message());
    let r = d.http(
        "POST",
        "/containers/create?name=-bad",
        Some(("application/json", br#"{"Image":"hello"}"#)),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    let max = "n".repeat(255);
    let id = d.ok(&["create", "--name", &max, "hello"]);
    let out = d.berth(&["rename", id.trim(), &"m".repeat(256)]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("at most 255"), "{}", stderr(&out));
    let r = d.http(
        "POST",
        &format!("/containers/{}/rename?name={long}", id.trim()),
        None,
    );
    assert_eq!(r.status, 400, "{}", r.text());
    d.ok(&["rename", &max, "short"]);

    // Image references: tag, commit, import, load.
    let out = d.berth(&["tag", "hello", &format!("hello:{}", "t".repeat(129))]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("128"), "{}", stderr(&out));
    d.ok(&["tag", "hello", &format!("hello:{}", "t".repeat(128))]);
    // 255 characters with docker.io/library/.
    let repo = "r".repeat(255 - "docker.io/library/".len());
    d.ok(&["tag", "hello", &repo]);
    let r = d.http(
        "POST",
        &format!("/images/hello/tag?repo={repo}r&tag=1"),
        None,
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.message().contains("255"), "{}", r.message());
    let r = d.http(
        "POST",
        "/images/hello/tag?repo=evil.com%23x/app&tag=1",
        None,
    );
    assert_eq!(r.status, 400, "{}", r.text());
    let r = d.http(
        "POST",
        &format!("/commit?container=short&repo={long}"),
        Some(("application/json", b"{}")),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    let file = d.dir.path().join("rootfs.tar");
    std::fs::write(&file, tar_with_file("a", b"a")).unwrap();
    let out = d.berth(&["import", file.to_str().unwrap(), &long]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("invalid reference format"),
        "{}",
        stderr(&out)
    );
    let archive = docker_archive(&format!("{long}:1"), &json!({"os": "linux"}), &[]);
    let file = d.dir.path().join("long.tar");
    std::fs::write(&file, archive).unwrap();
    let out = d.berth(&["load", "-i", file.to_str().unwrap()]);
    assert!(!out.status.success());
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(text.contains("invalid reference format"), "{text}");
}

/// A Wasm image whose tar layer is gzipped in two members (as `pigz` and
/// some registries write it), the module split across them: `load` stores
/// it and `run` reads the module whole.
#[test]
fn a_wasm_layer_gzipped_in_several_members_loads_and_runs() {
    let d = Daemon::start();
    let module = std::fs::read(sample("hello.wasm")).unwrap();
    let tar = tar_with_file("hello.wasm", &module);
    let member = |data: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    };
    // The first member ends in the middle of the module.
    let (first, second) = tar.split_at(512 + module.len() / 2);
    let mut layer = member(first);
    layer.extend(member(second));
    let archive = oci_layout(
        "docker.io/library/pigz-wasm:latest",
        OCI_CONFIG,
        &json!({
            "architecture": "wasm", "os": "wasip1",
            "config": {"Entrypoint": ["/hello.wasm"]},
            "rootfs": {"type": "layers", "diff_ids": [sha(&tar)]},
        }),
        &[Layer::new(OCI_LAYER_GZIP, layer)],
        json!({}),
    );
    let file = d.dir.path().join("pigz-wasm.tar");
    std::fs::write(&file, archive).unwrap();
    d.ok(&["load", "-i", file.to_str().unwrap()]);
    let out = d.ok(&["run", "--rm", "pigz-wasm"]);
    assert!(out.starts_with("Hello from Wasm!"), "{out}");
}
