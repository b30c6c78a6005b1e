//! Docker Engine API endpoints berth does not implement yet. Each answers
//! 501 with a JSON message that names it, so that a client prints a clear
//! error instead of failing on a 404. `docs/api-compat.md` lists them too.

use super::AppState;
use crate::error::ApiError;
use axum::Router;
use axum::http::{Method, Uri};
use axum::routing::{MethodFilter, on};
use berth_runtime::Error;

/// `(method, route)` of every Docker endpoint that answers 501.
pub const ENDPOINTS: &[(&str, &str)] = &[
    ("GET", "/containers/{id}/top"),
    ("GET", "/containers/{id}/changes"),
    ("GET", "/containers/{id}/export"),
    ("POST", "/containers/{id}/update"),
    ("POST", "/containers/{id}/rename"),
    ("POST", "/containers/{id}/pause"),
    ("POST", "/containers/{id}/unpause"),
    ("GET", "/containers/{id}/attach/ws"),
    ("HEAD", "/containers/{id}/archive"),
    ("GET", "/containers/{id}/archive"),
    ("PUT", "/containers/{id}/archive"),
    ("POST", "/containers/prune"),
    ("POST", "/build"),
    ("POST", "/build/prune"),
    ("POST", "/build/cancel"),
    ("GET", "/images/search"),
    ("POST", "/images/prune"),
    ("POST", "/commit"),
    ("GET", "/distribution/{*name}"),
    ("GET", "/networks"),
    ("POST", "/networks/create"),
    ("POST", "/networks/prune"),
    ("GET", "/networks/{id}"),
    ("DELETE", "/networks/{id}"),
    ("POST", "/networks/{id}/connect"),
    ("POST", "/networks/{id}/disconnect"),
    ("GET", "/volumes"),
    ("POST", "/volumes/create"),
    ("POST", "/volumes/prune"),
    ("GET", "/volumes/{name}"),
    ("PUT", "/volumes/{name}"),
    ("DELETE", "/volumes/{name}"),
    ("POST", "/auth"),
    ("GET", "/events"),
    ("GET", "/system/df"),
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
    ("GET", "/plugins/{*name}"),
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
}

async fn not_implemented(method: Method, uri: Uri) -> ApiError {
    ApiError(Error::not_implemented(format!(
        "berthd does not implement {method} {} yet (see docs/api-compat.md)",
        uri.path()
    )))
}
