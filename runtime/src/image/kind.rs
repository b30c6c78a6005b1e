//! How an image picks its executor. Decided from the manifest and config
//! when the image is stored, shown in inspect, and fixed for each container
//! at create.
//!
//! Wasm when a layer has a Wasm media type (the CNCF Wasm OCI artifact and
//! two other layer types in use), or when the platform is WASI with ordinary
//! tar layers whose entrypoint is a `.wasm` file, or when the image carries
//! the annotation `module.wasm.image/variant=compat` or
//! `run.oci.handler=wasm`. Native otherwise.

use super::config::ImageConfigFile;
use super::manifest::{Manifest, media};
use crate::util::Digest;
use serde::{Deserialize, Serialize};

pub use crate::executor::ExecutorKind;

/// Where a Wasm image keeps its module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "form", rename_all = "kebab-case")]
pub enum WasmForm {
    /// One layer of a Wasm media type: the blob is the module.
    Layer {
        digest: Digest,
        media_type: String,
        /// `org.opencontainers.image.title` of the layer, used as argv[0].
        title: Option<String>,
    },
    /// Several Wasm layers: berth cannot tell which one to run.
    ManyLayers { count: usize },
    /// Ordinary tar layers; the module is the file the entrypoint names.
    Rootfs,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "executor", rename_all = "lowercase")]
pub enum ImageKind {
    Wasm {
        #[serde(flatten)]
        form: WasmForm,
        /// Why this image is Wasm, for inspect and error messages.
        reason: String,
    },
    Native,
}

impl ImageKind {
    pub fn executor(&self) -> ExecutorKind {
        match self {
            ImageKind::Wasm { .. } => ExecutorKind::Wasm,
            ImageKind::Native => ExecutorKind::Native,
        }
    }
}

const WASI_OSES: &[&str] = &["wasi", "wasip1", "wasip2"];
const WASM_ANNOTATIONS: &[(&str, &str)] = &[
    ("module.wasm.image/variant", "compat"),
    ("module.wasm.image/variant", "compat-smart"),
    ("run.oci.handler", "wasm"),
];

/// Picks the executor for an image.
pub fn select(manifest: &Manifest, config: &ImageConfigFile) -> ImageKind {
    let wasm_layers: Vec<_> = manifest
        .layers
        .iter()
        .filter(|l| media::is_wasm_layer(&l.media_type))
        .collect();
    match wasm_layers.as_slice() {
        [] => {}
        [one] => {
            return ImageKind::Wasm {
                form: WasmForm::Layer {
                    digest: one.digest.clone(),
                    media_type: one.media_type.clone(),
                    title: one
                        .annotations
                        .get("org.opencontainers.image.title")
                        .cloned(),
                },
                reason: format!("layer of media type {}", one.media_type),
            };
        }
        many => {
            return ImageKind::Wasm {
                form: WasmForm::ManyLayers { count: many.len() },
                reason: format!("{} layers of Wasm media types", many.len()),
            };
        }
    }
    if WASI_OSES.contains(&config.os.as_str()) || config.architecture == "wasm" {
        return ImageKind::Wasm {
            form: WasmForm::Rootfs,
            reason: format!("platform {}/{}", config.os, config.architecture),
        };
    }
    let labels = config
        .config
        .as_ref()
        .map(|c| c.labels.clone())
        .unwrap_or_default();
    for (k, v) in WASM_ANNOTATIONS {
        if manifest.annotations.get(*k).map(String::as_str) == Some(*v)
            || labels.get(*k).map(String::as_str) == Some(*v)
        {
            return ImageKind::Wasm {
                form: WasmForm::Rootfs,
                reason: format!("annotation {k}={v}"),
            };
        }
    }
    ImageKind::Native
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::manifest::Descriptor;

    fn manifest(layers: &[&str]) -> Manifest {
        Manifest {
            schema_version: 2,
            media_type: Some(media::OCI_MANIFEST.into()),
            artifact_type: None,
            config: Descriptor::new(media::OCI_CONFIG, Digest::of(b"c"), 1),
            layers: layers
                .iter()
                .enumerate()
                .map(|(i, m)| Descriptor::new(m, Digest::of(&[i as u8]), 1))
                .collect(),
            annotations: Default::default(),
            subject: None,
        }
    }

    #[test]
    fn every_wasm_layer_media_type_selects_wasm() {
        for m in [
            media::WASM_LAYER,
            media::WASM_COMPONENT_LAYER,
            media::WASM_CONTENT_LAYER,
        ] {
            let k = select(&manifest(&[m]), &ImageConfigFile::default());
            assert!(
                matches!(
                    k,
                    ImageKind::Wasm {
                        form: WasmForm::Layer { .. },
                        ..
                    }
                ),
                "{m}: {k:?}"
            );
        }
    }

    #[test]
    fn wasi_platform_and_annotations_select_rootfs_wasm() {
        let cfg = ImageConfigFile {
            os: "wasip1".into(),
            architecture: "wasm".into(),
            ..Default::default()
        };
        assert!(matches!(
            select(&manifest(&[media::OCI_LAYER]), &cfg),
            ImageKind::Wasm {
                form: WasmForm::Rootfs,
                ..
            }
        ));
        let mut m = manifest(&[media::OCI_LAYER_GZIP]);
        m.annotations
            .insert("run.oci.handler".into(), "wasm".into());
        let linux = ImageConfigFile {
            os: "linux".into(),
            architecture: "amd64".into(),
            ..Default::default()
        };
        assert!(matches!(
            select(&m, &linux),
            ImageKind::Wasm {
                form: WasmForm::Rootfs,
                ..
            }
        ));
        assert_eq!(
            select(&manifest(&[media::OCI_LAYER_GZIP]), &linux),
            ImageKind::Native
        );
    }

    #[test]
    fn many_wasm_layers_are_flagged() {
        let k = select(
            &manifest(&[media::WASM_LAYER, media::WASM_LAYER]),
            &ImageConfigFile::default(),
        );
        assert!(matches!(
            k,
            ImageKind::Wasm {
                form: WasmForm::ManyLayers { count: 2 },
                ..
            }
        ));
    }
}
