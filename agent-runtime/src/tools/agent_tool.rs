//! Another agent as a tool, over A2A: the model's question becomes a blocking `SendMessage` to
//! that agent, with the caller's credential as a bearer token, and the task's answer comes back
//! as the result. An `Agent` of this operator is reached at its JSON-RPC endpoint directly; a
//! remote agent is read through its agent card first (a 1.0 interface, else the 0.3 `url`).
//! A refused credential, an unknown agent, a failed or waiting task are tool errors the model
//! reads, never a failed turn.

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use super::{Tool, ToolError};
use crate::fetch::Fetcher;
use crate::openai::FunctionSpec;
use crate::secret_file::SecretFile;

/// Largest answer or card read from the other agent.
const MAX_ANSWER: usize = 1 << 20;

/// Where the callee's JSON-RPC binding is, relative to its base URL, when it is one of ours.
const OWN_A2A_PATH: &str = "/a2a";

/// The other agent's JSON-RPC endpoint and the protocol version it speaks there.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Endpoint {
    url: String,
    v1: bool,
}

/// A tool that asks another agent.
pub struct AgentTool {
    name: String,
    base: String,
    remote: bool,
    token: Option<SecretFile>,
    fetcher: Fetcher,
    endpoint: OnceCell<Endpoint>,
}

impl AgentTool {
    /// A tool named `name` asking the agent at `base`: one of this operator's Agents, or with
    /// `remote` any A2A agent (found through its card). `token` is presented as a bearer token,
    /// as its Secret file holds it at each call.
    pub fn new(name: &str, base: &str, remote: bool, token: Option<SecretFile>, fetcher: Fetcher) -> Self {
        Self {
            name: name.replace('-', "_"),
            base: base.trim_end_matches('/').to_owned(),
            remote,
            token,
            fetcher,
            endpoint: OnceCell::new(),
        }
    }

    async fn endpoint(&self) -> Result<&Endpoint, ToolError> {
        self.endpoint
            .get_or_try_init(|| async {
                if !self.remote {
                    return Ok(Endpoint { url: format!("{}{OWN_A2A_PATH}", self.base), v1: true });
                }
                let url = format!("{}/.well-known/agent-card.json", self.base);
                let card = self.fetcher.get(&url, MAX_ANSWER).await.map_err(|e| ToolError::Failed(e.to_string()))?;
                if !(200..300).contains(&card.status) {
                    return Err(ToolError::Failed(format!("no agent card at {url} (HTTP {})", card.status)));
                }
                let card: Value = serde_json::from_slice(&card.bytes)
                    .map_err(|e| ToolError::Failed(format!("the agent card at {url} is not JSON: {e}")))?;
                endpoint_of(&card).ok_or_else(|| {
                    ToolError::Failed(format!("the agent card at {url} names no JSON-RPC interface of A2A 1.x or 0.3"))
                })
            })
            .await
    }

    async fn ask(&self, question: &str) -> Result<String, ToolError> {
        let endpoint = self.endpoint().await?;
        let message_id = format!("{:032x}", rand::random::<u128>());
        let (method, message) = if endpoint.v1 {
            ("SendMessage", json!({"messageId": message_id, "role": "ROLE_USER", "parts": [{"text": question}]}))
        } else {
            (
                "message/send",
                json!({"kind": "message", "messageId": message_id, "role": "user", "parts": [{"kind": "text", "text": question}]}),
            )
        };
        let request = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": {"message": message}});
        let mut headers = Vec::new();
        if endpoint.v1 {
            headers.push(("a2a-version", "1.0".to_owned()));
        }
        if let Some(token) = &self.token {
            headers.push(("authorization", format!("Bearer {}", token.current())));
        }
        let answer = self
            .fetcher
            .post_json_with(&endpoint.url, &request, &headers, MAX_ANSWER)
            .await
            .map_err(|e| ToolError::Failed(e.to_string()))?;
        match answer.status {
            401 | 403 => {
                return Err(ToolError::Refused(format!(
                    "the agent at {} refused this agent's credential (HTTP {})",
                    self.base, answer.status
                )));
            }
            404 => return Err(ToolError::Failed(format!("there is no A2A agent at {} (HTTP 404)", endpoint.url))),
            status if !(200..300).contains(&status) => {
                return Err(ToolError::Failed(format!("the agent at {} answered HTTP {status}", self.base)));
            }
            _ => {}
        }
        let body: Value = serde_json::from_slice(&answer.bytes)
            .map_err(|e| ToolError::Failed(format!("the agent's answer is not JSON: {e}")))?;
        if let Some(error) = body.get("error") {
            let message = error["message"].as_str().unwrap_or("no message");
            return Err(ToolError::Failed(format!("the agent answered error {}: {message}", error["code"])));
        }
        outcome(&body["result"])
    }
}

/// The JSON-RPC endpoint a card names: a 1.x interface first, else a 0.3 one or its `url`.
fn endpoint_of(card: &Value) -> Option<Endpoint> {
    let interfaces = card.get("supportedInterfaces").and_then(Value::as_array).cloned().unwrap_or_default();
    let jsonrpc = |version: &str| {
        interfaces.iter().find(|i| {
            i["protocolBinding"] == "JSONRPC" && i["protocolVersion"].as_str().is_some_and(|v| v.starts_with(version))
        })
    };
    if let Some(url) = jsonrpc("1.").and_then(|i| i["url"].as_str()) {
        return Some(Endpoint { url: url.to_owned(), v1: true });
    }
    let legacy = jsonrpc("0.3").and_then(|i| i["url"].as_str()).or_else(|| card.get("url").and_then(Value::as_str))?;
    Some(Endpoint { url: legacy.to_owned(), v1: false })
}

/// The answer in a `SendMessage` result (a task or a message, in 1.0 or 0.3 shape).
fn outcome(result: &Value) -> Result<String, ToolError> {
    let task = result.get("task").unwrap_or(result);
    let message = result.get("message").filter(|_| result.get("task").is_none());
    let text_of = |parts: &Value| -> String {
        parts
            .as_array()
            .map(|parts| parts.iter().filter_map(|p| p["text"].as_str()).collect::<Vec<_>>().join(""))
            .unwrap_or_default()
    };
    if let Some(message) = message.or_else(|| (task.get("kind") == Some(&json!("message"))).then_some(task)) {
        return Ok(text_of(&message["parts"]));
    }
    let state = task["status"]["state"]
        .as_str()
        .unwrap_or_default()
        .to_lowercase()
        .replace("task_state_", "")
        .replace('_', "-");
    let said = text_of(&task["status"]["message"]["parts"]);
    match state.as_str() {
        "completed" => {
            let artifacts: Vec<String> =
                task["artifacts"].as_array().into_iter().flatten().map(|a| text_of(&a["parts"])).collect();
            let answer = artifacts.join("\n");
            Ok(if answer.trim().is_empty() { said } else { answer })
        }
        "input-required" | "auth-required" => Ok(format!(
            "The other agent waits for input before it can answer (task {}): {said}",
            task["id"].as_str().unwrap_or("?")
        )),
        other => Err(ToolError::Failed(format!("the other agent's task ended {other}: {said}"))),
    }
}

impl Tool for AgentTool {
    fn spec(&self) -> FunctionSpec {
        FunctionSpec {
            name: self.name.clone(),
            description: format!(
                "Ask the {} agent a question in plain language; returns its answer.",
                self.name.replace('_', " ")
            ),
            parameters: json!({"type": "object", "properties": {"question": {"type": "string", "description": "The question, self-contained"}}, "required": ["question"]}),
        }
    }

    fn call(&self, arguments: Value) -> BoxFuture<'_, Result<String, ToolError>> {
        async move {
            let question = arguments
                .get("question")
                .and_then(Value::as_str)
                .filter(|q| !q.trim().is_empty())
                .ok_or_else(|| ToolError::BadArguments("needs a non-empty question string".into()))?;
            self.ask(question).await
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cards_name_their_endpoint_preferring_1_x() {
        let both = json!({"supportedInterfaces": [
            {"url": "http://a/old", "protocolBinding": "JSONRPC", "protocolVersion": "0.3"},
            {"url": "http://a/new", "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}
        ]});
        assert_eq!(endpoint_of(&both), Some(Endpoint { url: "http://a/new".into(), v1: true }));
        let legacy = json!({"url": "http://b/", "protocolVersion": "0.3.0"});
        assert_eq!(endpoint_of(&legacy), Some(Endpoint { url: "http://b/".into(), v1: false }));
        assert_eq!(endpoint_of(&json!({"name": "x"})), None);
    }

    #[test]
    fn answers_are_read_from_tasks_and_messages_of_either_version() {
        let done = json!({"task": {"id": "t", "status": {"state": "TASK_STATE_COMPLETED"}, "artifacts": [{"parts": [{"text": "42"}]}]}});
        assert_eq!(outcome(&done), Ok("42".into()));
        let v03 = json!({"kind": "task", "id": "t", "status": {"state": "completed", "message": {"parts": [{"kind": "text", "text": "done"}]}}});
        assert_eq!(outcome(&v03), Ok("done".into()));
        assert_eq!(outcome(&json!({"message": {"parts": [{"text": "hi"}]}})), Ok("hi".into()));
        let waiting = json!({"task": {"id": "t", "status": {"state": "TASK_STATE_INPUT_REQUIRED", "message": {"parts": [{"text": "approve?"}]}}}});
        assert!(outcome(&waiting).unwrap().contains("waits for input"));
        let failed = json!({"task": {"id": "t", "status": {"state": "TASK_STATE_FAILED", "message": {"parts": [{"text": "model down"}]}}}});
        assert_eq!(outcome(&failed), Err(ToolError::Failed("the other agent's task ended failed: model down".into())));
    }
}
