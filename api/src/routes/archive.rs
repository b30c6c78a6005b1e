//! Container filesystem endpoints: the archive endpoints behind `docker
//! cp` (`HEAD`/`GET`/`PUT /containers/{id}/archive`), `docker export`,
//! `docker diff` (`/containers/{id}/changes`) and `docker commit`
//! (`POST /commit`). The work is `berth_runtime::container::fs`'s; this
//! file only speaks HTTP.

use super::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Q, QueryPairs, docker_bool};
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use berth_api_types::archive::{PATH_STAT_HEADER, PathStat};
use berth_api_types::container as wire;
use berth_runtime::Error;
use berth_runtime::container::fs::{ArchiveStream, CommitOptions, ExtractOptions};
use bytes::Bytes;
use futures_util::StreamExt;
use serde::Deserialize;
use std::io::Read;
use tokio::sync::mpsc;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/containers/{id}/archive",
            get(archive_get).head(archive_head).put(archive_put),
        )
        .route("/containers/{id}/export", get(export))
        .route("/containers/{id}/changes", get(changes))
        .route("/commit", post(commit))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PathQuery {
    path: String,
}

fn stat_header(stat: &PathStat) -> ApiResult<(HeaderName, HeaderValue)> {
    let value = HeaderValue::from_str(&stat.to_header())
        .map_err(|e| ApiError(Error::internal(format!("encoding the path stat: {e}"))))?;
    Ok((
        HeaderName::from_static("x-docker-container-path-stat"),
        value,
    ))
}

fn required_path(q: &PathQuery) -> ApiResult<&str> {
    if q.path.is_empty() {
        return Err(ApiError::bad_request(
            "path is required: give the path in the container as path=/PATH",
        ));
    }
    Ok(&q.path)
}

/// A tar body from the runtime's stream; an error item aborts the
/// response, so the client sees a broken transfer rather than a short
/// archive.
fn tar_body(rx: ArchiveStream) -> Body {
    Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}

/// `HEAD /containers/{id}/archive?path=`: the path's stat in the
/// `X-Docker-Container-Path-Stat` header.
async fn archive_head(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    Q(q): Q<PathQuery>,
) -> ApiResult<Response> {
    let path = required_path(&q)?;
    let stat = engine.containers().stat_path(&id, path).await?;
    Ok(([stat_header(&stat)?], ()).into_response())
}

/// `GET /containers/{id}/archive?path=`: a tar of the path, with its stat
/// in the header.
async fn archive_get(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    Q(q): Q<PathQuery>,
) -> ApiResult<Response> {
    let path = required_path(&q)?;
    let (stat, rx) = engine.containers().archive(&id, path).await?;
    debug_assert_eq!(
        PATH_STAT_HEADER.to_ascii_lowercase(),
        "x-docker-container-path-stat"
    );
    Ok((
        [
            stat_header(&stat)?,
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-tar"),
            ),
        ],
        tar_body(rx),
    )
        .into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PutQuery {
    path: String,
    #[serde(rename = "noOverwriteDirNonDir", deserialize_with = "docker_bool")]
    no_overwrite_dir_non_dir: bool,
    #[serde(rename = "copyUIDGID", deserialize_with = "docker_bool")]
    copy_uid_gid: bool,
}

/// `PUT /containers/{id}/archive?path=`: extracts the body (a tar, plain
/// or compressed) into the directory `path`.
async fn archive_put(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    Q(q): Q<PutQuery>,
    req: Request,
) -> ApiResult<Response> {
    if q.path.is_empty() {
        return Err(ApiError::bad_request(
            "path is required: give the directory in the container to extract into as path=/DIR",
        ));
    }
    let opts = ExtractOptions {
        no_overwrite_dir_non_dir: q.no_overwrite_dir_non_dir,
        copy_uid_gid: q.copy_uid_gid,
    };
    let reader = body_reader(req.into_body());
    engine
        .containers()
        .extract(&id, &q.path, Box::new(reader), opts)
        .await?;
    Ok(StatusCode::OK.into_response())
}

/// `GET /containers/{id}/export`: the container's filesystem as a tar.
async fn export(State(engine): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let rx = engine.containers().export(&id).await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-tar"),
        )],
        tar_body(rx),
    )
        .into_response())
}

/// `GET /containers/{id}/changes`: `[{"Path": "/tmp/x", "Kind": 1}, ...]`.
async fn changes(State(engine): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let changes = engine.containers().changes(&id).await?;
    Ok(axum::Json(changes).into_response())
}

/// Largest commit body (a container config) accepted.
const MAX_CONFIG_BODY: usize = 8 << 20;

/// `POST /commit?container=&repo=&tag=&comment=&author=&changes=&pause=`,
/// with an optional container config as body: answers 201 `{"Id": ...}`.
async fn commit(
    State(engine): State<AppState>,
    q: QueryPairs,
    req: Request,
) -> ApiResult<Response> {
    let one = |k: &str| q.all(k).into_iter().next().unwrap_or_default();
    let container = one("container");
    if container.is_empty() {
        return Err(ApiError::bad_request(
            "container is required: give the container to commit as container=NAME",
        ));
    }
    let body = axum::body::to_bytes(req.into_body(), MAX_CONFIG_BODY)
        .await
        .map_err(|e| ApiError::bad_request(format!("reading request body: {e}")))?;
    // The docker CLI sends no body (or `null`) unless it has a config.
    let config: Option<wire::Config> = if body.iter().all(|b| b.is_ascii_whitespace()) {
        None
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON in request body: {e}")))?
    };
    let opts = CommitOptions {
        repo: one("repo"),
        tag: one("tag"),
        comment: one("comment"),
        author: one("author"),
        changes: q.all("changes"),
        config,
    };
    let id = engine.containers().commit(&container, opts).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(berth_api_types::IdResponse { id: id.to_string() }),
    )
        .into_response())
}

/// The request body, read synchronously on the extraction's blocking
/// thread.
struct BodyReader {
    rx: mpsc::Receiver<Result<Bytes, String>>,
    cur: Bytes,
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => return Err(std::io::Error::other(e)),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur.split_to(n));
        Ok(n)
    }
}

fn body_reader(body: Body) -> BodyReader {
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream.next().await {
            let item = chunk.map_err(|e| format!("reading request body: {e}"));
            let stop = item.is_err();
            if tx.send(item).await.is_err() || stop {
                return;
            }
        }
    });
    BodyReader {
        rx,
        cur: Bytes::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stat_header_is_dockers() {
        let st = PathStat {
            name: "x".into(),
            ..Default::default()
        };
        let (name, value) = stat_header(&st).unwrap();
        assert_eq!(name.as_str(), PATH_STAT_HEADER.to_ascii_lowercase());
        assert_eq!(PathStat::from_header(value.to_str().unwrap()).unwrap(), st);
    }
}
