//! `docker push`: the image's blobs the registry lacks, streamed from the
//! content store, then its manifest exactly as stored, so the digest a
//! registry serves is the one berth has (a Wasm image goes as the CNCF
//! Wasm OCI artifact it is stored as, `artifactType` and all).

use super::progress::Progress;
use super::session::{Session, map_oci};
use super::{AuthConfig, PARALLEL_TRANSFERS, Registry, RegistryResult};
use crate::error::{Error, Result};
use crate::image::manifest::{Descriptor, MAX_MANIFEST_SIZE, Manifest};
use crate::image::{ImageRecord, Reference};
use crate::util::Digest;
use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt, TryStreamExt, stream};
use oci_client::RegistryOperation;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::AsyncReadExt;

const CHUNK: usize = 256 << 10;

#[derive(Debug, Clone)]
pub struct PushOptions {
    /// `NAME[:TAG]` as given.
    pub name: String,
    /// The tag to push (`?tag=`); with neither this nor a tag in `name`,
    /// every tag of the repository is pushed, as Docker's API does.
    pub tag: Option<String>,
    pub auth: AuthConfig,
}

/// One tag pushed.
#[derive(Debug, Clone)]
pub struct PushedTag {
    pub reference: Reference,
    pub digest: Digest,
    pub size: u64,
}

impl Registry {
    /// The local images a push names, checked before anything is sent.
    pub fn push_targets(&self, opts: &PushOptions) -> Result<Vec<(Reference, ImageRecord)>> {
        let r = Reference::parse(&opts.name)?;
        if r.digest().is_some() {
            return Err(Error::invalid(format!(
                "cannot push a digest reference ({}); name a tag",
                opts.name
            )));
        }
        let r = match opts.tag.as_deref().filter(|t| !t.is_empty()) {
            Some(t) => r.with_tag(t)?,
            None => r,
        };
        if r.tag().is_some() {
            let record = self.images.resolve(&r.to_string()).map_err(|e| {
                if e.kind() == crate::ErrorKind::NotFound {
                    Error::not_found(format!("An image does not exist locally with the tag: {r}"))
                } else {
                    e
                }
            })?;
            return Ok(vec![(r, record)]);
        }
        let name = r.familiar_name();
        let mut out = Vec::new();
        for (record, tags) in self.images.list() {
            for t in tags {
                if let Ok(tr) = Reference::parse(&t)
                    && tr.familiar_name() == name
                {
                    out.push((tr, record.clone()));
                }
            }
        }
        if out.is_empty() {
            return Err(Error::not_found(format!(
                "An image does not exist locally with the tag: {name}"
            )));
        }
        out.sort_by_key(|(r, _)| r.to_string());
        Ok(out)
    }

    /// Pushes `targets` (all in one repository), reporting progress as
    /// `docker push` does, and records each pushed manifest's digest in the
    /// image's `RepoDigests`.
    pub async fn push(
        self: &Arc<Self>,
        targets: Vec<(Reference, ImageRecord)>,
        auth: &AuthConfig,
        progress: &Progress,
    ) -> RegistryResult<Vec<PushedTag>> {
        let Some((first, _)) = targets.first() else {
            return Ok(Vec::new());
        };
        progress.status(format!(
            "The push refers to repository [{}]",
            first.full_name()
        ));
        let session = Arc::new(self.session(first, auth, RegistryOperation::Push).await?);
        let mut pushed = Vec::new();
        for (reference, record) in targets {
            let tag = reference.tag().unwrap_or("latest").to_string();
            let digest = record.manifest.digest.clone();
            let bytes = Bytes::from(
                self.blobs()
                    .read_limited(&digest, MAX_MANIFEST_SIZE)
                    .map_err(|e| e.context("the image's manifest"))?,
            );
            let manifest = Manifest::parse(&bytes)?;
            let mut seen = HashSet::new();
            let layers: Vec<Descriptor> = manifest
                .layers
                .iter()
                .filter(|l| seen.insert(l.digest.clone()))
                .cloned()
                .collect();
            for l in &layers {
                progress.layer(l.digest.short(), "Preparing");
            }
            for l in layers.iter().skip(PARALLEL_TRANSFERS) {
                progress.layer(l.digest.short(), "Waiting");
            }
            stream::iter(layers)
                .map(|l| self.push_blob(&session, l, Some(progress)))
                .buffer_unordered(PARALLEL_TRANSFERS)
                .try_collect::<Vec<()>>()
                .await?;
            self.push_blob(&session, manifest.config.clone(), None)
                .await?;
            let oref = oci_client::Reference::with_tag(
                session.oref.registry().to_string(),
                session.oref.repository().to_string(),
                tag.clone(),
            );
            let content_type =
                reqwest::header::HeaderValue::from_str(manifest.effective_media_type())
                    .map_err(|e| Error::invalid(format!("the manifest's media type: {e}")))?;
            session
                .client
                .push_manifest_raw(&oref, bytes.clone(), content_type)
                .await
                .map_err(|e| map_oci(&session.host, e, None))?;
            let size = bytes.len() as u64;
            progress.status(format!("{tag}: digest: {digest} size: {size}"));
            progress
                .aux(serde_json::json!({"Tag": tag, "Digest": digest.to_string(), "Size": size}));
            let images = self.images.clone();
            let repo_digest = format!("{}@{}", reference.familiar_name(), digest);
            let md = digest.clone();
            match tokio::task::spawn_blocking(move || images.commit(&md, &[], Some(repo_digest)))
                .await
            {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "could not record the pushed digest"),
                Err(e) => tracing::warn!(error = %e, "could not record the pushed digest"),
            }
            pushed.push(PushedTag {
                reference,
                digest,
                size,
            });
        }
        Ok(pushed)
    }

    /// Sends one blob unless the registry has it. `progress` for layers
    /// (the config goes silently, as in Docker).
    async fn push_blob(
        &self,
        session: &Arc<Session>,
        desc: Descriptor,
        progress: Option<&Progress>,
    ) -> RegistryResult<()> {
        let id = desc.digest.short().to_string();
        let name = desc.digest.to_string();
        let exists = session
            .client
            .blob_exists(&session.oref, &name)
            .await
            .map_err(|e| map_oci(&session.host, e, None))?;
        if exists {
            if let Some(p) = progress {
                p.layer(&id, "Layer already exists");
            }
            return Ok(());
        }
        let size = self.blobs().size(&desc.digest).ok_or_else(|| {
            Error::not_found(format!(
                "blob {} of the image is missing from the content store",
                desc.digest
            ))
        })?;
        let sent = Arc::new(AtomicU64::new(0));
        let body = file_stream(self.blobs().path(&desc.digest), sent.clone());
        let upload = session
            .client
            .push_blob_stream(&session.oref, body, &name, Some(size));
        tokio::pin!(upload);
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        let result = loop {
            tokio::select! {
                r = &mut upload => break r,
                _ = tick.tick() => {
                    if let Some(p) = progress {
                        p.bytes(&id, "Pushing", sent.load(Ordering::Relaxed), size);
                    }
                }
            }
        };
        result.map_err(|e| {
            map_oci(&session.host, e, None).context(format!("pushing blob {}", desc.digest))
        })?;
        if let Some(p) = progress {
            p.bytes(&id, "Pushing", size, size);
            p.layer(&id, "Pushed");
        }
        Ok(())
    }
}

/// A stored blob as a stream of chunks, counting what was read.
fn file_stream(
    path: PathBuf,
    sent: Arc<AtomicU64>,
) -> impl Stream<Item = oci_client::errors::Result<Bytes>> + Send + 'static {
    stream::try_unfold(
        (None::<tokio::fs::File>, path, sent),
        |(file, path, sent)| async move {
            let mut file = match file {
                Some(f) => f,
                None => tokio::fs::File::open(&path).await?,
            };
            let mut buf = BytesMut::with_capacity(CHUNK);
            while buf.len() < CHUNK {
                if file.read_buf(&mut buf).await? == 0 {
                    break;
                }
            }
            if buf.is_empty() {
                return Ok(None);
            }
            sent.fetch_add(buf.len() as u64, Ordering::Relaxed);
            Ok(Some((buf.freeze(), (Some(file), path, sent))))
        },
    )
}
