//! berthd's HTTP side: the Docker Engine API over berth's runtime.
//!
//! The wire types live in [`types`] (the `berth-api-types` crate, shared
//! with the CLI). This crate holds the axum router, one module per area
//! (system, containers, images), the error mapping, the version-prefix
//! handling, and the hijacked streams of attach. It holds no runtime logic:
//! handlers parse, call [`berth_runtime::Engine`], and shape the answer.

pub mod error;
pub mod extract;
pub mod routes;
pub mod server;
pub mod stream;

pub use berth_api_types as types;
pub use server::router;
