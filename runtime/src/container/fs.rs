//! Container filesystems as the Docker API exposes them: the archive
//! endpoints behind `docker cp` (stat a path, read it as a tar, extract a
//! tar into a directory), `docker export`, `docker diff` and `docker
//! commit`.
//!
//! Where a container's files are, for reading and writing:
//!
//! - a running (or paused) native container: its root as its own processes
//!   see it, `/proc/<pid>/root` of its init, whose overlay is mounted in the
//!   container's own mount namespace. The init is pinned with a pidfd while
//!   its root is opened, and must be in another mount namespace than
//!   berthd's, so a recycled pid can never hand out the host's root.
//! - a native container that is not running: its overlay (the image's
//!   layers under the container's `upper`) mounted for the operation at
//!   `ROOT/tmp-mounts/<id>-<random>` while the container's `ops` lock is
//!   held (it cannot start, stop or go meanwhile), unmounted afterwards.
//! - a Wasm container: `ROOT/containers/<id>/rootfs`, the plain directory
//!   its module sees as `/`.
//!
//! Safety: every path a client names is resolved inside the container's
//! root as a chroot would (`openat2` with `RESOLVE_IN_ROOT`): a symlink in
//! the container is followed, but `..` and absolute targets stop at the
//! container's `/`. Below that, everything works on descriptors with
//! `O_NOFOLLOW` and `*at` calls that do not follow symlinks, so a tree walk
//! never leaves the directory it walks, and an extraction never writes
//! through a symlink it did not resolve inside the root. An archive entry
//! whose name climbs out of the extraction directory with `..` is refused.
//! Directories of other filesystems mounted in a running container
//! (`/proc`, `/sys`, `/dev`) are archived as empty directories; a path on
//! procfs, sysfs or cgroupfs cannot be archived at all.
//!
//! `diff` and `commit` read a native container's `upper` directly (it
//! holds only what the container changed) and look paths up in the
//! image's layers with overlayfs's rules (whiteouts, opaque directories).
//! The mount points berth's runtime creates (`/proc`, `/sys`, `/dev`,
//! `/etc/hostname`, `/etc/hosts`, `/etc/resolv.conf`) are left out of
//! both, as Docker's init layer leaves them out. A commit turns the upper
//! directory into one OCI layer (overlayfs whiteouts become `.wh.NAME`,
//! opaque directories `.wh..wh..opq`), gzipped into the blob store, and
//! stores an image of the parent's layers plus that one, with the parent's
//! config updated from the container's and from `--change` instructions.
//!
//! A Wasm container's changes are its whole directory (all "added"). A Wasm
//! image carries its module, not a filesystem, so a Wasm commit stores the
//! same module with the updated config, and is refused while the
//! container's directory holds files, rather than silently dropping them.
//!
//! `pause` of `docker commit` is accepted and ignored: the upper directory
//! of a running container is read as it is.
//!
//! This module reads container records through `Containers`' accessors and
//! never changes them; it does not start, stop or signal containers.

use super::{Container, Containers, Status};
use crate::error::{Error, Result, ResultExt};
use crate::executor::ExecutorKind;
use crate::image::manifest::{Descriptor, Manifest, media};
use crate::image::unpack::{self, CopyTarget, UnpackLimits, open_in_root};
use crate::image::{Reference, import};
use crate::util::dirfd::{cstring, dir_flags, file_type, lstat_at, read_dir_names};
use crate::util::{self, Digest, digest::Hasher};
use berth_api_types::archive::{Change, PathStat, go_file_mode};
use berth_api_types::container as wire;
use bytes::Bytes;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat, readlinkat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat, fstatat, mkdirat};
use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// A tar stream being produced; an `Err` item means the archive is
/// incomplete and the response must be aborted.
pub type ArchiveStream = mpsc::Receiver<io::Result<Bytes>>;

/// Options of `PUT /containers/{id}/archive`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExtractOptions {
    /// Refuse to replace a directory with a non-directory or the reverse.
    pub no_overwrite_dir_non_dir: bool,
    /// Give every extracted file to the container's user (`docker cp -a`)
    /// instead of the archive's owners.
    pub copy_uid_gid: bool,
}

/// Options of `POST /commit`.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// Repository, possibly with a tag (`repo:tag`); empty for none.
    pub repo: String,
    /// Tag, when not part of `repo`.
    pub tag: String,
    pub comment: String,
    pub author: String,
    /// Dockerfile instructions (`--change`).
    pub changes: Vec<String>,
    /// Config fields the request body sets over the container's.
    pub config: Option<wire::Config>,
}

/// The runtime's own mount points, relative to the root: not changes of
/// the container's, and never committed.
const RUNTIME_PATHS: &[&[u8]] = &[
    b"proc",
    b"sys",
    b"dev",
    b"etc/hostname",
    b"etc/hosts",
    b"etc/resolv.conf",
];

const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
const REDIRECT_XATTR: &str = "trusted.overlay.redirect";
const CAPABILITY_XATTR: &str = "security.capability";
const WHITEOUT_PREFIX: &[u8] = b".wh.";
const WHITEOUT_OPAQUE: &[u8] = b".wh..wh..opq";
/// Symlinks followed at most while resolving a link target (Linux's limit).
const MAX_LINK_HOPS: usize = 40;

// ---------------------------------------------------------------------------
// the operations

impl Containers {
    /// `HEAD /containers/{id}/archive?path=`: what is at `path` (a symlink
    /// itself, unless the path ends in `/`).
    pub async fn stat_path(self: &Arc<Self>, name: &str, path: &str) -> Result<PathStat> {
        let c = self.get(name)?;
        let p = CPath::parse(path)?;
        let cname = name.to_string();
        self.with_root(&c, move |root| {
            let found = locate(&root.fd, &p, &cname)?;
            path_stat(&root.fd, &p, found.stat())
        })
        .await
    }

    /// `GET /containers/{id}/archive?path=`: the stat of `path`, and a tar
    /// of it streamed as it is read (entries under the path's base name).
    pub async fn archive(
        self: &Arc<Self>,
        name: &str,
        path: &str,
    ) -> Result<(PathStat, ArchiveStream)> {
        let c = self.get(name)?;
        let p = CPath::parse(path)?;
        let cname = name.to_string();
        let (tx, rx) = mpsc::channel(16);
        let (stat_tx, stat_rx) = oneshot::channel::<Result<PathStat>>();
        let stat_tx = Arc::new(Mutex::new(Some(stat_tx)));
        let first = stat_tx.clone();
        let this = self.clone();
        tokio::spawn(async move {
            let body = tx.clone();
            let result = this
                .with_root(&c, move |root| {
                    let found = locate(&root.fd, &p, &cname)?;
                    let st = path_stat(&root.fd, &p, found.stat())?;
                    check_archivable(&found, &p)?;
                    send_once(&first, Ok(st));
                    let mut out =
                        TarOut::new(io::BufWriter::with_capacity(256 << 10, ChannelWriter(body)));
                    write_found(&mut out, found, &p.base)?;
                    Ok(out)
                })
                .await;
            finish_stream(result, tx, &stat_tx, "archive of a container path").await;
        });
        let stat = stat_rx
            .await
            .map_err(|_| Error::internal("the archive task ended early"))??;
        Ok((stat, rx))
    }

    /// `PUT /containers/{id}/archive?path=`: extracts a tar (plain, gzip
    /// or zstd) into the directory `path`.
    pub async fn extract(
        self: &Arc<Self>,
        name: &str,
        path: &str,
        body: Box<dyn Read + Send>,
        opts: ExtractOptions,
    ) -> Result<()> {
        let c = self.get(name)?;
        let rec = c.record();
        if rec.host_config.readonly_rootfs {
            return Err(Error::invalid(
                "container rootfs is marked read-only: files cannot be copied into it",
            ));
        }
        let p = CPath::parse(path)?;
        let cname = name.to_string();
        let user = (opts.copy_uid_gid && rec.executor == ExecutorKind::Native)
            .then(|| rec.config.user.clone());
        let limits = *self.native.layers.limits();
        self.with_root(&c, move |root| {
            let owner = match &user {
                Some(spec) => Some(container_user(&root.fd, spec)?),
                None => None,
            };
            let reader = decompress(body)?;
            extract_tar(&root.fd, &p, &cname, opts, owner, &limits, reader)
        })
        .await
    }

    /// `GET /containers/{id}/export`: the container's whole filesystem as a
    /// tar stream.
    pub async fn export(self: &Arc<Self>, name: &str) -> Result<ArchiveStream> {
        let c = self.get(name)?;
        let (tx, rx) = mpsc::channel(16);
        let (ready_tx, ready_rx) = oneshot::channel::<Result<()>>();
        let ready = Arc::new(Mutex::new(Some(ready_tx)));
        let first = ready.clone();
        let this = self.clone();
        tokio::spawn(async move {
            let body = tx.clone();
            let result = this
                .with_root(&c, move |root| {
                    send_once(&first, Ok(()));
                    let mut out =
                        TarOut::new(io::BufWriter::with_capacity(256 << 10, ChannelWriter(body)));
                    let st = fstat(&root.fd).map_err(|e| errno("reading the root", e))?;
                    out.dev = Some(st.st_dev);
                    out.children(root.fd.as_fd(), b"")?;
                    Ok(out)
                })
                .await;
            finish_stream(result, tx, &ready, "export of a container").await;
        });
        ready_rx
            .await
            .map_err(|_| Error::internal("the export task ended early"))??;
        Ok(rx)
    }

    /// `GET /containers/{id}/changes`: what the container changed in its
    /// image's filesystem, sorted by path.
    pub async fn changes(self: &Arc<Self>, name: &str) -> Result<Vec<Change>> {
        let c = self.get(name)?;
        let (top, lowers) = self.change_sources(&c)?;
        tokio::task::spawn_blocking(move || {
            let Some(tree) = scan_tree(&top, &lowers)? else {
                return Ok(Vec::new());
            };
            let mut out = Vec::new();
            list_changes(&tree, b"", &mut out);
            out.sort_by(|a, b| a.path.cmp(&b.path));
            Ok(out)
        })
        .await
        .ctx("listing changes")?
    }

    /// `POST /commit`: a new image from the container's changes; returns
    /// the image's ID.
    pub async fn commit(self: &Arc<Self>, name: &str, opts: CommitOptions) -> Result<Digest> {
        let c = self.get(name)?;
        // Everything that can be refused without reading files, first.
        let changes = import::parse_changes(&opts.changes)?;
        let tags = commit_tags(&opts.repo, &opts.tag)?;
        let rec = c.record();
        let parent = self
            .images
            .resolve(&rec.image_id.to_string())
            .map_err(|_| {
                Error::conflict(format!(
                    "cannot commit container {}: its image {} is gone",
                    rec.id, rec.image_id
                ))
            })?;
        let parent = self.images.handle(&parent)?;
        let parent_config: serde_json::Value =
            serde_json::from_slice(&self.images.blobs().read(&parent.manifest.config.digest)?)
                .map_err(|e| Error::internal(format!("reading the image config: {e}")))?;
        let mut config = rec.config.clone();
        if let Some(body) = &opts.config {
            overlay_config(&mut config, body);
        }
        apply_changes(&mut config, &changes);
        config.hostname.clear();
        config.domainname.clear();
        config.attach_stdin = false;
        config.attach_stdout = false;
        config.attach_stderr = false;
        config.tty = false;
        config.open_stdin = false;
        config.stdin_once = false;
        config.image = rec.image_id.to_string();
        let mut created_by = vec![rec.path.clone()];
        created_by.extend(rec.args.iter().cloned());
        let meta = CommitMeta {
            created: util::now_rfc3339(),
            created_by: created_by.join(" "),
            comment: opts.comment.clone(),
            author: opts.author.clone(),
            config,
        };

        // Not running: hold the container still while its files are read.
        let _op = if c.has_processes() {
            None
        } else {
            Some(c.ops.lock().await)
        };
        let images = self.images.clone();
        let (top, lowers) = self.change_sources(&c)?;
        let wasm = rec.executor == ExecutorKind::Wasm;
        let record = tokio::task::spawn_blocking(move || {
            let tree = scan_tree(&top, &lowers)?;
            if wasm {
                if tree.as_ref().is_some_and(|t| !t.is_empty()) {
                    return Err(Error::invalid(
                        "cannot commit the files of a Wasm container: a Wasm image carries its \
                         module, not a filesystem. Copy them out with `berth cp`, remove them from \
                         the container, and commit again to store the module with the new config",
                    ));
                }
                return commit_wasm(&images, &parent.manifest, parent_config, &meta, &tags);
            }
            commit_native(
                &images,
                &parent.manifest,
                parent_config,
                &meta,
                &tags,
                &top,
                tree.unwrap_or_default(),
            )
        })
        .await
        .ctx("committing")??;
        let record = self.images.set_parent(&record.id, &rec.image_id)?;
        tracing::info!(container = %rec.id, image = %record.id, "committed a container");
        Ok(record.id)
    }

    /// The directory of a container's own changes and its image's layers
    /// (top first): `upper` and the layer store's directories for a native
    /// container, the module's directory and none for a Wasm one.
    fn change_sources(&self, c: &Container) -> Result<(PathBuf, Vec<PathBuf>)> {
        let rec = c.record();
        match &rec.native {
            None => Ok((c.dir.join("rootfs"), Vec::new())),
            Some(n) => Ok((c.dir.join("upper"), self.native.layers.lowers(&n.layers)?)),
        }
    }

    /// Runs `f` on a blocking thread with the container's root opened.
    async fn with_root<T: Send + 'static>(
        self: &Arc<Self>,
        c: &Arc<Container>,
        f: impl FnOnce(Root) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let rec = c.record();
        let blocking = |f: Box<dyn FnOnce() -> Result<T> + Send>| async move {
            tokio::task::spawn_blocking(f)
                .await
                .ctx("container filesystem operation")?
        };
        if rec.executor == ExecutorKind::Wasm || rec.native.is_none() {
            let dir = c.dir.join("rootfs");
            let fd = open_dir(&dir)?;
            return blocking(Box::new(move || f(Root { fd }))).await;
        }
        if let Some(fd) = running_root(c)? {
            return blocking(Box::new(move || f(Root { fd }))).await;
        }
        let _op = c.ops.lock().await;
        if c.inner.lock().unwrap().removed {
            return Err(Error::not_found(format!("No such container: {}", c.id)));
        }
        // It may have started while we waited for the lock.
        if let Some(fd) = running_root(c)? {
            return blocking(Box::new(move || f(Root { fd }))).await;
        }
        let rec = c.record();
        // The overlay made for its first start uses the same upper and
        // work directories as the mount below would.
        self.executor(rec.executor)?.release(&c.id).await;
        let native = rec.native.as_ref().expect("checked above");
        let lowers = self.native.layers.lowers(&native.layers)?;
        let root_dir = self
            .dir
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| self.dir.clone());
        let upper = c.dir.join("upper");
        let work = c.dir.join("work");
        let id = c.id.clone();
        blocking(Box::new(move || {
            let mount = TempMount::new(&root_dir, &id, &lowers, &upper, &work)?;
            let fd = open_dir(&mount.path)?;
            let result = f(Root { fd });
            drop(mount);
            result
        }))
        .await
    }
}

impl Container {
    /// Running or paused: it has processes, and its root is theirs.
    fn has_processes(&self) -> bool {
        matches!(
            self.inner.lock().unwrap().record.state.status,
            Status::Running | Status::Paused
        )
    }
}

/// A container's root directory, opened for one operation.
struct Root {
    fd: OwnedFd,
}

fn send_once<T>(slot: &Mutex<Option<oneshot::Sender<T>>>, value: T) {
    if let Some(tx) = slot.lock().unwrap().take() {
        let _ = tx.send(value);
    }
}

/// Ends an archive stream once the container's root has been released (a
/// temporary mount unmounted, the container unlocked): the end-of-archive
/// blocks, or the error, go out only then, so a client that has the whole
/// archive (or the error) never races the cleanup.
async fn finish_stream<T>(
    result: Result<TarOut<io::BufWriter<ChannelWriter>>>,
    tx: mpsc::Sender<io::Result<Bytes>>,
    first: &Mutex<Option<oneshot::Sender<Result<T>>>>,
    what: &'static str,
) {
    let result = match result {
        Ok(mut out) => tokio::task::spawn_blocking(move || {
            out.finish()?;
            out.w
                .flush()
                .map_err(|e| io_error("sending the archive", e))
        })
        .await
        .unwrap_or_else(|e| Err(Error::internal(format!("finishing the archive: {e}")))),
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "{what}");
        send_once(first, Err(e.clone()));
        let _ = tx.send(Err(io::Error::other(e.to_string()))).await;
    }
}

fn errno(what: &str, e: Errno) -> Error {
    Error::internal(format!("{what}: {}", io::Error::from(e)))
}

fn io_error(what: &str, e: io::Error) -> Error {
    Error::internal(format!("{what}: {e}"))
}

fn open_dir(path: &Path) -> Result<OwnedFd> {
    nix::fcntl::open(
        path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| errno(&format!("opening {}", path.display()), e))
}

/// The root of a running native container, as its init sees it; `None`
/// if it is not running.
fn running_root(c: &Container) -> Result<Option<OwnedFd>> {
    let rec = c.record();
    if !matches!(rec.state.status, Status::Running | Status::Paused) {
        return Ok(None);
    }
    let not_running = || Error::conflict(format!("container {} is not running", c.id));
    let pid = rec.state.pid;
    if pid <= 0 {
        return Err(Error::conflict(format!(
            "container {} is starting; try again in a moment",
            c.id
        )));
    }
    // SAFETY: pidfd_open has no memory arguments.
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if raw < 0 {
        return Err(not_running());
    }
    // SAFETY: the call returned a new descriptor that we own.
    let pidfd = unsafe { OwnedFd::from_raw_fd(raw as i32) };
    // The pid still belongs to this container now that it is pinned.
    let again = c.record();
    if again.state.pid != pid || !matches!(again.state.status, Status::Running | Status::Paused) {
        return Err(not_running());
    }
    let ns = |p: &str| nix::sys::stat::stat(p).map(|s| (s.st_dev, s.st_ino));
    let theirs = ns(&format!("/proc/{pid}/ns/mnt")).map_err(|_| not_running())?;
    let ours = ns("/proc/self/ns/mnt").map_err(|e| errno("reading berthd's mount namespace", e))?;
    if theirs == ours {
        return Err(Error::internal(format!(
            "the process {pid} of container {} shares berthd's mount namespace; refusing to \
             use its root",
            c.id
        )));
    }
    let fd = open_dir(Path::new(&format!("/proc/{pid}/root"))).map_err(|_| not_running())?;
    // Still alive after the open: the root is that process's.
    // SAFETY: pidfd_send_signal with signal 0 and no siginfo.
    let alive = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            0,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    } == 0;
    if !alive {
        return Err(not_running());
    }
    Ok(Some(fd))
}

/// A stopped native container's overlay, mounted for one operation.
struct TempMount {
    path: PathBuf,
}

impl TempMount {
    fn new(
        root: &Path,
        id: &str,
        lowers: &[PathBuf],
        upper: &Path,
        work: &Path,
    ) -> Result<TempMount> {
        let base = root.join("tmp-mounts");
        sweep_temp_mounts_once(&base);
        std::fs::create_dir_all(&base).ctx(format!("creating {}", base.display()))?;
        for d in [upper, work] {
            std::fs::create_dir_all(d).ctx(format!("creating {}", d.display()))?;
        }
        let path = base.join(format!(
            "{}-{}",
            &id[..12.min(id.len())],
            &util::random_id()[..8]
        ));
        std::fs::create_dir(&path).ctx(format!("creating {}", path.display()))?;
        if let Err(e) = crate::image::layers::mount_rootfs(lowers, upper, work, &path) {
            let _ = std::fs::remove_dir(&path);
            return Err(e);
        }
        // Containers started meanwhile must not get a copy of it.
        let _ = nix::mount::mount(
            None::<&str>,
            &path,
            None::<&str>,
            nix::mount::MsFlags::MS_PRIVATE,
            None::<&str>,
        );
        Ok(TempMount { path })
    }
}

impl Drop for TempMount {
    fn drop(&mut self) {
        if let Err(e) = crate::image::layers::unmount(&self.path) {
            tracing::warn!(path = %self.path.display(), error = %e, "unmounting a container's filesystem");
            return;
        }
        let _ = std::fs::remove_dir(&self.path);
    }
}

/// Unmounts and removes what earlier daemons left in `ROOT/tmp-mounts`
/// (a daemon that died during a copy). Safe only before this daemon
/// mounts anything there; [`TempMount`] calls it once per process.
pub fn sweep_temp_mounts(root: &Path) {
    let base = root.join("tmp-mounts");
    let Ok(entries) = std::fs::read_dir(&base) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let _ = crate::image::layers::unmount(&p);
        if std::fs::remove_dir(&p).is_err() {
            tracing::warn!(path = %p.display(), "could not remove a stale temporary mount");
        }
    }
}

fn sweep_temp_mounts_once(base: &Path) {
    static SWEPT: std::sync::Once = std::sync::Once::new();
    SWEPT.call_once(|| {
        if let Some(root) = base.parent() {
            sweep_temp_mounts(root);
        }
    });
}

// ---------------------------------------------------------------------------
// paths

/// A path in a container as a client names it: absolute, `.` and `..`
/// applied lexically (never above `/`, as in a chroot).
#[derive(Debug, Clone, PartialEq)]
struct CPath {
    comps: Vec<Vec<u8>>,
    /// It ends in `/` or `/.`: it names a directory, followed if a symlink.
    dir: bool,
    /// The first component of archive entries: the last component, `.`
    /// for a path ending in `/.`, and `/` for the root, whose entries are
    /// named `/bin`, `/etc/...` as Docker names them (the docker CLI
    /// renames them by prefixing).
    base: Vec<u8>,
    /// As the client gave it, for messages.
    shown: String,
}

impl CPath {
    fn parse(p: &str) -> Result<CPath> {
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
    fn stat_name(&self) -> String {
        String::from_utf8_lossy(&self.base).into_owned()
    }
}

fn is_dir(st: &FileStat) -> bool {
    file_type(st) == SFlag::S_IFDIR
}

/// overlayfs's whiteout: a character device 0/0.
fn is_whiteout(st: &FileStat) -> bool {
    file_type(st) == SFlag::S_IFCHR && st.st_rdev == 0
}

/// What a client's path names.
enum Found {
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
    fn stat(&self) -> &FileStat {
        match self {
            Found::Dir(_, st) => st,
            Found::Entry { stat, .. } => stat,
        }
    }
}

fn locate(root: &OwnedFd, p: &CPath, cname: &str) -> Result<Found> {
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
fn path_stat(root: &OwnedFd, p: &CPath, st: &FileStat) -> Result<PathStat> {
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
fn check_archivable(found: &Found, p: &CPath) -> Result<()> {
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
fn kernel_fs(fd: BorrowedFd<'_>) -> Option<&'static str> {
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
pub(super) fn volume_paths(config: &wire::Config) -> Result<Vec<String>> {
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
pub(super) fn make_volume_dirs(
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

// ---------------------------------------------------------------------------
// writing tar

/// Writes into a channel that an HTTP body reads.
struct ChannelWriter(mpsc::Sender<io::Result<Bytes>>);

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A tar writer over descriptors: entries named exactly as given (GNU long
/// names where they do not fit), hardlinks kept, directories of other
/// devices not descended into.
struct TarOut<W: Write> {
    w: W,
    /// First archive name of each multiply-linked file.
    links: HashMap<(u64, u64), Vec<u8>>,
    /// Directories not on this device are archived without contents.
    dev: Option<u64>,
    buf: Vec<u8>,
}

impl<W: Write> TarOut<W> {
    fn new(w: W) -> TarOut<W> {
        TarOut {
            w,
            links: HashMap::new(),
            dev: None,
            buf: vec![0u8; 128 << 10],
        }
    }

    fn put(&mut self, data: &[u8]) -> Result<()> {
        self.w
            .write_all(data)
            .map_err(|e| io_error("writing the archive", e))
    }

    fn pad(&mut self, len: u64) -> Result<()> {
        let rem = (len % 512) as usize;
        if rem != 0 {
            self.put(&[0u8; 512][..512 - rem])?;
        }
        Ok(())
    }

    /// A GNU long-name (`L`) or long-link (`K`) record.
    fn long(&mut self, kind: tar::EntryType, value: &[u8]) -> Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        set_name(&mut h, b"././@LongLink");
        h.set_mode(0o644);
        h.set_size(value.len() as u64 + 1);
        h.set_cksum();
        self.put(h.as_bytes())?;
        self.put(value)?;
        self.put(&[0])?;
        self.pad(value.len() as u64 + 1)
    }

    /// A PAX record block carrying xattrs.
    fn pax(&mut self, xattrs: &[(String, Vec<u8>)]) -> Result<()> {
        let mut data = Vec::new();
        for (k, v) in xattrs {
            let key = format!("SCHILY.xattr.{k}");
            // "LEN key=value\n", LEN counting itself.
            let rest = key.len() + v.len() + 3;
            let mut len = rest + 1;
            while len.to_string().len() + rest != len {
                len = len.to_string().len() + rest;
            }
            data.extend_from_slice(format!("{len} {key}=").as_bytes());
            data.extend_from_slice(v);
            data.push(b'\n');
        }
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::XHeader);
        set_name(&mut h, b"PaxHeader");
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_cksum();
        self.put(h.as_bytes())?;
        self.put(&data)?;
        self.pad(data.len() as u64)
    }

    #[allow(clippy::too_many_arguments)]
    fn header(
        &mut self,
        name: &[u8],
        link: Option<&[u8]>,
        kind: tar::EntryType,
        st: &FileStat,
        size: u64,
        xattrs: &[(String, Vec<u8>)],
    ) -> Result<()> {
        if !xattrs.is_empty() {
            self.pax(xattrs)?;
        }
        if name.len() > 100 {
            self.long(tar::EntryType::GNULongName, name)?;
        }
        if let Some(l) = link
            && l.len() > 100
        {
            self.long(tar::EntryType::GNULongLink, l)?;
        }
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        set_name(&mut h, name);
        if let Some(l) = link {
            let g = h.as_gnu_mut().expect("a GNU header");
            let n = l.len().min(g.linkname.len());
            g.linkname[..n].copy_from_slice(&l[..n]);
        }
        h.set_mode(st.st_mode & 0o7777);
        h.set_uid(u64::from(st.st_uid));
        h.set_gid(u64::from(st.st_gid));
        h.set_mtime(st.st_mtime.max(0) as u64);
        h.set_size(size);
        if matches!(kind, tar::EntryType::Char | tar::EntryType::Block) {
            let _ = h.set_device_major(libc::major(st.st_rdev));
            let _ = h.set_device_minor(libc::minor(st.st_rdev));
        }
        h.set_cksum();
        self.put(h.as_bytes())
    }

    /// An entry for `name` in `dir` (whose stat is `st`), named `path`;
    /// directories with their contents. Sockets are skipped, as Docker
    /// does; a node that vanished meanwhile is left out.
    fn node(&mut self, dir: BorrowedFd<'_>, name: &[u8], st: &FileStat, path: &[u8]) -> Result<()> {
        let t = file_type(st);
        if t == SFlag::S_IFDIR {
            let fd = match openat(dir, name, dir_flags(), Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) => return Ok(()),
                Err(e) => return Err(errno(&format!("opening {}", show(path)), e)),
            };
            let mut p = path.to_vec();
            p.push(b'/');
            self.dir(&fd, st, &p, true)
        } else if t == SFlag::S_IFREG {
            self.file(dir, name, st, path)
        } else if t == SFlag::S_IFLNK {
            let target = match readlinkat(dir, name) {
                Ok(t) => t,
                Err(Errno::ENOENT) => return Ok(()),
                Err(e) => return Err(errno("reading a symlink", e)),
            };
            let target = std::os::unix::ffi::OsStrExt::as_bytes(target.as_os_str()).to_vec();
            self.header(path, Some(&target), tar::EntryType::Symlink, st, 0, &[])
        } else if t == SFlag::S_IFCHR {
            self.header(path, None, tar::EntryType::Char, st, 0, &[])
        } else if t == SFlag::S_IFBLK {
            self.header(path, None, tar::EntryType::Block, st, 0, &[])
        } else if t == SFlag::S_IFIFO {
            self.header(path, None, tar::EntryType::Fifo, st, 0, &[])
        } else {
            Ok(())
        }
    }

    /// A directory entry (`path` ends in `/`), then, with `recurse`, its
    /// contents.
    fn dir(&mut self, fd: &OwnedFd, st: &FileStat, path: &[u8], recurse: bool) -> Result<()> {
        self.header(path, None, tar::EntryType::Directory, st, 0, &[])?;
        if !recurse || self.dev.is_some_and(|d| d != st.st_dev) {
            return Ok(());
        }
        self.children(fd.as_fd(), path)
    }

    /// The contents of a directory, each under `prefix` (empty or ending
    /// in `/`).
    fn children(&mut self, fd: BorrowedFd<'_>, prefix: &[u8]) -> Result<()> {
        for name in read_dir_names(fd).map_err(|e| io_error("listing a directory", e))? {
            let st = match lstat_at(fd, &name) {
                Ok(Some(st)) => st,
                Ok(None) => continue,
                Err(e) => return Err(errno("reading a directory entry", e)),
            };
            let mut p = prefix.to_vec();
            p.extend_from_slice(&name);
            self.node(fd, &name, &st, &p)?;
        }
        Ok(())
    }

    fn file(&mut self, dir: BorrowedFd<'_>, name: &[u8], st: &FileStat, path: &[u8]) -> Result<()> {
        if st.st_nlink > 1 {
            let key = (st.st_dev, st.st_ino);
            if let Some(first) = self.links.get(&key).cloned() {
                return self.header(path, Some(&first), tar::EntryType::Link, st, 0, &[]);
            }
            self.links.insert(key, path.to_vec());
        }
        let fd = match openat(
            dir,
            name,
            OFlag::O_RDONLY
                | OFlag::O_NOFOLLOW
                | OFlag::O_NONBLOCK
                | OFlag::O_NOCTTY
                | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(()),
            Err(e) => return Err(errno(&format!("opening {}", show(path)), e)),
        };
        let st = fstat(&fd).map_err(|e| errno("reading a file", e))?;
        if file_type(&st) != SFlag::S_IFREG {
            // Replaced by something else meanwhile.
            return Ok(());
        }
        let xattrs: Vec<(String, Vec<u8>)> = get_xattr(fd.as_fd(), CAPABILITY_XATTR)
            .map(|v| vec![(CAPABILITY_XATTR.to_string(), v)])
            .unwrap_or_default();
        let size = st.st_size.max(0) as u64;
        self.header(path, None, tar::EntryType::Regular, &st, size, &xattrs)?;
        // Exactly `size` bytes, whatever the file does meanwhile.
        let mut file = std::fs::File::from(fd);
        let mut left = size;
        let mut buf = std::mem::take(&mut self.buf);
        let copied = (|| {
            while left > 0 {
                let want = left.min(buf.len() as u64) as usize;
                let n = match file.read(&mut buf[..want]) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(io_error(&format!("reading {}", show(path)), e)),
                };
                self.put(&buf[..n])?;
                left -= n as u64;
            }
            Ok(())
        })();
        self.buf = buf;
        copied?;
        while left > 0 {
            let n = left.min(512) as usize;
            self.put(&[0u8; 512][..n])?;
            left -= n as u64;
        }
        self.pad(size)
    }

    /// An empty regular file entry (whiteouts).
    fn marker(&mut self, path: &[u8], st: &FileStat) -> Result<()> {
        let mut st = *st;
        st.st_mode = (st.st_mode & 0o7777) | SFlag::S_IFREG.bits();
        self.header(path, None, tar::EntryType::Regular, &st, 0, &[])
    }

    /// The end-of-archive blocks.
    fn finish(&mut self) -> Result<()> {
        self.put(&[0u8; 1024])
    }
}

fn set_name(h: &mut tar::Header, name: &[u8]) {
    let slot = &mut h.as_old_mut().name;
    slot.fill(0);
    let n = name.len().min(slot.len());
    slot[..n].copy_from_slice(&name[..n]);
}

fn show(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}

/// The archive of what a client's path names, entries under `base`.
fn write_found<W: Write>(out: &mut TarOut<W>, found: Found, base: &[u8]) -> Result<()> {
    match found {
        Found::Dir(fd, st) if base == b"/" => {
            out.dev = Some(st.st_dev);
            out.children(fd.as_fd(), b"/")
        }
        Found::Dir(fd, st) => {
            out.dev = Some(st.st_dev);
            let mut p = base.to_vec();
            p.push(b'/');
            out.dir(&fd, &st, &p, true)
        }
        Found::Entry { parent, name, stat } => {
            out.dev = Some(stat.st_dev);
            out.node(parent.as_fd(), &name, &stat, base)
        }
    }
}

/// One xattr of an open file; `None` if it has none (or cannot say).
fn get_xattr(fd: BorrowedFd<'_>, key: &str) -> Option<Vec<u8>> {
    let k = cstring(key.as_bytes()).ok()?;
    let mut buf = vec![0u8; 256];
    loop {
        // SAFETY: valid descriptor, NUL-terminated name, buffer and its
        // length from one Vec.
        let n = unsafe {
            libc::fgetxattr(
                fd.as_raw_fd(),
                k.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if n >= 0 {
            buf.truncate(n as usize);
            return Some(buf);
        }
        if io::Error::last_os_error().raw_os_error() == Some(libc::ERANGE) && buf.len() < 1 << 16 {
            buf.resize(buf.len() * 4, 0);
            continue;
        }
        return None;
    }
}

// ---------------------------------------------------------------------------
// extracting tar

/// The uid and gid files get with `docker cp -a`: the container's user,
/// resolved in its own `/etc/passwd` and `/etc/group`.
fn container_user(root: &OwnedFd, spec: &str) -> Result<(u32, u32)> {
    let user = crate::executor::native::init::resolve_user(root, spec).map_err(Error::invalid)?;
    Ok((user.uid, user.gid))
}

/// The body as an uncompressed tar: plain, gzip or zstd, told apart by
/// the first bytes.
fn decompress<R: Read>(body: R) -> Result<impl Read> {
    Ok(crate::image::compress::Decoder::sniff(body, "the archive")?.1)
}

/// The directory an upload goes to: it must exist and be a directory on
/// a filesystem of files.
fn check_extraction_point(root: &OwnedFd, p: &CPath, cname: &str) -> Result<()> {
    match open_in_root(root.as_fd(), &p.comps, OFlag::O_PATH) {
        Ok(fd) => {
            let st = fstat(&fd).map_err(|e| errno("reading the destination", e))?;
            if !is_dir(&st) {
                return Err(Error::invalid(format!(
                    "extraction point is not a directory: {} in container {cname}",
                    p.shown
                )));
            }
            if let Some(kind) = kernel_fs(fd.as_fd()) {
                return Err(Error::invalid(format!(
                    "cannot copy into {}: it is on the container's {kind}, which is not a \
                     filesystem of files",
                    p.shown
                )));
            }
            Ok(())
        }
        Err(Errno::ENOENT) => Err(Error::not_found(format!(
            "Could not find the file {} in container {cname}",
            p.shown
        ))),
        Err(Errno::ENOTDIR) => Err(Error::invalid(format!(
            "extraction point is not a directory: {} in container {cname}",
            p.shown
        ))),
        Err(e) => Err(errno(&format!("resolving {}", p.shown), e)),
    }
}

/// Extracts an uncompressed tar into the directory `p` of a container's
/// root, with the one extractor of the image pipeline.
fn extract_tar(
    root: &OwnedFd,
    p: &CPath,
    cname: &str,
    opts: ExtractOptions,
    owner: Option<(u32, u32)>,
    limits: &UnpackLimits,
    reader: impl Read,
) -> Result<()> {
    check_extraction_point(root, p, cname)?;
    let target = CopyTarget {
        root: root.as_fd(),
        dest: &p.comps,
        shown: &p.shown,
        owner,
        no_overwrite_dir_non_dir: opts.no_overwrite_dir_non_dir,
    };
    unpack::extract_into(reader, target, limits).map(|_| ())
}

// ---------------------------------------------------------------------------
// changes

/// One entry of a container's own files (its upper directory), with what
/// it means against the image's layers.
#[derive(Debug)]
struct Node {
    name: Vec<u8>,
    stat: FileStat,
    kind: NodeKind,
    /// What `docker diff` reports for it.
    change: Option<u8>,
    /// Whether a commit's layer holds it.
    include: bool,
}

#[derive(Debug)]
enum NodeKind {
    /// An overlayfs whiteout: deleted from the image.
    Whiteout,
    Dir {
        opaque: bool,
        children: Vec<Node>,
    },
    Other,
}

/// Scans `top` (a container's upper directory, or a Wasm container's
/// whole directory) against `lowers` (top first); `None` if `top` does
/// not exist (a container never started).
fn scan_tree(top: &Path, lowers: &[PathBuf]) -> Result<Option<Vec<Node>>> {
    let fd = match nix::fcntl::open(top, dir_flags(), Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(None),
        Err(e) => return Err(errno(&format!("opening {}", top.display()), e)),
    };
    let mut cands = Vec::new();
    for l in lowers {
        cands.push(
            nix::fcntl::open(l.as_path(), dir_flags(), Mode::empty())
                .map_err(|e| errno(&format!("opening layer {}", l.display()), e))?,
        );
    }
    // Only a native container's upper holds the runtime's mount points.
    let runtime_paths = !lowers.is_empty();
    scan(fd.as_fd(), &cands, b"", runtime_paths).map(Some)
}

fn scan(
    dir: BorrowedFd<'_>,
    lowers: &[OwnedFd],
    prefix: &[u8],
    runtime_paths: bool,
) -> Result<Vec<Node>> {
    let mut out = Vec::new();
    for name in read_dir_names(dir).map_err(|e| io_error("listing the container's changes", e))? {
        let mut path = prefix.to_vec();
        path.extend_from_slice(&name);
        if runtime_paths && RUNTIME_PATHS.contains(&path.as_slice()) {
            continue;
        }
        let Some(st) = lstat_at(dir, &name).map_err(|e| errno("reading a changed file", e))? else {
            continue;
        };
        let (lower, lower_dirs) = lower_lookup(lowers, &name)?;
        if is_whiteout(&st) {
            if lower.is_some() {
                out.push(Node {
                    name,
                    stat: st,
                    kind: NodeKind::Whiteout,
                    change: Some(Change::DELETED),
                    include: true,
                });
            }
            continue;
        }
        if is_dir(&st) {
            let fd = openat(dir, name.as_slice(), dir_flags(), Mode::empty())
                .map_err(|e| errno("opening a changed directory", e))?;
            if get_xattr(fd.as_fd(), REDIRECT_XATTR).is_some() {
                return Err(Error::internal(format!(
                    "/{} was renamed with overlayfs's redirect_dir, which berth cannot read back; \
                     mount overlayfs with redirect_dir=off",
                    show(&path)
                )));
            }
            let opaque = get_xattr(fd.as_fd(), OPAQUE_XATTR).is_some_and(|v| v == b"y");
            let lower_dir = lower.as_ref().is_some_and(is_dir);
            let below: &[OwnedFd] = if opaque || !lower_dir {
                &[]
            } else {
                &lower_dirs
            };
            let mut child_prefix = path.clone();
            child_prefix.push(b'/');
            let children = scan(fd.as_fd(), below, &child_prefix, runtime_paths)?;
            let change = match &lower {
                None => Some(Change::ADDED),
                Some(_) if opaque || !lower_dir => Some(Change::MODIFIED),
                Some(l) => {
                    // As Docker: a directory changed if its mode or owner
                    // did, or something was added to or deleted from it.
                    // Its mtime is not compared: the runtime's own mount
                    // points (left out above) change it.
                    let meta_changed =
                        (l.st_mode, l.st_uid, l.st_gid) != (st.st_mode, st.st_uid, st.st_gid);
                    let child_added_or_deleted = children
                        .iter()
                        .any(|c| matches!(c.change, Some(Change::ADDED | Change::DELETED)));
                    (meta_changed || child_added_or_deleted).then_some(Change::MODIFIED)
                }
            };
            let include = change.is_some() || children.iter().any(|c| c.include);
            out.push(Node {
                name,
                stat: st,
                kind: NodeKind::Dir { opaque, children },
                change,
                include,
            });
            continue;
        }
        out.push(Node {
            name,
            stat: st,
            kind: NodeKind::Other,
            change: Some(if lower.is_some() {
                Change::MODIFIED
            } else {
                Change::ADDED
            }),
            include: true,
        });
    }
    Ok(out)
}

/// Looks `name` up in the lower directories `lowers` (top first) as
/// overlayfs would: the first hit decides; a whiteout hides it; a
/// non-directory hides everything below; directories merge down to the
/// first opaque one. Returns the visible entry's stat and the directories
/// to look in below it.
fn lower_lookup(lowers: &[OwnedFd], name: &[u8]) -> Result<(Option<FileStat>, Vec<OwnedFd>)> {
    let mut first: Option<FileStat> = None;
    let mut dirs = Vec::new();
    for l in lowers {
        let st = match lstat_at(l.as_fd(), name) {
            Ok(Some(st)) => st,
            Ok(None) | Err(Errno::ENOTDIR) => continue,
            Err(e) => return Err(errno("reading an image layer", e)),
        };
        if is_whiteout(&st) {
            break;
        }
        match &first {
            None => first = Some(st),
            Some(_) if !is_dir(&st) => break,
            Some(_) => {}
        }
        if !is_dir(&st) {
            break;
        }
        let fd = openat(l.as_fd(), name, dir_flags(), Mode::empty())
            .map_err(|e| errno("opening an image layer's directory", e))?;
        let opaque = get_xattr(fd.as_fd(), OPAQUE_XATTR).is_some_and(|v| v == b"y");
        dirs.push(fd);
        if opaque {
            break;
        }
    }
    Ok((first, dirs))
}

fn list_changes(nodes: &[Node], prefix: &[u8], out: &mut Vec<Change>) {
    for n in nodes {
        let mut path = prefix.to_vec();
        path.push(b'/');
        path.extend_from_slice(&n.name);
        if let Some(kind) = n.change {
            out.push(Change {
                path: show(&path),
                kind,
            });
        }
        if let NodeKind::Dir { children, .. } = &n.kind {
            list_changes(children, &path, out);
        }
    }
}

// ---------------------------------------------------------------------------
// commit

/// What a commit records besides the files.
struct CommitMeta {
    created: String,
    created_by: String,
    comment: String,
    author: String,
    config: wire::Config,
}

fn commit_tags(repo: &str, tag: &str) -> Result<Vec<Reference>> {
    if repo.is_empty() {
        if !tag.is_empty() {
            return Err(Error::invalid(
                "a tag needs a repository: give repo=NAME&tag=TAG",
            ));
        }
        return Ok(Vec::new());
    }
    let r = Reference::parse(repo)?;
    if r.digest().is_some() {
        return Err(Error::invalid(format!(
            "refusing to create a tag with a digest reference: {repo}"
        )));
    }
    Ok(vec![if tag.is_empty() { r } else { r.with_tag(tag)? }])
}

/// Sets the fields the commit request's body gives over the container's.
fn overlay_config(config: &mut wire::Config, body: &wire::Config) {
    if body.cmd.is_some() {
        config.cmd = body.cmd.clone();
    }
    if body.entrypoint.is_some() {
        config.entrypoint = body.entrypoint.clone();
    }
    for e in &body.env {
        let (k, v) = e.split_once('=').unwrap_or((e, ""));
        set_env(&mut config.env, k, v);
    }
    if !body.working_dir.is_empty() {
        config.working_dir = body.working_dir.clone();
    }
    if !body.user.is_empty() {
        config.user = body.user.clone();
    }
    config
        .labels
        .extend(body.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    if let Some(p) = &body.exposed_ports {
        config
            .exposed_ports
            .get_or_insert_with(Default::default)
            .extend(p.clone());
    }
    if let Some(v) = &body.volumes {
        config
            .volumes
            .get_or_insert_with(Default::default)
            .extend(v.clone());
    }
    if !body.stop_signal.is_empty() {
        config.stop_signal = body.stop_signal.clone();
    }
}

/// Applies `--change` instructions, as a Dockerfile would on top.
fn apply_changes(config: &mut wire::Config, ch: &import::ConfigChanges) {
    if ch.entrypoint.is_some() {
        config.entrypoint = ch.entrypoint.clone();
        // A new entrypoint drops the old command unless CMD came too.
        config.cmd = ch.cmd.clone();
    } else if ch.cmd.is_some() {
        config.cmd = ch.cmd.clone();
    }
    for e in &ch.env {
        let (k, v) = e.split_once('=').unwrap_or((e, ""));
        set_env(&mut config.env, k, v);
    }
    if let Some(w) = &ch.working_dir {
        config.working_dir = w.clone();
    }
    if let Some(u) = &ch.user {
        config.user = u.clone();
    }
    config
        .labels
        .extend(ch.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    if !ch.exposed_ports.is_empty() {
        let ports = config.exposed_ports.get_or_insert_with(Default::default);
        for p in &ch.exposed_ports {
            ports.insert(p.clone(), serde_json::json!({}));
        }
    }
    if !ch.volumes.is_empty() {
        let vols = config.volumes.get_or_insert_with(Default::default);
        for v in &ch.volumes {
            vols.insert(v.clone(), serde_json::json!({}));
        }
    }
    if let Some(s) = &ch.stop_signal {
        config.stop_signal = s.clone();
    }
}

fn set_env(env: &mut Vec<String>, key: &str, value: &str) {
    let entry = format!("{key}={value}");
    match env
        .iter_mut()
        .find(|e| e.split_once('=').map(|x| x.0).unwrap_or(e) == key)
    {
        Some(e) => *e = entry,
        None => env.push(entry),
    }
}

/// The parent's config blob with the commit's changes: `created`,
/// `author`, the container config, and one more history entry (and, with
/// a layer, one more diff_id).
fn new_config(
    mut config: serde_json::Value,
    meta: &CommitMeta,
    diff_id: Option<&Digest>,
) -> Result<Vec<u8>> {
    use serde_json::{Value, json};
    if !config.is_object() {
        config = json!({});
    }
    config["created"] = json!(meta.created);
    if !meta.author.is_empty() {
        config["author"] = json!(meta.author);
    }
    config["config"] = serde_json::to_value(&meta.config).ctx("encoding the container config")?;
    let mut entry = json!({"created": meta.created, "created_by": meta.created_by});
    // The image's comment is this commit's, as Docker's (none: none).
    match config.as_object_mut() {
        Some(o) if meta.comment.is_empty() => {
            o.remove("comment");
        }
        _ => config["comment"] = json!(meta.comment),
    }
    if !meta.comment.is_empty() {
        entry["comment"] = json!(meta.comment);
    }
    if !meta.author.is_empty() {
        entry["author"] = json!(meta.author);
    }
    if let Some(d) = diff_id {
        if !config["rootfs"].is_object() {
            config["rootfs"] = json!({"type": "layers", "diff_ids": []});
        }
        match config["rootfs"]["diff_ids"].as_array_mut() {
            Some(ids) => ids.push(json!(d.to_string())),
            None => config["rootfs"]["diff_ids"] = json!([d.to_string()]),
        }
    } else {
        entry["empty_layer"] = json!(true);
    }
    match config["history"].as_array_mut() {
        Some(h) => h.push(entry),
        None => config["history"] = Value::Array(vec![entry]),
    }
    serde_json::to_vec(&config).ctx("encoding the image config")
}

fn commit_tags_and_store(
    images: &crate::image::Images,
    manifest: &Manifest,
    tags: &[Reference],
) -> Result<crate::image::ImageRecord> {
    let bytes = serde_json::to_vec(manifest).ctx("encoding the manifest")?;
    let digest = images.blobs().put(&bytes, None)?;
    images.commit(&digest, tags, None)
}

fn commit_wasm(
    images: &crate::image::Images,
    parent: &Manifest,
    parent_config: serde_json::Value,
    meta: &CommitMeta,
    tags: &[Reference],
) -> Result<crate::image::ImageRecord> {
    let config = new_config(parent_config, meta, None)?;
    let digest = images.blobs().put(&config, None)?;
    let mut manifest = parent.clone();
    manifest.config = Descriptor::new(&parent.config.media_type, digest, config.len() as u64);
    commit_tags_and_store(images, &manifest, tags)
}

fn commit_native(
    images: &crate::image::Images,
    parent: &Manifest,
    parent_config: serde_json::Value,
    meta: &CommitMeta,
    tags: &[Reference],
    upper: &Path,
    tree: Vec<Node>,
) -> Result<crate::image::ImageRecord> {
    let blobs = images.blobs();
    let mut writer = blobs.writer()?;
    let diff_id = {
        let gz = flate2::write::GzEncoder::new(&mut writer, flate2::Compression::fast());
        let mut out = TarOut::new(HashingWriter {
            inner: gz,
            hasher: Hasher::new(),
        });
        if let Ok(fd) = nix::fcntl::open(upper, dir_flags(), Mode::empty()) {
            emit_layer(&mut out, fd.as_fd(), &tree, b"")?;
        }
        out.finish()?;
        let HashingWriter { inner, hasher } = out.w;
        inner
            .finish()
            .map_err(|e| io_error("compressing the layer", e))?;
        hasher.finish().0
    };
    let size = writer.written();
    let layer_digest = writer.commit(None, None)?;
    let layer = Descriptor::new(media::OCI_LAYER_GZIP, layer_digest, size);
    let config = new_config(parent_config, meta, Some(&diff_id))?;
    let config_digest = blobs.put(&config, None)?;
    let mut layers = parent.layers.clone();
    layers.push(layer);
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.into()),
        artifact_type: None,
        config: Descriptor::new(media::OCI_CONFIG, config_digest, config.len() as u64),
        layers,
        annotations: BTreeMap::new(),
        subject: None,
    };
    commit_tags_and_store(images, &manifest, tags)
}

/// The commit layer: the upper directory's entries that `scan` kept, in
/// the OCI layer format.
fn emit_layer<W: Write>(
    out: &mut TarOut<W>,
    dir: BorrowedFd<'_>,
    nodes: &[Node],
    prefix: &[u8],
) -> Result<()> {
    for n in nodes.iter().filter(|n| n.include) {
        let mut path = prefix.to_vec();
        match &n.kind {
            NodeKind::Whiteout => {
                path.extend_from_slice(WHITEOUT_PREFIX);
                path.extend_from_slice(&n.name);
                out.marker(&path, &n.stat)?;
            }
            NodeKind::Dir { opaque, children } => {
                path.extend_from_slice(&n.name);
                path.push(b'/');
                let fd = openat(dir, n.name.as_slice(), dir_flags(), Mode::empty())
                    .map_err(|e| errno("opening a changed directory", e))?;
                out.dir(&fd, &n.stat, &path, false)?;
                if *opaque {
                    let mut marker = path.clone();
                    marker.extend_from_slice(WHITEOUT_OPAQUE);
                    out.marker(&marker, &n.stat)?;
                }
                emit_layer(out, fd.as_fd(), children, &path)?;
            }
            NodeKind::Other => {
                path.extend_from_slice(&n.name);
                out.node(dir, &n.name, &n.stat, &path)?;
            }
        }
    }
    Ok(())
}

/// Hashes what passes through on its way to `inner` (a layer's diff_id).
struct HashingWriter<W: Write> {
    inner: W,
    hasher: Hasher,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::dirfd::set_xattr_fd;
    use nix::sys::stat::mknodat;
    use std::os::unix::fs::{PermissionsExt, symlink};

    fn root_of(dir: &Path) -> OwnedFd {
        open_dir(dir).unwrap()
    }

    fn is_root() -> bool {
        nix::unistd::Uid::effective().is_root()
    }

    fn tar_of(entries: &[(&str, tar::EntryType, &[u8], &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, kind, data, link) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            set_name(&mut h, name.as_bytes());
            if !link.is_empty() {
                let g = h.as_gnu_mut().unwrap();
                g.linkname[..link.len()].copy_from_slice(link.as_bytes());
            }
            h.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
            h.set_uid(nix::unistd::getuid().as_raw() as u64);
            h.set_gid(nix::unistd::getgid().as_raw() as u64);
            h.set_size(data.len() as u64);
            h.set_mtime(1_700_000_000);
            h.set_cksum();
            out.extend_from_slice(h.as_bytes());
            out.extend_from_slice(data);
            out.resize(out.len().div_ceil(512) * 512, 0);
        }
        out.extend_from_slice(&[0u8; 1024]);
        out
    }

    fn extract(root: &Path, dest: &str, tar: Vec<u8>) -> Result<()> {
        let fd = root_of(root);
        let p = CPath::parse(dest).unwrap();
        extract_tar(
            &fd,
            &p,
            "ctr",
            ExtractOptions::default(),
            None,
            &UnpackLimits::default(),
            decompress(io::Cursor::new(tar))?,
        )
    }

    fn archive(root: &Path, path: &str) -> Result<Vec<(String, Vec<u8>, String)>> {
        let fd = root_of(root);
        let p = CPath::parse(path)?;
        let found = locate(&fd, &p, "ctr")?;
        let mut out = TarOut::new(Vec::new());
        write_found(&mut out, found, &p.base)?;
        out.finish()?;
        let mut a = tar::Archive::new(io::Cursor::new(out.w));
        let mut v = Vec::new();
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            let name = String::from_utf8(e.path_bytes().into_owned()).unwrap();
            let link = e
                .link_name_bytes()
                .map(|l| String::from_utf8_lossy(&l).into_owned())
                .unwrap_or_default();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            v.push((name, data, link));
        }
        Ok(v)
    }

    #[test]
    fn paths_parse_like_dockers() {
        let p = CPath::parse("/tmp/d").unwrap();
        assert_eq!(
            (p.comps.len(), p.dir, p.base.as_slice()),
            (2, false, &b"d"[..])
        );
        let p = CPath::parse("/tmp/d/").unwrap();
        assert!(p.dir);
        assert_eq!(p.base, b"d");
        let p = CPath::parse("/tmp/d/.").unwrap();
        assert!(p.dir);
        assert_eq!(p.base, b".");
        assert_eq!(p.stat_name(), ".");
        let p = CPath::parse("/../../etc/./passwd").unwrap();
        assert_eq!(p.comps, vec![b"etc".to_vec(), b"passwd".to_vec()]);
        let p = CPath::parse("/").unwrap();
        assert!(p.comps.is_empty());
        assert_eq!(p.stat_name(), "/");
        assert_eq!(p.base, b"/");
        assert_eq!(CPath::parse("/tmp/..").unwrap().base, b"/");
        assert!(CPath::parse("").is_err());
    }

    #[test]
    fn a_file_and_a_directory_archive_under_their_base_names() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("d/sub")).unwrap();
        std::fs::write(t.path().join("d/a.txt"), b"hello").unwrap();
        std::fs::write(t.path().join("d/sub/b"), b"").unwrap();
        std::fs::hard_link(t.path().join("d/a.txt"), t.path().join("d/sub/a-link")).unwrap();
        symlink("/etc/passwd", t.path().join("d/abs")).unwrap();
        let names: Vec<String> = archive(t.path(), "/d")
            .unwrap()
            .into_iter()
            .map(|e| e.0)
            .collect();
        assert_eq!(
            names,
            [
                "d/",
                "d/a.txt",
                "d/abs",
                "d/sub/",
                "d/sub/a-link",
                "d/sub/b"
            ]
        );
        let v = archive(t.path(), "/d/a.txt").unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!(
            (v[0].0.as_str(), v[0].1.as_slice()),
            ("a.txt", &b"hello"[..])
        );
        let v = archive(t.path(), "/d/.").unwrap();
        assert_eq!(v[0].0, "./");
        assert_eq!(v[1].0, "./a.txt");
        let v = archive(t.path(), "/d/sub").unwrap();
        assert_eq!(
            v[1],
            ("sub/a-link".to_string(), b"hello".to_vec(), String::new())
        );
        let v = archive(t.path(), "/d").unwrap();
        let link = v.iter().find(|e| e.0 == "d/sub/a-link").unwrap();
        assert_eq!(link.2, "d/a.txt", "the second name of a file is a hardlink");
        let abs = v.iter().find(|e| e.0 == "d/abs").unwrap();
        assert_eq!(abs.2, "/etc/passwd", "symlinks are archived, not followed");
        let names: Vec<String> = archive(t.path(), "/")
            .unwrap()
            .into_iter()
            .map(|e| e.0)
            .collect();
        assert_eq!(
            names[0], "/d/",
            "the root's entries are named from /, as Docker's"
        );
        let long = "x".repeat(150);
        std::fs::write(t.path().join(&long), b"long").unwrap();
        let v = archive(t.path(), &format!("/{long}")).unwrap();
        assert_eq!(v[0].0, long);
        assert!(matches!(
            archive(t.path(), "/missing").unwrap_err().kind(),
            crate::error::ErrorKind::NotFound
        ));
    }

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("etc")).unwrap();
        std::fs::write(t.path().join("etc/hostname"), b"inside").unwrap();
        symlink("/", t.path().join("hostroot")).unwrap();
        symlink("../../../../etc", t.path().join("up")).unwrap();
        for p in [
            "/hostroot/etc/hostname",
            "/up/hostname",
            "/hostroot/../../etc/hostname",
        ] {
            let v = archive(t.path(), p).unwrap();
            assert_eq!(v[0].1, b"inside", "{p} stays in the root");
        }
        let fd = root_of(t.path());
        let p = CPath::parse("/up").unwrap();
        let found = locate(&fd, &p, "c").unwrap();
        let st = path_stat(&fd, &p, found.stat()).unwrap();
        assert!(st.is_symlink());
        assert_eq!(st.link_target, "/etc");
        // The archive of a symlink to / is the link, not the host.
        let v = archive(t.path(), "/hostroot").unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].2, "/");
        // With a trailing slash it is followed, inside the root.
        let names: Vec<String> = archive(t.path(), "/hostroot/")
            .unwrap()
            .into_iter()
            .map(|e| e.0)
            .collect();
        assert!(
            names.contains(&"hostroot/etc/hostname".to_string()),
            "{names:?}"
        );
    }

    #[test]
    fn extraction_writes_files_and_refuses_climbing_out() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("tmp")).unwrap();
        extract(
            &root,
            "/tmp",
            tar_of(&[
                ("d/", tar::EntryType::Directory, b"", ""),
                ("d/f", tar::EntryType::Regular, b"data", ""),
                ("d/deep/er/g", tar::EntryType::Regular, b"g", ""),
                ("d/l", tar::EntryType::Symlink, b"", "/etc/passwd"),
                ("d/h", tar::EntryType::Link, b"", "d/f"),
            ]),
        )
        .unwrap();
        assert_eq!(std::fs::read(root.join("tmp/d/f")).unwrap(), b"data");
        assert_eq!(std::fs::read(root.join("tmp/d/deep/er/g")).unwrap(), b"g");
        assert_eq!(std::fs::read(root.join("tmp/d/h")).unwrap(), b"data");
        assert_eq!(
            std::fs::read_link(root.join("tmp/d/l")).unwrap(),
            Path::new("/etc/passwd")
        );
        // `..` out of the destination: refused, nothing written above it.
        let err = extract(
            &root,
            "/tmp",
            tar_of(&[("../../escaped", tar::EntryType::Regular, b"x", "")]),
        )
        .unwrap_err();
        assert!(err.message().contains("climbs out"), "{err}");
        assert!(!t.path().join("escaped").exists());
        assert!(!root.join("escaped").exists());
        // A symlink to / in the container, then a file through it: lands
        // in the container's root, not the host's.
        symlink("/", root.join("tmp/toroot")).unwrap();
        extract(
            &root,
            "/tmp",
            tar_of(&[("toroot/etc/through", tar::EntryType::Regular, b"in", "")]),
        )
        .unwrap();
        assert_eq!(std::fs::read(root.join("etc/through")).unwrap(), b"in");
        // A hardlink to something outside the destination.
        let err = extract(
            &root,
            "/tmp",
            tar_of(&[("x", tar::EntryType::Link, b"", "../../../etc/shadow")]),
        )
        .unwrap_err();
        assert!(err.message().contains("climbs out"), "{err}");
        // The destination must be a directory.
        let err = extract(&root, "/tmp/d/f", tar_of(&[])).unwrap_err();
        assert!(err.message().contains("not a directory"), "{err}");
        let err = extract(&root, "/nowhere", tar_of(&[])).unwrap_err();
        assert_eq!(err.kind(), crate::error::ErrorKind::NotFound);
    }

    #[test]
    fn no_overwrite_dir_non_dir() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("d/sub")).unwrap();
        std::fs::write(t.path().join("d/file"), b"").unwrap();
        let fd = root_of(t.path());
        let p = CPath::parse("/d").unwrap();
        let opts = ExtractOptions {
            no_overwrite_dir_non_dir: true,
            copy_uid_gid: false,
        };
        let run = |entries: &[(&str, tar::EntryType, &[u8], &str)]| {
            extract_tar(
                &fd,
                &p,
                "c",
                opts,
                None,
                &UnpackLimits::default(),
                io::Cursor::new(tar_of(entries)),
            )
        };
        assert!(run(&[("sub", tar::EntryType::Regular, b"x", "")]).is_err());
        assert!(run(&[("file/", tar::EntryType::Directory, b"", "")]).is_err());
        run(&[("file", tar::EntryType::Regular, b"new", "")]).unwrap();
        assert_eq!(std::fs::read(t.path().join("d/file")).unwrap(), b"new");
        assert!(t.path().join("d/sub").is_dir());
    }

    #[test]
    fn gzip_archives_extract() {
        let t = tempfile::tempdir().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar_of(&[("z", tar::EntryType::Regular, b"zipped", "")]))
            .unwrap();
        extract(t.path(), "/", gz.finish().unwrap()).unwrap();
        assert_eq!(std::fs::read(t.path().join("z")).unwrap(), b"zipped");
    }

    #[test]
    fn changes_of_a_plain_directory_are_all_additions() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("a/b")).unwrap();
        std::fs::write(t.path().join("a/b/c"), b"").unwrap();
        let tree = scan_tree(t.path(), &[]).unwrap().unwrap();
        let mut out = Vec::new();
        list_changes(&tree, b"", &mut out);
        let got: Vec<(char, &str)> = out.iter().map(|c| (c.letter(), c.path.as_str())).collect();
        assert_eq!(got, [('A', "/a"), ('A', "/a/b"), ('A', "/a/b/c")]);
        assert!(scan_tree(&t.path().join("nope"), &[]).unwrap().is_none());
    }

    /// An upper directory over two lowers, with the whiteouts and opaque
    /// directories overlayfs makes (root needed for both).
    #[test]
    fn changes_and_commit_layer_follow_overlay_rules() {
        if !is_root() {
            eprintln!("skipping: whiteouts and trusted xattrs need root");
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let (low1, low2, up) = (
            t.path().join("l1"),
            t.path().join("l2"),
            t.path().join("up"),
        );
        for d in ["etc", "bin", "opq/old", "tmp"] {
            std::fs::create_dir_all(low1.join(d)).unwrap();
        }
        std::fs::write(low1.join("etc/passwd"), b"root").unwrap();
        std::fs::write(low1.join("bin/ls"), b"ls").unwrap();
        std::fs::write(low1.join("bin/gone-below"), b"").unwrap();
        std::fs::create_dir_all(low2.join("bin")).unwrap();
        // The top lower deleted bin/gone-below.
        mknodat(
            open_dir(&low2.join("bin")).unwrap().as_fd(),
            "gone-below",
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o600),
            0,
        )
        .unwrap();
        for d in ["etc", "bin", "opq", "tmp", "proc"] {
            std::fs::create_dir_all(up.join(d)).unwrap();
        }
        let same_perm = |p: &Path, from: &Path| {
            let m = std::fs::metadata(from).unwrap().permissions().mode();
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
        };
        for d in ["etc", "bin", "opq", "tmp"] {
            same_perm(&up.join(d), &low1.join(d));
        }
        std::fs::write(up.join("etc/passwd"), b"root\napp").unwrap();
        std::fs::write(up.join("etc/hostname"), b"").unwrap();
        std::fs::write(up.join("tmp/new"), b"new").unwrap();
        mknodat(
            open_dir(&up.join("bin")).unwrap().as_fd(),
            "ls",
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o600),
            0,
        )
        .unwrap();
        mknodat(
            open_dir(&up.join("bin")).unwrap().as_fd(),
            "gone-below",
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o600),
            0,
        )
        .unwrap();
        set_xattr_fd(
            open_dir(&up.join("opq")).unwrap().as_fd(),
            OPAQUE_XATTR,
            b"y",
        )
        .unwrap();
        std::fs::write(up.join("opq/fresh"), b"").unwrap();
        let tree = scan_tree(&up, &[low2.clone(), low1.clone()])
            .unwrap()
            .unwrap();
        let mut out = Vec::new();
        list_changes(&tree, b"", &mut out);
        let got: Vec<String> = out
            .iter()
            .map(|c| format!("{} {}", c.letter(), c.path))
            .collect();
        assert_eq!(
            got,
            [
                "C /bin",
                "D /bin/ls",
                "C /etc/passwd",
                "C /opq",
                "A /opq/fresh",
                "C /tmp",
                "A /tmp/new"
            ],
            "a whiteout of something already deleted below is no change; runtime paths are left out"
        );
        let mut out = TarOut::new(Vec::new());
        let fd = open_dir(&up).unwrap();
        emit_layer(&mut out, fd.as_fd(), &tree, b"").unwrap();
        out.finish().unwrap();
        let mut a = tar::Archive::new(io::Cursor::new(out.w));
        let names: Vec<String> = a
            .entries()
            .unwrap()
            .map(|e| String::from_utf8(e.unwrap().path_bytes().into_owned()).unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "bin/",
                "bin/.wh.ls",
                "etc/",
                "etc/passwd",
                "opq/",
                "opq/.wh..wh..opq",
                "opq/fresh",
                "tmp/",
                "tmp/new"
            ]
        );
    }

    #[test]
    fn config_changes_apply_over_the_containers() {
        let mut c = wire::Config {
            cmd: Some(vec!["sh".into()]),
            env: vec!["PATH=/bin".into(), "A=1".into()],
            ..Default::default()
        };
        let ch = import::parse_changes(&[
            "CMD [\"cat\", \"/hello\"]".to_string(),
            "ENV A=2 B=3".to_string(),
            "LABEL x=y".to_string(),
            "EXPOSE 80".to_string(),
        ])
        .unwrap();
        apply_changes(&mut c, &ch);
        assert_eq!(c.cmd, Some(vec!["cat".to_string(), "/hello".to_string()]));
        assert_eq!(c.env, ["PATH=/bin", "A=2", "B=3"]);
        assert_eq!(c.labels.get("x").map(String::as_str), Some("y"));
        assert!(c.exposed_ports.unwrap().contains_key("80/tcp"));
        let meta = CommitMeta {
            created: "2024-01-01T00:00:00Z".into(),
            created_by: "sh".into(),
            comment: "msg".into(),
            author: "me".into(),
            config: wire::Config::default(),
        };
        let parent = serde_json::json!({"os": "linux", "rootfs": {"type": "layers", "diff_ids": ["sha256:aa"]}, "history": [{"created_by": "x"}]});
        let d = Digest::of(b"layer");
        let v: serde_json::Value =
            serde_json::from_slice(&new_config(parent, &meta, Some(&d)).unwrap()).unwrap();
        assert_eq!(v["rootfs"]["diff_ids"][1], d.to_string());
        assert_eq!(v["history"][1]["comment"], "msg");
        assert_eq!(v["author"], "me");
        assert_eq!(v["os"], "linux");
        assert!(commit_tags("", "t").is_err());
        assert_eq!(commit_tags("app", "v1").unwrap()[0].to_string(), "app:v1");
    }
}
