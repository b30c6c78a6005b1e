//! Docker Engine API endpoints berth does not implement yet. Each answers
//! 501 with a JSON message that names it, so that a client prints a clear
//! error instead of failing on a 404. `docs/api-compat.md` lists them too.
//!
//! Looking up one network, volume or plugin by name answers 404 instead:
//! berth has none, so none exists, and `docker inspect NAME` (which tries
//! every kind of object in turn and skips only "not found") must be able to
//! say "No such object" rather than stop at the first 501.

use super::AppState;
use crate::error::ApiError;
use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::http::{Method, Uri};
use axum::routing::{MethodFilter, get, on};
use berth_runtime::Error;
use http_body_util::BodyExt;

/// `(method, route)` of every Docker endpoint that answers 501.
pub const ENDPOINTS: &[(&str, &str)] = &[
    ("GET", "/containers/{id}/attach/ws"),
    ("POST", "/build"),
    ("POST", "/build/prune"),
    ("POST", "/build/cancel"),
    ("GET", "/images/search"),
    ("GET", "/distribution/{*name}"),
    ("GET", "/networks"),
    ("POST", "/networks/create"),
    ("POST", "/networks/prune"),
    ("DELETE", "/networks/{id}"),
    ("POST", "/networks/{id}/connect"),
    ("POST", "/networks/{id}/disconnect"),
    ("GET", "/volumes"),
    ("POST", "/volumes/create"),
    ("POST", "/volumes/prune"),
    ("PUT", "/volumes/{name}"),
    ("DELETE", "/volumes/{name}"),
    ("GET", "/swarm"),
    ("POST", "/swarm/init"),
    ("POST", "/swarm/join"),
    ("POST", "/swarm/leave"),
    ("POST", "/swarm/update"),
    ("GET", "/swarm/unlockkey"),
    ("POST", "/swarm/unlock"),
    ("GET", "/nodes"),
    ("GET", "/nodes/{id}"),
    ("DELETE", "/nodes/{id}"),
    ("POST", "/nodes/{id}/update"),
    ("GET", "/services"),
    ("POST", "/services/create"),
    ("GET", "/services/{id}"),
    ("DELETE", "/services/{id}"),
    ("POST", "/services/{id}/update"),
    ("GET", "/services/{id}/logs"),
    ("GET", "/tasks"),
    ("GET", "/tasks/{id}"),
    ("GET", "/tasks/{id}/logs"),
    ("GET", "/secrets"),
    ("POST", "/secrets/create"),
    ("GET", "/secrets/{id}"),
    ("DELETE", "/secrets/{id}"),
    ("POST", "/secrets/{id}/update"),
    ("GET", "/configs"),
    ("POST", "/configs/create"),
    ("GET", "/configs/{id}"),
    ("DELETE", "/configs/{id}"),
    ("POST", "/configs/{id}/update"),
    ("GET", "/plugins"),
    ("GET", "/plugins/privileges"),
    ("POST", "/plugins/pull"),
    ("POST", "/plugins/create"),
    // Plugin names hold slashes (`vieux/sshfs:latest`): one catch-all each
    // for .../json, .../enable, .../disable, .../upgrade, .../push, .../set.
    ("DELETE", "/plugins/{*name}"),
    ("POST", "/plugins/{*name}"),
    ("POST", "/session"),
    ("POST", "/grpc"),
];

pub fn routes() -> Router<AppState> {
    let mut router = Router::new();
    for (method, path) in ENDPOINTS {
        let filter = match *method {
            "GET" => MethodFilter::GET,
            "POST" => MethodFilter::POST,
            "PUT" => MethodFilter::PUT,
            "DELETE" => MethodFilter::DELETE,
            "HEAD" => MethodFilter::HEAD,
            other => panic!("unexpected method {other} in the 501 table"),
        };
        router = router.route(path, on(filter, not_implemented));
    }
    router
        .route("/networks/{id}", get(no_network))
        .route("/volumes/{name}", get(no_volume))
        .route("/plugins/{*name}", get(plugin_get))
}

/// Most of a request body the 501 answer reads (and discards) first, so
/// that a client still sending it does not see its connection closed.
const DRAIN_LIMIT: usize = 256 << 20;

async fn not_implemented(method: Method, uri: Uri, body: Body) -> ApiError {
    let mut body = body;
    let mut read = 0usize;
    while read < DRAIN_LIMIT {
        match body.frame().await {
            Some(Ok(f)) => read += f.data_ref().map_or(0, |d| d.len()),
            _ => break,
        }
    }
    ApiError(Error::not_implemented(format!(
        "berthd does not implement {method} {} yet (see docs/api-compat.md)",
        uri.path()
    )))
}

/// `GET /networks/{id}`: berth has no networks.
async fn no_network(Path(id): Path<String>) -> ApiError {
    ApiError(Error::not_found(format!("network {id} not found")))
}

/// `GET /volumes/{name}`: berth has no volumes.
async fn no_volume(Path(name): Path<String>) -> ApiError {
    ApiError(Error::not_found(format!("get {name}: no such volume")))
}

/// `GET /plugins/{name}/json`: berth has no plugins. Other GETs under
/// `/plugins/` (`/plugins/privileges` is its own route) are 501.
async fn plugin_get(Path(name): Path<String>, method: Method, uri: Uri) -> ApiError {
    match name.strip_suffix("/json") {
        Some(plugin) => ApiError(Error::not_found(format!("plugin \"{plugin}\" not found"))),
        None => not_implemented(method, uri, Body::empty()).await,
    }
}
