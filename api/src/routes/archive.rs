//! Container filesystem endpoints: the archive endpoints behind `docker
//! cp` (`HEAD`/`GET`/`PUT /containers/{id}/archive`), `docker export`,
//! `docker diff` (`/containers/{id}/changes`) and `docker commit`
//! (`POST /commit`). The work is `berth_runtime::container::fs`'s; this
//! file only speaks HTTP.

use super::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Q, QueryPairs, docker_bool};
use crate::stream::body_reader;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use berth_api_types::archive::PathStat;
use berth_api_types::container as wire;
use berth_runtime::Error;
use berth_runtime::container::fs::{ArchiveStream, CommitOptions, ExtractOptions};
use serde::Deserialize;

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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request as HttpRequest;
    use berth_api_types::archive::PATH_STAT_HEADER;
    use berth_runtime::{Engine, EngineConfig};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn call(
        app: &Router,
        method: &str,
        uri: &str,
        body: Vec<u8>,
    ) -> (StatusCode, Vec<u8>, Option<String>) {
        let req = HttpRequest::builder()
            .method(method)
            .uri(uri)
            .body(Body::from(body))
            .unwrap();
        let resp = app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let stat = resp
            .headers()
            .get(PATH_STAT_HEADER)
            .map(|v| v.to_str().unwrap().to_string());
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (status, bytes.to_vec(), stat)
    }

    /// A ustar archive of one file, by hand (the api crate has no tar).
    fn one_file_tar(name: &str, data: &[u8]) -> Vec<u8> {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        let octal = |h: &mut [u8; 512], at: usize, len: usize, v: u64| {
            let s = format!("{v:0w$o}", w = len - 1);
            h[at..at + len - 1].copy_from_slice(s.as_bytes());
        };
        octal(&mut h, 100, 8, 0o644);
        octal(&mut h, 108, 8, 0);
        octal(&mut h, 116, 8, 0);
        octal(&mut h, 124, 12, data.len() as u64);
        octal(&mut h, 136, 12, 0);
        h[156] = b'0';
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].fill(b' ');
        let sum: u64 = h.iter().map(|b| u64::from(*b)).sum();
        let s = format!("{sum:06o}\0 ");
        h[148..156].copy_from_slice(s.as_bytes());
        let mut out = h.to_vec();
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
        out.extend_from_slice(&[0u8; 1024]);
        out
    }

    /// The whole set on a Wasm container (no root needed): copy in, stat,
    /// copy out, changes, export, commit, and the 400s and 404s.
    #[tokio::test]
    async fn archive_endpoints_on_a_wasm_container() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = EngineConfig::new(dir.path());
        config.wasm_pool_slots = 4;
        let engine = Engine::open(config).await.unwrap();
        engine
            .import_wasm(
                b"(module (func (export \"_start\")))".to_vec(),
                "empty",
                None,
            )
            .await
            .unwrap();
        let app = crate::server::router(engine);
        let (st, body, _) = call(
            &app,
            "POST",
            "/v1.47/containers/create?name=fsw",
            br#"{"Image":"empty"}"#.to_vec(),
        )
        .await;
        assert_eq!(
            st,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&body)
        );

        let (st, body, _) = call(
            &app,
            "PUT",
            "/v1.47/containers/fsw/archive?path=/",
            one_file_tar("hello.txt", b"hi there"),
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        let (st, _, stat) = call(
            &app,
            "HEAD",
            "/v1.47/containers/fsw/archive?path=/hello.txt",
            vec![],
        )
        .await;
        assert_eq!(st, StatusCode::OK);
        let stat = PathStat::from_header(&stat.expect("the stat header")).unwrap();
        assert_eq!((stat.name.as_str(), stat.size), ("hello.txt", 8));
        let (st, body, stat) = call(
            &app,
            "GET",
            "/v1.47/containers/fsw/archive?path=/hello.txt",
            vec![],
        )
        .await;
        assert_eq!(st, StatusCode::OK);
        assert!(stat.is_some());
        assert_eq!(
            &body[..10],
            b"hello.txt\0",
            "one entry named by the base name"
        );
        assert_eq!(&body[512..520], b"hi there");

        let (st, body, _) = call(&app, "GET", "/v1.47/containers/fsw/changes", vec![]).await;
        assert_eq!(st, StatusCode::OK);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v, serde_json::json!([{"Path": "/hello.txt", "Kind": 1}]));
        let (st, body, _) = call(&app, "GET", "/v1.47/containers/fsw/export", vec![]).await;
        assert_eq!(st, StatusCode::OK);
        assert!(body.windows(9).any(|w| w == b"hello.txt"));

        // Refusals.
        let (st, _, _) = call(
            &app,
            "HEAD",
            "/v1.47/containers/fsw/archive?path=/nope",
            vec![],
        )
        .await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        let (st, _, _) = call(&app, "HEAD", "/v1.47/containers/fsw/archive", vec![]).await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        let (st, _, _) = call(&app, "GET", "/v1.47/containers/ghost/changes", vec![]).await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        let (st, body, _) = call(
            &app,
            "PUT",
            "/v1.47/containers/fsw/archive?path=/hello.txt",
            one_file_tar("x", b""),
        )
        .await;
        assert_eq!(
            st,
            StatusCode::BAD_REQUEST,
            "{}",
            String::from_utf8_lossy(&body)
        );
        // A Wasm container with files cannot be committed; one without can.
        let (st, _, _) = call(&app, "POST", "/v1.47/commit?container=fsw&repo=x", vec![]).await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        let (st, _, _) = call(
            &app,
            "POST",
            "/v1.47/containers/create?name=fsw2",
            br#"{"Image":"empty"}"#.to_vec(),
        )
        .await;
        assert_eq!(st, StatusCode::CREATED);
        let (st, body, _) = call(
            &app,
            "POST",
            "/v1.47/commit?container=fsw2&repo=empty2&tag=v1&changes=ENV%20A%3Db",
            vec![],
        )
        .await;
        assert_eq!(
            st,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&body)
        );
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(v["Id"].as_str().unwrap().starts_with("sha256:"));
        let (st, body, _) = call(&app, "GET", "/v1.47/images/empty2:v1/json", vec![]).await;
        assert_eq!(st, StatusCode::OK);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["Config"]["Env"][0], "A=b", "{v}");
    }

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
