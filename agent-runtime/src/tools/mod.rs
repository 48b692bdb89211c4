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

use crate::fetch::{FetchError, FetchPolicy, Fetcher};
use crate::memory::Memory;
use crate::memory::tools::{Recall, Remember};
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

/// What a tool call gave the model, and how it went.
#[derive(Debug)]
pub struct CallResult<'a> {
    /// The text the model sees.
    pub text: String,
    /// How the call went.
    pub outcome: Outcome,
    /// The configured tool's name, or `unknown`: a bounded metric label, never the model's text.
    pub tool: &'a str,
}

/// What tools need from the rest of the runtime.
pub struct ToolDeps {
    /// Longest a tool call may take.
    pub timeout: Duration,
    /// Long-term memory, for `remember` and `recall` (`None` when knowledge is off).
    pub memory: Option<Arc<Memory>>,
    /// Why memory is off, said when a memory tool is configured without it.
    pub memory_off_reason: String,
}

/// Why the configured tools cannot be offered.
#[derive(Debug, thiserror::Error)]
pub enum ToolSetupError {
    /// A memory tool is configured but long-term memory is off.
    #[error("tool {tool}: needs long-term memory, which is off ({reason})")]
    NeedsMemory {
        /// The tool entry.
        tool: String,
        /// Why memory is off.
        reason: String,
    },
    /// This runtime cannot run the tool kind.
    #[error("tool {tool}: {kind} tools are not implemented by this runtime version")]
    NotImplemented {
        /// The tool entry.
        tool: String,
        /// The kind.
        kind: &'static str,
    },
    /// The tool's HTTP client cannot be built.
    #[error("tool {tool}: {source}")]
    Fetcher {
        /// The tool entry.
        tool: String,
        /// Why.
        source: FetchError,
    },
}

/// Builds the tools of `configs`; a tool that cannot be offered fails the whole set, so an
/// agent never runs with fewer tools than its author gave it.
pub fn registry(configs: &[ToolConfig], deps: &ToolDeps) -> Result<ToolRegistry, ToolSetupError> {
    let mut registry = ToolRegistry { tools: BTreeMap::new(), timeout: deps.timeout };
    for config in configs {
        for tool in tools(config, deps)? {
            registry.insert(tool);
        }
    }
    Ok(registry)
}

/// The tools one entry offers: one, except a memory entry (`remember` or `recall`), which
/// offers both, since storing facts without looking them up (or the reverse) is of no use.
fn tools(config: &ToolConfig, deps: &ToolDeps) -> Result<Vec<Arc<dyn Tool>>, ToolSetupError> {
    let fetcher = |policy: FetchPolicy| {
        Fetcher::new(policy, deps.timeout)
            .map_err(|source| ToolSetupError::Fetcher { tool: config.name.clone(), source })
    };
    let memory = || {
        deps.memory.clone().ok_or_else(|| ToolSetupError::NeedsMemory {
            tool: config.name.clone(),
            reason: deps.memory_off_reason.clone(),
        })
    };
    let tool: Arc<dyn Tool> = match &config.kind {
        ToolKind::Builtin { tool: BuiltinToolKind::CurrentTime, .. } => Arc::new(builtin::CurrentTime),
        ToolKind::Builtin { tool: BuiltinToolKind::HttpGet, allowed_urls } => {
            Arc::new(http_get::HttpGet::new(allowed_urls.clone(), fetcher(FetchPolicy::only(allowed_urls.clone()))?))
        }
        ToolKind::Builtin { tool: BuiltinToolKind::Remember | BuiltinToolKind::Recall, .. } => {
            let memory = memory()?;
            return Ok(vec![Arc::new(Remember(memory.clone())), Arc::new(Recall(memory))]);
        }
        ToolKind::Http { url, description, parameters } => Arc::new(http_tool::HttpTool::new(
            &config.name,
            url,
            description,
            parameters.clone(),
            fetcher(FetchPolicy::only(vec![url.clone()]))?,
        )),
        ToolKind::Agent { url } => {
            let endpoint = agent_tool::chat_endpoint(url);
            Arc::new(agent_tool::AgentTool::new(
                &config.name,
                &endpoint,
                fetcher(FetchPolicy::only(vec![endpoint.clone()]))?,
            ))
        }
        ToolKind::Mcp { .. } => {
            return Err(ToolSetupError::NotImplemented { tool: config.name.clone(), kind: "MCP" });
        }
    };
    Ok(vec![tool])
}

impl ToolRegistry {
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

    /// Names of the tools, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tools.keys().map(String::as_str)
    }

    /// Runs the call `name(arguments)`; the text is what the model sees.
    pub async fn call(&self, name: &str, arguments: &str) -> CallResult<'_> {
        let Some((tool_name, tool)) = self.tools.get_key_value(name) else {
            let known: Vec<&str> = self.names().collect();
            let text = format!("error: there is no tool named {name}; available: {}", known.join(", "));
            return CallResult { text, outcome: Outcome::Unknown, tool: "unknown" };
        };
        let result = |text, outcome| CallResult { text, outcome, tool: tool_name.as_str() };
        let arguments: Value = if arguments.trim().is_empty() {
            Value::Object(serde_json::Map::new())
        } else {
            match serde_json::from_str(arguments) {
                Ok(value) => value,
                Err(error) => return result(format!("error: arguments are not valid JSON: {error}"), Outcome::Error),
            }
        };
        match tokio::time::timeout(self.timeout, tool.call(arguments)).await {
            Ok(Ok(text)) => result(text, Outcome::Ok),
            Ok(Err(error)) => result(format!("error: {error}"), Outcome::Error),
            Err(_) => {
                result(format!("error: {name} did not answer within {} s", self.timeout.as_secs()), Outcome::Timeout)
            }
        }
    }
}
