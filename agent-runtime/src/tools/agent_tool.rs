//! Another agent as a tool: the model's question goes to that agent's chat API
//! (`POST {url}/v1/chat/completions`, one user message, not streamed) and its answer comes back
//! as the result. A `doc-retriever` agent used this way is a search tool over its documents.

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::{Tool, ToolError};
use crate::fetch::Fetcher;
use crate::openai::FunctionSpec;

/// Largest answer read from the other agent.
const MAX_ANSWER: usize = 1 << 20;

/// The chat endpoint of the agent whose API is at `base_url`.
pub fn chat_endpoint(base_url: &str) -> String {
    format!("{}/v1/chat/completions", base_url.trim_end_matches('/'))
}

/// A tool that asks another agent.
pub struct AgentTool {
    name: String,
    url: String,
    fetcher: Fetcher,
}

impl AgentTool {
    /// A tool named `name` asking the agent whose chat endpoint is `url`.
    pub fn new(name: &str, url: &str, fetcher: Fetcher) -> Self {
        Self { name: name.replace('-', "_"), url: url.to_owned(), fetcher }
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
            let request = json!({"messages": [{"role": "user", "content": question}], "stream": false});
            let answer = self
                .fetcher
                .post_json(&self.url, &request, MAX_ANSWER)
                .await
                .map_err(|e| ToolError::Failed(e.to_string()))?;
            let body: Value = serde_json::from_slice(&answer.bytes).unwrap_or(Value::Null);
            if !(200..300).contains(&answer.status) {
                let message = body["error"]["message"].as_str().unwrap_or("no error message");
                return Err(ToolError::Failed(format!("the agent answered HTTP {}: {message}", answer.status)));
            }
            body["choices"][0]["message"]["content"]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| ToolError::Failed("the agent's answer has no message content".into()))
        }
        .boxed()
    }
}
