//! Tools the model may call. Each tool implements [`Tool`], or comes from an MCP server whose
//! tool list changes while the agent runs; the registry offers their specs to the model and runs
//! calls with a timeout, turning failures into text the model can read.

pub mod agent_tool;
pub mod builtin;
pub mod http_get;
pub mod http_tool;
pub mod mcp;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use agent_crds::agent::BuiltinToolKind;
use agent_crds::runtime_config::{ToolConfig, ToolKind};
use futures::future::BoxFuture;
use serde::Serialize;
use serde_json::Value;

use self::mcp::McpServer;
use self::mcp::client::{Endpoint, EndpointError, EndpointFiles};
use crate::fetch::{FetchError, FetchPolicy, Fetcher};
use crate::memory::Memory;
use crate::memory::tools::{Recall, Remember};
use crate::openai::{FunctionSpec, ToolSpec};
use crate::secret_file::SecretFiles;

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
    /// The tool ran and reported an error (an MCP result flagged `isError`).
    #[error("the tool reported an error: {0}")]
    Reported(String),
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

/// The agent's tools: fixed ones by name, and the MCP servers whose tools come and go.
#[derive(Clone, Default)]
pub struct ToolRegistry {
    tools: BTreeMap<String, Registered>,
    servers: Vec<Arc<McpServer>>,
    timeout: Duration,
    /// Tool names or globs whose calls wait for a human decision, whatever their source.
    approval: Vec<String>,
}

#[derive(Clone)]
struct Registered {
    tool: Arc<dyn Tool>,
    source: String,
}

/// One tool as `GET /v1/tools` lists it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolDescription {
    /// The name the model calls it by.
    pub name: String,
    /// Where it comes from: `builtin`, `http/<entry>`, `agent/<entry>`, `mcp/<entry>`, `recipe`.
    pub source: String,
    /// What it does.
    pub description: String,
    /// JSON schema of its arguments.
    pub parameters: Value,
    /// Whether each call waits for a human approval.
    pub requires_approval: bool,
}

/// A tool a source has but the model is not offered, and why.
#[derive(Clone, Debug, Serialize)]
pub struct SkippedDescription {
    /// Its name at the source.
    pub name: String,
    /// Where it comes from.
    pub source: String,
    /// Why it is not offered.
    pub reason: String,
}

/// Every tool the agent offers now, and the ones it does not offer with the reason.
#[derive(Clone, Debug, Serialize)]
pub struct ToolListing {
    /// Offered tools, by name.
    pub tools: Vec<ToolDescription>,
    /// Tools not offered.
    pub skipped: Vec<SkippedDescription>,
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
    /// Opens the token and header files tools send (kept current when their Secrets change).
    pub secrets: SecretFiles,
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
    /// A token file cannot be read.
    #[error("tool {tool}: cannot read {path}: {source}")]
    TokenFile {
        /// The tool entry.
        tool: String,
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// An MCP server's connection settings cannot be used.
    #[error("tool {tool}: {source}")]
    Mcp {
        /// The tool entry.
        tool: String,
        /// Why.
        source: EndpointError,
    },
}

/// Builds the tools of `configs`; a tool that cannot be offered fails the whole set, so an
/// agent never runs with fewer tools than its author gave it. MCP servers are only set up here:
/// [`ToolRegistry::servers`] are watched (connected) by the caller.
pub fn registry(configs: &[ToolConfig], deps: &ToolDeps) -> Result<ToolRegistry, ToolSetupError> {
    let mut registry = ToolRegistry { timeout: deps.timeout, ..ToolRegistry::default() };
    for config in configs {
        if let ToolKind::Mcp {
            url,
            transport,
            allow,
            require_approval,
            token_file,
            header_files,
            ca_pem,
            timeout_seconds,
        } = &config.kind
        {
            let files = EndpointFiles { entry: &config.name, token_file: token_file.as_deref(), header_files };
            let endpoint = Endpoint::new(url, *transport, &files, &deps.secrets, ca_pem.as_deref())
                .map_err(|source| ToolSetupError::Mcp { tool: config.name.clone(), source })?;
            let timeout = timeout_seconds.map(|s| Duration::from_secs(u64::from(s)));
            let server = McpServer::new(&config.name, endpoint, allow.clone(), require_approval.clone(), timeout);
            registry.servers.push(Arc::new(server));
            continue;
        }
        let source = match config.kind {
            ToolKind::Builtin { .. } => "builtin".to_owned(),
            ToolKind::Http { .. } => format!("http/{}", config.name),
            _ => format!("agent/{}", config.name),
        };
        for tool in tools(config, deps)? {
            registry.insert(&source, tool);
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
        ToolKind::Agent { url, remote, token_file } => {
            let token =
                match token_file {
                    Some(path) => Some(deps.secrets.open(format!("tools[{}].tokenFile", config.name), path).map_err(
                        |source| ToolSetupError::TokenFile { tool: config.name.clone(), path: path.clone(), source },
                    )?),
                    None => None,
                };
            let fetcher = fetcher(FetchPolicy::only(vec![url.clone()]))?;
            Arc::new(agent_tool::AgentTool::new(&config.name, url, *remote, token, fetcher))
        }
        ToolKind::Mcp { .. } => unreachable!("MCP servers are set up by `registry`"),
    };
    Ok(vec![tool])
}

/// Where a call goes.
enum Target<'a> {
    Fixed(&'a Arc<dyn Tool>),
    Mcp(&'a McpServer),
}

impl ToolRegistry {
    /// Adds a tool from `source` (`builtin`, `recipe`, ...).
    pub fn insert(&mut self, source: &str, tool: Arc<dyn Tool>) {
        self.tools.insert(tool.spec().name, Registered { tool, source: source.to_owned() });
    }

    /// Makes calls to the tools `names` match (exact names or globs) wait for a human decision.
    pub fn require_approval(&mut self, names: Vec<String>) {
        self.approval = names;
    }

    /// Whether a call to `name` waits for a human decision.
    pub fn requires_approval(&self, name: &str) -> bool {
        mcp::offer::any_matches(&self.approval, name)
            || (!self.tools.contains_key(name)
                && self.servers.iter().any(|s| s.offers(name) && s.requires_approval(name)))
    }

    /// The MCP servers, to be watched.
    pub fn servers(&self) -> &[Arc<McpServer>] {
        &self.servers
    }

    /// Specs offered to the model now.
    pub fn specs(&self) -> Vec<ToolSpec> {
        self.listing()
            .tools
            .into_iter()
            .map(|t| ToolSpec {
                kind: "function".into(),
                function: FunctionSpec { name: t.name, description: t.description, parameters: t.parameters },
            })
            .collect()
    }

    /// Whether no tool is configured (MCP servers count even while they offer nothing).
    pub fn is_empty(&self) -> bool {
        self.tools.is_empty() && self.servers.is_empty()
    }

    /// Every tool offered now: the fixed ones, then each MCP server's in configuration order; a
    /// server tool whose name is taken is skipped.
    pub fn listing(&self) -> ToolListing {
        let mut tools: Vec<ToolDescription> = self
            .tools
            .values()
            .map(|registered| {
                let spec = registered.tool.spec();
                ToolDescription {
                    requires_approval: self.requires_approval(&spec.name),
                    name: spec.name,
                    source: registered.source.clone(),
                    description: spec.description,
                    parameters: spec.parameters,
                }
            })
            .collect();
        let mut skipped = Vec::new();
        for server in &self.servers {
            let source = server.component();
            for tool in server.skipped() {
                skipped.push(SkippedDescription { name: tool.name, source: source.clone(), reason: tool.reason });
            }
            for tool in server.tools() {
                if let Some(taken) = tools.iter().find(|t| t.name == tool.name) {
                    let reason = format!("the name is taken by a tool from {}", taken.source);
                    skipped.push(SkippedDescription { name: tool.name, source: source.clone(), reason });
                    continue;
                }
                tools.push(ToolDescription {
                    requires_approval: mcp::offer::any_matches(&self.approval, &tool.name)
                        || server.requires_approval(&tool.name),
                    name: tool.name,
                    source: source.clone(),
                    description: tool.description,
                    parameters: tool.schema,
                });
            }
        }
        ToolListing { tools, skipped }
    }

    /// The tool's type as the GenAI conventions name it: `extension` (MCP servers, HTTP tools,
    /// other agents), `datastore` (knowledge search) or `function` (the runtime's own).
    pub fn tool_type(&self, name: &str) -> &'static str {
        match self.target(name) {
            Some((Target::Mcp(_), _)) => "extension",
            Some((Target::Fixed(_), _)) => match self.tools.get(name).map(|r| r.source.as_str()) {
                Some("recipe") => "datastore",
                Some(source)
                    if source == "delegation" || source.starts_with("http/") || source.starts_with("agent/") =>
                {
                    "extension"
                }
                _ => "function",
            },
            None => "function",
        }
    }

    /// Where a call to `name` goes, and its bounded metric label.
    fn target(&self, name: &str) -> Option<(Target<'_>, &str)> {
        if let Some((name, registered)) = self.tools.get_key_value(name) {
            return Some((Target::Fixed(&registered.tool), name.as_str()));
        }
        self.servers.iter().find(|s| s.offers(name)).map(|s| (Target::Mcp(s.as_ref()), s.entry()))
    }

    /// Runs the call `name(arguments)`; the text is what the model sees.
    pub async fn call(&self, name: &str, arguments: &str) -> CallResult<'_> {
        let Some((target, label)) = self.target(name) else {
            let known: Vec<String> = self.listing().tools.into_iter().map(|t| t.name).collect();
            let text = format!("error: there is no tool named {name}; available: {}", known.join(", "));
            return CallResult { text, outcome: Outcome::Unknown, tool: "unknown" };
        };
        let result = |text, outcome| CallResult { text, outcome, tool: label };
        let arguments: Value = if arguments.trim().is_empty() {
            Value::Object(serde_json::Map::new())
        } else {
            match serde_json::from_str(arguments) {
                Ok(value) => value,
                Err(error) => return result(format!("error: arguments are not valid JSON: {error}"), Outcome::Error),
            }
        };
        let (timeout, call) = match target {
            Target::Fixed(tool) => (self.timeout, tool.call(arguments)),
            Target::Mcp(server) => {
                (server.timeout().unwrap_or(self.timeout), Box::pin(server.call(name, arguments)) as BoxFuture<'_, _>)
            }
        };
        match tokio::time::timeout(timeout, call).await {
            Ok(Ok(text)) => result(text, Outcome::Ok),
            Ok(Err(error)) => result(format!("error: {error}"), Outcome::Error),
            Err(_) => result(
                format!("error: {name} did not answer within {} s and was cancelled", timeout.as_secs_f32()),
                Outcome::Timeout,
            ),
        }
    }
}
