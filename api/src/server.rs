//! The router and what wraps it: API version prefixes, the 404 fallback,
//! and request logging.

use crate::error::ApiError;
use crate::routes::{self, AppState};
use axum::Router;
use axum::extract::Request;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use berth_api_types::{API_VERSION, MIN_API_VERSION};
use berth_runtime::{Engine, Error};
use std::sync::Arc;
use tower::ServiceExt;

/// The Docker Engine API over `engine`, as a service that accepts both
/// versioned (`/v1.47/...`) and unversioned paths.
pub fn router(engine: Arc<Engine>) -> Router {
    let api: Router = Router::new()
        .merge(routes::system::routes())
        .merge(routes::containers::routes())
        .merge(routes::images::routes())
        .merge(routes::unimplemented::routes())
        .fallback(fallback)
        .with_state::<()>(engine as AppState);
    // Strip the version prefix before routing.
    Router::new().fallback_service(tower::service_fn(move |req: Request| {
        let api = api.clone();
        async move {
            let req = match strip_version(req) {
                Ok(r) => r,
                Err(e) => return Ok(e.into_response()),
            };
            api.oneshot(req).await
        }
    }))
}

async fn fallback(uri: Uri) -> ApiError {
    ApiError(Error::not_found(format!("page not found: {}", uri.path())))
}

fn parse_version(v: &str) -> Option<(u32, u32)> {
    let (a, b) = v.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Removes a `/v1.NN` prefix, refusing versions berth does not speak with
/// Docker's messages.
fn strip_version(mut req: Request) -> Result<Request, ApiError> {
    let path = req.uri().path();
    let Some(rest) = path.strip_prefix("/v") else {
        return Ok(req);
    };
    let (ver, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let Some(v) = parse_version(ver) else {
        return Ok(req);
    };
    let max = parse_version(API_VERSION).expect("valid");
    let min = parse_version(MIN_API_VERSION).expect("valid");
    if v > max {
        return Err(ApiError::bad_request(format!(
            "client version {ver} is too new. Maximum supported API version is {API_VERSION}"
        )));
    }
    if v < min {
        return Err(ApiError::bad_request(format!(
            "client version {ver} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"
        )));
    }
    let new_path = match req.uri().query() {
        Some(q) => format!("{tail}?{q}"),
        None => tail.to_string(),
    };
    let mut parts = req.uri().clone().into_parts();
    parts.path_and_query = Some(new_path.parse().map_err(|e| {
        ApiError::bad_request(format!("invalid request path: {e}"))
    })?);
    *req.uri_mut() = Uri::from_parts(parts)
        .map_err(|e| ApiError::bad_request(format!("invalid request path: {e}")))?;
    Ok(req)
}

/// Logs each request at debug level with its status and duration.
pub async fn log_request(req: Request, next: axum::middleware::Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let start = std::time::Instant::now();
    let resp = next.run(req).await;
    tracing::debug!(%method, %path, status = resp.status().as_u16(), elapsed_us = start.elapsed().as_micros() as u64, "request");
    resp
}
