//! `/containers/...`: create, start, stop, kill, restart, wait, remove,
//! inspect, list, logs, attach, exec, stats; rename, pause, unpause, top,
//! update and prune.

use super::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, Q, docker_bool, opt_i64};
use crate::stream::{ClientConn, body_from_channel, encode_entry, pump_attach};
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use berth_api_types::container as wire;
use berth_api_types::detach::parse_detach_keys;
use berth_runtime::container::manage::UpdateRequest;
use berth_runtime::container::prune::PruneFilters;
use berth_runtime::container::{AttachOptions, ListFilters, LogOptions, WaitCondition, logs};
use bytes::Bytes;
use hyper_util::rt::TokioIo;
use serde::Deserialize;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/containers/json", get(list))
        .route("/containers/create", post(create))
        .route("/containers/{id}/json", get(inspect))
        .route("/containers/{id}/start", post(start))
        .route("/containers/{id}/stop", post(stop))
        .route("/containers/{id}/restart", post(restart))
        .route("/containers/{id}/kill", post(kill))
        .route("/containers/{id}/wait", post(wait))
        .route("/containers/{id}", delete(remove))
        .route("/containers/{id}/logs", get(logs))
        .route("/containers/{id}/attach", post(attach))
        .route("/containers/{id}/resize", post(resize))
        .route("/containers/{id}/exec", post(exec_create))
        .route("/containers/{id}/stats", get(stats))
        .route("/containers/{id}/rename", post(rename))
        .route("/containers/{id}/pause", post(pause))
        .route("/containers/{id}/unpause", post(unpause))
        .route("/containers/{id}/top", get(top))
        .route("/containers/{id}/update", post(update))
        .route("/containers/prune", post(prune))
        .route("/exec/{id}/start", post(exec_start))
        .route("/exec/{id}/json", get(exec_inspect))
        .route("/exec/{id}/resize", post(exec_resize))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ListQuery {
    #[serde(deserialize_with = "docker_bool")]
    all: bool,
    #[serde(deserialize_with = "opt_i64")]
    limit: Option<i64>,
    #[serde(deserialize_with = "docker_bool")]
    size: bool,
    filters: String,
}

async fn list(State(engine): State<AppState>, Q(q): Q<ListQuery>) -> ApiResult<Response> {
    let filters = ListFilters::parse(&q.filters)?;
    // A limit (`ps -n`, `ps -l`) counts stopped containers too, as Docker's.
    let all = q.all || q.limit.is_some_and(|n| n > 0);
    let mut out = engine.containers().list(all, &filters)?;
    if let Some(n) = q.limit.filter(|n| *n > 0) {
        out.truncate(n as usize);
    }
    if !q.size {
        return Ok(axum::Json(out).into_response());
    }
    // `size=1` (`ps -s`): each container's writable layer and, with the
    // image, its whole root filesystem.
    let containers = engine.containers().clone();
    let with_sizes = tokio::task::spawn_blocking(move || {
        out.into_iter()
            .map(|summary| {
                let (rw, rootfs) = containers.sizes(&summary.id).unwrap_or((0, 0));
                let mut v = serde_json::to_value(&summary).unwrap_or_default();
                v["SizeRw"] = rw.into();
                v["SizeRootFs"] = rootfs.into();
                v
            })
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|e| {
        ApiError(berth_runtime::Error::internal(format!(
            "measuring containers: {e}"
        )))
    })?;
    Ok(axum::Json(with_sizes).into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CreateQuery {
    name: String,
    platform: String,
}

async fn create(
    State(engine): State<AppState>,
    Q(q): Q<CreateQuery>,
    JsonBody(mut body): JsonBody<wire::CreateRequest>,
) -> ApiResult<Response> {
    if !q.platform.is_empty() && body.platform.is_none() {
        body.platform = Some(q.platform.clone());
    }
    let name = (!q.name.is_empty()).then_some(q.name.as_str());
    let created = engine.containers().create(name, body).await?;
    Ok((StatusCode::CREATED, axum::Json(created)).into_response())
}

async fn inspect(State(engine): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    Ok(axum::Json(engine.containers().inspect(&id)?).into_response())
}

async fn start(State(engine): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    engine.containers().start(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct StopQuery {
    #[serde(deserialize_with = "opt_i64")]
    t: Option<i64>,
    signal: String,
}

async fn stop(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    Q(q): Q<StopQuery>,
) -> ApiResult<StatusCode> {
    engine
        .containers()
        .stop(&id, q.t, Some(q.signal.as_str()))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn restart(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    Q(q): Q<StopQuery>,
) -> ApiResult<StatusCode> {
    engine
        .containers()
        .restart(&id, q.t, Some(q.signal.as_str()))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct KillQuery {
    signal: String,
}

async fn kill(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    Q(q): Q<KillQuery>,
) -> ApiResult<StatusCode> {
    engine
        .containers()
        .kill(&id, Some(q.signal.as_str()))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct WaitQuery {
    condition: String,
}

/// Answers with headers at once and the result when the condition is met:
/// the docker CLI starts a container only after its wait is registered.
async fn wait(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    Q(q): Q<WaitQuery>,
) -> ApiResult<Response> {
    let condition = WaitCondition::parse(&q.condition)?;
    let done = engine.containers().wait(&id, condition)?;
    let body = Body::from_stream(futures_util::stream::once(async move {
        let mut json = serde_json::to_vec(&done.await).expect("wait response serializes");
        json.push(b'\n');
        Ok::<_, std::convert::Infallible>(Bytes::from(json))
    }));
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RemoveQuery {
    #[serde(deserialize_with = "docker_bool")]
    force: bool,
    #[serde(deserialize_with = "docker_bool")]
    v: bool,
    #[serde(deserialize_with = "docker_bool")]
    link: bool,
}

async fn remove(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    Q(q): Q<RemoveQuery>,
) -> ApiResult<StatusCode> {
    if q.link {
        return Err(ApiError(berth_runtime::Error::not_implemented(
            "container links are not supported",
        )));
    }
    // `v` removes anonymous volumes; berth has none yet, so there is
    // nothing more to remove.
    let _ = q.v;
    engine.containers().remove(&id, q.force).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LogsQuery {
    #[serde(deserialize_with = "docker_bool")]
    follow: bool,
    #[serde(deserialize_with = "docker_bool")]
    stdout: bool,
    #[serde(deserialize_with = "docker_bool")]
    stderr: bool,
    since: String,
    until: String,
    #[serde(deserialize_with = "docker_bool")]
    timestamps: bool,
    tail: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RenameQuery {
    name: String,
}

async fn rename(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    Q(q): Q<RenameQuery>,
) -> ApiResult<StatusCode> {
    engine.containers().rename(&id, &q.name)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn pause(State(engine): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    engine.containers().pause(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn unpause(State(engine): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    engine.containers().unpause(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TopQuery {
    ps_args: String,
}

async fn top(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    Q(q): Q<TopQuery>,
) -> ApiResult<Response> {
    Ok(axum::Json(engine.containers().top(&id, &q.ps_args).await?).into_response())
}

async fn update(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpdateRequest>,
) -> ApiResult<Response> {
    Ok(axum::Json(engine.containers().update(&id, body).await?).into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PruneQuery {
    filters: String,
}

async fn prune(State(engine): State<AppState>, Q(q): Q<PruneQuery>) -> ApiResult<Response> {
    let filters = PruneFilters::parse(&q.filters, false)?;
    let report = engine.containers().prune(&filters).await?;
    Ok(axum::Json(serde_json::json!({
        "ContainersDeleted": report.deleted,
        "SpaceReclaimed": report.space_reclaimed,
    }))
    .into_response())
}

/// Docker's `since`/`until`: Unix seconds with an optional fraction.
fn parse_unix_time(s: &str) -> ApiResult<Option<chrono::DateTime<chrono::Utc>>> {
    if s.is_empty() || s == "0" {
        return Ok(None);
    }
    let bad = || {
        ApiError::bad_request(format!(
            "invalid time {s:?}: expected Unix seconds such as 1700000000.5"
        ))
    };
    let (secs, frac) = s.split_once('.').unwrap_or((s, "0"));
    let secs: i64 = secs.parse().map_err(|_| bad())?;
    let nanos: u32 = format!("{:0<9}", &frac[..frac.len().min(9)])
        .parse()
        .map_err(|_| bad())?;
    Ok(chrono::DateTime::from_timestamp(secs, nanos))
}

async fn logs(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    Q(q): Q<LogsQuery>,
) -> ApiResult<Response> {
    if !q.stdout && !q.stderr {
        return Err(ApiError::bad_request(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let tail = match q.tail.as_str() {
        "" | "all" => None,
        n => Some(n.parse::<i64>().map_err(|_| {
            ApiError::bad_request(format!(
                "invalid tail {n:?}: give a number of lines or 'all'"
            ))
        })?),
    }
    .filter(|n| *n >= 0)
    .map(|n| n as usize);
    let opts = LogOptions {
        filter: logs::Filter {
            stdout: q.stdout,
            stderr: q.stderr,
            since: parse_unix_time(&q.since)?,
            until: parse_unix_time(&q.until)?,
            tail,
        },
        follow: q.follow,
    };
    let (tty, mut entries) = engine.containers().logs(&id, opts)?;
    let timestamps = q.timestamps;
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        while let Some(e) = entries.recv().await {
            let mut out = Vec::new();
            encode_entry(&e, tty, timestamps, &mut out);
            // Batch what is already waiting into one write.
            while out.len() < 64 * 1024 {
                match entries.try_recv() {
                    Ok(e) => encode_entry(&e, tty, timestamps, &mut out),
                    Err(_) => break,
                }
            }
            if tx.send(Bytes::from(out)).await.is_err() {
                return;
            }
        }
    });
    Ok((
        [(header::CONTENT_TYPE, stream_content_type(tty))],
        body_from_channel(rx),
    )
        .into_response())
}

fn stream_content_type(tty: bool) -> HeaderValue {
    HeaderValue::from_static(if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    })
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ResizeQuery {
    #[serde(deserialize_with = "opt_i64")]
    h: Option<i64>,
    #[serde(deserialize_with = "opt_i64")]
    w: Option<i64>,
}

/// A TTY dimension from a resize query: 0 to 65535, else 400.
fn tty_dim(v: Option<i64>, name: &str) -> Result<u16, ApiError> {
    v.filter(|n| (0..=u16::MAX as i64).contains(n))
        .map(|n| n as u16)
        .ok_or_else(|| ApiError::bad_request(format!("{name} must be a number from 0 to 65535")))
}

async fn resize(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    Q(q): Q<ResizeQuery>,
) -> ApiResult<StatusCode> {
    engine
        .containers()
        .resize(&id, tty_dim(q.h, "h")?, tty_dim(q.w, "w")?)?;
    Ok(StatusCode::OK)
}

#[derive(Deserialize)]
#[serde(default)]
struct StatsQuery {
    #[serde(deserialize_with = "docker_bool")]
    stream: bool,
    #[serde(rename = "one-shot", deserialize_with = "docker_bool")]
    one_shot: bool,
}

impl Default for StatsQuery {
    fn default() -> Self {
        StatsQuery {
            stream: true,
            one_shot: false,
        }
    }
}

/// `GET /containers/{id}/stats`: a sample per second while streaming; one
/// sample (with `precpu_stats` from a second earlier unless `one-shot`)
/// otherwise.
async fn stats(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    Q(q): Q<StatsQuery>,
) -> ApiResult<Response> {
    let containers = engine.containers().clone();
    let first = containers.stats_sample(&id, None)?;
    let json_line = |v: &serde_json::Value| {
        let mut b = serde_json::to_vec(v).expect("serializes");
        b.push(b'\n');
        Bytes::from(b)
    };
    if !q.stream {
        let sample = if q.one_shot {
            first
        } else {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            containers.stats_sample(&id, Some(&first))?
        };
        return Ok(axum::Json(sample.json).into_response());
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    tokio::spawn(async move {
        let mut prev = first;
        if tx.send(json_line(&prev.json)).await.is_err() {
            return;
        }
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            let Ok(next) = containers.stats_sample(&id, Some(&prev)) else {
                return;
            };
            if tx.send(json_line(&next.json)).await.is_err() {
                return;
            }
            prev = next;
        }
    });
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body_from_channel(rx),
    )
        .into_response())
}

async fn exec_create(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<wire::ExecConfig>,
) -> ApiResult<Response> {
    let exec_id = engine.containers().exec_create(&id, body)?;
    Ok((
        StatusCode::CREATED,
        axum::Json(berth_api_types::IdResponse { id: exec_id }),
    )
        .into_response())
}

/// Starts an exec: detached, or over a hijacked connection as attach is.
async fn exec_start(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> ApiResult<Response> {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .map_err(|e| ApiError::bad_request(format!("reading request body: {e}")))?;
    let start: wire::ExecStart = if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        wire::ExecStart::default()
    } else {
        serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON in request body: {e}")))?
    };
    // As Docker: a console size without a TTY on the start means nothing.
    let console = start
        .console_size
        .filter(|[h, w]| start.tty && *h > 0 && *w > 0)
        .map(|[h, w]| [h.min(65535) as u16, w.min(65535) as u16]);
    let streams = engine.containers().exec_start(&id, console)?;
    if start.detach {
        // Nobody reads the output of a detached exec.
        tokio::spawn(async move {
            let mut done = streams.done;
            let _ = done.wait_for(|c| c.is_some()).await;
        });
        return Ok(StatusCode::OK.into_response());
    }
    // The start request's Tty decides the stream's format, as Docker's
    // (the process's TTY comes from the create request).
    let tty = start.tty;
    let mut req = Request::from_parts(parts, Body::empty());
    let wants_upgrade = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("tcp"));
    if !wants_upgrade {
        let (client, server) = tokio::io::duplex(64 * 1024);
        tokio::spawn(crate::stream::pump_exec(server, streams, tty, None));
        let body = Body::from_stream(tokio_util_stream(client));
        return Ok(([(header::CONTENT_TYPE, stream_content_type(tty))], body).into_response());
    }
    let conn = req.extensions().get::<ClientConn>().copied();
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                crate::stream::pump_exec(TokioIo::new(upgraded), streams, tty, conn).await
            }
            Err(e) => tracing::warn!(error = %e, "exec upgrade failed"),
        }
    });
    Ok(Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONTENT_TYPE, stream_content_type(tty))
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "tcp")
        .body(Body::empty())
        .expect("valid response"))
}

async fn exec_inspect(
    State(engine): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    Ok(axum::Json(engine.containers().exec_inspect(&id)?).into_response())
}

async fn exec_resize(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    Q(q): Q<ResizeQuery>,
) -> ApiResult<StatusCode> {
    engine
        .containers()
        .exec_resize(&id, tty_dim(q.h, "h")?, tty_dim(q.w, "w")?)?;
    Ok(StatusCode::OK)
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AttachQuery {
    #[serde(deserialize_with = "docker_bool")]
    stream: bool,
    #[serde(deserialize_with = "docker_bool")]
    logs: bool,
    #[serde(deserialize_with = "docker_bool")]
    stdin: bool,
    #[serde(deserialize_with = "docker_bool")]
    stdout: bool,
    #[serde(deserialize_with = "docker_bool")]
    stderr: bool,
    #[serde(rename = "detachKeys")]
    detach_keys: String,
}

/// Hijacks the connection (`Upgrade: tcp`, answered with 101) and runs the
/// container's streams over it. A client that does not ask to upgrade gets
/// the output as a plain streamed body.
async fn attach(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    Q(q): Q<AttachQuery>,
    req: Request,
) -> ApiResult<Response> {
    let detach_keys = parse_detach_keys(&q.detach_keys).map_err(ApiError::bad_request)?;
    let opts = AttachOptions {
        stdin: q.stdin,
        stdout: q.stdout,
        stderr: q.stderr,
        logs: q.logs,
        stream: q.stream,
    };
    let attached = engine.containers().attach(&id, opts)?;
    let tty = attached.tty;
    let wants_upgrade = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("tcp"));
    if !wants_upgrade {
        let (client, server) = tokio::io::duplex(64 * 1024);
        tokio::spawn(pump_attach(
            server,
            attached,
            q.stdout,
            q.stderr,
            detach_keys,
            None,
        ));
        let body = Body::from_stream(tokio_util_stream(client));
        return Ok(([(header::CONTENT_TYPE, stream_content_type(tty))], body).into_response());
    }
    let conn = req.extensions().get::<ClientConn>().copied();
    let on_upgrade = hyper::upgrade::on(req);
    let (stdout, stderr) = (q.stdout, q.stderr);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                pump_attach(
                    TokioIo::new(upgraded),
                    attached,
                    stdout,
                    stderr,
                    detach_keys,
                    conn,
                )
                .await
            }
            Err(e) => tracing::warn!(error = %e, "attach upgrade failed"),
        }
    });
    Ok(Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONTENT_TYPE, stream_content_type(tty))
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "tcp")
        .body(Body::empty())
        .expect("valid response"))
}

/// Reads a duplex stream as a body stream.
fn tokio_util_stream(
    mut rd: tokio::io::DuplexStream,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    use std::task::Poll;
    futures_util::stream::poll_fn(move |cx| {
        let mut buf = vec![0u8; 16 * 1024];
        let mut rb = tokio::io::ReadBuf::new(&mut buf);
        match tokio::io::AsyncRead::poll_read(std::pin::Pin::new(&mut rd), cx, &mut rb) {
            Poll::Ready(Ok(())) => {
                let n = rb.filled().len();
                if n == 0 {
                    Poll::Ready(None)
                } else {
                    buf.truncate(n);
                    Poll::Ready(Some(Ok(Bytes::from(buf))))
                }
            }
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
            Poll::Pending => Poll::Pending,
        }
    })
}
