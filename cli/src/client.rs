//! The HTTP client for berthd's Docker Engine API: one method per endpoint.
//!
//! Owns connection handling (a small keep-alive pool over the connector in
//! [`transport`]), the `/v1.47` prefix, turning non-2xx answers into
//! [`ClientError::Daemon`], and hijacking for attach. It does not print and
//! knows nothing about terminals; commands do that.

pub mod body;
pub mod transport;

use std::fmt;
use std::io;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use berth_api_types::container::{
    CreateRequest, CreateResponse, ExecConfig, ExecInspect, ExecStart, Summary, WaitResponse,
};
use berth_api_types::image::{self as image_types, DeleteItem, WasmImportResponse};
use berth_api_types::system::{Info, Version};
use berth_api_types::{API_VERSION, ErrorResponse};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{self, HeaderValue};
use hyper::upgrade::Upgraded;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;

pub use body::{ReqBody, ResponseStream};
pub use transport::Host;

/// What went wrong talking to the daemon. Display texts are what the user
/// sees. There is deliberately no `source()`: the cause is part of the text,
/// so `main`'s broken-pipe check never mistakes a socket error for stdout.
#[derive(Debug)]
pub enum ClientError {
    /// The daemon could not be reached at all.
    Connect { host: String, error: io::Error },
    /// The daemon answered with an error status and `{"message": ...}`.
    Daemon { status: StatusCode, message: String },
    /// The connection broke or the daemon spoke something unexpected.
    Protocol { host: String, message: String },
}

impl ClientError {
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ClientError::Daemon { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.status() == Some(StatusCode::NOT_FOUND)
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Connect { host, error }
                if error.kind() == io::ErrorKind::PermissionDenied =>
            {
                write!(
                    f,
                    "permission denied while trying to connect to berthd at {host}: {error}. \
                     Run berth as root, or get write access to the socket."
                )
            }
            ClientError::Connect { host, error } => write!(
                f,
                "Cannot connect to berthd at {host}: {error}. Is berthd running? \
                 Start it with 'berthd' (as root), or point -H / BERTH_HOST at a running daemon."
            ),
            ClientError::Daemon { message, .. } => {
                write!(f, "Error response from daemon: {message}")
            }
            ClientError::Protocol { host, message } => {
                write!(f, "error talking to berthd at {host}: {message}")
            }
        }
    }
}

impl std::error::Error for ClientError {}

pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// Renders an error and its causes on one line (hyper's Display omits causes).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let cs = c.to_string();
        if !s.contains(&cs) {
            s.push_str(": ");
            s.push_str(&cs);
        }
        cur = c.source();
    }
    s
}

/// A query string under construction; values are percent-encoded.
#[derive(Default)]
pub struct Query(String);

impl Query {
    pub fn new() -> Self {
        Query(String::new())
    }

    pub fn push(&mut self, key: &str, value: &str) -> &mut Self {
        self.0.push(if self.0.is_empty() { '?' } else { '&' });
        self.0.push_str(key);
        self.0.push('=');
        encode_into(&mut self.0, value, false);
        self
    }

    /// `key=1` when `on`; Docker's encoding of a true boolean.
    pub fn flag(&mut self, key: &str, on: bool) -> &mut Self {
        if on {
            self.push(key, "1");
        }
        self
    }

    pub fn opt(&mut self, key: &str, value: Option<&str>) -> &mut Self {
        if let Some(v) = value {
            self.push(key, v);
        }
        self
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Percent-encodes `s`. In paths, `/` and `:` and `@` stay as they are (image
/// references like `localhost:5000/app:v1` go into paths unescaped, as the
/// docker CLI sends them).
fn encode_into(out: &mut String, s: &str, path: bool) {
    for b in s.bytes() {
        let keep = b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (path && matches!(b, b'/' | b':' | b'@' | b'+' | b'='));
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

/// One path segment (a container or image name), percent-encoded.
pub fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    encode_into(&mut out, s, true);
    out
}

/// A response whose status was checked, still holding its connection so the
/// connection can go back to the pool once the body has been read.
pub struct Response<'c> {
    client: &'c Client,
    inner: hyper::Response<Incoming>,
    conn: Option<SendRequest<ReqBody>>,
}

impl<'c> Response<'c> {
    pub fn status(&self) -> StatusCode {
        self.inner.status()
    }

    pub fn header(&self, name: header::HeaderName) -> Option<&str> {
        self.inner.headers().get(name).and_then(|v| v.to_str().ok())
    }

    /// Reads the whole body and returns the connection to the pool.
    pub async fn bytes(self) -> Result<Bytes> {
        let Response {
            client,
            inner,
            conn,
        } = self;
        let body = inner
            .into_body()
            .collect()
            .await
            .map_err(|e| client.protocol(&e))?
            .to_bytes();
        if let Some(c) = conn {
            client.release(c);
        }
        Ok(body)
    }

    pub async fn json<T: DeserializeOwned>(self) -> Result<T> {
        let client = self.client;
        let body = self.bytes().await?;
        serde_json::from_slice(&body).map_err(|e| ClientError::Protocol {
            host: client.host.to_string(),
            message: format!("cannot decode the daemon's answer: {e}"),
        })
    }

    /// Reads and discards the body.
    pub async fn discard(self) -> Result<()> {
        self.bytes().await.map(drop)
    }

    /// The body as a stream. The connection closes when the stream ends.
    pub fn into_stream(self) -> ResponseStream {
        ResponseStream::new(self.inner.into_body())
    }
}

/// A `wait` request whose response headers have arrived, which means berthd
/// has registered the waiter; [`PendingWait::status`] waits for the exit.
pub struct PendingWait<'c>(Response<'c>);

impl PendingWait<'_> {
    pub async fn status(self) -> Result<WaitResponse> {
        self.0.json().await
    }
}

/// Options of `GET /containers/{id}/logs`.
#[derive(Debug, Default, Clone)]
pub struct LogsOptions {
    pub follow: bool,
    pub timestamps: bool,
    pub tail: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
}

/// Options of `POST /images/create?fromSrc=-` (`docker import`).
#[derive(Debug, Clone, Copy)]
pub struct ImportOptions<'a> {
    /// `REPOSITORY[:TAG]`, sent whole as `repo` as the docker CLI does.
    pub repo: Option<&'a str>,
    pub message: Option<&'a str>,
    pub platform: Option<&'a str>,
    /// Dockerfile instructions (`--change`), one `changes=` each.
    pub changes: &'a [String],
}

/// Options of `POST /containers/{id}/attach`.
#[derive(Debug, Clone, Copy)]
pub struct AttachOptions<'a> {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// `detachKeys`: the sequence that ends the session (empty: the
    /// daemon's default).
    pub detach_keys: &'a str,
}

/// How a request uses connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A short request: reuse an idle keep-alive connection if there is one.
    Short,
    /// A request that may stay open for long (`wait`, `logs -f`): always a
    /// fresh connection, so idle ones stay free for the short requests that
    /// run meanwhile (`start`, `kill`).
    Long,
    /// A hijacked request (`attach`): a fresh connection that never returns
    /// to the pool.
    Upgrade,
}

/// The raw bidirectional stream of a hijacked attach.
pub type AttachStream = TokioIo<Upgraded>;

/// A client of one daemon. Cheap to create: nothing connects until the
/// first request.
pub struct Client {
    host: Host,
    prefix: String,
    debug: bool,
    /// Idle keep-alive connections whose last response was fully read.
    idle: Mutex<Vec<SendRequest<ReqBody>>>,
}

impl Client {
    pub fn new(host: Host, debug: bool) -> Client {
        Client {
            host,
            prefix: format!("/v{API_VERSION}"),
            debug,
            idle: Mutex::new(Vec::new()),
        }
    }

    pub fn debug(&self) -> bool {
        self.debug
    }

    fn protocol(&self, e: &dyn std::error::Error) -> ClientError {
        ClientError::Protocol {
            host: self.host.to_string(),
            message: error_chain(e),
        }
    }

    // ----- connections -------------------------------------------------

    async fn connect(&self) -> Result<SendRequest<ReqBody>> {
        let stream =
            transport::connect(&self.host)
                .await
                .map_err(|error| ClientError::Connect {
                    host: self.host.to_string(),
                    error,
                })?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| self.protocol(&e))?;
        tokio::spawn(async move {
            // Errors surface on the request side; nothing to do here.
            let _ = conn.with_upgrades().await;
        });
        Ok(sender)
    }

    /// An idle pooled connection if one is still usable, else a new one.
    async fn sender(&self) -> Result<(SendRequest<ReqBody>, bool)> {
        loop {
            let Some(mut s) = self.idle.lock().unwrap().pop() else {
                break;
            };
            // A connection whose last response was read to the end is ready
            // at once; the timeout only guards against a daemon that keeps a
            // half-finished connection around.
            if !s.is_closed()
                && matches!(
                    tokio::time::timeout(Duration::from_secs(1), s.ready()).await,
                    Ok(Ok(()))
                )
            {
                return Ok((s, true));
            }
        }
        Ok((self.connect().await?, false))
    }

    fn release(&self, conn: SendRequest<ReqBody>) {
        if !conn.is_closed() {
            self.idle.lock().unwrap().push(conn);
        }
    }

    /// Sends one request and checks the status: a non-2xx answer (other than
    /// 304, which Docker uses for "already in that state") becomes
    /// [`ClientError::Daemon`]. 101 is success too (attach).
    pub async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        body: ReqBody,
        content_type: Option<&'static str>,
        mode: Mode,
    ) -> Result<Response<'_>> {
        self.send_with_headers(method, path_and_query, body, content_type, mode, &[])
            .await
    }

    /// [`Client::send`] with extra request headers (`X-Registry-Auth`).
    pub async fn send_with_headers(
        &self,
        method: Method,
        path_and_query: &str,
        body: ReqBody,
        content_type: Option<&'static str>,
        mode: Mode,
        headers: &[(&'static str, String)],
    ) -> Result<Response<'_>> {
        let upgrade = mode == Mode::Upgrade;
        let uri = format!("{}{}", self.prefix, path_and_query);
        let mut builder = Request::builder()
            .method(method.clone())
            .uri(&uri)
            .header(header::HOST, self.host.authority())
            .header(
                header::USER_AGENT,
                HeaderValue::from_static(concat!("berth-cli/", env!("CARGO_PKG_VERSION"))),
            );
        if let Some(ct) = content_type {
            builder = builder.header(header::CONTENT_TYPE, ct);
        }
        for (name, value) in headers {
            builder = builder.header(*name, value.as_str());
        }
        if upgrade {
            builder = builder
                .header(header::CONNECTION, "Upgrade")
                .header(header::UPGRADE, "tcp");
        }
        let req = builder.body(body).map_err(|e| self.protocol(&e))?;
        let started = Instant::now();

        let (mut conn, pooled) = if mode == Mode::Short {
            self.sender().await?
        } else {
            (self.connect().await?, false)
        };
        let res = match conn.try_send_request(req).await {
            Ok(res) => res,
            Err(mut e) => match e.take_message() {
                // A pooled connection closed under us before the request
                // went out: retry once on a fresh one.
                Some(req) if pooled => {
                    conn = self.connect().await?;
                    conn.send_request(req)
                        .await
                        .map_err(|e| self.protocol(&e))?
                }
                _ => return Err(self.protocol(e.error())),
            },
        };
        if self.debug {
            eprintln!(
                "berth: {method} {uri} -> {} ({:.2} ms{})",
                res.status().as_u16(),
                started.elapsed().as_secs_f64() * 1e3,
                if pooled { ", reused connection" } else { "" }
            );
        }
        let status = res.status();
        let resp = Response {
            client: self,
            inner: res,
            conn: if upgrade { None } else { Some(conn) },
        };
        if status.is_success()
            || status == StatusCode::NOT_MODIFIED
            || status == StatusCode::SWITCHING_PROTOCOLS
        {
            return Ok(resp);
        }
        Err(self.daemon_error(resp).await)
    }

    async fn daemon_error(&self, resp: Response<'_>) -> ClientError {
        let status = resp.status();
        let body = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => return e,
        };
        let message = match serde_json::from_slice::<ErrorResponse>(&body) {
            Ok(e) => e.message.trim().to_string(),
            Err(_) => {
                let text = String::from_utf8_lossy(&body).trim().to_string();
                if text.is_empty() {
                    status
                        .canonical_reason()
                        .unwrap_or("unknown error")
                        .to_string()
                } else {
                    text
                }
            }
        };
        ClientError::Daemon { status, message }
    }

    async fn get(&self, path: &str) -> Result<Response<'_>> {
        self.send(Method::GET, path, body::empty(), None, Mode::Short)
            .await
    }

    async fn post(&self, path: &str) -> Result<Response<'_>> {
        self.send(Method::POST, path, body::empty(), None, Mode::Short)
            .await
    }

    async fn post_json<T: serde::Serialize>(&self, path: &str, value: &T) -> Result<Response<'_>> {
        let body = serde_json::to_vec(value).map_err(|e| self.protocol(&e))?;
        self.send(
            Method::POST,
            path,
            body::full(body),
            Some("application/json"),
            Mode::Short,
        )
        .await
    }

    // ----- system ------------------------------------------------------

    /// `GET /version`
    pub async fn version(&self) -> Result<Version> {
        self.get("/version").await?.json().await
    }

    /// `GET /info`
    pub async fn info(&self) -> Result<Info> {
        self.get("/info").await?.json().await
    }

    // ----- containers --------------------------------------------------

    /// `POST /containers/create?name=&platform=`
    pub async fn container_create(
        &self,
        name: Option<&str>,
        platform: Option<&str>,
        req: &CreateRequest,
    ) -> Result<CreateResponse> {
        let mut q = Query::new();
        q.opt("name", name).opt("platform", platform);
        self.post_json(&format!("/containers/create{}", q.as_str()), req)
            .await?
            .json()
            .await
    }

    /// `POST /containers/{id}/start`
    pub async fn container_start(&self, id: &str) -> Result<()> {
        self.post(&format!("/containers/{}/start", seg(id)))
            .await?
            .discard()
            .await
    }

    /// `POST /containers/{id}/stop?t=&signal=`
    pub async fn container_stop(
        &self,
        id: &str,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<()> {
        let mut q = Query::new();
        q.opt("t", timeout.map(|t| t.to_string()).as_deref())
            .opt("signal", signal);
        self.post(&format!("/containers/{}/stop{}", seg(id), q.as_str()))
            .await?
            .discard()
            .await
    }

    /// `POST /containers/{id}/restart?t=&signal=`
    pub async fn container_restart(
        &self,
        id: &str,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<()> {
        let mut q = Query::new();
        q.opt("t", timeout.map(|t| t.to_string()).as_deref())
            .opt("signal", signal);
        self.post(&format!("/containers/{}/restart{}", seg(id), q.as_str()))
            .await?
            .discard()
            .await
    }

    /// `POST /containers/{id}/kill?signal=`
    pub async fn container_kill(&self, id: &str, signal: Option<&str>) -> Result<()> {
        let mut q = Query::new();
        q.opt("signal", signal);
        self.post(&format!("/containers/{}/kill{}", seg(id), q.as_str()))
            .await?
            .discard()
            .await
    }

    /// `DELETE /containers/{id}?force=&v=`
    pub async fn container_remove(&self, id: &str, force: bool, volumes: bool) -> Result<()> {
        let mut q = Query::new();
        q.flag("force", force).flag("v", volumes);
        self.send(
            Method::DELETE,
            &format!("/containers/{}{}", seg(id), q.as_str()),
            body::empty(),
            None,
            Mode::Short,
        )
        .await?
        .discard()
        .await
    }

    /// `POST /containers/{id}/wait?condition=`: returns once the response
    /// headers are in (the waiter is registered); the status comes later.
    pub async fn container_wait(
        &self,
        id: &str,
        condition: Option<&str>,
    ) -> Result<PendingWait<'_>> {
        let mut q = Query::new();
        q.opt("condition", condition);
        let resp = self
            .send(
                Method::POST,
                &format!("/containers/{}/wait{}", seg(id), q.as_str()),
                body::empty(),
                None,
                Mode::Long,
            )
            .await?;
        Ok(PendingWait(resp))
    }

    /// `GET /containers/json?all=&limit=&filters=`
    pub async fn container_list(
        &self,
        all: bool,
        limit: Option<i64>,
        filters: Option<&str>,
    ) -> Result<Vec<Summary>> {
        let mut q = Query::new();
        q.flag("all", all)
            .opt("limit", limit.map(|l| l.to_string()).as_deref())
            .opt("filters", filters);
        self.get(&format!("/containers/json{}", q.as_str()))
            .await?
            .json()
            .await
    }

    /// `GET /containers/{id}/json`, as the raw JSON the daemon sent (so that
    /// `inspect` keeps the daemon's field order).
    pub async fn container_inspect_raw(&self, id: &str) -> Result<Bytes> {
        self.get(&format!("/containers/{}/json", seg(id)))
            .await?
            .bytes()
            .await
    }

    /// `GET /containers/{id}/logs?stdout=1&stderr=1&...`
    pub async fn container_logs(&self, id: &str, opts: &LogsOptions) -> Result<ResponseStream> {
        let mut q = Query::new();
        q.flag("stdout", true)
            .flag("stderr", true)
            .flag("follow", opts.follow)
            .flag("timestamps", opts.timestamps)
            .opt("tail", opts.tail.as_deref())
            .opt("since", opts.since.as_deref())
            .opt("until", opts.until.as_deref());
        let mode = if opts.follow { Mode::Long } else { Mode::Short };
        Ok(self
            .send(
                Method::GET,
                &format!("/containers/{}/logs{}", seg(id), q.as_str()),
                body::empty(),
                None,
                mode,
            )
            .await?
            .into_stream())
    }

    /// `POST /containers/{id}/attach?stream=1&stdin=&stdout=&stderr=&detachKeys=`
    /// with `Connection: Upgrade`, `Upgrade: tcp`; expects `101 Switching
    /// Protocols` and returns the hijacked stream.
    pub async fn container_attach(
        &self,
        id: &str,
        opts: AttachOptions<'_>,
    ) -> Result<AttachStream> {
        let mut q = Query::new();
        q.flag("stream", true)
            .flag("stdin", opts.stdin)
            .flag("stdout", opts.stdout)
            .flag("stderr", opts.stderr)
            .opt(
                "detachKeys",
                Some(opts.detach_keys).filter(|k| !k.is_empty()),
            );
        let resp = self
            .send(
                Method::POST,
                &format!("/containers/{}/attach{}", seg(id), q.as_str()),
                body::empty(),
                None,
                Mode::Upgrade,
            )
            .await?;
        if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
            return Err(ClientError::Protocol {
                host: self.host.to_string(),
                message: format!(
                    "attach: expected 101 Switching Protocols, got {}",
                    resp.status()
                ),
            });
        }
        let upgraded = hyper::upgrade::on(resp.inner)
            .await
            .map_err(|e| self.protocol(&e))?;
        Ok(TokioIo::new(upgraded))
    }

    /// `POST /containers/{id}/resize?h=&w=`
    /// `GET /containers/{id}/stats?stream=0`: one sample, with the CPU
    /// sample of a second before in `precpu_stats`.
    pub async fn container_stats_once(&self, id: &str) -> Result<serde_json::Value> {
        self.get(&format!("/containers/{}/stats?stream=0", seg(id)))
            .await?
            .json()
            .await
    }

    /// `POST /containers/{id}/exec`: the new exec's ID.
    pub async fn exec_create(&self, container: &str, config: &ExecConfig) -> Result<String> {
        let r: berth_api_types::IdResponse = self
            .post_json(&format!("/containers/{}/exec", seg(container)), config)
            .await?
            .json()
            .await?;
        Ok(r.id)
    }

    /// `POST /exec/{id}/start`, detached: returns once it runs.
    pub async fn exec_start_detached(&self, id: &str) -> Result<()> {
        let start = ExecStart {
            detach: true,
            ..ExecStart::default()
        };
        self.post_json(&format!("/exec/{}/start", seg(id)), &start)
            .await?
            .discard()
            .await
    }

    /// `POST /exec/{id}/start`, hijacked as attach is.
    pub async fn exec_start(&self, id: &str, start: &ExecStart) -> Result<AttachStream> {
        let body = serde_json::to_vec(start).map_err(|e| self.protocol(&e))?;
        let resp = self
            .send(
                Method::POST,
                &format!("/exec/{}/start", seg(id)),
                body::full(body),
                Some("application/json"),
                Mode::Upgrade,
            )
            .await?;
        if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
            return Err(ClientError::Protocol {
                host: self.host.to_string(),
                message: format!(
                    "exec: expected 101 Switching Protocols, got {}",
                    resp.status()
                ),
            });
        }
        let upgraded = hyper::upgrade::on(resp.inner)
            .await
            .map_err(|e| self.protocol(&e))?;
        Ok(TokioIo::new(upgraded))
    }

    /// `GET /exec/{id}/json`
    pub async fn exec_inspect(&self, id: &str) -> Result<ExecInspect> {
        self.get(&format!("/exec/{}/json", seg(id)))
            .await?
            .json()
            .await
    }

    /// `POST /exec/{id}/resize?h=&w=`
    pub async fn exec_resize(&self, id: &str, height: u16, width: u16) -> Result<()> {
        let mut q = Query::new();
        q.push("h", &height.to_string())
            .push("w", &width.to_string());
        self.post(&format!("/exec/{}/resize{}", seg(id), q.as_str()))
            .await?
            .discard()
            .await
    }

    pub async fn container_resize(&self, id: &str, height: u16, width: u16) -> Result<()> {
        let mut q = Query::new();
        q.push("h", &height.to_string())
            .push("w", &width.to_string());
        self.post(&format!("/containers/{}/resize{}", seg(id), q.as_str()))
            .await?
            .discard()
            .await
    }

    /// `POST /containers/{id}/rename?name=`
    pub async fn container_rename(&self, id: &str, name: &str) -> Result<()> {
        let mut q = Query::new();
        q.push("name", name);
        self.post(&format!("/containers/{}/rename{}", seg(id), q.as_str()))
            .await?
            .discard()
            .await
    }

    /// `POST /containers/{id}/pause`
    pub async fn container_pause(&self, id: &str) -> Result<()> {
        self.post(&format!("/containers/{}/pause", seg(id)))
            .await?
            .discard()
            .await
    }

    /// `POST /containers/{id}/unpause`
    pub async fn container_unpause(&self, id: &str) -> Result<()> {
        self.post(&format!("/containers/{}/unpause", seg(id)))
            .await?
            .discard()
            .await
    }

    /// `GET /containers/{id}/top?ps_args=`: `{"Titles": [...], "Processes": [[...]]}`.
    pub async fn container_top(
        &self,
        id: &str,
        ps_args: Option<&str>,
    ) -> Result<serde_json::Value> {
        let mut q = Query::new();
        q.opt("ps_args", ps_args);
        self.get(&format!("/containers/{}/top{}", seg(id), q.as_str()))
            .await?
            .json()
            .await
    }

    /// `POST /containers/{id}/update` with an `UpdateConfig`; `{"Warnings": [...]}`.
    pub async fn container_update(
        &self,
        id: &str,
        config: &serde_json::Value,
    ) -> Result<serde_json::Value> {
        self.post_json(&format!("/containers/{}/update", seg(id)), config)
            .await?
            .json()
            .await
    }

    /// `POST /containers/prune?filters=`: `{"ContainersDeleted", "SpaceReclaimed"}`.
    pub async fn container_prune(&self, filters: Option<&str>) -> Result<serde_json::Value> {
        self.prune("containers", filters).await
    }

    /// `POST /{kind}/prune?filters=`.
    async fn prune(&self, kind: &str, filters: Option<&str>) -> Result<serde_json::Value> {
        let mut q = Query::new();
        q.opt("filters", filters);
        self.send(
            Method::POST,
            &format!("/{kind}/prune{}", q.as_str()),
            body::empty(),
            None,
            Mode::Long,
        )
        .await?
        .json()
        .await
    }

    /// `GET /events?since=&until=&filters=`: a stream of JSON objects.
    pub async fn events(
        &self,
        since: Option<&str>,
        until: Option<&str>,
        filters: Option<&str>,
    ) -> Result<ResponseStream> {
        let mut q = Query::new();
        q.opt("since", since)
            .opt("until", until)
            .opt("filters", filters);
        Ok(self
            .send(
                Method::GET,
                &format!("/events{}", q.as_str()),
                body::empty(),
                None,
                Mode::Long,
            )
            .await?
            .into_stream())
    }

    /// `GET /system/df`
    pub async fn system_df(&self) -> Result<serde_json::Value> {
        self.send(Method::GET, "/system/df", body::empty(), None, Mode::Long)
            .await?
            .json()
            .await
    }

    // ----- images ------------------------------------------------------

    /// `POST /images/prune?filters=`: `{"ImagesDeleted", "SpaceReclaimed"}`.
    pub async fn image_prune(&self, filters: Option<&str>) -> Result<serde_json::Value> {
        self.prune("images", filters).await
    }

    /// `GET /images/json?all=&digests=&filters=`
    pub async fn image_list(
        &self,
        all: bool,
        digests: bool,
        filters: Option<&str>,
    ) -> Result<Vec<image_types::Summary>> {
        let mut q = Query::new();
        q.flag("all", all)
            .flag("digests", digests)
            .opt("filters", filters);
        self.get(&format!("/images/json{}", q.as_str()))
            .await?
            .json()
            .await
    }

    /// `GET /images/{name}/json`, raw.
    pub async fn image_inspect_raw(&self, name: &str) -> Result<Bytes> {
        self.get(&format!("/images/{}/json", seg(name)))
            .await?
            .bytes()
            .await
    }

    /// `DELETE /images/{name}?force=&noprune=`
    pub async fn image_remove(
        &self,
        name: &str,
        force: bool,
        no_prune: bool,
    ) -> Result<Vec<DeleteItem>> {
        let mut q = Query::new();
        q.flag("force", force).flag("noprune", no_prune);
        self.send(
            Method::DELETE,
            &format!("/images/{}{}", seg(name), q.as_str()),
            body::empty(),
            None,
            Mode::Short,
        )
        .await?
        .json()
        .await
    }

    /// `POST /images/{source}/tag?repo=&tag=`
    pub async fn image_tag(&self, source: &str, repo: &str, tag: &str) -> Result<()> {
        let mut q = Query::new();
        q.push("repo", repo).push("tag", tag);
        self.post(&format!("/images/{}/tag{}", seg(source), q.as_str()))
            .await?
            .discard()
            .await
    }

    /// `POST /images/load?quiet=` with a tar body. Returns the response (a
    /// stream of JSON messages when its content type is `application/json`).
    pub async fn image_load(&self, tar: ReqBody, quiet: bool) -> Result<Response<'_>> {
        let mut q = Query::new();
        q.flag("quiet", quiet);
        self.send(
            Method::POST,
            &format!("/images/load{}", q.as_str()),
            tar,
            Some("application/x-tar"),
            Mode::Long,
        )
        .await
    }

    /// `POST /images/create?fromSrc=-&repo=&message=&platform=&changes=...`
    /// with a root filesystem tarball as body (`docker import`). Returns the
    /// response: JSON messages whose last status is the new image's ID.
    pub async fn image_import(
        &self,
        tar: ReqBody,
        opts: &ImportOptions<'_>,
    ) -> Result<Response<'_>> {
        let mut q = Query::new();
        q.push("fromSrc", "-")
            .opt("repo", opts.repo)
            .opt("message", opts.message)
            .opt("platform", opts.platform);
        for c in opts.changes {
            q.push("changes", c);
        }
        self.send(
            Method::POST,
            &format!("/images/create{}", q.as_str()),
            tar,
            Some("application/x-tar"),
            Mode::Long,
        )
        .await
    }

    /// `GET /images/get?names=A&names=B`: a tar stream.
    pub async fn image_save(&self, names: &[String]) -> Result<ResponseStream> {
        let mut q = Query::new();
        for n in names {
            q.push("names", n);
        }
        Ok(self
            .get(&format!("/images/get{}", q.as_str()))
            .await?
            .into_stream())
    }

    /// `POST /images/create?fromImage=&tag=&platform=` (`docker pull`),
    /// with the registry credentials as `X-Registry-Auth`. Returns the
    /// response: a stream of JSON progress messages.
    pub async fn image_pull(
        &self,
        from_image: &str,
        tag: &str,
        platform: Option<&str>,
        registry_auth: Option<&str>,
    ) -> Result<Response<'_>> {
        let mut q = Query::new();
        q.push("fromImage", from_image)
            .push("tag", tag)
            .opt("platform", platform);
        let headers: Vec<(&'static str, String)> = registry_auth
            .map(|a| vec![("X-Registry-Auth", a.to_string())])
            .unwrap_or_default();
        self.send_with_headers(
            Method::POST,
            &format!("/images/create{}", q.as_str()),
            body::empty(),
            None,
            Mode::Long,
            &headers,
        )
        .await
    }

    /// `POST /images/{name}/push?tag=` (`docker push`); without a tag,
    /// every tag of the repository. Returns the JSON progress stream.
    pub async fn image_push(
        &self,
        name: &str,
        tag: Option<&str>,
        registry_auth: Option<&str>,
    ) -> Result<Response<'_>> {
        let mut q = Query::new();
        q.push("tag", tag.unwrap_or(""));
        let headers: Vec<(&'static str, String)> = registry_auth
            .map(|a| vec![("X-Registry-Auth", a.to_string())])
            .unwrap_or_default();
        self.send_with_headers(
            Method::POST,
            &format!("/images/{}/push{}", seg(name), q.as_str()),
            body::empty(),
            None,
            Mode::Long,
            &headers,
        )
        .await
    }

    /// `POST /auth` (`docker login`): the daemon checks the credentials
    /// with the registry. Answers `{"Status": ..., "IdentityToken": ...}`.
    pub async fn registry_login(&self, auth: &serde_json::Value) -> Result<serde_json::Value> {
        self.post_json("/auth", auth).await?.json().await
    }

    // ----- berth extensions --------------------------------------------

    /// `POST /berth/wasm/import?tag=` with the module bytes as body.
    pub async fn wasm_import(&self, tag: &str, module: Vec<u8>) -> Result<WasmImportResponse> {
        let mut q = Query::new();
        q.push("tag", tag);
        self.send(
            Method::POST,
            &format!("/berth/wasm/import{}", q.as_str()),
            body::full(module),
            Some("application/wasm"),
            Mode::Short,
        )
        .await?
        .json()
        .await
    }
}

/// Options of `POST /commit` (`docker commit`).
#[derive(Debug, Clone, Default)]
pub struct CommitOptions<'a> {
    pub container: &'a str,
    /// Repository and tag, as the docker CLI sends them apart.
    pub repo: Option<&'a str>,
    pub tag: Option<&'a str>,
    pub comment: Option<&'a str>,
    pub author: Option<&'a str>,
    /// Dockerfile instructions (`--change`), one `changes=` each.
    pub changes: &'a [String],
    pub pause: bool,
}

// ----- container filesystems (docker cp, export, diff, commit) ----------

impl Client {
    /// `HEAD /containers/{id}/archive?path=`: the path's stat, from the
    /// `X-Docker-Container-Path-Stat` header. A missing path is a 404.
    pub async fn container_stat_path(
        &self,
        id: &str,
        path: &str,
    ) -> Result<berth_api_types::archive::PathStat> {
        let mut q = Query::new();
        q.push("path", path);
        let resp = self
            .send(
                Method::HEAD,
                &format!("/containers/{}/archive{}", seg(id), q.as_str()),
                body::empty(),
                None,
                Mode::Short,
            )
            .await?;
        let stat = self.path_stat(&resp);
        resp.discard().await?;
        stat
    }

    /// `GET /containers/{id}/archive?path=`: the path's stat and a tar of it.
    pub async fn container_archive(
        &self,
        id: &str,
        path: &str,
    ) -> Result<(berth_api_types::archive::PathStat, ResponseStream)> {
        let mut q = Query::new();
        q.push("path", path);
        let resp = self
            .send(
                Method::GET,
                &format!("/containers/{}/archive{}", seg(id), q.as_str()),
                body::empty(),
                None,
                Mode::Long,
            )
            .await?;
        let stat = self.path_stat(&resp)?;
        Ok((stat, resp.into_stream()))
    }

    fn path_stat(&self, resp: &Response<'_>) -> Result<berth_api_types::archive::PathStat> {
        use berth_api_types::archive::{PATH_STAT_HEADER, PathStat};
        let value = resp
            .inner
            .headers()
            .get(PATH_STAT_HEADER)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| ClientError::Protocol {
                host: self.host.to_string(),
                message: format!("the daemon sent no {PATH_STAT_HEADER} header"),
            })?;
        PathStat::from_header(value).map_err(|message| ClientError::Protocol {
            host: self.host.to_string(),
            message,
        })
    }

    /// `PUT /containers/{id}/archive?path=&noOverwriteDirNonDir=true&copyUIDGID=`
    /// with a tar body, extracted into the directory `path`.
    pub async fn container_extract(
        &self,
        id: &str,
        path: &str,
        tar: ReqBody,
        copy_uid_gid: bool,
    ) -> Result<()> {
        let mut q = Query::new();
        q.push("path", path)
            .push("noOverwriteDirNonDir", "true")
            .flag("copyUIDGID", copy_uid_gid);
        self.send(
            Method::PUT,
            &format!("/containers/{}/archive{}", seg(id), q.as_str()),
            tar,
            Some("application/x-tar"),
            Mode::Long,
        )
        .await?
        .discard()
        .await
    }

    /// `GET /containers/{id}/export`: a tar stream of the filesystem.
    pub async fn container_export(&self, id: &str) -> Result<ResponseStream> {
        Ok(self
            .send(
                Method::GET,
                &format!("/containers/{}/export", seg(id)),
                body::empty(),
                None,
                Mode::Long,
            )
            .await?
            .into_stream())
    }

    /// `GET /containers/{id}/changes`.
    pub async fn container_changes(
        &self,
        id: &str,
    ) -> Result<Vec<berth_api_types::archive::Change>> {
        let changes: Option<Vec<berth_api_types::archive::Change>> = self
            .get(&format!("/containers/{}/changes", seg(id)))
            .await?
            .json()
            .await?;
        Ok(changes.unwrap_or_default())
    }

    /// `POST /commit?container=&repo=&tag=&comment=&author=&changes=&pause=`:
    /// the new image's ID.
    pub async fn container_commit(&self, opts: &CommitOptions<'_>) -> Result<String> {
        let mut q = Query::new();
        q.push("container", opts.container)
            .opt("repo", opts.repo)
            .opt("tag", opts.tag)
            .opt("comment", opts.comment)
            .opt("author", opts.author)
            .push("pause", if opts.pause { "1" } else { "0" });
        for c in opts.changes {
            q.push("changes", c);
        }
        let resp: berth_api_types::IdResponse = self
            .send(
                Method::POST,
                &format!("/commit{}", q.as_str()),
                body::empty(),
                None,
                Mode::Long,
            )
            .await?
            .json()
            .await?;
        Ok(resp.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_encodes_values() {
        let mut q = Query::new();
        q.push("filters", r#"{"status":["exited"]}"#)
            .flag("all", true)
            .flag("size", false)
            .opt("name", None);
        assert_eq!(
            q.as_str(),
            "?filters=%7B%22status%22%3A%5B%22exited%22%5D%7D&all=1"
        );
    }

    #[test]
    fn path_segments_keep_reference_characters() {
        assert_eq!(seg("localhost:5000/app:v1"), "localhost:5000/app:v1");
        assert_eq!(seg("a b?#%"), "a%20b%3F%23%25");
    }

    #[test]
    fn daemon_errors_display_like_docker() {
        let e = ClientError::Daemon {
            status: StatusCode::NOT_FOUND,
            message: "No such container: x".into(),
        };
        assert_eq!(
            e.to_string(),
            "Error response from daemon: No such container: x"
        );
        assert!(e.is_not_found());
    }

    #[test]
    fn connect_errors_say_where_and_what_to_do() {
        let e = ClientError::Connect {
            host: "unix:///run/berth/berth.sock".into(),
            error: io::Error::from_raw_os_error(2),
        };
        assert_eq!(
            e.to_string(),
            "Cannot connect to berthd at unix:///run/berth/berth.sock: No such file or directory (os error 2). \
             Is berthd running? Start it with 'berthd' (as root), or point -H / BERTH_HOST at a running daemon."
        );
    }
}
