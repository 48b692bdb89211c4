//! Tools the model may call. Each tool implements [`Tool`]; the registry offers their specs to
//! the model and runs calls with a timeout, turning failures into text the model can read.

pub mod agent_tool;
pub mod builtin;
pub mod http_get;
pub mod http_tool;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use agent_crds::agent::BuiltinToolKind;
use agent_crds::runtime_config::{ToolConfig, ToolKind};
use futures::future::BoxFuture;
use serde_json::Value;

use crate::openai::{FunctionSpec, ToolSpec};

/// A tool the model can call.
pub trait Tool: Send + Sync {
    /// Name, description and argument schema shown to the model.
    fn spec(&self) -> FunctionSpec;

    /// Runs the tool with the model's arguments; the result goes back to the model as text.
    fn call(&self, arguments: Value) -> BoxFuture<'_, Result<String, ToolError>>;
}

/// Why a tool call failed; the message is shown to the model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ToolError {
    /// The arguments do not fit the tool.
    #[error("bad arguments: {0}")]
    BadArguments(String),
    /// The call is not allowed.
    #[error("refused: {0}")]
    Refused(String),
    /// The tool failed.
    #[error("failed: {0}")]
    Failed(String),
}

/// Outcome of a call, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The tool answered.
    Ok,
    /// The tool failed or refused.
    Error,
    /// The tool did not answer in time.
    Timeout,
    /// The model named a tool that does not exist.
    Unknown,
}

impl Outcome {
    /// Metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Error => "error",
            Self::Timeout => "timeout",
            Self::Unknown => "unknown",
        }
    }
}

/// The agent's tools by name.
#[derive(Clone, Default)]
pub struct ToolRegistry {
    tools: BTreeMap<String, Arc<dyn Tool>>,
    timeout: Duration,
}

impl ToolRegistry {
    /// Builds the tools of `configs`; returns the registry and the names of entries this runtime
    /// cannot run yet (so the caller can say so).
    pub fn from_config(configs: &[ToolConfig], timeout: Duration) -> (Self, Vec<String>) {
        let mut registry = Self { tools: BTreeMap::new(), timeout };
        let mut skipped = Vec::new();
        for config in configs {
            let tool: Option<Arc<dyn Tool>> = match &config.kind {
                ToolKind::Builtin { tool: BuiltinToolKind::CurrentTime, .. } => Some(Arc::new(builtin::CurrentTime)),
                ToolKind::Builtin { tool: BuiltinToolKind::HttpGet, allowed_urls } => {
                    Some(Arc::new(http_get::HttpGet::new(allowed_urls.clone(), timeout)))
                }
                ToolKind::Http { url, description, parameters } => Some(Arc::new(http_tool::HttpTool::new(
                    &config.name,
                    url,
                    description,
                    parameters.clone(),
                    timeout,
                ))),
                ToolKind::Agent { url } => Some(Arc::new(agent_tool::AgentTool::new(&config.name, url, timeout))),
                ToolKind::Builtin { .. } | ToolKind::Mcp { .. } => None,
            };
            match tool {
                Some(tool) => {
                    registry.tools.insert(tool.spec().name, tool);
                }
                None => skipped.push(config.name.clone()),
            }
        }
        (registry, skipped)
    }

    /// Adds a tool (tests and later tool kinds).
    pub fn insert(&mut self, tool: Arc<dyn Tool>) {
        self.tools.insert(tool.spec().name, tool);
    }

    /// Specs offered to the model.
    pub fn specs(&self) -> Vec<ToolSpec> {
        self.tools.values().map(|t| ToolSpec { kind: "function".into(), function: t.spec() }).collect()
    }

    /// Whether there are no tools.
    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }

    /// Runs the call `name(arguments)`; the text is what the model sees.
    pub async fn call(&self, name: &str, arguments: &str) -> (String, Outcome) {
        let Some(tool) = self.tools.get(name) else {
            let known: Vec<&str> = self.tools.keys().map(String::as_str).collect();
            return (
                format!("error: there is no tool named {name}; available: {}", known.join(", ")),
                Outcome::Unknown,
            );
        };
        let arguments: Value = if arguments.trim().is_empty() {
            Value::Object(serde_json::Map::new())
        } else {
            match serde_json::from_str(arguments) {
                Ok(value) => value,
                Err(error) => return (format!("error: arguments are not valid JSON: {error}"), Outcome::Error),
            }
        };
        match tokio::time::timeout(self.timeout, tool.call(arguments)).await {
            Ok(Ok(text)) => (text, Outcome::Ok),
            Ok(Err(error)) => (format!("error: {error}"), Outcome::Error),
            Err(_) => (format!("error: {name} did not answer within {} s", self.timeout.as_secs()), Outcome::Timeout),
        }
    }
}
