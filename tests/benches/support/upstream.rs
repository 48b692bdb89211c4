//! The fast upstream: an in-process OpenAI-compatible server that answers every chat completion
//! with the same `tokens` content tokens, streamed as OpenAI streams them, with no delay.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

/// The one model the upstream serves.
pub const MODEL: &str = "bench-model";

/// The content of token `index`: distinct per index, so a lost, repeated or reordered token shows.
pub fn token(index: usize) -> String {
    format!(" t{index}")
}

/// The full text of an answer of `tokens` tokens.
pub fn answer(tokens: usize) -> String {
    (0..tokens).map(token).collect()
}

/// What the upstream answers with.
struct Reply {
    tokens: usize,
    /// Each content chunk's JSON after its `"choices":`, rendered once.
    content_choices: Vec<String>,
    answer: String,
    next_id: AtomicU64,
}

/// The part of a chat completion request the upstream reads.
#[derive(Deserialize)]
struct ChatRequest {
    model: String,
    #[serde(default)]
    messages: Vec<Value>,
    #[serde(default)]
    stream: bool,
    stream_options: Option<StreamOptions>,
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

/// The upstream's router, answering with `tokens` content tokens.
pub fn router(tokens: usize) -> Router {
    let content_choices = (0..tokens)
        .map(|i| {
            json!([{"index": 0, "delta": {"content": token(i)}, "logprobs": null, "finish_reason": null}]).to_string()
        })
        .collect();
    let reply = Reply { tokens, content_choices, answer: answer(tokens), next_id: AtomicU64::new(0) };
    Router::new()
        .route("/v1/models", get(models))
        .route("/v1/chat/completions", post(chat_completions))
        .with_state(Arc::new(reply))
}

/// Serves the upstream on a free loopback port until the runtime it runs on stops; returns its address.
pub async fn start(tokens: usize) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    // Streams are many small writes; Nagle's algorithm would hold them back.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move { axum::serve(listener, router(tokens)).await });
    Ok(addr)
}

async fn models() -> Json<Value> {
    Json(json!({
        "object": "list",
        "data": [{"id": MODEL, "object": "model", "created": 1_700_000_000, "owned_by": "bench"}],
    }))
}

async fn chat_completions(State(reply): State<Arc<Reply>>, Json(request): Json<ChatRequest>) -> Response {
    let id = format!("chatcmpl-bench{}", reply.next_id.fetch_add(1, Ordering::Relaxed));
    let created = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let usage = json!({
        "prompt_tokens": request.messages.len() * 8,
        "completion_tokens": reply.tokens,
        "total_tokens": request.messages.len() * 8 + reply.tokens,
    });
    if !request.stream {
        return Json(json!({
            "id": id,
            "object": "chat.completion",
            "created": created,
            "model": request.model,
            "system_fingerprint": "fp_bench",
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": reply.answer, "refusal": null},
                "logprobs": null,
                "finish_reason": "stop",
            }],
            "usage": usage,
        }))
        .into_response();
    }
    let include_usage = request.stream_options.is_some_and(|o| o.include_usage);
    let usage_field = if include_usage { r#","usage":null"# } else { "" };
    let head = format!(
        r#"data: {{"id":"{id}","object":"chat.completion.chunk","created":{created},"model":{model},"system_fingerprint":"fp_bench","choices":"#,
        model = Value::String(request.model),
    );
    let event = |choices: &str| Bytes::from(format!("{head}{choices}{usage_field}}}\n\n"));
    let mut events = Vec::with_capacity(reply.tokens + 4);
    events.push(event(
        r#"[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}]"#,
    ));
    events.extend(reply.content_choices.iter().map(|choices| event(choices)));
    events.push(event(r#"[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]"#));
    if include_usage {
        events.push(Bytes::from(format!("{head}[],\"usage\":{usage}}}\n\n")));
    }
    events.push(Bytes::from_static(b"data: [DONE]\n\n"));
    let body = Body::from_stream(futures::stream::iter(events.into_iter().map(Ok::<_, Infallible>)));
    ([(header::CONTENT_TYPE, "text/event-stream"), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}
