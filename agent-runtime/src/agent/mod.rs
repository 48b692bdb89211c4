//! The agent's turn, read top-down in [`Agent::start_turn`]: take the session, fold old turns
//! into a summary past the context budget, run the recipe, recall memories, assemble the
//! context (pure, [`context`]), run the tool loop ([`tool_loop`]) and commit the session before
//! the listener sees the end of the answer. Nothing here knows which protocol serves the turn:
//! the chat API, and later A2A and the task runner, call the same [`Agent::start_turn`] and map
//! [`TurnError`] to their own wire format.

pub mod approval;
pub mod context;
pub mod error;
pub mod history;
pub mod parameters;
pub mod recipe_step;
pub mod session_lock;
pub mod tool_loop;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use agent_crds::RuntimeConfig;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;
use tracing::Instrument as _;

use self::approval::Continuation;
pub use self::approval::{ApprovalView, Decision};
use self::context::{Context, assemble, join_sections, unseen_messages};
pub use self::error::TurnError;
use self::recipe_step::{RecipeTurn, recipe_turn};
pub use self::session_lock::BusySession;
use self::session_lock::{SessionGuard, SessionLocks};
use self::tool_loop::{Answer, ToolLoop};
use crate::budget::estimate_tokens;
use crate::memory::Memory;
use crate::metrics::Metrics;
use crate::openai::{Citation, Message, Role, Usage};
use crate::provider::ModelProvider;
use crate::recipe::Pipeline;
use crate::secret_file::SecretValue;
use crate::sessions::{Session, SessionStore};
use crate::tools::ToolRegistry;
use crate::traces;

/// What a turn produces, in order: content pieces, then `Done` or `Error`.
#[derive(Debug)]
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
        /// The approval the turn paused on, when a tool call waits for a human.
        approval: Option<Box<ApprovalView>>,
    },
    /// The turn failed.
    Error(TurnError),
}

/// What a turn is asked to do, whichever protocol asked.
#[derive(Clone, Debug, Default)]
pub struct TurnInput {
    /// The messages of the turn (a client may resend the whole conversation).
    pub messages: Vec<Message>,
    /// Generation parameters the client chose; they override the agent's.
    pub parameters: Map<String, Value>,
    /// The session the turn belongs to; `None` keeps nothing.
    pub session: Option<String>,
    /// The listener wants the answer whole, not as it is generated: the model may be asked for
    /// it in one piece.
    pub whole: bool,
}

/// Bounds of the agent loop.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Model calls that may request tools before the model must answer.
    pub max_tool_steps: usize,
    /// Tokens of history sent to the model.
    pub context_budget: usize,
    /// Tokens a turn may use before another model call (`spec.limits.maxTokensPerTurn`).
    pub max_tokens_per_turn: Option<u64>,
    /// Tool calls a turn may run (`spec.limits.maxToolCallsPerTurn`).
    pub max_tool_calls_per_turn: Option<u32>,
}

/// Tokens of recalled memories added to a turn.
const MEMORY_BUDGET: usize = 300;

/// Recalled memories per turn, at most.
const MEMORIES_RECALLED: usize = 5;

/// The parts an agent is made of.
pub struct AgentParts {
    /// The configuration it serves.
    pub config: Arc<RuntimeConfig>,
    /// Its model.
    pub provider: Arc<dyn ModelProvider>,
    /// The tools the model may call.
    pub tools: ToolRegistry,
    /// Where conversations are kept.
    pub sessions: SessionStore,
    /// Where turns are counted.
    pub metrics: Arc<Metrics>,
    /// Bounds of the loop.
    pub limits: Limits,
    /// Long-term memory, when knowledge is on.
    pub memory: Option<Arc<Memory>>,
    /// The RAG recipe run on every turn.
    pub pipeline: Option<Arc<Pipeline>>,
    /// What a turn on a busy session does.
    pub busy_session: BusySession,
    /// The persona's system prompt (from a Secret file, read again for new turns once it changed).
    pub system_prompt: Option<SecretValue>,
}

/// A running agent.
pub struct Agent {
    /// The configuration it serves.
    pub config: Arc<RuntimeConfig>,
    provider: Arc<dyn ModelProvider>,
    tools: ToolRegistry,
    sessions: SessionStore,
    metrics: Arc<Metrics>,
    limits: Limits,
    /// The persona's system prompt, joined with the task's instructions at every turn.
    system_prompt: Option<SecretValue>,
    model_reached: AtomicBool,
    memory: Option<Arc<Memory>>,
    pipeline: Option<Arc<Pipeline>>,
    locks: SessionLocks,
    /// Taken while an approval is read and decided, so each is decided once.
    deciding: tokio::sync::Mutex<()>,
}

/// A turn between its start and its commit.
struct Pending {
    /// The session with the turn's new messages, and the lock that keeps other turns out.
    session: Option<(Session, Vec<Message>, SessionGuard)>,
    /// Text appended to the answer (a recipe's sources).
    appendix: Option<String>,
    /// The chunks the answer was given.
    citations: Vec<Citation>,
    /// The approval whose decision resumed the turn, to be given the answer when it is
    /// committed (before the listener hears the end).
    resumed: Option<String>,
}

impl Agent {
    /// An agent made of `parts`.
    pub fn new(parts: AgentParts) -> Self {
        let AgentParts {
            config,
            provider,
            tools,
            sessions,
            metrics,
            limits,
            memory,
            pipeline,
            busy_session,
            system_prompt,
        } = parts;
        Self {
            config,
            provider,
            tools,
            sessions,
            metrics,
            limits,
            system_prompt,
            model_reached: AtomicBool::new(false),
            memory,
            pipeline,
            locks: SessionLocks::new(busy_session),
            deciding: tokio::sync::Mutex::new(()),
        }
    }

    /// The persona's system prompt as it is now, and the task's instructions.
    fn persona(&self) -> String {
        let prompt = self.system_prompt.as_ref().map(SecretValue::current);
        join_sections([prompt.as_deref(), self.config.task.instructions.as_deref()])
    }

    /// The agent's recipe, when it has one.
    pub fn pipeline(&self) -> Option<&Arc<Pipeline>> {
        self.pipeline.as_ref()
    }

    /// The session store.
    pub fn sessions(&self) -> &SessionStore {
        &self.sessions
    }

    /// The agent's long-term memory, when enabled.
    pub fn memory(&self) -> Option<&Arc<Memory>> {
        self.memory.as_ref()
    }

    /// The tools the model may call.
    pub fn tools(&self) -> &ToolRegistry {
        &self.tools
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

    /// Starts a turn; its events arrive on the returned channel. Fails early for a bad request,
    /// a busy or unreadable session, a failed summary or a failed recipe step. A turn on a
    /// session holds it until the turn is committed or fails.
    pub async fn start_turn(self: &Arc<Self>, input: TurnInput) -> Result<mpsc::Receiver<Event>, TurnError> {
        let span = self.turn_span(input.session.as_deref());
        traces::record_content(&span, "gen_ai.input.messages", || json!(input.messages).to_string());
        let started = self.begin_turn(input).instrument(span.clone()).await;
        if let Err(error) = &started {
            traces::record_error(&span, error.kind(), &error.to_string());
        }
        started
    }

    /// The span of a turn on `session`: every step of the turn is its child.
    fn turn_span(&self, session: Option<&str>) -> tracing::Span {
        traces::invoke_agent(&self.config.agent.name, &self.config.model.model, session)
    }

    /// [`Agent::start_turn`] inside the turn's span, which the answering task carries on.
    async fn begin_turn(self: &Arc<Self>, input: TurnInput) -> Result<mpsc::Receiver<Event>, TurnError> {
        check_messages(&input.messages)?;
        let (mut session, new_messages) = self.open_session(input.session.as_deref(), input.messages).await?;
        let persona = self.persona();
        if let Some((session, _)) = &mut session {
            let budget = self.history_budget(&persona, &new_messages);
            history::fold_history(self.provider.as_ref(), session, budget).await?;
        }
        let parameters = parameters::merge(&self.config.model.parameters, &input.parameters);
        let recipe = self.recipe_turn(&new_messages, &parameters).await?;
        let memories = self.recall(&new_messages, input.session.as_deref()).await;
        let stored = session.as_ref().map(|(s, _)| s);
        let messages = assemble(&Context {
            persona: &persona,
            recipe_system: recipe.system.as_deref(),
            summary: stored.and_then(|s| s.summary.as_deref()),
            memories: &memories,
            history: stored.map_or(&[], |s| s.messages.as_slice()),
            new_messages: &new_messages,
            prompt: recipe.prompt.as_deref(),
        });
        let pending = Pending {
            session: session.map(|(session, guard)| (session, new_messages, guard)),
            appendix: recipe.appendix.clone(),
            citations: recipe.citations.clone(),
            resumed: None,
        };
        let (events, receiver) = mpsc::channel(64);
        let agent = self.clone();
        let continuation = Continuation { parameters, offers_tools: false, whole: input.whole };
        let answering = async move { agent.answer(messages, continuation, recipe, pending, events).await };
        tokio::spawn(answering.instrument(tracing::Span::current()));
        Ok(receiver)
    }

    /// Takes and reads the session (a new one when it does not exist yet) and returns it with
    /// the turn's messages it does not hold yet.
    async fn open_session(
        &self,
        id: Option<&str>,
        messages: Vec<Message>,
    ) -> Result<(Option<(Session, SessionGuard)>, Vec<Message>), TurnError> {
        let Some(id) = id else { return Ok((None, messages)) };
        let guard = self.locks.lock(id).await?;
        let session =
            self.sessions.get(id).await?.unwrap_or_else(|| Session { id: id.to_owned(), ..Session::default() });
        let new_messages = unseen_messages(&session.messages, &messages);
        Ok((Some((session, guard)), new_messages))
    }

    /// Tokens the kept history may use beside the persona and the new messages.
    fn history_budget(&self, persona: &str, new_messages: &[Message]) -> usize {
        let persona = estimate_tokens(&[Message::text(Role::System, persona.to_owned())]);
        self.limits.context_budget.saturating_sub(estimate_tokens(new_messages) + persona)
    }

    async fn recipe_turn(
        &self,
        new_messages: &[Message],
        parameters: &Map<String, Value>,
    ) -> Result<RecipeTurn, TurnError> {
        let Some(pipeline) = &self.pipeline else { return Ok(RecipeTurn::default()) };
        let budget = self.limits.context_budget;
        Ok(recipe_turn(pipeline, self.provider.as_ref(), new_messages, parameters, budget).await?)
    }

    /// Memories relevant to the newest user message, within the memory budget; a failing memory
    /// store costs the turn its memories, not the answer.
    async fn recall(&self, new_messages: &[Message], session: Option<&str>) -> Vec<String> {
        let Some(memory) = &self.memory else { return Vec::new() };
        let Some(question) = new_messages.iter().rev().find(|m| m.role == Role::User) else { return Vec::new() };
        let span = traces::memory("search_memory", crate::memory::MEMORY);
        let recalled =
            memory.recall(question.content_str(), session, MEMORIES_RECALLED, MEMORY_BUDGET).instrument(span.clone());
        match recalled.await {
            Ok(found) => {
                span.record("gen_ai.memory.record.count", traces::int(found.len()));
                found
            }
            Err(error) => {
                traces::record_error(&span, "memory", &error.to_string());
                tracing::warn!(%error, "recalling memories failed; answering without them");
                Vec::new()
            }
        }
    }

    /// Produces the answer (the recipe's text, or the tool loop's) and commits the turn.
    async fn answer(
        self: Arc<Self>,
        messages: Vec<Message>,
        mut continuation: Continuation,
        recipe: RecipeTurn,
        pending: Pending,
        events: mpsc::Sender<Event>,
    ) {
        if recipe.direct {
            let text = recipe.prompt.unwrap_or_default();
            if events.send(Event::Content(text.clone())).await.is_ok() {
                self.commit(pending, Answer { text, ..Answer::default() }, &events).await;
            }
            return;
        }
        continuation.offers_tools = !recipe.without_tools && self.provider.supports_tools();
        let outcome = self.tool_loop(&continuation).run(messages, &events).await;
        self.finish(outcome, continuation, pending, &events).await;
    }

    /// The tool loop of a turn that calls the model as `continuation` says.
    fn tool_loop(&self, continuation: &Continuation) -> ToolLoop<'_> {
        ToolLoop {
            provider: self.provider.as_ref(),
            tools: &self.tools,
            metrics: &self.metrics,
            specs: if continuation.offers_tools { self.tools.specs() } else { Vec::new() },
            max_tool_steps: self.limits.max_tool_steps,
            max_tokens: self.limits.max_tokens_per_turn,
            max_tool_calls: self.limits.max_tool_calls_per_turn,
            parameters: continuation.parameters.clone(),
            whole: continuation.whole,
        }
    }

    /// Appends the recipe's appendix, commits the session, then reports the end of the turn;
    /// returns whether the answer was committed.
    async fn commit(&self, pending: Pending, mut answer: Answer, events: &mpsc::Sender<Event>) -> bool {
        if let Some(appendix) = pending.appendix.filter(|a| !a.is_empty()) {
            answer.text.push_str(&appendix);
            if events.send(Event::Content(appendix)).await.is_err() {
                return false;
            }
        }
        let turn = tracing::Span::current();
        traces::record_usage(&turn, &answer.usage);
        traces::record_finish_reasons(&turn, answer.finish_reason.as_slice());
        traces::record_content(&turn, "gen_ai.output.messages", || answer.text.clone());
        if let Some((mut session, new_messages, _guard)) = pending.session {
            let kept = new_messages.into_iter().filter(|m| matches!(m.role, Role::User | Role::Assistant));
            session.messages.extend(kept);
            session.messages.push(Message::text(Role::Assistant, answer.text.clone()));
            session.turns += 1;
            session.updated = jiff::Timestamp::now().to_string();
            let span = traces::commit_session(&session.id);
            if let Err(error) = self.sessions.put(session).instrument(span.clone()).await {
                traces::record_error(&span, "session", &error.to_string());
                let _ = events.send(Event::Error(error.into())).await;
                return false;
            }
        }
        if let Some(approval) = &pending.resumed
            && let Err(error) = self.record_answer(approval, &answer.text).await
        {
            let _ = events.send(Event::Error(error.into())).await;
            return false;
        }
        self.metrics.tokens(answer.usage.prompt_tokens, answer.usage.completion_tokens);
        let finish_reason = answer.finish_reason.unwrap_or_else(|| "stop".into());
        let done = Event::Done { finish_reason, usage: answer.usage, citations: pending.citations, approval: None };
        let _ = events.send(done).await;
        true
    }
}

/// Refuses what cannot be a turn.
fn check_messages(messages: &[Message]) -> Result<(), TurnError> {
    if messages.is_empty() {
        return Err(TurnError::InvalidRequest("messages must not be empty".into()));
    }
    if messages.last().is_some_and(|m| m.role == Role::Assistant) {
        return Err(TurnError::InvalidRequest("the last message must not be from the assistant".into()));
    }
    Ok(())
}
