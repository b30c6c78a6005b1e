//! The paths a client names in a container, resolved inside its root as
//! a chroot would (`openat2` with `RESOLVE_IN_ROOT`), their stat as
//! Docker's clients expect it, and the `Config.Volumes` directories.

use super::root::{TempMount, open_dir};
use crate::error::{Error, Result, ResultExt};
use crate::image::tarwrite::errno;
use crate::image::unpack::open_in_root;
use crate::util;
use crate::util::dirfd::{file_type, lstat_at};
use berth_api_types::archive::{PathStat, go_file_mode};
use berth_api_types::container as wire;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat, readlinkat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat, fstatat, mkdirat};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

/// Symlinks followed at most while resolving a link target (Linux's limit).
const MAX_LINK_HOPS: usize = 40;

/// A path in a container as a client names it: absolute, `.` and `..`
/// applied lexically (never above `/`, as in a chroot).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct CPath {
    pub(super) comps: Vec<Vec<u8>>,
    /// It ends in `/` or `/.`: it names a directory, followed if a symlink.
    pub(super) dir: bool,
    /// The first component of archive entries: the last component, `.`
    /// for a path ending in `/.`, and `/` for the root, whose entries are
    /// named `/bin`, `/etc/...` as Docker names them (the docker CLI
    /// renames them by prefixing).
    pub(super) base: Vec<u8>,
    /// As the client gave it, for messages.
    pub(super) shown: String,
}

impl CPath {
    pub(super) fn parse(p: &str) -> Result<CPath> {
        if p.is_empty() {
            return Err(Error::invalid("path cannot be empty"));
        }
        if p.contains('\0') {
            return Err(Error::invalid(format!(
                "invalid path {p:?}: it holds a NUL byte"
            )));
        }
        let mut comps: Vec<Vec<u8>> = Vec::new();
        for c in p.split('/') {
            match c {
                "" | "." => {}
                ".." => {
                    comps.pop();
                }
                c => comps.push(c.as_bytes().to_vec()),
            }
        }
        let dot = p == "." || p.ends_with("/.");
        let dir = dot || p.ends_with('/');
        let base = match comps.last() {
            _ if dot => b".".to_vec(),
            Some(last) => last.clone(),
            None => b"/".to_vec(),
        };
        Ok(CPath {
            comps,
            dir,
            base,
            shown: p.to_string(),
        })
    }

    /// The name the path stat gives: the base name, `/` for the root.
    pub(super) fn stat_name(&self) -> String {
        String::from_utf8_lossy(&self.base).into_owned()
    }
}

pub(super) fn is_dir(st: &FileStat) -> bool {
    file_type(st) == SFlag::S_IFDIR
}

/// What a client's path names.
pub(super) enum Found {
    /// A directory, opened (the root, or a path ending in `/`).
    Dir(OwnedFd, FileStat),
    /// Anything else, or a directory named without a trailing `/`: by name
    /// in its opened parent, not followed if a symlink.
    Entry {
        parent: OwnedFd,
        name: Vec<u8>,
        stat: FileStat,
    },
}

impl Found {
    pub(super) fn stat(&self) -> &FileStat {
        match self {
            Found::Dir(_, st) => st,
            Found::Entry { stat, .. } => stat,
        }
    }
}

pub(super) fn locate(root: &OwnedFd, p: &CPath, cname: &str) -> Result<Found> {
    let fail = |e: Errno| match e {
        Errno::ENOENT => Error::not_found(format!(
            "Could not find the file {} in container {cname}",
            p.shown
        )),
        Errno::ENOTDIR => Error::invalid(format!("{}: not a directory", p.shown)),
        Errno::ELOOP => Error::invalid(format!("{}: too many levels of symbolic links", p.shown)),
        Errno::EACCES | Errno::EPERM => Error::invalid(format!("{}: permission denied", p.shown)),
        e => errno(&format!("resolving {} in the container", p.shown), e),
    };
    if p.comps.is_empty() || p.dir {
        let fd = open_in_root(root.as_fd(), &p.comps, OFlag::O_RDONLY | OFlag::O_DIRECTORY)
            .map_err(fail)?;
        let st = fstat(&fd).map_err(fail)?;
        return Ok(Found::Dir(fd, st));
    }
    let (name, parent) = p.comps.split_last().expect("not empty");
    let parent =
        open_in_root(root.as_fd(), parent, OFlag::O_RDONLY | OFlag::O_DIRECTORY).map_err(fail)?;
    let stat = fstatat(&parent, name.as_slice(), AtFlags::AT_SYMLINK_NOFOLLOW).map_err(fail)?;
    Ok(Found::Entry {
        parent,
        name: name.clone(),
        stat,
    })
}

/// The path stat Docker's clients expect.
pub(super) fn path_stat(root: &OwnedFd, p: &CPath, st: &FileStat) -> Result<PathStat> {
    let link_target = if file_type(st) == SFlag::S_IFLNK {
        resolve_link(root.as_fd(), &p.comps)?
    } else {
        String::new()
    };
    Ok(PathStat {
        name: p.stat_name(),
        size: st.st_size,
        mode: go_file_mode(st.st_mode),
        mtime: mtime_rfc3339(st.st_mtime, st.st_mtime_nsec),
        link_target,
    })
}

fn mtime_rfc3339(secs: i64, nanos: i64) -> String {
    chrono::DateTime::from_timestamp(secs, nanos.clamp(0, 999_999_999) as u32)
        .map(util::rfc3339)
        .unwrap_or_else(|| util::ZERO_TIME.to_string())
}

/// Where a symlink at `comps` finally leads, every link on the way
/// followed inside the root; an absolute path in the container.
fn resolve_link(root: BorrowedFd<'_>, comps: &[Vec<u8>]) -> Result<String> {
    let done = resolve_comps(root, comps)?;
    let mut out = String::from("/");
    out.push_str(&String::from_utf8_lossy(&done.join(&b'/')));
    Ok(out)
}

/// The components of where `comps` leads, every symlink on the way
/// followed inside the root; what does not exist is kept as named.
fn resolve_comps(root: BorrowedFd<'_>, comps: &[Vec<u8>]) -> Result<Vec<Vec<u8>>> {
    let mut pending: Vec<Vec<u8>> = comps.iter().rev().cloned().collect();
    let mut done: Vec<Vec<u8>> = Vec::new();
    let mut hops = 0;
    while let Some(c) = pending.pop() {
        match c.as_slice() {
            b"" | b"." => continue,
            b".." => {
                done.pop();
                continue;
            }
            _ => {}
        }
        let dir = match open_in_root(root, &done, OFlag::O_PATH | OFlag::O_DIRECTORY) {
            Ok(d) => d,
            Err(_) => {
                done.push(c);
                continue;
            }
        };
        match lstat_at(dir.as_fd(), &c) {
            Ok(Some(st)) if file_type(&st) == SFlag::S_IFLNK => {
                hops += 1;
                if hops > MAX_LINK_HOPS {
                    return Err(Error::invalid("too many levels of symbolic links"));
                }
                let target = readlinkat(dir.as_fd(), c.as_slice())
                    .map_err(|e| errno("reading a symlink", e))?;
                let target = std::os::unix::ffi::OsStrExt::as_bytes(target.as_os_str()).to_vec();
                if target.first() == Some(&b'/') {
                    done.clear();
                }
                for t in target.split(|b| *b == b'/').rev() {
                    pending.push(t.to_vec());
                }
            }
            _ => done.push(c),
        }
    }
    Ok(done)
}

/// Refuses paths on kernel filesystems, whose files are endless or
/// change as they are read (Docker cannot copy them either).
pub(super) fn check_archivable(found: &Found, p: &CPath) -> Result<()> {
    let fd = match found {
        Found::Dir(fd, _) => fd.try_clone().ctx("dup")?,
        Found::Entry { parent, name, .. } => openat(
            parent,
            name.as_slice(),
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| errno(&format!("opening {}", p.shown), e))?,
    };
    let Some(kind) = kernel_fs(fd.as_fd()) else {
        return Ok(());
    };
    Err(Error::invalid(format!(
        "cannot copy {}: it is on the container's {kind}, which is not a filesystem of files",
        p.shown
    )))
}

/// The kind of kernel filesystem `fd` is on (procfs, sysfs, cgroupfs), if
/// it is on one.
pub(super) fn kernel_fs(fd: BorrowedFd<'_>) -> Option<&'static str> {
    use nix::sys::statfs::{
        CGROUP_SUPER_MAGIC, CGROUP2_SUPER_MAGIC, PROC_SUPER_MAGIC, SYSFS_MAGIC,
    };
    let fs = nix::sys::statfs::fstatfs(fd).ok()?.filesystem_type();
    if fs == PROC_SUPER_MAGIC {
        Some("procfs")
    } else if fs == SYSFS_MAGIC {
        Some("sysfs")
    } else if fs == CGROUP_SUPER_MAGIC || fs == CGROUP2_SUPER_MAGIC {
        Some("cgroupfs")
    } else {
        None
    }
}

// ---------------------------------------------------------------------------
// Config.Volumes

/// The most `Config.Volumes` paths a container may have: far above what
/// real images declare, low enough that a create stays cheap.
pub const MAX_VOLUMES: usize = 256;

/// The `Config.Volumes` paths of a create (request and image merged),
/// checked: each is a path in the container (relative ones are taken from
/// `/`, `..` stops at `/`, as Docker cleans them), not `/` itself, without
/// a NUL byte, and at most `PATH_MAX` long.
pub(in crate::container) fn volume_paths(config: &wire::Config) -> Result<Vec<String>> {
    let Some(volumes) = &config.volumes else {
        return Ok(Vec::new());
    };
    if volumes.len() > MAX_VOLUMES {
        return Err(Error::invalid(format!(
            "too many volumes in Config.Volumes ({}): berth allows at most {MAX_VOLUMES}",
            volumes.len()
        )));
    }
    let mut out = Vec::with_capacity(volumes.len());
    for v in volumes.keys() {
        let bad =
            |why: &str| Error::invalid(format!("invalid volume {v:?} in Config.Volumes: {why}"));
        if v.len() > libc::PATH_MAX as usize {
            return Err(bad("the path is too long"));
        }
        let p = CPath::parse(v).map_err(|e| bad(e.message()))?;
        if p.comps.is_empty() {
            return Err(bad("a volume cannot be mounted over /"));
        }
        out.push(v.clone());
    }
    Ok(out)
}

/// Makes the `Config.Volumes` directories of a native container just
/// created, in its writable layer: its overlay is mounted for the
/// operation (see [`TempMount`]) and each path resolved inside it as a
/// chroot would, so a symlink in the image leads where it leads in the
/// container and never out of it. Until berth has volumes, the path at
/// least exists (Docker mounts an anonymous volume there). A file in the
/// way is refused, as in Docker.
pub(in crate::container) fn make_volume_dirs(
    containers_dir: &Path,
    id: &str,
    lowers: &[PathBuf],
    container_dir: &Path,
    paths: &[String],
) -> Result<()> {
    if paths.is_empty() {
        return Ok(());
    }
    let root_dir = containers_dir.parent().unwrap_or(containers_dir);
    let (upper, work) = (container_dir.join("upper"), container_dir.join("work"));
    let mount = TempMount::new(root_dir, id, lowers, &upper, &work)?;
    let root = open_dir(&mount.path)?;
    for v in paths {
        make_dir_in_root(root.as_fd(), &CPath::parse(v)?)?;
    }
    drop(root);
    drop(mount);
    Ok(())
}

/// `mkdir -p` of `p` below `root`, each component resolved inside the
/// root: a symlink on the way, even one to a path that does not exist
/// yet, leads where it leads in the container (as Docker follows it in
/// scope and makes the rest).
fn make_dir_in_root(root: BorrowedFd<'_>, p: &CPath) -> Result<()> {
    let comps = resolve_comps(root, &p.comps)?;
    let fail = |e: Errno| match e {
        Errno::ENOTDIR | Errno::EEXIST => Error::invalid(format!(
            "cannot mount volume over existing file, file exists {}",
            p.shown
        )),
        Errno::ENOENT => Error::conflict(format!(
            "cannot make the volume directory {}: the path changed while it was made",
            p.shown
        )),
        Errno::ELOOP => Error::invalid(format!(
            "cannot make the volume directory {}: too many levels of symbolic links",
            p.shown
        )),
        e => errno(&format!("making the volume directory {}", p.shown), e),
    };
    let dir_path = OFlag::O_PATH | OFlag::O_DIRECTORY;
    for i in 1..=comps.len() {
        match open_in_root(root, &comps[..i], dir_path) {
            Ok(_) => continue,
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(fail(e)),
        }
        let parent = open_in_root(root, &comps[..i - 1], OFlag::O_RDONLY | OFlag::O_DIRECTORY)
            .map_err(fail)?;
        match mkdirat(
            parent.as_fd(),
            comps[i - 1].as_slice(),
            Mode::from_bits_truncate(0o755),
        ) {
            // EEXIST: made meanwhile, or something that does not resolve
            // to a directory: the check below says which.
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(fail(e)),
        }
        open_in_root(root, &comps[..i], dir_path).map_err(fail)?;
    }
    Ok(())
}
