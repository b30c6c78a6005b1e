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
//! This module knows nothing about the layer store, compression or digests
//! (see `layers.rs`).

use crate::error::{Error, Result};
use crate::util::dirfd::{cstring, dir_flags, file_type, remove_tree, set_xattr_fd};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, OpenHow, ResolveFlag, openat, openat2};
use nix::sys::stat::{
    FchmodatFlags, FileStat, Mode, SFlag, UtimensatFlags, fchmod, fchmodat, futimens, mkdirat,
    mknodat, utimensat,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, fchownat, linkat, symlinkat, unlinkat};
use std::collections::HashSet;
use std::fs::File;
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
/// Longest entry path accepted (`PATH_MAX`); it also bounds the depth of a
/// layer's tree, and so the descriptors that removing it takes.
const MAX_PATH: usize = 4096;
const WHITEOUT_META_PREFIX: &[u8] = b".wh..wh.";
const WHITEOUT_OPAQUE: &[u8] = b".wh..wh..opq";

/// Whether `openat2` may be tried (cleared once the kernel or a seccomp
/// filter says it is not there).
static OPENAT2: AtomicBool = AtomicBool::new(true);

/// Extracts one uncompressed tar stream into `dest`, an existing (normally
/// empty) directory, as an overlayfs lower layer. See the module docs for
/// what is refused. On error `dest` holds a partial layer that the caller
/// must remove; nothing outside it has been touched.
pub fn unpack_layer(reader: impl Read, dest: &Path) -> Result<UnpackStats> {
    let root = nix::fcntl::open(
        dest,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::internal(format!("opening {}: {e}", dest.display())))?;
    let mut u = Unpacker {
        root,
        nodes: HashSet::new(),
        dir_times: Vec::new(),
        cache: None,
        stats: UnpackStats::default(),
        buf: vec![0u8; 256 << 10],
    };
    let mut archive = tar::Archive::new(reader);
    let mut last = String::new();
    let entries = archive
        .entries()
        .map_err(|e| Error::invalid(format!("not a tar archive: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| {
            if last.is_empty() {
                Error::invalid(format!("the layer is not a tar archive: {e}"))
            } else {
                Error::invalid(format!(
                    "the layer is truncated or corrupt after entry {last:?}: {e}"
                ))
            }
        })?;
        let raw = entry.path_bytes().into_owned();
        last = String::from_utf8_lossy(&raw).into_owned();
        u.entry(&mut entry, &raw).map_err(|e| match e {
            Fail::Refuse(why) => Error::invalid(format!(
                "refusing the layer: entry {last:?} {why}; \
                 a layer may not touch anything outside its own directory"
            )),
            Fail::Bad(why) => Error::invalid(format!("layer entry {last:?}: {why}")),
            Fail::Io(what, e) => Error::internal(format!("layer entry {last:?}: {what}: {e}")),
        })?;
    }
    u.finish_dir_times()
        .map_err(|e| Error::internal(format!("setting directory times: {e}")))?;
    Ok(u.stats)
}

/// Why an entry failed.
enum Fail {
    /// The entry tries to reach outside the layer: a refusal.
    Refuse(String),
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

struct Unpacker {
    root: OwnedFd,
    /// Non-directory nodes this layer created (cleaned paths joined by `/`):
    /// the only allowed hardlink targets.
    nodes: HashSet<Vec<u8>>,
    /// Directory mtimes, set once everything is in place.
    dir_times: Vec<(Vec<Vec<u8>>, TimeSpec)>,
    /// The last parent directory resolved.
    cache: Option<(Vec<Vec<u8>>, OwnedFd)>,
    stats: UnpackStats,
    buf: Vec<u8>,
}

/// Splits a tar path into clean components: no empty or `.` components,
/// `..` applied lexically. Absolute paths and `..` that climbs above the
/// layer root are refused.
fn clean(raw: &[u8]) -> Res<Vec<Vec<u8>>> {
    if raw.first() == Some(&b'/') {
        return Err(Fail::Refuse("has an absolute path".into()));
    }
    if raw.contains(&0) {
        return Err(Fail::Bad("has a NUL byte in its path".into()));
    }
    if raw.len() >= MAX_PATH {
        return Err(Fail::Bad(format!(
            "has a path of {} bytes; the limit is {MAX_PATH}",
            raw.len()
        )));
    }
    let mut out: Vec<Vec<u8>> = Vec::new();
    for c in raw.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                if out.pop().is_none() {
                    return Err(Fail::Refuse(
                        "climbs out of the layer with `..`".to_string(),
                    ));
                }
            }
            _ => out.push(c.to_vec()),
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

impl Unpacker {
    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>, raw: &[u8]) -> Res<()> {
        use tar::EntryType as T;
        let kind = entry.header().entry_type();
        if matches!(kind, T::XGlobalHeader) {
            return Ok(());
        }
        let comps = clean(raw)?;
        let Some((name, parent)) = comps.split_last() else {
            // The layer root itself (`./`).
            if kind.is_dir() {
                let meta = self.meta(entry)?;
                let fd = self.root.try_clone().map_err(|e| Fail::Io("dup", e))?;
                self.apply_fd(&fd, &meta, false)?;
                self.dir_times.push((Vec::new(), meta.mtime));
                self.stats.entries += 1;
                return Ok(());
            }
            return Err(Fail::Bad(
                "names the layer root but is not a directory".into(),
            ));
        };

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
            fchownat(
                dir.as_fd(),
                hidden,
                Some(Uid::from_raw(meta.uid)),
                Some(Gid::from_raw(meta.gid)),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(Fail::io("chown"))?;
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
                    self.clear(dir.as_fd(), name, &comps)?;
                    mkdirat(
                        dir.as_fd(),
                        name.as_slice(),
                        Mode::from_bits_truncate(0o700),
                    )
                    .map_err(Fail::io("mkdir"))?;
                }
                let fd = openat(dir.as_fd(), name.as_slice(), dir_flags(), Mode::empty())
                    .map_err(Fail::io("opening the new directory"))?;
                self.apply_fd(&fd, &meta, false)?;
                self.dir_times.push((comps.clone(), meta.mtime));
            }
            T::Regular | T::Continuous | T::GNUSparse => {
                let meta = self.meta(entry)?;
                let dir = self.parent(parent, true)?;
                self.clear(dir.as_fd(), name, &comps)?;
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
                    file.write_all(&self.buf[..n])
                        .map_err(|e| Fail::Io("writing the file", e))?;
                    self.stats.bytes += n as u64;
                }
                self.apply_fd(&OwnedFd::from(file), &meta, true)?;
                self.nodes.insert(path);
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
                let meta = self.meta(entry)?;
                let dir = self.parent(parent, true)?;
                self.clear(dir.as_fd(), name, &comps)?;
                symlinkat(target.as_slice(), dir.as_fd(), name.as_slice())
                    .map_err(Fail::io("creating the symlink"))?;
                self.apply_at(dir.as_fd(), name, &meta, true)?;
                self.nodes.insert(path);
            }
            T::Link => {
                let raw_target = entry
                    .link_name_bytes()
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                let tcomps = match clean(&raw_target) {
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
                    return Err(Fail::Refuse("is a hardlink to the layer root".into()));
                };
                if !self.nodes.contains(&tpath) {
                    return Err(Fail::Refuse(format!(
                        "is a hardlink to {:?}, which is not a file this layer extracted before it",
                        String::from_utf8_lossy(&raw_target)
                    )));
                }
                let tdir = self.parent(tparent, false)?;
                match lstat_at(tdir.as_fd(), tname)? {
                    Some(st) if file_type(&st) != SFlag::S_IFDIR => {}
                    _ => {
                        return Err(Fail::Refuse(format!(
                            "is a hardlink to {:?}, which is not a file of this layer",
                            show(&tcomps)
                        )));
                    }
                }
                let dir = self.parent(parent, true)?;
                self.clear(dir.as_fd(), name, &comps)?;
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
                self.nodes.insert(path);
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
                self.clear(dir.as_fd(), name, &comps)?;
                mknodat(
                    dir.as_fd(),
                    name.as_slice(),
                    sflag,
                    Mode::from_bits_truncate(0o600),
                    dev,
                )
                .map_err(Fail::io("creating the device node"))?;
                self.apply_at(dir.as_fd(), name, &meta, false)?;
                self.nodes.insert(path);
            }
            other => {
                return Err(Fail::Bad(format!(
                    "has the tar entry type {other:?}, which a layer may not contain"
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
        Ok(Meta {
            mode,
            uid: id(uid, "uid")?,
            gid: id(gid, "gid")?,
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
            let mut prefix = path.clone();
            prefix.push(b'/');
            self.nodes.retain(|p| !p.starts_with(&prefix));
        } else {
            unlinkat(dir, name, UnlinkatFlags::NoRemoveDir)
                .map_err(Fail::io("removing a replaced file"))?;
        }
        self.nodes.remove(&path);
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
        let fd = match self.resolve_beneath(comps) {
            Some(fd) => fd,
            None => self.walk(comps, create)?,
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
    fn walk(&self, comps: &[Vec<u8>], create: bool) -> Res<OwnedFd> {
        let mut cur = self.root.try_clone().map_err(|e| Fail::Io("dup", e))?;
        for (i, c) in comps.iter().enumerate() {
            let mut tries = 0;
            cur = loop {
                tries += 1;
                match openat(cur.as_fd(), c.as_slice(), dir_flags(), Mode::empty()) {
                    Ok(fd) => break fd,
                    Err(Errno::ENOENT) if create && tries < 3 => {
                        match mkdirat(cur.as_fd(), c.as_slice(), Mode::from_bits_truncate(0o755)) {
                            Ok(()) | Err(Errno::EEXIST) => continue,
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

    /// Directory mtimes last, since creating their contents changed them.
    fn finish_dir_times(&mut self) -> io::Result<()> {
        self.cache = None;
        let times = std::mem::take(&mut self.dir_times);
        for (comps, t) in times {
            let fd = if comps.is_empty() {
                self.root.try_clone()?
            } else {
                // Replaced or removed since: nothing to set.
                match self.resolve_beneath(&comps) {
                    Some(fd) => fd,
                    None => match self.walk(&comps, false) {
                        Ok(fd) => fd,
                        Err(_) => continue,
                    },
                }
            };
            futimens(fd.as_fd(), &t, &t)?;
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

    fn is_root() -> bool {
        nix::unistd::geteuid().is_root()
    }

    /// Tests here create devices and chown: they need root. Fails loudly in
    /// CI, skips elsewhere.
    macro_rules! require_root {
        () => {
            if !is_root() {
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "this test needs root"
                );
                eprintln!("skipping: needs root");
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
        let stats = unpack_layer(&tar[..], d).unwrap();
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

        let err = unpack_layer(&tar[..], &dest).unwrap_err();
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
        unpack_layer(&t.bytes()[..], &dest).unwrap();
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
        let err = unpack_layer(
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
        let e = unpack_layer(&junk[..], dir.path()).unwrap_err();
        assert!(e.message().contains("not a tar"), "{e}");
        let mut t = Tar::new();
        t.file("a", &[7u8; 5000], 0o644);
        let tar = t.bytes();
        let e = unpack_layer(&tar[..1500], dir.path()).unwrap_err();
        assert!(e.message().contains("\"a\""), "{e}");
    }

    #[test]
    fn cleans_paths() {
        let c = |s: &str| clean(s.as_bytes()).ok().map(|v| show(&v));
        assert_eq!(c("./a//b/./c/"), Some("a/b/c".into()));
        assert_eq!(c("a/../b"), Some("b".into()));
        assert_eq!(c("./"), Some("".into()));
        assert_eq!(c("a/../.."), None);
        assert_eq!(c("/a"), None);
        assert_eq!(c(".."), None);
        assert_eq!(c(&"a/".repeat(2048)), None, "too long");
        assert!(c(&"a/".repeat(2000)).is_some());
    }

    #[test]
    fn pax_times() {
        let t = pax_time(b"12.000000001").unwrap();
        assert_eq!((t.tv_sec(), t.tv_nsec()), (12, 1));
        let t = pax_time(b"-1.25").unwrap();
        assert_eq!((t.tv_sec(), t.tv_nsec()), (-2, 750_000_000));
        assert!(pax_time(b"x").is_none());
    }
}
