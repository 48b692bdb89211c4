//! API errors in the OpenAI error shape (`{"error": {"message", "type", "param", "code"}}`), each
//! with the status a client can act on.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error returned by the agent's API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed (400).
    #[error("{0}")]
    BadRequest(String),
    /// Missing or wrong API key (401).
    #[error("invalid or missing API key; send it as `Authorization: Bearer <key>`")]
    Unauthorized,
    /// Unknown session or route (404).
    #[error("{0}")]
    NotFound(String),
    /// The body exceeds the limit (413).
    #[error("request body exceeds {0} bytes")]
    TooLarge(usize),
    /// A document is too large to ingest (413).
    #[error("{0}")]
    TooLargeDocument(String),
    /// The document type is not supported (415).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// A feature the request needs is not available (503).
    #[error("{0}")]
    Unavailable(String),
    /// Too many requests in flight (429).
    #[error("the agent is at its limit of {0} concurrent requests; retry shortly")]
    Overloaded(usize),
    /// The model answered with an error or garbage (502).
    #[error("the model endpoint failed: {0}")]
    ModelFailed(String),
    /// The model cannot be reached (502).
    #[error("the model endpoint is unreachable: {0}")]
    ModelUnreachable(String),
    /// The model did not answer in time (504).
    #[error("the model endpoint did not answer within {0} s")]
    ModelTimeout(u64),
    /// The agent's own storage failed (500).
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// HTTP status of the error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::TooLarge(_) | Self::TooLargeDocument(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Overloaded(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::ModelFailed(_) | Self::ModelUnreachable(_) => StatusCode::BAD_GATEWAY,
            Self::ModelTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// OpenAI error `type`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::BadRequest(_) | Self::TooLarge(_) | Self::TooLargeDocument(_) | Self::UnsupportedMediaType(_) => {
                "invalid_request_error"
            }
            Self::Unavailable(_) => "unavailable_error",
            Self::Unauthorized => "authentication_error",
            Self::NotFound(_) => "not_found_error",
            Self::Overloaded(_) => "rate_limit_error",
            Self::ModelFailed(_) | Self::ModelUnreachable(_) | Self::ModelTimeout(_) => "upstream_error",
            Self::Internal(_) => "server_error",
        }
    }

    /// The error body.
    pub fn body(&self) -> serde_json::Value {
        json!({"error": {"message": self.to_string(), "type": self.kind(), "param": null, "code": self.status().as_u16().to_string()}})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status(), Json(self.body())).into_response()
    }
}

/// An error and its causes, so "connection refused" is not hidden behind "error sending request".
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
