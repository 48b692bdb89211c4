//! Why a turn failed, with the failing layer's own error kept whole: an edge (HTTP, A2A, the
//! task runner) decides what each kind means to its client.

use crate::provider::ProviderError;
use crate::recipe::RecipeError;
use crate::sessions::StoreError;

/// Why a turn failed.
#[derive(Debug, thiserror::Error)]
pub enum TurnError {
    /// The request cannot be a turn (no messages, ends with the assistant's...).
    #[error("{0}")]
    InvalidRequest(String),
    /// A model call failed: the answer, a history summary, or a recipe's intermediate step.
    #[error(transparent)]
    Model(#[from] ProviderError),
    /// The recipe failed (retrieval, rerank, templates, or one of its model calls).
    #[error(transparent)]
    Recipe(#[from] RecipeError),
    /// The session could not be read or committed.
    #[error(transparent)]
    Session(#[from] StoreError),
    /// The model asked for tools at every step it was allowed.
    #[error("the model kept calling tools after {0} tool steps")]
    ToolStepsExhausted(usize),
    /// The turn used `spec.limits.maxTokensPerTurn` before a model call.
    #[error("the turn used {0} tokens, spec.limits.maxTokensPerTurn; it stops before another model call")]
    TokensPerTurn(u64),
    /// Another turn holds the session and the agent refuses to queue (`--busy-session reject`).
    #[error("session {0} is busy with another turn; retry when it has answered")]
    SessionBusy(String),
    /// There is no approval with this id.
    #[error("there is no approval {0}")]
    ApprovalNotFound(String),
    /// The approval was decided already.
    #[error("approval {id} was already {state}")]
    AlreadyDecided {
        /// The approval.
        id: String,
        /// `approved` or `denied`, with by whom.
        state: String,
    },
}

impl TurnError {
    /// A low-cardinality name of the failure (a trace's `error.type`).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "invalid_request",
            Self::Model(error) => error.kind(),
            Self::Recipe(_) => "recipe",
            Self::Session(_) => "session",
            Self::ToolStepsExhausted(_) => "tool_steps_exhausted",
            Self::TokensPerTurn(_) => "tokens_per_turn",
            Self::SessionBusy(_) => "session_busy",
            Self::ApprovalNotFound(_) => "approval_not_found",
            Self::AlreadyDecided { .. } => "already_decided",
        }
    }
}
