//! `docker diff` and `docker commit`: what a container changed in its
//! image's filesystem, and a new image of it.
//!
//! They read a native container's `upper` directly (it holds only what the
//! container changed) and look paths up in the image's layers with
//! overlayfs's rules (whiteouts, opaque directories). The mount points
//! berth's runtime creates (`/proc`, `/sys`, `/dev`, `/etc/hostname`,
//! `/etc/hosts`, `/etc/resolv.conf`) are left out of both, as Docker's
//! init layer leaves them out. A commit turns the upper directory into one
//! OCI layer (overlayfs whiteouts become `.wh.NAME`, opaque directories
//! `.wh..wh..opq`), gzipped into the blob store, and stores an image of
//! the parent's layers plus that one, with the parent's config updated
//! from the container's and from `--change` instructions.
//!
//! A Wasm container's changes are its whole directory (all "added"). A
//! Wasm image carries its module, not a filesystem, so a Wasm commit
//! stores the same module with the updated config, and is refused while
//! the container's directory holds files, rather than silently dropping
//! them.
//!
//! This module knows nothing about containers: callers give it the
//! directories and the config.

use super::manifest::{Descriptor, Manifest, media};
use super::tarwrite::{TarOut, errno, get_xattr, io_error, show};
use super::{ImageRecord, Images, Reference, import};
use crate::error::{Error, Result, ResultExt};
use crate::util::dirfd::{dir_flags, file_type, lstat_at, read_dir_names};
use crate::util::{Digest, digest::Hasher};
use berth_api_types::archive::Change;
use berth_api_types::container as wire;
use nix::errno::Errno;
use nix::fcntl::openat;
use nix::sys::stat::{FileStat, Mode, SFlag};
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

/// The runtime's own mount points, relative to the root: not changes of
/// the container's, and never committed.
const RUNTIME_PATHS: &[&[u8]] = &[
    b"proc",
    b"sys",
    b"dev",
    b"etc/hostname",
    b"etc/hosts",
    b"etc/resolv.conf",
];

const OPAQUE_XATTR: &str = super::unpack::OPAQUE_XATTR;
const REDIRECT_XATTR: &str = "trusted.overlay.redirect";
const WHITEOUT_PREFIX: &[u8] = b".wh.";
const WHITEOUT_OPAQUE: &[u8] = b".wh..wh..opq";

fn is_dir(st: &FileStat) -> bool {
    file_type(st) == SFlag::S_IFDIR
}

/// overlayfs's whiteout: a character device 0/0.
fn is_whiteout(st: &FileStat) -> bool {
    file_type(st) == SFlag::S_IFCHR && st.st_rdev == 0
}

/// One entry of a container's own files (its upper directory), with what
/// it means against the image's layers.
#[derive(Debug)]
struct Node {
    name: Vec<u8>,
    stat: FileStat,
    kind: NodeKind,
    /// What `docker diff` reports for it.
    change: Option<u8>,
    /// Whether a commit's layer holds it.
    include: bool,
}

#[derive(Debug)]
enum NodeKind {
    /// An overlayfs whiteout: deleted from the image.
    Whiteout,
    Dir {
        opaque: bool,
        children: Vec<Node>,
    },
    Other,
}

/// Scans `top` (a container's upper directory, or a Wasm container's
/// whole directory) against `lowers` (top first); `None` if `top` does
/// not exist (a container never started).
fn scan_tree(top: &Path, lowers: &[PathBuf]) -> Result<Option<Vec<Node>>> {
    let fd = match nix::fcntl::open(top, dir_flags(), Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(None),
        Err(e) => return Err(errno(&format!("opening {}", top.display()), e)),
    };
    let mut cands = Vec::new();
    for l in lowers {
        cands.push(
            nix::fcntl::open(l.as_path(), dir_flags(), Mode::empty())
                .map_err(|e| errno(&format!("opening layer {}", l.display()), e))?,
        );
    }
    // Only a native container's upper holds the runtime's mount points.
    let runtime_paths = !lowers.is_empty();
    scan(fd.as_fd(), &cands, b"", runtime_paths).map(Some)
}

fn scan(
    dir: BorrowedFd<'_>,
    lowers: &[OwnedFd],
    prefix: &[u8],
    runtime_paths: bool,
) -> Result<Vec<Node>> {
    let mut out = Vec::new();
    for name in read_dir_names(dir).map_err(|e| io_error("listing the container's changes", e))? {
        let mut path = prefix.to_vec();
        path.extend_from_slice(&name);
        if runtime_paths && RUNTIME_PATHS.contains(&path.as_slice()) {
            continue;
        }
        let Some(st) = lstat_at(dir, &name).map_err(|e| errno("reading a changed file", e))? else {
            continue;
        };
        let (lower, lower_dirs) = lower_lookup(lowers, &name)?;
        if is_whiteout(&st) {
            if lower.is_some() {
                out.push(Node {
                    name,
                    stat: st,
                    kind: NodeKind::Whiteout,
                    change: Some(Change::DELETED),
                    include: true,
                });
            }
            continue;
        }
        if is_dir(&st) {
            let fd = openat(dir, name.as_slice(), dir_flags(), Mode::empty())
                .map_err(|e| errno("opening a changed directory", e))?;
            if get_xattr(fd.as_fd(), REDIRECT_XATTR).is_some() {
                return Err(Error::internal(format!(
                    "/{} was renamed with overlayfs's redirect_dir, which berth cannot read back; \
                     mount overlayfs with redirect_dir=off",
                    show(&path)
                )));
            }
            let opaque = get_xattr(fd.as_fd(), OPAQUE_XATTR).is_some_and(|v| v == b"y");
            let lower_dir = lower.as_ref().is_some_and(is_dir);
            let below: &[OwnedFd] = if opaque || !lower_dir {
                &[]
            } else {
                &lower_dirs
            };
            let mut child_prefix = path.clone();
            child_prefix.push(b'/');
            let children = scan(fd.as_fd(), below, &child_prefix, runtime_paths)?;
            let change = match &lower {
                None => Some(Change::ADDED),
                Some(_) if opaque || !lower_dir => Some(Change::MODIFIED),
                Some(l) => {
                    // As Docker: a directory changed if its mode or owner
                    // did, or something was added to or deleted from it.
                    // Its mtime is not compared: the runtime's own mount
                    // points (left out above) change it.
                    let meta_changed =
                        (l.st_mode, l.st_uid, l.st_gid) != (st.st_mode, st.st_uid, st.st_gid);
                    let child_added_or_deleted = children
                        .iter()
                        .any(|c| matches!(c.change, Some(Change::ADDED | Change::DELETED)));
                    (meta_changed || child_added_or_deleted).then_some(Change::MODIFIED)
                }
            };
            let include = change.is_some() || children.iter().any(|c| c.include);
            out.push(Node {
                name,
                stat: st,
                kind: NodeKind::Dir { opaque, children },
                change,
                include,
            });
            continue;
        }
        out.push(Node {
            name,
            stat: st,
            kind: NodeKind::Other,
            change: Some(if lower.is_some() {
                Change::MODIFIED
            } else {
                Change::ADDED
            }),
            include: true,
        });
    }
    Ok(out)
}

/// Looks `name` up in the lower directories `lowers` (top first) as
/// overlayfs would: the first hit decides; a whiteout hides it; a
/// non-directory hides everything below; directories merge down to the
/// first opaque one. Returns the visible entry's stat and the directories
/// to look in below it.
fn lower_lookup(lowers: &[OwnedFd], name: &[u8]) -> Result<(Option<FileStat>, Vec<OwnedFd>)> {
    let mut first: Option<FileStat> = None;
    let mut dirs = Vec::new();
    for l in lowers {
        let st = match lstat_at(l.as_fd(), name) {
            Ok(Some(st)) => st,
            Ok(None) | Err(Errno::ENOTDIR) => continue,
            Err(e) => return Err(errno("reading an image layer", e)),
        };
        if is_whiteout(&st) {
            break;
        }
        match &first {
            None => first = Some(st),
            Some(_) if !is_dir(&st) => break,
            Some(_) => {}
        }
        if !is_dir(&st) {
            break;
        }
        let fd = openat(l.as_fd(), name, dir_flags(), Mode::empty())
            .map_err(|e| errno("opening an image layer's directory", e))?;
        let opaque = get_xattr(fd.as_fd(), OPAQUE_XATTR).is_some_and(|v| v == b"y");
        dirs.push(fd);
        if opaque {
            break;
        }
    }
    Ok((first, dirs))
}

fn list_changes(nodes: &[Node], prefix: &[u8], out: &mut Vec<Change>) {
    for n in nodes {
        let mut path = prefix.to_vec();
        path.push(b'/');
        path.extend_from_slice(&n.name);
        if let Some(kind) = n.change {
            out.push(Change {
                path: show(&path),
                kind,
            });
        }
        if let NodeKind::Dir { children, .. } = &n.kind {
            list_changes(children, &path, out);
        }
    }
}

// ---------------------------------------------------------------------------
// commit

/// What a commit records besides the files.
pub struct CommitMeta {
    pub created: String,
    pub created_by: String,
    pub comment: String,
    pub author: String,
    pub config: wire::Config,
}

/// The tags a commit gets from `repo` (possibly `repo:tag`) and `tag`.
pub fn commit_tags(repo: &str, tag: &str) -> Result<Vec<Reference>> {
    if repo.is_empty() {
        if !tag.is_empty() {
            return Err(Error::invalid(
                "a tag needs a repository: give repo=NAME&tag=TAG",
            ));
        }
        return Ok(Vec::new());
    }
    let r = Reference::parse(repo)?;
    if r.digest().is_some() {
        return Err(Error::invalid(format!(
            "refusing to create a tag with a digest reference: {repo}"
        )));
    }
    Ok(vec![if tag.is_empty() { r } else { r.with_tag(tag)? }])
}

/// The config a committed image gets: the container's, with the fields
/// the request's body sets, then the `--change` instructions, and none of
/// what belongs to one container (hostname, attachment, TTY).
pub fn commit_config(
    container: &wire::Config,
    body: Option<&wire::Config>,
    changes: &import::ConfigChanges,
    image_id: &str,
) -> wire::Config {
    let mut config = container.clone();
    if let Some(body) = body {
        overlay_config(&mut config, body);
    }
    apply_changes(&mut config, changes);
    config.hostname.clear();
    config.domainname.clear();
    config.attach_stdin = false;
    config.attach_stdout = false;
    config.attach_stderr = false;
    config.tty = false;
    config.open_stdin = false;
    config.stdin_once = false;
    config.image = image_id.to_string();
    config
}

/// What a container changed in its image's filesystem, sorted by path:
/// `top` is its own directory (a native container's upper, a Wasm
/// container's whole directory), `lowers` its image's layers, top first.
pub fn changes(top: &Path, lowers: &[PathBuf]) -> Result<Vec<Change>> {
    let Some(tree) = scan_tree(top, lowers)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    list_changes(&tree, b"", &mut out);
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// Stores a committed image: for a native container, its image's layers
/// plus one layer of `top`'s changes against `lowers`; for a Wasm one
/// (`wasm`), the same module with the new config, refused while `top`
/// holds files. `parent_config` is the image's config blob.
#[allow(clippy::too_many_arguments)]
pub fn commit(
    images: &Images,
    parent: &Manifest,
    parent_config: serde_json::Value,
    meta: &CommitMeta,
    tags: &[Reference],
    top: &Path,
    lowers: &[PathBuf],
    wasm: bool,
) -> Result<ImageRecord> {
    let tree = scan_tree(top, lowers)?;
    if wasm {
        if tree.as_ref().is_some_and(|t| !t.is_empty()) {
            return Err(Error::invalid(
                "cannot commit the files of a Wasm container: a Wasm image carries its \
                 module, not a filesystem. Copy them out with `berth cp`, remove them from \
                 the container, and commit again to store the module with the new config",
            ));
        }
        return commit_wasm(images, parent, parent_config, meta, tags);
    }
    commit_native(
        images,
        parent,
        parent_config,
        meta,
        tags,
        top,
        tree.unwrap_or_default(),
    )
}

/// Sets the fields the commit request's body gives over the container's.
fn overlay_config(config: &mut wire::Config, body: &wire::Config) {
    if body.cmd.is_some() {
        config.cmd = body.cmd.clone();
    }
    if body.entrypoint.is_some() {
        config.entrypoint = body.entrypoint.clone();
    }
    for e in &body.env {
        let (k, v) = e.split_once('=').unwrap_or((e, ""));
        set_env(&mut config.env, k, v);
    }
    if !body.working_dir.is_empty() {
        config.working_dir = body.working_dir.clone();
    }
    if !body.user.is_empty() {
        config.user = body.user.clone();
    }
    config
        .labels
        .extend(body.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    if let Some(p) = &body.exposed_ports {
        config
            .exposed_ports
            .get_or_insert_with(Default::default)
            .extend(p.clone());
    }
    if let Some(v) = &body.volumes {
        config
            .volumes
            .get_or_insert_with(Default::default)
            .extend(v.clone());
    }
    if !body.stop_signal.is_empty() {
        config.stop_signal = body.stop_signal.clone();
    }
}

/// Applies `--change` instructions, as a Dockerfile would on top.
fn apply_changes(config: &mut wire::Config, ch: &import::ConfigChanges) {
    if ch.entrypoint.is_some() {
        config.entrypoint = ch.entrypoint.clone();
        // A new entrypoint drops the old command unless CMD came too.
        config.cmd = ch.cmd.clone();
    } else if ch.cmd.is_some() {
        config.cmd = ch.cmd.clone();
    }
    for e in &ch.env {
        let (k, v) = e.split_once('=').unwrap_or((e, ""));
        set_env(&mut config.env, k, v);
    }
    if let Some(w) = &ch.working_dir {
        config.working_dir = w.clone();
    }
    if let Some(u) = &ch.user {
        config.user = u.clone();
    }
    config
        .labels
        .extend(ch.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    if !ch.exposed_ports.is_empty() {
        let ports = config.exposed_ports.get_or_insert_with(Default::default);
        for p in &ch.exposed_ports {
            ports.insert(p.clone(), serde_json::json!({}));
        }
    }
    if !ch.volumes.is_empty() {
        let vols = config.volumes.get_or_insert_with(Default::default);
        for v in &ch.volumes {
            vols.insert(v.clone(), serde_json::json!({}));
        }
    }
    if let Some(s) = &ch.stop_signal {
        config.stop_signal = s.clone();
    }
}

fn set_env(env: &mut Vec<String>, key: &str, value: &str) {
    let entry = format!("{key}={value}");
    match env
        .iter_mut()
        .find(|e| e.split_once('=').map(|x| x.0).unwrap_or(e) == key)
    {
        Some(e) => *e = entry,
        None => env.push(entry),
    }
}

/// The parent's config blob with the commit's changes: `created`,
/// `author`, the container config, and one more history entry (and, with
/// a layer, one more diff_id).
fn new_config(
    mut config: serde_json::Value,
    meta: &CommitMeta,
    diff_id: Option<&Digest>,
) -> Result<Vec<u8>> {
    use serde_json::{Value, json};
    if !config.is_object() {
        config = json!({});
    }
    config["created"] = json!(meta.created);
    if !meta.author.is_empty() {
        config["author"] = json!(meta.author);
    }
    config["config"] = serde_json::to_value(&meta.config).ctx("encoding the container config")?;
    let mut entry = json!({"created": meta.created, "created_by": meta.created_by});
    // The image's comment is this commit's, as Docker's (none: none).
    match config.as_object_mut() {
        Some(o) if meta.comment.is_empty() => {
            o.remove("comment");
        }
        _ => config["comment"] = json!(meta.comment),
    }
    if !meta.comment.is_empty() {
        entry["comment"] = json!(meta.comment);
    }
    if !meta.author.is_empty() {
        entry["author"] = json!(meta.author);
    }
    if let Some(d) = diff_id {
        if !config["rootfs"].is_object() {
            config["rootfs"] = json!({"type": "layers", "diff_ids": []});
        }
        match config["rootfs"]["diff_ids"].as_array_mut() {
            Some(ids) => ids.push(json!(d.to_string())),
            None => config["rootfs"]["diff_ids"] = json!([d.to_string()]),
        }
    } else {
        entry["empty_layer"] = json!(true);
    }
    match config["history"].as_array_mut() {
        Some(h) => h.push(entry),
        None => config["history"] = Value::Array(vec![entry]),
    }
    serde_json::to_vec(&config).ctx("encoding the image config")
}

fn commit_tags_and_store(
    images: &Images,
    manifest: &Manifest,
    tags: &[Reference],
) -> Result<ImageRecord> {
    let bytes = serde_json::to_vec(manifest).ctx("encoding the manifest")?;
    let digest = images.blobs().put(&bytes, None)?;
    images.commit(&digest, tags, None)
}

fn commit_wasm(
    images: &Images,
    parent: &Manifest,
    parent_config: serde_json::Value,
    meta: &CommitMeta,
    tags: &[Reference],
) -> Result<ImageRecord> {
    let config = new_config(parent_config, meta, None)?;
    let digest = images.blobs().put(&config, None)?;
    let mut manifest = parent.clone();
    manifest.config = Descriptor::new(&parent.config.media_type, digest, config.len() as u64);
    commit_tags_and_store(images, &manifest, tags)
}

fn commit_native(
    images: &Images,
    parent: &Manifest,
    parent_config: serde_json::Value,
    meta: &CommitMeta,
    tags: &[Reference],
    upper: &Path,
    tree: Vec<Node>,
) -> Result<ImageRecord> {
    let blobs = images.blobs();
    let mut writer = blobs.writer()?;
    let diff_id = {
        let gz = flate2::write::GzEncoder::new(&mut writer, flate2::Compression::fast());
        let mut out = TarOut::new(HashingWriter {
            inner: gz,
            hasher: Hasher::new(),
        });
        if let Ok(fd) = nix::fcntl::open(upper, dir_flags(), Mode::empty()) {
            emit_layer(&mut out, fd.as_fd(), &tree, b"")?;
        }
        let HashingWriter { inner, hasher } = out.into_inner()?;
        inner
            .finish()
            .map_err(|e| io_error("compressing the layer", e))?;
        hasher.finish().0
    };
    let size = writer.written();
    let layer_digest = writer.commit(None, None)?;
    let layer = Descriptor::new(media::OCI_LAYER_GZIP, layer_digest, size);
    let config = new_config(parent_config, meta, Some(&diff_id))?;
    let config_digest = blobs.put(&config, None)?;
    let mut layers = parent.layers.clone();
    layers.push(layer);
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.into()),
        artifact_type: None,
        config: Descriptor::new(media::OCI_CONFIG, config_digest, config.len() as u64),
        layers,
        annotations: BTreeMap::new(),
        subject: None,
    };
    commit_tags_and_store(images, &manifest, tags)
}

/// The commit layer: the upper directory's entries that `scan` kept, in
/// the OCI layer format.
fn emit_layer<W: Write>(
    out: &mut TarOut<W>,
    dir: BorrowedFd<'_>,
    nodes: &[Node],
    prefix: &[u8],
) -> Result<()> {
    for n in nodes.iter().filter(|n| n.include) {
        let mut path = prefix.to_vec();
        match &n.kind {
            NodeKind::Whiteout => {
                path.extend_from_slice(WHITEOUT_PREFIX);
                path.extend_from_slice(&n.name);
                out.marker(&path, &n.stat)?;
            }
            NodeKind::Dir { opaque, children } => {
                path.extend_from_slice(&n.name);
                path.push(b'/');
                let fd = openat(dir, n.name.as_slice(), dir_flags(), Mode::empty())
                    .map_err(|e| errno("opening a changed directory", e))?;
                out.dir(&fd, &n.stat, &path, false)?;
                if *opaque {
                    let mut marker = path.clone();
                    marker.extend_from_slice(WHITEOUT_OPAQUE);
                    out.marker(&marker, &n.stat)?;
                }
                emit_layer(out, fd.as_fd(), children, &path)?;
            }
            NodeKind::Other => {
                path.extend_from_slice(&n.name);
                out.node(dir, &n.name, &n.stat, &path)?;
            }
        }
    }
    Ok(())
}

/// Hashes what passes through on its way to `inner` (a layer's diff_id).
struct HashingWriter<W: Write> {
    inner: W,
    hasher: Hasher,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::dirfd::set_xattr_fd;
    use nix::sys::stat::mknodat;
    use std::os::unix::fs::PermissionsExt;

    fn open_dir(path: &Path) -> nix::Result<OwnedFd> {
        nix::fcntl::open(path, dir_flags(), Mode::empty())
    }

    #[test]
    fn changes_of_a_plain_directory_are_all_additions() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("a/b")).unwrap();
        std::fs::write(t.path().join("a/b/c"), b"").unwrap();
        let tree = scan_tree(t.path(), &[]).unwrap().unwrap();
        let mut out = Vec::new();
        list_changes(&tree, b"", &mut out);
        let got: Vec<(char, &str)> = out.iter().map(|c| (c.letter(), c.path.as_str())).collect();
        assert_eq!(got, [('A', "/a"), ('A', "/a/b"), ('A', "/a/b/c")]);
        assert!(scan_tree(&t.path().join("nope"), &[]).unwrap().is_none());
    }

    /// An upper directory over two lowers, with the whiteouts and opaque
    /// directories overlayfs makes (root needed for both).
    #[test]
    fn changes_and_commit_layer_follow_overlay_rules() {
        if !crate::util::testing::have_root() {
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let (low1, low2, up) = (
            t.path().join("l1"),
            t.path().join("l2"),
            t.path().join("up"),
        );
        for d in ["etc", "bin", "opq/old", "tmp"] {
            std::fs::create_dir_all(low1.join(d)).unwrap();
        }
        std::fs::write(low1.join("etc/passwd"), b"root").unwrap();
        std::fs::write(low1.join("bin/ls"), b"ls").unwrap();
        std::fs::write(low1.join("bin/gone-below"), b"").unwrap();
        std::fs::create_dir_all(low2.join("bin")).unwrap();
        // The top lower deleted bin/gone-below.
        mknodat(
            open_dir(&low2.join("bin")).unwrap().as_fd(),
            "gone-below",
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o600),
            0,
        )
        .unwrap();
        for d in ["etc", "bin", "opq", "tmp", "proc"] {
            std::fs::create_dir_all(up.join(d)).unwrap();
        }
        let same_perm = |p: &Path, from: &Path| {
            let m = std::fs::metadata(from).unwrap().permissions().mode();
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
        };
        for d in ["etc", "bin", "opq", "tmp"] {
            same_perm(&up.join(d), &low1.join(d));
        }
        std::fs::write(up.join("etc/passwd"), b"root\napp").unwrap();
        std::fs::write(up.join("etc/hostname"), b"").unwrap();
        std::fs::write(up.join("tmp/new"), b"new").unwrap();
        mknodat(
            open_dir(&up.join("bin")).unwrap().as_fd(),
            "ls",
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o600),
            0,
        )
        .unwrap();
        mknodat(
            open_dir(&up.join("bin")).unwrap().as_fd(),
            "gone-below",
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o600),
            0,
        )
        .unwrap();
        set_xattr_fd(
            open_dir(&up.join("opq")).unwrap().as_fd(),
            OPAQUE_XATTR,
            b"y",
        )
        .unwrap();
        std::fs::write(up.join("opq/fresh"), b"").unwrap();
        let tree = scan_tree(&up, &[low2.clone(), low1.clone()])
            .unwrap()
            .unwrap();
        let mut out = Vec::new();
        list_changes(&tree, b"", &mut out);
        let got: Vec<String> = out
            .iter()
            .map(|c| format!("{} {}", c.letter(), c.path))
            .collect();
        assert_eq!(
            got,
            [
                "C /bin",
                "D /bin/ls",
                "C /etc/passwd",
                "C /opq",
                "A /opq/fresh",
                "C /tmp",
                "A /tmp/new"
            ],
            "a whiteout of something already deleted below is no change; runtime paths are left out"
        );
        let mut out = TarOut::new(Vec::new());
        let fd = open_dir(&up).unwrap();
        emit_layer(&mut out, fd.as_fd(), &tree, b"").unwrap();
        let mut a = tar::Archive::new(io::Cursor::new(out.into_inner().unwrap()));
        let names: Vec<String> = a
            .entries()
            .unwrap()
            .map(|e| String::from_utf8(e.unwrap().path_bytes().into_owned()).unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "bin/",
                "bin/.wh.ls",
                "etc/",
                "etc/passwd",
                "opq/",
                "opq/.wh..wh..opq",
                "opq/fresh",
                "tmp/",
                "tmp/new"
            ]
        );
    }

    #[test]
    fn config_changes_apply_over_the_containers() {
        let mut c = wire::Config {
            cmd: Some(vec!["sh".into()]),
            env: vec!["PATH=/bin".into(), "A=1".into()],
            ..Default::default()
        };
        let ch = import::parse_changes(&[
            "CMD [\"cat\", \"/hello\"]".to_string(),
            "ENV A=2 B=3".to_string(),
            "LABEL x=y".to_string(),
            "EXPOSE 80".to_string(),
        ])
        .unwrap();
        apply_changes(&mut c, &ch);
        assert_eq!(c.cmd, Some(vec!["cat".to_string(), "/hello".to_string()]));
        assert_eq!(c.env, ["PATH=/bin", "A=2", "B=3"]);
        assert_eq!(c.labels.get("x").map(String::as_str), Some("y"));
        assert!(c.exposed_ports.unwrap().contains_key("80/tcp"));
        let meta = CommitMeta {
            created: "2024-01-01T00:00:00Z".into(),
            created_by: "sh".into(),
            comment: "msg".into(),
            author: "me".into(),
            config: wire::Config::default(),
        };
        let parent = serde_json::json!({"os": "linux", "rootfs": {"type": "layers", "diff_ids": ["sha256:aa"]}, "history": [{"created_by": "x"}]});
        let d = Digest::of(b"layer");
        let v: serde_json::Value =
            serde_json::from_slice(&new_config(parent, &meta, Some(&d)).unwrap()).unwrap();
        assert_eq!(v["rootfs"]["diff_ids"][1], d.to_string());
        assert_eq!(v["history"][1]["comment"], "msg");
        assert_eq!(v["author"], "me");
        assert_eq!(v["os"], "linux");
        assert!(commit_tags("", "t").is_err());
        assert_eq!(commit_tags("app", "v1").unwrap()[0].to_string(), "app:v1");
    }
}
