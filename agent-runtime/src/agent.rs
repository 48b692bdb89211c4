//! The agent loop behind the chat API: persona and instructions first, then the session's
//! history (older turns folded into a model-written summary past the context budget), then the
//! new turn; the model's tool calls run until it answers or the step bound is reached. The
//! session is committed before the client sees the end of the answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use agent_crds::RuntimeConfig;
use agent_crds::runtime_config::TextSource;
use futures::StreamExt;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use crate::budget::{estimate_tokens, messages_to_fold, summary_request};
use crate::error::ApiError;
use crate::memory::Memory;
use crate::metrics::Metrics;
use crate::openai::{ChatRequest, Citation, Message, Role, ToolCall, ToolCallDelta, Usage};
use crate::provider::{ModelProvider, ModelRequest};
use crate::recipe::{Pipeline, RecipeError, summarize};
use crate::sessions::{Session, SessionStore};
use crate::tools::ToolRegistry;
use agent_crds::recipe::PipelineMode;

/// What a turn produces, in order: content pieces, then `Done` or `Error`.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A piece of the answer.
    Content(String),
    /// The answer is complete (and, in a session, committed).
    Done {
        /// Why the model stopped.
        finish_reason: String,
        /// Tokens used by every model call of the turn.
        usage: Usage,
        /// The knowledge chunks the answer was given (recipes).
        citations: Vec<Citation>,
    },
    /// The turn failed.
    Error(ApiError),
}

/// Bounds of the agent loop.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Model calls that may request tools before the model must answer.
    pub max_tool_steps: usize,
    /// Tokens of history sent to the model.
    pub context_budget: usize,
}

/// Tokens of recalled memories added to a turn.
const MEMORY_BUDGET: usize = 300;

/// Request fields the agent controls itself; a client's values are ignored.
const RESERVED: [&str; 8] = ["model", "messages", "stream", "stream_options", "tools", "tool_choice", "functions", "n"];

/// A running agent.
pub struct Agent {
    /// The configuration it serves.
    pub config: Arc<RuntimeConfig>,
    provider: Arc<dyn ModelProvider>,
    tools: ToolRegistry,
    sessions: SessionStore,
    metrics: Arc<Metrics>,
    limits: Limits,
    system_prompt: String,
    model_reached: AtomicBool,
    memory: Option<Arc<Memory>>,
    pipeline: Option<Arc<Pipeline>>,
}

/// What the recipe adds to a turn.
#[derive(Default)]
struct RecipeTurn {
    /// Added to the system prompt.
    system: Option<String>,
    /// Replaces the newest user message sent to the model.
    prompt: Option<String>,
    /// Appended to the answer.
    appendix: Option<String>,
    /// Chunks the answer was given.
    citations: Vec<Citation>,
    /// The prompt is the answer; no model call (`Retrieve`).
    direct: bool,
    /// No tools are offered (summaries).
    without_tools: bool,
}

impl From<RecipeError> for ApiError {
    fn from(error: RecipeError) -> Self {
        match error {
            RecipeError::Input(_) => ApiError::BadRequest(error.to_string()),
            RecipeError::Model(_) | RecipeError::Rerank(_) => ApiError::ModelFailed(error.to_string()),
            RecipeError::Retrieve(_) | RecipeError::Template(_) => ApiError::Internal(error.to_string()),
            RecipeError::NoKnowledge => ApiError::Unavailable(error.to_string()),
        }
    }
}

impl Agent {
    /// An agent; `system_prompt_file_text` is the content of the persona's prompt file, if it has one.
    pub fn new(
        config: Arc<RuntimeConfig>,
        provider: Arc<dyn ModelProvider>,
        tools: ToolRegistry,
        sessions: SessionStore,
        metrics: Arc<Metrics>,
        limits: Limits,
        memory: Option<Arc<Memory>>,
    ) -> std::io::Result<Self> {
        let mut parts = Vec::new();
        match &config.persona.system_prompt {
            Some(TextSource::Inline(text)) => parts.push(text.clone()),
            Some(TextSource::File(path)) => parts.push(std::fs::read_to_string(path)?.trim().to_owned()),
            None => {}
        }
        if let Some(instructions) = &config.task.instructions {
            parts.push(instructions.clone());
        }
        Ok(Self {
            system_prompt: parts.join("\n\n"),
            config,
            provider,
            tools,
            sessions,
            metrics,
            limits,
            model_reached: AtomicBool::new(false),
            memory,
            pipeline: None,
        })
    }

    /// This agent running `pipeline` (its RAG recipe) on every turn.
    #[must_use]
    pub fn with_pipeline(mut self, pipeline: Arc<Pipeline>) -> Self {
        self.pipeline = Some(pipeline);
        self
    }

    /// The agent's recipe, when it has one.
    pub fn pipeline(&self) -> Option<&Arc<Pipeline>> {
        self.pipeline.as_ref()
    }

    /// What the recipe adds to a turn whose newest messages are `new_messages`.
    async fn recipe_turn(
        &self,
        new_messages: &[Message],
        parameters: &Map<String, Value>,
    ) -> Result<RecipeTurn, ApiError> {
        let Some(pipeline) = &self.pipeline else { return Ok(RecipeTurn::default()) };
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
                let part_tokens = (self.limits.context_budget / 2).max(256);
                let (prompt, calls) = summarize::final_prompt(
                    pipeline,
                    self.provider.as_ref(),
                    parameters,
                    system.as_deref(),
                    question,
                    part_tokens,
                )
                .await?;
                tracing::info!(calls, "summary parts reduced");
                Ok(RecipeTurn { system, prompt: Some(prompt), without_tools: true, ..RecipeTurn::default() })
            }
            PipelineMode::Agent => Ok(RecipeTurn { system: pipeline.system(), ..RecipeTurn::default() }),
        }
    }

    /// The session store.
    pub fn sessions(&self) -> &SessionStore {
        &self.sessions
    }

    /// The agent's long-term memory, when enabled.
    pub fn memory(&self) -> Option<&Arc<Memory>> {
        self.memory.as_ref()
    }

    /// Whether the model has answered at least once.
    pub fn model_reached(&self) -> bool {
        self.model_reached.load(Ordering::Relaxed)
    }

    /// Asks the model whether it is there; remembers success.
    pub async fn check_model(&self) -> Result<(), crate::provider::ProviderError> {
        self.provider.check().await?;
        self.model_reached.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Starts a turn; events arrive on the returned channel. Fails early for a bad request, an
    /// unreadable session, or a failed summary.
    pub async fn start_turn(
        self: &Arc<Self>,
        request: ChatRequest,
        session_id: Option<String>,
    ) -> Result<mpsc::Receiver<Event>, ApiError> {
        if request.messages.is_empty() {
            return Err(ApiError::BadRequest("messages must not be empty".into()));
        }
        if request.messages.last().is_some_and(|m| m.role == Role::Assistant) {
            return Err(ApiError::BadRequest("the last message must not be from the assistant".into()));
        }
        let mut session = match &session_id {
            Some(id) => Some(
                self.sessions
                    .get(id)
                    .await
                    .map_err(|e| ApiError::Internal(e.to_string()))?
                    .unwrap_or_else(|| Session { id: id.clone(), ..Session::default() }),
            ),
            None => None,
        };
        let mut new_messages = request.messages.clone();
        if let Some(session) = &mut session {
            // Clients that resend the whole conversation are not given it twice.
            let stored = &session.messages;
            if !stored.is_empty() && new_messages.len() > stored.len() && new_messages[..stored.len()] == stored[..] {
                new_messages.drain(..stored.len());
            }
            self.fold_history(session, estimate_tokens(&new_messages)).await?;
        }
        let parameters = self.parameters(&request.extra);
        let recipe = self.recipe_turn(&new_messages, &parameters).await?;
        let mut messages = Vec::new();
        let mut system = self.system_prompt.clone();
        if let Some(addition) = &recipe.system {
            if !system.is_empty() {
                system.push_str("\n\n");
            }
            system.push_str(addition);
        }
        if let Some(summary) = session.as_ref().and_then(|s| s.summary.as_ref()) {
            if !system.is_empty() {
                system.push_str("\n\n");
            }
            system.push_str("Summary of the earlier conversation: ");
            system.push_str(summary);
        }
        let recalled = self.recall(&new_messages, session.as_ref().map(|s| s.id.as_str())).await;
        if !recalled.is_empty() {
            if !system.is_empty() {
                system.push_str("\n\n");
            }
            system.push_str("Relevant memories:");
            for memory in recalled {
                system.push_str("\n- ");
                system.push_str(&memory);
            }
        }
        if !system.is_empty() {
            messages.push(Message::text(Role::System, system));
        }
        if let Some(session) = &session {
            messages.extend(session.messages.iter().cloned());
        }
        messages.extend(new_messages.iter().cloned());
        if let Some(prompt) = &recipe.prompt
            && let Some(last_user) = messages.iter_mut().rev().find(|m| m.role == Role::User)
        {
            last_user.content = Some(prompt.clone());
        }
        let (tx, rx) = mpsc::channel(64);
        let agent = self.clone();
        let session = session.map(|s| (s, new_messages));
        if recipe.direct {
            let answer = recipe.prompt.unwrap_or_default() + recipe.appendix.as_deref().unwrap_or_default();
            tokio::spawn(async move {
                if tx.send(Event::Content(answer.clone())).await.is_ok() {
                    let ending = Ending { appendix: None, citations: recipe.citations };
                    agent.finish(session, answer, None, Usage::default(), ending, &tx).await;
                }
            });
            return Ok(rx);
        }
        let ending = Ending { appendix: recipe.appendix, citations: recipe.citations };
        let with_tools = !recipe.without_tools;
        tokio::spawn(async move { agent.run(messages, parameters, session, with_tools, ending, tx).await });
        Ok(rx)
    }

    /// Memories relevant to the newest user message, within the memory budget; a failing memory
    /// store costs the turn its memories, not the answer.
    async fn recall(&self, new_messages: &[Message], session: Option<&str>) -> Vec<String> {
        let Some(memory) = &self.memory else { return Vec::new() };
        let Some(question) = new_messages.iter().rev().find(|m| m.role == Role::User) else { return Vec::new() };
        match memory.recall(question.content_str(), session, 5, MEMORY_BUDGET).await {
            Ok(found) => found,
            Err(error) => {
                tracing::warn!(%error, "recalling memories failed; answering without them");
                Vec::new()
            }
        }
    }

    /// The agent's generation parameters, overridden by the client's.
    fn parameters(&self, client: &Map<String, Value>) -> Map<String, Value> {
        let configured = &self.config.model.parameters;
        let mut parameters = Map::new();
        if let Some(t) = configured.temperature {
            parameters.insert("temperature".into(), json!(t));
        }
        if let Some(p) = configured.top_p {
            parameters.insert("top_p".into(), json!(p));
        }
        if let Some(m) = configured.max_tokens {
            parameters.insert("max_tokens".into(), json!(m));
        }
        if !configured.stop.is_empty() {
            parameters.insert("stop".into(), json!(configured.stop));
        }
        if let Some(seed) = configured.seed {
            parameters.insert("seed".into(), json!(seed));
        }
        for (key, value) in client {
            if !RESERVED.contains(&key.as_str()) {
                parameters.insert(key.clone(), value.clone());
            }
        }
        parameters
    }

    /// Folds the oldest turns of `session` into its summary when history plus the new turn
    /// exceed the budget.
    async fn fold_history(&self, session: &mut Session, new_tokens: usize) -> Result<(), ApiError> {
        let budget = self
            .limits
            .context_budget
            .saturating_sub(new_tokens + estimate_tokens(&[Message::text(Role::System, self.system_prompt.clone())]));
        let fold = messages_to_fold(&session.messages, budget);
        if fold == 0 {
            return Ok(());
        }
        let request = ModelRequest {
            messages: summary_request(session.summary.as_deref(), &session.messages[..fold]),
            tools: Vec::new(),
            parameters: Map::from_iter([("max_tokens".to_owned(), json!(256))]),
        };
        let mut stream = self.provider.stream(request).await.map_err(ApiError::from)?;
        let mut summary = String::new();
        while let Some(chunk) = stream.next().await {
            for choice in chunk.map_err(ApiError::from)?.choices {
                summary.push_str(choice.delta.content.as_deref().unwrap_or_default());
            }
        }
        tracing::info!(session = %session.id, folded = fold, "summarised older turns");
        session.summary = Some(summary.trim().to_owned());
        session.messages.drain(..fold);
        Ok(())
    }

    async fn run(
        self: Arc<Self>,
        mut messages: Vec<Message>,
        parameters: Map<String, Value>,
        session: Option<(Session, Vec<Message>)>,
        with_tools: bool,
        ending: Ending,
        tx: mpsc::Sender<Event>,
    ) {
        let specs = if with_tools && self.provider.supports_tools() { self.tools.specs() } else { Vec::new() };
        let mut usage = Usage::default();
        for step in 0..=self.limits.max_tool_steps {
            let tools = if step < self.limits.max_tool_steps { specs.clone() } else { Vec::new() };
            let request = ModelRequest { messages: messages.clone(), tools, parameters: parameters.clone() };
            let mut stream = match self.provider.stream(request).await {
                Ok(stream) => stream,
                Err(error) => {
                    let _ = tx.send(Event::Error(error.into())).await;
                    return;
                }
            };
            self.model_reached.store(true, Ordering::Relaxed);
            let mut text = String::new();
            let mut calls: Vec<ToolCall> = Vec::new();
            let mut finish_reason = None;
            while let Some(item) = stream.next().await {
                let chunk = match item {
                    Ok(chunk) => chunk,
                    Err(error) => {
                        let _ = tx.send(Event::Error(error.into())).await;
                        return;
                    }
                };
                if let Some(chunk_usage) = chunk.usage {
                    usage.add(chunk_usage);
                }
                for choice in chunk.choices {
                    if let Some(content) = choice.delta.content.filter(|c| !c.is_empty()) {
                        text.push_str(&content);
                        if tx.send(Event::Content(content)).await.is_err() {
                            return;
                        }
                    }
                    merge_tool_calls(&mut calls, choice.delta.tool_calls);
                    finish_reason = choice.finish_reason.or(finish_reason);
                }
            }
            if calls.is_empty() {
                self.finish(session, text, finish_reason, usage, ending, &tx).await;
                return;
            }
            if step == self.limits.max_tool_steps {
                let steps = self.limits.max_tool_steps;
                let error = ApiError::ModelFailed(format!("the model kept calling tools after {steps} tool steps"));
                let _ = tx.send(Event::Error(error)).await;
                return;
            }
            messages.push(Message {
                role: Role::Assistant,
                content: Some(text).filter(|t| !t.is_empty()),
                tool_calls: calls.clone(),
                tool_call_id: None,
                name: None,
            });
            for call in calls {
                let (result, outcome) = self.tools.call(&call.function.name, &call.function.arguments).await;
                self.metrics.tool_call(&call.function.name, outcome.as_str());
                tracing::info!(tool = %call.function.name, outcome = outcome.as_str(), "tool call");
                messages.push(Message {
                    role: Role::Tool,
                    content: Some(result),
                    tool_calls: Vec::new(),
                    tool_call_id: Some(call.id),
                    name: None,
                });
            }
        }
    }

    async fn finish(
        &self,
        session: Option<(Session, Vec<Message>)>,
        mut text: String,
        finish_reason: Option<String>,
        usage: Usage,
        ending: Ending,
        tx: &mpsc::Sender<Event>,
    ) {
        if let Some(appendix) = ending.appendix.filter(|a| !a.is_empty()) {
            text.push_str(&appendix);
            if tx.send(Event::Content(appendix)).await.is_err() {
                return;
            }
        }
        if let Some((mut session, new_messages)) = session {
            session
                .messages
                .extend(new_messages.into_iter().filter(|m| matches!(m.role, Role::User | Role::Assistant)));
            session.messages.push(Message::text(Role::Assistant, text));
            session.turns += 1;
            session.updated = jiff::Timestamp::now().to_string();
            if let Err(error) = self.sessions.put(session).await {
                let _ = tx.send(Event::Error(ApiError::Internal(error.to_string()))).await;
                return;
            }
        }
        self.metrics.tokens(usage.prompt_tokens, usage.completion_tokens);
        let finish_reason = finish_reason.unwrap_or_else(|| "stop".into());
        let _ = tx.send(Event::Done { finish_reason, usage, citations: ending.citations }).await;
    }
}

/// What closes an answer: text appended after the model's (sources), and the citations.
struct Ending {
    appendix: Option<String>,
    citations: Vec<Citation>,
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
