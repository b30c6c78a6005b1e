//! OCI and Docker manifest, index and descriptor shapes, and the media types
//! berth recognizes.
//!
//! One lenient set of types reads OCI image manifests, Docker schema 2
//! manifests and OCI artifact manifests alike; digests are validated as they
//! are read.
//!
//! Lenient in what fields it ignores, strict in what a document is: a JSON
//! document that could be read both as an image manifest and as an index
//! is refused (CVE-2021-41190: the same digest must never mean two
//! images). [`classify`] decides what a document is from its own fields
//! and from every outside statement about it (a registry's
//! `Content-Type`, the media type of the descriptor that pointed to it),
//! and refuses it when they disagree; [`Manifest::parse`] and
//! [`Index::parse`] refuse documents of the other kind. The rules follow
//! containerd's `validateMediaType` and containers/image's
//! `validateUnambiguousManifestFormat`, with every declaration compared,
//! not just one.

use crate::error::{Error, Result};
use crate::util::Digest;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub mod media {
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";

    /// The CNCF Wasm OCI artifact: config and layer.
    pub const WASM_CONFIG: &str = "application/vnd.wasm.config.v0+json";
    pub const WASM_LAYER: &str = "application/wasm";
    /// Other Wasm layer types seen in the wild.
    pub const WASM_COMPONENT_LAYER: &str =
        "application/vnd.bytecodealliance.wasm.component.layer.v0+wasm";
    pub const WASM_CONTENT_LAYER: &str = "application/vnd.wasm.content.layer.v1+wasm";

    pub fn is_wasm_layer(m: &str) -> bool {
        m == WASM_LAYER || m == WASM_COMPONENT_LAYER || m == WASM_CONTENT_LAYER
    }

    pub fn is_index(m: &str) -> bool {
        m == OCI_INDEX || m == DOCKER_LIST
    }

    /// An image manifest type berth reads (OCI, Docker schema 2).
    pub fn is_manifest(m: &str) -> bool {
        m == OCI_MANIFEST || m == DOCKER_MANIFEST
    }

    /// How a tar layer is compressed, judged by its media type.
    pub fn layer_compression(m: &str) -> Option<super::Compression> {
        use super::Compression::*;
        match m {
            OCI_LAYER | DOCKER_LAYER => Some(None),
            OCI_LAYER_GZIP | DOCKER_LAYER_GZIP => Some(Gzip),
            OCI_LAYER_ZSTD => Some(Zstd),
            // Non-distributable variants carry the same bytes.
            "application/vnd.oci.image.layer.nondistributable.v1.tar" => Some(None),
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => Some(Gzip),
            "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd" => Some(Zstd),
            _ => Option::None,
        }
    }
}

/// Layer compression: the decompressor's (`compress.rs`).
pub use super::compress::Compression;

/// Size limits for JSON documents, so a hostile archive or registry cannot
/// make berthd read unbounded data into memory.
pub const MAX_MANIFEST_SIZE: u64 = 4 << 20;
pub const MAX_CONFIG_SIZE: u64 = 8 << 20;
/// Layers an image manifest may list: as many as overlayfs can stack
/// (`OVL_MAX_STACK`), so no image berth could never run is downloaded.
pub const MAX_LAYERS: usize = crate::executor::native::overlay::MAX_LOWERS;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Platform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
}

/// The OCI name of the host's architecture (`amd64`, `arm64`, ...).
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "loongarch64" => "loong64",
        other => other,
    }
}

const WASI_OSES: &[&str] = &["wasi", "wasip1", "wasip2"];

impl Platform {
    /// `linux/<host arch>`.
    pub fn host() -> Platform {
        Platform {
            os: "linux".into(),
            architecture: host_arch().into(),
            ..Default::default()
        }
    }

    /// Parses `os[/arch[/variant]]` as `docker pull --platform` takes it,
    /// normalizing names as Docker does (`x86_64` is `amd64`, `aarch64` is
    /// `arm64`). A bare OS gets the host's architecture, or `wasm` for the
    /// WASI ones.
    pub fn parse(s: &str) -> Result<Platform> {
        let bad = |why: &str| {
            Error::invalid(format!(
                "invalid platform {s:?}: {why}; expected os[/arch[/variant]] such as linux/amd64 or wasi/wasm"
            ))
        };
        let lower = s.trim().to_ascii_lowercase();
        let parts: Vec<&str> = lower.split('/').collect();
        if parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
            return Err(bad("malformed"));
        }
        let ok = |p: &str| {
            p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        };
        if !parts.iter().all(|p| ok(p)) {
            return Err(bad("unexpected characters"));
        }
        let os = parts[0].to_string();
        let (arch, variant) = match (parts.get(1).copied(), parts.get(2).copied()) {
            (None, _) if WASI_OSES.contains(&os.as_str()) => ("wasm".to_string(), None),
            (None, _) => (host_arch().to_string(), None),
            (Some(a), v) => normalize_arch(a, v),
        };
        Ok(Platform {
            os,
            architecture: arch,
            variant,
            os_version: None,
        })
    }

    /// A WebAssembly platform (`wasi/wasm`, `wasip1/wasm`, ...).
    pub fn is_wasm(&self) -> bool {
        WASI_OSES.contains(&self.os.as_str()) || self.architecture == "wasm"
    }

    /// `os/arch[/variant]`.
    pub fn name(&self) -> String {
        match &self.variant {
            Some(v) if !v.is_empty() => format!("{}/{}/{v}", self.os, self.architecture),
            _ => format!("{}/{}", self.os, self.architecture),
        }
    }

    /// Whether an image of this platform satisfies a request for `want`: the
    /// same OS and architecture, and the same variant when `want` names one
    /// (`arm64` and `arm64/v8` are one). Any WASI platform satisfies a
    /// request for another WASI one.
    pub fn satisfies(&self, want: &Platform) -> bool {
        if want.is_wasm() {
            return self.is_wasm();
        }
        let (arch, variant) = normalize_arch(&self.architecture, self.variant.as_deref());
        if self.os != want.os || arch != want.architecture {
            return false;
        }
        match &want.variant {
            None => true,
            Some(v) => variant.as_deref() == Some(v.as_str()),
        }
    }
}

/// Docker's architecture aliases, and `arm64/v8` as plain `arm64`.
fn normalize_arch(arch: &str, variant: Option<&str>) -> (String, Option<String>) {
    let arch = arch.to_ascii_lowercase();
    let variant = variant.map(str::to_ascii_lowercase);
    match (arch.as_str(), variant.as_deref()) {
        ("x86_64" | "x86-64" | "amd64", _) => ("amd64".into(), None),
        ("aarch64" | "arm64", Some("v8") | None) => ("arm64".into(), None),
        ("aarch64" | "arm64", Some(v)) => ("arm64".into(), Some(v.into())),
        ("armhf", _) => ("arm".into(), Some("v7".into())),
        ("armel", _) => ("arm".into(), Some("v6".into())),
        ("i386" | "i686" | "386", _) => ("386".into(), None),
        _ => (arch, variant),
    }
}

/// `os/arch` of each descriptor, for messages.
pub fn platform_names(ds: &[&Descriptor]) -> String {
    ds.iter()
        .map(|d| match &d.platform {
            Some(p) => p.name(),
            None => "unknown platform".into(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Picks the image of a multi-platform index among `candidates` (its
/// entries that are images, see [`Descriptor::is_attestation`]; an archive
/// passes those it holds). With `want`, the first whose platform satisfies
/// it. Without, berth's rule: the host's platform, else the only
/// candidate, else the first Wasm one, which runs anywhere berth does.
pub fn choose_platform<'a>(
    candidates: &[&'a Descriptor],
    want: Option<&Platform>,
) -> Option<&'a Descriptor> {
    if let Some(want) = want {
        // An exact OS match first (`wasip2/wasm` asked, `wasip1` also there).
        return candidates
            .iter()
            .find(|d| {
                d.platform
                    .as_ref()
                    .is_some_and(|p| p.satisfies(want) && p.os == want.os)
            })
            .or_else(|| {
                candidates
                    .iter()
                    .find(|d| d.platform.as_ref().is_some_and(|p| p.satisfies(want)))
            })
            .copied();
    }
    let host = Platform::host();
    if let Some(d) = candidates
        .iter()
        .find(|d| d.platform.as_ref().is_some_and(|p| p.satisfies(&host)))
    {
        return Some(d);
    }
    if let [only] = candidates {
        return Some(only);
    }
    candidates
        .iter()
        .find(|d| d.platform.as_ref().is_some_and(Platform::is_wasm))
        .copied()
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: i64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
}

impl Descriptor {
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest,
            size: size as i64,
            annotations: BTreeMap::new(),
            platform: None,
            urls: Vec::new(),
            artifact_type: None,
        }
    }
}

impl Descriptor {
    /// Attestations and other entries of a multi-platform index that are
    /// not images to run.
    pub fn is_attestation(&self) -> bool {
        self.annotations.contains_key("vnd.docker.reference.type")
            || self.platform.as_ref().is_some_and(|p| p.os == "unknown")
    }
}

/// An image manifest (OCI image or artifact, or Docker schema 2).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
}

/// An image index (OCI) or manifest list (Docker).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Manifest {
    /// Reads an image manifest, refusing an index, a document that could
    /// be read as either (see [`classify`]), and more than [`MAX_LAYERS`]
    /// layers.
    pub fn parse(bytes: &[u8]) -> Result<Manifest> {
        if inspect(bytes)?.kind() == Some(DocKind::Index) {
            return Err(Error::invalid(
                "expected an image manifest, found an image index",
            ));
        }
        let m: Manifest = serde_json::from_slice(bytes)
            .map_err(|e| Error::invalid(format!("malformed image manifest: {e}")))?;
        if m.schema_version != 2 {
            return Err(Error::invalid(format!(
                "unsupported manifest schemaVersion {}: berth reads schema 2 (OCI and Docker v2)",
                m.schema_version
            )));
        }
        if m.layers.len() > MAX_LAYERS {
            return Err(Error::invalid(format!(
                "the image manifest lists {} layers; berth accepts at most {MAX_LAYERS}, \
                 as many as overlayfs can stack",
                m.layers.len()
            )));
        }
        Ok(m)
    }

    /// The media type to store it under: its own, or OCI's when absent.
    pub fn effective_media_type(&self) -> &str {
        self.media_type.as_deref().unwrap_or(media::OCI_MANIFEST)
    }
}

impl Index {
    /// Reads an image index (or Docker manifest list), refusing an image
    /// manifest and a document that could be read as either.
    pub fn parse(bytes: &[u8]) -> Result<Index> {
        if inspect(bytes)?.kind() == Some(DocKind::Manifest) {
            return Err(Error::invalid(
                "expected an image index, found an image manifest",
            ));
        }
        let i: Index = serde_json::from_slice(bytes)
            .map_err(|e| Error::invalid(format!("malformed image index: {e}")))?;
        if i.schema_version != 2 {
            return Err(Error::invalid(format!(
                "unsupported index schemaVersion {}",
                i.schema_version
            )));
        }
        Ok(i)
    }
}

/// What a manifest-or-index document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocKind {
    /// An image manifest (OCI or Docker schema 2).
    Manifest,
    /// An image index (OCI) or manifest list (Docker).
    Index,
}

impl DocKind {
    fn of(media_type: &str) -> Option<DocKind> {
        if media::is_manifest(media_type) {
            Some(DocKind::Manifest)
        } else if media::is_index(media_type) {
            Some(DocKind::Index)
        } else {
            None
        }
    }

    fn name(self) -> &'static str {
        match self {
            DocKind::Manifest => "an image manifest",
            DocKind::Index => "an image index",
        }
    }
}

/// The fields that tell a manifest from an index. A field counts as
/// present even when it is `null`; duplicate fields are refused (parsers
/// disagree on which one wins).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default, deserialize_with = "present")]
    manifests: bool,
    #[serde(default, deserialize_with = "present")]
    config: bool,
    #[serde(default, deserialize_with = "present")]
    layers: bool,
    #[serde(default, deserialize_with = "present")]
    fs_layers: bool,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(d).map(|_| true)
}

/// What a document says of itself.
struct SelfDescribed {
    media_type: Option<String>,
    /// From `mediaType`.
    declared: Option<DocKind>,
    /// From the fields it has.
    structural: Option<DocKind>,
}

impl SelfDescribed {
    fn kind(&self) -> Option<DocKind> {
        self.declared.or(self.structural)
    }
}

/// Reads what a document says it is, refusing one that says two things.
fn inspect(bytes: &[u8]) -> Result<SelfDescribed> {
    let p: Probe = serde_json::from_slice(bytes)
        .map_err(|e| Error::invalid(format!("not a JSON image manifest or index: {e}")))?;
    if p.fs_layers {
        return Err(Error::invalid(
            "a Docker schema 1 manifest (fsLayers), which berth does not read; \
             push the image again with a current client",
        ));
    }
    let structural = match (p.manifests, p.config || p.layers) {
        (true, true) => {
            return Err(Error::invalid(
                "ambiguous document: it has both `manifests` (an image index) and \
                 `config`/`layers` (an image manifest), so one digest could name two \
                 different images; refusing it (CVE-2021-41190)",
            ));
        }
        (true, false) => Some(DocKind::Index),
        (false, true) => Some(DocKind::Manifest),
        (false, false) => None,
    };
    let declared = match &p.media_type {
        None => None,
        Some(mt) => Some(DocKind::of(mt).ok_or_else(|| {
            Error::invalid(format!(
                "its mediaType {} is neither an image manifest nor an index berth reads \
                 ({}, {}, {}, {})",
                crate::util::names::excerpt(mt),
                media::OCI_MANIFEST,
                media::OCI_INDEX,
                media::DOCKER_MANIFEST,
                media::DOCKER_LIST
            ))
        })?),
    };
    if let (Some(d), Some(s)) = (declared, structural)
        && d != s
    {
        return Err(Error::invalid(format!(
            "ambiguous document: its mediaType says {} ({}) but its fields are those of {}; \
             refusing it (CVE-2021-41190)",
            d.name(),
            p.media_type.as_deref().unwrap_or(""),
            s.name()
        )));
    }
    Ok(SelfDescribed {
        media_type: p.media_type,
        declared,
        structural,
    })
}

/// Decides whether the document `digest` is an image manifest or an
/// index, from its own `mediaType` and fields and from `declared`: what
/// others said it is, as (who said it, media type), such as a registry's
/// `Content-Type` or the descriptor that pointed to it. Refused, with a
/// message naming the digest and the disagreement: a document with both
/// `manifests` and `config`/`layers`; a `mediaType` that is not a manifest
/// or index type, or contradicts the fields; a declaration of a manifest
/// or index type that differs from the document's own `mediaType`, or is
/// of the other kind than its fields or another declaration. Declarations
/// of other types (`application/json`, `application/octet-stream`) say
/// nothing and are ignored.
pub fn classify(bytes: &[u8], digest: &Digest, declared: &[(&str, &str)]) -> Result<DocKind> {
    let refuse = |why: String| {
        Error::invalid(format!(
            "refusing {digest}: {why}; a manifest must say unambiguously what it is \
             (CVE-2021-41190)"
        ))
    };
    let own = inspect(bytes).map_err(|e| Error::invalid(format!("refusing {digest}: {e}")))?;
    let mut kind = own.kind();
    let mut said: Option<(&str, &str)> = None;
    for &(by, mt) in declared {
        let Some(k) = DocKind::of(mt) else { continue };
        if let Some(own_mt) = &own.media_type
            && own_mt != mt
        {
            return Err(refuse(format!(
                "{by} says it is {mt}, but its own mediaType is {own_mt}"
            )));
        }
        if let Some(s) = own.structural
            && s != k
        {
            return Err(refuse(format!(
                "{by} says it is {} ({mt}), but its fields are those of {}",
                k.name(),
                s.name()
            )));
        }
        if let Some((other_by, other_mt)) = said
            && DocKind::of(other_mt) != Some(k)
        {
            return Err(refuse(format!(
                "{other_by} says it is {other_mt}, but {by} says {mt}"
            )));
        }
        said = Some((by, mt));
        kind = kind.or(Some(k));
    }
    kind.ok_or_else(|| {
        Error::invalid(format!(
            "{digest} is neither an image manifest nor an index: it has no mediaType, \
             no `manifests` and no `config` or `layers`"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(os: &str, arch: &str, variant: Option<&str>) -> Descriptor {
        let id = format!("{os}/{arch}/{variant:?}");
        let mut d = Descriptor::new(media::OCI_MANIFEST, Digest::of(id.as_bytes()), 1);
        d.platform = Some(Platform {
            os: os.into(),
            architecture: arch.into(),
            variant: variant.map(Into::into),
            os_version: None,
        });
        d
    }

    #[test]
    fn parses_platforms_like_docker() {
        let p = Platform::parse("linux/x86_64").unwrap();
        assert_eq!((p.os.as_str(), p.architecture.as_str()), ("linux", "amd64"));
        assert_eq!(Platform::parse("linux").unwrap().architecture, host_arch());
        assert_eq!(Platform::parse("wasi").unwrap().name(), "wasi/wasm");
        assert_eq!(
            Platform::parse("Linux/ARM64/v8").unwrap().name(),
            "linux/arm64"
        );
        assert_eq!(
            Platform::parse("linux/arm/v7").unwrap().name(),
            "linux/arm/v7"
        );
        for bad in ["", "linux/", "a/b/c/d", "linux/am d64"] {
            assert!(Platform::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn chooses_the_requested_platform_or_the_host() {
        let amd = entry("linux", "amd64", None);
        let arm = entry("linux", "arm64", Some("v8"));
        let armv7 = entry("linux", "arm", Some("v7"));
        let wasm = entry("wasip1", "wasm", None);
        let all = [&amd, &arm, &armv7, &wasm];
        let pick = |want: &str| {
            choose_platform(&all, Some(&Platform::parse(want).unwrap())).map(|d| d.digest.clone())
        };
        assert_eq!(pick("linux/amd64"), Some(amd.digest.clone()));
        assert_eq!(pick("linux/arm64"), Some(arm.digest.clone()));
        assert_eq!(pick("linux/arm/v7"), Some(armv7.digest.clone()));
        assert_eq!(pick("wasi/wasm"), Some(wasm.digest.clone()));
        assert_eq!(pick("linux/s390x"), None);
        // No request: the host's, else the only one, else Wasm.
        let host = all
            .iter()
            .find(|d| d.platform.as_ref().unwrap().architecture == host_arch())
            .map(|d| d.digest.clone());
        assert_eq!(choose_platform(&all, None).map(|d| d.digest.clone()), host);
        let s390 = entry("linux", "s390x", None);
        assert_eq!(
            choose_platform(&[&s390, &wasm], None).map(|d| d.digest.clone()),
            Some(wasm.digest.clone())
        );
        assert_eq!(
            choose_platform(&[&s390], None).map(|d| d.digest.clone()),
            Some(s390.digest.clone())
        );
        let ppc = entry("linux", "ppc64le", None);
        assert!(choose_platform(&[&s390, &ppc], None).is_none() || host_arch() == "ppc64le");
    }

    fn doc(v: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&v).unwrap()
    }

    fn desc_json() -> serde_json::Value {
        serde_json::json!({
            "mediaType": media::OCI_CONFIG,
            "digest": Digest::of(b"c").to_string(),
            "size": 1
        })
    }

    #[test]
    fn ambiguous_documents_are_refused() {
        let d = Digest::of(b"doc");
        let manifest = doc(serde_json::json!({
            "schemaVersion": 2, "config": desc_json(), "layers": []
        }));
        let index = doc(serde_json::json!({"schemaVersion": 2, "manifests": []}));
        // Both shapes at once, with or without a mediaType, even as null.
        for both in [
            serde_json::json!({"schemaVersion": 2, "manifests": [], "config": desc_json()}),
            serde_json::json!({"schemaVersion": 2, "manifests": [], "layers": []}),
            serde_json::json!({"schemaVersion": 2, "mediaType": media::OCI_INDEX,
                               "manifests": [], "layers": [], "config": desc_json()}),
            serde_json::json!({"schemaVersion": 2, "manifests": null, "config": desc_json()}),
        ] {
            let b = doc(both);
            let e = classify(&b, &d, &[]).unwrap_err();
            assert!(
                e.message().contains(&d.to_string()),
                "names the digest: {e}"
            );
            assert!(e.message().contains("both `manifests`"), "{e}");
            assert!(Manifest::parse(&b).is_err());
            assert!(Index::parse(&b).is_err());
        }
        // A mediaType that contradicts the fields.
        let lying = doc(serde_json::json!({
            "schemaVersion": 2, "mediaType": media::OCI_INDEX,
            "config": desc_json(), "layers": []
        }));
        assert!(
            classify(&lying, &d, &[])
                .unwrap_err()
                .message()
                .contains("mediaType says")
        );
        assert!(Manifest::parse(&lying).is_err());
        let lying = doc(serde_json::json!({
            "schemaVersion": 2, "mediaType": media::DOCKER_MANIFEST, "manifests": []
        }));
        assert!(Index::parse(&lying).is_err());
        // An unknown mediaType.
        let odd = doc(serde_json::json!({
            "schemaVersion": 2, "mediaType": "application/x-odd", "config": desc_json()
        }));
        assert!(classify(&odd, &d, &[]).is_err());
        // Duplicate fields: parsers disagree on which wins.
        let dup = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","mediaType":"application/vnd.oci.image.manifest.v1+json","config":{}}"#;
        assert!(classify(dup, &d, &[]).is_err());

        // Outside statements: Content-Type and descriptors.
        let ct = "the registry's Content-Type";
        assert_eq!(
            classify(&manifest, &d, &[(ct, media::OCI_MANIFEST)]).unwrap(),
            DocKind::Manifest
        );
        assert_eq!(
            classify(&index, &d, &[(ct, media::DOCKER_LIST)]).unwrap(),
            DocKind::Index
        );
        // An index served as a manifest, and the other way round.
        let e = classify(&index, &d, &[(ct, media::OCI_MANIFEST)]).unwrap_err();
        assert!(
            e.message().contains(ct) && e.message().contains("image index"),
            "{e}"
        );
        assert!(classify(&manifest, &d, &[(ct, media::OCI_INDEX)]).is_err());
        // A mediaType other than the Content-Type, even of the same kind.
        let typed = doc(serde_json::json!({
            "schemaVersion": 2, "mediaType": media::DOCKER_MANIFEST,
            "config": desc_json(), "layers": []
        }));
        let e = classify(&typed, &d, &[(ct, media::OCI_MANIFEST)]).unwrap_err();
        assert!(e.message().contains("own mediaType"), "{e}");
        // The descriptor and the Content-Type disagree on the kind of a
        // document that says nothing itself.
        let bare = doc(serde_json::json!({"schemaVersion": 2}));
        assert!(
            classify(
                &bare,
                &d,
                &[(ct, media::OCI_INDEX), ("index x", media::OCI_MANIFEST)]
            )
            .is_err()
        );
        assert_eq!(
            classify(&bare, &d, &[(ct, media::OCI_INDEX)]).unwrap(),
            DocKind::Index
        );
        assert!(classify(&bare, &d, &[]).is_err());
        // Generic types say nothing.
        assert_eq!(
            classify(&manifest, &d, &[(ct, "application/json")]).unwrap(),
            DocKind::Manifest
        );
        // Schema 1 is refused.
        let s1 = doc(serde_json::json!({"schemaVersion": 1, "fsLayers": []}));
        assert!(
            classify(&s1, &d, &[])
                .unwrap_err()
                .message()
                .contains("schema 1")
        );
    }

    #[test]
    fn manifests_list_a_bounded_number_of_layers() {
        let layers: Vec<_> = (0..=MAX_LAYERS).map(|_| desc_json()).collect();
        let m = doc(serde_json::json!({
            "schemaVersion": 2, "config": desc_json(), "layers": layers
        }));
        let e = Manifest::parse(&m).unwrap_err();
        assert!(e.message().contains("at most 500"), "{e}");
    }
}
