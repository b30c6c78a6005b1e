//! OCI and Docker manifest, index and descriptor shapes, and the media types
//! berth recognizes.
//!
//! One lenient set of types reads OCI image manifests, Docker schema 2
//! manifests and OCI artifact manifests alike; digests are validated as they
//! are read.

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

/// Layer compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// Size limits for JSON documents, so a hostile archive or registry cannot
/// make berthd read unbounded data into memory.
pub const MAX_MANIFEST_SIZE: u64 = 4 << 20;
pub const MAX_CONFIG_SIZE: u64 = 8 << 20;

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
    pub fn parse(bytes: &[u8]) -> Result<Manifest> {
        let m: Manifest = serde_json::from_slice(bytes)
            .map_err(|e| Error::invalid(format!("malformed image manifest: {e}")))?;
        if m.schema_version != 2 {
            return Err(Error::invalid(format!(
                "unsupported manifest schemaVersion {}: berth reads schema 2 (OCI and Docker v2)",
                m.schema_version
            )));
        }
        if let Some(mt) = &m.media_type
            && media::is_index(mt)
        {
            return Err(Error::invalid(
                "expected an image manifest, found an image index",
            ));
        }
        Ok(m)
    }

    /// The media type to store it under: its own, or OCI's when absent.
    pub fn effective_media_type(&self) -> &str {
        self.media_type.as_deref().unwrap_or(media::OCI_MANIFEST)
    }
}

impl Index {
    pub fn parse(bytes: &[u8]) -> Result<Index> {
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

/// Is this JSON document an index (as opposed to a manifest)? Looks at
/// `mediaType`, falling back to the presence of `manifests`.
pub fn looks_like_index(bytes: &[u8]) -> bool {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
    }
    match serde_json::from_slice::<Probe>(bytes) {
        Ok(p) => match p.media_type {
            Some(m) => media::is_index(&m),
            None => p.manifests.is_some(),
        },
        Err(_) => false,
    }
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
}
