//! `search_knowledge`: the tool an `Agent`-mode recipe gives the model, so it searches the
//! agent's documents when it decides to (the react-agent loop).

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::Pipeline;
use crate::openai::FunctionSpec;
use crate::tools::{Tool, ToolError};

/// Searches the agent's knowledge with the recipe's retrieval settings.
pub struct SearchKnowledge(pub Arc<Pipeline>);

impl Tool for SearchKnowledge {
    fn spec(&self) -> FunctionSpec {
        FunctionSpec {
            name: "search_knowledge".into(),
            description:
                "Search the documents this agent was given. Returns numbered passages with their document names.".into(),
            parameters: json!({"type": "object", "properties": {"query": {"type": "string", "description": "What to look for"}}, "required": ["query"]}),
        }
    }

    fn call(&self, arguments: Value) -> BoxFuture<'_, Result<String, ToolError>> {
        async move {
            let query = arguments
                .get("query")
                .and_then(Value::as_str)
                .filter(|q| !q.trim().is_empty())
                .ok_or_else(|| ToolError::BadArguments("needs a non-empty query string".into()))?;
            let passages = self.0.retrieve(query).await.map_err(|e| ToolError::Failed(e.to_string()))?;
            if passages.is_empty() {
                return Ok("no passages found".into());
            }
            Ok(passages
                .iter()
                .enumerate()
                .map(|(i, p)| format!("[{}] ({}) {}", i + 1, p.document_name, p.text))
                .collect::<Vec<_>>()
                .join("\n"))
        }
        .boxed()
    }
}
