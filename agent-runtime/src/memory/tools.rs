//! The `remember` and `recall` tools: the model stores facts it should keep and looks them up.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::{Memory, Scope};
use crate::openai::FunctionSpec;
use crate::tools::{Tool, ToolError};

/// Stores a fact in long-term memory.
pub struct Remember(pub Arc<Memory>);

impl Tool for Remember {
    fn spec(&self) -> FunctionSpec {
        FunctionSpec {
            name: "remember".into(),
            description: "Store a fact in long-term memory so it can be recalled in later conversations.".into(),
            parameters: json!({"type": "object", "properties": {"fact": {"type": "string", "description": "The fact, one sentence"}}, "required": ["fact"]}),
        }
    }

    fn call(&self, arguments: Value) -> BoxFuture<'_, Result<String, ToolError>> {
        async move {
            let fact = arguments
                .get("fact")
                .and_then(Value::as_str)
                .ok_or_else(|| ToolError::BadArguments("needs a fact string".into()))?;
            self.0.remember(fact, &Scope::Agent).await.map_err(|e| ToolError::Failed(e.to_string()))?;
            Ok("remembered".into())
        }
        .boxed()
    }
}

/// Looks facts up in long-term memory.
pub struct Recall(pub Arc<Memory>);

impl Tool for Recall {
    fn spec(&self) -> FunctionSpec {
        FunctionSpec {
            name: "recall".into(),
            description: "Search long-term memory for facts relevant to a question.".into(),
            parameters: json!({"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}),
        }
    }

    fn call(&self, arguments: Value) -> BoxFuture<'_, Result<String, ToolError>> {
        async move {
            let query = arguments
                .get("query")
                .and_then(Value::as_str)
                .ok_or_else(|| ToolError::BadArguments("needs a query string".into()))?;
            let facts = self.0.recall(query, None, 5, 512).await.map_err(|e| ToolError::Failed(e.to_string()))?;
            Ok(if facts.is_empty() { "nothing relevant remembered".into() } else { facts.join("\n") })
        }
        .boxed()
    }
}
