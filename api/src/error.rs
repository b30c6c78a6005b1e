//! `ApiError`: every failure a handler returns, answered as Docker does —
//! a status code from the error's kind, in this one place, and a JSON body
//! `{"message": "..."}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use berth_api_types::ErrorResponse;
use berth_runtime::{Error, ErrorKind};

#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        ApiError(e)
    }
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError(Error::invalid(message))
    }

    pub fn status(&self) -> StatusCode {
        match self.0.kind() {
            ErrorKind::InvalidArgument => StatusCode::BAD_REQUEST,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::NotModified => StatusCode::NOT_MODIFIED,
            ErrorKind::NotImplemented => StatusCode::NOT_IMPLEMENTED,
            ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status == StatusCode::NOT_MODIFIED {
            // 304 has no body.
            return status.into_response();
        }
        if status.is_server_error() && status != StatusCode::NOT_IMPLEMENTED {
            tracing::error!(error = %self.0, "request failed");
        } else {
            tracing::debug!(status = %status, error = %self.0, "request refused");
        }
        (
            status,
            axum::Json(ErrorResponse {
                message: self.0.message().to_string(),
            }),
        )
            .into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
