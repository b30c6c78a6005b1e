//! `berth cp`: copy files between a container and the local filesystem,
//! as `docker cp` does, through the archive endpoints: `HEAD` to learn
//! what the other side's path is, then a tar one way or the other. The
//! renaming rules (copy into an existing directory, or create the
//! destination under a new name) are Docker's `PrepareArchiveCopy`.
//!
//! Local extraction never writes outside the destination: entry names
//! with `..` are refused, existing files are unlinked before they are
//! replaced (never written through), and every parent directory must
//! resolve inside the destination.

use std::fs;
use std::io::{self, IsTerminal, Read, Write};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use berth_api_types::archive::PathStat;
use clap::Args;
use tokio::sync::mpsc;

use crate::client::{Client, ClientError, ResponseStream, body};
use crate::format::units::human_size;

/// Copy files/folders between a container and the local filesystem
#[derive(Args, Debug)]
#[command(
    override_usage = "berth cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n       berth cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
    after_help = "Use '-' as the source to read a tar archive from stdin and extract it to a directory \
                  destination in a container.\nUse '-' as the destination to stream a tar archive of a \
                  container source to stdout."
)]
pub struct CpCommand {
    /// Archive mode (copy all uid/gid information)
    #[arg(short = 'a', long)]
    pub archive: bool,

    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long = "follow-link")]
    pub follow_link: bool,

    /// Suppress progress output during copy
    #[arg(short = 'q', long)]
    pub quiet: bool,

    /// CONTAINER:SRC_PATH, a local path, or - for a tar on stdin
    #[arg(value_name = "SRC")]
    pub src: String,

    /// CONTAINER:DEST_PATH, a local path, or - for a tar on stdout
    #[arg(value_name = "DEST")]
    pub dest: String,
}

impl CpCommand {
    pub async fn execute(self, client: &Client) -> Result<i32> {
        let (src_ctr, src_path) = split_cp_arg(&self.src);
        let (dst_ctr, dst_path) = split_cp_arg(&self.dest);
        match (src_ctr, dst_ctr) {
            (Some(_), Some(_)) => bail!("copying between containers is not supported"),
            (None, None) => bail!("must specify at least one container source"),
            (Some(c), None) => {
                if src_path.is_empty() {
                    bail!("source path cannot be empty");
                }
                self.copy_from_container(client, c, src_path, dst_path)
                    .await?;
            }
            (None, Some(c)) => {
                if dst_path.is_empty() {
                    bail!("destination path cannot be empty");
                }
                self.copy_to_container(client, src_path, c, dst_path)
                    .await?;
            }
        }
        Ok(0)
    }

    async fn copy_from_container(
        &self,
        client: &Client,
        container: &str,
        src: &str,
        dst: &str,
    ) -> Result<()> {
        let not_found = |e: ClientError| -> anyhow::Error {
            if e.is_not_found() {
                anyhow!("Error response from daemon: No such container:path: {container}:{src}")
            } else {
                e.into()
            }
        };
        let mut src_path = src.to_string();
        let mut rebase_name = None;
        if self.follow_link {
            let stat = client
                .container_stat_path(container, src)
                .await
                .map_err(not_found)?;
            if stat.is_symlink() {
                let mut target = stat.link_target.clone();
                if !target.starts_with('/') {
                    target = join_container(parent_of(src), &target);
                }
                let (t, r) = rebase_for_link(src, &target);
                src_path = t;
                rebase_name = r;
            }
        }
        let (stat, mut stream) = client.container_archive(container, &src_path).await?;
        if dst == "-" {
            let mut out = io::stdout().lock();
            while let Some(chunk) = stream.chunk().await.context("reading the archive")? {
                out.write_all(&chunk)?;
            }
            out.flush()?;
            return Ok(());
        }
        let dst_abs = absolute(dst)?;
        let src_info = CopyInfo {
            path: src_path.clone(),
            exists: true,
            is_dir: stat.is_dir(),
            rebase_name,
        };
        let dst_info = local_info(&dst_abs);
        let plan = prepare(&src_info, &dst_info)?;
        let copied = extract_stream(&mut stream, plan).await?;
        if !self.quiet {
            eprintln!("Successfully copied {} to {dst}", human_size(copied as i64));
        }
        Ok(())
    }

    async fn copy_to_container(
        &self,
        client: &Client,
        src: &str,
        container: &str,
        dst: &str,
    ) -> Result<()> {
        // What is there now decides where the archive goes; any error
        // means "assume the parent exists", as docker does.
        let mut dst_path = dst.to_string();
        let mut dst_stat: Option<PathStat> = client.container_stat_path(container, dst).await.ok();
        if let Some(st) = &dst_stat
            && st.is_symlink()
        {
            let mut target = st.link_target.clone();
            if !target.starts_with('/') {
                target = join_container(parent_of(dst), &target);
            }
            dst_path = target;
            dst_stat = client.container_stat_path(container, &dst_path).await.ok();
        }
        let dst_info = CopyInfo {
            path: dst_path.clone(),
            exists: dst_stat.is_some(),
            is_dir: dst_stat.as_ref().is_some_and(|s| s.is_dir()),
            rebase_name: None,
        };
        if src == "-" {
            if !dst_info.is_dir {
                bail!("destination \"{container}:{dst}\" must be a directory");
            }
            if io::stdin().is_terminal() {
                bail!("requested a tar archive from stdin, but stdin is a terminal: pipe one in");
            }
            let tar = body::reader(tokio::io::stdin(), None);
            client
                .container_extract(container, &dst_path, tar, self.archive)
                .await?;
            return Ok(());
        }
        let src_abs = absolute(src)?;
        // Archived under the name the plan says: a followed link keeps
        // its own name.
        let src_path = local_source(&src_abs, self.follow_link)?;
        let meta = fs::metadata(&src_path).with_context(|| format!("stat {src_path}"))?;
        let src_info = CopyInfo {
            path: src_abs.clone(),
            exists: true,
            is_dir: meta.is_dir(),
            rebase_name: None,
        };
        let plan = prepare(&src_info, &dst_info)?;
        let top = plan
            .rebase
            .as_ref()
            .map(|(_, new)| new.clone())
            .unwrap_or_else(|| base_of(&src_info.path).to_string());
        let (reader, writer) = nix::unistd::pipe().context("creating a pipe")?;
        let source = PathBuf::from(&src_path);
        let is_dir = meta.is_dir();
        let builder = std::thread::spawn(move || -> Result<u64> {
            let out = CountingWriter {
                inner: io::BufWriter::with_capacity(256 << 10, fs::File::from(writer)),
                count: 0,
            };
            let mut b = tar::Builder::new(out);
            b.follow_symlinks(false);
            if is_dir {
                b.append_dir_all(&top, &source)
                    .with_context(|| format!("archiving {}", source.display()))?;
            } else {
                b.append_path_with_name(&source, &top)
                    .with_context(|| format!("archiving {}", source.display()))?;
            }
            let mut out = b.into_inner().context("finishing the archive")?;
            out.flush()?;
            Ok(out.count)
        });
        let file = tokio::fs::File::from_std(fs::File::from(reader));
        let sent = client
            .container_extract(container, &plan.dir, body::reader(file, None), self.archive)
            .await;
        // A local failure explains a broken upload best.
        let built = builder
            .join()
            .map_err(|_| anyhow!("the archiving thread panicked"))?;
        let size = built?;
        sent?;
        if !self.quiet {
            eprintln!(
                "Successfully copied {} to {container}:{dst}",
                human_size(size as i64)
            );
        }
        Ok(())
    }
}

/// Docker's `splitCpArg`: `CONTAINER:PATH`, or a local path (absolute, or
/// starting with `.`, or without a colon).
pub fn split_cp_arg(arg: &str) -> (Option<&str>, &str) {
    if arg.starts_with('/') {
        return (None, arg);
    }
    match arg.split_once(':') {
        Some((c, p)) if !c.starts_with('.') && !c.is_empty() => (Some(c), p),
        _ => (None, arg),
    }
}

/// One side of a copy.
#[derive(Debug, Clone, PartialEq)]
struct CopyInfo {
    path: String,
    exists: bool,
    is_dir: bool,
    /// The name the source goes under instead of its own (a followed
    /// symlink keeps the link's name).
    rebase_name: Option<String>,
}

/// Where an archive is extracted, and how its first path element is
/// renamed (`(old, new)`).
#[derive(Debug, Clone, PartialEq)]
struct Plan {
    dir: String,
    rebase: Option<(String, String)>,
}

/// Ends in `/` or `/.`: the path must be a directory.
fn asserts_dir(p: &str) -> bool {
    p.ends_with('/') || p == "." || p.ends_with("/.")
}

/// The last element as archives name it: `.` for a path ending in `/.`,
/// `/` for the root (whose entries are `/bin`, `/etc/...`).
fn base_of(p: &str) -> &str {
    if p == "." || p.ends_with("/.") {
        return ".";
    }
    let t = p.trim_end_matches('/');
    match t.rsplit_once('/') {
        Some((_, b)) if !b.is_empty() => b,
        None if !t.is_empty() => t,
        _ => "/",
    }
}

/// The directory part of a path (`/` for a top-level name).
fn parent_of(p: &str) -> &str {
    let t = p.trim_end_matches('/');
    match t.rsplit_once('/') {
        Some(("", _)) => "/",
        Some((d, _)) => d,
        None => ".",
    }
}

fn join_container(dir: &str, rel: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{rel}")
    } else {
        format!("{dir}/{rel}")
    }
}

/// Docker's `GetRebaseName`: a followed link keeps the name (and the
/// trailing `/` or `/.`) it was asked by.
fn rebase_for_link(path: &str, target: &str) -> (String, Option<String>) {
    let mut t = target.to_string();
    if path.ends_with("/.") && !t.ends_with("/.") {
        t.push_str(if t.ends_with('/') { "." } else { "/." });
    } else if path.ends_with('/') && !t.ends_with('/') {
        t.push('/');
    }
    let (pb, tb) = (base_of(path), base_of(&t));
    let rebase = (pb != tb).then(|| pb.to_string());
    (t, rebase)
}

/// Docker's `PrepareArchiveCopy`: `src.path` is what the archive's
/// entries are named by (its base name); they are renamed to the
/// destination's name unless they go into an existing directory.
fn prepare(src: &CopyInfo, dst: &CopyInfo) -> Result<Plan> {
    let archive_base = base_of(&src.path).to_string();
    let rename = |new: String| Some((archive_base.clone(), new)).filter(|(o, n)| o != n);
    if dst.exists && dst.is_dir {
        return Ok(Plan {
            dir: dst.path.clone(),
            rebase: src.rebase_name.clone().and_then(rename),
        });
    }
    if dst.exists && src.is_dir {
        bail!(
            "cannot copy a directory to a file: {} is not a directory",
            dst.path
        );
    }
    if !dst.exists && !src.is_dir && asserts_dir(&dst.path) {
        bail!("no such directory: {}", dst.path);
    }
    Ok(Plan {
        dir: parent_of(&dst.path).to_string(),
        rebase: rename(base_of(&dst.path).to_string()),
    })
}

/// The local path made absolute (trailing `/` and `/.` kept).
fn absolute(p: &str) -> Result<String> {
    if p.starts_with('/') {
        return Ok(p.to_string());
    }
    let cwd = std::env::current_dir().context("finding the current directory")?;
    let mut s = cwd.to_string_lossy().into_owned();
    if !s.ends_with('/') {
        s.push('/');
    }
    s.push_str(p);
    Ok(s)
}

fn local_info(path: &str) -> CopyInfo {
    let meta = fs::metadata(path.trim_end_matches("/.")).ok();
    CopyInfo {
        path: path.to_string(),
        exists: meta.is_some(),
        is_dir: meta.is_some_and(|m| m.is_dir()),
        rebase_name: None,
    }
}

/// The local file to archive: the path itself, or with `-L` the target of
/// a symlink.
fn local_source(path: &str, follow: bool) -> Result<String> {
    let bare = path.strip_suffix("/.").unwrap_or(path);
    let meta = fs::symlink_metadata(bare).with_context(|| format!("lstat {bare}"))?;
    if follow && meta.file_type().is_symlink() {
        let target = fs::canonicalize(bare).with_context(|| format!("resolving {bare}"))?;
        return Ok(target.to_string_lossy().into_owned());
    }
    Ok(bare.to_string())
}

struct CountingWriter<W: Write> {
    inner: W,
    count: u64,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Extracts the daemon's archive locally as `plan` says; returns the bytes
/// of file content written.
async fn extract_stream(stream: &mut ResponseStream, plan: Plan) -> Result<u64> {
    let (tx, rx) = mpsc::channel::<bytes::Bytes>(16);
    let worker = tokio::task::spawn_blocking(move || {
        let reader = ChannelReader {
            rx,
            cur: bytes::Bytes::new(),
        };
        extract_local(reader, Path::new(&plan.dir), plan.rebase.as_ref())
    });
    let mut feed_error = None;
    loop {
        match stream.chunk().await {
            Ok(Some(chunk)) => {
                if tx.send(chunk).await.is_err() {
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => {
                feed_error = Some(anyhow!("reading the archive from the daemon: {e}"));
                break;
            }
        }
    }
    drop(tx);
    let result = worker.await.context("the extraction task failed")?;
    if let Some(e) = feed_error {
        return Err(e);
    }
    result
}

struct ChannelReader {
    rx: mpsc::Receiver<bytes::Bytes>,
    cur: bytes::Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(b) => self.cur = b,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur.split_to(n));
        Ok(n)
    }
}

/// An entry's name with its first element renamed, as a relative path
/// without `.` components; `..` is refused.
fn local_name(raw: &str, rebase: Option<&(String, String)>) -> Result<PathBuf> {
    let mut parts: Vec<&str> = raw.split('/').filter(|c| !c.is_empty()).collect();
    match rebase {
        // The root's entries: the new name goes in front.
        Some((old, new)) if old == "/" => parts.insert(0, new.as_str()),
        Some((old, new)) if parts.first().copied() == Some(old.as_str()) => parts[0] = new.as_str(),
        _ => {}
    }
    let mut out = PathBuf::new();
    for p in parts {
        match Path::new(p).components().next() {
            Some(Component::Normal(_)) => out.push(p),
            Some(Component::CurDir) | None => {}
            _ => bail!("refusing the archive entry {raw:?}: it climbs out of the destination"),
        }
    }
    Ok(out)
}

/// Creates the parent directories of `rel` below `root`, one at a time,
/// refusing a symlink on the way that leads outside `root`.
fn ensure_parent(root: &Path, rel: &Path, raw: &str) -> Result<()> {
    let mut cur = root.to_path_buf();
    let Some(parent) = rel.parent() else {
        return Ok(());
    };
    for comp in parent.components() {
        cur.push(comp);
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.is_dir() => {}
            Ok(m) if m.file_type().is_symlink() => {
                let real = fs::canonicalize(&cur).ok();
                if !real
                    .as_ref()
                    .is_some_and(|r| r.starts_with(root) && r.is_dir())
                {
                    bail!(
                        "refusing the archive entry {raw:?}: it would be written outside {}",
                        root.display()
                    );
                }
            }
            Ok(_) => bail!("{} is not a directory", cur.display()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir(&cur).with_context(|| format!("creating {}", cur.display()))?
            }
            Err(e) => return Err(e).with_context(|| format!("stat {}", cur.display())),
        }
    }
    Ok(())
}

/// Extracts a tar into `dir` (which must exist).
fn extract_local(reader: impl Read, dir: &Path, rebase: Option<&(String, String)>) -> Result<u64> {
    let root =
        fs::canonicalize(dir).with_context(|| format!("no such directory: {}", dir.display()))?;
    if !root.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    let mut archive = tar::Archive::new(reader);
    let mut total = 0u64;
    let mut dir_times = Vec::new();
    for entry in archive.entries().context("reading the archive")? {
        let mut entry = entry.context("reading the archive")?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let rel = local_name(&raw, rebase)?;
        if rel.as_os_str().is_empty() {
            continue;
        }
        let target = root.join(&rel);
        ensure_parent(&root, &rel, &raw)?;
        let kind = entry.header().entry_type();
        let existing = fs::symlink_metadata(&target).ok();
        if let Some(m) = &existing {
            if m.is_dir() && !kind.is_dir() {
                bail!(
                    "cannot overwrite directory {:?} with non-directory {raw:?}",
                    target
                );
            }
            if !m.is_dir() && kind.is_dir() {
                bail!(
                    "cannot overwrite non-directory {:?} with directory {raw:?}",
                    target
                );
            }
            if !m.is_dir() {
                fs::remove_file(&target)
                    .with_context(|| format!("replacing {}", target.display()))?;
            }
        }
        if kind == tar::EntryType::Link {
            let link = entry
                .link_name_bytes()
                .map(|l| String::from_utf8_lossy(&l).into_owned())
                .unwrap_or_default();
            let src = root.join(local_name(&link, rebase)?);
            let src_parent = fs::canonicalize(src.parent().unwrap_or(&root))?;
            if !src_parent.starts_with(&root) {
                bail!("refusing the hardlink {raw:?} to {link:?}: outside the destination");
            }
            fs::hard_link(&src, &target)
                .with_context(|| format!("linking {} to {}", target.display(), src.display()))?;
            continue;
        }
        entry.set_preserve_permissions(true);
        entry.set_preserve_mtime(true);
        entry.set_unpack_xattrs(false);
        total += entry.header().size().unwrap_or(0);
        entry
            .unpack(&target)
            .with_context(|| format!("extracting {}", target.display()))?;
        if kind.is_dir()
            && let Ok(t) = entry.header().mtime()
        {
            dir_times.push((target, t));
        }
    }
    // Directory times last: their contents changed them.
    for (path, t) in dir_times.into_iter().rev() {
        let ts = nix::sys::time::TimeSpec::new(t as i64, 0);
        let _ = nix::sys::stat::utimensat(
            nix::fcntl::AT_FDCWD,
            &path,
            &ts,
            &ts,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        );
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(path: &str, exists: bool, is_dir: bool) -> CopyInfo {
        CopyInfo {
            path: path.into(),
            exists,
            is_dir,
            rebase_name: None,
        }
    }

    #[test]
    fn cp_args_split_like_dockers() {
        assert_eq!(split_cp_arg("ctr:/etc/hosts"), (Some("ctr"), "/etc/hosts"));
        assert_eq!(split_cp_arg("/abs:path"), (None, "/abs:path"));
        assert_eq!(split_cp_arg("./file:name"), (None, "./file:name"));
        assert_eq!(split_cp_arg("file"), (None, "file"));
        assert_eq!(split_cp_arg("-"), (None, "-"));
        assert_eq!(split_cp_arg("ctr:"), (Some("ctr"), ""));
    }

    #[test]
    fn bases_and_parents() {
        assert_eq!(base_of("/a/b"), "b");
        assert_eq!(base_of("/a/b/"), "b");
        assert_eq!(base_of("/a/b/."), ".");
        assert_eq!(base_of("/"), "/");
        assert_eq!(base_of("b"), "b");
        assert_eq!(parent_of("/a/b"), "/a");
        assert_eq!(parent_of("/a"), "/");
        assert_eq!(parent_of("/a/b/"), "/a");
    }

    #[test]
    fn copies_plan_like_dockers_prepare_archive_copy() {
        // Into an existing directory: as is.
        let p = prepare(&info("/ctr/f", true, false), &info("/tmp/out", true, true)).unwrap();
        assert_eq!(
            p,
            Plan {
                dir: "/tmp/out".into(),
                rebase: None
            }
        );
        // Over an existing file: renamed.
        let p = prepare(&info("/ctr/f", true, false), &info("/tmp/g", true, false)).unwrap();
        assert_eq!(
            p,
            Plan {
                dir: "/tmp".into(),
                rebase: Some(("f".into(), "g".into()))
            }
        );
        // A directory to a new name.
        let p = prepare(&info("/ctr/d", true, true), &info("/tmp/new", false, false)).unwrap();
        assert_eq!(
            p,
            Plan {
                dir: "/tmp".into(),
                rebase: Some(("d".into(), "new".into()))
            }
        );
        // Contents of a directory to a new one.
        let p = prepare(
            &info("/ctr/d/.", true, true),
            &info("/tmp/new", false, false),
        )
        .unwrap();
        assert_eq!(p.rebase, Some((".".into(), "new".into())));
        // A directory over a file, a file into a missing directory.
        assert!(prepare(&info("/ctr/d", true, true), &info("/tmp/g", true, false)).is_err());
        assert!(
            prepare(
                &info("/ctr/f", true, false),
                &info("/tmp/nodir/", false, false)
            )
            .is_err()
        );
        // A followed link keeps its own name in a directory.
        let mut src = info("/ctr/real", true, false);
        src.rebase_name = Some("link".into());
        let p = prepare(&src, &info("/tmp/out", true, true)).unwrap();
        assert_eq!(p.rebase, Some(("real".into(), "link".into())));
    }

    #[test]
    fn entry_names_are_rebased_and_cannot_climb() {
        let r = ("d".to_string(), "new".to_string());
        assert_eq!(
            local_name("d/x/y", Some(&r)).unwrap(),
            PathBuf::from("new/x/y")
        );
        assert_eq!(
            local_name("./x", Some(&(".".into(), "n".into()))).unwrap(),
            PathBuf::from("n/x")
        );
        assert_eq!(local_name("dd/x", Some(&r)).unwrap(), PathBuf::from("dd/x"));
        assert!(local_name("d/../../x", None).is_err());
        let root = ("/".to_string(), "out".to_string());
        assert_eq!(
            local_name("/bin/sh", Some(&root)).unwrap(),
            PathBuf::from("out/bin/sh")
        );
    }

    #[test]
    fn local_extraction_stays_inside() {
        let t = tempfile_dir();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        b.append_link(&mut h, "d/escape", "/").unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(2);
        h.set_mode(0o644);
        b.append_data(&mut h, "d/escape/tmp/berth-cp-pwned", &b"hi"[..])
            .unwrap();
        let data = b.into_inner().unwrap();
        let err = extract_local(io::Cursor::new(data), &t, None).unwrap_err();
        assert!(err.to_string().contains("outside"), "{err}");
        assert!(!Path::new("/tmp/berth-cp-pwned").exists());
        let _ = fs::remove_dir_all(&t);
    }

    fn tempfile_dir() -> PathBuf {
        let p = std::env::temp_dir().join(format!("berth-cp-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        p
    }
}
