//! Wasm images: making a CNCF Wasm OCI artifact from a module, and finding
//! the module of any Wasm image form in the content store.
//!
//! The artifact (https://tag-runtime.cncf.io/wgs/wasm/deliverables/wasm-oci-artifact/)
//! is an OCI manifest with config media type
//! `application/vnd.wasm.config.v0+json` and one `application/wasm` layer.
//! Compiling and linking a module is the Wasm executor's business, not this
//! module's.

use super::compress::Decoder;
use super::manifest::{Descriptor, Manifest, media};
use super::{ImageHandle, ImageRecord, Images, Reference, WasmForm};
use crate::error::{Error, Result, ResultExt};
use crate::util::digest::Hasher;
use crate::util::{self, Digest};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};

/// The largest module berth takes in (an upload, a module read out of an
/// image's layers); berthd sets it from `--wasm-limit module-size`, whose
/// default this is. Modules are streamed to disk, never held in memory.
static MAX_MODULE_SIZE: AtomicU64 = AtomicU64::new(256 << 20);

/// WAT text is converted to a binary in memory, so it is kept small: a
/// larger module is imported as a binary (`wat2wasm`).
pub const MAX_WAT_SIZE: u64 = 4 << 20;

pub fn set_max_module_size(bytes: u64) {
    MAX_MODULE_SIZE.store(bytes, Ordering::Relaxed);
}

pub fn max_module_size() -> u64 {
    MAX_MODULE_SIZE.load(Ordering::Relaxed)
}

pub use crate::executor::WasiTarget;

/// [`detect`] of a module blob, from its first bytes; remembered by digest
/// (a blob's content never changes), so that creating a container of an
/// image seen before reads nothing.
pub fn detect_blob(path: &std::path::Path, digest: &Digest) -> Result<WasiTarget> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static SEEN: OnceLock<Mutex<HashMap<Digest, WasiTarget>>> = OnceLock::new();
    let seen = SEEN.get_or_init(Default::default);
    if let Some(t) = seen.lock().unwrap().get(digest) {
        return Ok(*t);
    }
    let mut head = [0u8; 8];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .ctx("reading the module")?;
    let target = detect(&head[..n])?;
    let mut seen = seen.lock().unwrap();
    if seen.len() >= 4096 {
        seen.clear();
    }
    seen.insert(digest.clone(), target);
    Ok(target)
}

/// Tells a core module from a component by the preamble; anything else is
/// refused with a message that says what was found.
pub fn detect(bytes: &[u8]) -> Result<WasiTarget> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        let what = if bytes.starts_with(b"\x7fELF") {
            "an ELF executable"
        } else if bytes.is_empty() {
            "an empty file"
        } else if std::str::from_utf8(&bytes[..bytes.len().min(512)]).is_ok() {
            "text"
        } else {
            "binary data of an unknown format"
        };
        return Err(Error::invalid(format!(
            "not a WebAssembly binary (it looks like {what}); berth runs .wasm modules and components"
        )));
    }
    match [bytes[4], bytes[5], bytes[6], bytes[7]] {
        [1, 0, 0, 0] => Ok(WasiTarget::Wasip1),
        [_, _, 1, 0] => Ok(WasiTarget::Wasip2),
        [v0, v1, v2, v3] => Err(Error::invalid(format!(
            "unsupported WebAssembly binary version {:#x}",
            u32::from_le_bytes([v0, v1, v2, v3])
        ))),
    }
}

/// A module taken into the content store by [`receive`].
#[derive(Debug, Clone)]
pub struct Received {
    pub digest: Digest,
    pub size: u64,
    pub target: WasiTarget,
    /// The blob was in the store before (another image has it): a refused
    /// module must not remove it.
    pub existed: bool,
}

#[derive(Debug)]
pub enum ReceiveError {
    /// More than `limit` bytes arrived; nothing was stored.
    TooLarge {
        limit: u64,
        what: &'static str,
    },
    Failed(Error),
}

impl From<Error> for ReceiveError {
    fn from(e: Error) -> ReceiveError {
        ReceiveError::Failed(e)
    }
}

impl ReceiveError {
    /// The error as one to report (a 400 where it is not answered 413).
    pub fn into_error(self) -> Error {
        match self {
            ReceiveError::Failed(e) => e,
            too_large => Error::invalid(too_large.to_string()),
        }
    }
}

impl std::fmt::Display for ReceiveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReceiveError::TooLarge {
                limit,
                what: "WAT text",
            } => write!(
                f,
                "the WAT text is larger than {limit} bytes, the most berthd converts; convert it \
                 with `wat2wasm` and import the binary"
            ),
            ReceiveError::TooLarge { limit, what } => write!(
                f,
                "the {what} is larger than {limit} bytes, berthd's limit (an operator can raise it \
                 with `berthd --wasm-limit module-size=BYTES`)"
            ),
            ReceiveError::Failed(e) => e.fmt(f),
        }
    }
}

/// Takes a module, component or WAT text from `reader` into the content
/// store: a binary is written to a temp blob as it arrives and hashed while
/// written, and refused as soon as more than `limit` bytes came (the temp
/// blob is removed); WAT text, at most [`MAX_WAT_SIZE`], is converted first.
pub fn receive(
    images: &Images,
    reader: impl Read,
    limit: u64,
) -> std::result::Result<Received, ReceiveError> {
    take_in(images, reader, limit, true)
}

fn take_in(
    images: &Images,
    mut reader: impl Read,
    limit: u64,
    wat: bool,
) -> std::result::Result<Received, ReceiveError> {
    let mut head = [0u8; 8];
    let mut n = 0;
    while n < head.len() {
        match reader.read(&mut head[n..]).ctx("reading the module")? {
            0 => break,
            k => n += k,
        }
    }
    let head = &head[..n];
    let blobs = images.blobs();
    if !head.starts_with(b"\0asm") && !wat {
        detect(head)?;
    }
    if !head.starts_with(b"\0asm") {
        let mut text = head.to_vec();
        (&mut reader)
            .take(MAX_WAT_SIZE + 1 - n as u64)
            .read_to_end(&mut text)
            .ctx("reading the module")?;
        if text.len() as u64 > MAX_WAT_SIZE {
            // Junk is named as junk, not as large text.
            detect(&text)?;
            return Err(ReceiveError::TooLarge {
                limit: MAX_WAT_SIZE,
                what: "WAT text",
            });
        }
        let bytes = to_binary(text)?;
        if bytes.len() as u64 > limit {
            return Err(ReceiveError::TooLarge {
                limit,
                what: "module",
            });
        }
        let target = detect(&bytes)?;
        let digest = Digest::of(&bytes);
        let existed = blobs.contains(&digest);
        blobs.put(&bytes, Some(&digest))?;
        return Ok(Received {
            digest,
            size: bytes.len() as u64,
            target,
            existed,
        });
    }
    let target = detect(head)?;
    let mut w = blobs.writer()?;
    let mut hasher = Hasher::new();
    w.write_all(head).ctx("storing the module")?;
    hasher.update(head);
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let k = reader.read(&mut buf).ctx("reading the module")?;
        if k == 0 {
            break;
        }
        if hasher.len() + k as u64 > limit {
            return Err(ReceiveError::TooLarge {
                limit,
                what: "module",
            });
        }
        w.write_all(&buf[..k]).ctx("storing the module")?;
        hasher.update(&buf[..k]);
    }
    let (digest, size) = hasher.finish();
    let existed = blobs.contains(&digest);
    w.commit(Some(&digest), Some(size))?;
    Ok(Received {
        digest,
        size,
        target,
        existed,
    })
}

/// WAT text becomes a binary module; binaries pass through.
fn to_binary(bytes: Vec<u8>) -> Result<Vec<u8>> {
    if bytes.starts_with(b"\0asm") {
        return Ok(bytes);
    }
    let looks_like_wat = std::str::from_utf8(&bytes)
        .map(|s| {
            let t = s.trim_start();
            t.starts_with('(') || t.starts_with(";;")
        })
        .unwrap_or(false);
    if !looks_like_wat {
        // Let detect() say what it is.
        detect(&bytes)?;
        return Ok(bytes);
    }
    wat::parse_bytes(&bytes)
        .map(|b| b.into_owned())
        .map_err(|e| {
            Error::invalid(format!(
                "not a WebAssembly binary, and not valid WAT text: {e}"
            ))
        })
}

/// Makes the module blob `layer_digest` (of `size` bytes) a CNCF Wasm
/// artifact tagged `tag`. `title` becomes the layer's
/// `org.opencontainers.image.title`; `component` is the config's
/// `component` section for a component.
pub fn import(
    images: &Images,
    layer_digest: Digest,
    size: u64,
    target: WasiTarget,
    title: &str,
    tag: &Reference,
    component: Option<serde_json::Value>,
) -> Result<ImageRecord> {
    let blobs = images.blobs();
    let created = util::now_rfc3339();
    let mut config = serde_json::json!({
        "created": created,
        "architecture": "wasm",
        "os": target.as_str(),
        "layerDigests": [layer_digest.to_string()],
    });
    if let Some(c) = component {
        config["component"] = c;
    }
    let config_bytes = serde_json::to_vec(&config).ctx("encoding config")?;
    let config_digest = blobs.put(&config_bytes, None)?;
    let mut layer = Descriptor::new(media::WASM_LAYER, layer_digest, size);
    layer
        .annotations
        .insert("org.opencontainers.image.title".into(), title.to_string());
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.into()),
        artifact_type: Some(media::WASM_CONFIG.into()),
        config: Descriptor::new(media::WASM_CONFIG, config_digest, config_bytes.len() as u64),
        layers: vec![layer],
        annotations: BTreeMap::from([("org.opencontainers.image.created".to_string(), created)]),
        subject: None,
    };
    let manifest_bytes = serde_json::to_vec(&manifest).ctx("encoding manifest")?;
    let manifest_digest = blobs.put(&manifest_bytes, None)?;
    images.commit(&manifest_digest, std::slice::from_ref(tag), None)
}

/// A module found in an image: its digest, where its bytes are, and the
/// name to give it as argv[0] when the entrypoint gives none.
#[derive(Debug, Clone)]
pub struct ModuleRef {
    pub digest: Digest,
    pub data: ModuleData,
    pub argv0: Option<String>,
}

#[derive(Debug, Clone)]
pub enum ModuleData {
    /// A blob: the image's Wasm layer, or the module file extracted from
    /// its filesystem layers.
    Blob(std::path::PathBuf),
    /// Bytes in memory (small modules made by tests).
    Bytes(Vec<u8>),
}

/// Finds the module a container of this image runs. `entry` is the first
/// word of the container's Entrypoint/Cmd, which names the module file in
/// rootfs-form images.
pub fn find_module(
    images: &Images,
    image: &ImageHandle,
    form: &WasmForm,
    entry: Option<&str>,
) -> Result<ModuleRef> {
    match form {
        WasmForm::Layer { digest, title, .. } => Ok(ModuleRef {
            digest: digest.clone(),
            data: ModuleData::Blob(images.blobs().path(digest)),
            argv0: Some(title.clone().unwrap_or_else(|| "module.wasm".into())),
        }),
        WasmForm::ManyLayers { count } => Err(Error::invalid(format!(
            "image has {count} Wasm layers; berth runs images with exactly one module layer"
        ))),
        WasmForm::Rootfs => {
            let path = entry.filter(|e| !e.is_empty()).ok_or_else(|| {
                Error::invalid(
                    "this Wasm image keeps its module in its filesystem, but neither the image nor \
                     the container names it: give the module's path as the entrypoint \
                     (--entrypoint /app.wasm)",
                )
            })?;
            let digest = extract_from_layers(images, &image.manifest, path)?;
            Ok(ModuleRef {
                data: ModuleData::Blob(images.blobs().path(&digest)),
                digest,
                argv0: None,
            })
        }
    }
}

/// Copies the module file `path` out of an image's tar layers (topmost
/// first, honouring whiteouts) into the content store, streaming, and
/// returns its digest. The blob belongs to no image: a container's create
/// links it into the container, and the daemon's next start sweeps it.
pub fn extract_from_layers(images: &Images, manifest: &Manifest, path: &str) -> Result<Digest> {
    let want = normalize(path);
    if want.is_empty() {
        return Err(Error::invalid(format!("{path:?} is not a file path")));
    }
    'layers: for layer in manifest.layers.iter().rev() {
        let compression = media::layer_compression(&layer.media_type).ok_or_else(|| {
            Error::invalid(format!(
                "layer {} has media type {}, which is not a tar layer",
                layer.digest, layer.media_type
            ))
        })?;
        let file = images.blobs().open_read(&layer.digest)?;
        // Multi-member gzip (pigz) is read whole, as everywhere else.
        let reader = Decoder::new(file, compression)?;
        let mut archive = tar::Archive::new(reader);
        let entries = archive
            .entries()
            .ctx(format!("reading layer {}", layer.digest))?;
        for entry in entries {
            let entry = entry.ctx(format!("reading layer {}", layer.digest))?;
            let name = normalize(&entry.path().ctx("reading layer entry")?.to_string_lossy());
            if name == want {
                if !entry.header().entry_type().is_file() {
                    return Err(Error::invalid(format!(
                        "{path} in the image is not a regular file; berth needs the module itself there"
                    )));
                }
                let limit = max_module_size();
                if entry.size() > limit {
                    return Err(Error::invalid(format!(
                        "{path} in the image is {} bytes, more than berthd's limit of {limit} for a \
                         module (an operator can raise it with `berthd --wasm-limit module-size=BYTES`)",
                        entry.size()
                    )));
                }
                return match take_in(images, entry.take(limit), limit, false) {
                    Ok(r) => Ok(r.digest),
                    Err(ReceiveError::TooLarge { .. }) => Err(Error::invalid(format!(
                        "{path} in the image is larger than berthd's limit of {limit} bytes for a \
                         module"
                    ))),
                    Err(ReceiveError::Failed(e)) => Err(e.context(format!("{path} in the image"))),
                };
            }
            if is_whiteout_for(&name, &want) {
                break 'layers;
            }
        }
    }
    Err(Error::invalid(format!(
        "the entrypoint {path} is not a file in the image; give the module's path with --entrypoint"
    )))
}

fn normalize(p: &str) -> String {
    p.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect::<Vec<_>>()
        .join("/")
}

/// Does layer entry `name` hide `want` in lower layers?
fn is_whiteout_for(name: &str, want: &str) -> bool {
    let (dir, base) = match name.rsplit_once('/') {
        Some((d, b)) => (d, b),
        None => ("", name),
    };
    let under = |d: &str| d.is_empty() || want.starts_with(&format!("{d}/"));
    if base == ".wh..wh..opq" {
        return under(dir);
    }
    if let Some(hidden) = base.strip_prefix(".wh.") {
        let hidden_path = if dir.is_empty() {
            hidden.to_string()
        } else {
            format!("{dir}/{hidden}")
        };
        return want == hidden_path || want.starts_with(&format!("{hidden_path}/"));
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_modules_components_and_junk() {
        assert_eq!(detect(b"\0asm\x01\0\0\0").unwrap(), WasiTarget::Wasip1);
        assert_eq!(detect(b"\0asm\x0d\0\x01\0").unwrap(), WasiTarget::Wasip2);
        let e = detect(b"hello world").unwrap_err();
        assert!(e.to_string().contains("looks like text"), "{e}");
        assert!(
            detect(b"\x7fELF\x02\x01\x01\0")
                .unwrap_err()
                .to_string()
                .contains("ELF")
        );
    }

    #[test]
    fn whiteouts() {
        assert!(is_whiteout_for("app/.wh.x.wasm", "app/x.wasm"));
        assert!(is_whiteout_for(".wh.app", "app/x.wasm"));
        assert!(is_whiteout_for("app/.wh..wh..opq", "app/x.wasm"));
        assert!(!is_whiteout_for("other/.wh..wh..opq", "app/x.wasm"));
        assert!(!is_whiteout_for("app/.wh.y.wasm", "app/x.wasm"));
    }

    #[test]
    fn reads_entrypoint_from_top_layer() {
        let (_d, images) = crate::image::tests::fixture();
        let layer = |files: &[(&str, &[u8])]| {
            let mut b = tar::Builder::new(Vec::new());
            for (name, data) in files {
                let mut h = tar::Header::new_gnu();
                h.set_size(data.len() as u64);
                h.set_mode(0o644);
                h.set_cksum();
                b.append_data(&mut h, name, *data).unwrap();
            }
            b.into_inner().unwrap()
        };
        let l1 = layer(&[("app.wasm", b"\0asm\x01\0\0\0old"), ("gone.wasm", b"x")]);
        let l2 = layer(&[
            ("./app.wasm", b"\0asm\x01\0\0\0new"),
            (".wh.gone.wasm", b""),
            ("text.wasm", b"hello"),
        ]);
        let d1 = images.blobs().put(&l1, None).unwrap();
        let d2 = images.blobs().put(&l2, None).unwrap();
        let m = Manifest {
            schema_version: 2,
            media_type: None,
            artifact_type: None,
            config: Descriptor::new(media::OCI_CONFIG, Digest::of(b"c"), 1),
            layers: vec![
                Descriptor::new(media::OCI_LAYER, d1, l1.len() as u64),
                Descriptor::new(media::OCI_LAYER, d2, l2.len() as u64),
            ],
            annotations: Default::default(),
            subject: None,
        };
        let d = extract_from_layers(&images, &m, "/app.wasm").unwrap();
        assert_eq!(images.blobs().read(&d).unwrap(), b"\0asm\x01\0\0\0new");
        assert!(extract_from_layers(&images, &m, "/gone.wasm").is_err());
        assert!(extract_from_layers(&images, &m, "/none.wasm").is_err());
        let e = extract_from_layers(&images, &m, "/text.wasm").unwrap_err();
        assert!(e.to_string().contains("/text.wasm in the image"), "{e}");
    }

    /// A layer gzipped in two members (as `pigz` writes it), the module
    /// split across them, is read whole.
    #[test]
    fn reads_a_module_from_a_multi_member_gzip_layer() {
        use std::io::Write;
        let (_d, images) = crate::image::tests::fixture();
        let mut module = b"\0asm\x01\0\0\0".to_vec();
        module.extend((0..200_000u32).map(|i| (i * 7 % 251) as u8));
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(module.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "app.wasm", module.as_slice())
            .unwrap();
        let tar = b.into_inner().unwrap();
        let member = |data: &[u8]| {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        };
        let (first, second) = tar.split_at(tar.len() / 3);
        let mut gz = member(first);
        gz.extend(member(second));
        let digest = images.blobs().put(&gz, None).unwrap();
        let m = Manifest {
            schema_version: 2,
            media_type: None,
            artifact_type: None,
            config: Descriptor::new(media::OCI_CONFIG, Digest::of(b"c"), 1),
            layers: vec![Descriptor::new(
                media::OCI_LAYER_GZIP,
                digest,
                gz.len() as u64,
            )],
            annotations: Default::default(),
            subject: None,
        };
        let d = extract_from_layers(&images, &m, "/app.wasm").unwrap();
        assert_eq!(images.blobs().read(&d).unwrap(), module);
    }
}
