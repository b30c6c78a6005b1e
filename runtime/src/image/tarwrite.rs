//! The tar writer of `docker export`, `docker cp` (archive GET) and
//! `docker commit`'s layer: entries read from descriptors (never following
//! a symlink), named exactly as given, GNU long names and links where
//! they do not fit, `security.capability` kept as a PAX xattr, hardlinks
//! kept, directories of other devices archived without their contents.

use crate::error::{Error, Result};
use crate::util::dirfd::{cstring, dir_flags, file_type, lstat_at, read_dir_names};
use nix::errno::Errno;
use nix::fcntl::{OFlag, openat, readlinkat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

/// The xattr a file's capabilities are in: archived with the file.
pub const CAPABILITY_XATTR: &str = "security.capability";

pub(crate) fn errno(what: &str, e: Errno) -> Error {
    Error::internal(format!("{what}: {}", io::Error::from(e)))
}

pub(crate) fn io_error(what: &str, e: io::Error) -> Error {
    Error::internal(format!("{what}: {e}"))
}

/// A tar writer over descriptors: entries named exactly as given (GNU long
/// names where they do not fit), hardlinks kept, directories of other
/// devices not descended into.
pub struct TarOut<W: Write> {
    /// `None` once the archive is finished and handed back.
    b: Option<tar::Builder<Gate<W>>>,
    /// First archive name of each multiply-linked file.
    links: HashMap<(u64, u64), Vec<u8>>,
    /// Directories not on this device are archived without contents.
    pub dev: Option<u64>,
}

/// Lets writes through until it is closed. The `tar` crate's builder ends
/// its archive when dropped; a [`TarOut`] dropped unfinished (an error
/// cut the archive short) closes the gate first, so a broken archive
/// never ends as if it were whole.
struct Gate<W> {
    inner: W,
    open: bool,
}

impl<W: Write> Write for Gate<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.open {
            return Err(io::Error::other("the archive was abandoned"));
        }
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        if !self.open {
            return Ok(());
        }
        self.inner.flush()
    }
}

impl<W: Write> Drop for TarOut<W> {
    fn drop(&mut self) {
        if let Some(b) = &mut self.b {
            b.get_mut().open = false;
        }
    }
}

/// Exactly `left` bytes of a file, whatever it does meanwhile: cut if it
/// grew, zeros if it shrank.
struct ExactSize<'p, R> {
    inner: R,
    left: u64,
    /// Past the file's end: zeros.
    ended: bool,
    path: &'p [u8],
}

impl<R: Read> Read for ExactSize<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = self.left.min(buf.len() as u64) as usize;
        if want == 0 {
            return Ok(0);
        }
        let n = if self.ended {
            buf[..want].fill(0);
            want
        } else {
            match self.inner.read(&mut buf[..want]) {
                Ok(0) => {
                    self.ended = true;
                    buf[..want].fill(0);
                    want
                }
                Ok(n) => n,
                Err(e) => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("reading {}: {e}", show(self.path)),
                    ));
                }
            }
        };
        self.left -= n as u64;
        Ok(n)
    }
}

impl<W: Write> TarOut<W> {
    pub fn new(w: W) -> TarOut<W> {
        TarOut {
            b: Some(tar::Builder::new(Gate {
                inner: w,
                open: true,
            })),
            links: HashMap::new(),
            dev: None,
        }
    }

    fn builder(&mut self) -> &mut tar::Builder<Gate<W>> {
        self.b.as_mut().expect("the archive is not finished")
    }

    /// One header and its data, padded.
    fn append(&mut self, h: &tar::Header, data: impl Read) -> Result<()> {
        self.builder()
            .append(h, data)
            .map_err(|e| io_error("writing the archive", e))
    }

    /// A GNU long-name (`L`) or long-link (`K`) record.
    fn long(&mut self, kind: tar::EntryType, value: &[u8]) -> Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        set_name(&mut h, b"././@LongLink");
        h.set_mode(0o644);
        h.set_size(value.len() as u64 + 1);
        h.set_cksum();
        self.append(&h, value.chain(&[0u8][..]))
    }

    /// An entry: its xattrs as PAX records, GNU long name and link records
    /// where they do not fit the header, the header, then `data` (`size`
    /// bytes).
    #[allow(clippy::too_many_arguments)]
    fn entry(
        &mut self,
        name: &[u8],
        link: Option<&[u8]>,
        kind: tar::EntryType,
        st: &FileStat,
        size: u64,
        xattrs: &[(String, Vec<u8>)],
        data: impl Read,
    ) -> Result<()> {
        if !xattrs.is_empty() {
            let keys: Vec<String> = xattrs
                .iter()
                .map(|(k, _)| format!("SCHILY.xattr.{k}"))
                .collect();
            self.builder()
                .append_pax_extensions(
                    keys.iter()
                        .map(String::as_str)
                        .zip(xattrs.iter().map(|(_, v)| v.as_slice())),
                )
                .map_err(|e| io_error("writing the archive", e))?;
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
        self.append(&h, data)
    }

    /// An entry without data.
    fn header(
        &mut self,
        name: &[u8],
        link: Option<&[u8]>,
        kind: tar::EntryType,
        st: &FileStat,
    ) -> Result<()> {
        self.entry(name, link, kind, st, 0, &[], io::empty())
    }

    /// An entry for `name` in `dir` (whose stat is `st`), named `path`;
    /// directories with their contents. Sockets are skipped, as Docker
    /// does; a node that vanished meanwhile is left out.
    pub fn node(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &[u8],
        st: &FileStat,
        path: &[u8],
    ) -> Result<()> {
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
            self.header(path, Some(&target), tar::EntryType::Symlink, st)
        } else if t == SFlag::S_IFCHR {
            self.header(path, None, tar::EntryType::Char, st)
        } else if t == SFlag::S_IFBLK {
            self.header(path, None, tar::EntryType::Block, st)
        } else if t == SFlag::S_IFIFO {
            self.header(path, None, tar::EntryType::Fifo, st)
        } else {
            Ok(())
        }
    }

    /// A directory entry (`path` ends in `/`), then, with `recurse`, its
    /// contents.
    pub fn dir(&mut self, fd: &OwnedFd, st: &FileStat, path: &[u8], recurse: bool) -> Result<()> {
        self.header(path, None, tar::EntryType::Directory, st)?;
        if !recurse || self.dev.is_some_and(|d| d != st.st_dev) {
            return Ok(());
        }
        self.children(fd.as_fd(), path)
    }

    /// The contents of a directory, each under `prefix` (empty or ending
    /// in `/`).
    pub fn children(&mut self, fd: BorrowedFd<'_>, prefix: &[u8]) -> Result<()> {
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
                return self.header(path, Some(&first), tar::EntryType::Link, st);
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
        let data = ExactSize {
            inner: std::fs::File::from(fd),
            left: size,
            ended: false,
            path,
        };
        self.entry(
            path,
            None,
            tar::EntryType::Regular,
            &st,
            size,
            &xattrs,
            data,
        )
    }

    /// An empty regular file entry (whiteouts).
    pub fn marker(&mut self, path: &[u8], st: &FileStat) -> Result<()> {
        let mut st = *st;
        st.st_mode = (st.st_mode & 0o7777) | SFlag::S_IFREG.bits();
        self.header(path, None, tar::EntryType::Regular, &st)
    }

    /// The end-of-archive blocks.
    pub fn finish(&mut self) -> Result<()> {
        self.builder()
            .finish()
            .map_err(|e| io_error("writing the archive", e))
    }

    /// Where the archive goes.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.builder().get_mut().inner
    }

    /// Ends the archive and hands back where it went.
    pub fn into_inner(mut self) -> Result<W> {
        let b = self.b.take().expect("the archive is not finished");
        let gate = b
            .into_inner()
            .map_err(|e| io_error("writing the archive", e))?;
        Ok(gate.inner)
    }
}

pub fn set_name(h: &mut tar::Header, name: &[u8]) {
    let slot = &mut h.as_old_mut().name;
    slot.fill(0);
    let n = name.len().min(slot.len());
    slot[..n].copy_from_slice(&name[..n]);
}

pub fn show(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}

/// One xattr of an open file; `None` if it has none (or cannot say).
pub fn get_xattr(fd: BorrowedFd<'_>, key: &str) -> Option<Vec<u8>> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A writer whose bytes outlive it.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn root_stat() -> FileStat {
        nix::sys::stat::stat("/").unwrap()
    }

    #[test]
    fn an_abandoned_archive_gets_no_end() {
        let w = Shared::default();
        let mut out = TarOut::new(w.clone());
        out.header(b"d/", None, tar::EntryType::Directory, &root_stat())
            .unwrap();
        drop(out);
        assert_eq!(
            w.0.lock().unwrap().len(),
            512,
            "the header, and no end blocks"
        );

        let mut out = TarOut::new(Vec::new());
        let long = format!("{}/", "x".repeat(150));
        out.header(
            long.as_bytes(),
            None,
            tar::EntryType::Directory,
            &root_stat(),
        )
        .unwrap();
        let bytes = out.into_inner().unwrap();
        assert_eq!(bytes.len() % 512, 0);
        assert!(bytes.ends_with(&[0u8; 1024]));
        let mut a = tar::Archive::new(bytes.as_slice());
        let names: Vec<Vec<u8>> = a
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path_bytes().into_owned())
            .collect();
        assert_eq!(names, [long.into_bytes()], "a GNU long name");
    }
}
