//! Unpacked image layers under `ROOT/layers/`, shared by every image and
//! container that uses them, and the overlayfs mounts that stack them into
//! a container's root filesystem.
//!
//! Layout:
//!
//! ```text
//! ROOT/layers/<blob digest hex>/diff     the layer's files (overlayfs lower format)
//! ROOT/layers/<blob digest hex>/diffid   "sha256:..." of the uncompressed tar (the diff_id)
//! ROOT/layers/tmp/                       unpacks in progress and removals; cleared at open
//! ROOT/layers/empty/                     the lower directory of an image with no layers
//! ```
//!
//! A layer is keyed by the digest of its blob as stored (compressed or
//! not). It is unpacked into `tmp/`, its files synced (`syncfs`), then
//! renamed into place in one step, so a layer directory that exists is
//! complete; an unpack that fails or is interrupted leaves nothing but
//! `tmp/` debris, which the next [`LayerStore::open`] clears. Concurrent
//! [`LayerStore::ensure`] calls for one digest unpack it once: they
//! serialize on a per-digest lock and re-check after taking it.
//!
//! Safety of extraction is `unpack.rs`'s business, within the
//! [`UnpackLimits`] the store was opened with (berthd's `--max-layer-*`
//! options; a layer past one leaves nothing but debris in `tmp/`, removed
//! at once); this module must not know about containers (callers say which
//! layers are in use).

use super::compress::Decoder;
use super::config::ImageConfigFile;
use super::manifest::{Compression, Descriptor, Manifest, media};
use super::unpack::{UnpackLimits, UnpackStats, unpack_layer};
use crate::error::{Error, Result, ResultExt};
use crate::store::BlobStore;
use crate::util::digest::{Digest, Hasher};
use crate::util::fsutil::{remove_dir_all_if_exists, sync_dir};
use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{self, BufReader, Read};
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

const DIFF_DIR: &str = "diff";
const DIFF_ID_FILE: &str = "diffid";
/// The bytes of file content the layer unpacked to.
const SIZE_FILE: &str = "size";
const TMP_DIR: &str = "tmp";
const EMPTY_DIR: &str = "empty";

/// overlayfs refuses more lower layers than this (`OVL_MAX_STACK`).
pub use crate::executor::native::overlay::MAX_LOWERS;

pub struct LayerStore {
    /// `ROOT/layers`.
    dir: PathBuf,
    tmp: PathBuf,
    empty: PathBuf,
    /// One lock per digest being unpacked or removed.
    locks: Mutex<HashMap<Digest, Arc<Mutex<()>>>>,
    /// What one layer may unpack to.
    limits: UnpackLimits,
    /// Unpacks done, for tests of the per-digest lock.
    #[cfg(test)]
    unpacks: std::sync::atomic::AtomicUsize,
}

impl LayerStore {
    /// Opens (creating if needed) the layer store of the berth root `root`,
    /// clearing unpacks and removals a crash left behind.
    pub fn open(root: &Path) -> Result<LayerStore> {
        let dir = root.join("layers");
        let tmp = dir.join(TMP_DIR);
        let empty = dir.join(EMPTY_DIR);
        fs::create_dir_all(&dir).ctx(format!("creating {}", dir.display()))?;
        remove_dir_all_if_exists(&tmp).ctx(format!("clearing {}", tmp.display()))?;
        fs::create_dir_all(&tmp).ctx(format!("creating {}", tmp.display()))?;
        // The empty lower must stay empty: recreate it if anything got in.
        if fs::read_dir(&empty)
            .map(|mut d| d.next().is_some())
            .unwrap_or(false)
        {
            remove_dir_all_if_exists(&empty).ctx(format!("clearing {}", empty.display()))?;
        }
        fs::create_dir_all(&empty).ctx(format!("creating {}", empty.display()))?;
        Ok(LayerStore {
            dir,
            tmp,
            empty,
            locks: Mutex::new(HashMap::new()),
            limits: UnpackLimits::default(),
            #[cfg(test)]
            unpacks: Default::default(),
        })
    }

    /// Unpacks within `limits` (berthd's `--max-layer-*` options) instead
    /// of the defaults.
    pub fn with_limits(mut self, limits: UnpackLimits) -> LayerStore {
        self.limits = limits;
        self
    }

    pub fn limits(&self) -> &UnpackLimits {
        &self.limits
    }

    /// `ROOT/layers`.
    pub fn root(&self) -> &Path {
        &self.dir
    }

    /// The directory holding the files of the layer whose blob is `digest`
    /// (present or not).
    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.dir.join(digest.hex()).join(DIFF_DIR)
    }

    /// Whether the layer has been unpacked.
    pub fn contains(&self, digest: &Digest) -> bool {
        self.path(digest).is_dir()
    }

    /// An always-empty directory: the lower layer of an image without
    /// layers.
    pub fn empty_dir(&self) -> &Path {
        &self.empty
    }

    /// Unpacks the layer `layer` from `blobs` unless it is already, and
    /// returns the directory of its files. Refuses media types that are not
    /// tar layers, and hostile layers (see `unpack.rs`), leaving nothing
    /// behind.
    pub fn ensure(&self, blobs: &BlobStore, layer: &Descriptor) -> Result<PathBuf> {
        let digest = &layer.digest;
        let compression = media::layer_compression(&layer.media_type).ok_or_else(|| {
            Error::invalid(format!(
                "layer {digest} has media type {:?}, which is not a tar layer; berth unpacks {}, \
                 {} and {} (and their Docker equivalents)",
                layer.media_type,
                media::OCI_LAYER,
                media::OCI_LAYER_GZIP,
                media::OCI_LAYER_ZSTD
            ))
        })?;
        let path = self.path(digest);
        if path.is_dir() {
            return Ok(path);
        }
        let lock = self.lock(digest);
        let result = {
            let _guard = lock.lock().unwrap_or_else(|e| e.into_inner());
            if path.is_dir() {
                Ok(path)
            } else {
                self.unpack(blobs, digest, compression).map(|(p, stats)| {
                    tracing::debug!(
                        layer = %digest,
                        entries = stats.entries,
                        bytes = stats.bytes,
                        "unpacked layer"
                    );
                    p
                })
            }
        };
        self.unlock(digest, lock);
        result
    }

    fn unpack(
        &self,
        blobs: &BlobStore,
        digest: &Digest,
        compression: Compression,
    ) -> Result<(PathBuf, UnpackStats)> {
        #[cfg(test)]
        self.unpacks
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let work = self
            .tmp
            .join(format!("{}-{}", digest.short(), crate::util::random_id()));
        let result = (|| {
            let diff = work.join(DIFF_DIR);
            fs::create_dir(&work).ctx(format!("creating {}", work.display()))?;
            fs::create_dir(&diff).ctx(format!("creating {}", diff.display()))?;
            let file = blobs.open_read(digest)?;
            let compressed = file.metadata().ok().map(|m| m.len());
            let blob = BufReader::with_capacity(256 << 10, file);
            let mut reader = HashingReader::new(Decoder::new(blob, compression)?);
            // The diff_id covers the whole uncompressed stream, padding
            // after the end-of-archive blocks included: unpack_layer reads
            // it all.
            let stats = unpack_layer(&mut reader, &diff, &self.limits, compressed)
                .map_err(|e| e.context(format!("layer {digest}")))?;
            let diff_id = reader.finish();
            fs::write(work.join(DIFF_ID_FILE), diff_id.to_string())
                .ctx("writing the layer's diff_id")?;
            fs::write(work.join(SIZE_FILE), stats.bytes.to_string())
                .ctx("writing the layer's size")?;
            // Everything durable before the layer becomes visible.
            let fd = fs::File::open(&work).ctx("opening the unpacked layer")?;
            nix::unistd::syncfs(fd.as_fd()).ctx("syncing the unpacked layer")?;
            let dest = self.dir.join(digest.hex());
            match fs::rename(&work, &dest) {
                Ok(()) => {}
                // Someone else put it there (another process on this root):
                // theirs is as good as ours.
                Err(e) if dest.join(DIFF_DIR).is_dir() => {
                    tracing::debug!(layer = %digest, error = %e, "layer appeared meanwhile");
                    let _ = remove_dir_all_if_exists(&work);
                }
                Err(e) => return Err(Error::internal(format!("committing layer {digest}: {e}"))),
            }
            sync_dir(&self.dir).ctx("syncing the layer directory")?;
            Ok((dest.join(DIFF_DIR), stats))
        })();
        if result.is_err()
            && let Err(e) = remove_dir_all_if_exists(&work)
        {
            tracing::warn!(path = %work.display(), error = %e, "could not remove a failed unpack");
        }
        result
    }

    /// How many bytes of file content an unpacked layer holds, what Docker
    /// counts as a layer's size; `None` for a layer unpacked by a berth
    /// that did not record it.
    pub fn unpacked_size(&self, digest: &Digest) -> Option<u64> {
        fs::read_to_string(self.dir.join(digest.hex()).join(SIZE_FILE))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// The diff_id (digest of the uncompressed tar) of an unpacked layer.
    pub fn diff_id(&self, digest: &Digest) -> Result<Digest> {
        let file = self.dir.join(digest.hex()).join(DIFF_ID_FILE);
        let text = fs::read_to_string(&file).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                Error::not_found(format!("layer {digest} is not unpacked"))
            } else {
                Error::internal(format!("reading {}: {e}", file.display()))
            }
        })?;
        text.trim().parse()
    }

    /// Removes an unpacked layer; `false` if it was not there. The caller
    /// makes sure no mounted rootfs uses it.
    pub fn remove(&self, digest: &Digest) -> Result<bool> {
        let lock = self.lock(digest);
        let result = {
            let _guard = lock.lock().unwrap_or_else(|e| e.into_inner());
            let dir = self.dir.join(digest.hex());
            // Renamed away first, so a half-removed layer never looks present.
            let trash = self.tmp.join(format!(
                "rm-{}-{}",
                digest.short(),
                crate::util::random_id()
            ));
            match fs::rename(&dir, &trash) {
                Ok(()) => remove_dir_all_if_exists(&trash)
                    .map(|()| true)
                    .map_err(|e| Error::internal(format!("removing layer {digest}: {e}"))),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(Error::internal(format!("removing layer {digest}: {e}"))),
            }
        };
        self.unlock(digest, lock);
        result
    }

    /// Every unpacked layer.
    pub fn list(&self) -> Result<Vec<Digest>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir).ctx("listing layers")? {
            let entry = entry.ctx("listing layers")?;
            if let Some(name) = entry.file_name().to_str()
                && let Ok(d) = Digest::from_hex(name)
            {
                out.push(d);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Removes every unpacked layer not in `keep`; returns how many went.
    pub fn remove_unused(&self, keep: &HashSet<Digest>) -> Result<usize> {
        let mut n = 0;
        for d in self.list()? {
            if !keep.contains(&d) && self.remove(&d)? {
                n += 1;
            }
        }
        Ok(n)
    }

    /// The lower directories for an image's layers (`layers` in manifest
    /// order, base first), as [`mount_rootfs`](crate::executor::native::overlay::mount_rootfs) wants them: top layer first,
    /// or the empty directory for an image without layers. Every layer must
    /// have been unpacked ([`LayerStore::ensure`]).
    pub fn lowers(&self, layers: &[Descriptor]) -> Result<Vec<PathBuf>> {
        if layers.is_empty() {
            return Ok(vec![self.empty.clone()]);
        }
        layers
            .iter()
            .rev()
            .map(|l| {
                let p = self.path(&l.digest);
                if p.is_dir() {
                    Ok(p)
                } else {
                    Err(Error::not_found(format!(
                        "layer {} is not unpacked",
                        l.digest
                    )))
                }
            })
            .collect()
    }

    /// The init layer of an image whose lower directories are `lowers`
    /// (top first, as [`LayerStore::lowers`] gives them), made on first
    /// use: the files every native container gets bind-mounted over
    /// (`/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf`), empty, under an
    /// `/etc` with the image's own owner, mode and times. As the top lower
    /// of a container's overlay, it spares each start copying `/etc` up and
    /// creating those files in the container's upper directory (Docker
    /// makes such a layer per container; one per image does). Its files
    /// shadow the image's, which the bind mounts hide anyway. `None` when
    /// the image's `/etc` is not a directory (a symlink: the layer must not
    /// change what it points to), or the overlay has no room for one more
    /// lower. It lives in the top layer's directory and goes with it.
    pub fn init_layer(&self, lowers: &[PathBuf]) -> Result<Option<PathBuf>> {
        let Some(top) = lowers.first() else {
            return Ok(None);
        };
        if lowers.len() >= MAX_LOWERS || top == &self.empty {
            return Ok(None);
        }
        // Keyed by the whole stack: the same top layer may sit on other bases.
        let mut h = Hasher::new();
        for l in lowers {
            h.update(l.as_os_str().as_encoded_bytes());
            h.update(b"\n");
        }
        let (key, _) = h.finish();
        let path = top
            .parent()
            .unwrap_or(top)
            .join(format!("init-{}", &key.hex()[..16]));
        if path.is_dir() {
            return Ok(Some(path));
        }
        let etc = match image_etc(lowers)? {
            Some(etc) => etc,
            None => return Ok(None),
        };
        let tmp = self.tmp.join(format!("init-{}", crate::util::random_id()));
        let made = (|| -> io::Result<()> {
            fs::create_dir(&tmp)?;
            let dir = tmp.join("etc");
            fs::create_dir(&dir)?;
            for name in ["hosts", "hostname", "resolv.conf"] {
                let f = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o644)
                    .open(dir.join(name))?;
                f.sync_all()?;
            }
            if let Some(m) = etc {
                std::os::unix::fs::lchown(&dir, Some(m.uid()), Some(m.gid()))?;
                fs::set_permissions(&dir, fs::Permissions::from_mode(m.mode() & 0o7777))?;
                let times = [
                    nix::sys::time::TimeSpec::new(m.atime(), m.atime_nsec()),
                    nix::sys::time::TimeSpec::new(m.mtime(), m.mtime_nsec()),
                ];
                nix::sys::stat::utimensat(
                    nix::fcntl::AT_FDCWD,
                    &dir,
                    &times[0],
                    &times[1],
                    nix::sys::stat::UtimensatFlags::NoFollowSymlink,
                )?;
            }
            sync_dir(&dir)?;
            sync_dir(&tmp)
        })();
        if let Err(e) = made {
            let _ = remove_dir_all_if_exists(&tmp);
            return Err(Error::internal(format!(
                "making the image's init layer: {e}"
            )));
        }
        match fs::rename(&tmp, &path) {
            Ok(()) => {
                let _ = sync_dir(top.parent().unwrap_or(top));
                Ok(Some(path))
            }
            // Another container of the image made it first.
            Err(_) if path.is_dir() => {
                let _ = remove_dir_all_if_exists(&tmp);
                Ok(Some(path))
            }
            Err(e) => {
                let _ = remove_dir_all_if_exists(&tmp);
                Err(Error::internal(format!(
                    "making the image's init layer: {e}"
                )))
            }
        }
    }

    /// Everything a native container of this image needs from the store:
    /// unpacks each layer once, checks it against the config's `diff_ids`
    /// (a config that lies about its layers is refused), and returns the
    /// lower directories for [`mount_rootfs`](crate::executor::native::overlay::mount_rootfs), top layer first.
    pub fn prepare(
        &self,
        blobs: &BlobStore,
        manifest: &Manifest,
        config: &ImageConfigFile,
    ) -> Result<Vec<PathBuf>> {
        let diff_ids = config
            .rootfs
            .as_ref()
            .map(|r| r.diff_ids.as_slice())
            .unwrap_or_default();
        if !diff_ids.is_empty() && diff_ids.len() != manifest.layers.len() {
            return Err(Error::invalid(format!(
                "the image config lists {} diff_ids for {} layers",
                diff_ids.len(),
                manifest.layers.len()
            )));
        }
        for (i, layer) in manifest.layers.iter().enumerate() {
            self.ensure(blobs, layer)?;
            if let Some(want) = diff_ids.get(i) {
                let got = self.diff_id(&layer.digest)?;
                if got.to_string() != *want {
                    return Err(Error::invalid(format!(
                        "layer {} unpacks to diff_id {got}, but the image config says {want}",
                        layer.digest
                    )));
                }
            }
        }
        self.lowers(&manifest.layers)
    }

    fn lock(&self, digest: &Digest) -> Arc<Mutex<()>> {
        self.locks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(digest.clone())
            .or_default()
            .clone()
    }

    /// Drops the digest's lock from the table when nobody else holds or
    /// waits for it.
    fn unlock(&self, digest: &Digest, lock: Arc<Mutex<()>>) {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        // The table's reference and ours.
        if Arc::strong_count(&lock) == 2 {
            locks.remove(digest);
        }
    }
}

/// Hashes what passes through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Hasher::new(),
        }
    }

    /// The digest of everything read.
    pub fn finish(self) -> Digest {
        self.hasher.finish().0
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// What `/etc` is in the image made of `lowers` (top first): `Some(Some)`
/// a directory, with the topmost one's metadata; `Some(None)` absent (no
/// layer has it, or the topmost entry is a whiteout); `None` something
/// else, such as a symlink.
fn image_etc(lowers: &[PathBuf]) -> Result<Option<Option<fs::Metadata>>> {
    use std::os::unix::fs::FileTypeExt;
    for l in lowers {
        match fs::symlink_metadata(l.join("etc")) {
            Ok(m) if m.is_dir() => return Ok(Some(Some(m))),
            Ok(m) if m.file_type().is_char_device() && m.rdev() == 0 => return Ok(Some(None)),
            Ok(_) => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::internal(format!("reading the image's /etc: {e}"))),
        }
    }
    Ok(Some(None))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::native::overlay::{
        attach_premount, mount_rootfs, mount_rootfs_inner, overlay_options, page_size,
        premount_rootfs, unmount,
    };
    use crate::image::unpack::testtar::Tar;
    use crate::util::testing::have_root;
    use std::io::Write;
    use std::os::unix::fs::FileTypeExt;
    use std::time::Instant;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn store() -> (tempfile::TempDir, BlobStore, LayerStore) {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobStore::open(dir.path()).unwrap();
        let layers = LayerStore::open(dir.path()).unwrap();
        (dir, blobs, layers)
    }

    fn put(blobs: &BlobStore, media_type: &str, data: &[u8]) -> Descriptor {
        let d = blobs.put(data, None).unwrap();
        Descriptor::new(media_type, d, data.len() as u64)
    }

    fn sample_tar() -> Vec<u8> {
        let mut t = Tar::new();
        t.dir("etc/", 0o755)
            .file("etc/hostname", b"berth\n", 0o644)
            .symlink("bin", "usr/bin");
        t.bytes()
    }

    /// Only `tmp` (empty) and `empty` besides the layers themselves.
    fn assert_no_debris(layers: &LayerStore) {
        assert_eq!(
            fs::read_dir(&layers.tmp).unwrap().count(),
            0,
            "tmp is empty"
        );
        assert_eq!(fs::read_dir(&layers.empty).unwrap().count(), 0);
    }

    #[test]
    fn ensure_unpacks_each_compression_and_records_the_diff_id() {
        if !have_root() {
            return;
        }
        let (_d, blobs, layers) = store();
        let tar = sample_tar();
        let diff_id = Digest::of(&tar);
        let zst = zstd::encode_all(&tar[..], 3).unwrap();
        for (mt, data) in [
            (media::OCI_LAYER, tar.clone()),
            (media::DOCKER_LAYER_GZIP, gzip(&tar)),
            (media::OCI_LAYER_ZSTD, zst),
        ] {
            let desc = put(&blobs, mt, &data);
            let path = layers.ensure(&blobs, &desc).unwrap();
            assert_eq!(path, layers.path(&desc.digest));
            assert!(layers.contains(&desc.digest));
            assert_eq!(fs::read(path.join("etc/hostname")).unwrap(), b"berth\n");
            assert_eq!(layers.diff_id(&desc.digest).unwrap(), diff_id, "{mt}");
            // Again: nothing to do.
            let before = layers.unpacks.load(std::sync::atomic::Ordering::SeqCst);
            layers.ensure(&blobs, &desc).unwrap();
            assert_eq!(
                layers.unpacks.load(std::sync::atomic::Ordering::SeqCst),
                before
            );
        }
        assert_eq!(layers.list().unwrap().len(), 3);
        assert_no_debris(&layers);
    }

    #[test]
    fn concurrent_ensure_unpacks_once() {
        if !have_root() {
            return;
        }
        let (_d, blobs, layers) = store();
        let mut t = Tar::new();
        for i in 0..200 {
            t.file(&format!("d{}/f{i}", i % 10), &[i as u8; 1000], 0o644);
        }
        let desc = put(&blobs, media::OCI_LAYER_GZIP, &gzip(&t.bytes()));
        let paths: Vec<PathBuf> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..8)
                .map(|_| s.spawn(|| layers.ensure(&blobs, &desc).unwrap()))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(paths.iter().all(|p| *p == paths[0]));
        assert_eq!(layers.unpacks.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(layers.locks.lock().unwrap().is_empty(), "locks released");
        assert_no_debris(&layers);
    }

    #[test]
    fn a_refused_layer_leaves_nothing_behind() {
        if !have_root() {
            return;
        }
        let (_d, blobs, layers) = store();
        let mut t = Tar::new();
        t.file("fine", b"x", 0o644).file("../../x", b"pwned", 0o644);
        let desc = put(&blobs, media::OCI_LAYER, &t.bytes());
        let err = layers.ensure(&blobs, &desc).unwrap_err();
        assert_eq!(err.kind(), crate::error::ErrorKind::InvalidArgument);
        assert!(err.message().contains(&desc.digest.to_string()), "{err}");
        assert!(err.message().contains("\"../../x\""), "{err}");
        assert!(!layers.contains(&desc.digest));
        assert!(layers.list().unwrap().is_empty());
        assert_no_debris(&layers);

        // Corrupt gzip: refused the same way.
        let mut gz = gzip(&sample_tar());
        let n = gz.len();
        gz.truncate(n / 2);
        let desc = put(&blobs, media::OCI_LAYER_GZIP, &gz);
        let err = layers.ensure(&blobs, &desc).unwrap_err();
        assert_eq!(
            err.kind(),
            crate::error::ErrorKind::InvalidArgument,
            "{err}"
        );
        assert_no_debris(&layers);
    }

    #[test]
    fn prepare_checks_diff_ids_and_orders_lowers() {
        if !have_root() {
            return;
        }
        let (_d, blobs, layers) = store();
        let base_tar = sample_tar();
        let mut t = Tar::new();
        t.file("top", b"t", 0o644);
        let top_tar = t.bytes();
        let base = put(&blobs, media::OCI_LAYER_GZIP, &gzip(&base_tar));
        let top = put(&blobs, media::OCI_LAYER, &top_tar);
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(media::OCI_MANIFEST.into()),
            artifact_type: None,
            config: Descriptor::new(media::OCI_CONFIG, Digest::of(b"c"), 1),
            layers: vec![base.clone(), top.clone()],
            annotations: Default::default(),
            subject: None,
        };
        let config = |ids: Vec<String>| ImageConfigFile {
            os: "linux".into(),
            rootfs: Some(crate::image::config::RootFs {
                kind: "layers".into(),
                diff_ids: ids,
            }),
            ..Default::default()
        };
        let good = config(vec![
            Digest::of(&base_tar).to_string(),
            Digest::of(&top_tar).to_string(),
        ]);
        let lowers = layers.prepare(&blobs, &manifest, &good).unwrap();
        assert_eq!(
            lowers,
            vec![layers.path(&top.digest), layers.path(&base.digest)]
        );

        let swapped = config(vec![
            Digest::of(&top_tar).to_string(),
            Digest::of(&base_tar).to_string(),
        ]);
        let e = layers.prepare(&blobs, &manifest, &swapped).unwrap_err();
        assert!(e.message().contains("diff_id"), "{e}");
        let short = config(vec![Digest::of(&base_tar).to_string()]);
        assert!(layers.prepare(&blobs, &manifest, &short).is_err());
        // No rootfs section: nothing to check against.
        assert!(
            layers
                .prepare(&blobs, &manifest, &ImageConfigFile::default())
                .is_ok()
        );
    }

    #[test]
    fn refuses_media_types_that_are_not_tar_layers() {
        let (_d, blobs, layers) = store();
        let desc = put(&blobs, media::WASM_LAYER, b"\0asm\x01\0\0\0");
        let err = layers.ensure(&blobs, &desc).unwrap_err();
        assert!(err.message().contains("application/wasm"), "{err}");
        assert!(layers.list().unwrap().is_empty());
    }

    #[test]
    fn remove_list_and_sweep() {
        if !have_root() {
            return;
        }
        let (d, blobs, layers) = store();
        let a = put(&blobs, media::OCI_LAYER, &sample_tar());
        let mut t = Tar::new();
        t.file("other", b"y", 0o644);
        let b = put(&blobs, media::OCI_LAYER, &t.bytes());
        layers.ensure(&blobs, &a).unwrap();
        layers.ensure(&blobs, &b).unwrap();
        let mut want = vec![a.digest.clone(), b.digest.clone()];
        want.sort();
        assert_eq!(layers.list().unwrap(), want);
        let keep = HashSet::from([a.digest.clone()]);
        assert_eq!(layers.remove_unused(&keep).unwrap(), 1);
        assert_eq!(layers.list().unwrap(), vec![a.digest.clone()]);
        assert!(layers.remove(&a.digest).unwrap());
        assert!(!layers.remove(&a.digest).unwrap());
        assert!(layers.list().unwrap().is_empty());
        assert_no_debris(&layers);

        // Debris of a crash goes at open.
        fs::create_dir_all(layers.tmp.join("x/diff/deep")).unwrap();
        fs::write(layers.empty.join("junk"), b"").unwrap();
        drop(layers);
        let layers = LayerStore::open(d.path()).unwrap();
        assert_no_debris(&layers);
    }

    /// A rootfs of two layers: the upper one whites out a file of the lower
    /// and makes a directory opaque.
    #[test]
    fn overlay_of_two_layers_applies_whiteouts() {
        if !have_root() {
            return;
        }
        let (d, blobs, layers) = store();
        let mut t = Tar::new();
        t.file("a", b"a", 0o644)
            .file("b", b"b", 0o644)
            .dir("dir/", 0o755)
            .file("dir/x", b"x", 0o644)
            .file("dir/y", b"y", 0o644)
            .dir("keep/", 0o755)
            .file("keep/k", b"k", 0o644);
        let base = put(&blobs, media::OCI_LAYER, &t.bytes());
        let mut t = Tar::new();
        t.file(".wh.a", b"", 0o644)
            .dir("dir/", 0o755)
            .file("dir/.wh..wh..opq", b"", 0o644)
            .file("dir/z", b"z", 0o644)
            .file("keep/.wh.k", b"", 0o644)
            .file("keep/new", b"n", 0o644);
        let top = put(&blobs, media::OCI_LAYER_GZIP, &gzip(&t.bytes()));
        for l in [&base, &top] {
            layers.ensure(&blobs, l).unwrap();
        }
        let lowers = layers.lowers(&[base.clone(), top.clone()]).unwrap();
        assert_eq!(
            lowers,
            vec![layers.path(&top.digest), layers.path(&base.digest)]
        );

        for force_fds in [false, true] {
            let c = d.path().join(format!("c-{force_fds}"));
            let (upper, work, target) = (c.join("upper"), c.join("work"), c.join("rootfs"));
            for p in [&upper, &work, &target] {
                fs::create_dir_all(p).unwrap();
            }
            mount_rootfs_inner(&lowers, &upper, &work, &target, force_fds).unwrap();
            let names = |p: &Path| {
                let mut v: Vec<String> = fs::read_dir(p)
                    .unwrap()
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect();
                v.sort();
                v
            };
            let result = std::panic::catch_unwind(|| {
                assert_eq!(names(&target), ["b", "dir", "keep"]);
                assert_eq!(names(&target.join("dir")), ["z"]);
                assert_eq!(names(&target.join("keep")), ["new"]);
                // Writes go to the upper only.
                fs::write(target.join("b"), b"changed").unwrap();
                fs::remove_file(target.join("dir/z")).unwrap();
            });
            unmount(&target).unwrap();
            result.unwrap();
            assert_eq!(fs::read(upper.join("b")).unwrap(), b"changed");
            assert!(
                fs::symlink_metadata(upper.join("dir/z"))
                    .unwrap()
                    .file_type()
                    .is_char_device()
            );
            assert_eq!(fs::read(layers.path(&base.digest).join("b")).unwrap(), b"b");
            assert_eq!(
                fs::read(layers.path(&top.digest).join("dir/z")).unwrap(),
                b"z"
            );
            assert!(names(&target).is_empty(), "unmounted");
            // Unmounting again is fine.
            unmount(&target).unwrap();
            unmount(&c.join("missing")).unwrap();
        }
    }

    #[test]
    fn premounted_overlay_is_attached_where_the_child_wants_it() {
        if !have_root() {
            return;
        }
        let (d, blobs, layers) = store();
        let mut t = Tar::new();
        t.file("a", b"a", 0o644).file("gone", b"g", 0o644);
        let base = put(&blobs, media::OCI_LAYER, &t.bytes());
        let mut t = Tar::new();
        t.file(".wh.gone", b"", 0o644).file("b", b"b", 0o644);
        let top = put(&blobs, media::OCI_LAYER, &t.bytes());
        for l in [&base, &top] {
            layers.ensure(&blobs, l).unwrap();
        }
        let lowers = layers.lowers(&[base, top]).unwrap();
        let c = d.path().join("c");
        let (upper, work, target) = (c.join("upper"), c.join("work"), c.join("rootfs"));
        for p in [&upper, &work, &target] {
            fs::create_dir_all(p).unwrap();
        }
        let mnt = premount_rootfs(&lowers, &upper, &work).unwrap();
        // Set up already: overlayfs made its work directory.
        assert!(work.join("work").is_dir());
        // Nothing is mounted anywhere until it is attached.
        assert!(fs::read_dir(&target).unwrap().next().is_none());
        attach_premount(&mnt, &target).unwrap();
        let result = std::panic::catch_unwind(|| {
            let mut names: Vec<String> = fs::read_dir(&target)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            assert_eq!(names, ["a", "b"]);
            fs::write(target.join("new"), b"n").unwrap();
        });
        drop(mnt);
        unmount(&target).unwrap();
        result.unwrap();
        assert_eq!(fs::read(upper.join("new")).unwrap(), b"n");
        // A premount that is dropped unattached leaves the work directory
        // free for the next mount.
        drop(premount_rootfs(&lowers, &upper, &work).unwrap());
        mount_rootfs(&lowers, &upper, &work, &target).unwrap();
        unmount(&target).unwrap();
        // Paths overlayfs's option syntax cannot carry are refused, not
        // mangled.
        let odd = d.path().join("a,b");
        fs::create_dir_all(&odd).unwrap();
        assert!(premount_rootfs(&lowers, &odd, &work).is_err());
    }

    #[test]
    fn zero_layers_mount_the_empty_lower() {
        if !have_root() {
            return;
        }
        let (d, _blobs, layers) = store();
        let lowers = layers.lowers(&[]).unwrap();
        assert_eq!(lowers, vec![layers.empty_dir().to_path_buf()]);
        let (upper, work, target) = (d.path().join("u"), d.path().join("w"), d.path().join("t"));
        for p in [&upper, &work, &target] {
            fs::create_dir_all(p).unwrap();
        }
        mount_rootfs(&lowers, &upper, &work, &target).unwrap();
        fs::write(target.join("new"), b"n").unwrap();
        unmount(&target).unwrap();
        assert!(upper.join("new").exists());
        assert_eq!(fs::read_dir(layers.empty_dir()).unwrap().count(), 0);
        assert!(mount_rootfs(&[], &upper, &work, &target).is_err());
    }

    /// More layers under a long root than absolute paths can name in one
    /// page: the `/proc/self/fd` form takes over.
    #[test]
    fn many_layers_under_a_long_root_still_mount() {
        if !have_root() {
            return;
        }
        let base = tempfile::tempdir().unwrap();
        let root = base
            .path()
            .join("a-rather-long-directory-name-for-the-berth-root".repeat(2));
        let blobs = BlobStore::open(&root).unwrap();
        let layers = LayerStore::open(&root).unwrap();
        let mut descs = Vec::new();
        for i in 0..120 {
            let mut t = Tar::new();
            t.file(&format!("f{i:03}"), format!("{i}").as_bytes(), 0o644)
                .file("top", format!("{i}").as_bytes(), 0o644);
            let desc = put(&blobs, media::OCI_LAYER, &t.bytes());
            layers.ensure(&blobs, &desc).unwrap();
            descs.push(desc);
        }
        let lowers = layers.lowers(&descs).unwrap();
        let plain = overlay_options(lowers.iter().map(|p| p.as_path()), &root, &root).unwrap();
        assert!(
            plain.len() > page_size(),
            "the test needs options longer than a page"
        );
        let (upper, work, target) = (root.join("u"), root.join("w"), root.join("t"));
        for p in [&upper, &work, &target] {
            fs::create_dir_all(p).unwrap();
        }
        mount_rootfs(&lowers, &upper, &work, &target).unwrap();
        let seen = fs::read_dir(&target).map(|d| d.count());
        let top = fs::read(target.join("top"));
        unmount(&target).unwrap();
        assert_eq!(seen.unwrap(), 121);
        assert_eq!(top.unwrap(), b"119", "the last layer is on top");
    }

    /// Not a test of speed (never asserted): prints what a one-layer
    /// overlay mount and unmount cost here, as on every container start.
    #[test]
    fn mount_and_unmount_cost() {
        if !have_root() {
            return;
        }
        let (d, blobs, layers) = store();
        let desc = put(&blobs, media::OCI_LAYER, &sample_tar());
        layers.ensure(&blobs, &desc).unwrap();
        let lowers = layers.lowers(std::slice::from_ref(&desc)).unwrap();
        let n = 50;
        let mut mount_ns = Vec::new();
        let mut umount_ns = Vec::new();
        for i in 0..n {
            let c = d.path().join(format!("c{i}"));
            let (upper, work, target) = (c.join("upper"), c.join("work"), c.join("rootfs"));
            for p in [&upper, &work, &target] {
                fs::create_dir_all(p).unwrap();
            }
            let t = Instant::now();
            mount_rootfs(&lowers, &upper, &work, &target).unwrap();
            mount_ns.push(t.elapsed().as_nanos());
            let t = Instant::now();
            unmount(&target).unwrap();
            umount_ns.push(t.elapsed().as_nanos());
        }
        mount_ns.sort();
        umount_ns.sort();
        eprintln!(
            "overlay, 1 layer: mount median {:.1} µs (p90 {:.1}), unmount median {:.1} µs (p90 {:.1}), {n} runs",
            mount_ns[n / 2] as f64 / 1e3,
            mount_ns[n * 9 / 10] as f64 / 1e3,
            umount_ns[n / 2] as f64 / 1e3,
            umount_ns[n * 9 / 10] as f64 / 1e3,
        );
    }

    #[test]
    fn unpacked_size_is_the_files_bytes() {
        if !have_root() {
            return;
        }
        let (_d, blobs, layers) = store();
        let mut t = Tar::new();
        t.dir("etc/", 0o755)
            .file("etc/hostname", b"berth\n", 0o644)
            .file("data", &[7u8; 5000], 0o644)
            .symlink("bin", "usr/bin");
        let desc = put(&blobs, media::OCI_LAYER_GZIP, &gzip(&t.bytes()));
        assert_eq!(layers.unpacked_size(&desc.digest), None);
        layers.ensure(&blobs, &desc).unwrap();
        assert_eq!(layers.unpacked_size(&desc.digest), Some(5006));
    }

    /// Two lowers, top first, laid out as the store lays out layers.
    fn two_lowers(layers: &LayerStore) -> Vec<PathBuf> {
        let lowers: Vec<PathBuf> = ["bb", "aa"]
            .iter()
            .map(|n| layers.root().join(n).join(DIFF_DIR))
            .collect();
        for l in &lowers {
            fs::create_dir_all(l).unwrap();
        }
        lowers
    }

    #[test]
    fn init_layer_has_the_etc_files_under_the_images_own_etc() {
        let (_d, _blobs, layers) = store();
        let lowers = two_lowers(&layers);
        // The base's /etc is overridden by the top layer's, whose owner,
        // mode and times the init layer's must repeat.
        fs::create_dir(lowers[1].join("etc")).unwrap();
        let etc = lowers[0].join("etc");
        fs::create_dir(&etc).unwrap();
        fs::set_permissions(&etc, fs::Permissions::from_mode(0o750)).unwrap();
        let when = nix::sys::time::TimeSpec::new(1_000_000_000, 0);
        nix::sys::stat::utimensat(
            nix::fcntl::AT_FDCWD,
            &etc,
            &when,
            &when,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .unwrap();
        let init = layers.init_layer(&lowers).unwrap().expect("an init layer");
        assert_eq!(
            init.parent(),
            lowers[0].parent(),
            "it goes with the top layer"
        );
        let m = fs::metadata(init.join("etc")).unwrap();
        let want = fs::metadata(&etc).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o750);
        assert_eq!(
            (m.uid(), m.gid(), m.mtime()),
            (want.uid(), want.gid(), 1_000_000_000)
        );
        let mut names: Vec<String> = fs::read_dir(init.join("etc"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["hostname", "hosts", "resolv.conf"]);
        assert_eq!(fs::metadata(init.join("etc/hosts")).unwrap().len(), 0);
        // Made once; another stack on the same top layer gets its own.
        assert_eq!(layers.init_layer(&lowers).unwrap(), Some(init.clone()));
        let other = layers.init_layer(&lowers[..1]).unwrap().unwrap();
        assert_ne!(other, init);
        assert_no_debris(&layers);
    }

    #[test]
    fn init_layer_leaves_a_symlinked_etc_alone() {
        let (_d, _blobs, layers) = store();
        let lowers = two_lowers(&layers);
        fs::create_dir(lowers[1].join("etc")).unwrap();
        std::os::unix::fs::symlink("usr/etc", lowers[0].join("etc")).unwrap();
        assert_eq!(layers.init_layer(&lowers).unwrap(), None);
        // No /etc anywhere: the container gets a plain one, as Docker's.
        let (_d, _blobs, layers) = store();
        let lowers = two_lowers(&layers);
        let init = layers.init_layer(&lowers).unwrap().unwrap();
        assert_eq!(
            fs::metadata(init.join("etc")).unwrap().mode() & 0o7777,
            0o755
        );
        // An image without layers has none.
        assert_eq!(
            layers
                .init_layer(&[layers.empty_dir().to_path_buf()])
                .unwrap(),
            None
        );
    }

    #[test]
    fn init_layer_treats_a_whiteout_etc_as_absent() {
        if !have_root() {
            return;
        }
        let (_d, _blobs, layers) = store();
        let lowers = two_lowers(&layers);
        let etc = lowers[1].join("etc");
        fs::create_dir(&etc).unwrap();
        fs::set_permissions(&etc, fs::Permissions::from_mode(0o700)).unwrap();
        nix::sys::stat::mknod(
            &lowers[0].join("etc"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o600),
            0,
        )
        .unwrap();
        let init = layers.init_layer(&lowers).unwrap().unwrap();
        assert_eq!(
            fs::metadata(init.join("etc")).unwrap().mode() & 0o7777,
            0o755
        );
    }
}
