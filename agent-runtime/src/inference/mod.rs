//! The in-process model: GGUF models run by llama.cpp (through `llama-cpp-2`) inside this
//! process, on CPU. One engine thread owns the llama.cpp context and serves several sequences
//! at once by continuous batching: every step decodes one token of each running sequence and a
//! chunk of each new prompt in a single batch, so concurrent sessions share the cores instead
//! of queueing behind a lock. Requests beyond the sequences wait in a queue. A sequence keeps
//! its KV cache after it finishes, and the next prompt sharing its prefix (the same session's
//! next turn) reuses it.
//!
//! Used by `agent-runtime run` when the agent's Model is `serve.engine: runtime`
//! ([`crate::provider::in_process`]) and by `agent-runtime serve-model` (the cluster's CPU
//! model server). Nothing here knows HTTP.

mod engine;
pub mod metrics;
mod prompt;
pub mod sampling;
mod text;

use std::path::PathBuf;

pub use engine::{Engine, Event, Finish, Generation};
pub use prompt::{ChatTurn, Prompt};
pub use sampling::{InvalidParameter, Sampling};

/// How the engine loads and runs its model.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// The GGUF file.
    pub model_path: PathBuf,
    /// Tokens one sequence holds (prompt and answer); at most the model's training context.
    pub context_length: u32,
    /// Sequences generated at once; more requests wait.
    pub sequences: u32,
    /// CPU threads of the matrix work.
    pub threads: u32,
    /// Most tokens decoded in one step (prompt chunks and running sequences together).
    pub batch_size: u32,
    /// Chat template instead of the GGUF's own: a built-in name of llama.cpp (`chatml`,
    /// `gemma`, `llama3`, ...) or a template text. `None` uses the GGUF's, if it has one.
    pub chat_template: Option<String>,
}

impl EngineOptions {
    /// Options for `model_path` with the defaults: 4096 tokens per sequence, 4 sequences, one
    /// thread per core, steps of 512 tokens.
    pub fn new(model_path: impl Into<PathBuf>) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        Self {
            model_path: model_path.into(),
            context_length: 4096,
            sequences: 4,
            threads: u32::try_from(cores).unwrap_or(1),
            batch_size: 512,
            chat_template: None,
        }
    }
}

/// Why a generation could not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InferenceError {
    /// The model file could not be loaded.
    #[error("cannot load the model {path}: {reason}")]
    Load {
        /// The GGUF file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The prompt leaves no room for an answer.
    #[error(
        "the prompt is {prompt_tokens} tokens, but a sequence of this model holds {context_length} tokens \
         (prompt and answer together): shorten the conversation or serve a longer context"
    )]
    PromptTooLong {
        /// Tokens of the prompt.
        prompt_tokens: usize,
        /// Tokens a sequence holds.
        context_length: u32,
    },
    /// A request field cannot be honoured.
    #[error(transparent)]
    InvalidParameter(#[from] InvalidParameter),
    /// A chat prompt for a model without a chat template.
    #[error("the model's GGUF has no chat template (a base model): set the Model's promptFormat to Completion")]
    NoChatTemplate,
    /// The chat template could not be applied.
    #[error("cannot apply the model's chat template: {0}")]
    Template(String),
    /// llama.cpp failed while generating.
    #[error("the model failed while generating: {0}")]
    Decode(String),
    /// The engine thread is gone.
    #[error("the model engine has stopped")]
    Stopped,
}

impl InferenceError {
    /// Whether the request itself is at fault (its prompt or parameters), not the engine: a
    /// client error, the same for the agent's model calls and for `serve-model`'s clients.
    pub fn is_request_fault(&self) -> bool {
        match self {
            Self::PromptTooLong { .. } | Self::InvalidParameter(_) | Self::NoChatTemplate | Self::Template(_) => true,
            Self::Load { .. } | Self::Decode(_) | Self::Stopped => false,
        }
    }
}
