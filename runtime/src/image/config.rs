//! The image configuration blob: OCI/Docker image config, or the CNCF Wasm
//! artifact config. Read leniently; unknown fields are ignored.

use crate::error::{Error, Result};
use berth_api_types::container::Config;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ImageConfigFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// Docker's image comment (`docker commit -m`, `docker import -m`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    pub architecture: String,
    pub os: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(rename = "os.version", skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
    /// The default container configuration (OCI/Docker images).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<Config>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rootfs: Option<RootFs>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<serde_json::Value>,
    /// CNCF Wasm artifact config: the layers that hold modules.
    #[serde(rename = "layerDigests", skip_serializing_if = "Vec::is_empty")]
    pub layer_digests: Vec<String>,
    /// CNCF Wasm artifact config: a component's world, imports and exports.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    pub diff_ids: Vec<String>,
}

impl ImageConfigFile {
    pub fn parse(bytes: &[u8]) -> Result<ImageConfigFile> {
        serde_json::from_slice(bytes)
            .map_err(|e| Error::invalid(format!("malformed image config: {e}")))
    }

    /// The container config, or an empty one.
    pub fn container_config(&self) -> Config {
        self.config.clone().unwrap_or_default()
    }
}
