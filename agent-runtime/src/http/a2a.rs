//! The A2A edge: the agent card at `/.well-known/agent-card.json` and the JSON-RPC binding at
//! `POST /a2a`, for protocol 1.0 clients (`SendMessage`, `SendStreamingMessage`, `GetTask`,
//! `CancelTask`) and 0.3 ones (`message/send`, `message/stream`, `tasks/get`, `tasks/cancel`):
//! the method name says which, and answers take that version's shapes. Every JSON-RPC answer
//! is HTTP 200, errors included; a stream that fails before its first event is a plain error.

use std::convert::Infallible;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

use super::AppState;
use crate::a2a::model::{Inbound, StreamEvent, Task, TaskState, event_v03, task_v03};
use crate::tasks::{Follow, Origin, Submission, TaskError, TaskRecord};

/// Where the JSON-RPC binding is served.
pub const A2A_PATH: &str = "/a2a";

/// The protocol version a request speaks, told by its method name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Version {
    V1,
    V03,
}

/// A JSON-RPC error.
struct RpcError {
    code: i64,
    reason: &'static str,
    message: String,
}

impl RpcError {
    fn new(code: i64, reason: &'static str, message: impl Into<String>) -> Self {
        Self { code, reason, message: message.into() }
    }

    fn body(&self, id: &Value, version: Version) -> Value {
        let data = match version {
            Version::V1 => json!([{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": self.reason,
                "domain": "a2a-protocol.org",
                "metadata": {},
            }]),
            Version::V03 => Value::Null,
        };
        json!({"jsonrpc": "2.0", "id": id, "error": {"code": self.code, "message": self.message, "data": data}})
    }
}

impl From<TaskError> for RpcError {
    fn from(error: TaskError) -> Self {
        let message = error.to_string();
        match error {
            TaskError::TaskNotFound(_) => Self::new(-32001, "TASK_NOT_FOUND", message),
            TaskError::NotCancelable { .. } => Self::new(-32002, "TASK_NOT_CANCELABLE", message),
            TaskError::NotAccepting { .. } => Self::new(-32004, "UNSUPPORTED_OPERATION", message),
            TaskError::InvalidParams(_) => Self::new(-32602, "INVALID_PARAMS", message),
            TaskError::Store(_) => Self::new(-32603, "INTERNAL_ERROR", message),
        }
    }
}

/// The answer to one JSON-RPC request: a result, or a stream of them.
enum Outcome {
    Result(Value),
    Stream(Box<Task>, Option<broadcast::Receiver<StreamEvent>>),
}

/// `POST /a2a`.
pub async fn rpc(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let request: Value = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => {
            let error = RpcError::new(-32700, "PARSE_ERROR", format!("the body is not JSON: {error}"));
            return Json(error.body(&Value::Null, Version::V1)).into_response();
        }
    };
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    let method = request.get("method").and_then(Value::as_str).unwrap_or_default().to_owned();
    let version = if method.contains('/') { Version::V03 } else { Version::V1 };
    let outcome = match envelope_problem(&request, &headers, version) {
        Some(problem) => Err(problem),
        None => dispatch(&state, &method, request.get("params").unwrap_or(&Value::Null), version).await,
    };
    match outcome {
        Ok(Outcome::Result(result)) => Json(json!({"jsonrpc": "2.0", "id": id, "result": result})).into_response(),
        Ok(Outcome::Stream(task, events)) => stream(*task, events, id, version),
        Err(error) => Json(error.body(&id, version)).into_response(),
    }
}

/// What makes `request` no valid JSON-RPC call for its protocol version.
fn envelope_problem(request: &Value, headers: &HeaderMap, version: Version) -> Option<RpcError> {
    let invalid = |why: &str| Some(RpcError::new(-32600, "INVALID_REQUEST", why));
    if !request.is_object() {
        return invalid("a request is one JSON object (batches are not supported)");
    }
    if request.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return invalid("jsonrpc must be \"2.0\"");
    }
    if request.get("id").is_some_and(|id| !(id.is_string() || id.is_number() || id.is_null())) {
        return invalid("id must be a string or a number");
    }
    if !request.get("method").is_some_and(Value::is_string) {
        return invalid("method must be a string");
    }
    // 1.0 clients send A2A-Version; a 1.0 method name is unambiguous, so a missing header is
    // accepted, but one naming another major version is not.
    let asked = headers.get("a2a-version").and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty());
    match (version, asked) {
        (Version::V1, Some(asked)) if !asked.starts_with("1.") && asked != "1" => Some(RpcError::new(
            -32009,
            "VERSION_NOT_SUPPORTED",
            format!("A2A version {asked} is not supported by 1.0 methods; this agent speaks 1.0 and 0.3"),
        )),
        _ => None,
    }
}

async fn dispatch(state: &AppState, method: &str, params: &Value, version: Version) -> Result<Outcome, RpcError> {
    let as_version = |task: Task| match version {
        Version::V1 => json!(task),
        Version::V03 => task_v03(&task),
    };
    match method {
        "SendMessage" | "message/send" => {
            let (inbound, wait) = send_params(params, version)?;
            let follow = if wait { Follow::Wait } else { Follow::Detach };
            let (record, _) = send(state, inbound, follow).await?;
            Ok(Outcome::Result(match version {
                Version::V1 => json!({"task": record.task}),
                Version::V03 => task_v03(&record.task),
            }))
        }
        "SendStreamingMessage" | "message/stream" => {
            let (inbound, _) = send_params(params, version)?;
            let (record, events) = send(state, inbound, Follow::Stream).await?;
            Ok(Outcome::Stream(Box::new(record.task), events))
        }
        "GetTask" | "tasks/get" => {
            let history =
                params.get("historyLength").and_then(Value::as_u64).map(|n| usize::try_from(n).unwrap_or(usize::MAX));
            Ok(Outcome::Result(as_version(state.tasks.get(task_id(params)?, history).await?.task)))
        }
        "CancelTask" | "tasks/cancel" => {
            Ok(Outcome::Result(as_version(state.tasks.cancel(task_id(params)?).await?.task)))
        }
        other => Err(RpcError::new(-32601, "METHOD_NOT_FOUND", format!("method {other:?} not found"))),
    }
}

/// Starts a task for the message, or continues the task it names.
async fn send(
    state: &AppState,
    inbound: Inbound,
    follow: Follow,
) -> Result<(TaskRecord, Option<broadcast::Receiver<StreamEvent>>), TaskError> {
    if let Some(id) = &inbound.task_id {
        return state.tasks.answer(id, &inbound, follow).await;
    }
    let submission = Submission {
        origin: Origin::A2a,
        context_id: inbound.context_id.clone(),
        message_id: Some(inbound.message_id.clone()).filter(|id| !id.is_empty()),
        text: inbound.text,
        ..Submission::default()
    };
    state.tasks.submit(submission, follow).await
}

fn send_params(params: &Value, version: Version) -> Result<(Inbound, bool), RpcError> {
    let message =
        params.get("message").ok_or_else(|| RpcError::new(-32602, "INVALID_PARAMS", "params.message is required"))?;
    let inbound = Inbound::read(message).ok_or_else(|| {
        RpcError::new(-32602, "INVALID_PARAMS", "params.message needs parts with text, data or a file")
    })?;
    let configuration = params.get("configuration");
    let wait = match version {
        Version::V1 => {
            !configuration.and_then(|c| c.get("returnImmediately")).and_then(Value::as_bool).unwrap_or(false)
        }
        Version::V03 => configuration.and_then(|c| c.get("blocking")).and_then(Value::as_bool).unwrap_or(true),
    };
    Ok((inbound, wait))
}

fn task_id(params: &Value) -> Result<&str, RpcError> {
    params
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::new(-32602, "INVALID_PARAMS", "params.id is required"))
}

/// The task as it is, then its events until it is final or waits for input.
fn stream(task: Task, events: Option<broadcast::Receiver<StreamEvent>>, id: Value, version: Version) -> Response {
    let follow = futures::stream::unfold(events, |events| async move {
        let mut events = events?;
        loop {
            match events.recv().await {
                Ok(StreamEvent::StatusUpdate { task_id, context_id, status }) => {
                    let settled = status.state.is_terminal() || status.state == TaskState::InputRequired;
                    let event = StreamEvent::StatusUpdate { task_id, context_id, status };
                    return Some((event, (!settled).then_some(events)));
                }
                Ok(event) => return Some((event, Some(events))),
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return None,
            }
        }
    });
    let body = futures::stream::iter([StreamEvent::Task(task)]).chain(follow).map(move |event| {
        let result = match version {
            Version::V1 => json!(event),
            Version::V03 => event_v03(&event),
        };
        Ok::<_, Infallible>(SseEvent::default().data(json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string()))
    });
    Sse::new(body).keep_alive(KeepAlive::default()).into_response()
}

/// `GET /.well-known/agent-card.json`: who the agent is and how to reach it, readable by 1.0
/// clients (`supportedInterfaces`) and 0.3 ones (`url`, `preferredTransport`, `security`).
pub async fn card(State(state): State<AppState>, headers: HeaderMap) -> Json<Value> {
    let config = &state.agent.config;
    let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    let scheme = headers.get("x-forwarded-proto").and_then(|h| h.to_str().ok()).unwrap_or("http");
    let url = format!("{scheme}://{host}{A2A_PATH}");
    let description = config
        .persona
        .description
        .clone()
        .or_else(|| config.task.instructions.clone())
        .unwrap_or_else(|| format!("The {} agent: ask it anything in plain language.", config.persona.name));
    let mut skills = vec![json!({
        "id": config.agent.name,
        "name": config.persona.name,
        "description": description,
        "tags": ["chat"],
    })];
    if let Some(recipe) = &config.recipe {
        skills.push(json!({
            "id": format!("recipe-{}", recipe.name),
            "name": recipe.name,
            "description": recipe.spec.description,
            "tags": ["knowledge", "rag"],
        }));
    }
    for tool in state.agent.tools().listing().tools {
        skills.push(json!({
            "id": format!("tool-{}", tool.name),
            "name": tool.name,
            "description": tool.description,
            "tags": ["tool", tool.source],
        }));
    }
    let mut card = json!({
        "name": config.agent.name,
        "description": description,
        "version": env!("CARGO_PKG_VERSION"),
        "supportedInterfaces": [
            {"url": url, "protocolBinding": "JSONRPC", "protocolVersion": "1.0"},
            {"url": url, "protocolBinding": "JSONRPC", "protocolVersion": "0.3"},
        ],
        "capabilities": {"streaming": true, "pushNotifications": false},
        "defaultInputModes": ["text/plain", "application/json"],
        "defaultOutputModes": ["text/plain"],
        "skills": skills,
        "url": url,
        "preferredTransport": "JSONRPC",
        "protocolVersion": "0.3",
    });
    if state.api_key.is_some() {
        card["securitySchemes"] = json!({"bearer": {
            "httpAuthSecurityScheme": {"scheme": "Bearer", "description": "the agent's API key"},
            "type": "http",
            "scheme": "bearer",
            "description": "the agent's API key",
        }});
        card["securityRequirements"] = json!([{"schemes": {"bearer": {"list": []}}}]);
        card["security"] = json!([{"bearer": []}]);
    }
    Json(card)
}
