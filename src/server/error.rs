//! The one error type of the HTTP layer: every failure becomes a status code and
//! `{"error": {"code", "message"}}`, whose `code` is one of [`ErrorCode`].

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::engine::SearchError;

/// Declares [`ErrorCode`] and [`ErrorCode::ALL`] from one list, so `ALL` cannot miss a code.
macro_rules! error_codes {
    ($($(#[doc = $doc:literal])+ $code:ident,)+) => {
        /// A stable, machine-readable name for what went wrong; `message` says it for people.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum ErrorCode {
            $($(#[doc = $doc])+ $code,)+
        }

        impl ErrorCode {
            /// Every code the server can answer with.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$code),+];
        }
    };
}

error_codes! {
    /// The request is malformed or out of range (a missing or empty `q`, a bad `k`, a
    /// body field of the wrong type).
    InvalidRequest,
    /// The body is not JSON.
    InvalidJson,
    /// A `filter` clause cannot be read.
    InvalidFilter,
    /// A `utility` term or weight cannot be read.
    InvalidUtility,
    /// No ranker has that name.
    UnknownRanker,
    /// A query-string parameter the route does not take.
    UnknownParameter,
    /// The ranker exists but this server cannot serve it (no vectors, no model).
    RankerUnavailable,
    /// The body is larger than the server accepts.
    BodyTooLarge,
    /// The body could not be read.
    InvalidBody,
    /// No such product, or no such route.
    NotFound,
    /// The route does not take that method.
    MethodNotAllowed,
    /// Reloading is off: the server was started without an admin token.
    ReloadDisabled,
    /// The admin token is missing or wrong.
    Unauthorized,
    /// The index could not be reopened; the current one keeps serving.
    ReloadFailed,
    /// Every search slot and queue place is taken: retry after `Retry-After` seconds.
    Overloaded,
    /// The search took longer than the server's time limit, waiting included.
    Timeout,
    /// A fault in the server.
    Internal,
    /// `POST /events`, `GET /engagement`: the server was started without an event log
    /// (`--events FILE`).
    EventsDisabled,
    /// An event is malformed: a missing field, a wrong type, an unknown event type.
    InvalidEvent,
    /// An event names an impression this server never logged.
    UnknownImpression,
    /// An event names a product its impression did not show.
    ProductNotShown,
    /// An `event_id` already names a different event.
    EventIdConflict,
    /// Some events of a batch were refused; the others are stored (see `results`).
    EventsRejected,
    /// The event log could not store the events (nothing of the request was stored), or
    /// cannot be read.
    StoreUnavailable,
    /// The workbench's judgment routes: the server was started without judged queries
    /// (`--queries FILE --qrels FILE`).
    JudgmentsDisabled,
}

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    /// What went wrong and how to put it right, for people.
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
    /// Seconds a client should wait before trying again (`Retry-After`), for 503s.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), retry_after: None }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidRequest, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, message)
    }

    /// Every search slot and queue place is taken: come back shortly.
    pub fn overloaded(message: impl Into<String>) -> Self {
        ApiError {
            retry_after: Some(1),
            ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Overloaded, message)
        }
    }
}

impl From<SearchError> for ApiError {
    fn from(error: SearchError) -> Self {
        match &error {
            SearchError::InvalidRequest(message) => ApiError::bad_request(message.clone()),
            SearchError::RankerUnavailable { .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::RankerUnavailable, error.to_string())
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
        let body = ErrorBody { error: ErrorDetail { code: self.code, message: self.message } };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}
