//! `POST /v1/chat/completions`: streamed (SSE, `[DONE]`, usage in the final chunk when asked)
//! or whole. The response status waits for the model's first event, so an unreachable or silent
//! model is a clear 502/504, not a 200 with an error inside.

use std::convert::Infallible;
use std::time::Instant;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use serde_json::json;
use tokio::sync::{OwnedSemaphorePermit, mpsc};

use super::ApiError;
use super::AppState;
use super::extract::ApiJson;
use crate::agent::{ApprovalView, Event, TurnInput};
use crate::metrics::StreamGuard;
use crate::openai::{
    ChatChunk, ChatRequest, ChatResponse, Choice, ChunkIdentity, Citation, Delta, Message, Role, Usage,
};
use crate::sessions::valid_session_id;

/// Header naming the session.
pub const SESSION_HEADER: &str = "x-session-id";

/// Answers a chat completion request.
pub async fn chat_completions(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<ChatRequest>,
) -> Result<Response, ApiError> {
    let permit =
        state.permits.clone().try_acquire_owned().map_err(|_| ApiError::Overloaded(state.limits.max_concurrency))?;
    let session = headers
        .get(SESSION_HEADER)
        .map(|v| v.to_str().map(str::to_owned).map_err(|_| ApiError::BadRequest("X-Session-Id is not text".into())))
        .transpose()?
        .or_else(|| request.user.clone());
    if let Some(id) = &session
        && !valid_session_id(id)
    {
        return Err(ApiError::BadRequest(format!("invalid session id {id:?}: use 1-128 letters, digits or -_.:@")));
    }
    let started = Instant::now();
    let stream = request.stream;
    let include_usage = request.stream_options.is_some_and(|o| o.include_usage);
    let input = TurnInput { messages: request.messages, parameters: request.extra, session, whole: !stream };
    let events = state.agent.start_turn(input).await?;
    respond(state, events, Delivery { stream, include_usage }, started, permit).await
}

/// How the client wants the answer.
#[derive(Clone, Copy, Debug)]
pub struct Delivery {
    /// As server-sent events.
    pub stream: bool,
    /// With a usage chunk at the end (streamed).
    pub include_usage: bool,
}

/// Answers with a turn's events: streamed (the status waits for the first event) or whole.
pub async fn respond(
    state: AppState,
    mut events: mpsc::Receiver<Event>,
    delivery: Delivery,
    started: Instant,
    permit: OwnedSemaphorePermit,
) -> Result<Response, ApiError> {
    let identity = Identity::new(&state.agent.config.agent.name);
    if delivery.stream {
        let first = events.recv().await.ok_or_else(|| ApiError::Internal("the turn ended without an answer".into()))?;
        if let Event::Error(error) = first {
            return Err(error.into());
        }
        let body = sse(state, events, first, identity, delivery.include_usage, started, permit);
        Ok(Sse::new(body).keep_alive(KeepAlive::default()).into_response())
    } else {
        let timeout = state.limits.request_timeout;
        let collected = tokio::time::timeout(timeout, collect(&state, &mut events, started))
            .await
            .map_err(|_| ApiError::ModelTimeout(timeout.as_secs()))??;
        drop(permit);
        Ok(Json(identity.response(collected)).into_response())
    }
}

/// A whole answer.
struct Collected {
    text: String,
    finish_reason: String,
    usage: Usage,
    citations: Vec<Citation>,
    approval: Option<Box<ApprovalView>>,
}

async fn collect(
    state: &AppState,
    events: &mut mpsc::Receiver<Event>,
    started: Instant,
) -> Result<Collected, ApiError> {
    let mut text = String::new();
    while let Some(event) = events.recv().await {
        match event {
            Event::Content(piece) => {
                if text.is_empty() {
                    state.metrics.first_token(started.elapsed());
                }
                text.push_str(&piece);
            }
            Event::Done { finish_reason, usage, citations, approval } => {
                return Ok(Collected { text, finish_reason, usage, citations, approval });
            }
            Event::Error(error) => return Err(error.into()),
        }
    }
    Err(ApiError::Internal("the turn ended without an answer".into()))
}

/// Where an answer's event stream is.
struct SseState {
    events: mpsc::Receiver<Event>,
    pending: Option<Event>,
    role_sent: bool,
    last_token: Option<Instant>,
    finished: bool,
    _guard: StreamGuard,
    _permit: OwnedSemaphorePermit,
}

fn sse(
    state: AppState,
    events: mpsc::Receiver<Event>,
    first: Event,
    identity: Identity,
    include_usage: bool,
    started: Instant,
    permit: OwnedSemaphorePermit,
) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    let initial = SseState {
        events,
        pending: Some(first),
        role_sent: false,
        last_token: None,
        finished: false,
        _guard: state.metrics.stream_started(),
        _permit: permit,
    };
    futures::stream::unfold(initial, move |mut sse| {
        let metrics = state.metrics.clone();
        let identity = identity.clone();
        async move {
            if sse.finished {
                return None;
            }
            let event = match sse.pending.take() {
                Some(event) => Some(event),
                None => sse.events.recv().await,
            };
            let data = match event {
                // The channel closes after `Done` (or when the turn task ends): the stream is complete.
                None => {
                    sse.finished = true;
                    "[DONE]".to_owned()
                }
                Some(Event::Content(piece)) => {
                    let now = Instant::now();
                    match sse.last_token {
                        None => metrics.first_token(now - started),
                        Some(previous) => metrics.inter_token(now - previous),
                    }
                    sse.last_token = Some(now);
                    let role = (!sse.role_sent).then_some(Role::Assistant);
                    sse.role_sent = true;
                    identity.chunk(Delta { role, content: Some(piece), tool_calls: Vec::new() }, None, None)
                }
                Some(Event::Done { finish_reason, usage, citations, approval }) => {
                    identity.final_chunk(Some(finish_reason), include_usage.then_some(usage), citations, approval)
                }
                Some(Event::Error(error)) => {
                    sse.finished = true;
                    ApiError::from(error).body().to_string()
                }
            };
            Some((Ok(SseEvent::default().data(data)), sse))
        }
    })
}

/// Encodes the chunks of one answer.
#[derive(Clone)]
struct Identity(ChunkIdentity);

impl Identity {
    fn new(model: &str) -> Self {
        Self(ChunkIdentity::new(model))
    }

    fn chunk(&self, delta: Delta, finish_reason: Option<String>, usage: Option<Usage>) -> String {
        Self::encode(&self.0.chunk(delta, finish_reason, usage))
    }

    /// The last chunk: the finish reason, usage when asked, the citations, and the approval
    /// the turn waits on.
    fn final_chunk(
        &self,
        finish_reason: Option<String>,
        usage: Option<Usage>,
        citations: Vec<Citation>,
        approval: Option<Box<ApprovalView>>,
    ) -> String {
        let mut chunk = self.0.chunk(Delta::default(), finish_reason, usage);
        chunk.citations = citations;
        chunk.pending_approval = approval.map(|a| json!(a));
        Self::encode(&chunk)
    }

    fn encode(chunk: &ChatChunk) -> String {
        serde_json::to_string(chunk).unwrap_or_else(|e| json!({"error": {"message": e.to_string()}}).to_string())
    }

    fn response(&self, answer: Collected) -> ChatResponse {
        ChatResponse {
            id: self.0.id.clone(),
            object: "chat.completion".into(),
            created: self.0.created,
            model: self.0.model.clone(),
            choices: vec![Choice {
                index: 0,
                message: Message::text(Role::Assistant, answer.text),
                finish_reason: Some(answer.finish_reason),
            }],
            usage: Some(answer.usage),
            citations: answer.citations,
            pending_approval: answer.approval.map(|a| json!(a)),
        }
    }
}
