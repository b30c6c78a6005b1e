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
    /// Where the archive goes.
    pub w: W,
    /// First archive name of each multiply-linked file.
    links: HashMap<(u64, u64), Vec<u8>>,
    /// Directories not on this device are archived without contents.
    pub dev: Option<u64>,
    buf: Vec<u8>,
}

impl<W: Write> TarOut<W> {
    pub fn new(w: W) -> TarOut<W> {
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
    pub fn dir(&mut self, fd: &OwnedFd, st: &FileStat, path: &[u8], recurse: bool) -> Result<()> {
        self.header(path, None, tar::EntryType::Directory, st, 0, &[])?;
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
    pub fn marker(&mut self, path: &[u8], st: &FileStat) -> Result<()> {
        let mut st = *st;
        st.st_mode = (st.st_mode & 0o7777) | SFlag::S_IFREG.bits();
        self.header(path, None, tar::EntryType::Regular, &st, 0, &[])
    }

    /// The end-of-archive blocks.
    pub fn finish(&mut self) -> Result<()> {
        self.put(&[0u8; 1024])
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
