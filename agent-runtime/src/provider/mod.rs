//! Model providers: where completions come from. Handlers and the agent loop see only the
//! [`ModelProvider`] trait, so an in-process model can be added without touching them.

pub mod in_process;
pub mod metered;
pub mod openai;
pub mod prompt;
pub mod traced;
pub mod wake;

use std::pin::Pin;
use std::time::Duration;

use futures::Stream;
use futures::future::BoxFuture;
use serde_json::{Map, Value};

use crate::openai::{ChatChunk, Message, ToolSpec};

/// A stream of chunks from the model.
pub type ChunkStream = Pin<Box<dyn Stream<Item = Result<ChatChunk, ProviderError>> + Send>>;

/// One call to the model.
#[derive(Clone, Debug, Default)]
pub struct ModelRequest {
    /// The conversation, system prompt first.
    pub messages: Vec<Message>,
    /// Tools offered; empty offers none.
    pub tools: Vec<ToolSpec>,
    /// Sampling parameters (`temperature`, `max_tokens`, ...).
    pub parameters: Map<String, Value>,
    /// The answer is wanted whole, not as it is generated: the provider may ask for it in one
    /// piece (one chunk), which costs less than a stream when nobody reads the pieces.
    pub whole: bool,
}

/// A source of completions.
pub trait ModelProvider: Send + Sync {
    /// Streams the model's answer to `request` (a single chunk when it asks for the answer
    /// whole). Fails before the first chunk when the model cannot be reached or refuses it.
    fn stream(&self, request: ModelRequest) -> BoxFuture<'_, Result<ChunkStream, ProviderError>>;

    /// Checks the model answers at all (`GET /models`); used for readiness.
    fn check(&self) -> BoxFuture<'_, Result<(), ProviderError>>;

    /// Whether the model can call tools.
    fn supports_tools(&self) -> bool;
}

/// Why a model call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The endpoint answered with an HTTP error.
    #[error("HTTP {status}: {message}")]
    Status {
        /// HTTP status.
        status: u16,
        /// Its message.
        message: String,
    },
    /// The endpoint could not be reached.
    #[error("{0}")]
    Unreachable(String),
    /// No answer in time.
    #[error("no answer within {} s", .0.as_secs())]
    Timeout(Duration),
    /// The answer could not be understood.
    #[error("malformed answer: {0}")]
    Malformed(String),
    /// A budget of the Agent's `spec.limits` is used up; nothing was sent to the model.
    #[error("{message}")]
    BudgetExhausted {
        /// Which budget, how much was used, when it resets.
        message: String,
        /// Seconds until it resets.
        retry_after_seconds: u64,
    },
    /// The Model scales to zero and did not wake within its `wakeTimeout`.
    #[error("{message}")]
    Waking {
        /// Which Model, how long the call waited, the wake's phase.
        message: String,
        /// Seconds after which trying again is sensible.
        retry_after_seconds: u64,
    },
}

impl ProviderError {
    /// A low-cardinality name of the failure (a trace's `error.type`): the HTTP status, or the
    /// kind of failure.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Status { status: 400..=499, .. } => "http_4xx",
            Self::Status { .. } => "http_5xx",
            Self::Unreachable(_) => "unreachable",
            Self::Timeout(_) => "timeout",
            Self::Malformed(_) => "malformed_answer",
            Self::BudgetExhausted { .. } => "budget_exhausted",
            Self::Waking { .. } => "model_waking",
        }
    }

    /// Whether trying again may help (rate limits, server errors, connection failures).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Status { status, .. } => *status == 429 || *status >= 500,
            Self::Unreachable(_) => true,
            // A wake already waited its whole bound inside the call.
            Self::Timeout(_) | Self::Malformed(_) | Self::BudgetExhausted { .. } | Self::Waking { .. } => false,
        }
    }
}
