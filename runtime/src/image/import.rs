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
/// yields them.
fn sniff<'a>(mut reader: impl Read + 'a) -> Result<(Compression, Box<dyn Read + 'a>)> {
    let mut head = [0u8; 6];
    let mut n = 0;
    while n < head.len() {
        match reader.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::invalid(format!("reading the tarball: {e}"))),
        }
    }
    if n == 0 {
        return Err(Error::invalid(
            "the tarball is empty: expected a root filesystem as a tar archive (plain, gzip or zstd)",
        ));
    }
    let head = &head[..n];
    let compression = if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else if head.starts_with(b"BZh") {
        return Err(Error::invalid(
            "the tarball is bzip2-compressed, which berth does not read; decompress it (bunzip2) or use gzip or zstd",
        ));
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        return Err(Error::invalid(
            "the tarball is xz-compressed, which berth does not read; decompress it (unxz) or use gzip or zstd",
        ));
    } else {
        Compression::None
    };
    Ok((
        compression,
        Box::new(io::Cursor::new(head.to_vec()).chain(reader)),
    ))
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
            Some((k, _)) if k.is_empty() => Err(format!("{w:?} has an empty key")),
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
