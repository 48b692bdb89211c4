//! `Summarize` recipes: the user's text in one prompt (`Stuff`), or split into parts that fit
//! the context and reduced by `MapReduce` (summarize each part, then combine) or `Refine`
//! (summarize the first part, then improve the summary with each next one). The intermediate
//! model calls run here; the last prompt is returned so the answer streams like any other.

use agent_crds::recipe::SummaryStrategy;
use agent_crds::templates::{TemplateField, render};
use futures::StreamExt;
use serde_json::{Map, Value, json};

use super::{Pipeline, RecipeError};
use crate::knowledge::chunk::{ChunkSize, EstimatedTokens, TokenCounter, chunk};
use crate::openai::{Message, Role};
use crate::provider::{ModelProvider, ModelRequest};

/// The prompt used for a part (or the whole text) when the recipe sets none.
pub const DEFAULT_SUMMARY_PROMPT: &str = "Summarize the following text.\n\n{{text}}";

/// The final prompt for summarizing `text`, after any intermediate model calls; also returns
/// how many model calls were made on the way.
pub async fn final_prompt(
    pipeline: &Pipeline,
    provider: &dyn ModelProvider,
    parameters: &Map<String, Value>,
    system: Option<&str>,
    text: &str,
    part_tokens: usize,
) -> Result<(String, usize), RecipeError> {
    let generate = &pipeline.config.spec.generate;
    let params = pipeline.params();
    let whole = |field, template: Option<&str>| {
        render(field, template.unwrap_or(DEFAULT_SUMMARY_PROMPT), &json!({ "params": params, "text": text }))
    };
    let tokens = EstimatedTokens.count(text);
    if tokens <= part_tokens {
        // One part: the prompt template (or the map template) over the whole text.
        let (field, template) = match generate.prompt_template.as_deref() {
            Some(template) => (TemplateField::Prompt, Some(template)),
            None => (TemplateField::Map, generate.map_template.as_deref()),
        };
        return Ok((whole(field, template)?, 0));
    }
    let parts = chunk(text, ChunkSize { size: part_tokens, overlap: 0 }, &EstimatedTokens);
    let call = |prompt: String| complete(provider, parameters, system, prompt);
    match generate.strategy {
        SummaryStrategy::Stuff => Err(RecipeError::Input(format!(
            "the text has about {tokens} tokens; the Stuff strategy takes at most {part_tokens} \
             (use MapReduce or Refine for long input)"
        ))),
        SummaryStrategy::MapReduce => {
            let map = generate.map_template.as_deref().unwrap_or(DEFAULT_SUMMARY_PROMPT);
            let mut summaries = Vec::with_capacity(parts.len());
            for part in &parts {
                let prompt = render(TemplateField::Map, map, &json!({ "params": params, "text": part }))?;
                summaries.push(call(prompt).await?);
            }
            let combine = generate
                .combine_template
                .as_deref()
                .ok_or_else(|| RecipeError::Input("the MapReduce strategy needs generate.combineTemplate".into()))?;
            let prompt = render(TemplateField::Combine, combine, &json!({ "params": params, "summaries": summaries }))?;
            Ok((prompt, parts.len()))
        }
        SummaryStrategy::Refine => {
            let refine = generate
                .refine_template
                .as_deref()
                .ok_or_else(|| RecipeError::Input("the Refine strategy needs generate.refineTemplate".into()))?;
            let first = generate.map_template.as_deref().or(generate.prompt_template.as_deref());
            let first_field = if generate.map_template.is_some() { TemplateField::Map } else { TemplateField::Prompt };
            let opening = render(
                first_field,
                first.unwrap_or(DEFAULT_SUMMARY_PROMPT),
                &json!({ "params": params, "text": parts[0] }),
            )?;
            let mut summary = call(opening).await?;
            let mut calls = 1;
            for part in &parts[1..parts.len() - 1] {
                let prompt = render(
                    TemplateField::Refine,
                    refine,
                    &json!({ "params": params, "summary": summary, "text": part }),
                )?;
                summary = call(prompt).await?;
                calls += 1;
            }
            let last = &parts[parts.len() - 1];
            let prompt =
                render(TemplateField::Refine, refine, &json!({ "params": params, "summary": summary, "text": last }))?;
            Ok((prompt, calls))
        }
    }
}

/// One whole (non-streamed to the client) model answer to `prompt`.
async fn complete(
    provider: &dyn ModelProvider,
    parameters: &Map<String, Value>,
    system: Option<&str>,
    prompt: String,
) -> Result<String, RecipeError> {
    let mut messages = Vec::new();
    if let Some(system) = system {
        messages.push(Message::text(Role::System, system.to_owned()));
    }
    messages.push(Message::text(Role::User, prompt));
    let request = ModelRequest { messages, tools: Vec::new(), parameters: parameters.clone(), whole: false };
    let mut stream = provider.stream(request).await?;
    let mut text = String::new();
    while let Some(chunk) = stream.next().await {
        for choice in chunk?.choices {
            text.push_str(choice.delta.content.as_deref().unwrap_or_default());
        }
    }
    Ok(text.trim().to_owned())
}
