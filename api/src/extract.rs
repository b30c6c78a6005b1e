//! Request extractors that answer bad input as Docker does: 400 with a JSON
//! message, never axum's plain-text rejections.

use crate::error::ApiError;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// Query parameters, deserialized into `T`.
pub struct Q<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Q<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or("");
        serde_urlencoded::from_str(query)
            .map(Q)
            .map_err(|e| ApiError::bad_request(format!("invalid query parameters: {e}")))
    }
}

/// Every query parameter, in order, repeated keys included
/// (`names=a&names=b`).
pub struct QueryPairs(pub Vec<(String, String)>);

impl QueryPairs {
    pub fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or("");
        Ok(QueryPairs(
            form_urlencoded::parse(query.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        ))
    }
}

/// Largest JSON request body accepted.
const MAX_JSON_BODY: usize = 8 << 20;

/// A JSON request body. An empty body reads as `{}`; a body of the wrong
/// shape or types is a 400 that says what is wrong.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, ApiError> {
        if let Some(ct) = req.headers().get(CONTENT_TYPE) {
            let ct = ct.to_str().unwrap_or("");
            let mime = ct.split(';').next().unwrap_or("").trim();
            if !mime.is_empty() && mime != "application/json" && !mime.ends_with("+json") {
                return Err(ApiError::bad_request(format!(
                    "unsupported Content-Type header ({ct}): must be 'application/json'"
                )));
            }
        }
        let bytes = axum::body::to_bytes(req.into_body(), MAX_JSON_BODY)
            .await
            .map_err(|e| ApiError::bad_request(format!("reading request body: {e}")))?;
        let bytes: &[u8] = if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            b"{}"
        } else {
            &bytes
        };
        serde_json::from_slice(bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON in request body: {e}")))
    }
}

/// Docker's boolean query values: empty, `0`, `no`, `false` and `none`
/// are false; anything else is true.
pub fn docker_bool<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    let s = String::deserialize(d)?;
    Ok(!matches!(
        s.to_ascii_lowercase().as_str(),
        "" | "0" | "no" | "false" | "none"
    ))
}

/// An optional integer query value; empty means absent.
pub fn opt_i64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let s = String::deserialize(d)?;
    if s.is_empty() {
        return Ok(None);
    }
    s.parse()
        .map(Some)
        .map_err(|_| serde::de::Error::custom(format!("expected an integer, got {s:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Default)]
    struct B {
        #[serde(default, deserialize_with = "docker_bool")]
        x: bool,
    }

    #[test]
    fn bools_like_docker() {
        for (q, want) in [
            ("x=1", true),
            ("x=true", true),
            ("x=True", true),
            ("x=0", false),
            ("x=false", false),
            ("x=", false),
            ("", false),
        ] {
            let b: B = serde_urlencoded::from_str(q).unwrap();
            assert_eq!(b.x, want, "{q}");
        }
    }
}
