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
//! Safety of extraction is `unpack.rs`'s business; this module must not
//! know about containers (callers say which layers are in use).

use super::manifest::{Compression, Descriptor, media};
use super::unpack::{UnpackStats, unpack_layer};
use crate::error::{Error, Result, ResultExt};
use crate::store::BlobStore;
use crate::util::digest::{Digest, Hasher};
use crate::util::fsutil::{remove_dir_all_if_exists, sync_dir};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{MntFlags, MsFlags};
use nix::sys::stat::Mode;
use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{self, BufReader, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

const DIFF_DIR: &str = "diff";
const DIFF_ID_FILE: &str = "diffid";
const TMP_DIR: &str = "tmp";
const EMPTY_DIR: &str = "empty";

/// overlayfs refuses more lower layers than this (`OVL_MAX_STACK`).
pub const MAX_LOWERS: usize = 500;

pub struct LayerStore {
    /// `ROOT/layers`.
    dir: PathBuf,
    tmp: PathBuf,
    empty: PathBuf,
    /// One lock per digest being unpacked or removed.
    locks: Mutex<HashMap<Digest, Arc<Mutex<()>>>>,
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
            #[cfg(test)]
            unpacks: Default::default(),
        })
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
            let blob = BufReader::with_capacity(256 << 10, blobs.open_read(digest)?);
            let mut reader = HashingReader::new(decompressor(blob, compression)?);
            let stats = unpack_layer(&mut reader, &diff)
                .map_err(|e| e.context(format!("layer {digest}")))?;
            // The diff_id covers the whole uncompressed stream, padding
            // after the end-of-archive blocks included.
            io::copy(&mut reader, &mut io::sink()).map_err(|e| {
                Error::invalid(format!("layer {digest}: reading past the tar end: {e}"))
            })?;
            let diff_id = reader.finish();
            fs::write(work.join(DIFF_ID_FILE), diff_id.to_string())
                .ctx("writing the layer's diff_id")?;
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
    /// order, base first), as [`mount_rootfs`] wants them: top layer first,
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

/// The decompressing reader for a layer.
pub fn decompressor<'a>(
    reader: impl Read + 'a,
    compression: Compression,
) -> Result<Box<dyn Read + 'a>> {
    Ok(match compression {
        Compression::None => Box::new(reader),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(reader)),
        Compression::Zstd => Box::new(zstd::Decoder::new(reader).ctx("opening a zstd stream")?),
    })
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

// ---------------------------------------------------------------------------
// overlay mounts

/// Mounts an overlay at `target`: `lowers` (top layer first, at least one;
/// see [`LayerStore::lowers`]) under the writable `upper`, with `work` as
/// overlayfs's work directory (same filesystem as `upper`, empty or left by
/// an earlier mount of the same upper).
///
/// The mount options must fit in one page. When the absolute paths do not
/// (about 40 layers under `/var/lib/berth`), or a path holds a character
/// the option syntax cannot carry (`,` `:` `\`), each directory is opened
/// with `O_PATH` and named by its `/proc/self/fd/N` link instead: about 18
/// bytes a layer whatever the root's length, no working-directory change
/// (which a multi-threaded daemon must never do), and nothing on disk to
/// manage. The kernel resolves the links at mount time; the descriptors are
/// closed right after.
pub fn mount_rootfs(lowers: &[PathBuf], upper: &Path, work: &Path, target: &Path) -> Result<()> {
    mount_rootfs_inner(lowers, upper, work, target, false)
}

fn mount_rootfs_inner(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
    force_fds: bool,
) -> Result<()> {
    if lowers.is_empty() {
        return Err(Error::internal(
            "an overlay needs at least one lower directory (LayerStore::lowers gives the empty one)",
        ));
    }
    if lowers.len() > MAX_LOWERS {
        return Err(Error::invalid(format!(
            "the image has {} layers; overlayfs stacks at most {MAX_LOWERS}",
            lowers.len()
        )));
    }
    let limit = page_size() - 1;
    let plain = if force_fds {
        None
    } else {
        overlay_options(lowers.iter().map(|p| p.as_path()), upper, work)
            .filter(|o| o.len() <= limit)
    };
    let (options, _fds) = match plain {
        Some(o) => (o, Vec::new()),
        None => {
            let open = |p: &Path| -> Result<OwnedFd> {
                nix::fcntl::open(
                    p,
                    OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| Error::internal(format!("opening {}: {e}", p.display())))
            };
            let mut fds = Vec::with_capacity(lowers.len() + 2);
            for l in lowers {
                fds.push(open(l)?);
            }
            fds.push(open(upper)?);
            fds.push(open(work)?);
            let names: Vec<PathBuf> = fds
                .iter()
                .map(|fd| PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd())))
                .collect();
            let n = names.len();
            let o = overlay_options(
                names[..n - 2].iter().map(|p| p.as_path()),
                &names[n - 2],
                &names[n - 1],
            )
            .expect("fd paths need no escaping");
            if o.len() > limit {
                return Err(Error::invalid(format!(
                    "the image has too many layers ({}) for one overlay mount",
                    lowers.len()
                )));
            }
            (o, fds)
        }
    };
    nix::mount::mount(
        Some("overlay"),
        target,
        Some("overlay"),
        MsFlags::empty(),
        Some(options.as_str()),
    )
    .map_err(|e| {
        Error::internal(format!(
            "mounting the overlay rootfs at {} ({} layers): {e}",
            target.display(),
            lowers.len()
        ))
    })
}

/// `lowerdir=...,upperdir=...,workdir=...,index=off`, or `None` if a path
/// cannot be written in the option syntax.
fn overlay_options<'a>(
    lowers: impl Iterator<Item = &'a Path>,
    upper: &Path,
    work: &Path,
) -> Option<String> {
    let text = |p: &Path| -> Option<String> {
        let s = p.to_str()?;
        if s.contains([',', ':', '\\', '=']) || s.is_empty() {
            None
        } else {
            Some(s.to_string())
        }
    };
    let mut lower = String::new();
    for (i, l) in lowers.enumerate() {
        if i > 0 {
            lower.push(':');
        }
        lower.push_str(&text(l)?);
    }
    // index=off: layers are shared by many overlays, and berth never needs
    // overlayfs's inode index (Docker mounts the same way).
    Some(format!(
        "lowerdir={lower},upperdir={},workdir={},index=off",
        text(upper)?,
        text(work)?
    ))
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 { n as usize } else { 4096 }
}

/// Unmounts `target`; succeeds if nothing is mounted there (or it does not
/// exist). A busy mount is detached lazily.
pub fn unmount(target: &Path) -> Result<()> {
    match nix::mount::umount2(target, MntFlags::empty()) {
        Ok(()) | Err(Errno::EINVAL | Errno::ENOENT) => Ok(()),
        Err(Errno::EBUSY) => match nix::mount::umount2(target, MntFlags::MNT_DETACH) {
            Ok(()) | Err(Errno::EINVAL | Errno::ENOENT) => Ok(()),
            Err(e) => Err(Error::internal(format!(
                "unmounting {}: {e}",
                target.display()
            ))),
        },
        Err(e) => Err(Error::internal(format!(
            "unmounting {}: {e}",
            target.display()
        ))),
    }
}
