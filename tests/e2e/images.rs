//! Builds image tarballs for tests, in the formats others produce them: OCI
//! image layouts (what `skopeo copy oci-archive:` and `docker save` 25+
//! write) and old-style `docker save` archives.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub fn sha(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

fn append(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) {
    let mut h = tar::Header::new_ustar();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    b.append_data(&mut h, path, data).unwrap();
}

/// A tar holding one file.
pub fn tar_with_file(path: &str, data: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    append(&mut b, path, data);
    b.into_inner().unwrap()
}

pub struct Layer {
    pub media_type: String,
    pub data: Vec<u8>,
    pub annotations: Value,
}

impl Layer {
    pub fn new(media_type: &str, data: Vec<u8>) -> Layer {
        Layer {
            media_type: media_type.into(),
            data,
            annotations: json!({}),
        }
    }
}

/// An OCI image layout tarball with one manifest named `name` (a full
/// reference such as `docker.io/library/app:latest`).
pub fn oci_layout(
    name: &str,
    config_media_type: &str,
    config: &Value,
    layers: &[Layer],
    manifest_annotations: Value,
) -> Vec<u8> {
    let config_bytes = serde_json::to_vec(config).unwrap();
    let mut blobs: Vec<Vec<u8>> = vec![config_bytes.clone()];
    let layer_descs: Vec<Value> = layers
        .iter()
        .map(|l| {
            blobs.push(l.data.clone());
            let mut d = json!({
                "mediaType": l.media_type,
                "digest": sha(&l.data),
                "size": l.data.len(),
            });
            if l.annotations.as_object().is_some_and(|o| !o.is_empty()) {
                d["annotations"] = l.annotations.clone();
            }
            d
        })
        .collect();
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": config_media_type, "digest": sha(&config_bytes), "size": config_bytes.len()},
        "layers": layer_descs,
    });
    if manifest_annotations
        .as_object()
        .is_some_and(|o| !o.is_empty())
    {
        manifest["annotations"] = manifest_annotations;
    }
    let manifest_bytes = serde_json::to_vec(&manifest).unwrap();
    blobs.push(manifest_bytes.clone());
    let tag = name.rsplit_once(':').map(|x| x.1).unwrap_or("latest");
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": sha(&manifest_bytes),
            "size": manifest_bytes.len(),
            "annotations": {
                "io.containerd.image.name": name,
                "org.opencontainers.image.ref.name": tag,
            }
        }]
    });
    let mut b = tar::Builder::new(Vec::new());
    append(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    append(&mut b, "index.json", &serde_json::to_vec(&index).unwrap());
    for blob in &blobs {
        let d = sha(blob);
        append(
            &mut b,
            &format!("blobs/sha256/{}", d.strip_prefix("sha256:").unwrap()),
            blob,
        );
    }
    b.into_inner().unwrap()
}

/// An old-style `docker save` archive: `manifest.json`, `<hex>.json`
/// config, `<id>/layer.tar` layers.
pub fn docker_archive(tag: &str, config: &Value, layers: &[Vec<u8>]) -> Vec<u8> {
    let mut config = config.clone();
    config["rootfs"] = json!({
        "type": "layers",
        "diff_ids": layers.iter().map(|l| sha(l)).collect::<Vec<_>>(),
    });
    let config_bytes = serde_json::to_vec(&config).unwrap();
    let config_hex = sha(&config_bytes)
        .strip_prefix("sha256:")
        .unwrap()
        .to_string();
    let mut b = tar::Builder::new(Vec::new());
    let mut layer_paths = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let id = format!("{:064x}", i + 1);
        let p = format!("{id}/layer.tar");
        append(&mut b, &p, l);
        append(&mut b, &format!("{id}/VERSION"), b"1.0");
        layer_paths.push(p);
    }
    append(&mut b, &format!("{config_hex}.json"), &config_bytes);
    let manifest = json!([{
        "Config": format!("{config_hex}.json"),
        "RepoTags": [tag],
        "Layers": layer_paths,
    }]);
    append(
        &mut b,
        "manifest.json",
        &serde_json::to_vec(&manifest).unwrap(),
    );
    b.into_inner().unwrap()
}
