//! The metadata database: a redb file at `ROOT/berth.redb` holding image
//! records, tags and container records as JSON values in a few tables.
//!
//! Writes go through [`Db::write`], one transaction each, so a record and its
//! index entries change together or not at all. Durable changes (a container
//! created, an image tagged) fsync before they return; state transitions that
//! the daemon reconciles on start anyway may be committed non-durably, and a
//! later durable commit (or [`Db::flush`]) makes them stick.

use crate::error::{Error, Result};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::Path;

pub use redb::Durability;

/// A metadata-store failure as the runtime's error (redb's errors do not
/// convert by `From`: `Error` lives in berth-executor, which knows no redb).
fn db_err(e: impl Into<redb::Error>) -> Error {
    Error::internal(format!("metadata store: {}", e.into()))
}

/// A table of JSON values keyed by string.
pub type Table = TableDefinition<'static, &'static str, &'static [u8]>;

pub const IMAGES: Table = TableDefinition::new("images");
pub const TAGS: Table = TableDefinition::new("tags");
pub const CONTAINERS: Table = TableDefinition::new("containers");
pub const META: Table = TableDefinition::new("meta");

/// Records that decoded, keyed, and keys of records that did not, with why.
pub type Loaded<T> = (Vec<(String, T)>, Vec<(String, String)>);

pub struct Db {
    db: redb::Database,
}

/// A write transaction in progress.
pub struct Txn<'a> {
    tx: &'a redb::WriteTransaction,
}

impl Txn<'_> {
    pub fn put<T: Serialize>(&self, table: Table, key: &str, value: &T) -> Result<()> {
        let bytes = serde_json::to_vec(value)
            .map_err(|e| Error::internal(format!("encoding record {key}: {e}")))?;
        self.put_raw(table, key, &bytes)
    }

    pub fn put_raw(&self, table: Table, key: &str, value: &[u8]) -> Result<()> {
        let mut t = self.tx.open_table(table).map_err(db_err)?;
        t.insert(key, value).map_err(db_err)?;
        Ok(())
    }

    pub fn delete(&self, table: Table, key: &str) -> Result<()> {
        let mut t = self.tx.open_table(table).map_err(db_err)?;
        t.remove(key).map_err(db_err)?;
        Ok(())
    }
}

impl Db {
    /// Opens or creates the database file. Fails if another process has it
    /// open (the daemon also holds a lock on the root, with a clearer message).
    pub fn open(path: &Path) -> Result<Db> {
        let db = redb::Database::create(path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => Error::conflict(format!(
                "{} is in use by another process; is another berthd running on this root?",
                path.display()
            )),
            other => Error::internal(format!("opening {}: {other}", path.display())),
        })?;
        let db = Db { db };
        // Create the tables so that reads of an empty database work.
        db.write(Durability::Immediate, |tx| {
            for t in [IMAGES, TAGS, CONTAINERS, META] {
                tx.tx.open_table(t).map_err(db_err)?;
            }
            Ok(())
        })?;
        Ok(db)
    }

    /// Runs `f` in one write transaction and commits it with `durability`.
    /// If `f` fails nothing is written.
    pub fn write<R>(&self, durability: Durability, f: impl FnOnce(&Txn) -> Result<R>) -> Result<R> {
        let mut tx = self.db.begin_write().map_err(db_err)?;
        tx.set_durability(durability)
            .map_err(|e| Error::internal(format!("metadata store: {e}")))?;
        let out = f(&Txn { tx: &tx })?;
        tx.commit().map_err(db_err)?;
        Ok(out)
    }

    /// Makes every earlier non-durable commit durable.
    pub fn flush(&self) -> Result<()> {
        self.write(Durability::Immediate, |_| Ok(()))
    }

    pub fn get<T: DeserializeOwned>(&self, table: Table, key: &str) -> Result<Option<T>> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let t = tx.open_table(table).map_err(db_err)?;
        match t.get(key).map_err(db_err)? {
            None => Ok(None),
            Some(v) => serde_json::from_slice(v.value())
                .map(Some)
                .map_err(|e| Error::internal(format!("decoding record {key}: {e}"))),
        }
    }

    /// Every record of a table. A record that no longer decodes is reported
    /// in the second list rather than failing the whole load.
    pub fn load_all<T: DeserializeOwned>(&self, table: Table) -> Result<Loaded<T>> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let t = tx.open_table(table).map_err(db_err)?;
        let mut good = Vec::new();
        let mut bad = Vec::new();
        for item in t.iter().map_err(db_err)? {
            let (k, v) = item.map_err(db_err)?;
            match serde_json::from_slice(v.value()) {
                Ok(rec) => good.push((k.value().to_string(), rec)),
                Err(e) => bad.push((k.value().to_string(), e.to_string())),
            }
        }
        Ok((good, bad))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_read_and_abort() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("m.redb")).unwrap();
        db.write(Durability::Immediate, |tx| tx.put(META, "a", &1u32))
            .unwrap();
        let failed: Result<()> = db.write(Durability::Immediate, |tx| {
            tx.put(META, "b", &2u32)?;
            Err(Error::invalid("no"))
        });
        assert!(failed.is_err());
        assert_eq!(db.get::<u32>(META, "a").unwrap(), Some(1));
        assert_eq!(db.get::<u32>(META, "b").unwrap(), None);
        let (all, bad) = db.load_all::<u32>(META).unwrap();
        assert_eq!(all, vec![("a".to_string(), 1)]);
        assert!(bad.is_empty());
    }

    /// The daemon relies on this: a non-durable commit followed by `flush`
    /// survives the process dying without closing the database.
    #[test]
    fn flushed_commits_survive_a_crash() {
        const CHILD: &str = "BERTH_DB_CRASH_CHILD";
        let dir = match std::env::var(CHILD) {
            Ok(d) => {
                let db = Db::open(&Path::new(&d).join("m.redb")).unwrap();
                db.write(Durability::None, |tx| tx.put(META, "first", &1u32))
                    .unwrap();
                db.flush().unwrap();
                db.write(Durability::None, |tx| tx.put(META, "unflushed", &2u32))
                    .unwrap();
                std::process::abort();
            }
            Err(_) => tempfile::tempdir().unwrap(),
        };
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "store::db::tests::flushed_commits_survive_a_crash",
                "--nocapture",
            ])
            .env(CHILD, dir.path())
            .status()
            .unwrap();
        assert!(!status.success(), "the child aborts");
        let db = Db::open(&dir.path().join("m.redb")).unwrap();
        assert_eq!(db.get::<u32>(META, "first").unwrap(), Some(1));
    }

    #[test]
    fn non_durable_commits_survive_reopen_after_flush() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.redb");
        {
            let db = Db::open(&path).unwrap();
            db.write(Durability::None, |tx| tx.put(META, "x", &"y"))
                .unwrap();
            db.flush().unwrap();
        }
        let db = Db::open(&path).unwrap();
        assert_eq!(db.get::<String>(META, "x").unwrap().as_deref(), Some("y"));
    }
}
