//! `/_ping`, `/version`, `/info`, `/events`, `/system/df`, and
//! `/images/prune` (image pruning works across images and containers, so it
//! lives with the system endpoints rather than in `images.rs`).

use super::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Q, QueryPairs};
use crate::stream::body_from_channel;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use berth_api_types::API_VERSION;
use berth_runtime::container::events::EventFilter;
use berth_runtime::container::prune::{PruneFilters, parse_timestamp};
use bytes::Bytes;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/_ping", get(ping).head(ping))
        .route("/version", get(version))
        .route("/info", get(info))
        .route("/events", get(events))
        .route("/system/df", get(disk_usage))
        .route("/images/prune", post(image_prune))
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

/// `GET /info`: the engine's answer, plus what only the daemon process
/// knows (its log level, descriptors, tasks) and the registry settings the
/// docker CLI prints.
async fn info(State(engine): State<AppState>) -> Response {
    let mut info = engine.info();
    info.debug = tracing::enabled!(target: "berth_runtime", tracing::Level::DEBUG)
        || tracing::enabled!(target: "berth_api", tracing::Level::DEBUG);
    info.n_fd = std::fs::read_dir("/proc/self/fd").map_or(-1, |d| d.count() as i64);
    info.n_goroutines = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks() as i64;
    info.system_time = chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, false);
    info.index_server_address = "https://index.docker.io/v1/".into();
    info.plugins = berth_api_types::system::Plugins {
        volume: Vec::new(),
        network: Vec::new(),
        authorization: None,
        log: vec![info.logging_driver.clone()],
    };
    info.registry_config = Some(registry_config(engine.registry().insecure_registries()));
    axum::Json(info).into_response()
}

/// Docker's `RegistryConfig`: loopback registries are always plain HTTP
/// (Docker's default `InsecureRegistryCIDRs`), and `--insecure-registry`
/// hosts are insecure index configs.
fn registry_config(insecure: &[String]) -> serde_json::Value {
    let mut index = serde_json::Map::new();
    index.insert(
        "docker.io".into(),
        serde_json::json!({"Name": "docker.io", "Mirrors": [], "Secure": true, "Official": true}),
    );
    for h in insecure {
        index.insert(
            h.clone(),
            serde_json::json!({"Name": h, "Mirrors": [], "Secure": false, "Official": false}),
        );
    }
    serde_json::json!({
        "InsecureRegistryCIDRs": ["::1/128", "127.0.0.0/8"],
        "IndexConfigs": index,
        "Mirrors": [],
    })
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct EventsQuery {
    since: String,
    until: String,
    filters: String,
}

/// A `since`/`until` value in Unix nanoseconds; empty is none.
fn event_time(s: &str, now: chrono::DateTime<chrono::Utc>) -> ApiResult<Option<i64>> {
    if s.is_empty() {
        return Ok(None);
    }
    let t = parse_timestamp(s, now)?;
    Ok(Some(t.timestamp_nanos_opt().unwrap_or(i64::MAX)))
}

/// `GET /events`: past events in `[since, until]`, then, unless `until`
/// has passed, live events until `until` or until the client goes away.
/// One JSON object per line, as Docker streams them.
async fn events(State(engine): State<AppState>, Q(q): Q<EventsQuery>) -> ApiResult<Response> {
    let now = chrono::Utc::now();
    let since = event_time(&q.since, now)?;
    let until = event_time(&q.until, now)?;
    let filter = EventFilter::parse(&q.filters)?;
    let (history, mut live) = engine.events().subscribe(since, until);
    let now_nanos = now.timestamp_nanos_opt().unwrap_or(0);
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    let line = |e: &berth_runtime::container::events::Event| {
        let mut b = serde_json::to_vec(e).expect("events serialize");
        b.push(b'\n');
        Bytes::from(b)
    };
    tokio::spawn(async move {
        for e in history.iter().filter(|e| filter.matches(e)) {
            if tx.send(line(e)).await.is_err() {
                return;
            }
        }
        let deadline = match until {
            Some(u) if u <= now_nanos => return,
            Some(u) => Some(
                tokio::time::Instant::now()
                    + std::time::Duration::from_nanos((u - now_nanos) as u64),
            ),
            None => None,
        };
        let until_passed = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(until_passed);
        loop {
            tokio::select! {
                r = live.recv() => match r {
                    Ok(e) => {
                        if until.is_some_and(|u| e.time_nano > u) {
                            return;
                        }
                        if filter.matches(&e) && tx.send(line(&e)).await.is_err() {
                            return;
                        }
                    }
                    Err(RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "an events client fell behind; it missed events");
                    }
                    Err(RecvError::Closed) => return,
                },
                _ = &mut until_passed => return,
                _ = tx.closed() => return,
            }
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

/// `GET /system/df?type=...` (types repeat: `type=image&type=container`).
async fn disk_usage(State(engine): State<AppState>, q: QueryPairs) -> ApiResult<Response> {
    let types = q.all("type");
    Ok(axum::Json(engine.disk_usage(&types).await?).into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PruneQuery {
    filters: String,
}

/// `POST /images/prune?filters=`: unused images, only dangling ones unless
/// `dangling=false`.
async fn image_prune(State(engine): State<AppState>, Q(q): Q<PruneQuery>) -> ApiResult<Response> {
    let filters = PruneFilters::parse(&q.filters, true).map_err(ApiError)?;
    let report = engine.prune_images(&filters).await?;
    Ok(axum::Json(serde_json::json!({
        "ImagesDeleted": report.deleted,
        "SpaceReclaimed": report.space_reclaimed,
    }))
    .into_response())
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use berth_runtime::{Engine, EngineConfig};
    use http_body_util::BodyExt;
    use serde_json::{Value, json};
    use tower::ServiceExt;

    async fn app() -> (tempfile::TempDir, std::sync::Arc<Engine>, axum::Router) {
        let dir = tempfile::tempdir().unwrap();
        let mut config = EngineConfig::new(dir.path());
        config.wasm_pool_slots = 4;
        let engine = Engine::open(config).await.unwrap();
        let router = crate::server::router(engine.clone());
        (dir, engine, router)
    }

    async fn call(app: &axum::Router, method: &str, uri: &str) -> (StatusCode, Vec<u8>) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .body(Body::empty())
            .unwrap();
        let resp = app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (status, bytes.to_vec())
    }

    fn json_of(b: &[u8]) -> Value {
        serde_json::from_slice(b).unwrap()
    }

    #[tokio::test]
    async fn events_with_until_in_the_past_answer_the_history_and_end() {
        let (_d, engine, app) = app().await;
        engine.events().image("tag", "sha256:aa", "x:1");
        engine.events().image("untag", "sha256:aa", "x:1");
        let until = chrono::Utc::now().timestamp() + 1;
        // `until` one second ahead: the history, then the end of the stream.
        let f = "%7B%22event%22%3A%5B%22untag%22%5D%7D";
        let (status, body) = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            call(
                &app,
                "GET",
                &format!("/v1.47/events?since=0&until={until}&filters={f}"),
            ),
        )
        .await
        .expect("the stream ends at until");
        assert_eq!(status, StatusCode::OK);
        let text = String::from_utf8(body).unwrap();
        let events: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(events.len(), 1, "{text}");
        assert_eq!(events[0]["Action"], "untag");
        assert_eq!(events[0]["Actor"]["Attributes"]["name"], "x:1");
        let (status, _) = call(&app, "GET", "/events?since=yesterday").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn prune_and_disk_usage_shapes() {
        let (_d, _engine, app) = app().await;
        let (status, body) = call(&app, "GET", "/system/df").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            json_of(&body),
            json!({"LayersSize": 0, "Images": [], "Containers": [], "Volumes": [], "BuildCache": []})
        );
        let (_, body) = call(&app, "GET", "/system/df?type=volume").await;
        assert_eq!(json_of(&body), json!({"Volumes": []}));
        let (status, _) = call(&app, "GET", "/system/df?type=bogus").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, body) = call(&app, "POST", "/v1.41/images/prune").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            json_of(&body),
            json!({"ImagesDeleted": [], "SpaceReclaimed": 0})
        );
        let (status, body) = call(&app, "POST", "/containers/prune").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            json_of(&body),
            json!({"ContainersDeleted": [], "SpaceReclaimed": 0})
        );
        let (status, _) = call(
            &app,
            "POST",
            "/images/prune?filters=%7B%22x%22%3A%5B%221%22%5D%7D",
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn management_of_a_missing_container_is_404() {
        let (_d, _engine, app) = app().await;
        for (method, uri) in [
            ("POST", "/containers/nope/rename?name=other"),
            ("POST", "/containers/nope/pause"),
            ("POST", "/containers/nope/unpause"),
            ("GET", "/containers/nope/top"),
            ("POST", "/containers/nope/update"),
        ] {
            let (status, body) = call(&app, method, uri).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {uri}");
            assert_eq!(json_of(&body)["message"], "No such container: nope");
        }
    }
}
