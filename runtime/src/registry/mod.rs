//! Registries: pulling and pushing images over the OCI distribution API,
//! logging in, and the credentials Docker clients send. Pulls go through
//! berth's own requests; pushes through `oci-client`.
//!
//! What it owns: talking to registries ([`session`]: plain HTTP for
//! loopback and `--insecure-registry` hosts, auth; [`transport`]: the size
//! and time bounds on every answer), the downloads in flight ([`fetch`]:
//! one per blob digest, shared by concurrent pulls), and the pull and push
//! procedures with Docker's progress messages.
//!
//! What it must not touch: containers, and the stores' internals. It
//! writes only through [`BlobStore::writer`] (every blob checked against
//! its digest and size before it becomes visible) and records images only
//! through [`Images::commit`], once everything an image needs is stored.
//! A pull that fails or is killed halfway leaves verified blobs and no
//! image; the daemon sweeps unreferenced blobs when it starts, and a rerun
//! downloads only what is missing.

mod auth;
mod fetch;
mod progress;
mod pull;
mod push;
mod session;
mod transport;

pub use auth::{AuthConfig, HUB_HOST, HUB_SERVER, LoginStatus, is_loopback, registry_host};
pub use progress::{Progress, human_size};
pub use pull::{PullOptions, PullOutcome};
pub use push::{PushOptions, PushedTag};
pub use transport::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_MIN_RATE, DEFAULT_RESPONSE_TIMEOUT, DEFAULT_STALL_TIMEOUT,
    RegistryTimeouts,
};

use crate::error::Error;
use crate::image::Images;
use crate::store::BlobStore;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
/// Blobs of one pull or push moved at once.
pub const PARALLEL_TRANSFERS: usize = 3;
/// oci-clients kept for reuse (one per registry and identity).
const MAX_CLIENTS: usize = 64;
const USER_AGENT: &str = concat!("berth/", env!("CARGO_PKG_VERSION"));

/// What a registry operation failed with: a runtime error, of kind
/// [`ErrorKind::Unauthorized`](crate::error::ErrorKind::Unauthorized) when the registry refused the credentials
/// (or wanted some), which the API answers with 401 as Docker does.
pub type RegistryError = Error;

pub type RegistryResult<T> = std::result::Result<T, RegistryError>;

/// Which registries are reached over plain HTTP, and how long they may
/// take.
#[derive(Debug, Clone, Default)]
pub struct RegistryConfig {
    /// `HOST[:PORT]` of registries to reach over plain HTTP
    /// (`berthd --insecure-registry`). Loopback registries always are.
    pub insecure: Vec<String>,
    /// `berthd --registry-*-timeout`, `--registry-min-rate`.
    pub timeouts: RegistryTimeouts,
}

/// The registry side of the engine: one per daemon.
pub struct Registry {
    images: Arc<Images>,
    insecure: Vec<String>,
    /// For berth's own requests: probes, logins, token exchanges,
    /// manifests and blobs, bounded in size and time.
    transport: transport::Transport,
    /// One oci-client per registry, scheme and identity: its token cache
    /// and connection pool are reused, and one user's credentials never
    /// serve another's request.
    clients: Mutex<HashMap<session::ClientKey, oci_client::Client>>,
    inflight: Arc<fetch::InFlight>,
}

impl Registry {
    pub fn new(images: Arc<Images>, config: RegistryConfig) -> crate::Result<Registry> {
        Ok(Registry {
            images,
            insecure: config.insecure.iter().map(|h| registry_host(h)).collect(),
            transport: transport::Transport::new(config.timeouts)?,
            clients: Mutex::new(HashMap::new()),
            inflight: Arc::new(fetch::InFlight::default()),
        })
    }

    pub fn images(&self) -> &Arc<Images> {
        &self.images
    }

    fn blobs(&self) -> &Arc<BlobStore> {
        self.images.blobs()
    }

    /// `http` for loopback registries and those given as insecure (by
    /// `HOST:PORT`, or by `HOST` for every port); `https` otherwise.
    pub fn scheme_for(&self, host: &str) -> &'static str {
        let name = host.rsplit_once(':').map(|x| x.0).unwrap_or(host);
        if is_loopback(host)
            || self
                .insecure
                .iter()
                .any(|i| i == host || (!i.contains(':') && i == name))
        {
            "http"
        } else {
            "https"
        }
    }

    /// Registries reached over plain HTTP besides loopback ones.
    pub fn insecure_registries(&self) -> &[String] {
        &self.insecure
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_for_loopback_and_insecure_registries() {
        let (_d, images) = crate::image::tests::fixture();
        let r = Registry::new(
            Arc::new(images),
            RegistryConfig {
                insecure: vec!["reg.lan:5000".into(), "other.lan".into()],
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(r.scheme_for("127.0.0.1:5000"), "http");
        assert_eq!(r.scheme_for("localhost:1"), "http");
        assert_eq!(r.scheme_for("reg.lan:5000"), "http");
        assert_eq!(r.scheme_for("reg.lan:5001"), "https");
        assert_eq!(r.scheme_for("other.lan:7"), "http");
        assert_eq!(r.scheme_for(HUB_HOST), "https");
    }
}
