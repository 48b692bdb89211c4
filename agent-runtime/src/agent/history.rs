//! The session's history within the context budget: when history plus the new turn exceed it,
//! the oldest turns are folded into a summary the model writes, never silently cut.

use futures::StreamExt;
use serde_json::{Map, json};
use tracing::Instrument as _;

use crate::budget::{messages_to_fold, summary_request};
use crate::provider::{ModelProvider, ModelRequest, ProviderError};
use crate::sessions::Session;

/// Folds the oldest turns of `session` into its summary when they do not fit in `budget` tokens.
pub async fn fold_history(
    provider: &dyn ModelProvider,
    session: &mut Session,
    budget: usize,
) -> Result<(), ProviderError> {
    let fold = messages_to_fold(&session.messages, budget);
    if fold == 0 {
        return Ok(());
    }
    let span = crate::traces::fold_history(&session.id);
    span.record("agent.history.folded_messages", crate::traces::int(fold));
    summarize(provider, session, fold).instrument(span).await
}

/// Replaces the oldest `fold` messages of `session` with the model's summary of them.
async fn summarize(provider: &dyn ModelProvider, session: &mut Session, fold: usize) -> Result<(), ProviderError> {
    let request = ModelRequest {
        messages: summary_request(session.summary.as_deref(), &session.messages[..fold]),
        tools: Vec::new(),
        parameters: Map::from_iter([("max_tokens".to_owned(), json!(256))]),
        whole: false,
    };
    let mut stream = provider.stream(request).await?;
    let mut summary = String::new();
    while let Some(chunk) = stream.next().await {
        for choice in chunk?.choices {
            summary.push_str(choice.delta.content.as_deref().unwrap_or_default());
        }
    }
    tracing::info!(session = %session.id, folded = fold, "summarised older turns");
    session.summary = Some(summary.trim().to_owned());
    session.messages.drain(..fold);
    Ok(())
}
