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
