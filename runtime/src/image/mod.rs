//! Images: records of the manifests held in the content store, the tags that
//! name them, and the executor each one selects.
//!
//! An image is identified, as in Docker, by the digest of its config blob.
//! Its record points at the manifest it was stored with; the manifest, config
//! and layers live in the blob store. Records and tags change in one
//! transaction of the metadata database. This module does not know about
//! containers: callers pass in what uses an image when they remove one.

pub mod archive;
pub mod changes;
pub mod compress;
pub mod config;
pub mod filter;
pub mod import;
pub mod kind;
pub mod layers;
pub mod manifest;
pub mod reference;
pub mod tarwrite;
pub mod unpack;
pub mod wasm;

use crate::error::{Error, Result};
use crate::store::db::{IMAGES, TAGS};
use crate::store::{BlobStore, Db, Durability};
use crate::util::{self, Digest};
use berth_api_types::image as wire;
pub use config::ImageConfigFile;
pub use kind::{ExecutorKind, ImageKind, WasmForm};
pub use manifest::{Descriptor, Manifest};
pub use reference::Reference;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

/// What berth keeps about one image.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ImageRecord {
    /// The config digest: Docker's image ID.
    pub id: Digest,
    /// The manifest this image was stored from.
    pub manifest: Descriptor,
    pub kind: ImageKind,
    pub os: String,
    pub architecture: String,
    /// `created` from the config, or when berth stored it.
    pub created: String,
    /// The size Docker reports: a Linux image's layers unpacked (their
    /// files' bytes); a Wasm image's config and layers as stored.
    pub size: u64,
    /// `name@sha256:...` of the manifest, for images that came from or went
    /// to a registry.
    #[serde(default)]
    pub repo_digests: Vec<String>,
    pub last_tag_time: String,
    /// The image of the container this one was committed from (Docker's
    /// `Parent`): local metadata, never part of the image itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<Digest>,
}

/// What a container needs from its image at create.
#[derive(Debug, Clone)]
pub struct ImageHandle {
    pub record: ImageRecord,
    pub config: ImageConfigFile,
    pub manifest: Manifest,
}

#[derive(Default)]
struct State {
    records: HashMap<Digest, ImageRecord>,
    /// Familiar reference (`hello:latest`) to image ID.
    tags: BTreeMap<String, Digest>,
}

pub struct Images {
    blobs: Arc<BlobStore>,
    db: Arc<Db>,
    /// Where native images' layers are unpacked when they are stored.
    layers: Option<Arc<layers::LayerStore>>,
    state: RwLock<State>,
    /// Parsed manifests and configs by manifest digest: content-addressed,
    /// so never stale. A create reads them without touching the disk.
    parsed: Mutex<HashMap<Digest, Arc<(Manifest, ImageConfigFile)>>>,
}

/// Parsed images kept in memory at most (the cache starts over past it).
const PARSED_CACHE: usize = 512;

/// How an image's name was given, for resolution.
enum Lookup {
    Id(Digest),
    Ref(Reference),
    /// Not a valid reference but could be an ID prefix.
    Prefix(String),
}

impl Images {
    pub fn open(blobs: Arc<BlobStore>, db: Arc<Db>) -> Result<Images> {
        let (records, bad) = db.load_all::<ImageRecord>(IMAGES)?;
        for (k, e) in bad {
            tracing::error!(image = %k, error = %e, "skipping unreadable image record");
        }
        let (tags, bad) = db.load_all::<Digest>(TAGS)?;
        for (k, e) in bad {
            tracing::error!(tag = %k, error = %e, "skipping unreadable tag");
        }
        let mut state = State::default();
        for (_, r) in records {
            state.records.insert(r.id.clone(), r);
        }
        for (t, id) in tags {
            if state.records.contains_key(&id) {
                state.tags.insert(t, id);
            } else {
                tracing::warn!(tag = %t, image = %id, "tag points at a missing image; ignoring");
            }
        }
        Ok(Images {
            blobs,
            db,
            layers: None,
            state: RwLock::new(state),
            parsed: Mutex::new(HashMap::new()),
        })
    }

    /// Unpack native images' layers into `store` as they are stored, so
    /// that a container starts without unpacking and a hostile layer is
    /// refused before the image exists.
    pub fn with_layer_store(mut self, store: Arc<layers::LayerStore>) -> Images {
        self.layers = Some(store);
        self
    }

    pub fn layer_store(&self) -> Option<&Arc<layers::LayerStore>> {
        self.layers.as_ref()
    }

    pub fn blobs(&self) -> &Arc<BlobStore> {
        &self.blobs
    }

    /// Records an image whose manifest, config and layers are already in the
    /// blob store, and points `tags` at it. Everything is checked first; on
    /// error nothing changes.
    pub fn commit(
        &self,
        manifest_digest: &Digest,
        tags: &[Reference],
        repo_digest: Option<String>,
    ) -> Result<ImageRecord> {
        let bytes = self
            .blobs
            .read_limited(manifest_digest, manifest::MAX_MANIFEST_SIZE)?;
        let manifest = Manifest::parse(&bytes)?;
        let config_bytes = self
            .blobs
            .read_limited(&manifest.config.digest, manifest::MAX_CONFIG_SIZE)
            .map_err(|e| e.context("image config"))?;
        let config = ImageConfigFile::parse(&config_bytes)?;
        let mut size = config_bytes.len() as u64;
        for layer in &manifest.layers {
            let have = self.blobs.size(&layer.digest).ok_or_else(|| {
                Error::invalid(format!(
                    "layer {} of the image is missing from the content store",
                    layer.digest
                ))
            })?;
            if layer.size >= 0 && have != layer.size as u64 {
                return Err(Error::invalid(format!(
                    "layer {} is {have} bytes but the manifest says {}",
                    layer.digest, layer.size
                )));
            }
            size += have;
        }
        let kind = kind::select(&manifest, &config);
        if kind == ImageKind::Native
            && let Some(store) = &self.layers
        {
            // Docker's size of a Linux image: its layers unpacked.
            size = 0;
            for layer in &manifest.layers {
                // Its errors name the layer.
                store.ensure(&self.blobs, layer)?;
                size += store
                    .unpacked_size(&layer.digest)
                    .or_else(|| self.blobs.size(&layer.digest))
                    .unwrap_or(0);
            }
        }
        let now = util::now_rfc3339();
        let id = manifest.config.digest.clone();
        let tags: Vec<Reference> = tags.iter().map(|t| t.clone().with_default_tag()).collect();
        for t in &tags {
            if t.digest().is_some() {
                return Err(Error::invalid(format!(
                    "cannot tag with a digest reference {t}"
                )));
            }
        }

        let mut state = self.state.write().unwrap();
        let mut record = match state.records.get(&id) {
            Some(old) => {
                let mut r = old.clone();
                // A newer manifest for the same config (say, another
                // compression) replaces the old one, and decides the kind.
                r.kind = kind.clone();
                r.size = size;
                r.manifest = Descriptor::new(
                    manifest.effective_media_type(),
                    manifest_digest.clone(),
                    bytes.len() as u64,
                );
                r
            }
            None => ImageRecord {
                id: id.clone(),
                manifest: Descriptor::new(
                    manifest.effective_media_type(),
                    manifest_digest.clone(),
                    bytes.len() as u64,
                ),
                kind,
                os: config.os.clone(),
                architecture: config.architecture.clone(),
                created: config
                    .created
                    .clone()
                    .filter(|c| util::parse_rfc3339(c).is_some())
                    .unwrap_or_else(|| now.clone()),
                size,
                repo_digests: Vec::new(),
                last_tag_time: String::new(),
                parent: None,
            },
        };
        if let Some(rd) = repo_digest
            && !record.repo_digests.contains(&rd)
        {
            record.repo_digests.push(rd);
        }
        if !tags.is_empty() {
            record.last_tag_time = now;
        }
        self.db.write(Durability::Immediate, |tx| {
            tx.put(IMAGES, &id.to_string(), &record)?;
            for t in &tags {
                tx.put(TAGS, &t.to_string(), &id)?;
            }
            Ok(())
        })?;
        state.records.insert(id.clone(), record.clone());
        for t in tags {
            state.tags.insert(t.to_string(), id.clone());
        }
        Ok(record)
    }

    fn lookup(name: &str) -> Lookup {
        if let Ok(d) = name.parse::<Digest>() {
            return Lookup::Id(d);
        }
        match Reference::parse(name) {
            Ok(r) => Lookup::Ref(r.with_default_tag()),
            Err(_) => Lookup::Prefix(name.to_string()),
        }
    }

    /// Finds an image by reference, full ID, or unique ID prefix.
    pub fn resolve(&self, name: &str) -> Result<ImageRecord> {
        let state = self.state.read().unwrap();
        Self::resolve_in(&state, name).cloned()
    }

    fn resolve_in<'a>(state: &'a State, name: &str) -> Result<&'a ImageRecord> {
        let not_found = || Error::not_found(format!("No such image: {name}"));
        match Self::lookup(name) {
            Lookup::Id(d) => state.records.get(&d).ok_or_else(not_found),
            Lookup::Ref(r) => {
                if let Some(d) = r.digest() {
                    // name@digest: the manifest digest (or, leniently, the ID).
                    let want = format!("{}@{}", r.familiar_name(), d);
                    return state
                        .records
                        .values()
                        .find(|rec| {
                            rec.repo_digests.contains(&want)
                                || (rec.manifest.digest == *d
                                    && state.tags.iter().any(|(t, id)| {
                                        *id == rec.id
                                            && t.rsplit_once(':').map(|x| x.0)
                                                == Some(r.familiar_name().as_str())
                                    }))
                        })
                        .ok_or_else(not_found);
                }
                if let Some(id) = state.tags.get(&r.to_string()) {
                    return state.records.get(id).ok_or_else(not_found);
                }
                // Could still be a short ID such as `0123abcd`.
                if r.tag() == Some(reference::DEFAULT_TAG)
                    && !name.contains(':')
                    && name.len() >= 4
                    && name.bytes().all(|b| b.is_ascii_hexdigit())
                {
                    return Self::by_prefix(state, name).ok_or_else(not_found)?;
                }
                Err(not_found())
            }
            Lookup::Prefix(p) => {
                let p = p.strip_prefix("sha256:").unwrap_or(&p).to_string();
                if p.len() >= 4 && p.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Self::by_prefix(state, &p).ok_or_else(not_found)?;
                }
                Err(Error::invalid(format!(
                    "invalid reference format: {name:?} is neither an image name nor an image ID"
                )))
            }
        }
    }

    fn by_prefix<'a>(state: &'a State, prefix: &str) -> Option<Result<&'a ImageRecord>> {
        let mut hits = state
            .records
            .values()
            .filter(|r| r.id.hex().starts_with(prefix));
        let first = hits.next()?;
        if hits.next().is_some() {
            return Some(Err(Error::invalid(format!(
                "image ID prefix {prefix} is ambiguous; give more digits"
            ))));
        }
        Some(Ok(first))
    }

    /// Opens an image's manifest and config for a container to be created.
    pub fn handle(&self, record: &ImageRecord) -> Result<ImageHandle> {
        let key = &record.manifest.digest;
        let cached = self.parsed.lock().unwrap().get(key).cloned();
        let parsed = match cached {
            Some(p) => p,
            None => {
                let manifest =
                    Manifest::parse(&self.blobs.read_limited(key, manifest::MAX_MANIFEST_SIZE)?)?;
                let config = ImageConfigFile::parse(
                    &self
                        .blobs
                        .read_limited(&manifest.config.digest, manifest::MAX_CONFIG_SIZE)?,
                )?;
                let p = Arc::new((manifest, config));
                let mut cache = self.parsed.lock().unwrap();
                if cache.len() >= PARSED_CACHE {
                    cache.clear();
                }
                cache.insert(key.clone(), p.clone());
                p
            }
        };
        Ok(ImageHandle {
            record: record.clone(),
            config: parsed.1.clone(),
            manifest: parsed.0.clone(),
        })
    }

    /// Tags pointing at `id`, sorted.
    pub fn tags_of(&self, id: &Digest) -> Vec<String> {
        let state = self.state.read().unwrap();
        Self::tags_in(&state, id)
    }

    fn tags_in(state: &State, id: &Digest) -> Vec<String> {
        state
            .tags
            .iter()
            .filter(|(_, v)| *v == id)
            .map(|(k, _)| k.clone())
            .collect()
    }

    pub fn list(&self) -> Vec<(ImageRecord, Vec<String>)> {
        let state = self.state.read().unwrap();
        let mut out: Vec<_> = state
            .records
            .values()
            .map(|r| (r.clone(), Self::tags_in(&state, &r.id)))
            .collect();
        out.sort_by(|a, b| b.0.created.cmp(&a.0.created).then(a.0.id.cmp(&b.0.id)));
        out
    }

    pub fn count(&self) -> usize {
        self.state.read().unwrap().records.len()
    }

    /// `docker tag SOURCE TARGET`.
    pub fn tag(&self, source: &str, target: &Reference) -> Result<()> {
        let target = target.clone().with_default_tag();
        if target.digest().is_some() {
            return Err(Error::invalid(format!(
                "refusing to create a tag with a digest reference: {target}"
            )));
        }
        let mut state = self.state.write().unwrap();
        let id = Self::resolve_in(&state, source)?.id.clone();
        let mut record = state.records[&id].clone();
        record.last_tag_time = util::now_rfc3339();
        self.db.write(Durability::Immediate, |tx| {
            tx.put(TAGS, &target.to_string(), &id)?;
            tx.put(IMAGES, &id.to_string(), &record)
        })?;
        state.tags.insert(target.to_string(), id.clone());
        state.records.insert(id, record);
        Ok(())
    }

    /// Records that `id` was committed from a container of `parent`.
    pub fn set_parent(&self, id: &Digest, parent: &Digest) -> Result<ImageRecord> {
        let mut state = self.state.write().unwrap();
        let mut record = state
            .records
            .get(id)
            .cloned()
            .ok_or_else(|| Error::not_found(format!("No such image: {id}")))?;
        if id == parent {
            return Ok(record);
        }
        record.parent = Some(parent.clone());
        self.db.write(Durability::Immediate, |tx| {
            tx.put(IMAGES, &id.to_string(), &record)
        })?;
        state.records.insert(id.clone(), record.clone());
        Ok(record)
    }

    /// `Parent` as Docker shows it: the parent's ID while it exists.
    fn parent_of(&self, record: &ImageRecord) -> String {
        match &record.parent {
            Some(p) if self.state.read().unwrap().records.contains_key(p) => p.to_string(),
            _ => String::new(),
        }
    }

    /// `docker rmi`. `users` says which containers use an image:
    /// `(container short id, running)`.
    pub fn remove(
        &self,
        name: &str,
        force: bool,
        users: impl Fn(&Digest) -> Vec<(String, bool)>,
    ) -> Result<Vec<wire::DeleteItem>> {
        let mut state = self.state.write().unwrap();
        let record = Self::resolve_in(&state, name)?.clone();
        let id = record.id.clone();
        let tags = Self::tags_in(&state, &id);
        let by_tag = match Self::lookup(name) {
            Lookup::Ref(r) if r.digest().is_none() => Some(r.to_string()),
            _ => None,
        }
        .filter(|t| state.tags.get(t) == Some(&id));

        // Removing one of several tags only untags.
        if let Some(t) = &by_tag
            && tags.len() > 1
        {
            self.db
                .write(Durability::Immediate, |tx| tx.delete(TAGS, t))?;
            state.tags.remove(t);
            return Ok(vec![wire::DeleteItem {
                untagged: Some(t.clone()),
                deleted: None,
            }]);
        }
        if by_tag.is_none() && tags.len() > 1 && !force {
            return Err(Error::conflict(format!(
                "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                id.short()
            )));
        }
        let using = users(&id);
        if let Some((c, _)) = using.iter().find(|(_, running)| *running) {
            return Err(Error::conflict(format!(
                "conflict: unable to delete {} (cannot be forced) - image is being used by running container {c}",
                id.short()
            )));
        }
        if let Some((c, _)) = using.first()
            && !force
        {
            return Err(Error::conflict(format!(
                "conflict: unable to remove repository reference {name:?} (must force) - container {c} is using its referenced image {}",
                id.short()
            )));
        }

        let mut items: Vec<wire::DeleteItem> = tags
            .iter()
            .map(|t| wire::DeleteItem {
                untagged: Some(t.clone()),
                deleted: None,
            })
            .collect();
        for rd in &record.repo_digests {
            items.push(wire::DeleteItem {
                untagged: Some(rd.clone()),
                deleted: None,
            });
        }
        self.db.write(Durability::Immediate, |tx| {
            for t in &tags {
                tx.delete(TAGS, t)?;
            }
            tx.delete(IMAGES, &id.to_string())
        })?;
        for t in &tags {
            state.tags.remove(t);
        }
        state.records.remove(&id);
        items.push(wire::DeleteItem {
            untagged: None,
            deleted: Some(id.to_string()),
        });
        // Blobs no other image needs go too. Containers created from this
        // image keep what they need outside the blob store.
        let keep = self.referenced_blobs(&state);
        drop(state);
        if let Err(e) = self.sweep_blobs(&keep) {
            tracing::warn!(error = %e, "could not remove unused blobs");
        }
        Ok(items)
    }

    /// Every blob that some image record refers to.
    fn referenced_blobs(&self, state: &State) -> HashSet<Digest> {
        let mut keep = HashSet::new();
        for r in state.records.values() {
            keep.insert(r.manifest.digest.clone());
            keep.insert(r.id.clone());
            if let Ok(bytes) = self.blobs.read(&r.manifest.digest)
                && let Ok(m) = Manifest::parse(&bytes)
            {
                keep.extend(m.layers.into_iter().map(|l| l.digest));
            }
        }
        keep
    }

    fn sweep_blobs(&self, keep: &HashSet<Digest>) -> Result<()> {
        for d in self.blobs.list()? {
            if !keep.contains(&d) {
                self.blobs.delete(&d)?;
            }
        }
        Ok(())
    }

    /// Removes blobs no image refers to (left by an interrupted load or
    /// pull). Run at daemon start, before anything is being written.
    pub fn collect_garbage(&self) -> Result<usize> {
        let state = self.state.read().unwrap();
        let keep = self.referenced_blobs(&state);
        let mut n = 0;
        for d in self.blobs.list()? {
            if !keep.contains(&d) {
                self.blobs.delete(&d)?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// `GET /images/json` entry.
    pub fn summary(
        &self,
        record: &ImageRecord,
        tags: Vec<String>,
        containers: i64,
    ) -> wire::Summary {
        let labels = self
            .handle(record)
            .ok()
            .and_then(|h| h.config.config.map(|c| c.labels))
            .unwrap_or_default();
        wire::Summary {
            id: record.id.to_string(),
            parent_id: self.parent_of(record),
            repo_tags: tags,
            repo_digests: record.repo_digests.clone(),
            created: util::parse_rfc3339(&record.created)
                .map(|t| t.timestamp())
                .unwrap_or(0),
            size: record.size as i64,
            shared_size: -1,
            labels,
            containers,
            executor: record.kind.executor().as_str().to_string(),
        }
    }

    /// `GET /images/{name}/json`.
    pub fn inspect(&self, name: &str) -> Result<wire::Inspect> {
        let record = self.resolve(name)?;
        let h = self.handle(&record)?;
        let tags = self.tags_of(&record.id);
        let diff_ids = h
            .config
            .rootfs
            .as_ref()
            .map(|r| r.diff_ids.clone())
            .unwrap_or_default();
        Ok(wire::Inspect {
            id: record.id.to_string(),
            repo_tags: tags,
            repo_digests: record.repo_digests.clone(),
            parent: self.parent_of(&record),
            comment: h.config.comment.clone().unwrap_or_default(),
            created: record.created.clone(),
            docker_version: String::new(),
            author: h.config.author.clone().unwrap_or_default(),
            config: h.config.container_config(),
            architecture: record.architecture.clone(),
            variant: h.config.variant.clone().unwrap_or_default(),
            os: record.os.clone(),
            os_version: h.config.os_version.clone().unwrap_or_default(),
            size: record.size as i64,
            graph_driver: berth_api_types::container::GraphDriver {
                name: "berth".into(),
                data: Default::default(),
            },
            root_fs: wire::RootFs {
                kind: "layers".into(),
                layers: if diff_ids.is_empty() {
                    h.manifest
                        .layers
                        .iter()
                        .map(|l| l.digest.to_string())
                        .collect()
                } else {
                    diff_ids
                },
            },
            metadata: wire::ImageMetadata {
                last_tag_time: if record.last_tag_time.is_empty() {
                    util::ZERO_TIME.into()
                } else {
                    record.last_tag_time.clone()
                },
            },
            manifest_media_type: record.manifest.media_type.clone(),
            executor: record.kind.executor().as_str().to_string(),
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use manifest::media;

    pub fn fixture() -> (tempfile::TempDir, Images) {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Arc::new(BlobStore::open(dir.path()).unwrap());
        let db = Arc::new(Db::open(&dir.path().join("m.redb")).unwrap());
        let images = Images::open(blobs, db).unwrap();
        (dir, images)
    }

    /// Stores a one-layer Wasm artifact whose module is `module`.
    pub fn put_wasm(images: &Images, module: &[u8], tag: &str) -> ImageRecord {
        let layer = images.blobs.put(module, None).unwrap();
        let cfg = serde_json::json!({"architecture": "wasm", "os": "wasip1", "layerDigests": [layer.to_string()]});
        let cfg_bytes = serde_json::to_vec(&cfg).unwrap();
        let cfg_digest = images.blobs.put(&cfg_bytes, None).unwrap();
        let m = Manifest {
            schema_version: 2,
            media_type: Some(media::OCI_MANIFEST.into()),
            artifact_type: Some(media::WASM_CONFIG.into()),
            config: Descriptor::new(media::WASM_CONFIG, cfg_digest, cfg_bytes.len() as u64),
            layers: vec![Descriptor::new(
                media::WASM_LAYER,
                layer,
                module.len() as u64,
            )],
            annotations: Default::default(),
            subject: None,
        };
        let md = images
            .blobs
            .put(&serde_json::to_vec(&m).unwrap(), None)
            .unwrap();
        images
            .commit(&md, &[Reference::parse(tag).unwrap()], None)
            .unwrap()
    }

    #[test]
    fn commit_resolve_tag_and_remove() {
        let (_d, images) = fixture();
        let rec = put_wasm(&images, b"\0asm\x01\0\0\0", "hello");
        assert!(matches!(rec.kind, ImageKind::Wasm { .. }));
        assert_eq!(images.resolve("hello").unwrap().id, rec.id);
        assert_eq!(images.resolve("hello:latest").unwrap().id, rec.id);
        assert_eq!(images.resolve(&rec.id.to_string()).unwrap().id, rec.id);
        assert_eq!(images.resolve(&rec.id.hex()[..12]).unwrap().id, rec.id);
        assert_eq!(
            images.resolve("nope").unwrap_err().kind(),
            crate::error::ErrorKind::NotFound
        );

        images
            .tag("hello", &Reference::parse("other:v1").unwrap())
            .unwrap();
        assert_eq!(
            images.tags_of(&rec.id),
            vec!["hello:latest".to_string(), "other:v1".to_string()]
        );
        // By ID with two tags needs force.
        assert!(
            images
                .remove(&rec.id.to_string(), false, |_| vec![])
                .is_err()
        );
        // By tag only untags.
        let out = images.remove("other:v1", false, |_| vec![]).unwrap();
        assert_eq!(out[0].untagged.as_deref(), Some("other:v1"));
        // A container using it blocks removal without force.
        assert!(
            images
                .remove("hello", false, |_| vec![("abc".into(), false)])
                .is_err()
        );
        assert!(
            images
                .remove("hello", true, |_| vec![("abc".into(), true)])
                .is_err()
        );
        let out = images.remove("hello", false, |_| vec![]).unwrap();
        assert_eq!(out.last().unwrap().deleted, Some(rec.id.to_string()));
        assert!(images.blobs.list().unwrap().is_empty(), "blobs swept");
    }

    #[test]
    fn records_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let id = {
            let blobs = Arc::new(BlobStore::open(dir.path()).unwrap());
            let db = Arc::new(Db::open(&dir.path().join("m.redb")).unwrap());
            let images = Images::open(blobs, db).unwrap();
            put_wasm(&images, b"\0asm\x01\0\0\0", "keep:1").id
        };
        let blobs = Arc::new(BlobStore::open(dir.path()).unwrap());
        let db = Arc::new(Db::open(&dir.path().join("m.redb")).unwrap());
        let images = Images::open(blobs, db).unwrap();
        assert_eq!(images.resolve("keep:1").unwrap().id, id);
        assert_eq!(images.collect_garbage().unwrap(), 0);
    }
}
