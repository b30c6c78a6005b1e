//! Image tarballs: what `docker load` reads and `docker save` writes.
//!
//! [`load`] accepts an OCI image layout (`oci-layout`, `index.json`,
//! `blobs/sha256/...`), a Docker archive as `docker save` wrote it before
//! v25 (`manifest.json`, `<id>/layer.tar`, `<hex>.json`), and the v25+
//! archive that is both at once; plain, gzip or zstd compressed. Entries may
//! come in any order: each file is streamed into the blob store as it passes
//! (blobs checked against the digest their path names), the small JSON
//! documents that describe the archive are kept in memory, and only when the
//! whole tar has been read are images planned, checked, and committed.
//! Nothing is extracted to disk and no entry name is trusted.
//!
//! [`save`] writes both formats in one tar, as Docker 25+ does, with fixed
//! metadata so that the same images always give the same bytes.
//!
//! This module only reads and writes the image store through [`Images`]; it
//! knows nothing about containers.

use super::compress::{self, Decoder};
use super::config::ImageConfigFile;
use super::layers::LayerStore;
use super::manifest::{self, Descriptor, DocKind, Index, Manifest, media};
use super::{ImageKind, kind};
use super::{ImageRecord, Images, Reference};
use crate::error::{Error, ErrorKind, Result, ResultExt};
use crate::store::BlobStore;
use crate::util::Digest;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{self, Read, Write};

/// containerd's annotation for an image's full name in an index.
pub const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";
/// OCI's annotation for a reference name (usually only the tag).
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

const OCI_LAYOUT_FILE: &str = "oci-layout";
const OCI_LAYOUT_VERSION: &str = "1.0.0";
const INDEX_FILE: &str = "index.json";
const MANIFEST_FILE: &str = "manifest.json";
const BLOB_DIR: &str = "blobs/sha256/";
/// How deep indexes may nest inside one another.
const MAX_INDEX_DEPTH: usize = 4;
/// How many links may be followed to reach a file.
const MAX_LINK_HOPS: usize = 32;

/// One image in `manifest.json`, Docker's own archive format.
#[derive(Debug, Serialize, Deserialize)]
struct DockerManifestEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct OciLayout {
    #[serde(rename = "imageLayoutVersion")]
    image_layout_version: String,
}

// ---------------------------------------------------------------------------
// load

/// Loads a `docker save` tarball or an OCI image layout tarball (plain, gzip
/// or zstd compressed). `progress` receives one line per image in Docker's
/// words: `Loaded image: hello:latest` for each tag, or `Loaded image ID:
/// sha256:...` for an image without one.
///
/// Every blob is verified before any image is recorded; a load that fails
/// records no image and no tag (blobs already written are unreferenced and
/// go with the next [`Images::collect_garbage`]).
pub fn load(
    images: &Images,
    reader: impl Read,
    progress: &mut dyn FnMut(String),
) -> Result<Vec<ImageRecord>> {
    let scan = Scan::read(images.blobs(), reader)?;
    let plan = if let Some(doc) = &scan.manifest_json {
        plan_docker(images, &scan, doc)?
    } else if let Some(doc) = &scan.index_json {
        plan_oci(images, &scan, doc)?
    } else {
        return Err(Error::invalid(format!(
            "the archive ({} entries) is neither a docker save archive nor an OCI image layout \
             (no {MANIFEST_FILE} or {INDEX_FILE})",
            scan.entries
        )));
    };
    if plan.is_empty() {
        return Err(Error::invalid("the archive holds no images"));
    }
    for p in &plan {
        verify(images, p)?;
    }
    // Every native layer unpacked before any image is recorded, so that a
    // layer refused (hostile, or past berthd's --max-layer-* limits)
    // records nothing. Layers of other images unpacked meanwhile stay
    // until the daemon's start sweeps them, as after a failed pull.
    if let Some(store) = images.layer_store() {
        for p in &plan {
            unpack_native(images, store, p)?;
        }
    }

    let mut records = Vec::with_capacity(plan.len());
    for p in plan {
        let id = image_id(images, &p.manifest)?;
        for t in &p.tags {
            if let Ok(old) = images.resolve(&t.to_string())
                && old.id != id
            {
                progress(format!(
                    "The image {t} already exists, renaming the old one with ID {} to empty string",
                    old.id
                ));
            }
        }
        let record = images.commit(&p.manifest, &p.tags, None)?;
        if p.tags.is_empty() {
            progress(format!("Loaded image ID: {}", record.id));
        }
        for t in &p.tags {
            progress(format!("Loaded image: {t}"));
        }
        records.push(record);
    }
    Ok(records)
}

/// A file of the archive, stored in the blob store.
#[derive(Debug, Clone)]
struct Stored {
    digest: Digest,
    size: u64,
    /// Its first bytes, to tell compressed layers and Wasm modules apart.
    head: Vec<u8>,
}

const HEAD_LEN: usize = 8;

/// What one pass over the tar found.
#[derive(Default)]
struct Scan {
    /// Normalized entry path to the blob holding its content.
    files: HashMap<String, Stored>,
    /// Normalized link path to the normalized path it points at.
    links: HashMap<String, String>,
    manifest_json: Option<Vec<u8>>,
    index_json: Option<Vec<u8>>,
    oci_layout: Option<Vec<u8>>,
    entries: usize,
}

/// The archive, decompressed as its first bytes say.
fn decompress<'a>(reader: impl Read + 'a) -> Result<impl Read + 'a> {
    let what = "the archive";
    let (magic, whole) = compress::sniff(reader, what)?;
    if magic == compress::Magic::Empty {
        return Err(Error::invalid(
            "the archive is empty: expected a tar file written by docker save, or an OCI image layout",
        ));
    }
    Decoder::new(whole, magic.compression(what)?)
}

impl Scan {
    fn read(blobs: &BlobStore, reader: impl Read) -> Result<Scan> {
        let reader = decompress(reader)?;
        let mut archive = tar::Archive::new(reader);
        let mut scan = Scan::default();
        let mut buf = vec![0u8; 256 << 10];
        let mut last = String::new();
        let bad_tar = |e: io::Error, entries: usize, last: &str| {
            if entries == 0 {
                Error::invalid(format!(
                    "not a tar archive ({e}): expected a tar file written by docker save, or an OCI image layout"
                ))
            } else {
                Error::invalid(format!(
                    "the archive is truncated or corrupt after entry {last:?}: {e}"
                ))
            }
        };
        let entries = archive.entries().map_err(|e| bad_tar(e, 0, ""))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| bad_tar(e, scan.entries, &last))?;
            scan.entries += 1;
            let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let path = clean_entry_path(&raw)?;
            last = raw.clone();
            let kind = entry.header().entry_type();
            if kind.is_dir() || path.is_empty() {
                continue;
            }
            if kind.is_symlink() || kind.is_hard_link() {
                let target = entry
                    .link_name_bytes()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                // Symlinks are relative to the link's directory, hard links
                // to the archive's root.
                let base = if kind.is_symlink() {
                    path.rsplit_once('/').map(|(d, _)| d).unwrap_or("")
                } else {
                    ""
                };
                let resolved = resolve_link(base, &target).ok_or_else(|| {
                    Error::invalid(format!(
                        "archive entry {raw:?} links to {target:?}, outside the archive; refusing it"
                    ))
                })?;
                scan.links.insert(path, resolved);
                continue;
            }
            if !(kind.is_file() || kind == tar::EntryType::Continuous) {
                tracing::debug!(entry = %raw, "skipping archive entry of type {kind:?}");
                continue;
            }
            let size = entry.size();
            match path.as_str() {
                MANIFEST_FILE => {
                    scan.manifest_json =
                        Some(read_doc(&mut entry, &raw, manifest::MAX_MANIFEST_SIZE)?)
                }
                INDEX_FILE => {
                    scan.index_json = Some(read_doc(&mut entry, &raw, manifest::MAX_MANIFEST_SIZE)?)
                }
                OCI_LAYOUT_FILE => {
                    scan.oci_layout = Some(read_doc(&mut entry, &raw, manifest::MAX_MANIFEST_SIZE)?)
                }
                _ if is_legacy_metadata(&path) => {}
                _ => {
                    let expected = match path.strip_prefix(BLOB_DIR) {
                        Some(hex) => Some(Digest::from_hex(hex).map_err(|_| {
                            Error::invalid(format!(
                                "archive entry {raw:?} is under {BLOB_DIR} but is not named by a sha256 digest"
                            ))
                        })?),
                        None if path.starts_with("blobs/") => {
                            tracing::debug!(entry = %raw, "skipping blob of an unsupported digest algorithm");
                            continue;
                        }
                        None => None,
                    };
                    let stored = if expected.is_none()
                        && !path.contains('/')
                        && path.ends_with(".json")
                    {
                        // A legacy config (`<hex>.json`): small, read with a limit.
                        let doc = read_doc(&mut entry, &raw, manifest::MAX_CONFIG_SIZE)?;
                        let digest = blobs.put(&doc, None)?;
                        Stored {
                            digest,
                            size: doc.len() as u64,
                            head: doc[..doc.len().min(HEAD_LEN)].to_vec(),
                        }
                    } else {
                        stream_to_blob(blobs, &mut entry, size, expected.as_ref(), &raw, &mut buf)?
                    };
                    scan.files.insert(path, stored);
                }
            }
        }
        scan.check_blob_links()?;
        Ok(scan)
    }

    /// The file at `path`, following links.
    fn lookup(&self, path: &str) -> Option<&Stored> {
        let mut p = path.to_string();
        for _ in 0..MAX_LINK_HOPS {
            if let Some(s) = self.files.get(&p) {
                return Some(s);
            }
            p = self.links.get(&p)?.clone();
        }
        None
    }

    /// A link named `blobs/sha256/<hex>` must lead to content with that
    /// digest, which is then in the store under it.
    fn check_blob_links(&self) -> Result<()> {
        for path in self.links.keys() {
            let Some(hex) = path.strip_prefix(BLOB_DIR) else {
                continue;
            };
            let want = Digest::from_hex(hex).map_err(|_| {
                Error::invalid(format!(
                    "archive entry {path:?} is under {BLOB_DIR} but is not named by a sha256 digest"
                ))
            })?;
            match self.lookup(path) {
                Some(s) if s.digest == want => {}
                Some(s) => {
                    return Err(Error::invalid(format!(
                        "archive entry {path} does not match its digest: it links to content {}",
                        s.digest
                    )));
                }
                None => {
                    return Err(Error::invalid(format!(
                        "archive entry {path} is a link to nothing in the archive"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// Validates an entry name and gives it in normal form (`a/b`, no `./`, no
/// trailing slash).
fn clean_entry_path(raw: &str) -> Result<String> {
    if raw.starts_with('/') {
        return Err(Error::invalid(format!(
            "archive entry {raw:?} has an absolute path; refusing the archive"
        )));
    }
    let mut parts = Vec::new();
    for c in raw.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                return Err(Error::invalid(format!(
                    "archive entry {raw:?} has a '..' path component; refusing the archive"
                )));
            }
            c => parts.push(c),
        }
    }
    Ok(parts.join("/"))
}

/// A path named inside a JSON document of the archive, in normal form.
fn clean_ref_path(doc: &str, raw: &str) -> Result<String> {
    clean_entry_path(raw).map_err(|_| {
        Error::invalid(format!(
            "{doc} names {raw:?}, which is not a path inside the archive"
        ))
    })
}

/// Resolves a link target against `base` (a directory inside the archive);
/// `None` when it leaves the archive.
fn resolve_link(base: &str, target: &str) -> Option<String> {
    if target.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = base.split('/').filter(|c| !c.is_empty()).collect();
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

/// Files of a legacy archive berth has no use for: `repositories`,
/// `<id>/json`, `<id>/VERSION`.
fn is_legacy_metadata(path: &str) -> bool {
    if path == "repositories" {
        return true;
    }
    match path.split_once('/') {
        Some((dir, name)) => {
            !dir.contains('/') && dir != "blobs" && (name == "json" || name == "VERSION")
        }
        None => false,
    }
}

/// Reads a small document with a size limit.
fn read_doc(entry: &mut impl Read, name: &str, limit: u64) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    entry
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| Error::invalid(format!("reading archive entry {name:?}: {e}")))?;
    if out.len() as u64 > limit {
        return Err(Error::invalid(format!(
            "archive entry {name:?} is larger than the {limit}-byte limit for its kind"
        )));
    }
    Ok(out)
}

/// Streams one entry into the blob store, checking it against `expected`.
fn stream_to_blob(
    blobs: &BlobStore,
    entry: &mut impl Read,
    size: u64,
    expected: Option<&Digest>,
    name: &str,
    buf: &mut [u8],
) -> Result<Stored> {
    let mut w = blobs.writer()?;
    let mut head = Vec::with_capacity(HEAD_LEN);
    loop {
        let n = match entry.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(Error::invalid(format!(
                    "reading archive entry {name:?}: {e}"
                )));
            }
        };
        if head.len() < HEAD_LEN {
            head.extend_from_slice(&buf[..n.min(HEAD_LEN - head.len())]);
        }
        w.write_all(&buf[..n]).ctx("writing blob")?;
    }
    let digest = w
        .commit(expected, Some(size))
        .map_err(|e| e.context(format!("archive entry {name}")))?;
    Ok(Stored { digest, size, head })
}

/// One image to commit.
#[derive(Debug)]
struct Planned {
    manifest: Digest,
    tags: Vec<Reference>,
}

/// Adds an image to the plan, merging tags of a manifest planned twice.
fn add_planned(plan: &mut Vec<Planned>, manifest: Digest, tags: Vec<Reference>) {
    match plan.iter_mut().find(|p| p.manifest == manifest) {
        Some(p) => {
            for t in tags {
                if !p.tags.contains(&t) {
                    p.tags.push(t);
                }
            }
        }
        None => plan.push(Planned { manifest, tags }),
    }
}

/// Reads a manifest or index blob named by a descriptor of the archive.
fn read_listed(images: &Images, desc: &Descriptor, listed_in: &str) -> Result<Vec<u8>> {
    let bytes = images
        .blobs()
        .read_limited(&desc.digest, manifest::MAX_MANIFEST_SIZE)
        .map_err(|e| match e.kind() {
            ErrorKind::NotFound => Error::invalid(format!(
                "{listed_in} lists {} {}, which the archive does not contain",
                if media::is_index(&desc.media_type) {
                    "index"
                } else {
                    "manifest"
                },
                desc.digest
            )),
            _ => e,
        })?;
    if desc.size >= 0 && bytes.len() as u64 != desc.size as u64 {
        return Err(Error::invalid(format!(
            "{listed_in} says {} is {} bytes, but the archive's blob is {}",
            desc.digest,
            desc.size,
            bytes.len()
        )));
    }
    Ok(bytes)
}

fn check_oci_layout(scan: &Scan) -> Result<()> {
    let Some(doc) = &scan.oci_layout else {
        return Ok(());
    };
    let layout: OciLayout = serde_json::from_slice(doc).map_err(|e| {
        Error::invalid(format!("the archive's {OCI_LAYOUT_FILE} is malformed: {e}"))
    })?;
    if !layout.image_layout_version.starts_with("1.") {
        return Err(Error::invalid(format!(
            "unsupported OCI image layout version {:?}; berth reads version 1",
            layout.image_layout_version
        )));
    }
    Ok(())
}

/// The name an index entry gives its image, if any. A bare tag in
/// `org.opencontainers.image.ref.name` names no repository, so no image.
fn name_from_annotations(desc: &Descriptor) -> Result<Option<Reference>> {
    if let Some(name) = desc.annotations.get(ANNOTATION_IMAGE_NAME) {
        let r = Reference::parse(name).map_err(|e| {
            Error::invalid(format!(
                "{INDEX_FILE} names an image {name:?}, which is not a valid reference: {e}"
            ))
        })?;
        return Ok((r.digest().is_none()).then(|| r.with_default_tag()));
    }
    if let Some(name) = desc.annotations.get(ANNOTATION_REF_NAME)
        && (name.contains('/') || name.contains(':'))
    {
        match Reference::parse(name) {
            Ok(r) if r.digest().is_none() => return Ok(Some(r.with_default_tag())),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(name = %name, error = %e, "ignoring an unusable image name in index.json");
            }
        }
    }
    Ok(None)
}

/// Picks the manifest of a multi-platform index to load, by the rule
/// registries also use ([`manifest::choose_platform`]) among the images the
/// archive holds.
fn pick_platform<'a>(images: &Images, index: &'a Index, digest: &Digest) -> Result<&'a Descriptor> {
    let images_listed: Vec<&Descriptor> = index
        .manifests
        .iter()
        .filter(|d| !d.is_attestation())
        .collect();
    let present: Vec<&Descriptor> = images_listed
        .iter()
        .copied()
        .filter(|d| images.blobs().contains(&d.digest))
        .collect();
    if let Some(d) = manifest::choose_platform(&present, None) {
        return Ok(d);
    }
    if present.is_empty() {
        return Err(Error::invalid(format!(
            "the archive holds none of the images of index {digest} (platforms: {})",
            manifest::platform_names(&images_listed)
        )));
    }
    Err(Error::invalid(format!(
        "index {digest} has no image for this host (linux/{}) and berth cannot choose among \
         its platforms: {}",
        manifest::host_arch(),
        manifest::platform_names(&present)
    )))
}

/// Follows a descriptor of the archive down to one image manifest, choosing
/// a platform at each index.
fn image_manifest_of(
    images: &Images,
    desc: &Descriptor,
    listed_in: &str,
    depth: usize,
) -> Result<Digest> {
    let bytes = read_listed(images, desc, listed_in)?;
    let declared = [(
        format!("the descriptor in {listed_in}"),
        desc.media_type.as_str(),
    )];
    let declared: Vec<(&str, &str)> = declared.iter().map(|(b, m)| (b.as_str(), *m)).collect();
    if manifest::classify(&bytes, &desc.digest, &declared)? == DocKind::Index {
        if depth >= MAX_INDEX_DEPTH {
            return Err(Error::invalid(format!(
                "indexes in the archive nest more than {MAX_INDEX_DEPTH} deep"
            )));
        }
        let index =
            Index::parse(&bytes).map_err(|e| e.context(format!("index {}", desc.digest)))?;
        let child = pick_platform(images, &index, &desc.digest)?;
        return image_manifest_of(images, child, &format!("index {}", desc.digest), depth + 1);
    }
    Manifest::parse(&bytes).map_err(|e| e.context(format!("manifest {}", desc.digest)))?;
    Ok(desc.digest.clone())
}

/// Plans the images of an OCI image layout from its `index.json`.
fn plan_oci(images: &Images, scan: &Scan, doc: &[u8]) -> Result<Vec<Planned>> {
    check_oci_layout(scan)?;
    let index = Index::parse(doc).map_err(|e| e.context(format!("the archive's {INDEX_FILE}")))?;
    if index.manifests.is_empty() {
        return Err(Error::invalid(format!(
            "the archive's {INDEX_FILE} lists no images"
        )));
    }
    let mut plan = Vec::new();
    for desc in &index.manifests {
        let tags = name_from_annotations(desc)?.into_iter().collect();
        let md = image_manifest_of(images, desc, INDEX_FILE, 0)?;
        add_planned(&mut plan, md, tags);
    }
    Ok(plan)
}

/// Every image manifest reachable from `index.json` whose blob the archive
/// holds, with the names the index gives it. Descriptors of blobs the
/// archive lacks are skipped; an ambiguous document refuses the archive.
fn index_candidates(
    images: &Images,
    doc: &[u8],
) -> Result<Vec<(Digest, Manifest, Vec<Reference>)>> {
    let index = Index::parse(doc).map_err(|e| e.context(format!("the archive's {INDEX_FILE}")))?;
    let mut out = Vec::new();
    // (descriptor, where it is listed, names, depth)
    let mut stack: Vec<(Descriptor, String, Vec<Reference>, usize)> = index
        .manifests
        .iter()
        .rev()
        .map(|d| {
            let names = name_from_annotations(d)
                .ok()
                .flatten()
                .into_iter()
                .collect();
            (d.clone(), INDEX_FILE.to_string(), names, 0)
        })
        .collect();
    while let Some((desc, listed_in, names, depth)) = stack.pop() {
        let Ok(bytes) = images
            .blobs()
            .read_limited(&desc.digest, manifest::MAX_MANIFEST_SIZE)
        else {
            continue;
        };
        let by = format!("the descriptor in {listed_in}");
        match manifest::classify(&bytes, &desc.digest, &[(&by, &desc.media_type)])? {
            DocKind::Index => {
                if depth < MAX_INDEX_DEPTH {
                    let child = Index::parse(&bytes)
                        .map_err(|e| e.context(format!("index {}", desc.digest)))?;
                    for d in child.manifests.into_iter().rev() {
                        stack.push((
                            d,
                            format!("index {}", desc.digest),
                            names.clone(),
                            depth + 1,
                        ));
                    }
                }
            }
            DocKind::Manifest => {
                let m = Manifest::parse(&bytes)
                    .map_err(|e| e.context(format!("manifest {}", desc.digest)))?;
                out.push((desc.digest, m, names));
            }
        }
    }
    Ok(out)
}

/// Plans the images of a Docker archive from its `manifest.json`, using the
/// manifests of `index.json` where one describes the same image.
fn plan_docker(images: &Images, scan: &Scan, doc: &[u8]) -> Result<Vec<Planned>> {
    let entries: Vec<DockerManifestEntry> = serde_json::from_slice(doc)
        .map_err(|e| Error::invalid(format!("the archive's {MANIFEST_FILE} is malformed: {e}")))?;
    if entries.is_empty() {
        return Err(Error::invalid(format!(
            "the archive's {MANIFEST_FILE} lists no images"
        )));
    }
    let candidates = match &scan.index_json {
        Some(index) => index_candidates(images, index)?,
        None => Vec::new(),
    };
    let mut plan = Vec::new();
    for entry in &entries {
        let find = |raw: &str, what: &str| -> Result<&Stored> {
            let path = clean_ref_path(MANIFEST_FILE, raw)?;
            scan.lookup(&path).ok_or_else(|| {
                Error::invalid(format!(
                    "{MANIFEST_FILE} names {what} {raw:?}, which is not in the archive"
                ))
            })
        };
        let config = find(&entry.config, "the config")?;
        let layers = entry
            .layers
            .iter()
            .map(|l| find(l, "the layer"))
            .collect::<Result<Vec<_>>>()?;
        let mut tags = Vec::new();
        for t in entry.repo_tags.iter().flatten() {
            let r =
                Reference::parse(t).map_err(|e| e.context(format!("{MANIFEST_FILE} tag {t:?}")))?;
            if r.digest().is_some() {
                return Err(Error::invalid(format!(
                    "{MANIFEST_FILE} gives the tag {t:?}, which is a digest reference"
                )));
            }
            tags.push(r.with_default_tag());
        }

        let matching = candidates.iter().find(|(_, m, _)| {
            m.config.digest == config.digest
                && m.layers.len() == layers.len()
                && m.layers
                    .iter()
                    .zip(&layers)
                    .all(|(l, s)| l.digest == s.digest)
        });
        let md = match matching {
            Some((md, _, names)) => {
                if tags.is_empty() {
                    tags = names.clone();
                }
                md.clone()
            }
            None => synthesize(images, config, &layers)?,
        };
        add_planned(&mut plan, md, tags);
    }
    Ok(plan)
}

/// Builds and stores a manifest for an image known only by its config and
/// layer files: Docker schema 2, or an OCI Wasm artifact when the layers are
/// Wasm modules.
fn synthesize(images: &Images, config: &Stored, layers: &[&Stored]) -> Result<Digest> {
    let wasm = layers.iter().any(|l| l.head.starts_with(b"\0asm"));
    let layer_descs = layers
        .iter()
        .map(|l| {
            let mt = if l.head.starts_with(b"\0asm") {
                media::WASM_LAYER
            } else if l.head.starts_with(&[0x1f, 0x8b]) {
                if wasm {
                    media::OCI_LAYER_GZIP
                } else {
                    media::DOCKER_LAYER_GZIP
                }
            } else if l.head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
                media::OCI_LAYER_ZSTD
            } else if wasm {
                media::OCI_LAYER
            } else {
                media::DOCKER_LAYER
            };
            Descriptor::new(mt, l.digest.clone(), l.size)
        })
        .collect();
    let m = if wasm {
        Manifest {
            schema_version: 2,
            media_type: Some(media::OCI_MANIFEST.into()),
            artifact_type: Some(media::WASM_CONFIG.into()),
            config: Descriptor::new(media::WASM_CONFIG, config.digest.clone(), config.size),
            layers: layer_descs,
            annotations: BTreeMap::new(),
            subject: None,
        }
    } else {
        Manifest {
            schema_version: 2,
            media_type: Some(media::DOCKER_MANIFEST.into()),
            artifact_type: None,
            config: Descriptor::new(media::DOCKER_CONFIG, config.digest.clone(), config.size),
            layers: layer_descs,
            annotations: BTreeMap::new(),
            subject: None,
        }
    };
    let bytes = serde_json::to_vec(&m).ctx("encoding manifest")?;
    images.blobs().put(&bytes, None)
}

/// Checks that a planned image's manifest, config and layers are all in the
/// store, whole, before anything is committed.
fn verify(images: &Images, p: &Planned) -> Result<()> {
    let blobs = images.blobs();
    let missing = |what: &str, d: &Digest| {
        Error::invalid(format!(
            "{what} {d} of image manifest {} is not in the archive",
            p.manifest
        ))
    };
    let bytes = blobs.read_limited(&p.manifest, manifest::MAX_MANIFEST_SIZE)?;
    let m = Manifest::parse(&bytes).map_err(|e| e.context(format!("manifest {}", p.manifest)))?;
    let cfg = blobs
        .read_limited(&m.config.digest, manifest::MAX_CONFIG_SIZE)
        .map_err(|e| match e.kind() {
            ErrorKind::NotFound => missing("config", &m.config.digest),
            _ => e,
        })?;
    ImageConfigFile::parse(&cfg).map_err(|e| e.context(format!("config {}", m.config.digest)))?;
    for l in &m.layers {
        let have = blobs
            .size(&l.digest)
            .ok_or_else(|| missing("layer", &l.digest))?;
        if l.size >= 0 && have != l.size as u64 {
            return Err(Error::invalid(format!(
                "layer {} is {have} bytes in the archive but manifest {} says {}",
                l.digest, p.manifest, l.size
            )));
        }
    }
    Ok(())
}

/// Unpacks the layers of a planned image when it is a native one.
fn unpack_native(images: &Images, store: &LayerStore, p: &Planned) -> Result<()> {
    let blobs = images.blobs();
    let bytes = blobs.read_limited(&p.manifest, manifest::MAX_MANIFEST_SIZE)?;
    let m = Manifest::parse(&bytes).map_err(|e| e.context(format!("manifest {}", p.manifest)))?;
    let cfg = blobs.read_limited(&m.config.digest, manifest::MAX_CONFIG_SIZE)?;
    let config = ImageConfigFile::parse(&cfg)?;
    if kind::select(&m, &config) == ImageKind::Native {
        for l in &m.layers {
            // Its errors name the layer.
            store.ensure(blobs, l)?;
        }
    }
    Ok(())
}

fn image_id(images: &Images, manifest_digest: &Digest) -> Result<Digest> {
    let bytes = images
        .blobs()
        .read_limited(manifest_digest, manifest::MAX_MANIFEST_SIZE)?;
    Ok(Manifest::parse(&bytes)?.config.digest)
}

// ---------------------------------------------------------------------------
// save

/// One image to save, with the tags it is saved under.
struct Selected {
    record: ImageRecord,
    manifest: Manifest,
    tags: BTreeSet<String>,
}

/// Writes a tarball holding the named images (references or IDs) that both
/// `docker load` and OCI tools read: an OCI image layout (`oci-layout`,
/// `index.json`, `blobs/sha256/...`) plus Docker's `manifest.json`, as
/// Docker 25+ `docker save` does. An image named by reference is saved with
/// that tag; one named by ID, without tags. The same images give the same
/// bytes every time.
pub fn save(images: &Images, names: &[String], out: impl Write) -> Result<()> {
    if names.is_empty() {
        return Err(Error::invalid("no images to save: name at least one image"));
    }
    let mut selected: Vec<Selected> = Vec::new();
    for name in names {
        let record = images.resolve(name)?;
        let tag = tag_named(images, name, &record);
        let i = match selected.iter().position(|s| s.record.id == record.id) {
            Some(i) => i,
            None => {
                let manifest = images.handle(&record)?.manifest;
                selected.push(Selected {
                    record,
                    manifest,
                    tags: BTreeSet::new(),
                });
                selected.len() - 1
            }
        };
        selected[i].tags.extend(tag);
    }

    // Every blob once, checked present before a byte is written.
    let blobs = images.blobs();
    let mut wanted: BTreeSet<Digest> = BTreeSet::new();
    for s in &selected {
        wanted.insert(s.record.manifest.digest.clone());
        wanted.insert(s.manifest.config.digest.clone());
        wanted.extend(s.manifest.layers.iter().map(|l| l.digest.clone()));
    }
    for d in &wanted {
        if !blobs.contains(d) {
            return Err(Error::internal(format!(
                "blob {d} of an image being saved is missing from the content store"
            )));
        }
    }

    let mut index = Index {
        schema_version: 2,
        media_type: Some(media::OCI_INDEX.into()),
        manifests: Vec::new(),
        annotations: BTreeMap::new(),
    };
    let mut docker = Vec::new();
    for s in &selected {
        let base = Descriptor::new(
            &s.record.manifest.media_type,
            s.record.manifest.digest.clone(),
            s.record.manifest.size.max(0) as u64,
        );
        if s.tags.is_empty() {
            index.manifests.push(base.clone());
        }
        for t in &s.tags {
            let r = Reference::parse(t)?;
            let tag = r.tag().unwrap_or(super::reference::DEFAULT_TAG);
            let mut d = base.clone();
            d.annotations.insert(
                ANNOTATION_IMAGE_NAME.into(),
                format!("{}:{tag}", r.full_name()),
            );
            d.annotations
                .insert(ANNOTATION_REF_NAME.into(), tag.to_string());
            index.manifests.push(d);
        }
        docker.push(DockerManifestEntry {
            config: blob_path(&s.manifest.config.digest),
            repo_tags: Some(s.tags.iter().cloned().collect()),
            layers: s
                .manifest
                .layers
                .iter()
                .map(|l| blob_path(&l.digest))
                .collect(),
        });
    }
    let index_json = serde_json::to_vec(&index).ctx("encoding index.json")?;
    let manifest_json = serde_json::to_vec(&docker).ctx("encoding manifest.json")?;
    let layout_json = serde_json::to_vec(&OciLayout {
        image_layout_version: OCI_LAYOUT_VERSION.into(),
    })
    .ctx("encoding oci-layout")?;

    let werr = |e: io::Error| Error::internal(format!("writing the archive: {e}"));
    let mut tar = tar::Builder::new(out);
    append_dir(&mut tar, "blobs/").map_err(werr)?;
    append_dir(&mut tar, BLOB_DIR).map_err(werr)?;
    for d in &wanted {
        let file = blobs.open_read(d)?;
        let size = file.metadata().ctx(format!("reading blob {d}"))?.len();
        let mut h = file_header(size);
        tar.append_data(&mut h, blob_path(d), file.take(size))
            .map_err(werr)?;
    }
    for (name, bytes) in [
        (INDEX_FILE, &index_json),
        (MANIFEST_FILE, &manifest_json),
        (OCI_LAYOUT_FILE, &layout_json),
    ] {
        let mut h = file_header(bytes.len() as u64);
        tar.append_data(&mut h, name, bytes.as_slice())
            .map_err(werr)?;
    }
    let mut out = tar.into_inner().map_err(werr)?;
    out.flush().map_err(werr)?;
    Ok(())
}

/// The tag `name` names, when it names `record` by one (not by ID).
fn tag_named(images: &Images, name: &str, record: &ImageRecord) -> Option<String> {
    if name.parse::<Digest>().is_ok() {
        return None;
    }
    let r = Reference::parse(name).ok()?.with_default_tag();
    if r.digest().is_some() {
        return None;
    }
    let t = r.to_string();
    images.tags_of(&record.id).contains(&t).then_some(t)
}

fn blob_path(d: &Digest) -> String {
    format!("{BLOB_DIR}{}", d.hex())
}

fn base_header(kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h
}

fn file_header(size: u64) -> tar::Header {
    base_header(tar::EntryType::Regular, size, 0o644)
}

fn append_dir<W: Write>(tar: &mut tar::Builder<W>, path: &str) -> io::Result<()> {
    let mut h = base_header(tar::EntryType::Directory, 0, 0o755);
    tar.append_data(&mut h, path, io::empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::manifest::host_arch;
    use crate::image::tests::{fixture, put_wasm};
    use crate::image::{ExecutorKind, ImageKind};

    /// A tar built entry by entry, with raw names so that bad ones can be
    /// written too.
    struct TarBuf(tar::Builder<Vec<u8>>);

    impl TarBuf {
        fn new() -> TarBuf {
            TarBuf(tar::Builder::new(Vec::new()))
        }
        fn raw_header(name: &str, kind: tar::EntryType, size: u64) -> tar::Header {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_size(size);
            h.set_mode(0o644);
            let field = &mut h.as_old_mut().name;
            field.fill(0);
            field[..name.len()].copy_from_slice(name.as_bytes());
            h.set_cksum();
            h
        }
        fn file(mut self, name: &str, data: &[u8]) -> TarBuf {
            let h = Self::raw_header(name, tar::EntryType::Regular, data.len() as u64);
            self.0.append(&h, data).unwrap();
            self
        }
        fn json(self, name: &str, v: &serde_json::Value) -> TarBuf {
            self.file(name, &serde_json::to_vec(v).unwrap())
        }
        fn blob(self, data: &[u8]) -> TarBuf {
            let name = blob_path(&Digest::of(data));
            self.file(&name, data)
        }
        fn symlink(mut self, name: &str, target: &str) -> TarBuf {
            let mut h = Self::raw_header(name, tar::EntryType::Symlink, 0);
            h.set_link_name(target).unwrap();
            h.set_cksum();
            self.0.append(&h, io::empty()).unwrap();
            self
        }
        fn finish(self) -> Vec<u8> {
            self.0.into_inner().unwrap()
        }
    }

    fn layer_tar(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o755);
            h.set_cksum();
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn linux_config(arch: &str, layers: &[&[u8]]) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "architecture": arch,
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| Digest::of(l).to_string()).collect::<Vec<_>>()},
        }))
        .unwrap()
    }

    fn oci_manifest(config: &[u8], config_type: &str, layers: &[(&[u8], &str)]) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media::OCI_MANIFEST,
            "config": {"mediaType": config_type, "digest": Digest::of(config), "size": config.len()},
            "layers": layers.iter().map(|(l, mt)| serde_json::json!({
                "mediaType": mt, "digest": Digest::of(l), "size": l.len()
            })).collect::<Vec<_>>(),
        }))
        .unwrap()
    }

    fn desc(bytes: &[u8], mt: &str, annotations: serde_json::Value) -> serde_json::Value {
        serde_json::json!({
            "mediaType": mt, "digest": Digest::of(bytes), "size": bytes.len(),
            "annotations": annotations,
        })
    }

    fn index(manifests: Vec<serde_json::Value>) -> serde_json::Value {
        serde_json::json!({"schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": manifests})
    }

    fn layout() -> serde_json::Value {
        serde_json::json!({"imageLayoutVersion": "1.0.0"})
    }

    fn load_bytes(images: &Images, bytes: &[u8]) -> Result<(Vec<ImageRecord>, Vec<String>)> {
        let mut lines = Vec::new();
        let recs = load(images, bytes, &mut |l| lines.push(l))?;
        Ok((recs, lines))
    }

    /// A Wasm artifact: (config, layer, manifest).
    fn wasm_image() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let module = b"\0asm\x01\0\0\0".to_vec();
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": "wasm", "os": "wasip1", "layerDigests": [Digest::of(&module).to_string()]
        }))
        .unwrap();
        let m = oci_manifest(&config, media::WASM_CONFIG, &[(&module, media::WASM_LAYER)]);
        (config, module, m)
    }

    #[test]
    fn loads_oci_layout_with_tagged_image() {
        let (_d, images) = fixture();
        let (config, module, m) = wasm_image();
        let tar = TarBuf::new()
            .json(INDEX_FILE, &index(vec![desc(
                &m,
                media::OCI_MANIFEST,
                serde_json::json!({ANNOTATION_IMAGE_NAME: "docker.io/library/hello:v1", ANNOTATION_REF_NAME: "v1"}),
            )]))
            .blob(&module)
            .blob(&m)
            .blob(&config)
            .json(OCI_LAYOUT_FILE, &layout())
            .finish();
        let (recs, lines) = load_bytes(&images, &tar).unwrap();
        assert_eq!(recs.len(), 1);
        assert_eq!(lines, vec!["Loaded image: hello:v1".to_string()]);
        let rec = images.resolve("hello:v1").unwrap();
        assert_eq!(rec.id, Digest::of(&config));
        assert_eq!(rec.manifest.digest, Digest::of(&m));
        assert_eq!(rec.kind.executor(), ExecutorKind::Wasm);
    }

    #[test]
    fn bare_ref_name_loads_by_id_and_full_ref_name_tags() {
        let (_d, images) = fixture();
        let (config, module, m) = wasm_image();
        let tar = TarBuf::new()
            .json(OCI_LAYOUT_FILE, &layout())
            .json(
                INDEX_FILE,
                &index(vec![desc(
                    &m,
                    media::OCI_MANIFEST,
                    serde_json::json!({ANNOTATION_REF_NAME: "latest"}),
                )]),
            )
            .blob(&config)
            .blob(&module)
            .blob(&m)
            .finish();
        let (recs, lines) = load_bytes(&images, &tar).unwrap();
        assert_eq!(lines, vec![format!("Loaded image ID: {}", recs[0].id)]);
        assert!(images.tags_of(&recs[0].id).is_empty());

        let (_d, images) = fixture();
        let tar = TarBuf::new()
            .json(
                INDEX_FILE,
                &index(vec![desc(
                    &m,
                    media::OCI_MANIFEST,
                    serde_json::json!({ANNOTATION_REF_NAME: "localhost:5000/app:2"}),
                )]),
            )
            .blob(&config)
            .blob(&module)
            .blob(&m)
            .finish();
        load_bytes(&images, &tar).unwrap();
        assert!(images.resolve("localhost:5000/app:2").is_ok());
    }

    #[test]
    fn loads_legacy_docker_archive_with_symlinked_layer() {
        let (_d, images) = fixture();
        let base = layer_tar(&[("bin/hello", b"#!hello")]);
        let top = gzip(&layer_tar(&[("etc/motd", b"hi")]));
        let cfg_a = linux_config("amd64", &[&base]);
        let cfg_b = linux_config("arm64", &[&base, &top]);
        let cfg_a_name = format!("{}.json", Digest::of(&cfg_a).hex());
        let cfg_b_name = format!("{}.json", Digest::of(&cfg_b).hex());
        let manifest = serde_json::json!([
            {"Config": cfg_a_name, "RepoTags": ["a:1"], "Layers": ["l1/layer.tar"]},
            {"Config": cfg_b_name, "RepoTags": ["team/b:1", "b"], "Layers": ["./l2/layer.tar", "l3/layer.tar"]},
        ]);
        // The link comes before its target.
        let tar = TarBuf::new()
            .symlink("l2/layer.tar", "../l1/layer.tar")
            .file("l2/VERSION", b"1.0")
            .file("l2/json", b"{}")
            .file("l1/layer.tar", &base)
            .file("l1/json", b"{}")
            .file("l3/layer.tar", &top)
            .file(&cfg_a_name, &cfg_a)
            .file(&cfg_b_name, &cfg_b)
            .json(MANIFEST_FILE, &manifest)
            .json("repositories", &serde_json::json!({"a": {"1": "l1"}}))
            .finish();
        let (recs, lines) = load_bytes(&images, &tar).unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(
            lines,
            vec![
                "Loaded image: a:1",
                "Loaded image: team/b:1",
                "Loaded image: b:latest"
            ]
        );
        let a = images.resolve("a:1").unwrap();
        let b = images.resolve("b").unwrap();
        assert_eq!(images.resolve("team/b:1").unwrap().id, b.id);
        assert_eq!(a.id, Digest::of(&cfg_a));
        assert_eq!(a.kind, ImageKind::Native);
        assert_eq!(a.manifest.media_type, media::DOCKER_MANIFEST);
        let hb = images.handle(&b).unwrap();
        assert_eq!(hb.manifest.layers[0].digest, Digest::of(&base));
        assert_eq!(hb.manifest.layers[0].media_type, media::DOCKER_LAYER);
        assert_eq!(hb.manifest.layers[1].media_type, media::DOCKER_LAYER_GZIP);
        assert_eq!(hb.manifest.config.media_type, media::DOCKER_CONFIG);
        // Loading again moves nothing and changes no IDs.
        let (again, _) = load_bytes(&images, &tar).unwrap();
        assert_eq!(again[1].manifest.digest, b.manifest.digest);
        assert_eq!(images.count(), 2);
    }

    #[test]
    fn v25_archive_keeps_the_saved_manifest_digest() {
        let (_d, images) = fixture();
        let layer = layer_tar(&[("hello", b"hi")]);
        let config = linux_config("amd64", &[&layer]);
        // Pretty-printed, so a synthesized manifest would differ.
        let m = serde_json::to_vec_pretty(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media::DOCKER_MANIFEST,
            "config": {"mediaType": media::DOCKER_CONFIG, "digest": Digest::of(&config), "size": config.len()},
            "layers": [{"mediaType": media::DOCKER_LAYER, "digest": Digest::of(&layer), "size": layer.len()}],
        }))
        .unwrap();
        let tar = TarBuf::new()
            .blob(&layer)
            .blob(&config)
            .blob(&m)
            .json(INDEX_FILE, &index(vec![desc(
                &m,
                media::DOCKER_MANIFEST,
                serde_json::json!({ANNOTATION_IMAGE_NAME: "docker.io/library/hello:latest", ANNOTATION_REF_NAME: "latest"}),
            )]))
            .json(MANIFEST_FILE, &serde_json::json!([{
                "Config": blob_path(&Digest::of(&config)),
                "RepoTags": ["hello:latest"],
                "Layers": [blob_path(&Digest::of(&layer))],
            }]))
            .json(OCI_LAYOUT_FILE, &layout())
            .finish();
        let (recs, lines) = load_bytes(&images, &tar).unwrap();
        assert_eq!(lines, vec!["Loaded image: hello:latest"]);
        assert_eq!(recs[0].manifest.digest, Digest::of(&m));
        assert_eq!(
            images.resolve("hello").unwrap().manifest.digest,
            Digest::of(&m)
        );
    }

    #[test]
    fn corrupt_blob_fails_and_commits_nothing() {
        let (_d, images) = fixture();
        let existing = put_wasm(&images, b"\0asm\x01\0\0\0", "keep:1");
        let (config, module, m) = wasm_image();
        let mut tar = TarBuf::new()
            .json(OCI_LAYOUT_FILE, &layout())
            .json(
                INDEX_FILE,
                &index(vec![desc(
                    &m,
                    media::OCI_MANIFEST,
                    serde_json::json!({ANNOTATION_IMAGE_NAME: "keep:1"}),
                )]),
            )
            .blob(&config)
            .blob(&m);
        let bad_name = blob_path(&Digest::of(&module));
        tar = tar.file(&bad_name, b"\0asm\x01\0\0\0 tampered");
        let err = load_bytes(&images, &tar.finish()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert!(err.to_string().contains(&bad_name), "{err}");
        assert!(err.to_string().contains("does not match"), "{err}");
        assert_eq!(images.count(), 1);
        assert_eq!(images.resolve("keep:1").unwrap().id, existing.id);
    }

    #[test]
    fn missing_blob_is_named() {
        let (_d, images) = fixture();
        let (config, module, m) = wasm_image();
        let tar = TarBuf::new()
            .json(
                INDEX_FILE,
                &index(vec![desc(&m, media::OCI_MANIFEST, serde_json::json!({}))]),
            )
            .blob(&config)
            .blob(&m)
            .finish();
        let err = load_bytes(&images, &tar).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert!(
            err.to_string().contains(&Digest::of(&module).to_string()),
            "{err}"
        );
        assert_eq!(images.count(), 0);

        let tar = TarBuf::new()
            .json(
                INDEX_FILE,
                &index(vec![desc(&m, media::OCI_MANIFEST, serde_json::json!({}))]),
            )
            .finish();
        let err = load_bytes(&images, &tar).unwrap_err();
        assert!(
            err.to_string().contains(&Digest::of(&m).to_string()),
            "{err}"
        );
    }

    #[test]
    fn save_then_load_round_trips_and_is_deterministic() {
        let (_d, images) = fixture();
        let wasm = put_wasm(&images, b"\0asm\x01\0\0\0", "hello:1");
        images
            .tag("hello:1", &Reference::parse("other:2").unwrap())
            .unwrap();
        // A native image too, loaded from a legacy archive.
        let layer = layer_tar(&[("x", b"y")]);
        let cfg = linux_config("amd64", &[&layer]);
        let cfg_name = format!("{}.json", Digest::of(&cfg).hex());
        let legacy = TarBuf::new()
            .file("l/layer.tar", &layer)
            .file(&cfg_name, &cfg)
            .json(
                MANIFEST_FILE,
                &serde_json::json!([{"Config": cfg_name, "Layers": ["l/layer.tar"]}]),
            )
            .finish();
        let native = load_bytes(&images, &legacy).unwrap().0.remove(0);

        let names = vec!["hello:1".to_string(), native.id.to_string()];
        let mut first = Vec::new();
        save(&images, &names, &mut first).unwrap();
        let mut second = Vec::new();
        save(&images, &names, &mut second).unwrap();
        assert_eq!(first, second, "saving twice gives the same bytes");

        // The tar is an OCI layout plus Docker's manifest.json.
        let mut paths = Vec::new();
        let mut ar = tar::Archive::new(first.as_slice());
        for e in ar.entries().unwrap() {
            let e = e.unwrap();
            assert_eq!(e.header().mtime().unwrap(), 0);
            assert_eq!(e.header().uid().unwrap(), 0);
            paths.push(e.path().unwrap().to_string_lossy().into_owned());
        }
        for p in [OCI_LAYOUT_FILE, INDEX_FILE, MANIFEST_FILE] {
            assert!(paths.contains(&p.to_string()), "{paths:?}");
        }
        assert!(paths.contains(&blob_path(&wasm.manifest.digest)));

        let (_d2, fresh) = fixture();
        let (recs, lines) = load_bytes(&fresh, &first).unwrap();
        assert_eq!(
            lines,
            vec![
                "Loaded image: hello:1".to_string(),
                format!("Loaded image ID: {}", native.id)
            ]
        );
        assert_eq!(recs[0].id, wasm.id);
        assert_eq!(recs[0].manifest.digest, wasm.manifest.digest);
        assert_eq!(recs[1].id, native.id);
        assert_eq!(recs[1].manifest.digest, native.manifest.digest);
        assert_eq!(
            fresh.tags_of(&wasm.id),
            vec!["hello:1".to_string()],
            "only the named tag"
        );
        assert!(matches!(
            fresh.resolve("hello:1").unwrap().kind,
            ImageKind::Wasm { .. }
        ));

        // OCI tools read index.json alone: drop manifest.json and load again.
        let mut oci_only = TarBuf::new();
        let mut ar = tar::Archive::new(first.as_slice());
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let p = e.path().unwrap().to_string_lossy().into_owned();
            if p == MANIFEST_FILE || p.ends_with('/') {
                continue;
            }
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            oci_only = oci_only.file(&p, &data);
        }
        let (_d3, third) = fixture();
        let (recs, _) = load_bytes(&third, &oci_only.finish()).unwrap();
        assert_eq!(recs[0].manifest.digest, wasm.manifest.digest);
        assert_eq!(third.resolve("hello:1").unwrap().id, wasm.id);
        assert_eq!(recs[1].id, native.id);
    }

    #[test]
    fn save_refuses_unknown_and_empty() {
        let (_d, images) = fixture();
        let err = save(&images, &["nope".to_string()], io::sink()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert!(save(&images, &[], io::sink()).is_err());
    }

    #[test]
    fn gzip_compressed_archive_loads() {
        let (_d, images) = fixture();
        put_wasm(&images, b"\0asm\x01\0\0\0", "hello");
        let mut saved = Vec::new();
        save(&images, &["hello".to_string()], &mut saved).unwrap();
        let (_d2, fresh) = fixture();
        load_bytes(&fresh, &gzip(&saved)).unwrap();
        assert!(fresh.resolve("hello").is_ok());
    }

    #[test]
    fn garbage_and_foreign_tars_are_refused_clearly() {
        let (_d, images) = fixture();
        let err = load_bytes(&images, b"").unwrap_err();
        assert!(err.to_string().contains("empty"), "{err}");
        let err = load_bytes(&images, b"this is not a tar archive").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert!(err.to_string().contains("not a tar archive"), "{err}");
        let err = load_bytes(&images, &[b'x'; 4096]).unwrap_err();
        assert!(err.to_string().contains("not a tar archive"), "{err}");
        let tar = TarBuf::new().file("hello.txt", b"hi").finish();
        let err = load_bytes(&images, &tar).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert!(
            err.to_string()
                .contains("neither a docker save archive nor an OCI image layout"),
            "{err}"
        );
        let err = load_bytes(&images, &[0u8; 1024]).unwrap_err();
        assert!(err.to_string().contains("neither"), "{err}");
        let tar = TarBuf::new().file(MANIFEST_FILE, b"{not json").finish();
        let err = load_bytes(&images, &tar).unwrap_err();
        assert!(
            err.to_string().contains("manifest.json is malformed"),
            "{err}"
        );
        assert_eq!(images.count(), 0);
    }

    #[test]
    fn escaping_entry_names_are_refused() {
        let (_d, images) = fixture();
        for name in ["../evil", "blobs/../../evil", "/etc/passwd"] {
            let tar = TarBuf::new().file(name, b"x").finish();
            let err = load_bytes(&images, &tar).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidArgument);
            assert!(err.to_string().contains("refusing"), "{name}: {err}");
        }
        let tar = TarBuf::new()
            .symlink("l/layer.tar", "../../etc/shadow")
            .finish();
        let err = load_bytes(&images, &tar).unwrap_err();
        assert!(err.to_string().contains("outside the archive"), "{err}");
        let tar = TarBuf::new()
            .file("l/layer.tar", b"x")
            .json(
                MANIFEST_FILE,
                &serde_json::json!([{"Config": "../c.json", "Layers": ["l/layer.tar"]}]),
            )
            .finish();
        let err = load_bytes(&images, &tar).unwrap_err();
        assert!(
            err.to_string().contains("not a path inside the archive"),
            "{err}"
        );
    }

    /// A two-platform index: the host's platform and another.
    fn multi_platform(platforms: &[(&str, &str)]) -> (Vec<u8>, Vec<Vec<u8>>) {
        let mut tar = TarBuf::new().json(OCI_LAYOUT_FILE, &layout());
        let mut descs = Vec::new();
        let mut configs = Vec::new();
        for (os, arch) in platforms {
            let layer = layer_tar(&[("arch", arch.as_bytes())]);
            let config =
                serde_json::to_vec(&serde_json::json!({"architecture": arch, "os": os})).unwrap();
            let m = oci_manifest(&config, media::OCI_CONFIG, &[(&layer, media::OCI_LAYER)]);
            let mut d = desc(&m, media::OCI_MANIFEST, serde_json::json!({}));
            d["platform"] = serde_json::json!({"os": os, "architecture": arch});
            descs.push(d);
            tar = tar.blob(&layer).blob(&config).blob(&m);
            configs.push(config);
        }
        // An attestation, as buildx adds.
        let att =
            serde_json::to_vec(&serde_json::json!({"architecture": "unknown", "os": "unknown"}))
                .unwrap();
        let att_m = oci_manifest(&att, media::OCI_CONFIG, &[]);
        let mut d = desc(
            &att_m,
            media::OCI_MANIFEST,
            serde_json::json!({"vnd.docker.reference.type": "attestation-manifest"}),
        );
        d["platform"] = serde_json::json!({"os": "unknown", "architecture": "unknown"});
        descs.push(d);
        tar = tar.blob(&att).blob(&att_m);
        let idx = serde_json::to_vec(&index(descs)).unwrap();
        let tar = tar
            .blob(&idx)
            .json(
                INDEX_FILE,
                &index(vec![desc(
                    &idx,
                    media::OCI_INDEX,
                    serde_json::json!({ANNOTATION_IMAGE_NAME: "docker.io/library/multi:1"}),
                )]),
            )
            .finish();
        (tar, configs)
    }

    #[test]
    fn multi_platform_index_picks_the_host() {
        let other = if host_arch() == "amd64" {
            "arm64"
        } else {
            "amd64"
        };
        let (_d, images) = fixture();
        let (tar, configs) = multi_platform(&[("linux", other), ("linux", host_arch())]);
        load_bytes(&images, &tar).unwrap();
        let rec = images.resolve("multi:1").unwrap();
        assert_eq!(rec.id, Digest::of(&configs[1]));
        assert_eq!(rec.architecture, host_arch());

        // Neither the host's nor Wasm: refused, naming the platforms.
        let (_d, images) = fixture();
        let (tar, _) = multi_platform(&[("linux", "s390x"), ("linux", "riscv64")]);
        let err = load_bytes(&images, &tar).unwrap_err();
        assert!(
            err.to_string().contains("linux/s390x, linux/riscv64"),
            "{err}"
        );
        assert_eq!(images.count(), 0);

        // A Wasm platform is taken when the host's is absent.
        let (_d, images) = fixture();
        let (tar, configs) = multi_platform(&[("linux", "s390x"), ("wasip1", "wasm")]);
        load_bytes(&images, &tar).unwrap();
        assert_eq!(
            images.resolve("multi:1").unwrap().id,
            Digest::of(&configs[1])
        );
    }

    #[test]
    fn blob_paths_without_index_get_a_synthesized_manifest() {
        let (_d, images) = fixture();
        let plain = layer_tar(&[("a", b"1")]);
        let zst = zstd::encode_all(layer_tar(&[("b", b"2")]).as_slice(), 1).unwrap();
        let config = linux_config("amd64", &[&plain]);
        let archive = |tag: &str, config: &[u8]| {
            TarBuf::new()
                .blob(&plain)
                .blob(&zst)
                .blob(config)
                .json(
                    MANIFEST_FILE,
                    &serde_json::json!([{
                        "Config": blob_path(&Digest::of(config)),
                        "RepoTags": [tag],
                        "Layers": [blob_path(&Digest::of(&plain)), blob_path(&Digest::of(&zst))],
                    }]),
                )
                .finish()
        };
        let (recs, _) = load_bytes(&images, &archive("x:1", &config)).unwrap();
        let h = images.handle(&recs[0]).unwrap();
        assert_eq!(
            h.manifest.media_type.as_deref(),
            Some(media::DOCKER_MANIFEST)
        );
        assert_eq!(h.manifest.layers[0].media_type, media::DOCKER_LAYER);
        assert_eq!(h.manifest.layers[1].media_type, media::OCI_LAYER_ZSTD);

        // The same tag on another image moves, as Docker says.
        let other = linux_config("arm64", &[&plain]);
        let (recs2, lines) = load_bytes(&images, &archive("x:1", &other)).unwrap();
        assert_eq!(
            lines,
            vec![
                format!(
                    "The image x:1 already exists, renaming the old one with ID {} to empty string",
                    recs[0].id
                ),
                "Loaded image: x:1".to_string(),
            ]
        );
        assert_eq!(images.resolve("x:1").unwrap().id, recs2[0].id);
        assert!(images.tags_of(&recs[0].id).is_empty());
    }

    #[test]
    fn link_paths_resolve_inside_the_archive() {
        assert_eq!(
            resolve_link("b", "../a/layer.tar").as_deref(),
            Some("a/layer.tar")
        );
        assert_eq!(resolve_link("", "./a"), Some("a".into()));
        assert_eq!(resolve_link("b", "../../a"), None);
        assert_eq!(resolve_link("", "/a"), None);
        assert!(is_legacy_metadata("abc/json"));
        assert!(is_legacy_metadata("repositories"));
        assert!(!is_legacy_metadata("abc/layer.tar"));
    }
}
