//! Test support: a scripted OpenAI-compatible upstream on loopback, and an agent wired to it.
//! The upstream is a test double on purpose: it makes the model call tools, fail, or hang on
//! cue, which a real small model cannot do reliably. Real-model tests live in `tests/`.

pub mod peers;
pub mod process;
pub mod scratch;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_crds::render::{ResolvedReferences, render_runtime_config};
use agent_crds::runtime_config::PodPaths;
use agent_crds::{Agent, Model, RuntimeConfig};
use agent_runtime::ServeOptions;
use agent_runtime::http::{AppState, router};
use agent_runtime::provider::openai::CallPolicy;
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post as route_post};
use futures::StreamExt;
use serde_json::{Value, json};
use tower::ServiceExt;

/// What the upstream does for one model call.
#[derive(Clone, Debug)]
pub enum Reply {
    /// Streams this text, a word per chunk.
    Text(String),
    /// Asks for a tool call.
    ToolCall(String, String),
    /// Answers with this HTTP status and an OpenAI error body.
    Status(u16),
    /// Never answers.
    Hang,
    /// Streams this text a word at a time with a pause before each word.
    Slow(String, Duration),
}

/// A scripted upstream.
#[derive(Clone)]
pub struct Upstream {
    /// Where it listens.
    pub addr: SocketAddr,
    script: Arc<Mutex<VecDeque<Reply>>>,
    /// Bodies of the model calls it received.
    pub requests: Arc<Mutex<Vec<Value>>>,
}

impl Upstream {
    /// Starts an upstream answering with `script`, then "ok" for every further call.
    pub async fn start(script: Vec<Reply>) -> Self {
        Self::start_on(0, script).await
    }

    /// [`Upstream::start`] on loopback port `port` (0 picks one), as a model that comes up on
    /// a known address.
    pub async fn start_on(port: u16, script: Vec<Reply>) -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let upstream = Self {
            addr: listener.local_addr().unwrap(),
            script: Arc::new(Mutex::new(script.into())),
            requests: Arc::default(),
        };
        let app = axum::Router::new()
            .route(
                "/v1/models",
                get(|| async { Json(json!({"object": "list", "data": [{"id": "scripted", "object": "model"}]})) }),
            )
            .route("/v1/chat/completions", route_post(answer))
            .route("/v1/completions", route_post(answer))
            .with_state(upstream.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        upstream
    }

    /// The base URL agents use.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Bodies received so far.
    pub fn received(&self) -> Vec<Value> {
        self.requests.lock().unwrap().clone()
    }

    /// The tool results the model was given in its last call, in order.
    pub fn tool_results(&self) -> Vec<String> {
        let received = self.received();
        let last = received.last().expect("the model was called");
        let messages = last["messages"].as_array().cloned().unwrap_or_default();
        messages.iter().filter(|m| m["role"] == "tool").map(|m| m["content"].as_str().unwrap().to_owned()).collect()
    }

    /// The last tool result the model was given.
    pub fn last_tool_result(&self) -> String {
        self.tool_results().pop().expect("the model was given a tool result")
    }
}

async fn answer(
    State(upstream): State<Upstream>,
    headers: axum::http::HeaderMap,
    Json(mut body): Json<Value>,
) -> Response {
    let seen: serde_json::Map<String, Value> =
        headers.iter().map(|(name, value)| (name.to_string(), json!(value.to_str().unwrap_or_default()))).collect();
    body["_headers"] = Value::Object(seen);
    upstream.requests.lock().unwrap().push(body.clone());
    let reply = upstream.script.lock().unwrap().pop_front().unwrap_or_else(|| Reply::Text("ok".into()));
    let completion = body.get("prompt").is_some();
    let chunk = |delta: Value, finish: Option<&str>| {
        if completion {
            json!({"id": "cmpl-1", "object": "text_completion", "created": 1, "model": "scripted",
                   "choices": [{"index": 0, "text": delta.get("content").cloned().unwrap_or(json!("")), "finish_reason": finish}]})
        } else {
            json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "scripted",
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        }
    };
    match reply {
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            unreachable!()
        }
        Reply::Status(status) => {
            let body = json!({"error": {"message": format!("scripted {status}"), "type": "server_error", "param": null, "code": null}});
            return (StatusCode::from_u16(status).unwrap(), Json(body)).into_response();
        }
        _ if body.get("stream") == Some(&json!(false)) => return whole_answer(reply, completion).await,
        _ => {}
    }
    let events: Vec<Value> = match reply {
        Reply::Hang | Reply::Status(_) => unreachable!("answered above"),
        Reply::Slow(text, pause) => {
            let words: Vec<String> = text.split_inclusive(' ').map(str::to_owned).collect();
            let stream = futures::stream::iter(words).then(move |word| async move {
                tokio::time::sleep(pause).await;
                let chunk = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "scripted",
                                   "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": null}]});
                Ok::<_, std::convert::Infallible>(format!("data: {chunk}\n\n"))
            });
            let end = futures::stream::iter(["data: [DONE]\n\n".to_owned()]).map(Ok);
            return ([("content-type", "text/event-stream")], Body::from_stream(stream.chain(end))).into_response();
        }
        Reply::Text(text) => {
            let mut events = vec![chunk(json!({"role": "assistant", "content": ""}), None)];
            let words: Vec<&str> = text.split_inclusive(' ').collect();
            events.extend(words.iter().map(|w| chunk(json!({"content": w}), None)));
            events.push(chunk(json!({}), Some("stop")));
            events
        }
        Reply::ToolCall(name, arguments) => vec![
            chunk(
                json!({"role": "assistant", "tool_calls": [{"index": 0, "id": "call_a", "type": "function", "function": {"name": name, "arguments": ""}}]}),
                None,
            ),
            chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": arguments}}]}), None),
            chunk(json!({}), Some("tool_calls")),
        ],
    };
    let mut text = String::new();
    for event in events {
        text.push_str("data: ");
        text.push_str(&event.to_string());
        text.push_str("\n\n");
    }
    text.push_str("data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"scripted\",\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":3,\"total_tokens\":10}}\n\n");
    text.push_str("data: [DONE]\n\n");
    ([("content-type", "text/event-stream")], text).into_response()
}

/// `reply` as one non-streamed answer, for a call that asked for it whole.
async fn whole_answer(reply: Reply, completion: bool) -> Response {
    let usage = json!({"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10});
    let (message, finish) = match reply {
        Reply::Hang | Reply::Status(_) => unreachable!("answered above"),
        Reply::Slow(text, pause) => {
            tokio::time::sleep(pause * u32::try_from(text.split_inclusive(' ').count()).unwrap_or(1)).await;
            (json!({"role": "assistant", "content": text}), "stop")
        }
        Reply::Text(text) => (json!({"role": "assistant", "content": text}), "stop"),
        Reply::ToolCall(name, arguments) => (
            json!({"role": "assistant", "content": null, "tool_calls": [{"id": "call_a", "type": "function", "function": {"name": name, "arguments": arguments}}]}),
            "tool_calls",
        ),
    };
    let body = if completion {
        json!({"id": "cmpl-1", "object": "text_completion", "created": 1, "model": "scripted",
               "choices": [{"index": 0, "text": message["content"].as_str().unwrap_or_default(), "finish_reason": finish}], "usage": usage})
    } else {
        json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "scripted",
               "choices": [{"index": 0, "message": message, "finish_reason": finish}], "usage": usage})
    };
    Json(body).into_response()
}

/// A RuntimeConfig for an agent on `base_url`, from YAML snippets of the Agent spec.
pub fn config(base_url: &str, agent_spec: &str, data_dir: &std::path::Path, prompt_format: &str) -> RuntimeConfig {
    let model: Model = serde_yaml::from_str(&format!(
        "apiVersion: agent-operator.dev/v1alpha1\nkind: Model\nmetadata: {{name: scripted, namespace: test}}\nspec:\n  endpoint: {{baseUrl: \"{base_url}\", model: scripted}}\n  promptFormat: {prompt_format}\n  capabilities: {{chat: true, tools: true}}\n"
    ))
    .unwrap();
    let agent: Agent = serde_yaml::from_str(&format!(
        "apiVersion: agent-operator.dev/v1alpha1\nkind: Agent\nmetadata: {{name: helper, namespace: test}}\nspec:\n{}{agent_spec}",
        if agent_spec.contains("  model:") { "" } else { "  model: {modelRef: {name: scripted}}\n" }
    ))
    .unwrap();
    let references = ResolvedReferences { model: Some(model), ..Default::default() };
    let paths = PodPaths {
        data_dir: data_dir.display().to_string(),
        secrets_dir: data_dir.join("secrets").display().to_string(),
    };
    render_runtime_config(&agent, &references, &paths).unwrap()
}

/// A fresh temporary directory (swept once its test process has ended).
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = scratch::scratch_path(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Options with short timeouts so failure tests are quick, and Secret files checked often so
/// a changed one is seen at once.
pub fn quick_options() -> ServeOptions {
    ServeOptions {
        call_policy: CallPolicy {
            idle_timeout: Duration::from_secs(2),
            answer_timeout: Duration::from_secs(2),
            attempts: 3,
            backoff: Duration::from_millis(20),
        },
        secret_check_every: Duration::from_millis(100),
        ..ServeOptions::default()
    }
}

/// The agent's HTTP state for `config`.
pub fn state(config: RuntimeConfig, options: &ServeOptions) -> AppState {
    agent_runtime::build_state(config, options).unwrap()
}

/// Sends a request to the agent's router; returns status, headers and body text.
pub async fn send(state: &AppState, request: Request<Body>) -> (StatusCode, String) {
    let response = router(state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 16 << 20).await.unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

/// A JSON POST.
pub fn post(path: &str, body: &Value) -> Request<Body> {
    Request::post(path).header("content-type", "application/json").body(Body::from(body.to_string())).unwrap()
}

/// The all-MiniLM-L6-v2 folder installed by `scripts/install-llm.sh` (from its env file).
pub fn minilm_dir() -> PathBuf {
    installed("MINILM_DIR")
}

/// The Gemma 3 270M GGUF installed by `scripts/install-llm.sh` (from its env file).
pub fn gemma_gguf() -> PathBuf {
    installed("GEMMA_GGUF")
}

/// A path `scripts/install-llm.sh`'s env file names as `variable`.
fn installed(variable: &str) -> PathBuf {
    let llm_dir = std::env::var_os("AGENT_LLM_DIR").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into())).join(".cache/agent-operator/llm"),
        PathBuf::from,
    );
    let env_file = llm_dir.join("env");
    let text = std::fs::read_to_string(&env_file)
        .unwrap_or_else(|e| panic!("cannot read {} ({e}): run scripts/install-llm.sh", env_file.display()));
    let prefix = format!("{variable}=");
    let value = text
        .lines()
        .find_map(|line| line.trim().trim_start_matches("export ").strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("{} names no {variable}: run scripts/install-llm.sh", env_file.display()));
    PathBuf::from(value.trim().trim_matches(['"', '\'']))
}
