//! What the agent's recipe adds to a turn: system text, the prompt that replaces the user's
//! question, text appended to the answer, citations; `Retrieve` recipes answer without the
//! model and `Summarize` recipes reduce long input with model calls of their own first.

use agent_crds::recipe::PipelineMode;
use serde_json::{Map, Value};

use crate::openai::{Citation, Message, Role};
use crate::provider::ModelProvider;
use crate::recipe::{Pipeline, RecipeError, summarize};

/// What the recipe adds to a turn.
#[derive(Default)]
pub struct RecipeTurn {
    /// Added to the system prompt.
    pub system: Option<String>,
    /// Replaces the newest user message sent to the model.
    pub prompt: Option<String>,
    /// Appended to the answer.
    pub appendix: Option<String>,
    /// Chunks the answer was given.
    pub citations: Vec<Citation>,
    /// The prompt is the answer; no model call (`Retrieve`).
    pub direct: bool,
    /// No tools are offered (summaries).
    pub without_tools: bool,
}

/// Runs `pipeline` for a turn whose newest messages are `new_messages`.
pub async fn recipe_turn(
    pipeline: &Pipeline,
    provider: &dyn ModelProvider,
    new_messages: &[Message],
    parameters: &Map<String, Value>,
    context_budget: usize,
) -> Result<RecipeTurn, RecipeError> {
    let question = new_messages.iter().rev().find(|m| m.role == Role::User).map(Message::content_str);
    let Some(question) = question.filter(|q| !q.trim().is_empty()) else {
        return Ok(RecipeTurn { system: pipeline.system(), ..RecipeTurn::default() });
    };
    match pipeline.mode() {
        PipelineMode::Answer | PipelineMode::Retrieve => {
            let plan = pipeline.plan(question).await?;
            Ok(RecipeTurn {
                system: plan.system,
                prompt: Some(plan.prompt),
                appendix: plan.appendix,
                citations: plan.citations,
                direct: pipeline.mode() == PipelineMode::Retrieve,
                without_tools: false,
            })
        }
        PipelineMode::Summarize => {
            let system = pipeline.system();
            let part_tokens = (context_budget / 2).max(256);
            let (prompt, calls) =
                summarize::final_prompt(pipeline, provider, parameters, system.as_deref(), question, part_tokens)
                    .await?;
            tracing::info!(calls, "summary parts reduced");
            Ok(RecipeTurn { system, prompt: Some(prompt), without_tools: true, ..RecipeTurn::default() })
        }
        PipelineMode::Agent => Ok(RecipeTurn { system: pipeline.system(), ..RecipeTurn::default() }),
    }
}
