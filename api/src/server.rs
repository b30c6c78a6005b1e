//! The router and what wraps it: API version prefixes, the 404 fallback,
//! request logging, and the connection loop that serves it ([`serve`]):
//! header-read and idle keep-alive timeouts and a cap on connections, none
//! of which applies to a request once its head is in (long streams, slow
//! uploads and hijacked connections are not cut).

use crate::error::ApiError;
use crate::routes::{self, AppState};
use axum::Router;
use axum::extract::Request;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use berth_api_types::{API_VERSION, MIN_API_VERSION};
use berth_runtime::{Engine, Error};
use std::sync::Arc;
use std::time::Duration;
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

/// Runs each request in a `request` span (method, path, and the container,
/// exec or image it names) so that what the engine logs while serving it
/// tells one request's story under `BERTH_LOG=debug`; logs the request at
/// debug level with its status and duration.
pub async fn log_request(req: Request, next: axum::middleware::Next) -> Response {
    use tracing::Instrument;
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let span = match request_object(&path) {
        Some((kind, id)) => tracing::debug_span!("request", %method, %path, %kind, %id),
        None => tracing::debug_span!("request", %method, %path),
    };
    let start = std::time::Instant::now();
    let resp = next.run(req).instrument(span.clone()).await;
    span.in_scope(|| {
        tracing::debug!(
            status = resp.status().as_u16(),
            elapsed_us = start.elapsed().as_micros() as u64,
            "request"
        );
    });
    resp
}

/// The object a request path names: `("container", id)` for
/// `/containers/{id}/...`, `("exec", id)`, or `("image", name)` for
/// `/images/{name}/...` (a name may hold slashes), with or without a
/// `/v1.NN` prefix.
fn request_object(path: &str) -> Option<(&'static str, &str)> {
    let path = match path.strip_prefix("/v") {
        Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => &rest[rest.find('/')?..],
        _ => path,
    };
    let (kind, rest) = if let Some(r) = path.strip_prefix("/containers/") {
        ("container", r)
    } else if let Some(r) = path.strip_prefix("/exec/") {
        ("exec", r)
    } else if let Some(r) = path.strip_prefix("/images/") {
        // `/images/{name}[/{verb}]`.
        let name = match r.rsplit_once('/') {
            Some((name, "json" | "push" | "tag" | "history" | "get")) => name,
            _ => r,
        };
        return (!name.is_empty()
            && !matches!(r, "json" | "create" | "load" | "search" | "prune" | "get"))
        .then_some(("image", name));
    } else {
        return None;
    };
    let id = rest.split('/').next().filter(|s| !s.is_empty())?;
    (!matches!(id, "json" | "create" | "prune")).then_some((kind, id))
}

/// Limits on the connections of one listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    /// How long a client has to send a request's head: from its connect,
    /// or on a kept-alive connection from the first byte of the next
    /// request (Go's `ReadHeaderTimeout`). `None`: no limit.
    pub header_timeout: Option<Duration>,
    /// How long a kept-alive connection may wait for its next request
    /// (Go's `IdleTimeout`). `None`: no limit.
    pub idle_timeout: Option<Duration>,
    /// Connections served at once, hijacked ones (attach, exec) included;
    /// more wait in the listen backlog until one closes.
    pub max_connections: usize,
}

impl ConnLimits {
    pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(30);
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(120);
    pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            header_timeout: Some(Self::DEFAULT_HEADER_TIMEOUT),
            idle_timeout: Some(Self::DEFAULT_IDLE_TIMEOUT),
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then stops
/// accepting, lets each connection finish the request it is serving, and
/// returns when they are done (hijacked connections live on in their own
/// tasks, as with `axum::serve`).
///
/// Unlike `axum::serve`, each connection is timed (see [`ConnLimits`]):
/// one that does not send a request's head in time, or stays idle between
/// requests too long, is closed; one with a request in flight never is.
pub async fn serve<L>(
    mut listener: L,
    app: Router,
    limits: ConnLimits,
    shutdown: impl std::future::Future<Output = ()> + Send,
) where
    L: axum::serve::Listener,
    L::Io: std::os::fd::AsRawFd,
{
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut conns = tokio::task::JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut full = false;
    loop {
        while conns.try_join_next().is_some() {}
        if slots.available_permits() == 0 && !full {
            full = true;
            tracing::warn!(
                limit = limits.max_connections,
                "the API listener has as many connections as it may serve; new ones wait until one closes (berthd --api-max-connections)"
            );
        }
        let slot = tokio::select! {
            s = slots.clone().acquire_owned() => s.expect("the semaphore is never closed"),
            _ = &mut shutdown => break,
        };
        if full && slots.available_permits() > 0 {
            full = false;
        }
        let (io, _addr) = tokio::select! {
            c = listener.accept() => c,
            _ = &mut shutdown => break,
        };
        conns.spawn(serve_connection(
            io,
            slot,
            app.clone(),
            limits,
            stop_rx.clone(),
        ));
    }
    drop(listener);
    let _ = stop_tx.send(true);
    while conns.join_next().await.is_some() {}
}

/// Serves one connection until it closes, times out, or (after `stop`)
/// has finished its request.
async fn serve_connection<I>(
    io: I,
    slot: tokio::sync::OwnedSemaphorePermit,
    app: Router,
    limits: ConnLimits,
    mut stop: tokio::sync::watch::Receiver<bool>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + std::os::fd::AsRawFd + Unpin + Send + 'static,
{
    let peer = crate::stream::ClientConn::new(io.as_raw_fd());
    let state = Arc::new(ConnState::new());
    let io = hyper_util::rt::TokioIo::new(Timed {
        io,
        state: state.clone(),
        _slot: slot,
    });
    let service = {
        let state = state.clone();
        hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            let busy = Busy::begin(state.clone());
            let mut req = req.map(axum::body::Body::new);
            req.extensions_mut().insert(peer);
            let call = app.clone().oneshot(req);
            async move {
                let resp = call.await?;
                // A hijacked connection leaves hyper with this answer; it
                // is never timed again.
                if resp.status() == axum::http::StatusCode::SWITCHING_PROTOCOLS {
                    busy.hijacked();
                    return Ok::<_, std::convert::Infallible>(resp);
                }
                Ok(resp.map(|body| axum::body::Body::new(BusyBody { body, _busy: busy })))
            }
        })
    };
    let conn = hyper::server::conn::http1::Builder::new()
        .header_read_timeout(None)
        .serve_connection(io, service)
        .with_upgrades();
    let mut conn = std::pin::pin!(conn);
    let mut stopping = false;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::trace!(error = %e, "API connection ended");
                }
                return;
            }
            _ = stop.wait_for(|s| *s), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
            why = state.expired(limits) => {
                tracing::debug!(reason = why, "closing an API connection");
                return;
            }
        }
    }
}

/// Where a connection is between requests, for its timeouts.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Waiting for a request's head to be complete, since the instant.
    Head(std::time::Instant),
    /// Waiting for the first byte of the next request, since the instant.
    Idle(std::time::Instant),
    /// This many requests in flight (their heads are in; no timeout).
    Busy(usize),
    /// Handed over to a hijacked stream (attach, exec): no timeout.
    Hijacked,
}

/// A connection's phase, shared by its reads, its requests and the task
/// that serves it.
struct ConnState {
    phase: std::sync::Mutex<Phase>,
    changed: tokio::sync::Notify,
}

impl ConnState {
    fn new() -> ConnState {
        ConnState {
            phase: std::sync::Mutex::new(Phase::Head(std::time::Instant::now())),
            changed: tokio::sync::Notify::new(),
        }
    }

    fn set(&self, f: impl FnOnce(Phase) -> Phase) {
        let mut p = self.phase.lock().unwrap();
        *p = f(*p);
        drop(p);
        self.changed.notify_waiters();
    }

    /// Bytes arrived: an idle connection is now reading a request's head.
    fn on_read(&self) {
        let idle = matches!(*self.phase.lock().unwrap(), Phase::Idle(_));
        if idle {
            self.set(|p| match p {
                Phase::Idle(_) => Phase::Head(std::time::Instant::now()),
                other => other,
            });
        }
    }

    /// Resolves when the connection has outlived its current phase's
    /// limit, with the reason; never while a request is in flight.
    async fn expired(&self, limits: ConnLimits) -> &'static str {
        loop {
            let changed = self.changed.notified();
            let mut changed = std::pin::pin!(changed);
            changed.as_mut().enable();
            let due = match *self.phase.lock().unwrap() {
                Phase::Head(t) => limits.header_timeout.and_then(|d| {
                    Some((
                        t.checked_add(d)?,
                        "the client did not send a request head in time",
                    ))
                }),
                Phase::Idle(t) => limits.idle_timeout.and_then(|d| {
                    Some((
                        t.checked_add(d)?,
                        "the kept-alive connection was idle too long",
                    ))
                }),
                Phase::Busy(_) | Phase::Hijacked => None,
            };
            let Some((at, why)) = due else {
                changed.await;
                continue;
            };
            let due = tokio::select! {
                _ = tokio::time::sleep_until(at.into()) => true,
                _ = changed.as_mut() => false,
            };
            // Unless the phase changed meanwhile, its time is up.
            if due && !changed.as_mut().enable() {
                return why;
            }
        }
    }
}

/// A request in flight on a connection; dropped when its answer has gone
/// out (or was abandoned), which makes the connection idle again.
struct Busy(Option<Arc<ConnState>>);

impl Busy {
    fn begin(state: Arc<ConnState>) -> Busy {
        state.set(|p| match p {
            Phase::Busy(n) => Phase::Busy(n + 1),
            Phase::Hijacked => Phase::Hijacked,
            _ => Phase::Busy(1),
        });
        Busy(Some(state))
    }

    /// The answer hands the connection over to a hijacked stream.
    fn hijacked(mut self) {
        if let Some(state) = self.0.take() {
            state.set(|_| Phase::Hijacked);
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        if let Some(state) = self.0.take() {
            state.set(|p| match p {
                Phase::Busy(n) if n > 1 => Phase::Busy(n - 1),
                Phase::Hijacked => Phase::Hijacked,
                _ => Phase::Idle(std::time::Instant::now()),
            });
        }
    }
}

/// A response body that keeps its request in flight until hyper is done
/// with it: a long stream (`logs -f`, `events`, `wait`) is never timed.
struct BusyBody {
    body: axum::body::Body,
    _busy: Busy,
}

impl axum::body::HttpBody for BusyBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// A connection's socket, noting reads for the timeouts, and holding its
/// slot of the listener's cap for as long as it lives (after a hijack,
/// too).
struct Timed<I> {
    io: I,
    state: Arc<ConnState>,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

impl<I: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Timed<I> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = std::pin::Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(r, std::task::Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.state.on_read();
        }
        r
    }
}

impl<I: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Timed<I> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_shutdown(cx)
    }
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

    #[test]
    fn request_paths_name_their_object() {
        assert_eq!(
            request_object("/v1.47/containers/abc/start"),
            Some(("container", "abc"))
        );
        assert_eq!(
            request_object("/containers/abc"),
            Some(("container", "abc"))
        );
        assert_eq!(request_object("/containers/json"), None);
        assert_eq!(request_object("/containers/create"), None);
        assert_eq!(request_object("/exec/e1/start"), Some(("exec", "e1")));
        assert_eq!(
            request_object("/images/reg:5000/a/b:1/json"),
            Some(("image", "reg:5000/a/b:1"))
        );
        assert_eq!(
            request_object("/v1.44/images/busybox/push"),
            Some(("image", "busybox"))
        );
        assert_eq!(request_object("/images/a/b:1"), Some(("image", "a/b:1")));
        assert_eq!(request_object("/images/json"), None);
        assert_eq!(request_object("/images/create"), None);
        assert_eq!(request_object("/info"), None);
        assert_eq!(request_object("/version"), None);
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
