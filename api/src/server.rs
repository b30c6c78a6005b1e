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
        .merge(routes::archive::routes())
        .merge(routes::images::routes())
        .merge(routes::unimplemented::routes())
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
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

async fn method_not_allowed(method: axum::http::Method, uri: Uri) -> Response {
    (
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        axum::Json(berth_api_types::ErrorResponse {
            message: format!("method {method} is not allowed on {}", uri.path()),
        }),
    )
        .into_response()
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
    parts.path_and_query = Some(
        new_path
            .parse()
            .map_err(|e| ApiError::bad_request(format!("invalid request path: {e}")))?,
    );
    *req.uri_mut() = Uri::from_parts(parts)
        .map_err(|e| ApiError::bad_request(format!("invalid request path: {e}")))?;
    Ok(req)
}

/// Reads what a handler left of its request body
/// ([`crate::stream::drain`]) before the response goes out.
///
/// A handler that answers early (`404 No such container` to a `PUT
/// /containers/{id}/archive`) leaves the client writing its body; closing
/// the connection on unread data makes the client's next write fail with
/// a broken pipe, and the client never reads the answer. Draining lets
/// the connection end cleanly and be used again, as with dockerd.
pub async fn drain_unread_body(req: Request, next: axum::middleware::Next) -> Response {
    use axum::body::HttpBody;
    let (parts, body) = req.into_parts();
    if body.is_end_stream() {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let slot = Arc::new(std::sync::Mutex::new(Some(body)));
    let shared = axum::body::Body::new(SharedBody(slot.clone()));
    let resp = next.run(Request::from_parts(parts, shared)).await;
    // A handler that gave the body to a task of its own still reads it.
    if Arc::strong_count(&slot) == 1 {
        let left = slot.lock().unwrap().take();
        if let Some(body) = left.filter(|b| !b.is_end_stream()) {
            crate::stream::drain(body.into_data_stream()).await;
        }
    }
    resp
}

/// A request body the [`drain_unread_body`] middleware can take back.
struct SharedBody(Arc<std::sync::Mutex<Option<axum::body::Body>>>);

impl axum::body::HttpBody for SharedBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        match self.0.lock().unwrap().as_mut() {
            Some(body) => std::pin::Pin::new(body).poll_frame(cx),
            None => std::task::Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.0
            .lock()
            .unwrap()
            .as_ref()
            .is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.0
            .lock()
            .unwrap()
            .as_ref()
            .map(|b| b.size_hint())
            .unwrap_or_default()
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use berth_runtime::EngineConfig;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn a_body_the_handler_left_is_read_before_the_answer_goes() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let read = Arc::new(AtomicUsize::new(0));
        let app = Router::new()
            .route("/x", axum::routing::put(|| async { StatusCode::NOT_FOUND }))
            .layer(axum::middleware::from_fn(drain_unread_body));
        let counter = read.clone();
        let chunks = futures_util::stream::iter((0..4).map(move |_| {
            counter.fetch_add(1000, Ordering::SeqCst);
            Ok::<_, std::io::Error>(axum::body::Bytes::from(vec![0u8; 1000]))
        }));
        let req = Request::builder()
            .method("PUT")
            .uri("/x")
            .body(Body::from_stream(chunks))
            .unwrap();
        let resp = app.oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        assert_eq!(read.load(Ordering::SeqCst), 4000);
    }

    async fn app() -> (tempfile::TempDir, Router) {
        let dir = tempfile::tempdir().unwrap();
        let mut config = EngineConfig::new(dir.path());
        config.wasm_pool_slots = 4;
        let engine = Engine::open(config).await.unwrap();
        (dir, router(engine))
    }

    async fn call(
        app: &Router,
        method: &str,
        uri: &str,
        body: &str,
    ) -> (StatusCode, serde_json::Value) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header("Content-Type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let resp = app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, json)
    }

    #[tokio::test]
    async fn version_prefixes_are_stripped_or_refused() {
        let (_d, app) = app().await;
        for uri in ["/version", "/v1.24/version", "/v1.47/version"] {
            let (status, body) = call(&app, "GET", uri, "").await;
            assert_eq!(status, StatusCode::OK, "{uri}");
            assert_eq!(body["ApiVersion"], API_VERSION);
        }
        let (status, body) = call(&app, "GET", "/v1.48/version", "").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body["message"].as_str().unwrap().contains("too new"));
        let (status, _) = call(&app, "GET", "/v1.23/info", "").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn error_kinds_map_to_dockers_status_codes() {
        let (_d, app) = app().await;
        let (s, b) = call(&app, "GET", "/containers/nope/json", "").await;
        assert_eq!(
            (s, b["message"].as_str().unwrap()),
            (StatusCode::NOT_FOUND, "No such container: nope")
        );
        let (s, b) = call(&app, "POST", "/containers/create", "{\"Image\": 1}").await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(
            b["message"]
                .as_str()
                .unwrap()
                .starts_with("invalid JSON in request body")
        );
        let (s, b) = call(&app, "POST", "/containers/create", "{\"Image\": \"nope\"}").await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{b}");
        let (s, b) = call(&app, "GET", "/v1.47/networks", "").await;
        assert_eq!(s, StatusCode::NOT_IMPLEMENTED);
        assert!(b["message"].as_str().unwrap().contains("GET /networks"));
        let (s, _) = call(&app, "GET", "/nothing/here", "").await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, b) = call(
            &app,
            "GET",
            "/containers/json?filters=%7B%22bogus%22%3A%5B%22x%22%5D%7D",
            "",
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
        let (s, _) = call(&app, "GET", "/containers/json?all=maybe&limit=x", "").await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn ping_carries_the_negotiation_headers() {
        let (_d, app) = app().await;
        let resp = app
            .clone()
            .oneshot(
                Request::builder()
                    .method("HEAD")
                    .uri("/_ping")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["Api-Version"], API_VERSION);
        assert_eq!(resp.headers()["Ostype"], "linux");
    }
}
