//! Extracting one image layer (an uncompressed tar stream) into a directory,
//! in the format overlayfs expects of a lower layer.
//!
//! Owns the safety of extraction: no entry of a layer may create, change or
//! even look at anything outside the destination directory. Every path is
//! cleaned lexically first (absolute paths and `..` that climbs out are
//! refused); then each entry's parent directory is resolved from a
//! descriptor of the destination one component at a time with `openat(2)`
//! and `O_NOFOLLOW | O_DIRECTORY` (or in one `openat2(2)` call with
//! `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS` where the kernel has it), so a
//! symlink in the layer is never followed, whatever the order of entries.
//! Everything after that works relative to the parent's descriptor with
//! `*at` calls that do not follow symlinks either (`O_CREAT | O_EXCL`,
//! `fchownat(AT_SYMLINK_NOFOLLOW)`, `utimensat(AT_SYMLINK_NOFOLLOW)`,
//! `linkat` without `AT_SYMLINK_FOLLOW`), or on the descriptor of the file
//! itself. Symlinks may point anywhere: only writing through them is
//! forbidden. A refused entry fails the whole layer with
//! [`Error::invalid`] naming the entry; the caller throws the partial
//! directory away.
//!
//! Docker/OCI whiteouts become overlayfs ones: `.wh.NAME` a 0/0 character
//! device at `NAME`, `.wh..wh..opq` the xattr `trusted.overlay.opaque=y` on
//! its directory; other `.wh..wh.*` names (AUFS metadata such as
//! `.wh..wh.plnk`) are skipped, as Docker does. `trusted.overlay.*` xattrs
//! carried by the tar itself are dropped: only berth decides what overlayfs
//! sees as a whiteout, redirect or metacopy.
//!
//! The same extractor serves `docker cp` uploads ([`extract_into`]): there
//! the destination is a directory inside a container's root, and parent
//! directories are resolved inside that root as a chroot would
//! (`openat2(RESOLVE_IN_ROOT)`): a symlink in the container is followed,
//! but never out of the container. Leading `/`s are dropped (entries are
//! relative to the destination, as Docker takes them), names starting
//! with `.wh.` are refused (they would become whiteouts in a commit), and
//! the same [`UnpackLimits`], cleaning of paths, hardlink rule and
//! metadata handling apply.
//!
//! This module knows nothing about the layer store, compression or digests
//! (see `layers.rs` and `compress.rs`), nor about containers.

use crate::error::{Error, Result};
use crate::util::dirfd::{cstring, dir_flags, file_type, remove_tree, set_xattr_fd};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, OpenHow, ResolveFlag, openat, openat2};
use nix::sys::stat::{
    FchmodatFlags, FileStat, Mode, SFlag, UtimensatFlags, fchmod, fchmodat, fstat, futimens,
    mkdirat, mknodat, utimensat,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, fchownat, linkat, symlinkat, unlinkat};
use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::hash::BuildHasher;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// What one layer held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnpackStats {
    /// Tar entries applied (whiteouts included, skipped AUFS metadata and
    /// global PAX headers not).
    pub entries: u64,
    /// Bytes of regular file content written.
    pub bytes: u64,
}

/// The overlayfs xattr that makes a directory opaque.
pub const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
const WHITEOUT_PREFIX: &[u8] = b".wh.";
const WHITEOUT_META_PREFIX: &[u8] = b".wh..wh.";
const WHITEOUT_OPAQUE: &[u8] = b".wh..wh..opq";

/// The default bounds of [`UnpackLimits`]. Chosen so that no real image
/// reaches them: the largest single layers seen in the wild (CUDA and
/// machine learning images) unpack to tens of GiB and hold a few hundred
/// thousand files; paths stay far below `PATH_MAX`, trees below 100
/// levels.
pub const DEFAULT_MAX_LAYER_BYTES: u64 = 100 << 30;
/// Deflate cannot expand more than 1032 times, so no gzip layer, however
/// compressible, reaches this ratio; a zstd stream or a sparse tar entry
/// can go far beyond it, and are stopped here.
pub const DEFAULT_MAX_LAYER_RATIO: u64 = 1100;
pub const DEFAULT_MAX_LAYER_ENTRIES: u64 = 1_000_000;
/// `PATH_MAX`.
pub const DEFAULT_MAX_LAYER_PATH: usize = 4096;
pub const DEFAULT_MAX_LAYER_DEPTH: usize = 256;
/// A layer may always unpack to this much, whatever its ratio: a small
/// layer of very compressible content (a file of zeros, zstd) is no
/// threat to the disk.
pub const RATIO_FLOOR: u64 = 16 << 20;
/// Bytes the tar reader may read between the data of two entries: the
/// headers of the next one, with its GNU long name and link and its PAX
/// records (which the `tar` crate holds in memory). Real entries need a
/// few KiB (PAX xattrs are at most 64 KiB each).
pub const MAX_ENTRY_HEADERS: u64 = 1 << 20;

/// Bounds on what one layer may unpack to, set by berthd's options. A
/// layer past one fails with [`Error::invalid`] naming the bound and the
/// option. A byte, ratio or entry bound of 0 is no bound; path length and
/// depth always have one (the depth bounds the descriptors that walking
/// and removing a tree take).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnpackLimits {
    /// Uncompressed bytes: the tar stream read, and the file content
    /// written (a sparse entry writes more than its stream holds).
    /// `berthd --max-layer-size`.
    pub max_bytes: u64,
    /// Uncompressed bytes per byte of the layer's blob, past
    /// [`RATIO_FLOOR`]. `berthd --max-layer-ratio`.
    pub max_ratio: u64,
    /// Tar entries. `berthd --max-layer-entries`.
    pub max_entries: u64,
    /// Bytes of an entry's path or link target.
    /// `berthd --max-layer-path-length`.
    pub max_path: usize,
    /// Components of an entry's path. `berthd --max-layer-depth`.
    pub max_depth: usize,
}

impl Default for UnpackLimits {
    fn default() -> UnpackLimits {
        UnpackLimits {
            max_bytes: DEFAULT_MAX_LAYER_BYTES,
            max_ratio: DEFAULT_MAX_LAYER_RATIO,
            max_entries: DEFAULT_MAX_LAYER_ENTRIES,
            max_path: DEFAULT_MAX_LAYER_PATH,
            max_depth: DEFAULT_MAX_LAYER_DEPTH,
        }
    }
}

impl UnpackLimits {
    /// The uncompressed bytes a layer whose blob is `compressed` bytes
    /// may unpack to, and the message that says so when it does more
    /// (`noun`: "layer" or "archive").
    fn byte_budget(&self, compressed: Option<u64>, noun: &str) -> (u64, String) {
        let absolute = if self.max_bytes == 0 {
            u64::MAX
        } else {
            self.max_bytes
        };
        let relative = match compressed {
            Some(c) if self.max_ratio > 0 => c.saturating_mul(self.max_ratio).max(RATIO_FLOOR),
            _ => u64::MAX,
        };
        if relative < absolute {
            (
                relative,
                format!(
                    "the {noun} unpacks to more than {} times its compressed size of {} bytes \
                     (berthd's limit, past the first {RATIO_FLOOR} bytes; raise it with \
                     berthd --max-layer-ratio, 0 for none)",
                    self.max_ratio,
                    compressed.unwrap_or(0)
                ),
            )
        } else {
            (
                absolute,
                format!(
                    "the {noun} unpacks to more than {absolute} bytes (berthd's limit; raise it \
                     with berthd --max-layer-size, 0 for none)"
                ),
            )
        }
    }
}

/// Whether `openat2` may be tried (cleared once the kernel or a seccomp
/// filter says it is not there).
static OPENAT2: AtomicBool = AtomicBool::new(true);

/// Counts what the tar reader takes from the stream: everything against
/// the layer's byte budget, and what it reads between two entries' data
/// against [`MAX_ENTRY_HEADERS`]. Past either, reads fail, and `tripped`
/// says why (the `tar` crate's error would only say "I/O error").
struct Meter {
    read: Cell<u64>,
    budget: u64,
    /// Reading headers (not an entry's data).
    in_headers: Cell<bool>,
    header_bytes: Cell<u64>,
    tripped: Cell<Option<Trip>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trip {
    Bytes,
    Headers,
}

struct Metered<'m, R> {
    inner: R,
    meter: &'m Meter,
}

impl<R: Read> Read for Metered<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let m = self.meter;
        if m.tripped.get().is_some() {
            return Err(io::Error::other("layer limit reached"));
        }
        // Never ask for more than the budget allows, plus one byte to see
        // that it is passed.
        let room = m.budget.saturating_sub(m.read.get()).saturating_add(1);
        let want = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        m.read.set(m.read.get() + n as u64);
        if m.read.get() > m.budget {
            m.tripped.set(Some(Trip::Bytes));
            return Err(io::Error::other("layer limit reached"));
        }
        if m.in_headers.get() {
            m.header_bytes.set(m.header_bytes.get() + n as u64);
            if m.header_bytes.get() > MAX_ENTRY_HEADERS {
                m.tripped.set(Some(Trip::Headers));
                return Err(io::Error::other("layer limit reached"));
            }
        }
        Ok(n)
    }
}

/// Extracts one uncompressed tar stream into `dest`, an existing (normally
/// empty) directory, as an overlayfs lower layer, within `limits`
/// (`compressed`: the size of the layer's blob, for the ratio). The whole
/// stream is read, padding after the end of the archive included, so that
/// a caller hashing it gets the layer's diff_id. See the module docs for
/// what is refused. On error `dest` holds a partial layer that the caller
/// must remove; nothing outside it has been touched.
pub fn unpack_layer(
    reader: impl Read,
    dest: &Path,
    limits: &UnpackLimits,
    compressed: Option<u64>,
) -> Result<UnpackStats> {
    let root = nix::fcntl::open(
        dest,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::internal(format!("opening {}: {e}", dest.display())))?;
    extract(reader, root, Target::Layer, limits, compressed)
}

/// Where a `docker cp` upload goes: a directory inside a container's root.
pub struct CopyTarget<'a> {
    /// The container's root directory.
    pub root: BorrowedFd<'a>,
    /// The destination below the root, cleaned components; it must be a
    /// directory (the caller checks, with the messages Docker gives).
    pub dest: &'a [Vec<u8>],
    /// The destination as the client named it, for messages.
    pub shown: &'a str,
    /// The owner every entry gets (`docker cp -a`) instead of the
    /// archive's.
    pub owner: Option<(u32, u32)>,
    /// Refuse to replace a directory with a non-directory or the reverse.
    pub no_overwrite_dir_non_dir: bool,
}

/// Extracts an uncompressed tar stream into a directory inside a
/// container's root (`docker cp`), within `limits`. The whole stream is
/// read. On error what was extracted so far stays; nothing outside the
/// container's root has been touched.
pub fn extract_into(
    reader: impl Read,
    target: CopyTarget<'_>,
    limits: &UnpackLimits,
) -> Result<UnpackStats> {
    let root = open_in_root(
        target.root,
        target.dest,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY,
    )
    .map_err(|e| Error::internal(format!("opening {}: {}", target.shown, io::Error::from(e))))?;
    extract(reader, root, Target::Copy(target), limits, None)
}

/// Opens `comps` below `root` as a chroot at `root` would resolve it:
/// symlinks are followed, but `..` and absolute targets stop at `root`.
pub fn open_in_root(root: BorrowedFd<'_>, comps: &[Vec<u8>], flags: OFlag) -> nix::Result<OwnedFd> {
    let path = if comps.is_empty() {
        b".".to_vec()
    } else {
        comps.join(&b'/')
    };
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let mut tries = 0;
    loop {
        match openat2(root, path.as_slice(), how) {
            // A rename or mount raced the lookup: the kernel asks to retry.
            Err(Errno::EAGAIN) if tries < 16 => tries += 1,
            r => return r,
        }
    }
}

/// What is being extracted.
enum Target<'a> {
    /// An image layer, into a directory of the layer store.
    Layer,
    /// A `docker cp` upload.
    Copy(CopyTarget<'a>),
}

impl Target<'_> {
    fn noun(&self) -> &'static str {
        match self {
            Target::Layer => "layer",
            Target::Copy(_) => "archive",
        }
    }

    /// What `..` may not climb out of, for messages.
    fn place(&self) -> String {
        match self {
            Target::Layer => "the layer".to_string(),
            Target::Copy(t) => t.shown.to_string(),
        }
    }
}

/// The one tar extractor: `root` is the destination directory.
fn extract(
    reader: impl Read,
    root: OwnedFd,
    target: Target<'_>,
    limits: &UnpackLimits,
    compressed: Option<u64>,
) -> Result<UnpackStats> {
    let noun = target.noun();
    let (budget, over_budget) = limits.byte_budget(compressed, noun);
    let meter = Meter {
        read: Cell::new(0),
        budget,
        in_headers: Cell::new(true),
        header_bytes: Cell::new(0),
        tripped: Cell::new(None),
    };
    let (refusal, bad) = match &target {
        Target::Layer => (
            "a layer may not touch anything outside its own directory".to_string(),
            "layer entry".to_string(),
        ),
        Target::Copy(t) => (
            format!("an archive may not touch anything outside {}", t.shown),
            format!("extracting into {}: entry", t.shown),
        ),
    };
    let mut u = Unpacker {
        root,
        target,
        limits: *limits,
        budget,
        seen: 0,
        keys: std::hash::RandomState::new(),
        nodes: HashSet::new(),
        dir_times: HashMap::new(),
        cache: None,
        stats: UnpackStats::default(),
        buf: vec![0u8; 256 << 10],
    };
    let tripped = |e: &dyn std::fmt::Display, last: &str| -> Error {
        match meter.tripped.get() {
            Some(Trip::Bytes) => Error::invalid(over_budget.clone()),
            Some(Trip::Headers) => Error::invalid(format!(
                "the headers of the entry after {last:?} (long names, PAX records) take more \
                 than {MAX_ENTRY_HEADERS} bytes; refusing the {noun}"
            )),
            None if last.is_empty() => {
                Error::invalid(format!("the {noun} is not a tar archive: {e}"))
            }
            None => Error::invalid(format!(
                "the {noun} is truncated or corrupt after entry {last:?}: {e}"
            )),
        }
    };
    let mut archive = tar::Archive::new(Metered {
        inner: reader,
        meter: &meter,
    });
    let mut last = String::new();
    {
        let entries = archive.entries().map_err(|e| tripped(&e, ""))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| tripped(&e, &last))?;
            meter.in_headers.set(false);
            let raw = entry.path_bytes().into_owned();
            last = String::from_utf8_lossy(&raw[..raw.len().min(256)]).into_owned();
            let applied = u.entry(&mut entry, &raw).and_then(|()| {
                // The rest of the entry's data (a skipped entry's, say)
                // is read here, as data, not later as the next headers.
                io::copy(&mut entry, &mut io::sink())
                    .map(|_| ())
                    .map_err(|e| Fail::Bad(format!("the {noun} is truncated or corrupt: {e}")))
            });
            applied.map_err(|e| match (meter.tripped.get(), e) {
                (Some(_), _) => tripped(&"", &last),
                (None, Fail::Refuse(why)) => Error::invalid(format!(
                    "refusing the {noun}: entry {last:?} {why}; {refusal}"
                )),
                (None, Fail::Limit(why)) => {
                    Error::invalid(format!("refusing the {noun} at entry {last:?}: {why}"))
                }
                (None, Fail::Bad(why)) => Error::invalid(format!("{bad} {last:?}: {why}")),
                (None, Fail::Io(what, e)) => {
                    Error::internal(format!("{bad} {last:?}: {what}: {e}"))
                }
            })?;
            meter.in_headers.set(true);
            meter.header_bytes.set(0);
        }
    }
    // Padding after the end-of-archive blocks: part of the diff_id, and
    // of the budget.
    meter.in_headers.set(false);
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(|e| match meter.tripped.get() {
        Some(_) => tripped(&e, &last),
        None => Error::invalid(format!("reading past the tar end: {e}")),
    })?;
    Ok(u.stats)
}

/// Why an entry failed.
enum Fail {
    /// The entry tries to reach outside the layer: a refusal.
    Refuse(String),
    /// The layer goes past one of its [`UnpackLimits`]; says which and the
    /// option that raises it.
    Limit(String),
    /// The entry is malformed or unsupported.
    Bad(String),
    /// The host failed us.
    Io(&'static str, io::Error),
}

impl Fail {
    fn io(what: &'static str) -> impl FnOnce(Errno) -> Fail {
        move |e| Fail::Io(what, io::Error::from(e))
    }
}

type Res<T> = std::result::Result<T, Fail>;

/// Metadata of an entry, PAX records applied.
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: TimeSpec,
    xattrs: Vec<(String, Vec<u8>)>,
}

struct Unpacker<'a> {
    /// The destination directory.
    root: OwnedFd,
    target: Target<'a>,
    limits: UnpackLimits,
    /// Bytes of file content the layer may write.
    budget: u64,
    /// Tar entries seen, skipped ones included.
    seen: u64,
    /// Keys `nodes` (random per layer, so entry names cannot be chosen to
    /// collide).
    keys: std::hash::RandomState,
    /// Non-directory nodes this layer created, by a hash of their cleaned
    /// path (`/`-joined): the only allowed hardlink targets. A hash, not the
    /// path, so that a million entries of 4 KiB paths do not take 4 GiB; a
    /// path that went with its directory may linger, and a hardlink to it
    /// then finds nothing there (refused as before).
    nodes: HashSet<u64>,
    /// The mtime of each directory a layer entry gave one, by inode: set
    /// on the directory again whenever an entry changes it, so that it
    /// ends with its own (inodes, unlike paths, take the same few bytes
    /// whatever the tree's depth).
    dir_times: HashMap<u64, TimeSpec>,
    /// The last parent directory resolved.
    cache: Option<(Vec<Vec<u8>>, OwnedFd)>,
    stats: UnpackStats,
    buf: Vec<u8>,
}

/// Splits a tar path into clean components: no empty or `.` components,
/// `..` applied lexically. `..` that climbs above the destination is
/// refused (`place` names it), and so are absolute paths unless
/// `strip_root` (then they are taken from the destination).
fn clean(raw: &[u8], limits: &UnpackLimits, strip_root: bool, place: &str) -> Res<Vec<Vec<u8>>> {
    if raw.first() == Some(&b'/') && !strip_root {
        return Err(Fail::Refuse("has an absolute path".into()));
    }
    if raw.contains(&0) {
        return Err(Fail::Bad("has a NUL byte in its path".into()));
    }
    if limits.max_path > 0 && raw.len() > limits.max_path {
        return Err(Fail::Limit(format!(
            "a path of {} bytes, longer than berthd's limit of {} (raise it with \
             berthd --max-layer-path-length)",
            raw.len(),
            limits.max_path
        )));
    }
    let mut out: Vec<Vec<u8>> = Vec::new();
    for c in raw.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                if out.pop().is_none() {
                    return Err(Fail::Refuse(format!("climbs out of {place} with `..`")));
                }
            }
            _ => out.push(c.to_vec()),
        }
        if limits.max_depth > 0 && out.len() > limits.max_depth {
            return Err(Fail::Limit(format!(
                "a path more than {} directories deep (berthd's limit; raise it with \
                 berthd --max-layer-depth)",
                limits.max_depth
            )));
        }
    }
    Ok(out)
}

fn show(comps: &[Vec<u8>]) -> String {
    String::from_utf8_lossy(&comps.join(&b'/')).into_owned()
}

fn lstat_at(dir: BorrowedFd<'_>, name: &[u8]) -> Res<Option<FileStat>> {
    crate::util::dirfd::lstat_at(dir, name).map_err(|e| Fail::Io("stat", e.into()))
}

impl Unpacker<'_> {
    fn copy(&self) -> Option<&CopyTarget<'_>> {
        match &self.target {
            Target::Layer => None,
            Target::Copy(t) => Some(t),
        }
    }

    /// Cleans an entry's path or hardlink target.
    fn clean(&self, raw: &[u8]) -> Res<Vec<Vec<u8>>> {
        clean(
            raw,
            &self.limits,
            self.copy().is_some(),
            &self.target.place(),
        )
    }

    /// Removes what is at `name` for an entry that is a directory or not
    /// (`dir`), unless the upload refuses to replace a directory with a
    /// non-directory or the reverse.
    fn replace(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &[u8],
        comps: &[Vec<u8>],
        entry_is_dir: bool,
    ) -> Res<()> {
        if self.copy().is_some_and(|t| t.no_overwrite_dir_non_dir)
            && let Some(st) = lstat_at(dir, name)?
        {
            let path = show(comps);
            let is_dir = file_type(&st) == SFlag::S_IFDIR;
            if is_dir && !entry_is_dir {
                return Err(Fail::Bad(format!(
                    "cannot overwrite directory {path:?} with non-directory {path:?}"
                )));
            }
            if !is_dir && entry_is_dir {
                return Err(Fail::Bad(format!(
                    "cannot overwrite non-directory {path:?} with directory {path:?}"
                )));
            }
        }
        self.clear(dir, name, comps)
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>, raw: &[u8]) -> Res<()> {
        use tar::EntryType as T;
        self.seen += 1;
        if self.limits.max_entries > 0 && self.seen > self.limits.max_entries {
            return Err(Fail::Limit(format!(
                "the layer has more than {} entries (berthd's limit; raise it with \
                 berthd --max-layer-entries, 0 for none)",
                self.limits.max_entries
            )));
        }
        let kind = entry.header().entry_type();
        if matches!(kind, T::XGlobalHeader) {
            return Ok(());
        }
        let comps = self.clean(raw)?;
        let Some((name, parent)) = comps.split_last() else {
            if self.copy().is_some() {
                // The destination itself: left as it is, as Docker does.
                return Ok(());
            }
            // The layer root itself (`./`).
            if kind.is_dir() {
                let meta = self.meta(entry)?;
                let fd = self.root.try_clone().map_err(|e| Fail::Io("dup", e))?;
                self.apply_fd(&fd, &meta, true)?;
                self.keep_time(fd.as_fd(), meta.mtime)?;
                self.stats.entries += 1;
                return Ok(());
            }
            return Err(Fail::Bad(
                "names the layer root but is not a directory".into(),
            ));
        };

        if self.copy().is_some() && name.starts_with(WHITEOUT_PREFIX) {
            return Err(Fail::Bad(
                "berth refuses names starting with .wh.: image layers use them to mark deleted \
                 files"
                    .into(),
            ));
        }
        // AUFS metadata (`.wh..wh.plnk`, `.wh..wh.aufs`, ...) anywhere in
        // the path is skipped, except the opaque marker.
        if parent.iter().any(|c| c.starts_with(WHITEOUT_META_PREFIX))
            || (name.starts_with(WHITEOUT_META_PREFIX) && name.as_slice() != WHITEOUT_OPAQUE)
        {
            return Ok(());
        }
        if name.as_slice() == WHITEOUT_OPAQUE {
            let dir = self.parent(parent, true)?;
            set_xattr_fd(dir.as_fd(), OPAQUE_XATTR, b"y")
                .map_err(|e| Fail::Io("setting the opaque xattr", e))?;
            self.stats.entries += 1;
            return Ok(());
        }
        if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
            if hidden.is_empty() || hidden == b"." || hidden == b".." {
                return Err(Fail::Bad("is a whiteout of no name".into()));
            }
            let meta = self.meta(entry)?;
            let dir = self.parent(parent, true)?;
            let mut target = parent.to_vec();
            target.push(hidden.to_vec());
            self.clear(dir.as_fd(), hidden, &target)?;
            mknodat(
                dir.as_fd(),
                hidden,
                SFlag::S_IFCHR,
                Mode::from_bits_truncate(0o600),
                0,
            )
            .map_err(Fail::io("creating a whiteout"))?;
            // A whiteout is no hardlink target.
            self.nodes.remove(&self.key(&target.join(&b'/')));
            fchownat(
                dir.as_fd(),
                hidden,
                Some(Uid::from_raw(meta.uid)),
                Some(Gid::from_raw(meta.gid)),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(Fail::io("chown"))?;
            self.retime(dir.as_fd())?;
            self.stats.entries += 1;
            return Ok(());
        }

        let path = comps.join(&b'/');
        match kind {
            T::Directory => {
                let meta = self.meta(entry)?;
                let dir = self.parent(parent, true)?;
                let merge = matches!(lstat_at(dir.as_fd(), name)?, Some(st) if file_type(&st) == SFlag::S_IFDIR);
                if !merge {
                    self.replace(dir.as_fd(), name, &comps, true)?;
                    mkdirat(
                        dir.as_fd(),
                        name.as_slice(),
                        Mode::from_bits_truncate(0o700),
                    )
                    .map_err(Fail::io("mkdir"))?;
                }
                let fd = openat(dir.as_fd(), name.as_slice(), dir_flags(), Mode::empty())
                    .map_err(Fail::io("opening the new directory"))?;
                self.apply_fd(&fd, &meta, true)?;
                self.keep_time(fd.as_fd(), meta.mtime)?;
                self.retime(dir.as_fd())?;
            }
            T::Regular | T::Continuous | T::GNUSparse => {
                let meta = self.meta(entry)?;
                let dir = self.parent(parent, true)?;
                self.replace(dir.as_fd(), name, &comps, false)?;
                let fd = openat(
                    dir.as_fd(),
                    name.as_slice(),
                    OFlag::O_WRONLY
                        | OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o600),
                )
                .map_err(Fail::io("creating the file"))?;
                let mut file = File::from(fd);
                loop {
                    let n = match entry.read(&mut self.buf) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => {
                            return Err(Fail::Bad(format!(
                                "the layer is truncated or corrupt: {e}"
                            )));
                        }
                    };
                    self.stats.bytes += n as u64;
                    if self.stats.bytes > self.budget {
                        // A sparse entry writes more than its stream holds.
                        return Err(Fail::Limit(format!(
                            "its files hold more than {} bytes (berthd's limit; raise it \
                             with berthd --max-layer-size or --max-layer-ratio, 0 for none)",
                            self.budget
                        )));
                    }
                    file.write_all(&self.buf[..n])
                        .map_err(|e| Fail::Io("writing the file", e))?;
                }
                self.apply_fd(&OwnedFd::from(file), &meta, true)?;
                self.nodes.insert(self.key(&path));
                self.retime(dir.as_fd())?;
            }
            T::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                if target.is_empty() || target.contains(&0) {
                    return Err(Fail::Bad(
                        "is a symlink with an empty or invalid target".into(),
                    ));
                }
                if self.limits.max_path > 0 && target.len() > self.limits.max_path {
                    return Err(Fail::Limit(format!(
                        "a symlink target of {} bytes, longer than berthd's limit of {} \
                         (raise it with berthd --max-layer-path-length)",
                        target.len(),
                        self.limits.max_path
                    )));
                }
                let meta = self.meta(entry)?;
                let dir = self.parent(parent, true)?;
                self.replace(dir.as_fd(), name, &comps, false)?;
                symlinkat(target.as_slice(), dir.as_fd(), name.as_slice())
                    .map_err(Fail::io("creating the symlink"))?;
                self.apply_at(dir.as_fd(), name, &meta, true)?;
                self.nodes.insert(self.key(&path));
                self.retime(dir.as_fd())?;
            }
            T::Link => {
                let raw_target = entry
                    .link_name_bytes()
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                let tcomps = match self.clean(&raw_target) {
                    Ok(t) => t,
                    Err(Fail::Refuse(why)) => {
                        return Err(Fail::Refuse(format!(
                            "is a hardlink to {:?}, which {why}",
                            String::from_utf8_lossy(&raw_target)
                        )));
                    }
                    Err(e) => return Err(e),
                };
                let tpath = tcomps.join(&b'/');
                if tpath == path {
                    // A link to itself changes nothing.
                    self.stats.entries += 1;
                    return Ok(());
                }
                let Some((tname, tparent)) = tcomps.split_last() else {
                    return Err(Fail::Refuse(format!(
                        "is a hardlink to {}",
                        self.target.place()
                    )));
                };
                if !self.nodes.contains(&self.key(&tpath)) {
                    return Err(Fail::Refuse(format!(
                        "is a hardlink to {:?}, which is not a file this {} extracted before it",
                        String::from_utf8_lossy(&raw_target),
                        self.target.noun()
                    )));
                }
                let tdir = self.parent(tparent, false)?;
                match lstat_at(tdir.as_fd(), tname)? {
                    Some(st) if file_type(&st) != SFlag::S_IFDIR => {}
                    _ => {
                        return Err(Fail::Refuse(format!(
                            "is a hardlink to {:?}, which is not a file of this {}",
                            show(&tcomps),
                            self.target.noun()
                        )));
                    }
                }
                let dir = self.parent(parent, true)?;
                self.replace(dir.as_fd(), name, &comps, false)?;
                // Hold a descriptor of the target's directory over the
                // clear (which may drop the cache).
                linkat(
                    tdir.as_fd(),
                    tname.as_slice(),
                    dir.as_fd(),
                    name.as_slice(),
                    AtFlags::empty(),
                )
                .map_err(Fail::io("creating the hardlink"))?;
                self.nodes.insert(self.key(&path));
                self.retime(dir.as_fd())?;
            }
            T::Char | T::Block | T::Fifo => {
                let meta = self.meta(entry)?;
                let (sflag, dev) = match kind {
                    T::Fifo => (SFlag::S_IFIFO, 0),
                    _ => {
                        let h = entry.header();
                        let major = h.device_major().ok().flatten().unwrap_or(0);
                        let minor = h.device_minor().ok().flatten().unwrap_or(0);
                        let s = if kind == T::Char {
                            SFlag::S_IFCHR
                        } else {
                            SFlag::S_IFBLK
                        };
                        (s, libc::makedev(major, minor))
                    }
                };
                let dir = self.parent(parent, true)?;
                self.replace(dir.as_fd(), name, &comps, false)?;
                mknodat(
                    dir.as_fd(),
                    name.as_slice(),
                    sflag,
                    Mode::from_bits_truncate(0o600),
                    dev,
                )
                .map_err(Fail::io("creating the device node"))?;
                self.apply_at(dir.as_fd(), name, &meta, false)?;
                self.nodes.insert(self.key(&path));
                self.retime(dir.as_fd())?;
            }
            other => {
                return Err(Fail::Bad(format!(
                    "has the tar entry type {other:?}, which an {} may not contain",
                    if self.copy().is_some() {
                        "archive"
                    } else {
                        "image layer"
                    }
                )));
            }
        }
        self.stats.entries += 1;
        Ok(())
    }

    /// Mode, owner, times and xattrs, PAX records taking precedence over
    /// the ustar fields.
    fn meta<R: Read>(&self, entry: &mut tar::Entry<'_, R>) -> Res<Meta> {
        let h = entry.header();
        let bad = |what: &str, e: io::Error| Fail::Bad(format!("has an unreadable {what}: {e}"));
        let mode = h.mode().map_err(|e| bad("mode", e))? & 0o7777;
        let mut uid = h.uid().map_err(|e| bad("uid", e))?;
        let mut gid = h.gid().map_err(|e| bad("gid", e))?;
        let mut mtime = TimeSpec::new(h.mtime().map_err(|e| bad("mtime", e))? as i64, 0);
        let mut xattrs = Vec::new();
        if let Some(pax) = entry
            .pax_extensions()
            .map_err(|e| Fail::Bad(format!("has unreadable PAX records: {e}")))?
        {
            for ext in pax {
                let ext = ext.map_err(|e| Fail::Bad(format!("has a malformed PAX record: {e}")))?;
                let Ok(key) = ext.key() else { continue };
                let value = ext.value_bytes();
                match key {
                    "uid" => {
                        uid = pax_int(value).ok_or_else(|| Fail::Bad("has a bad PAX uid".into()))?
                    }
                    "gid" => {
                        gid = pax_int(value).ok_or_else(|| Fail::Bad("has a bad PAX gid".into()))?
                    }
                    "mtime" => {
                        mtime = pax_time(value)
                            .ok_or_else(|| Fail::Bad("has a bad PAX mtime".into()))?
                    }
                    _ => {
                        if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                            if self.copy().is_some()
                                && (name.starts_with("trusted.") || name == "security.selinux")
                            {
                                // Not the client's to set in a container.
                                continue;
                            }
                            if name.starts_with("trusted.overlay.") {
                                tracing::warn!(
                                    xattr = name,
                                    "dropping an overlayfs xattr carried by a layer"
                                );
                                continue;
                            }
                            xattrs.push((name.to_string(), value.to_vec()));
                        }
                    }
                }
            }
        }
        let id = |v: u64, what: &str| {
            u32::try_from(v).map_err(|_| Fail::Bad(format!("has an out-of-range {what} {v}")))
        };
        let (uid, gid) = match self.copy().and_then(|t| t.owner) {
            Some(owner) => owner,
            None => (id(uid, "uid")?, id(gid, "gid")?),
        };
        Ok(Meta {
            mode,
            uid,
            gid,
            mtime,
            xattrs,
        })
    }

    /// Owner, then mode (chown clears set-id bits), xattrs and, for files,
    /// times, on an open descriptor.
    fn apply_fd(&self, fd: &OwnedFd, meta: &Meta, times: bool) -> Res<()> {
        fchown(
            fd.as_fd(),
            Some(Uid::from_raw(meta.uid)),
            Some(Gid::from_raw(meta.gid)),
        )
        .map_err(Fail::io("chown"))?;
        fchmod(fd.as_fd(), Mode::from_bits_truncate(meta.mode)).map_err(Fail::io("chmod"))?;
        for (k, v) in &meta.xattrs {
            xattr_result(k, set_xattr_fd(fd.as_fd(), k, v))?;
        }
        if times {
            futimens(fd.as_fd(), &meta.mtime, &meta.mtime).map_err(Fail::io("setting times"))?;
        }
        Ok(())
    }

    /// The same for a node that cannot be opened (symlinks, devices,
    /// fifos), by name in its directory, never following a symlink.
    fn apply_at(&self, dir: BorrowedFd<'_>, name: &[u8], meta: &Meta, symlink: bool) -> Res<()> {
        fchownat(
            dir,
            name,
            Some(Uid::from_raw(meta.uid)),
            Some(Gid::from_raw(meta.gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(Fail::io("chown"))?;
        if !symlink {
            // The name was just created by mknodat and is no symlink; the
            // flag makes sure of it.
            fchmodat(
                dir,
                name,
                Mode::from_bits_truncate(meta.mode),
                FchmodatFlags::NoFollowSymlink,
            )
            .map_err(Fail::io("chmod"))?;
        }
        for (k, v) in &meta.xattrs {
            xattr_result(k, set_xattr_nofollow_at(dir, name, k, v))?;
        }
        utimensat(
            dir,
            name,
            &meta.mtime,
            &meta.mtime,
            UtimensatFlags::NoFollowSymlink,
        )
        .map_err(Fail::io("setting times"))?;
        Ok(())
    }

    /// Removes whatever is at `name` in `dir` (a whole tree for a
    /// directory), so that a later entry replaces an earlier one.
    fn clear(&mut self, dir: BorrowedFd<'_>, name: &[u8], comps: &[Vec<u8>]) -> Res<()> {
        let Some(st) = lstat_at(dir, name)? else {
            return Ok(());
        };
        let path = comps.join(&b'/');
        if file_type(&st) == SFlag::S_IFDIR {
            // The cached parent might be this directory or below it.
            self.cache = None;
            remove_tree(dir, name).map_err(|e| Fail::Io("removing a replaced directory", e))?;
        } else {
            unlinkat(dir, name, UnlinkatFlags::NoRemoveDir)
                .map_err(Fail::io("removing a replaced file"))?;
        }
        self.nodes.remove(&self.key(&path));
        Ok(())
    }

    /// A descriptor of the directory `comps` below the root, never
    /// following a symlink; missing directories are created (0755,
    /// root-owned, as Docker does) when `create`.
    fn parent(&mut self, comps: &[Vec<u8>], create: bool) -> Res<OwnedFd> {
        if comps.is_empty() {
            return self.root.try_clone().map_err(|e| Fail::Io("dup", e));
        }
        if let Some((p, fd)) = &self.cache
            && p.as_slice() == comps
        {
            return fd.try_clone().map_err(|e| Fail::Io("dup", e));
        }
        let fd = if self.copy().is_some() {
            self.walk_in_root(comps, create)?
        } else {
            match self.resolve_beneath(comps) {
                Some(fd) => fd,
                None => self.walk(comps, create)?,
            }
        };
        self.cache = Some((
            comps.to_vec(),
            fd.try_clone().map_err(|e| Fail::Io("dup", e))?,
        ));
        Ok(fd)
    }

    /// One `openat2` call that refuses symlinks and anything not beneath
    /// the root. `None` means "walk instead" (missing kernel support, a
    /// missing directory, or a symlink on the way, which the walk names).
    fn resolve_beneath(&self, comps: &[Vec<u8>]) -> Option<OwnedFd> {
        if !OPENAT2.load(Ordering::Relaxed) {
            return None;
        }
        let path = comps.join(&b'/');
        let how = OpenHow::new()
            .flags(OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
            .resolve(
                ResolveFlag::RESOLVE_BENEATH
                    | ResolveFlag::RESOLVE_NO_SYMLINKS
                    | ResolveFlag::RESOLVE_NO_MAGICLINKS
                    | ResolveFlag::RESOLVE_NO_XDEV,
            );
        match openat2(self.root.as_fd(), path.as_slice(), how) {
            Ok(fd) => Some(fd),
            Err(Errno::ENOSYS | Errno::EPERM | Errno::E2BIG | Errno::EINVAL) => {
                OPENAT2.store(false, Ordering::Relaxed);
                None
            }
            Err(_) => None,
        }
    }

    /// Component by component: each step opens one name relative to the
    /// previous directory with `O_NOFOLLOW | O_DIRECTORY`.
    fn walk(&mut self, comps: &[Vec<u8>], create: bool) -> Res<OwnedFd> {
        let mut cur = self.root.try_clone().map_err(|e| Fail::Io("dup", e))?;
        for (i, c) in comps.iter().enumerate() {
            let mut tries = 0;
            let mut made = false;
            cur = loop {
                tries += 1;
                match openat(cur.as_fd(), c.as_slice(), dir_flags(), Mode::empty()) {
                    Ok(fd) => {
                        if made {
                            // A new directory: a time kept for an earlier
                            // one with this inode is not its own.
                            let st = fstat(fd.as_fd()).map_err(Fail::io("stat"))?;
                            self.dir_times.remove(&st.st_ino);
                        }
                        break fd;
                    }
                    Err(Errno::ENOENT) if create && tries < 3 => {
                        match mkdirat(cur.as_fd(), c.as_slice(), Mode::from_bits_truncate(0o755)) {
                            Ok(()) => {
                                made = true;
                                self.retime(cur.as_fd())?;
                                continue;
                            }
                            Err(Errno::EEXIST) => continue,
                            Err(e) => {
                                return Err(Fail::Io("creating a parent directory", e.into()));
                            }
                        }
                    }
                    Err(Errno::ENOENT) => {
                        return Err(Fail::Bad(format!(
                            "needs the directory {:?}, which is missing",
                            show(&comps[..=i])
                        )));
                    }
                    Err(e @ (Errno::ENOTDIR | Errno::ELOOP)) => {
                        let is_link = matches!(
                            lstat_at(cur.as_fd(), c)?,
                            Some(st) if file_type(&st) == SFlag::S_IFLNK
                        );
                        return Err(if is_link {
                            Fail::Refuse(format!(
                                "goes through the symlink {:?}",
                                show(&comps[..=i])
                            ))
                        } else if e == Errno::ENOTDIR {
                            Fail::Bad(format!(
                                "goes through {:?}, which is not a directory",
                                show(&comps[..=i])
                            ))
                        } else {
                            Fail::Io("opening a parent directory", e.into())
                        });
                    }
                    Err(e) => return Err(Fail::Io("opening a parent directory", e.into())),
                }
            };
        }
        Ok(cur)
    }

    /// For an upload: the directory `comps` below the destination, resolved
    /// inside the container's root as a chroot would (a symlink in the
    /// container is followed, never out of it); missing directories are
    /// created (0755, root's, as Docker does) when `create`.
    fn walk_in_root(&mut self, comps: &[Vec<u8>], create: bool) -> Res<OwnedFd> {
        let Target::Copy(t) = &self.target else {
            unreachable!("only uploads resolve in a root");
        };
        let (root, dest) = (t.root, t.dest);
        let mut full = dest.to_vec();
        full.extend(comps.iter().cloned());
        let base = dest.len();
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY;
        let fail = |e: Errno, upto: &[Vec<u8>]| match e {
            Errno::ENOTDIR => Fail::Bad(format!(
                "goes through {:?}, which is not a directory",
                show(upto)
            )),
            Errno::ENOENT => Fail::Bad(format!(
                "needs the directory {:?}, which is missing",
                show(upto)
            )),
            Errno::ELOOP => Fail::Bad(format!(
                "goes through {:?}: too many levels of symbolic links",
                show(upto)
            )),
            e => Fail::Io("opening a parent directory", e.into()),
        };
        match open_in_root(root, &full, flags) {
            Ok(fd) => return Ok(fd),
            Err(Errno::ENOENT) if create => {}
            Err(e) => return Err(fail(e, comps)),
        }
        // Create what is missing, one level at a time.
        let mut cur = self.root.try_clone().map_err(|e| Fail::Io("dup", e))?;
        for i in base..full.len() {
            let mut made = false;
            let next = match open_in_root(root, &full[..=i], flags) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) => {
                    match mkdirat(
                        cur.as_fd(),
                        full[i].as_slice(),
                        Mode::from_bits_truncate(0o755),
                    ) {
                        Ok(()) => made = true,
                        Err(Errno::EEXIST) => {}
                        Err(e) => return Err(Fail::Io("creating a parent directory", e.into())),
                    }
                    open_in_root(root, &full[..=i], flags).map_err(|e| fail(e, &full[base..=i]))?
                }
                Err(e) => return Err(fail(e, &full[base..=i])),
            };
            if made {
                self.retime(cur.as_fd())?;
                // A new directory: a time kept for an earlier one with
                // this inode is not its own.
                let st = fstat(next.as_fd()).map_err(Fail::io("stat"))?;
                self.dir_times.remove(&st.st_ino);
            }
            cur = next;
        }
        Ok(cur)
    }

    /// The key of a cleaned path in `nodes`.
    fn key(&self, path: &[u8]) -> u64 {
        self.keys.hash_one(path)
    }

    /// Remembers `mtime` as the directory `fd`'s own, to be set again
    /// whenever an entry changes the directory.
    fn keep_time(&mut self, fd: BorrowedFd<'_>, mtime: TimeSpec) -> Res<()> {
        let st = fstat(fd).map_err(Fail::io("stat"))?;
        self.dir_times.insert(st.st_ino, mtime);
        Ok(())
    }

    /// Sets the directory `dir`'s own mtime again after an entry created or
    /// removed something in it, if the layer gave it one.
    fn retime(&self, dir: BorrowedFd<'_>) -> Res<()> {
        if self.dir_times.is_empty() {
            return Ok(());
        }
        let st = fstat(dir).map_err(Fail::io("stat"))?;
        if let Some(t) = self.dir_times.get(&st.st_ino) {
            futimens(dir, t, t).map_err(Fail::io("setting directory times"))?;
        }
        Ok(())
    }
}

/// As Docker: a filesystem that does not support an xattr, or refuses it
/// (`EPERM`, say `security.selinux` under some LSMs), costs the xattr and a
/// warning, not the layer.
fn xattr_result(key: &str, r: io::Result<()>) -> Res<()> {
    match r {
        Ok(()) => Ok(()),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP | libc::EPERM)) => {
            tracing::warn!(xattr = key, error = %e, "ignoring an xattr the filesystem refuses");
            Ok(())
        }
        Err(e) => Err(Fail::Bad(format!("could not set the xattr {key}: {e}"))),
    }
}

fn pax_int(v: &[u8]) -> Option<u64> {
    std::str::from_utf8(v).ok()?.trim().parse().ok()
}

/// A PAX time: decimal seconds with an optional fraction (may be negative).
fn pax_time(v: &[u8]) -> Option<TimeSpec> {
    let s = std::str::from_utf8(v).ok()?.trim();
    let (secs, frac) = match s.split_once('.') {
        Some((a, b)) => (a, b),
        None => (s, ""),
    };
    let secs: i64 = secs.parse().ok()?;
    let mut nanos: i64 = 0;
    if !frac.is_empty() {
        if !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let digits = &frac[..frac.len().min(9)];
        nanos = digits.parse::<i64>().ok()? * 10i64.pow(9 - digits.len() as u32);
    }
    if secs < 0 && nanos > 0 {
        // -1.25 is 1.25 s before the epoch.
        Some(TimeSpec::new(secs - 1, 1_000_000_000 - nanos))
    } else {
        Some(TimeSpec::new(secs, nanos))
    }
}

/// `lsetxattr` on `name` in `dir`, through `/proc/self/fd/N/name`: the
/// magic link names the directory we hold, and the last component is not
/// followed.
fn set_xattr_nofollow_at(
    dir: BorrowedFd<'_>,
    name: &[u8],
    key: &str,
    value: &[u8],
) -> io::Result<()> {
    let mut p = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
    p.extend_from_slice(name);
    let p = cstring(&p)?;
    let k = cstring(key.as_bytes())?;
    // SAFETY: NUL-terminated path and name, value from one slice.
    let r = unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            k.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Tar building for tests, hostile entries included (names and link
/// targets are written raw, bypassing the `tar` crate's own checks).
#[cfg(test)]
pub(crate) mod testtar {
    use tar::{EntryType, Header};

    #[derive(Default)]
    pub struct Tar {
        b: Option<tar::Builder<Vec<u8>>>,
    }

    pub const MTIME: u64 = 1_600_000_000;

    impl Tar {
        pub fn new() -> Tar {
            Tar {
                b: Some(tar::Builder::new(Vec::new())),
            }
        }

        fn b(&mut self) -> &mut tar::Builder<Vec<u8>> {
            self.b.as_mut().unwrap()
        }

        pub fn header(kind: EntryType, path: &str, mode: u32, size: u64) -> Header {
            let mut h = Header::new_gnu();
            let name = &mut h.as_old_mut().name;
            assert!(path.len() < name.len(), "test path too long");
            name[..path.len()].copy_from_slice(path.as_bytes());
            h.set_entry_type(kind);
            h.set_mode(mode);
            h.set_size(size);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(MTIME);
            h
        }

        fn link_name(h: &mut Header, target: &str) {
            let l = &mut h.as_old_mut().linkname;
            assert!(target.len() < l.len(), "test link too long");
            l[..target.len()].copy_from_slice(target.as_bytes());
        }

        pub fn append(&mut self, mut h: Header, data: &[u8]) -> &mut Tar {
            h.set_cksum();
            self.b().append(&h, data).unwrap();
            self
        }

        pub fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Tar {
            self.b()
                .append_pax_extensions(records.iter().map(|(k, v)| (*k, *v)))
                .unwrap();
            self
        }

        pub fn dir(&mut self, path: &str, mode: u32) -> &mut Tar {
            self.append(Self::header(EntryType::Directory, path, mode, 0), &[])
        }

        pub fn file(&mut self, path: &str, data: &[u8], mode: u32) -> &mut Tar {
            self.append(
                Self::header(EntryType::Regular, path, mode, data.len() as u64),
                data,
            )
        }

        pub fn file_owned(
            &mut self,
            path: &str,
            data: &[u8],
            mode: u32,
            uid: u64,
            gid: u64,
            mtime: u64,
        ) -> &mut Tar {
            let mut h = Self::header(EntryType::Regular, path, mode, data.len() as u64);
            h.set_uid(uid);
            h.set_gid(gid);
            h.set_mtime(mtime);
            self.append(h, data)
        }

        pub fn symlink(&mut self, path: &str, target: &str) -> &mut Tar {
            let mut h = Self::header(EntryType::Symlink, path, 0o777, 0);
            Self::link_name(&mut h, target);
            self.append(h, &[])
        }

        pub fn hardlink(&mut self, path: &str, target: &str) -> &mut Tar {
            let mut h = Self::header(EntryType::Link, path, 0o644, 0);
            Self::link_name(&mut h, target);
            self.append(h, &[])
        }

        pub fn device(&mut self, path: &str, kind: EntryType, major: u32, minor: u32) -> &mut Tar {
            let mut h = Self::header(kind, path, 0o666, 0);
            h.set_device_major(major).unwrap();
            h.set_device_minor(minor).unwrap();
            self.append(h, &[])
        }

        pub fn bytes(&mut self) -> Vec<u8> {
            self.b.take().unwrap().into_inner().unwrap()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testtar::{MTIME, Tar};
    use super::*;
    use std::collections::BTreeMap;
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
    use tar::EntryType;

    fn getxattr(path: &Path, key: &str) -> Option<Vec<u8>> {
        let p = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        let k = std::ffi::CString::new(key).unwrap();
        let mut buf = vec![0u8; 256];
        // SAFETY: valid C strings and buffer.
        let n =
            unsafe { libc::lgetxattr(p.as_ptr(), k.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            return None;
        }
        buf.truncate(n as usize);
        Some(buf)
    }

    /// Unpacks with the default limits.
    fn unpack(reader: impl Read, dest: &Path) -> Result<UnpackStats> {
        unpack_layer(reader, dest, &UnpackLimits::default(), None)
    }

    /// Tests here create devices and chown: they need root.
    macro_rules! require_root {
        () => {
            if !crate::util::testing::have_root() {
                return;
            }
        };
    }

    /// A v2 file capability blob granting cap_net_raw (bit 13), effective.
    fn cap_net_raw() -> Vec<u8> {
        let mut v = Vec::new();
        for w in [0x0200_0001u32, 1 << 13, 0, 0, 0] {
            v.extend_from_slice(&w.to_le_bytes());
        }
        v
    }

    #[test]
    fn unpacks_every_kind_of_entry() {
        require_root!();
        let cap = cap_net_raw();
        let mut t = Tar::new();
        t.dir("./", 0o755)
            .dir("etc/", 0o755)
            .file_owned(
                "etc/passwd",
                b"root:x:0:0::/root:/bin/sh\n",
                0o644,
                1000,
                1001,
                2000,
            )
            .file("etc/old", b"gone", 0o644)
            .file("bin/busybox", b"\x7fELF...", 0o4755)
            .symlink("bin/sh", "busybox")
            .symlink("lib", "/usr/lib")
            .hardlink("bin/busybox2", "bin/busybox")
            .hardlink("./bin/busybox3", "./bin/busybox")
            .dir("tmp/", 0o1777)
            .dir("var/", 0o755)
            .file("var/.wh..wh..opq", b"", 0o644)
            .file("etc/.wh.shadow", b"", 0o644)
            .device("dev/null", EntryType::Char, 1, 3)
            .device("dev/loop0", EntryType::Block, 7, 0)
            .device("run/fifo", EntryType::Fifo, 0, 0)
            .pax(&[
                ("SCHILY.xattr.security.capability", &cap),
                ("SCHILY.xattr.user.berth", b"yes"),
            ])
            .file("bin/ping", b"ping", 0o755)
            // An overlayfs xattr in the tar itself is dropped.
            .pax(&[("SCHILY.xattr.trusted.overlay.opaque", b"y")])
            .dir("usr/", 0o755)
            // AUFS metadata is skipped.
            .file(".wh..wh.plnk/123", b"x", 0o644)
            .dir(".wh..wh.aufs/", 0o755)
            // A later entry replaces an earlier one.
            .file("etc/motd", b"first", 0o644)
            .symlink("etc/motd", "issue")
            .symlink("etc/link-then-file", "/etc/passwd")
            .file("etc/link-then-file", b"file", 0o600)
            .dir("merge/", 0o700)
            .file("merge/a", b"a", 0o644)
            .dir("merge/", 0o750)
            .file("replaced-dir/inner", b"x", 0o644)
            .file("replaced-dir", b"now a file", 0o644)
            // PAX owner and times beat the ustar fields.
            .pax(&[
                ("uid", b"70000"),
                ("gid", b"70001"),
                ("mtime", b"1234567890.5"),
            ])
            .file("pax-owned", b"p", 0o640);
        // The directory's own mtime, written after its contents.
        let mut h = Tar::header(EntryType::Directory, "etc/", 0o755, 0);
        h.set_mtime(1000);
        t.append(h, &[]);
        let tar = t.bytes();

        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let stats = unpack(&tar[..], d).unwrap();
        assert!(stats.entries >= 25, "{stats:?}");
        assert_eq!(stats.bytes, 26 + 4 + 7 + 4 + 5 + 4 + 1 + 1 + 10 + 1);

        let md = |p: &str| std::fs::symlink_metadata(d.join(p)).unwrap();
        let passwd = md("etc/passwd");
        assert_eq!((passwd.uid(), passwd.gid()), (1000, 1001));
        assert_eq!(passwd.mode() & 0o7777, 0o644);
        assert_eq!(passwd.mtime(), 2000);
        assert_eq!(md("bin/busybox").mode() & 0o7777, 0o4755, "setuid kept");
        assert_eq!(md("tmp").mode() & 0o7777, 0o1777, "sticky kept");
        assert_eq!(
            std::fs::read_link(d.join("bin/sh")).unwrap(),
            Path::new("busybox")
        );
        assert_eq!(
            std::fs::read_link(d.join("lib")).unwrap(),
            Path::new("/usr/lib")
        );
        assert_eq!(md("bin/busybox2").ino(), md("bin/busybox").ino());
        assert_eq!(md("bin/busybox3").ino(), md("bin/busybox").ino());
        assert_eq!(md("bin/busybox").nlink(), 3);

        // Whiteouts.
        assert_eq!(
            getxattr(&d.join("var"), OPAQUE_XATTR).as_deref(),
            Some(&b"y"[..])
        );
        assert!(!d.join("var/.wh..wh..opq").exists());
        let wh = md("etc/shadow");
        assert!(wh.file_type().is_char_device());
        assert_eq!(wh.rdev(), 0);
        assert!(!d.join("etc/.wh.shadow").exists());
        assert!(d.join("etc/old").exists());

        // Devices.
        let null = md("dev/null");
        assert!(null.file_type().is_char_device());
        assert_eq!(null.rdev(), libc::makedev(1, 3));
        assert_eq!(null.mode() & 0o777, 0o666);
        assert!(md("dev/loop0").file_type().is_block_device());
        assert!(md("run/fifo").file_type().is_fifo());

        // Xattrs.
        assert_eq!(
            getxattr(&d.join("bin/ping"), "security.capability"),
            Some(cap)
        );
        assert_eq!(
            getxattr(&d.join("bin/ping"), "user.berth").as_deref(),
            Some(&b"yes"[..])
        );
        assert_eq!(getxattr(&d.join("usr"), OPAQUE_XATTR), None);

        // Skipped AUFS metadata.
        assert!(!d.join(".wh..wh.plnk").exists());
        assert!(!d.join(".wh..wh.aufs").exists());

        // Replacements and merges.
        assert_eq!(
            std::fs::read_link(d.join("etc/motd")).unwrap(),
            Path::new("issue")
        );
        let f = md("etc/link-then-file");
        assert!(f.file_type().is_file());
        assert_eq!(
            std::fs::read(d.join("etc/link-then-file")).unwrap(),
            b"file"
        );
        assert_eq!(md("merge").mode() & 0o777, 0o750);
        assert!(d.join("merge/a").exists());
        assert_eq!(
            std::fs::read(d.join("replaced-dir")).unwrap(),
            b"now a file"
        );

        let p = md("pax-owned");
        assert_eq!((p.uid(), p.gid()), (70000, 70001));
        assert_eq!((p.mtime(), p.mtime_nsec()), (1234567890, 500_000_000));

        // Directory times survive the creation of their contents.
        assert_eq!(md("etc").mtime(), 1000);
        eprintln!("openat2 in use: {}", OPENAT2.load(Ordering::Relaxed));
        assert_eq!(md("var").mtime() as u64, MTIME);
        assert_eq!(std::fs::metadata(d).unwrap().mtime() as u64, MTIME);
        assert_eq!(
            std::fs::metadata(d).unwrap().permissions().mode() & 0o777,
            0o755
        );
    }

    /// Everything under `root` except `skip`: path to (type, mode, uid,
    /// size, mtime, content).
    fn snapshot(root: &Path, skip: &Path) -> BTreeMap<PathBuf, String> {
        fn walk(p: &Path, skip: &Path, out: &mut BTreeMap<PathBuf, String>) {
            if p == skip {
                return;
            }
            let m = std::fs::symlink_metadata(p).unwrap();
            let content = if m.is_file() {
                format!("{:?}", std::fs::read(p).unwrap())
            } else if m.file_type().is_symlink() {
                format!("{:?}", std::fs::read_link(p).unwrap())
            } else {
                String::new()
            };
            out.insert(
                p.to_path_buf(),
                format!(
                    "{:o} {} {} {} {}.{} {} {content}",
                    m.mode(),
                    m.uid(),
                    m.size(),
                    m.nlink(),
                    m.mtime(),
                    m.mtime_nsec(),
                    m.ino()
                ),
            );
            if m.is_dir() {
                for e in std::fs::read_dir(p).unwrap() {
                    walk(&e.unwrap().path(), skip, out);
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(root, skip, &mut out);
        out
    }

    use std::path::PathBuf;

    /// Unpacks `tar` into `sentinel/a/b/layer`, expecting a refusal that
    /// names `entry`, and checks that nothing around the layer changed.
    fn refused(build: impl FnOnce(&mut Tar, &Path), entry: &str) {
        let sentinel = tempfile::tempdir().unwrap();
        let s = sentinel.path();
        std::fs::create_dir_all(s.join("a/b/layer")).unwrap();
        std::fs::write(s.join("outside"), b"host file").unwrap();
        std::fs::write(s.join("a/outside"), b"host file").unwrap();
        std::fs::create_dir(s.join("a/hostdir")).unwrap();
        let dest = s.join("a/b/layer");
        let mut t = Tar::new();
        build(&mut t, s);
        let tar = t.bytes();
        let before = snapshot(s, &dest);
        let passwd_before = std::fs::symlink_metadata("/etc/passwd").unwrap();
        let root_before = snapshot_top("/");

        let err = unpack(&tar[..], &dest).unwrap_err();
        eprintln!("{entry:?}: {err}");
        assert_eq!(
            err.kind(),
            crate::error::ErrorKind::InvalidArgument,
            "{err}"
        );
        assert!(
            err.message().contains(&format!("{entry:?}")),
            "the message names {entry:?}: {err}"
        );
        assert!(err.message().contains("refusing"), "{err}");
        assert_eq!(
            snapshot(s, &dest),
            before,
            "something outside the layer changed"
        );
        let passwd_after = std::fs::symlink_metadata("/etc/passwd").unwrap();
        assert_eq!(passwd_before.nlink(), passwd_after.nlink());
        assert_eq!(passwd_before.mtime(), passwd_after.mtime());
        assert_eq!(root_before, snapshot_top("/"));
        assert!(!Path::new("/etc/berth-hostile-x").exists());
    }

    /// Names directly under `dir`.
    fn snapshot_top(dir: &str) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn refuses_dot_dot_out_of_the_layer() {
        require_root!();
        refused(
            |t, _| {
                t.file("../../x", b"pwned", 0o644);
            },
            "../../x",
        );
        refused(
            |t, _| {
                t.file("ok/../../../outside", b"pwned", 0o644);
            },
            "ok/../../../outside",
        );
        refused(
            |t, _| {
                t.dir("../../hostdir/", 0o777);
            },
            "../../hostdir/",
        );
        refused(
            |t, _| {
                t.symlink("../escape", "/");
            },
            "../escape",
        );
    }

    #[test]
    fn refuses_absolute_paths() {
        require_root!();
        refused(
            |t, _| {
                t.file("/etc/berth-hostile-x", b"pwned", 0o644);
            },
            "/etc/berth-hostile-x",
        );
        refused(
            |t, _| {
                t.dir("/", 0o777);
            },
            "/",
        );
    }

    #[test]
    fn refuses_writing_through_symlinks() {
        require_root!();
        // A symlink to / then a file through it.
        refused(
            |t, _| {
                t.symlink("evil", "/")
                    .file("evil/etc/berth-hostile-x", b"pwned", 0o644);
            },
            "evil/etc/berth-hostile-x",
        );
        // To an absolute host path (the sentinel) then a file, a directory,
        // a device, a whiteout, an opaque marker, a hardlink through it.
        for (name, add) in [
            (
                "evil/x",
                &(|t: &mut Tar| {
                    t.file("evil/x", b"pwned", 0o644);
                }) as &dyn Fn(&mut Tar),
            ),
            ("evil/newdir/", &|t: &mut Tar| {
                t.dir("evil/newdir/", 0o755);
            }),
            ("evil/outside", &|t: &mut Tar| {
                t.file("evil/outside", b"pwned", 0o644);
            }),
            ("evil/fifo", &|t: &mut Tar| {
                t.device("evil/fifo", EntryType::Fifo, 0, 0);
            }),
            ("evil/.wh.outside", &|t: &mut Tar| {
                t.file("evil/.wh.outside", b"", 0o644);
            }),
            ("evil/.wh..wh..opq", &|t: &mut Tar| {
                t.file("evil/.wh..wh..opq", b"", 0o644);
            }),
            ("evil/sub/deeper", &|t: &mut Tar| {
                t.file("evil/sub/deeper", b"", 0o644);
            }),
        ] {
            refused(
                |t, s| {
                    t.symlink("evil", s.to_str().unwrap());
                    add(t);
                },
                name,
            );
        }
        // A relative chain that climbs out.
        refused(
            |t, _| {
                t.symlink("a", "b")
                    .symlink("b", "../../..")
                    .file("a/outside", b"pwned", 0o644);
            },
            "a/outside",
        );
        // A directory, then a symlink replacing it, then a file below.
        refused(
            |t, _| {
                t.dir("d/", 0o755)
                    .symlink("d", "../..")
                    .file("d/outside", b"pwned", 0o644);
            },
            "d/outside",
        );
        // Even a symlink that stays inside is not written through.
        refused(
            |t, _| {
                t.dir("real/", 0o755)
                    .symlink("alias", "real")
                    .file("alias/x", b"x", 0o644);
            },
            "alias/x",
        );
    }

    #[test]
    fn refuses_hardlinks_to_outside() {
        require_root!();
        refused(
            |t, _| {
                t.hardlink("h", "/etc/passwd");
            },
            "h",
        );
        refused(
            |t, _| {
                t.hardlink("h", "../../outside");
            },
            "h",
        );
        refused(
            |t, _| {
                t.hardlink("h", "../outside");
            },
            "h",
        );
        // In the layer's namespace but never extracted (it exists on the
        // host side of a symlink, or not at all).
        refused(
            |t, s| {
                t.symlink("evil", s.to_str().unwrap())
                    .hardlink("h", "evil/outside");
            },
            "h",
        );
        refused(
            |t, _| {
                t.hardlink("h", "later").file("later", b"x", 0o644);
            },
            "h",
        );
        // A directory is no hardlink target.
        refused(
            |t, _| {
                t.dir("d/", 0o755).hardlink("h", "d");
            },
            "h",
        );
    }

    #[test]
    fn replacing_symlinks_never_writes_through_them() {
        require_root!();
        let sentinel = tempfile::tempdir().unwrap();
        let s = sentinel.path();
        std::fs::create_dir_all(s.join("layer")).unwrap();
        std::fs::write(s.join("target"), b"host").unwrap();
        std::fs::create_dir(s.join("hostdir")).unwrap();
        let dest = s.join("layer");
        let host = |p: &str| s.join(p).to_str().unwrap().to_string();
        let mut t = Tar::new();
        t.symlink("f", &host("target"))
            .file("f", b"layer", 0o600)
            .symlink("d", &host("hostdir"))
            .dir("d/", 0o700)
            .symlink("l", &host("target"))
            // A hardlink to a symlink of the layer links the symlink itself.
            .hardlink("l2", "l")
            .symlink("dev", &host("target"))
            .device("dev", EntryType::Fifo, 0, 0)
            .symlink("w", &host("target"))
            .file(".wh.w", b"", 0o644);
        let before = snapshot(s, &dest);
        unpack(&t.bytes()[..], &dest).unwrap();
        assert_eq!(snapshot(s, &dest), before);
        assert_eq!(std::fs::read(dest.join("f")).unwrap(), b"layer");
        assert!(std::fs::symlink_metadata(dest.join("d")).unwrap().is_dir());
        assert!(
            std::fs::symlink_metadata(dest.join("l2"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert!(
            std::fs::symlink_metadata(dest.join("dev"))
                .unwrap()
                .file_type()
                .is_fifo()
        );
        assert!(
            std::fs::symlink_metadata(dest.join("w"))
                .unwrap()
                .file_type()
                .is_char_device()
        );
    }

    #[test]
    fn refuses_garbage_and_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let err = unpack(
            &b"this is not a tar archive at all, clearly"[..],
            dir.path(),
        );
        // Short garbage reads as an empty archive or a bad header; either
        // way nothing is created.
        if let Err(e) = err {
            assert_eq!(e.kind(), crate::error::ErrorKind::InvalidArgument, "{e}");
        }
        let mut junk = vec![b'x'; 2048];
        junk[..4].copy_from_slice(b"abcd");
        let e = unpack(&junk[..], dir.path()).unwrap_err();
        assert!(e.message().contains("not a tar"), "{e}");
        let mut t = Tar::new();
        t.file("a", &[7u8; 5000], 0o644);
        let tar = t.bytes();
        let e = unpack(&tar[..1500], dir.path()).unwrap_err();
        assert!(e.message().contains("\"a\""), "{e}");
    }

    #[test]
    fn cleans_paths() {
        let limits = UnpackLimits::default();
        let c = |s: &str| {
            clean(s.as_bytes(), &limits, false, "the layer")
                .ok()
                .map(|v| show(&v))
        };
        assert_eq!(c("./a//b/./c/"), Some("a/b/c".into()));
        assert_eq!(c("a/../b"), Some("b".into()));
        assert_eq!(c("./"), Some("".into()));
        assert_eq!(c("a/../.."), None);
        assert_eq!(c("/a"), None);
        assert_eq!(c(".."), None);
        assert_eq!(c(&"a".repeat(4097)), None, "too long");
        assert!(c(&"a".repeat(4096)).is_some());
        assert_eq!(c(&"a/".repeat(257)), None, "too deep");
        assert!(c(&"a/".repeat(256)).is_some());
        // `..` that comes back up keeps the depth in bounds.
        assert!(c(&"a/..//".repeat(600)).is_some());
    }

    #[test]
    fn pax_times() {
        let t = pax_time(b"12.000000001").unwrap();
        assert_eq!((t.tv_sec(), t.tv_nsec()), (12, 1));
        let t = pax_time(b"-1.25").unwrap();
        assert_eq!((t.tv_sec(), t.tv_nsec()), (-2, 750_000_000));
        assert!(pax_time(b"x").is_none());
    }

    fn limited(set: impl FnOnce(&mut UnpackLimits)) -> UnpackLimits {
        let mut l = UnpackLimits::default();
        set(&mut l);
        l
    }

    /// A tar stream of one file of `size` zeros, made as it is read.
    fn zeros_tar(size: u64) -> impl Read {
        let mut h = Tar::header(EntryType::Regular, "zeros", 0o644, size);
        h.set_cksum();
        let pad = (512 - size % 512) % 512;
        io::Cursor::new(h.as_bytes().to_vec()).chain(io::repeat(0).take(size + pad + 1024))
    }

    #[test]
    fn entries_paths_and_depth_are_bounded() {
        require_root!();
        let mut t = Tar::new();
        for i in 0..20 {
            t.file(&format!("f{i}"), b"", 0o644);
        }
        let tar = t.bytes();
        let dir = tempfile::tempdir().unwrap();
        let e =
            unpack_layer(&tar[..], dir.path(), &limited(|l| l.max_entries = 10), None).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::InvalidArgument);
        assert!(e.message().contains("more than 10 entries"), "{e}");
        assert!(e.message().contains("--max-layer-entries"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        unpack_layer(&tar[..], dir.path(), &limited(|l| l.max_entries = 20), None).unwrap();

        let deep = format!("{}f", "d/".repeat(10));
        let mut t = Tar::new();
        t.file(&deep, b"x", 0o644);
        let tar = t.bytes();
        let dir = tempfile::tempdir().unwrap();
        let e =
            unpack_layer(&tar[..], dir.path(), &limited(|l| l.max_depth = 10), None).unwrap_err();
        assert!(e.message().contains("--max-layer-depth"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        unpack_layer(&tar[..], dir.path(), &limited(|l| l.max_depth = 11), None).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let e =
            unpack_layer(&tar[..], dir.path(), &limited(|l| l.max_path = 20), None).unwrap_err();
        assert!(e.message().contains("--max-layer-path-length"), "{e}");
        let mut t = Tar::new();
        t.symlink("l", &"t".repeat(50));
        let dir = tempfile::tempdir().unwrap();
        let e = unpack_layer(
            &t.bytes()[..],
            dir.path(),
            &limited(|l| l.max_path = 40),
            None,
        )
        .unwrap_err();
        assert!(e.message().contains("symlink target"), "{e}");
    }

    #[test]
    fn uncompressed_bytes_are_bounded_absolutely_and_by_ratio() {
        require_root!();
        let dir = tempfile::tempdir().unwrap();
        let e = unpack_layer(
            zeros_tar(8 << 20),
            dir.path(),
            &limited(|l| l.max_bytes = 1 << 20),
            None,
        )
        .unwrap_err();
        assert!(e.message().contains("more than 1048576 bytes"), "{e}");
        assert!(e.message().contains("--max-layer-size"), "{e}");
        // A blob of 1000 bytes may unpack to 10,000, but always to the
        // floor.
        let ratio = limited(|l| l.max_ratio = 10);
        let dir = tempfile::tempdir().unwrap();
        unpack_layer(
            zeros_tar(RATIO_FLOOR - 4096),
            dir.path(),
            &ratio,
            Some(1000),
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let e =
            unpack_layer(zeros_tar(RATIO_FLOOR + 1), dir.path(), &ratio, Some(1000)).unwrap_err();
        assert!(e.message().contains("--max-layer-ratio"), "{e}");
        assert!(e.message().contains("10 times"), "{e}");
        // Bound 0 is none.
        let dir = tempfile::tempdir().unwrap();
        let none = limited(|l| {
            l.max_bytes = 0;
            l.max_ratio = 0;
        });
        unpack_layer(zeros_tar(RATIO_FLOOR + 1), dir.path(), &none, Some(1)).unwrap();
        // Padding after the end of the archive counts too.
        let mut t = Tar::new();
        t.file("a", b"a", 0o644);
        let padded = io::Cursor::new(t.bytes()).chain(io::repeat(0).take(4 << 20));
        let dir = tempfile::tempdir().unwrap();
        let e = unpack_layer(
            padded,
            dir.path(),
            &limited(|l| l.max_bytes = 1 << 20),
            None,
        )
        .unwrap_err();
        assert!(e.message().contains("--max-layer-size"), "{e}");
    }

    /// A GNU sparse entry of 512 stored bytes that unpacks to 64 MiB: what
    /// is written counts, not only what is read.
    #[test]
    fn a_sparse_entry_counts_what_it_writes() {
        require_root!();
        let hole: u64 = 64 << 20;
        let mut h = Tar::header(EntryType::GNUSparse, "sparse", 0o644, 512);
        {
            let gnu = h.as_gnu_mut().unwrap();
            let octal = |v: u64| {
                let s = format!("{v:011o}\0");
                let mut a = [0u8; 12];
                a.copy_from_slice(s.as_bytes());
                a
            };
            gnu.sparse[0].offset = octal(hole);
            gnu.sparse[0].numbytes = octal(512);
            gnu.realsize = octal(hole + 512);
        }
        let mut t = Tar::new();
        t.append(h, &[7u8; 512]);
        let tar = t.bytes();
        assert!(tar.len() < 4096);
        let dir = tempfile::tempdir().unwrap();
        let e = unpack_layer(
            &tar[..],
            dir.path(),
            &limited(|l| l.max_bytes = 1 << 20),
            None,
        )
        .unwrap_err();
        assert!(e.message().contains("--max-layer-size"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let stats = unpack(&tar[..], dir.path()).unwrap();
        assert_eq!(stats.bytes, hole + 512);
    }

    /// A GNU long name or PAX header is held in memory by the tar reader:
    /// one of 2 MiB is refused before it is.
    #[test]
    fn entry_headers_are_bounded() {
        for kind in [EntryType::GNULongName, EntryType::XHeader] {
            let mut t = Tar::new();
            let big = if kind == EntryType::XHeader {
                let rec = format!("path={}\n", "a".repeat(2 << 20));
                format!("{} {rec}", rec.len() + 8).into_bytes()
            } else {
                vec![b'a'; 2 << 20]
            };
            t.append(
                Tar::header(kind, "././@LongLink", 0o644, big.len() as u64),
                &big,
            )
            .file("x", b"x", 0o644);
            let dir = tempfile::tempdir().unwrap();
            let e = unpack(&t.bytes()[..], dir.path()).unwrap_err();
            assert!(e.message().contains("headers"), "{kind:?}: {e}");
        }
    }

    #[test]
    fn directory_times_survive_later_entries() {
        require_root!();
        let mut t = Tar::new();
        let mut h = Tar::header(EntryType::Directory, "a/", 0o755, 0);
        h.set_mtime(1000);
        t.append(h, &[]);
        t.file("a/b/c", b"c", 0o644)
            .file("a/x", b"x", 0o644)
            .file("a/x", b"y", 0o644)
            .file("a/.wh.x", b"", 0o644);
        let dir = tempfile::tempdir().unwrap();
        unpack(&t.bytes()[..], dir.path()).unwrap();
        let m = std::fs::metadata(dir.path().join("a")).unwrap();
        assert_eq!(m.mtime(), 1000);
    }

    /// The same extractor serves `docker cp` uploads: parents resolve
    /// inside the container's root, a leading `/` is taken from the
    /// destination, `.wh.` names and hardlinks to files the archive did
    /// not extract are refused, and the limits hold.
    #[test]
    fn uploads_resolve_in_the_root_and_keep_the_limits() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("dest")).unwrap();
        std::fs::write(root.join("secret"), b"the container's").unwrap();
        std::os::unix::fs::symlink("/", root.join("dest/toroot")).unwrap();
        let owner = Some((
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        ));
        let dest = vec![b"dest".to_vec()];
        let rootfd = nix::fcntl::open(
            &root,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .unwrap();
        let upload = |tar: Vec<u8>, limits: &UnpackLimits| {
            let target = CopyTarget {
                root: rootfd.as_fd(),
                dest: &dest,
                shown: "/dest",
                owner,
                no_overwrite_dir_non_dir: false,
            };
            extract_into(tar.as_slice(), target, limits)
        };
        let mut tar = Tar::new();
        tar.file("/abs", b"a", 0o644)
            .file("toroot/through", b"t", 0o644)
            .file("new/deep/f", b"f", 0o644)
            .hardlink("new/h", "new/deep/f");
        upload(tar.bytes(), &UnpackLimits::default()).unwrap();
        assert_eq!(std::fs::read(root.join("dest/abs")).unwrap(), b"a");
        assert_eq!(std::fs::read(root.join("through")).unwrap(), b"t");
        assert_eq!(std::fs::read(root.join("dest/new/h")).unwrap(), b"f");

        let e = upload(
            Tar::new().file(".wh.x", b"", 0o644).bytes(),
            &UnpackLimits::default(),
        )
        .unwrap_err();
        assert!(e.message().contains(".wh."), "{e}");
        let e = upload(
            Tar::new().hardlink("stolen", "../secret").bytes(),
            &UnpackLimits::default(),
        )
        .unwrap_err();
        assert!(e.message().contains("climbs out of /dest"), "{e}");
        let e = upload(
            Tar::new().hardlink("stolen", "toroot/secret").bytes(),
            &UnpackLimits::default(),
        )
        .unwrap_err();
        assert!(
            e.message().contains("not a file this archive extracted"),
            "{e}"
        );
        assert!(!root.join("dest/stolen").exists());
        let few = UnpackLimits {
            max_entries: 2,
            ..UnpackLimits::default()
        };
        let mut tar = Tar::new();
        tar.file("1", b"", 0o644)
            .file("2", b"", 0o644)
            .file("3", b"", 0o644);
        let e = upload(tar.bytes(), &few).unwrap_err();
        assert!(e.message().contains("--max-layer-entries"), "{e}");
    }
}
