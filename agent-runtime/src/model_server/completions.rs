//! The OpenAI endpoints of `serve-model`: chat completions (the GGUF's chat template), plain
//! completions, embeddings (the built-in MiniLM). Streamed answers are server-sent events ending
//! in `[DONE]`, with a usage chunk when `stream_options.include_usage` asks for one.

use std::convert::Infallible;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use serde_json::{Map, Value, json};

use super::{EMBEDDING_MODEL, ServerState};
use crate::embeddings::Embedder;
use crate::http::ApiError;
use crate::inference::{ChatTurn, Event, Generation, InferenceError, Prompt, Sampling};
use crate::openai::Message;

/// The shape of the answers: chat (`chat.completion[.chunk]`) or text (`text_completion`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Chat,
    Text,
}

/// `POST /v1/chat/completions`.
pub(super) async fn chat(State(state): State<ServerState>, body: Bytes) -> Result<Response, ApiError> {
    let mut fields = parse(&body)?;
    check_model(&state, &fields)?;
    if fields.get("tools").and_then(Value::as_array).is_some_and(|tools| !tools.is_empty()) {
        return Err(ApiError::BadRequest(
            "tools: the runtime's in-process model does not call tools (llama.cpp's built-in chat templates have \
             no tool format); serve the model with engine llamacpp --jinja or vllm for tool calls"
                .into(),
        ));
    }
    let messages: Vec<Message> = serde_json::from_value(fields.remove("messages").unwrap_or(Value::Null))
        .map_err(|e| ApiError::BadRequest(format!("messages: {e}")))?;
    if messages.is_empty() {
        return Err(ApiError::BadRequest("messages: at least one message is needed".into()));
    }
    let turns = messages
        .iter()
        .map(|m| ChatTurn {
            role: serde_json::to_value(m.role).ok().and_then(|r| r.as_str().map(str::to_owned)).unwrap_or_default(),
            content: m.content_str().to_owned(),
        })
        .collect();
    generate(&state, Prompt::Chat(turns), &fields, Kind::Chat).await
}

/// `POST /v1/completions`.
pub(super) async fn complete(State(state): State<ServerState>, body: Bytes) -> Result<Response, ApiError> {
    let fields = parse(&body)?;
    check_model(&state, &fields)?;
    let prompt = match fields.get("prompt") {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(items)) if items.len() == 1 && items[0].is_string() => {
            items[0].as_str().unwrap_or_default().to_owned()
        }
        Some(Value::Array(_)) => {
            return Err(ApiError::BadRequest("prompt: one prompt per request (a string, or an array of one)".into()));
        }
        _ => return Err(ApiError::BadRequest("prompt: a string is needed".into())),
    };
    generate(&state, Prompt::Text(prompt), &fields, Kind::Text).await
}

/// `POST /v1/embeddings`.
pub(super) async fn embeddings(State(state): State<ServerState>, body: Bytes) -> Result<Response, ApiError> {
    let fields = parse(&body)?;
    let embedder = state
        .embedder
        .clone()
        .ok_or_else(|| ApiError::NotFound("this model server was started without an embedding model".into()))?;
    if let Some(model) = fields.get("model").and_then(Value::as_str)
        && model != EMBEDDING_MODEL
    {
        return Err(ApiError::NotFound(format!(
            "model {model} is not served here; embeddings come from {EMBEDDING_MODEL}"
        )));
    }
    let texts: Vec<String> = match fields.get("input") {
        Some(Value::String(text)) => vec![text.clone()],
        Some(Value::Array(items)) if !items.is_empty() && items.iter().all(Value::is_string) => {
            items.iter().filter_map(|item| item.as_str().map(str::to_owned)).collect()
        }
        _ => return Err(ApiError::BadRequest("input: a string or a non-empty array of strings is needed".into())),
    };
    let tokens = embedder.count_tokens(&texts).map_err(|e| ApiError::Internal(e.to_string()))?;
    let vectors = embedder.embed(texts).await.map_err(|e| ApiError::Internal(e.to_string()))?;
    let data: Vec<Value> = vectors
        .into_iter()
        .enumerate()
        .map(|(index, vector)| json!({"object": "embedding", "index": index, "embedding": vector}))
        .collect();
    let usage = json!({"prompt_tokens": tokens, "total_tokens": tokens});
    Ok(Json(json!({"object": "list", "data": data, "model": EMBEDDING_MODEL, "usage": usage})).into_response())
}

fn parse(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(fields)) => Ok(fields),
        Ok(_) => Err(ApiError::BadRequest("the body must be a JSON object".into())),
        Err(error) => Err(ApiError::BadRequest(format!("the body is not valid JSON: {error}"))),
    }
}

fn check_model(state: &ServerState, fields: &Map<String, Value>) -> Result<(), ApiError> {
    match fields.get("model").and_then(Value::as_str) {
        Some(model) if model != &*state.served_name => Err(ApiError::NotFound(format!(
            "model {model} is not served here; this server serves {}",
            state.served_name
        ))),
        _ => Ok(()),
    }
}

async fn generate(
    state: &ServerState,
    prompt: Prompt,
    fields: &Map<String, Value>,
    kind: Kind,
) -> Result<Response, ApiError> {
    let engine = state.engine()?;
    let sampling = Sampling::from_request(fields).map_err(|e| request_error(&e.into()))?;
    let generation = engine.generate(&prompt, sampling).map_err(|e| request_error(&e))?;
    let answer = Answer::new(kind, &state.served_name, generation.prompt_tokens);
    if fields.get("stream").and_then(Value::as_bool) == Some(true) {
        let usage = fields.get("stream_options").and_then(|o| o.get("include_usage")).and_then(Value::as_bool);
        Ok(Sse::new(answer.stream(generation, usage == Some(true))).keep_alive(KeepAlive::default()).into_response())
    } else {
        Ok(Json(answer.whole(generation).await?).into_response())
    }
}

fn request_error(error: &InferenceError) -> ApiError {
    match error {
        _ if error.is_request_fault() => ApiError::BadRequest(error.to_string()),
        InferenceError::Decode(_) => ApiError::Internal(error.to_string()),
        _ => ApiError::Unavailable(error.to_string()),
    }
}

/// Builds the response objects of one generation.
struct Answer {
    kind: Kind,
    id: String,
    created: i64,
    model: String,
    prompt_tokens: usize,
}

impl Answer {
    fn new(kind: Kind, model: &str, prompt_tokens: usize) -> Self {
        let prefix = if kind == Kind::Chat { "chatcmpl" } else { "cmpl" };
        Self {
            kind,
            id: format!("{prefix}-{:016x}", rand::random::<u64>()),
            created: jiff::Timestamp::now().as_second(),
            model: model.to_owned(),
            prompt_tokens,
        }
    }

    fn usage(&self, completion_tokens: u32) -> Value {
        json!({
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": self.prompt_tokens + completion_tokens as usize,
        })
    }

    fn object(&self, streamed: bool) -> &'static str {
        match (self.kind, streamed) {
            (Kind::Chat, true) => "chat.completion.chunk",
            (Kind::Chat, false) => "chat.completion",
            (Kind::Text, _) => "text_completion",
        }
    }

    fn envelope(&self, streamed: bool, choices: &Value, usage: &Value) -> Value {
        json!({
            "id": self.id,
            "object": self.object(streamed),
            "created": self.created,
            "model": self.model,
            "choices": choices,
            "usage": usage,
        })
    }

    /// One streamed choice carrying `text` and, at the end, the finish reason.
    fn delta(&self, text: Option<&str>, finish: Option<&str>) -> Value {
        match self.kind {
            Kind::Chat => {
                let delta = text.map_or_else(|| json!({}), |text| json!({"role": "assistant", "content": text}));
                json!([{"index": 0, "delta": delta, "finish_reason": finish}])
            }
            Kind::Text => {
                json!([{"index": 0, "text": text.unwrap_or_default(), "logprobs": null, "finish_reason": finish}])
            }
        }
    }

    fn stream(self, generation: Generation, include_usage: bool) -> impl Stream<Item = Result<SseEvent, Infallible>> {
        let events = generation.into_stream();
        let done = futures::stream::once(async { Ok(SseEvent::default().data("[DONE]")) });
        events
            .flat_map(move |event| {
                let items: Vec<Value> = match event {
                    Event::Text(text) if text.is_empty() => Vec::new(),
                    Event::Text(text) => vec![self.envelope(true, &self.delta(Some(&text), None), &Value::Null)],
                    Event::Finished { finish, completion_tokens } => {
                        let mut items =
                            vec![self.envelope(true, &self.delta(None, Some(finish.as_str())), &Value::Null)];
                        if include_usage {
                            items.push(self.envelope(true, &json!([]), &self.usage(completion_tokens)));
                        }
                        items
                    }
                    Event::Failed(error) => {
                        vec![json!({"error": {"message": error.to_string(), "type": "server_error"}})]
                    }
                };
                futures::stream::iter(items.into_iter().map(|item| Ok(SseEvent::default().data(item.to_string()))))
            })
            .chain(done)
    }

    async fn collect(generation: Generation) -> (String, Result<(&'static str, u32), InferenceError>) {
        let mut text = String::new();
        let mut events = std::pin::pin!(generation.into_stream());
        while let Some(event) = events.next().await {
            match event {
                Event::Text(piece) => text.push_str(&piece),
                Event::Finished { finish, completion_tokens } => {
                    return (text, Ok((finish.as_str(), completion_tokens)));
                }
                Event::Failed(error) => return (text, Err(error)),
            }
        }
        (text, Err(InferenceError::Stopped))
    }

    async fn whole(self, generation: Generation) -> Result<Value, ApiError> {
        let (text, outcome) = Self::collect(generation).await;
        let (finish, completion_tokens) = outcome.map_err(|e| request_error(&e))?;
        let choice = match self.kind {
            Kind::Chat => {
                json!({"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish})
            }
            Kind::Text => json!({"index": 0, "text": text, "logprobs": null, "finish_reason": finish}),
        };
        Ok(self.envelope(false, &json!([choice]), &self.usage(completion_tokens)))
    }
}
