//! Another agent as a tool: the model's question goes to that agent's chat API
//! (`POST {url}/v1/chat/completions`, one user message, not streamed) and its answer comes back
//! as the result. A `doc-retriever` agent used this way is a search tool over its documents.

use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::{Tool, ToolError};
use crate::error::error_chain;
use crate::openai::FunctionSpec;

/// A tool that asks another agent.
pub struct AgentTool {
    name: String,
    url: String,
    client: reqwest::Client,
}

impl AgentTool {
    /// A tool named `name` asking the agent whose API is at `url` (its base URL).
    pub fn new(name: &str, url: &str, timeout: Duration) -> Self {
        crate::install_crypto_provider();
        Self {
            name: name.replace('-', "_"),
            url: format!("{}/v1/chat/completions", url.trim_end_matches('/')),
            client: reqwest::Client::builder().timeout(timeout).build().unwrap_or_default(),
        }
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
            let response = self
                .client
                .post(&self.url)
                .json(&request)
                .send()
                .await
                .map_err(|e| ToolError::Failed(format!("cannot reach {}: {}", self.url, error_chain(&e))))?;
            let status = response.status();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            if !status.is_success() {
                let message = body["error"]["message"].as_str().unwrap_or("no error message");
                return Err(ToolError::Failed(format!("the agent answered {status}: {message}")));
            }
            body["choices"][0]["message"]["content"]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| ToolError::Failed("the agent's answer has no message content".into()))
        }
        .boxed()
    }
}
