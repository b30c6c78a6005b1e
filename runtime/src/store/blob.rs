//! Content-addressed blobs under `ROOT/blobs/sha256/<hex>`.
//!
//! Every blob is written to a temp file in `ROOT/blobs/tmp`, hashed as it is
//! written, checked against the digest (and size) it claims, fsynced, renamed
//! into place, and its directory fsynced. Readers never see a partial blob.

use crate::error::{Error, Result, ResultExt};
use crate::util::digest::{Digest, Hasher};
use crate::util::fsutil::sync_dir;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

pub struct BlobStore {
    dir: PathBuf,
    tmp: PathBuf,
    counter: AtomicU64,
}

impl BlobStore {
    /// Opens (creating if needed) the store under `root`, clearing temp files
    /// left by a crash.
    pub fn open(root: &Path) -> Result<BlobStore> {
        let dir = root.join("blobs").join("sha256");
        let tmp = root.join("blobs").join("tmp");
        fs::create_dir_all(&dir).ctx(format!("creating {}", dir.display()))?;
        crate::util::fsutil::remove_dir_all_if_exists(&tmp)
            .ctx(format!("clearing {}", tmp.display()))?;
        fs::create_dir_all(&tmp).ctx(format!("creating {}", tmp.display()))?;
        Ok(BlobStore {
            dir,
            tmp,
            counter: AtomicU64::new(0),
        })
    }

    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.dir.join(digest.hex())
    }

    pub fn contains(&self, digest: &Digest) -> bool {
        self.path(digest).exists()
    }

    pub fn size(&self, digest: &Digest) -> Option<u64> {
        fs::metadata(self.path(digest)).ok().map(|m| m.len())
    }

    pub fn open_read(&self, digest: &Digest) -> Result<File> {
        File::open(self.path(digest)).map_err(|e| missing(digest, e))
    }

    pub fn read(&self, digest: &Digest) -> Result<Vec<u8>> {
        fs::read(self.path(digest)).map_err(|e| missing(digest, e))
    }

    /// Reads a blob that must not exceed `limit` bytes (manifests, configs).
    pub fn read_limited(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>> {
        let f = self.open_read(digest)?;
        let mut out = Vec::new();
        f.take(limit + 1)
            .read_to_end(&mut out)
            .ctx(format!("reading blob {digest}"))?;
        if out.len() as u64 > limit {
            return Err(Error::invalid(format!(
                "blob {digest} is larger than the {limit}-byte limit for its kind"
            )));
        }
        Ok(out)
    }

    /// Stores `data`; with `expected`, refuses data whose digest differs.
    pub fn put(&self, data: &[u8], expected: Option<&Digest>) -> Result<Digest> {
        let digest = Digest::of(data);
        if let Some(want) = expected
            && *want != digest
        {
            return Err(mismatch(want, &digest));
        }
        if self.contains(&digest) {
            return Ok(digest);
        }
        let mut w = self.writer()?;
        w.write_all(data).ctx("writing blob")?;
        w.commit(Some(&digest), Some(data.len() as u64))
    }

    /// A writer for a blob of unknown digest; nothing is visible until
    /// [`BlobWriter::commit`].
    pub fn writer(&self) -> Result<BlobWriter<'_>> {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let path = self.tmp.join(format!(
            "{}-{}-{}",
            std::process::id(),
            n,
            crate::util::random_id()
        ));
        let file = File::create(&path).ctx(format!("creating {}", path.display()))?;
        Ok(BlobWriter {
            store: self,
            file: Some(file),
            path,
            hasher: Hasher::new(),
        })
    }

    pub fn delete(&self, digest: &Digest) -> Result<()> {
        match fs::remove_file(self.path(digest)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(Error::internal(format!("removing blob {digest}: {e}")))
            }
            _ => Ok(()),
        }
    }

    /// Every blob in the store.
    pub fn list(&self) -> Result<Vec<Digest>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir).ctx("listing blobs")? {
            let entry = entry.ctx("listing blobs")?;
            if let Some(name) = entry.file_name().to_str()
                && let Ok(d) = Digest::from_hex(name)
            {
                out.push(d);
            }
        }
        Ok(out)
    }
}

fn missing(digest: &Digest, e: io::Error) -> Error {
    if e.kind() == io::ErrorKind::NotFound {
        Error::not_found(format!("blob {digest} is not in the content store"))
    } else {
        Error::internal(format!("reading blob {digest}: {e}"))
    }
}

fn mismatch(want: &Digest, got: &Digest) -> Error {
    Error::invalid(format!(
        "content does not match its digest: expected {want}, got {got}"
    ))
}

/// A blob being written. Dropped without `commit`, it leaves nothing behind.
pub struct BlobWriter<'a> {
    store: &'a BlobStore,
    file: Option<File>,
    path: PathBuf,
    hasher: Hasher,
}

impl BlobWriter<'_> {
    /// Verifies digest and size (when given), then makes the blob durable and
    /// visible under its digest.
    pub fn commit(mut self, expected: Option<&Digest>, size: Option<u64>) -> Result<Digest> {
        let file = self.file.take().expect("commit called once");
        let (digest, len) = std::mem::take(&mut self.hasher).finish();
        if let Some(want) = size
            && want != len
        {
            return Err(Error::invalid(format!(
                "blob size mismatch: expected {want} bytes, got {len} (digest {digest})"
            )));
        }
        if let Some(want) = expected
            && *want != digest
        {
            return Err(mismatch(want, &digest));
        }
        let dest = self.store.path(&digest);
        if dest.exists() {
            return Ok(digest);
        }
        file.sync_all().ctx("syncing blob")?;
        drop(file);
        fs::rename(&self.path, &dest).ctx(format!("committing blob {digest}"))?;
        sync_dir(&self.store.dir).ctx("syncing blob directory")?;
        Ok(digest)
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.hasher.len()
    }
}

impl Write for BlobWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.as_mut().expect("write after commit").write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for BlobWriter<'_> {
    fn drop(&mut self) {
        // Committed or not, the temp path is gone or must go.
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_read_and_refuse_mismatch() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let d = store.put(b"hello", None).unwrap();
        assert_eq!(store.read(&d).unwrap(), b"hello");
        let wrong = Digest::of(b"other");
        let err = store.put(b"hello!", Some(&wrong)).unwrap_err();
        assert!(err.to_string().contains("does not match"), "{err}");
        assert!(!store.contains(&Digest::of(b"hello!")));
        assert_eq!(
            fs::read_dir(dir.path().join("blobs/tmp")).unwrap().count(),
            0
        );
    }

    #[test]
    fn streaming_writer_checks_size() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let mut w = store.writer().unwrap();
        w.write_all(b"abc").unwrap();
        assert!(w.commit(None, Some(4)).is_err());
        assert!(store.list().unwrap().is_empty());
        let mut w = store.writer().unwrap();
        w.write_all(b"abc").unwrap();
        let d = w.commit(Some(&Digest::of(b"abc")), Some(3)).unwrap();
        assert_eq!(store.list().unwrap(), vec![d]);
    }

    #[test]
    fn read_limited_refuses_oversized() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let d = store.put(&[0u8; 100], None).unwrap();
        assert!(store.read_limited(&d, 99).is_err());
        assert_eq!(store.read_limited(&d, 100).unwrap().len(), 100);
    }
}
