//! `docker import`: a root filesystem tarball becomes a native image of one
//! layer.
//!
//! The tarball (plain, gzip or zstd, told apart by its first bytes) is
//! stored as given as the image's only layer, with the matching OCI layer
//! media type. It is then unpacked through the [`LayerStore`], which
//! refuses hostile entries, and which yields the diff_id (the digest of the
//! uncompressed tar). Only then are an OCI config (platform, `rootfs`,
//! `history`, and the container config built from Docker's `--change`
//! instructions) and an OCI manifest written and the image committed, so a
//! refused tarball records nothing.
//!
//! This module reads and writes the image store only through [`Images`] and
//! [`LayerStore`]; it knows nothing about containers or HTTP.

use super::compress;
use super::layers::{HashingReader, LayerStore};
use super::manifest::{Compression, Descriptor, Manifest, media};
use super::{ImageRecord, Images, Reference};
use crate::error::{Error, Result, ResultExt};
use crate::util;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};

/// Docker's words for the instructions `--change` accepts.
const ALLOWED: &str = "CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME and WORKDIR";

/// Imports a root filesystem tarball as a native image, as `docker import
/// FILE [REPOSITORY[:TAG]]` does. `changes` are Dockerfile instructions
/// (`--change`), `platform` is `os[/arch[/variant]]` (default: this host),
/// `message` the history comment (`--message`). A tarball that is not a
/// tar, or whose entries try to reach outside the layer, is refused and
/// leaves no image, tag or new blob behind.
pub fn import_rootfs(
    images: &Images,
    layers: &LayerStore,
    reader: impl Read,
    reference: Option<&Reference>,
    changes: &[String],
    platform: Option<&str>,
    message: Option<&str>,
) -> Result<ImageRecord> {
    // Everything that can be refused without reading the body, first.
    let config_changes = parse_changes(changes)?;
    let (os, arch, variant) = parse_platform(platform)?;
    let tags: Vec<Reference> = match reference {
        Some(r) if r.digest().is_some() => {
            return Err(Error::invalid(format!(
                "refusing to create a tag with a digest reference: {r}"
            )));
        }
        Some(r) => vec![r.clone().with_default_tag()],
        None => Vec::new(),
    };

    let blobs = images.blobs();
    let (compression, reader) = sniff(reader)?;
    let mut reader = HashingReader::new(reader);
    let mut writer = blobs.writer()?;
    copy(&mut reader, &mut writer)?;
    let size = writer.written();
    let digest = reader.finish();
    let existed = blobs.contains(&digest);
    writer.commit(Some(&digest), Some(size))?;

    let layer = Descriptor::new(
        match compression {
            Compression::None => media::OCI_LAYER,
            Compression::Gzip => media::OCI_LAYER_GZIP,
            Compression::Zstd => media::OCI_LAYER_ZSTD,
        },
        digest.clone(),
        size,
    );
    let diff_id = match layers
        .ensure(blobs, &layer)
        .and_then(|_| layers.diff_id(&digest))
    {
        Ok(d) => d,
        Err(e) => {
            if !existed && let Err(e2) = blobs.delete(&digest) {
                tracing::warn!(blob = %digest, error = %e2, "could not remove a refused tarball");
            }
            return Err(e);
        }
    };

    let created = util::now_rfc3339();
    let comment = message
        .filter(|m| !m.is_empty())
        .unwrap_or("Imported from -");
    let mut config = serde_json::json!({
        "created": created,
        "architecture": arch,
        "os": os,
        "config": config_changes.to_json(),
        "rootfs": {"type": "layers", "diff_ids": [diff_id.to_string()]},
        "history": [{"created": created, "comment": comment}],
        "comment": comment,
    });
    if let Some(v) = variant {
        config["variant"] = v.into();
    }
    let config_bytes = serde_json::to_vec(&config).ctx("encoding the image config")?;
    let config_digest = blobs.put(&config_bytes, None)?;
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.into()),
        artifact_type: None,
        config: Descriptor::new(media::OCI_CONFIG, config_digest, config_bytes.len() as u64),
        layers: vec![layer],
        annotations: BTreeMap::new(),
        subject: None,
    };
    let manifest_bytes = serde_json::to_vec(&manifest).ctx("encoding the manifest")?;
    let manifest_digest = blobs.put(&manifest_bytes, None)?;
    images.commit(&manifest_digest, &tags, None)
}

fn copy(reader: &mut impl Read, writer: &mut impl Write) -> Result<u64> {
    let mut buf = vec![0u8; 256 << 10];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::invalid(format!("reading the tarball: {e}"))),
        };
        writer.write_all(&buf[..n]).ctx("storing the tarball")?;
        total += n as u64;
    }
}

/// Tells the compression from the first bytes; the returned reader still
/// yields them (the tarball is stored as given).
fn sniff<'a>(reader: impl Read + 'a) -> Result<(Compression, Box<dyn Read + 'a>)> {
    let what = "the tarball";
    let (magic, whole) = compress::sniff(reader, what)?;
    if magic == compress::Magic::Empty {
        return Err(Error::invalid(
            "the tarball is empty: expected a root filesystem as a tar archive (plain, gzip or zstd)",
        ));
    }
    Ok((magic.compression(what)?, Box::new(whole)))
}

// ---------------------------------------------------------------------------
// platform

/// This host's architecture as OCI names it, with its variant.
pub fn host_arch() -> (&'static str, Option<&'static str>) {
    match std::env::consts::ARCH {
        "x86_64" => ("amd64", None),
        "x86" => ("386", None),
        "aarch64" => ("arm64", None),
        "arm" => ("arm", Some("v7")),
        "powerpc64" if cfg!(target_endian = "little") => ("ppc64le", None),
        "powerpc64" => ("ppc64", None),
        "loongarch64" => ("loong64", None),
        "mips64" if cfg!(target_endian = "little") => ("mips64le", None),
        other => (other, None),
    }
}

/// `os[/arch[/variant]]`, or an architecture alone; the default is this
/// host. Only Linux root filesystems can be imported.
fn parse_platform(p: Option<&str>) -> Result<(String, String, Option<String>)> {
    let (host, host_variant) = host_arch();
    let host = || {
        (
            "linux".to_string(),
            host.to_string(),
            host_variant.map(String::from),
        )
    };
    let Some(p) = p.map(str::trim).filter(|p| !p.is_empty()) else {
        return Ok(host());
    };
    let p = p.to_ascii_lowercase();
    let parts: Vec<&str> = p.split('/').collect();
    let (os, arch, variant) = match parts.as_slice() {
        ["linux"] => return Ok(host()),
        [arch] => ("linux", *arch, None),
        [os, arch] => (*os, *arch, None),
        [os, arch, variant] => (*os, *arch, Some(variant.to_string())),
        _ => {
            return Err(Error::invalid(format!(
                "invalid platform {p:?}: expected os[/arch[/variant]]"
            )));
        }
    };
    if os != "linux" {
        return Err(Error::invalid(format!(
            "cannot import a root filesystem for {os:?}: berth imports Linux root filesystems (platform linux[/ARCH])"
        )));
    }
    let (arch, default_variant) = match arch {
        "x86_64" | "x86-64" => ("amd64", None),
        "aarch64" => ("arm64", None),
        "i386" | "i686" => ("386", None),
        "armhf" => ("arm", Some("v7")),
        "armel" => ("arm", Some("v6")),
        a if a.is_empty() || !a.bytes().all(|b| b.is_ascii_alphanumeric()) => {
            return Err(Error::invalid(format!(
                "invalid platform {p:?}: bad architecture {a:?}"
            )));
        }
        a => (a, None),
    };
    Ok((
        os.to_string(),
        arch.to_string(),
        variant.or(default_variant.map(String::from)),
    ))
}

// ---------------------------------------------------------------------------
// --change

/// The container config that `--change` instructions build.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ConfigChanges {
    pub cmd: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    /// `KEY=value`, in order, one per key.
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// `80/tcp`.
    pub exposed_ports: BTreeSet<String>,
    pub volumes: BTreeSet<String>,
    pub stop_signal: Option<String>,
}

impl ConfigChanges {
    /// The image config's `config` object, Docker's field names, only what
    /// was set.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::{Map, Value, json};
        let mut m = Map::new();
        if let Some(u) = &self.user {
            m.insert("User".into(), json!(u));
        }
        if !self.exposed_ports.is_empty() {
            let ports: Map<String, Value> = self
                .exposed_ports
                .iter()
                .map(|p| (p.clone(), json!({})))
                .collect();
            m.insert("ExposedPorts".into(), Value::Object(ports));
        }
        if !self.env.is_empty() {
            m.insert("Env".into(), json!(self.env));
        }
        if let Some(e) = &self.entrypoint {
            m.insert("Entrypoint".into(), json!(e));
        }
        if let Some(c) = &self.cmd {
            m.insert("Cmd".into(), json!(c));
        }
        if !self.volumes.is_empty() {
            let vols: Map<String, Value> = self
                .volumes
                .iter()
                .map(|v| (v.clone(), json!({})))
                .collect();
            m.insert("Volumes".into(), Value::Object(vols));
        }
        if let Some(w) = &self.working_dir {
            m.insert("WorkingDir".into(), json!(w));
        }
        if !self.labels.is_empty() {
            m.insert("Labels".into(), json!(self.labels));
        }
        if let Some(s) = &self.stop_signal {
            m.insert("StopSignal".into(), json!(s));
        }
        Value::Object(m)
    }

    fn set_env(&mut self, key: &str, value: &str) {
        let entry = format!("{key}={value}");
        match self
            .env
            .iter_mut()
            .find(|e| e.split_once('=').map(|x| x.0).unwrap_or(e) == key)
        {
            Some(e) => *e = entry,
            None => self.env.push(entry),
        }
    }
}

/// Parses Docker's `--change` values: each is one or more Dockerfile lines
/// (`\` continues a line, `#` starts a comment) of the instructions
/// `docker import` and `docker commit` accept. Anything else is refused
/// with a message naming the instruction.
pub fn parse_changes(changes: &[String]) -> Result<ConfigChanges> {
    let mut out = ConfigChanges::default();
    let mut cmd_set = false;
    for change in changes {
        for line in logical_lines(change) {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (word, rest) = match line.split_once(char::is_whitespace) {
                Some((w, r)) => (w, r.trim()),
                None => (line, ""),
            };
            let instr = word.to_ascii_uppercase();
            let bad = |why: &str| Error::invalid(format!("invalid change {line:?}: {why}"));
            match instr.as_str() {
                "CMD" => {
                    out.cmd = Some(command_form(rest).ok_or_else(|| bad("CMD needs a command"))?);
                    cmd_set = true;
                }
                "ENTRYPOINT" => {
                    out.entrypoint = Some(command_form(rest).unwrap_or_default());
                    // As in a Dockerfile: a new entrypoint drops a CMD not
                    // given alongside it.
                    if !cmd_set {
                        out.cmd = None;
                    }
                }
                "ENV" => {
                    for (k, v) in key_values(rest).map_err(|e| bad(&e))? {
                        out.set_env(&k, &v);
                    }
                }
                "LABEL" => {
                    for (k, v) in key_values(rest).map_err(|e| bad(&e))? {
                        out.labels.insert(k, v);
                    }
                }
                "WORKDIR" => {
                    if rest.is_empty() {
                        return Err(bad("WORKDIR needs a path"));
                    }
                    let base = out.working_dir.as_deref().unwrap_or("/");
                    out.working_dir = Some(join_clean(base, rest));
                }
                "USER" => {
                    if rest.is_empty() || rest.contains(char::is_whitespace) {
                        return Err(bad("USER needs one user[:group]"));
                    }
                    out.user = Some(rest.to_string());
                }
                "EXPOSE" => {
                    let words = split_words(rest).map_err(|e| bad(&e))?;
                    if words.is_empty() {
                        return Err(bad("EXPOSE needs a port"));
                    }
                    for w in words {
                        for p in expand_port(&w).map_err(|e| bad(&e))? {
                            out.exposed_ports.insert(p);
                        }
                    }
                }
                "VOLUME" => {
                    let vols = match json_array(rest) {
                        Some(v) => v,
                        None => split_words(rest).map_err(|e| bad(&e))?,
                    };
                    if vols.is_empty() || vols.iter().any(|v| v.trim().is_empty()) {
                        return Err(bad("VOLUME needs a path"));
                    }
                    out.volumes.extend(vols);
                }
                "STOPSIGNAL" => {
                    if !valid_signal(rest) {
                        return Err(bad(&format!("{rest:?} is not a signal")));
                    }
                    out.stop_signal = Some(rest.to_string());
                }
                _ => {
                    return Err(Error::invalid(format!(
                        "{word} is not a valid change command: berth import accepts {ALLOWED}"
                    )));
                }
            }
        }
    }
    Ok(out)
}

/// Joins lines ending in `\` with the next.
fn logical_lines(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in s.lines() {
        let trimmed = line.trim_end();
        if let Some(head) = trimmed.strip_suffix('\\') {
            cur.push_str(head);
            cur.push(' ');
        } else {
            cur.push_str(line);
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// A JSON array of strings (exec form), if `s` is one.
fn json_array(s: &str) -> Option<Vec<String>> {
    if !s.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(s).ok()
}

/// CMD/ENTRYPOINT: exec form as given, shell form run by `/bin/sh -c`.
fn command_form(rest: &str) -> Option<Vec<String>> {
    if let Some(v) = json_array(rest) {
        return Some(v);
    }
    if rest.is_empty() {
        return None;
    }
    Some(vec!["/bin/sh".into(), "-c".into(), rest.to_string()])
}

/// Shell-like words: whitespace separates, `"..."` and `'...'` quote, `\`
/// escapes the next character (in double quotes, only `"`, `\` and `$`).
fn split_words(s: &str) -> std::result::Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(n) => cur.push(n),
                    None => cur.push('\\'),
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(n) => cur.push(n),
                        None => return Err("unterminated single quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(n @ ('"' | '\\' | '$')) => cur.push(n),
                            Some(n) => {
                                cur.push('\\');
                                cur.push(n);
                            }
                            None => return Err("unterminated double quote".into()),
                        },
                        Some(n) => cur.push(n),
                        None => return Err("unterminated double quote".into()),
                    }
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// `KEY=value ...` (quoted as in a Dockerfile), or the legacy
/// `KEY value with spaces`.
fn key_values(rest: &str) -> std::result::Result<Vec<(String, String)>, String> {
    let words = split_words(rest)?;
    let Some(first) = words.first() else {
        return Err("needs KEY=value".into());
    };
    if !first.contains('=') {
        // Legacy form: the first word is the key, the rest of the line its
        // value.
        let value = rest[rest.find(char::is_whitespace).unwrap_or(rest.len())..].trim();
        if value.is_empty() {
            return Err(format!("{first:?} has no value: write KEY=value"));
        }
        let value = split_words(value)?.join(" ");
        return Ok(vec![(first.clone(), value)]);
    }
    words
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some(("", _)) => Err(format!("{w:?} has an empty key")),
            Some((k, v)) => Ok((k.to_string(), v.to_string())),
            None => Err(format!("{w:?} is not KEY=value")),
        })
        .collect()
}

/// `rel` against the absolute `base`, `.` and `..` resolved.
fn join_clean(base: &str, rel: &str) -> String {
    let full = if rel.starts_with('/') {
        rel.to_string()
    } else {
        format!("{base}/{rel}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for c in full.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

/// `80`, `80/udp`, `8000-8002/tcp` to `80/tcp` ... entries.
fn expand_port(w: &str) -> std::result::Result<Vec<String>, String> {
    let (ports, proto) = match w.split_once('/') {
        Some((p, proto)) => (p, proto.to_ascii_lowercase()),
        None => (w, "tcp".to_string()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("{w:?}: the protocol must be tcp, udp or sctp"));
    }
    let port = |s: &str| -> std::result::Result<u16, String> {
        match s.parse::<u16>() {
            Ok(p) if p > 0 => Ok(p),
            _ => Err(format!("{w:?} is not a port (1-65535)")),
        }
    };
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (port(a)?, port(b)?),
        None => {
            let p = port(ports)?;
            (p, p)
        }
    };
    if hi < lo {
        return Err(format!("{w:?}: the range ends before it starts"));
    }
    Ok((lo..=hi).map(|p| format!("{p}/{proto}")).collect())
}

/// A signal number (1-64) or name, with or without `SIG`
/// (`SIGRTMIN+3` too).
fn valid_signal(s: &str) -> bool {
    if s.is_empty() {
        return false;
    }
    if let Ok(n) = s.parse::<u32>() {
        return (1..=64).contains(&n);
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    if let Some(off) = name
        .strip_prefix("RTMIN")
        .or_else(|| name.strip_prefix("RTMAX"))
    {
        return off.is_empty()
            || off
                .strip_prefix('+')
                .or_else(|| off.strip_prefix('-'))
                .and_then(|n| n.parse::<u8>().ok())
                .is_some_and(|n| n <= 30);
    }
    format!("SIG{name}")
        .parse::<nix::sys::signal::Signal>()
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::image::ImageKind;
    use crate::image::config::ImageConfigFile;
    use crate::image::unpack::testtar::Tar;
    use crate::util::Digest;
    use crate::util::testing::have_root;

    fn rootfs() -> Vec<u8> {
        let mut t = Tar::new();
        t.dir("./", 0o755)
            .dir("bin/", 0o755)
            .file("bin/busybox", b"\x7fELF", 0o755)
            .symlink("bin/sh", "busybox")
            .dir("etc/", 0o755)
            .file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n", 0o644)
            .dir("tmp/", 0o1777);
        t.bytes()
    }

    fn changes(c: &[&str]) -> Vec<String> {
        c.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn imports_plain_and_gzip_rootfs_as_native_images() {
        if !have_root() {
            return;
        }
        let (dir, images) = crate::image::tests::fixture();
        let layers = LayerStore::open(dir.path()).unwrap();
        let tar = rootfs();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&tar).unwrap();
        let gz = gz.finish().unwrap();
        let zst = zstd::encode_all(&tar[..], 3).unwrap();

        for (name, data, media_type) in [
            ("plain:v1", &tar, media::OCI_LAYER),
            ("gzip:v1", &gz, media::OCI_LAYER_GZIP),
            ("zstd:v1", &zst, media::OCI_LAYER_ZSTD),
        ] {
            let r = Reference::parse(name).unwrap();
            let record = import_rootfs(
                &images,
                &layers,
                &data[..],
                Some(&r),
                &changes(&[
                    "CMD [\"/bin/sh\"]",
                    "ENV PATH=/bin GREETING=\"hello world\"",
                    "WORKDIR /srv",
                    "WORKDIR app",
                    "USER app",
                    "EXPOSE 80 53/udp",
                    "LABEL org.example=yes",
                    "STOPSIGNAL SIGQUIT",
                ]),
                None,
                Some("a test rootfs"),
            )
            .unwrap();
            assert_eq!(record.kind, ImageKind::Native);
            assert_eq!(images.resolve(name).unwrap().id, record.id);
            let h = images.handle(&record).unwrap();
            assert_eq!(h.manifest.layers.len(), 1);
            let layer = &h.manifest.layers[0];
            assert_eq!(layer.media_type, media_type);
            assert_eq!(layer.digest, Digest::of(data));
            assert_eq!(layer.size as usize, data.len());
            assert_eq!(h.manifest.config.media_type, media::OCI_CONFIG);

            let cfg: ImageConfigFile = h.config.clone();
            assert_eq!(cfg.os, "linux");
            assert_eq!(cfg.architecture, host_arch().0);
            assert_eq!(
                cfg.rootfs.as_ref().unwrap().diff_ids,
                vec![Digest::of(&tar).to_string()]
            );
            assert_eq!(cfg.rootfs.as_ref().unwrap().kind, "layers");
            assert_eq!(cfg.history[0]["comment"], "a test rootfs");
            let c = cfg.container_config();
            assert_eq!(c.cmd, Some(vec!["/bin/sh".to_string()]));
            assert_eq!(c.env, vec!["PATH=/bin", "GREETING=hello world"]);
            assert_eq!(c.working_dir, "/srv/app");
            assert_eq!(c.user, "app");
            assert_eq!(c.labels.get("org.example").map(String::as_str), Some("yes"));
            assert_eq!(c.stop_signal, "SIGQUIT");
            let ports = serde_json::to_value(&c.exposed_ports).unwrap();
            assert_eq!(ports, serde_json::json!({"53/udp": {}, "80/tcp": {}}));

            // The layer is unpacked and shared.
            let files = layers.path(&layer.digest);
            assert_eq!(
                std::fs::read_link(files.join("bin/sh")).unwrap(),
                std::path::Path::new("busybox")
            );
            assert_eq!(layers.diff_id(&layer.digest).unwrap(), Digest::of(&tar));
        }
        // Same content, same config: a re-import differs only by `created`.
        assert_eq!(images.count(), 3);
    }

    #[test]
    fn an_untagged_import_and_a_platform() {
        if !have_root() {
            return;
        }
        let (dir, images) = crate::image::tests::fixture();
        let layers = LayerStore::open(dir.path()).unwrap();
        let record = import_rootfs(
            &images,
            &layers,
            &rootfs()[..],
            None,
            &[],
            Some("linux/arm64/v8"),
            None,
        )
        .unwrap();
        assert!(images.tags_of(&record.id).is_empty());
        assert_eq!(record.architecture, "arm64");
        let h = images.handle(&record).unwrap();
        assert_eq!(h.config.variant.as_deref(), Some("v8"));
        assert_eq!(h.config.history[0]["comment"], "Imported from -");
        assert_eq!(h.config.container_config().cmd, None);
    }

    #[test]
    fn a_hostile_tarball_records_nothing() {
        if !have_root() {
            return;
        }
        let (dir, images) = crate::image::tests::fixture();
        let layers = LayerStore::open(dir.path()).unwrap();
        let mut t = Tar::new();
        t.file("ok", b"x", 0o644).symlink("evil", "/").file(
            "evil/etc/berth-import-hostile",
            b"pwned",
            0o644,
        );
        let r = Reference::parse("evil:latest").unwrap();
        let err =
            import_rootfs(&images, &layers, &t.bytes()[..], Some(&r), &[], None, None).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert!(
            err.message().contains("evil/etc/berth-import-hostile"),
            "{err}"
        );
        assert!(!std::path::Path::new("/etc/berth-import-hostile").exists());
        assert_eq!(images.count(), 0);
        assert!(images.blobs().list().unwrap().is_empty(), "blob removed");
        assert!(layers.list().unwrap().is_empty());
    }

    #[test]
    fn refuses_bad_input_before_storing_anything() {
        let (dir, images) = crate::image::tests::fixture();
        let layers = LayerStore::open(dir.path()).unwrap();
        let imp = |data: &[u8], changes: &[String], platform: Option<&str>| {
            import_rootfs(&images, &layers, data, None, changes, platform, None).unwrap_err()
        };
        assert!(imp(b"", &[], None).message().contains("empty"));
        assert!(imp(b"BZh91AY&SY", &[], None).message().contains("bzip2"));
        assert!(imp(b"\xfd7zXZ\0rest", &[], None).message().contains("xz"));
        let e = imp(&rootfs(), &changes(&["RUN rm -rf /"]), None);
        assert!(
            e.message().contains("RUN is not a valid change command"),
            "{e}"
        );
        let e = imp(&rootfs(), &[], Some("windows/amd64"));
        assert!(e.message().contains("Linux"), "{e}");
        let r = Reference::parse(&format!("x@{}", Digest::of(b"x"))).unwrap();
        let e =
            import_rootfs(&images, &layers, &rootfs()[..], Some(&r), &[], None, None).unwrap_err();
        assert!(e.message().contains("digest"), "{e}");
        let e = imp(&[b'x'; 4096], &[], None);
        assert!(e.message().contains("not a tar"), "{e}");
        assert_eq!(images.count(), 0);
        assert!(images.blobs().list().unwrap().is_empty());
    }

    #[test]
    fn parses_changes_as_docker_does() {
        let p = |c: &[&str]| parse_changes(&changes(c));
        let c = p(&["CMD echo hi", "ENTRYPOINT [\"/bin/tini\", \"--\"]"]).unwrap();
        assert_eq!(
            c.cmd,
            Some(vec!["/bin/sh".into(), "-c".into(), "echo hi".into()])
        );
        assert_eq!(c.entrypoint, Some(vec!["/bin/tini".into(), "--".into()]));
        // An ENTRYPOINT without a CMD among the changes leaves no CMD.
        let c = p(&["entrypoint /app --flag"]).unwrap();
        assert_eq!(
            c.entrypoint,
            Some(vec!["/bin/sh".into(), "-c".into(), "/app --flag".into()])
        );
        assert_eq!(c.cmd, None);
        // Not JSON: shell form.
        let c = p(&["CMD [not json"]).unwrap();
        assert_eq!(c.cmd.unwrap()[2], "[not json");

        let c = p(&[
            "ENV A=1 B=\"two words\" C='single $x' D=back\\ slash",
            "ENV A=override",
            "ENV LEGACY some value here",
        ])
        .unwrap();
        assert_eq!(
            c.env,
            vec![
                "A=override",
                "B=two words",
                "C=single $x",
                "D=back slash",
                "LEGACY=some value here"
            ]
        );
        let c = p(&["LABEL a=b \"c d\"=e", "LABEL version 1.0"]).unwrap();
        assert_eq!(c.labels.get("a").unwrap(), "b");
        assert_eq!(c.labels.get("c d").unwrap(), "e");
        assert_eq!(c.labels.get("version").unwrap(), "1.0");

        let c = p(&["WORKDIR /a", "WORKDIR b/../c", "WORKDIR ./d"]).unwrap();
        assert_eq!(c.working_dir.as_deref(), Some("/a/c/d"));
        let c = p(&["EXPOSE 8000-8002/udp 443"]).unwrap();
        assert_eq!(
            c.exposed_ports
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            ["443/tcp", "8000/udp", "8001/udp", "8002/udp"]
        );
        let c = p(&["VOLUME [\"/data\", \"/logs\"]", "VOLUME /cache"]).unwrap();
        assert_eq!(c.volumes.len(), 3);
        for s in ["SIGTERM", "TERM", "9", "SIGRTMIN+3", "sigusr1"] {
            assert!(p(&[&format!("STOPSIGNAL {s}")]).is_ok(), "{s}");
        }
        let c = p(&["USER 1000:1000", "# a comment", "", "CMD a \\\n  b"]).unwrap();
        assert_eq!(c.user.as_deref(), Some("1000:1000"));
        assert_eq!(c.cmd.unwrap()[2], "a    b");
        let json = p(&["CMD [\"x\"]", "USER u"]).unwrap().to_json();
        assert_eq!(json, serde_json::json!({"Cmd": ["x"], "User": "u"}));

        for (bad, want) in [
            ("FROM scratch", "FROM is not a valid change command"),
            ("RUN true", "RUN is not a valid change command"),
            ("COPY a b", "not a valid change command"),
            ("HEALTHCHECK NONE", "not a valid change command"),
            ("CMD", "CMD needs a command"),
            ("ENV", "KEY=value"),
            ("ENV =x", "empty key"),
            ("ENV A=\"unterminated", "unterminated"),
            ("EXPOSE 0", "not a port"),
            ("EXPOSE 80/icmp", "protocol"),
            ("EXPOSE 90-80", "range"),
            ("STOPSIGNAL SIGNOPE", "not a signal"),
            ("STOPSIGNAL 99", "not a signal"),
            ("USER", "USER needs"),
            ("WORKDIR", "WORKDIR needs"),
        ] {
            let e = p(&[bad]).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidArgument);
            assert!(e.message().contains(want), "{bad}: {e}");
        }
    }

    #[test]
    fn parses_platforms() {
        let (host, _) = host_arch();
        assert_eq!(parse_platform(None).unwrap().1, host);
        assert_eq!(parse_platform(Some("linux")).unwrap().1, host);
        assert_eq!(
            parse_platform(Some("linux/x86_64")).unwrap(),
            ("linux".into(), "amd64".into(), None)
        );
        assert_eq!(
            parse_platform(Some("arm64")).unwrap(),
            ("linux".into(), "arm64".into(), None)
        );
        assert_eq!(
            parse_platform(Some("Linux/ARM/v6")).unwrap(),
            ("linux".into(), "arm".into(), Some("v6".into()))
        );
        assert!(parse_platform(Some("windows/amd64")).is_err());
        assert!(parse_platform(Some("linux/a/b/c")).is_err());
        assert!(parse_platform(Some("linux/../x")).is_err());
    }
}
