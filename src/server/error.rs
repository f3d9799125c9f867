//! The one error type of the HTTP layer: every failure becomes a status code and
//! `{"error": {"code", "message"}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::engine::SearchError;

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    /// A stable, machine-readable name, e.g. `invalid_request`.
    pub code: &'static str,
    pub message: String,
    /// Seconds a client should wait before trying again (`Retry-After`), for 503s.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), retry_after: None }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// Every search slot and queue place is taken: come back shortly.
    pub fn overloaded(message: impl Into<String>) -> Self {
        ApiError { retry_after: Some(1), ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", message) }
    }
}

impl From<SearchError> for ApiError {
    fn from(error: SearchError) -> Self {
        match &error {
            SearchError::InvalidRequest(message) => ApiError::bad_request(message.clone()),
            SearchError::RankerUnavailable { .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, "ranker_unavailable", error.to_string())
            }
            SearchError::Index(_) | SearchError::Dense(_) | SearchError::Model(_) => {
                tracing::error!(%error, "search failed");
                ApiError::internal(error.to_string())
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}
