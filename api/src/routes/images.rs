//! `/images/...`: list, inspect, tag, remove, load, save, pull
//! (`/images/create?fromImage=`) and push; `/auth`; and berth's
//! `/berth/wasm/import`.
//!
//! Pull and push answer with Docker's JSON progress stream. A failure
//! before the first message (an unknown image, refused credentials) is a
//! plain error response; once the stream has started, errors come inside
//! it as `{"errorDetail":{"message":...},"error":...}`. A client that goes
//! away cancels its pull or push.
//!
//! Image names contain slashes (`localhost:5000/team/app:v1`), so the
//! per-image routes are one catch-all that dispatches on the last segment,
//! as Docker's `{name:.*}/json` routes do.

use super::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Q, QueryPairs, docker_bool};
use crate::stream::{body_from_channel, body_reader};
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use berth_api_types::image::JsonMessage;
use berth_runtime::Error;
use berth_runtime::image::manifest::Platform;
use berth_runtime::image::{Reference, archive};
use berth_runtime::registry::{
    AuthConfig, LoginStatus, Progress, PullOptions, PushOptions, RegistryError,
};
use berth_runtime::util::Digest;
use bytes::Bytes;
use serde::Deserialize;
use std::io::Write;
use tokio::sync::mpsc;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/images/json", get(list))
        .route("/images/load", post(load))
        .route("/images/create", post(create))
        .route("/images/get", get(save_many))
        .route(
            "/images/{*rest}",
            get(get_image).post(post_image).delete(remove),
        )
        .route("/berth/wasm/import", post(wasm_import))
        .route("/auth", post(auth))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ListQuery {
    #[serde(deserialize_with = "docker_bool")]
    all: bool,
    #[serde(deserialize_with = "docker_bool")]
    digests: bool,
    filters: String,
}

async fn list(State(engine): State<AppState>, Q(q): Q<ListQuery>) -> ApiResult<Response> {
    // berth keeps no intermediate images and always knows the digests.
    let _ = (q.all, q.digests);
    let filters = berth_runtime::image::filter::ListFilters::parse(&q.filters)?;
    let images = engine.images();
    let mut out = Vec::new();
    for listed in images.list_filtered(&filters)? {
        let users = engine.containers().users_of(&listed.record.id).len() as i64;
        let mut summary = images.summary(&listed.record, listed.tags, users);
        summary.repo_digests = listed.digests;
        out.push(summary);
    }
    Ok(axum::Json(out).into_response())
}

/// `GET /images/{name}/json` and `GET /images/{name}/get`.
async fn get_image(
    State(engine): State<AppState>,
    Path(rest): Path<String>,
) -> ApiResult<Response> {
    if let Some(name) = rest.strip_suffix("/json") {
        return Ok(axum::Json(engine.images().inspect(name)?).into_response());
    }
    if let Some(name) = rest.strip_suffix("/get") {
        return save(engine, vec![name.to_string()]).await;
    }
    if rest.ends_with("/history") {
        return Err(ApiError(Error::not_implemented(
            "berthd does not implement GET /images/{name}/history yet",
        )));
    }
    Err(ApiError(Error::not_found("page not found")))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TagQuery {
    repo: String,
    tag: String,
}

/// `POST /images/{name}/tag` and `POST /images/{name}/push`.
async fn post_image(
    State(engine): State<AppState>,
    Path(rest): Path<String>,
    Q(q): Q<TagQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    if let Some(name) = rest.strip_suffix("/tag") {
        if q.repo.is_empty() {
            return Err(ApiError::bad_request(
                "repo is required: give the new name as repo=NAME[&tag=TAG]",
            ));
        }
        let mut target = Reference::parse(&q.repo)?;
        if !q.tag.is_empty() {
            target = target.with_tag(&q.tag)?;
        }
        engine.images().tag(name, &target)?;
        let id = engine.images().resolve(name)?.id;
        let target = target.with_default_tag();
        engine
            .events()
            .image("tag", &id.to_string(), &target.to_string());
        return Ok(StatusCode::CREATED.into_response());
    }
    if let Some(name) = rest.strip_suffix("/push") {
        let opts = PushOptions {
            name: name.to_string(),
            tag: (!q.tag.is_empty()).then(|| q.tag.clone()),
            auth: registry_auth(&headers)?,
        };
        let registry = engine.registry().clone();
        // An image that is not here is a 404 before the stream starts.
        let targets = registry.push_targets(&opts)?;
        let events = engine.events().clone();
        return Ok(progress_stream(move |progress| async move {
            let pushed = registry.push(targets, &opts.auth, &progress).await?;
            for p in pushed {
                // Docker's push event: the reference as the ID and name.
                let r = p.reference.to_string();
                events.image("push", &r, &r);
            }
            Ok(())
        })
        .await);
    }
    Err(ApiError(Error::not_found("page not found")))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RemoveQuery {
    #[serde(deserialize_with = "docker_bool")]
    force: bool,
    #[serde(deserialize_with = "docker_bool")]
    noprune: bool,
}

async fn remove(
    State(engine): State<AppState>,
    Path(name): Path<String>,
    Q(q): Q<RemoveQuery>,
) -> ApiResult<Response> {
    let _ = q.noprune;
    let items = engine.remove_image(&name, q.force).await?;
    Ok(axum::Json(items).into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LoadQuery {
    #[serde(deserialize_with = "docker_bool")]
    quiet: bool,
}

/// `POST /images/load`: a `docker save` or OCI layout tarball. The whole
/// load is done before answering. As in Docker, the answer is always a 200
/// JSON message stream: the `Loaded image: ...` lines, then, if the load
/// failed, the error as `{"errorDetail":{"message":...},"error":...}`
/// (the docker CLI prints it and exits 1).
///
/// `quiet` (Docker's default: true) turns off Docker's per-layer progress
/// bars; berth sends none either way, so its output is Docker's quiet one.
async fn load(
    State(engine): State<AppState>,
    Q(q): Q<LoadQuery>,
    req: Request,
) -> ApiResult<Response> {
    let _ = q.quiet;
    let reader = body_reader(req.into_body());
    let images = engine.images().clone();
    let (result, lines) = tokio::task::spawn_blocking(move || {
        let mut lines = Vec::new();
        let result = archive::load(&images, reader, &mut |l| lines.push(l));
        (result, lines)
    })
    .await
    .unwrap_or_else(|e| {
        let e = Error::internal(format!("loading images: {e}"));
        (Err(e), Vec::new())
    });
    let mut messages: Vec<JsonMessage> = lines
        .into_iter()
        .map(|l| JsonMessage::stream(format!("{l}\n")))
        .collect();
    match result {
        Ok(loaded) => {
            for record in &loaded {
                let tags = engine.images().tags_of(&record.id);
                engine.events().image(
                    "load",
                    &record.id.to_string(),
                    tags.first().map(String::as_str).unwrap_or_default(),
                );
            }
        }
        Err(e) => {
            tracing::info!(error = %e, "loading images failed");
            messages.push(JsonMessage::error(e.to_string()));
        }
    }
    let mut body = Vec::new();
    for m in messages {
        serde_json::to_writer(&mut body, &m).expect("serializes");
        body.push(b'\n');
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response())
}

async fn save_many(State(engine): State<AppState>, q: QueryPairs) -> ApiResult<Response> {
    let names = q.all("names");
    if names.is_empty() {
        return Err(ApiError::bad_request(
            "no images named: give names=IMAGE (repeatable)",
        ));
    }
    save(engine, names).await
}

/// Writes into a channel that a response body reads.
struct ChannelWriter(mpsc::Sender<Bytes>);

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Bytes::copy_from_slice(buf))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `docker save`: the tarball is streamed; names are checked first so that
/// an unknown image is a 404, not a broken stream.
async fn save(engine: AppState, names: Vec<String>) -> ApiResult<Response> {
    for n in &names {
        let record = engine.images().resolve(n)?;
        engine.events().image("save", &record.id.to_string(), n);
    }
    let (tx, rx) = mpsc::channel(16);
    let images = engine.images().clone();
    tokio::task::spawn_blocking(move || {
        let out = std::io::BufWriter::with_capacity(256 * 1024, ChannelWriter(tx));
        if let Err(e) = archive::save(&images, &names, out) {
            tracing::warn!(error = %e, "saving images");
        }
    });
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-tar"),
        )],
        body_from_channel(rx),
    )
        .into_response())
}

/// `POST /images/create`: `docker pull` (`fromImage`, `tag`, `platform`,
/// credentials in `X-Registry-Auth`) and `docker import` (`fromSrc=-`, the
/// rootfs tarball in the body).
async fn create(
    State(engine): State<AppState>,
    q: QueryPairs,
    req: Request,
) -> ApiResult<Response> {
    let one = |k: &str| q.all(k).into_iter().next().unwrap_or_default();
    let from_src = one("fromSrc");
    if from_src.is_empty() {
        let image = one("fromImage");
        if image.is_empty() {
            return Err(ApiError::bad_request(
                "give fromImage=NAME to pull an image, or fromSrc=- to import a tarball",
            ));
        }
        return pull(engine, &image, &one("tag"), &one("platform"), req.headers()).await;
    }
    if from_src != "-" {
        return Err(ApiError(Error::not_implemented(format!(
            "importing from a URL ({from_src}) is not supported: send the tarball in the request body (fromSrc=-)"
        ))));
    }
    let repo = one("repo");
    let tag = one("tag");
    let reference = if repo.is_empty() {
        None
    } else {
        let r = Reference::parse(&repo)?;
        Some(if tag.is_empty() { r } else { r.with_tag(&tag)? })
    };
    let changes = q.all("changes");
    let message = one("message");
    let platform = one("platform");
    let reader = body_reader(req.into_body());
    let images = engine.images().clone();
    let record = tokio::task::spawn_blocking(move || {
        let layers = images
            .layer_store()
            .cloned()
            .ok_or_else(|| Error::internal("no layer store"))?;
        berth_runtime::image::import::import_rootfs(
            &images,
            &layers,
            reader,
            reference.as_ref(),
            &changes,
            (!platform.is_empty()).then_some(platform.as_str()),
            (!message.is_empty()).then_some(message.as_str()),
        )
    })
    .await
    .map_err(|e| ApiError(Error::internal(format!("importing: {e}"))))??;
    let tags = engine.images().tags_of(&record.id);
    engine.events().image(
        "import",
        &record.id.to_string(),
        tags.first().map(String::as_str).unwrap_or_default(),
    );
    let mut body = serde_json::to_vec(&JsonMessage {
        status: Some(record.id.to_string()),
        ..Default::default()
    })
    .expect("serializes");
    body.push(b'\n');
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response())
}

/// `docker pull`: `fromImage` (with or without a tag), `tag` (a tag or a
/// digest), `platform` (`os[/arch[/variant]]`, `wasi/wasm`).
async fn pull(
    engine: AppState,
    image: &str,
    tag: &str,
    platform: &str,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let mut reference = Reference::parse(image)?;
    if !tag.is_empty() {
        reference = if tag.contains(':') {
            reference.with_digest(tag.parse::<Digest>()?)
        } else {
            reference.with_tag(tag)?
        };
    }
    let platform = if platform.is_empty() {
        None
    } else {
        Some(Platform::parse(platform)?)
    };
    let opts = PullOptions {
        reference,
        platform,
        auth: registry_auth(headers)?,
    };
    let registry = engine.registry().clone();
    let events = engine.events().clone();
    Ok(progress_stream(move |progress| async move {
        let outcome = registry.pull(opts, &progress).await?;
        // Docker's pull event: the reference as the ID and name.
        let r = outcome.reference.to_string();
        events.image("pull", &r, &r);
        Ok(())
    })
    .await)
}

const X_REGISTRY_AUTH: &str = "x-registry-auth";

/// The credentials a Docker client sends with pull and push.
fn registry_auth(headers: &HeaderMap) -> ApiResult<AuthConfig> {
    match headers.get(X_REGISTRY_AUTH) {
        None => Ok(AuthConfig::default()),
        Some(v) => {
            let v = v
                .to_str()
                .map_err(|_| ApiError::bad_request("invalid X-Registry-Auth header: not ASCII"))?;
            Ok(AuthConfig::from_header(v)?)
        }
    }
}

fn json_line(m: &JsonMessage) -> Bytes {
    let mut v = serde_json::to_vec(m).expect("serializes");
    v.extend_from_slice(b"\r\n");
    Bytes::from(v)
}

/// Aborts a task when dropped: a pull or push whose client went away.
struct AbortOnDrop(Option<tokio::task::JoinHandle<Result<(), RegistryError>>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(t) = &self.0 {
            t.abort();
        }
    }
}

/// Runs `job` with a progress sink and answers with its messages as they
/// come. If the job fails before its first message, the answer is a plain
/// error; after, the error ends the stream.
async fn progress_stream<F, Fut>(job: F) -> Response
where
    F: FnOnce(Progress) -> Fut,
    Fut: std::future::Future<Output = Result<(), RegistryError>> + Send + 'static,
{
    let (progress, mut rx) = Progress::channel();
    let mut task = AbortOnDrop(Some(tokio::spawn(job(progress))));
    let first = match rx.recv().await {
        Some(m) => m,
        None => {
            // The job ended without a word.
            let handle = task.0.take().expect("not yet awaited");
            return match handle.await {
                Ok(Ok(())) => StatusCode::OK.into_response(),
                Ok(Err(e)) => ApiError(e).into_response(),
                Err(e) => {
                    ApiError(Error::internal(format!("the task failed: {e}"))).into_response()
                }
            };
        }
    };
    struct State {
        first: Option<JsonMessage>,
        rx: mpsc::UnboundedReceiver<JsonMessage>,
        task: AbortOnDrop,
    }
    let state = State {
        first: Some(first),
        rx,
        task,
    };
    let body = futures_util::stream::unfold(state, |mut st| async move {
        if let Some(m) = st.first.take() {
            return Some((Ok::<_, std::convert::Infallible>(json_line(&m)), st));
        }
        if let Some(m) = st.rx.recv().await {
            return Some((Ok(json_line(&m)), st));
        }
        // Every sink is gone: the job has ended.
        let handle = st.task.0.take()?;
        let end = match handle.await {
            Ok(Ok(())) => return None,
            Ok(Err(e)) => JsonMessage::error(e.to_string()),
            Err(e) => JsonMessage::error(format!("the task failed: {e}")),
        };
        Some((Ok(json_line(&end)), st))
    });
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        Body::from_stream(body),
    )
        .into_response()
}

/// `POST /auth`: checks credentials against the registry, as
/// `docker login` does; stores nothing (clients keep credentials).
async fn auth(State(engine): State<AppState>, body: Bytes) -> ApiResult<Response> {
    let config: AuthConfig = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid auth config: {e}")))?;
    Ok(match engine.registry().login(&config).await {
        Ok(LoginStatus::Succeeded) => axum::Json(serde_json::json!({
            "Status": "Login Succeeded",
            "IdentityToken": "",
        }))
        .into_response(),
        Ok(LoginStatus::Denied(message)) => (
            StatusCode::UNAUTHORIZED,
            axum::Json(berth_api_types::ErrorResponse { message }),
        )
            .into_response(),
        Err(e) => ApiError(e).into_response(),
    })
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct WasmImportQuery {
    tag: String,
    title: String,
}

/// `POST /berth/wasm/import?tag=NAME[:TAG]&title=FILE`: the body is a
/// `.wasm` module or component (or WAT text). The body is streamed into the
/// content store as it arrives (never held in memory); past berthd's module
/// size limit the answer is 413 and nothing is kept, and a module that
/// cannot run (invalid, too costly to compile, missing imports) is a 400.
async fn wasm_import(
    State(engine): State<AppState>,
    Q(q): Q<WasmImportQuery>,
    req: Request,
) -> ApiResult<Response> {
    if q.tag.is_empty() {
        return Err(ApiError::bad_request(
            "tag is required: give the image name as tag=NAME[:TAG]",
        ));
    }
    // A bad name is refused before the body is read.
    Reference::parse(&q.tag)?;
    let limit = engine.wasm().config().limits.module_size;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(len) = declared
        && len > limit
    {
        return Ok(too_large(
            berth_runtime::image::wasm::ReceiveError::TooLarge {
                limit,
                what: "module",
            },
        ));
    }
    let reader = body_reader(req.into_body());
    let images = engine.images().clone();
    let received = tokio::task::spawn_blocking(move || {
        berth_runtime::image::wasm::receive(&images, reader, limit)
    })
    .await
    .map_err(|e| ApiError(Error::internal(format!("receiving the module: {e}"))))?;
    let received = match received {
        Ok(r) => r,
        Err(e @ berth_runtime::image::wasm::ReceiveError::TooLarge { .. }) => {
            return Ok(too_large(e));
        }
        Err(e) => return Err(ApiError(e.into_error())),
    };
    let title = (!q.title.is_empty()).then_some(q.title.as_str());
    let out = engine.import_wasm_received(received, &q.tag, title).await?;
    Ok((StatusCode::CREATED, axum::Json(out)).into_response())
}

/// 413 with Docker's error body.
fn too_large(e: berth_runtime::image::wasm::ReceiveError) -> Response {
    tracing::debug!(error = %e, "module upload refused");
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        axum::Json(berth_api_types::ErrorResponse {
            message: e.to_string(),
        }),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn reference_globs() {
        use berth_runtime::image::filter::familiar_match as glob_ref;
        assert!(glob_ref("hello", "hello:latest"));
        assert!(glob_ref("hel*", "hello:latest"));
        assert!(glob_ref("hello:lat*", "hello:latest"));
        assert!(!glob_ref("hello:v1", "hello:latest"));
        assert!(!glob_ref("*", "team/app:1"), "* does not cross a slash");
    }
}
