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
//! `diff` and `commit` are image work (`image::changes`): this module
//! finds the container's directories, holds it still, and hands them over.
//! The tar writer is `image::tarwrite`, the extractor of uploads the image
//! pipeline's one (`image::unpack`), behind its one decompressor.
//!
//! Split along those lines: `root.rs` opens a container's root (running,
//! stopped, Wasm), `paths.rs` resolves and stats the paths a client names
//! inside it (and makes `Config.Volumes` directories).
//!
//! This module reads container records through `Containers`' accessors and
//! never changes them; it does not start, stop or signal containers.

mod paths;
mod root;

use super::{Container, Containers, Status};
use crate::error::{Error, Result, ResultExt};
use crate::executor::ExecutorKind;
use crate::image::changes::{self, CommitMeta};
use crate::image::import;
use crate::image::tarwrite::{TarOut, errno, io_error};
use crate::image::unpack::{self, CopyTarget, UnpackLimits, open_in_root};
use crate::util::{self, Digest};
use berth_api_types::archive::{Change, PathStat};
use berth_api_types::container as wire;
use bytes::Bytes;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::fstat;
use paths::{CPath, Found, check_archivable, is_dir, kernel_fs, locate, path_stat};
pub(super) use paths::{make_volume_dirs, volume_paths};
pub use root::sweep_temp_mounts;
use root::{Root, TempMount, open_dir, running_root};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
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
        let user = (opts.copy_uid_gid && rec.workload.kind() == ExecutorKind::Native)
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
        tokio::task::spawn_blocking(move || changes::changes(&top, &lowers))
            .await
            .ctx("listing changes")?
    }

    /// `POST /commit`: a new image from the container's changes; returns
    /// the image's ID.
    pub async fn commit(self: &Arc<Self>, name: &str, opts: CommitOptions) -> Result<Digest> {
        let c = self.get(name)?;
        // Everything that can be refused without reading files, first.
        let changes = import::parse_changes(&opts.changes)?;
        let tags = changes::commit_tags(&opts.repo, &opts.tag)?;
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
        let config = changes::commit_config(
            &rec.config,
            opts.config.as_ref(),
            &changes,
            &rec.image_id.to_string(),
        );
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
        let wasm = rec.workload.kind() == ExecutorKind::Wasm;
        let record = tokio::task::spawn_blocking(move || {
            changes::commit(
                &images,
                &parent.manifest,
                parent_config,
                &meta,
                &tags,
                &top,
                &lowers,
                wasm,
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
        match rec.workload.native() {
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
        if rec.workload.kind() == ExecutorKind::Wasm || rec.workload.native().is_none() {
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
        self.executor(rec.workload.kind())?.release(&c.id).await;
        let native = rec.workload.native().expect("checked above");
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
            out.get_mut()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::tarwrite::set_name;
    use std::os::unix::fs::symlink;

    fn root_of(dir: &Path) -> OwnedFd {
        open_dir(dir).unwrap()
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
        let mut a = tar::Archive::new(io::Cursor::new(out.into_inner()?));
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
}
