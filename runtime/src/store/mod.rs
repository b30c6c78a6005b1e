//! Persistent storage under the daemon's root: the content-addressed blob
//! store and the transactional metadata database. Knows nothing about what
//! the bytes and records mean.

pub mod blob;
pub mod db;

pub use blob::{BlobStore, BlobWriter};
pub use db::{Db, Durability, Table, Txn};
