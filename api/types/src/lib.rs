//! Docker Engine API wire types, as berth speaks them.
//!
//! This crate owns the JSON shapes that cross the wire between berthd and its
//! clients (the `berth` CLI, the `docker` CLI, Docker SDKs). It has no server,
//! no runtime and no I/O, so the CLI can depend on it without linking axum or
//! wasmtime. Field names follow Docker's API reference (PascalCase); berth's own
//! additions are extra fields that Docker clients ignore.
//!
//! Request types accept missing fields (`#[serde(default)]`) the way Docker
//! does; response types skip `None` so that clients see Docker's shapes.

pub mod archive;
pub mod container;
pub mod detach;
pub mod image;
pub mod reference;
pub mod stream;
pub mod system;
pub mod units;

use serde::{Deserialize, Serialize};

/// The newest API version berthd speaks; advertised in `/_ping` and `/version`.
pub const API_VERSION: &str = "1.47";
/// The oldest API version berthd accepts in a `/v1.NN/` path prefix.
pub const MIN_API_VERSION: &str = "1.24";

/// The body of every error response: `{"message": "..."}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorResponse {
    pub message: String,
}

/// `{"Id": "..."}`, returned by create endpoints.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct IdResponse {
    pub id: String,
}

/// A map that serializes as `{}` when empty and reads `null` as empty, as Go's
/// `map[string]struct{}` and `map[string]string` do on the wire.
pub type StringMap = std::collections::BTreeMap<String, String>;

/// Go's `map[string]struct{}` (used for `ExposedPorts`, `Volumes`).
pub type EmptyObjectMap = std::collections::BTreeMap<String, serde_json::Value>;

/// Deserialize `null` as the type's default, as Go's JSON decoder does for
/// slices and maps.
pub fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}
