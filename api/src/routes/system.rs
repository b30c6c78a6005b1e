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

async fn info(State(engine): State<AppState>) -> Response {
    axum::Json(engine.info()).into_response()
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
                tokio::time::Instant::now() + std::time::Duration::from_nanos((u - now_nanos) as u64),
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
