//! An HTTP endpoint configured by the agent's author as a tool: the model's arguments are POSTed
//! as JSON and the response text is the result.

use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::{Tool, ToolError};
use crate::openai::FunctionSpec;

/// A configured HTTP tool.
pub struct HttpTool {
    name: String,
    url: String,
    description: String,
    parameters: Value,
    client: reqwest::Client,
}

impl HttpTool {
    /// A tool named `name` that POSTs to `url`.
    pub fn new(name: &str, url: &str, description: &str, parameters: Option<Value>, timeout: Duration) -> Self {
        Self {
            name: name.replace('-', "_"),
            url: url.to_owned(),
            description: description.to_owned(),
            parameters: parameters.unwrap_or_else(|| json!({"type": "object"})),
            client: reqwest::Client::builder().timeout(timeout).build().unwrap_or_default(),
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
            let response = self
                .client
                .post(&self.url)
                .json(&arguments)
                .send()
                .await
                .map_err(|e| ToolError::Failed(e.to_string()))?;
            let status = response.status();
            let text = response.text().await.map_err(|e| ToolError::Failed(e.to_string()))?;
            if status.is_success() { Ok(text) } else { Err(ToolError::Failed(format!("HTTP {status}: {text}"))) }
        }
        .boxed()
    }
}
