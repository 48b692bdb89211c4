//! A provider that counts what its calls use: wraps the agent's model provider so every call
//! (turns, summaries, recipe steps, local children) is counted in the [`Ledger`] under the
//! model's name, from the usage the model reports with its answer, and refused before it is
//! sent while a budget of the Agent's `spec.limits` is used up.

use std::sync::Arc;

use futures::StreamExt;
use futures::future::BoxFuture;

use super::{ChunkStream, ModelProvider, ModelRequest, ProviderError};
use crate::usage::Ledger;

/// The agent's provider, counted.
pub struct Metered {
    inner: Arc<dyn ModelProvider>,
    model: String,
    ledger: Arc<Ledger>,
}

impl Metered {
    /// Counts the calls to `inner` as calls to `model`.
    pub fn new(inner: Arc<dyn ModelProvider>, model: String, ledger: Arc<Ledger>) -> Self {
        Self { inner, model, ledger }
    }
}

impl ModelProvider for Metered {
    fn stream(&self, request: ModelRequest) -> BoxFuture<'_, Result<ChunkStream, ProviderError>> {
        Box::pin(async move {
            if let Err(exhausted) = self.ledger.admit() {
                let retry_after_seconds = exhausted.retry_after(self.ledger.now());
                return Err(ProviderError::BudgetExhausted { message: exhausted.to_string(), retry_after_seconds });
            }
            let chunks = self.inner.stream(request).await?;
            let ledger = self.ledger.clone();
            let model = self.model.clone();
            // The usage comes with the last chunk (or the whole answer); a stream dropped before
            // it counts nothing, as the model reported nothing.
            let counted = chunks.inspect(move |chunk| {
                if let Ok(chunk) = chunk
                    && let Some(usage) = &chunk.usage
                {
                    ledger.record(&model, usage.prompt_tokens, usage.completion_tokens);
                }
            });
            Ok(Box::pin(counted) as ChunkStream)
        })
    }

    fn check(&self) -> BoxFuture<'_, Result<(), ProviderError>> {
        self.inner.check()
    }

    fn supports_tools(&self) -> bool {
        self.inner.supports_tools()
    }
}
