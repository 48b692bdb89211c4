//! API errors in the OpenAI error shape (`{"error": {"message", "type", "param", "code"}}`), each
//! with the status a client can act on. The one place where the domain's typed errors (turn,
//! provider, recipe, knowledge, sessions, fetches) become HTTP statuses.

use axum::Json;
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::agent::TurnError;
use crate::fetch::FetchError;
use crate::knowledge::KnowledgeError;
use crate::knowledge::parse::ParseError;
use crate::provider::ProviderError;
use crate::recipe::RecipeError;
use crate::sessions::StoreError;

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
    /// The session is busy with another turn (409).
    #[error("{0}")]
    Conflict(String),
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
    /// A budget of the Agent's `spec.limits` is used up (429, with `Retry-After`).
    #[error("{message}")]
    BudgetExhausted {
        /// Which budget, how much was used, when it resets.
        message: String,
        /// Seconds until it resets.
        retry_after_seconds: u64,
    },
    /// The Model scales to zero and is still waking (503, with `Retry-After`).
    #[error("{message}")]
    ModelWaking {
        /// Which Model, how long the request waited, the wake's phase.
        message: String,
        /// Seconds after which trying again is sensible.
        retry_after_seconds: u64,
    },
    /// The turn reached a per-turn limit of the Agent's `spec.limits` (422).
    #[error("{0}")]
    TurnLimit(String),
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
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::TooLarge(_) | Self::TooLargeDocument(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unavailable(_) | Self::ModelWaking { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Overloaded(_) | Self::BudgetExhausted { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::TurnLimit(_) => StatusCode::UNPROCESSABLE_ENTITY,
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
            Self::Unavailable(_) | Self::ModelWaking { .. } => "unavailable_error",
            Self::Unauthorized => "authentication_error",
            Self::NotFound(_) => "not_found_error",
            Self::Conflict(_) => "conflict_error",
            Self::Overloaded(_) => "rate_limit_error",
            Self::BudgetExhausted { .. } => "insufficient_quota",
            Self::TurnLimit(_) => "limit_error",
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
        let mut response = (self.status(), Json(self.body())).into_response();
        if let Self::BudgetExhausted { retry_after_seconds, .. } | Self::ModelWaking { retry_after_seconds, .. } = &self
        {
            response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(*retry_after_seconds));
        }
        response
    }
}

impl From<ProviderError> for ApiError {
    fn from(error: ProviderError) -> Self {
        match error {
            ProviderError::Timeout(after) => Self::ModelTimeout(after.as_secs()),
            ProviderError::Unreachable(why) => Self::ModelUnreachable(why),
            ProviderError::BudgetExhausted { message, retry_after_seconds } => {
                Self::BudgetExhausted { message, retry_after_seconds }
            }
            ProviderError::Waking { message, retry_after_seconds } => {
                Self::ModelWaking { message, retry_after_seconds }
            }
            other => Self::ModelFailed(other.to_string()),
        }
    }
}

impl From<RecipeError> for ApiError {
    fn from(error: RecipeError) -> Self {
        match error {
            RecipeError::Model(error) => error.into(),
            RecipeError::Input(_) => Self::BadRequest(error.to_string()),
            RecipeError::Rerank(_) => Self::ModelFailed(error.to_string()),
            RecipeError::Retrieve(_) | RecipeError::Template(_) => Self::Internal(error.to_string()),
            RecipeError::NoKnowledge => Self::Unavailable(error.to_string()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        Self::Internal(error.to_string())
    }
}

impl From<TurnError> for ApiError {
    fn from(error: TurnError) -> Self {
        match error {
            TurnError::InvalidRequest(why) => Self::BadRequest(why),
            TurnError::Model(error) => error.into(),
            TurnError::Recipe(error) => error.into(),
            TurnError::Session(error) => error.into(),
            TurnError::ToolStepsExhausted(_) => Self::ModelFailed(error.to_string()),
            TurnError::TokensPerTurn(_) => Self::TurnLimit(error.to_string()),
            TurnError::SessionBusy(_) | TurnError::AlreadyDecided { .. } => Self::Conflict(error.to_string()),
            TurnError::ApprovalNotFound(_) => Self::NotFound(error.to_string()),
        }
    }
}

impl From<KnowledgeError> for ApiError {
    fn from(error: KnowledgeError) -> Self {
        match error {
            KnowledgeError::Parse(ParseError::Unsupported(_)) => Self::UnsupportedMediaType(error.to_string()),
            KnowledgeError::Parse(_) => Self::BadRequest(error.to_string()),
            KnowledgeError::TooLarge { .. } => Self::TooLargeDocument(error.to_string()),
            KnowledgeError::Embed(_) | KnowledgeError::Store(_) => Self::Internal(error.to_string()),
        }
    }
}

impl From<FetchError> for ApiError {
    fn from(error: FetchError) -> Self {
        match error {
            FetchError::TooLarge { .. } => Self::TooLargeDocument(error.to_string()),
            FetchError::Client(_) => Self::Internal(error.to_string()),
            _ => Self::BadRequest(error.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_model_timeout_is_a_504_wherever_the_model_was_called() {
        let timeout = ProviderError::Timeout(Duration::from_secs(7));
        let in_summary = TurnError::Recipe(RecipeError::Model(timeout.clone()));
        assert_eq!(ApiError::from(in_summary).status(), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(ApiError::from(TurnError::Model(timeout)).status(), StatusCode::GATEWAY_TIMEOUT);
        let refused = TurnError::Model(ProviderError::Unreachable("connection refused".into()));
        assert_eq!(ApiError::from(refused).status(), StatusCode::BAD_GATEWAY);
    }

    #[test]
    fn a_busy_session_is_a_409_and_a_bad_turn_a_400() {
        assert_eq!(ApiError::from(TurnError::SessionBusy("s".into())).status(), StatusCode::CONFLICT);
        assert_eq!(ApiError::from(TurnError::InvalidRequest("empty".into())).status(), StatusCode::BAD_REQUEST);
    }
}
