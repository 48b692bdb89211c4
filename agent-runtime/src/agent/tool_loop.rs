//! The tool loop: call the model, stream its text to the turn's listener, run the tools it asks
//! for and call it again with their results, until it answers without tools or the step bound
//! is reached. A call to a tool that needs a human approval stops the loop with its whole
//! state ([`LoopState`], serializable), which [`ToolLoop::resume`] continues once decided.

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::mpsc;
use tracing::Instrument as _;

use super::approval::Decision;
use super::{Event, TurnError};
use crate::metrics::Metrics;
use crate::openai::{Message, Role, ToolCall, ToolCallDelta, ToolSpec, Usage};
use crate::provider::{ModelProvider, ModelRequest};
use crate::tools::{Outcome, ToolRegistry};
use crate::traces;

/// The model's final answer.
#[derive(Debug, Default)]
pub struct Answer {
    /// Its text.
    pub text: String,
    /// Why the model stopped.
    pub finish_reason: Option<String>,
    /// Tokens of every model call of the loop.
    pub usage: Usage,
}

/// Why the loop stopped without an answer.
#[derive(Debug)]
pub enum Stopped {
    /// A model call failed or the model never stopped asking for tools.
    Failed(TurnError),
    /// Nobody listens to the turn any more.
    Abandoned,
    /// The next call (`state.calls[0]`) waits for a human decision.
    AwaitingApproval(LoopState),
}

/// Where the loop is: what the model has seen, and the calls it asked for that have not run.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct LoopState {
    /// The conversation so far, with the tool results given back.
    pub messages: Vec<Message>,
    /// Model calls made so far.
    pub step: usize,
    /// Tokens of those calls.
    pub usage: Usage,
    /// Calls the model asked for that have not run yet, in order.
    pub calls: Vec<ToolCall>,
    /// Tool calls run so far.
    #[serde(default)]
    pub tool_calls: u32,
}

/// What the loop works with.
pub struct ToolLoop<'a> {
    /// The model.
    pub provider: &'a dyn ModelProvider,
    /// The tools it may call.
    pub tools: &'a ToolRegistry,
    /// Tool calls are counted here.
    pub metrics: &'a Metrics,
    /// Tools offered (empty: none).
    pub specs: Vec<ToolSpec>,
    /// Model calls that may request tools before the model must answer.
    pub max_tool_steps: usize,
    /// Tokens the turn may use before another model call (`spec.limits.maxTokensPerTurn`).
    pub max_tokens: Option<u64>,
    /// Tool calls the turn may run (`spec.limits.maxToolCallsPerTurn`); later ones are not run.
    pub max_tool_calls: Option<u32>,
    /// Sampling parameters of every call.
    pub parameters: Map<String, Value>,
    /// Whether the model is asked for whole answers (nobody reads the pieces as they come).
    pub whole: bool,
}

impl ToolLoop<'_> {
    /// Runs the loop over `messages`, sending each piece of text to `events` as it arrives.
    pub async fn run(&self, messages: Vec<Message>, events: &mpsc::Sender<Event>) -> Result<Answer, Stopped> {
        self.resume(LoopState { messages, ..LoopState::default() }, None, events).await
    }

    /// Continues from `state`; `decision` is the human's about `state.calls[0]`, when it waits
    /// for one.
    pub async fn resume(
        &self,
        mut state: LoopState,
        mut decision: Option<Decision>,
        events: &mpsc::Sender<Event>,
    ) -> Result<Answer, Stopped> {
        loop {
            while let Some(call) = state.calls.first().cloned() {
                let over_budget = self.max_tool_calls.filter(|max| state.tool_calls >= *max);
                let (text, ran) = if let Some(max) = over_budget {
                    (
                        format!(
                            "not run: this turn already made {max} tool calls, spec.limits.maxToolCallsPerTurn; \
                             answer with what you have"
                        ),
                        false,
                    )
                } else if self.tools.requires_approval(&call.function.name) {
                    match decision.take() {
                        Some(decision) if decision.approved => (self.call(&call, events).await?, true),
                        Some(decision) => (decision.refusal(), false),
                        None => return Err(Stopped::AwaitingApproval(state)),
                    }
                } else {
                    (self.call(&call, events).await?, true)
                };
                state.tool_calls += u32::from(ran);
                state.calls.remove(0);
                state.messages.push(Message {
                    role: Role::Tool,
                    content: Some(text),
                    tool_calls: Vec::new(),
                    tool_call_id: Some(call.id),
                    name: None,
                });
            }
            if let Some(max) = self.max_tokens.filter(|max| state.usage.total_tokens >= *max) {
                return Err(Stopped::Failed(TurnError::TokensPerTurn(max)));
            }
            let tools_left = self.max_tool_calls.is_none_or(|max| state.tool_calls < max);
            let tools = if state.step < self.max_tool_steps && tools_left { self.specs.clone() } else { Vec::new() };
            let request = ModelRequest {
                messages: state.messages.clone(),
                tools,
                parameters: self.parameters.clone(),
                whole: self.whole,
            };
            let (text, calls, finish_reason) = self.call_model(request, &mut state.usage, events).await?;
            if calls.is_empty() {
                return Ok(Answer { text, finish_reason, usage: state.usage });
            }
            if state.step == self.max_tool_steps {
                return Err(Stopped::Failed(TurnError::ToolStepsExhausted(self.max_tool_steps)));
            }
            state.step += 1;
            state.messages.push(Message {
                role: Role::Assistant,
                content: Some(text).filter(|t| !t.is_empty()),
                tool_calls: calls.clone(),
                tool_call_id: None,
                name: None,
            });
            state.calls = calls;
        }
    }

    /// Runs one call; what it returns is what the model reads.
    async fn call(&self, call: &ToolCall, events: &mpsc::Sender<Event>) -> Result<String, Stopped> {
        // A turn nobody listens to any more stops here; dropping the call cancels it (an MCP
        // server is sent `notifications/cancelled`).
        let name = &call.function.name;
        let span = traces::execute_tool(name, &call.id, self.tools.tool_type(name));
        traces::record_content(&span, "gen_ai.tool.call.arguments", || call.function.arguments.clone());
        let result = tokio::select! {
            result = self.tools.call(name, &call.function.arguments).instrument(span.clone()) => result,
            () = events.closed() => return Err(Stopped::Abandoned),
        };
        if result.outcome != Outcome::Ok {
            traces::record_error(&span, result.outcome.as_str(), "the tool call failed; its result says why");
        }
        traces::record_content(&span, "gen_ai.tool.call.result", || result.text.clone());
        self.metrics.tool_call(result.tool, result.outcome.as_str());
        tracing::info!(tool = %call.function.name, outcome = result.outcome.as_str(), "tool call");
        Ok(result.text)
    }

    /// One model call: its text (streamed to `events`), the tool calls it asks for, its finish reason.
    async fn call_model(
        &self,
        request: ModelRequest,
        usage: &mut Usage,
        events: &mpsc::Sender<Event>,
    ) -> Result<(String, Vec<ToolCall>, Option<String>), Stopped> {
        let failed = |error| Stopped::Failed(TurnError::Model(error));
        let mut stream = self.provider.stream(request).await.map_err(failed)?;
        let mut text = String::new();
        let mut calls: Vec<ToolCall> = Vec::new();
        let mut finish_reason = None;
        while let Some(item) = stream.next().await {
            let chunk = item.map_err(failed)?;
            if let Some(chunk_usage) = chunk.usage {
                usage.add(chunk_usage);
            }
            for choice in chunk.choices {
                if let Some(content) = choice.delta.content.filter(|c| !c.is_empty()) {
                    text.push_str(&content);
                    events.send(Event::Content(content)).await.map_err(|_| Stopped::Abandoned)?;
                }
                merge_tool_calls(&mut calls, choice.delta.tool_calls);
                finish_reason = choice.finish_reason.or(finish_reason);
            }
        }
        Ok((text, calls, finish_reason))
    }
}

/// Merges streamed tool-call fragments into whole calls, by index.
fn merge_tool_calls(calls: &mut Vec<ToolCall>, deltas: Vec<ToolCallDelta>) {
    for delta in deltas {
        while calls.len() <= delta.index {
            let id = format!("call_{}", calls.len());
            calls.push(ToolCall { id, kind: "function".into(), ..ToolCall::default() });
        }
        let call = &mut calls[delta.index];
        if let Some(id) = delta.id.filter(|id| !id.is_empty()) {
            call.id = id;
        }
        if let Some(function) = delta.function {
            call.function.name.push_str(function.name.as_deref().unwrap_or_default());
            call.function.arguments.push_str(function.arguments.as_deref().unwrap_or_default());
        }
    }
}
