//! berth's runtime: the library that does the work behind berthd.
//!
//! It owns the image store, containers and their state machine, and the
//! executors that run them (Wasm in wasmtime; native Linux comes with the
//! native executor). It speaks no HTTP: the `berth-api` crate puts the Docker
//! Engine API in front of [`Engine`].

pub mod container;
pub mod engine;
pub mod executor;
pub mod image;
pub mod registry;
pub mod store;

// The error type and helpers live in berth-executor (the lowest crate, which
// berth-shim is built from); the runtime uses them as its own.
pub use berth_executor::{error, util};

pub use engine::{Engine, EngineConfig};
pub use error::{Error, ErrorKind, Result};
