//! `docker pull`: manifest (through indexes, picking a platform), config,
//! then the layers, a few at once, each unpacked as soon as it is stored
//! when the image is native; the image is recorded last.

use super::fetch::download;
use super::progress::Progress;
use super::session::{Fetched, Session};
use super::{AuthConfig, PARALLEL_TRANSFERS, Registry, RegistryResult};
use crate::error::{Error, ErrorKind};
use crate::image::layers::LayerStore;
use crate::image::manifest::{
    self, Descriptor, DocKind, Index, MAX_CONFIG_SIZE, MAX_MANIFEST_SIZE, Manifest, Platform,
};
use crate::image::{ImageConfigFile, ImageKind, ImageRecord, Reference, kind};
use crate::util::Digest;
use futures_util::{TryStreamExt, stream};
use oci_client::RegistryOperation;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How deep indexes may nest.
const MAX_INDEX_DEPTH: usize = 4;
/// How often a layer's byte count is reported.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

#[derive(Debug, Clone)]
pub struct PullOptions {
    pub reference: Reference,
    /// `--platform`; the host's (or a Wasm one) when `None`.
    pub platform: Option<Platform>,
    pub auth: AuthConfig,
}

#[derive(Debug, Clone)]
pub struct PullOutcome {
    pub record: ImageRecord,
    /// What was pulled, with its tag (or digest).
    pub reference: Reference,
    /// The digest the reference resolved to: the index's for a
    /// multi-platform image, as `RepoDigests` shows.
    pub digest: Digest,
    /// False when the tag already named this very image.
    pub updated: bool,
}

impl Registry {
    /// Pulls an image, reporting progress as `docker pull` does. Errors
    /// before anything is reported (an unknown image, refused credentials)
    /// leave nothing behind; later ones leave only verified blobs.
    pub async fn pull(
        self: &Arc<Self>,
        opts: PullOptions,
        progress: &Progress,
    ) -> RegistryResult<PullOutcome> {
        let reference = opts.reference.clone().with_default_tag();
        let what = match (reference.digest(), reference.tag()) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.to_string(),
            (None, None) => unreachable!("with_default_tag"),
        };
        let started = Instant::now();
        let session = Arc::new(
            self.session(&reference, &opts.auth, RegistryOperation::Pull)
                .await?,
        );
        let t_session = started.elapsed();
        let top = session.manifest(&what).await?;
        progress.status_id(&what, format!("Pulling from {}", reference.path()));
        let top_digest = top.digest.clone();
        let (mbytes, mdigest, from_index) = self
            .choose_manifest(&session, top, opts.platform.as_ref())
            .await?;
        let manifest =
            Manifest::parse(&mbytes).map_err(|e| e.context(format!("manifest {mdigest}")))?;
        let max_layer = self
            .images
            .layer_store()
            .map(|s| s.limits().max_bytes)
            .filter(|&m| m > 0);
        check_descriptors(&manifest, max_layer)?;

        // The config first: it says whether the layers are to be unpacked.
        let cfg = &manifest.config;
        self.fetch_blob(&session, &cfg.digest, cfg.size as u64, |_| {})
            .await
            .map_err(|e| e.context(format!("image config {}", cfg.digest)))?;
        let config = {
            let bytes = self.blobs().read_limited(&cfg.digest, MAX_CONFIG_SIZE)?;
            ImageConfigFile::parse(&bytes)?
        };
        if let Some(want) = &opts.platform
            && !from_index
            && !config.os.is_empty()
        {
            let have = Platform {
                os: config.os.clone(),
                architecture: config.architecture.clone(),
                variant: config.variant.clone(),
                os_version: None,
            };
            if !have.satisfies(want) {
                return Err(Error::not_found(format!(
                    "image with reference {reference} was found but does not match the specified \
                     platform: wanted {}, actual: {}",
                    want.name(),
                    have.name()
                )));
            }
        }
        let unpack = match kind::select(&manifest, &config) {
            ImageKind::Native => self.images.layer_store().cloned(),
            ImageKind::Wasm { .. } => None,
        };

        let tags: Vec<Reference> = if reference.digest().is_none() {
            vec![reference.clone()]
        } else {
            Vec::new()
        };
        let repo_digest = format!("{}@{}", reference.familiar_name(), top_digest);
        let before = self.images.resolve(&reference.to_string()).ok();
        let mut attempt = 0;
        let t_config = started.elapsed();
        let mut t_layers;
        let record = loop {
            attempt += 1;
            if attempt > 1 {
                self.fetch_blob(&session, &cfg.digest, cfg.size as u64, |_| {})
                    .await?;
            }
            self.fetch_layers(&session, &manifest.layers, unpack.clone(), progress)
                .await?;
            t_layers = started.elapsed();
            // The manifest last: the image is recorded only now, with
            // everything it needs stored and checked.
            let images = self.images.clone();
            let (mb, md, tags, rd) = (
                mbytes.clone(),
                mdigest.clone(),
                tags.clone(),
                repo_digest.clone(),
            );
            let result = tokio::task::spawn_blocking(move || {
                images.blobs().put(&mb, Some(&md))?;
                images.commit(&md, &tags, Some(rd))
            })
            .await
            .map_err(|e| Error::internal(format!("recording the image: {e}")))?;
            match result {
                Ok(r) => break r,
                // A blob went (the removal of an image that shared it swept
                // it meanwhile): fetch what is missing once more.
                Err(e)
                    if attempt == 1
                        && (e.message().contains("missing from the content store")
                            || e.message().contains("is not in the content store")) =>
                {
                    tracing::info!(error = %e, "a blob of the image went during the pull; fetching it again");
                    continue;
                }
                Err(e) => return Err(e),
            }
        };
        let updated = !before.is_some_and(|b| b.id == record.id && b.manifest.digest == mdigest);
        tracing::debug!(
            image = %reference,
            session_ms = t_session.as_millis() as u64,
            manifests_and_config_ms = (t_config - t_session).as_millis() as u64,
            layers_ms = (t_layers - t_config).as_millis() as u64,
            commit_ms = (started.elapsed() - t_layers).as_millis() as u64,
            "pulled"
        );
        progress.status(format!("Digest: {top_digest}"));
        progress.status(if updated {
            format!("Status: Downloaded newer image for {reference}")
        } else {
            format!("Status: Image is up to date for {reference}")
        });
        Ok(PullOutcome {
            record,
            reference,
            digest: top_digest,
            updated,
        })
    }

    /// Follows indexes down to one image manifest, choosing a platform at
    /// each. Says whether an index was involved.
    async fn choose_manifest(
        &self,
        session: &Session,
        top: Fetched,
        want: Option<&Platform>,
    ) -> RegistryResult<(bytes::Bytes, Digest, bool)> {
        let mut cur = top;
        let mut from_index = false;
        // What pointed to the current document: the index and the media
        // type of its descriptor (none for the tag or digest asked for).
        let mut pointed: Option<(String, String)> = None;
        for _ in 0..=MAX_INDEX_DEPTH {
            let mut declared: Vec<(&str, &str)> = Vec::new();
            if let Some(ct) = cur.content_type.as_deref() {
                declared.push(("the registry's Content-Type", ct));
            }
            if let Some((by, mt)) = &pointed {
                declared.push((by.as_str(), mt.as_str()));
            }
            if manifest::classify(&cur.bytes, &cur.digest, &declared)? == DocKind::Manifest {
                return Ok((cur.bytes, cur.digest, from_index));
            }
            let index =
                Index::parse(&cur.bytes).map_err(|e| e.context(format!("index {}", cur.digest)))?;
            let candidates: Vec<&Descriptor> = index
                .manifests
                .iter()
                .filter(|d| !d.is_attestation())
                .collect();
            let chosen = manifest::choose_platform(&candidates, want).ok_or_else(|| {
                let asked = match want {
                    Some(p) => p.name(),
                    None => format!("{} (or a Wasm platform)", Platform::host().name()),
                };
                Error::not_found(format!(
                    "no matching manifest for {asked} in the manifest list entries; the image has: {}",
                    manifest::platform_names(&candidates)
                ))
            })?;
            if chosen.size < 0 || chosen.size as u64 > MAX_MANIFEST_SIZE {
                return Err(Error::invalid(format!(
                    "index {} lists manifest {} with size {}, outside 0..={MAX_MANIFEST_SIZE}",
                    cur.digest, chosen.digest, chosen.size
                )));
            }
            let child = session.manifest(&chosen.digest.to_string()).await?;
            if child.bytes.len() as u64 != chosen.size as u64 {
                return Err(Error::invalid(format!(
                    "manifest {} is {} bytes but index {} says {}",
                    chosen.digest,
                    child.bytes.len(),
                    cur.digest,
                    chosen.size
                )));
            }
            pointed = Some((
                format!("the descriptor in index {}", cur.digest),
                chosen.media_type.clone(),
            ));
            cur = child;
            from_index = true;
        }
        Err(Error::invalid(format!(
            "indexes nest more than {MAX_INDEX_DEPTH} deep"
        )))
    }

    /// Downloads the layers not yet stored, [`PARALLEL_TRANSFERS`] at once,
    /// unpacking each as soon as it is stored when `unpack` is given.
    async fn fetch_layers(
        self: &Arc<Self>,
        session: &Arc<Session>,
        layers: &[Descriptor],
        unpack: Option<Arc<LayerStore>>,
        progress: &Progress,
    ) -> RegistryResult<()> {
        let mut seen = HashSet::new();
        let layers: Vec<&Descriptor> = layers
            .iter()
            .filter(|l| seen.insert(l.digest.clone()))
            .collect();
        let mut missing = Vec::new();
        for l in layers {
            if self.blobs().size(&l.digest) == Some(l.size as u64) {
                progress.layer(l.digest.short(), "Already exists");
            } else {
                progress.layer(l.digest.short(), "Pulling fs layer");
                missing.push(l.clone());
            }
        }
        for l in missing.iter().skip(PARALLEL_TRANSFERS) {
            progress.layer(l.digest.short(), "Waiting");
        }
        // Downloads take a slot; unpacking does not, so the next download
        // starts while a finished layer is unpacked.
        let slots = tokio::sync::Semaphore::new(PARALLEL_TRANSFERS);
        missing
            .into_iter()
            .map(|l| self.pull_layer(session, l, unpack.clone(), &slots, progress))
            .collect::<stream::FuturesUnordered<_>>()
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    async fn pull_layer(
        &self,
        session: &Arc<Session>,
        layer: Descriptor,
        unpack: Option<Arc<LayerStore>>,
        slots: &tokio::sync::Semaphore,
        progress: &Progress,
    ) -> RegistryResult<()> {
        let id = layer.digest.short().to_string();
        let size = layer.size as u64;
        let slot = slots
            .acquire()
            .await
            .map_err(|_| Error::internal("download slots closed"))?;
        let started = Instant::now();
        self.fetch_blob(session, &layer.digest, size, |n| {
            progress.bytes(&id, "Downloading", n, size)
        })
        .await?;
        drop(slot);
        let downloaded = started.elapsed();
        progress.layer(&id, "Verifying Checksum");
        progress.layer(&id, "Download complete");
        if let Some(store) = unpack {
            progress.layer(&id, "Extracting");
            let blobs = self.blobs().clone();
            let l = layer.clone();
            // ensure's errors name the layer.
            tokio::task::spawn_blocking(move || store.ensure(&blobs, &l))
                .await
                .map_err(|e| Error::internal(format!("unpacking layer {}: {e}", layer.digest)))??;
        }
        tracing::debug!(
            layer = %layer.digest,
            download_ms = downloaded.as_millis() as u64,
            unpack_ms = (started.elapsed() - downloaded).as_millis() as u64,
            "layer stored"
        );
        progress.layer(&id, "Pull complete");
        Ok(())
    }

    /// Makes sure the blob `digest` of `size` bytes is stored: present
    /// already, or downloaded (joining a download in flight for it).
    /// `on_bytes` hears of the bytes received, a few times a second.
    pub(crate) async fn fetch_blob(
        &self,
        session: &Arc<Session>,
        digest: &Digest,
        size: u64,
        on_bytes: impl Fn(u64),
    ) -> RegistryResult<()> {
        for attempt in 0..2 {
            if self.blobs().size(digest) == Some(size) {
                return Ok(());
            }
            let joined = {
                let (s, d, b) = (session.clone(), digest.clone(), self.blobs().clone());
                let blobs = self.blobs().clone();
                self.inflight.join_or_start(
                    digest,
                    attempt > 0,
                    || blobs.size(digest) == Some(size),
                    move |p| download(s, d, size, b, p),
                )
            };
            let Some((fetch, started)) = joined else {
                return Ok(());
            };
            let mut bytes = fetch.bytes();
            let mut last: Option<Instant> = None;
            let result = loop {
                tokio::select! {
                    biased;
                    r = fetch.wait() => break r,
                    c = bytes.changed() => match c {
                        Ok(()) => {
                            let n = *bytes.borrow_and_update();
                            if last.is_none_or(|t| t.elapsed() >= PROGRESS_EVERY) {
                                on_bytes(n);
                                last = Some(Instant::now());
                            }
                        }
                        Err(_) => break fetch.wait().await,
                    },
                }
            };
            match result {
                Ok(()) => {
                    on_bytes(size);
                    return Ok(());
                }
                // Another pull's download failed (another registry, other
                // credentials): try with this one's.
                Err(e) if !started && attempt == 0 => {
                    tracing::debug!(blob = %digest, error = %e, "shared download failed; retrying");
                }
                Err(e) => return Err(e),
            }
        }
        unreachable!("the second attempt returns")
    }
}

/// Sizes a manifest may claim: a config of at most [`MAX_CONFIG_SIZE`],
/// and layers no larger than a layer may unpack to (`max_layer`, berthd's
/// `--max-layer-size`: no compression makes data much larger), so that no
/// download of a layer that would be refused anyway starts.
fn check_descriptors(m: &Manifest, max_layer: Option<u64>) -> RegistryResult<()> {
    if m.config.size < 0 || m.config.size as u64 > MAX_CONFIG_SIZE {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            format!(
                "the image config {} has size {}, outside 0..={MAX_CONFIG_SIZE}",
                m.config.digest, m.config.size
            ),
        ));
    }
    if let Some(l) = m.layers.iter().find(|l| l.size < 0) {
        return Err(Error::invalid(format!(
            "layer {} has a negative size",
            l.digest
        )));
    }
    if let Some(max) = max_layer
        && let Some(l) = m.layers.iter().find(|l| l.size as u64 > max)
    {
        return Err(Error::invalid(format!(
            "layer {} is {} bytes, more than berthd's limit of {max} bytes for a layer \
             (raise it with berthd --max-layer-size)",
            l.digest, l.size
        )));
    }
    Ok(())
}
