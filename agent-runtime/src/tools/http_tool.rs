//! An HTTP endpoint configured by the agent's author as a tool: the model's arguments are POSTed
//! as JSON and the response text is the result.

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::{Tool, ToolError};
use crate::fetch::Fetcher;
use crate::openai::FunctionSpec;

/// Largest answer returned to the model.
const MAX_ANSWER: usize = 256 * 1024;

/// A configured HTTP tool.
pub struct HttpTool {
    name: String,
    url: String,
    description: String,
    parameters: Value,
    fetcher: Fetcher,
}

impl HttpTool {
    /// A tool named `name` that POSTs to `url` with `fetcher`.
    pub fn new(name: &str, url: &str, description: &str, parameters: Option<Value>, fetcher: Fetcher) -> Self {
        Self {
            name: name.replace('-', "_"),
            url: url.to_owned(),
            description: description.to_owned(),
            parameters: parameters.unwrap_or_else(|| json!({"type": "object"})),
            fetcher,
        }
    }
}

impl Tool for HttpTool {
    fn spec(&self) -> FunctionSpec {
        FunctionSpec {
            name: self.name.clone(),
            description: self.description.clone(),
            parameters: self.parameters.clone(),
        }
    }

    fn call(&self, arguments: Value) -> BoxFuture<'_, Result<String, ToolError>> {
        async move {
            let answer = self
                .fetcher
                .post_json(&self.url, &arguments, MAX_ANSWER)
                .await
                .map_err(|e| ToolError::Failed(e.to_string()))?;
            let text = String::from_utf8_lossy(&answer.bytes).into_owned();
            if (200..300).contains(&answer.status) {
                Ok(text)
            } else {
                Err(ToolError::Failed(format!("HTTP {}: {text}", answer.status)))
            }
        }
        .boxed()
    }
}
