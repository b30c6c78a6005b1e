//! `/_ping`, `/version`, `/info`.

use super::AppState;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use berth_api_types::API_VERSION;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/_ping", get(ping).head(ping))
        .route("/version", get(version))
        .route("/info", get(info))
}

/// Headers Docker sends with every ping, which clients use to negotiate.
pub fn ping_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("Api-Version", HeaderValue::from_static(API_VERSION));
    h.insert("Ostype", HeaderValue::from_static("linux"));
    h.insert("Docker-Experimental", HeaderValue::from_static("false"));
    h.insert(
        "Cache-Control",
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    h.insert("Pragma", HeaderValue::from_static("no-cache"));
    h.insert("Swarm", HeaderValue::from_static("inactive"));
    h
}

async fn ping(method: Method) -> Response {
    let mut headers = ping_headers();
    headers.insert(
        "Content-Type",
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if method == Method::HEAD {
        (headers, "").into_response()
    } else {
        (headers, "OK").into_response()
    }
}

async fn version(State(engine): State<AppState>) -> Response {
    axum::Json(engine.version()).into_response()
}

async fn info(State(engine): State<AppState>) -> Response {
    axum::Json(engine.info()).into_response()
}
