//! The `RuntimeConfig`: everything an agent pod needs, rendered by the operator into a ConfigMap
//! and read by `agent-runtime serve --config`. It never holds secret values, only the paths of
//! the files Secrets are mounted at.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::agent::{BuiltinToolKind, ConcurrencyPolicy, GenerationParameters, Limits, McpTransport, TaskMode, Tool};
use crate::model::{Pricing, PromptFormat};
use crate::recipe::RecipeSpec;
use crate::references::SecretKeyReference;

/// Version of the RuntimeConfig format; bumped on incompatible changes.
pub const RUNTIME_CONFIG_VERSION: u32 = 1;
/// The variable that opts in to recording prompts and answers on spans (the OpenTelemetry GenAI
/// conventions' name).
pub const CAPTURE_CONTENT_VARIABLE: &str = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT";
/// Port the runtime serves its API on.
pub const RUNTIME_PORT: u16 = 8080;

/// Port of the runtime's `/metrics` listener in a cluster (the operator passes
/// `--metrics-addr`), apart from the API port.
pub const METRICS_PORT: u16 = 9090;
/// Built-in embedding model of the runtime.
pub const BUILTIN_EMBEDDING_MODEL: &str = "all-MiniLM-L6-v2";
/// Dimension of the built-in embedding model.
pub const BUILTIN_EMBEDDING_DIMENSION: u32 = 384;

/// Everything an agent pod needs to serve.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeConfig {
    /// Format version, [`RUNTIME_CONFIG_VERSION`].
    pub version: u32,
    /// Which agent this is.
    pub agent: AgentIdentity,
    /// Name, description and system prompt.
    pub persona: PersonaConfig,
    /// How the agent is driven.
    pub task: TaskConfig,
    /// The chat model.
    pub model: ModelConfig,
    /// Vector memory and embeddings.
    pub memory: MemoryConfig,
    /// Tools the agent may call.
    pub tools: Vec<ToolConfig>,
    /// Which tool calls wait for a human decision.
    #[serde(default)]
    pub approval: ApprovalConfig,
    /// The resolved RAG recipe, if any.
    pub recipe: Option<RecipeConfig>,
    /// The HTTP server.
    pub server: ServerConfig,
    /// Child agents the model may create; `None` when the Agent does not delegate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegation: Option<DelegationConfig>,
    /// Budgets the runtime enforces; `None` when the Agent sets none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
    /// The Kubernetes API, for reporting the agent's status and creating its children; `None`
    /// outside a cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterAccess>,
    /// Where the pod exports its traces; `None` exports none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traces: Option<TracesConfig>,
}

/// Where an agent pod exports OpenTelemetry traces: the operator's own `OTEL_*` settings, which
/// the pod is given as the same standard variables (and its egress policy admits the endpoint).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TracesConfig {
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`: the collector's base URL (`/v1/traces` is appended for HTTP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`: the whole traces URL, used as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traces_endpoint: Option<String>,
    /// `OTEL_EXPORTER_OTLP_PROTOCOL`: `http/protobuf` (default), `http/json` or `grpc`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// `OTEL_TRACES_SAMPLER`, e.g. `parentbased_traceidratio`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampler: Option<String>,
    /// `OTEL_TRACES_SAMPLER_ARG`, e.g. `0.1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampler_arg: Option<String>,
    /// Record prompts, answers and tool arguments on spans
    /// (`OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`); off by default.
    #[serde(default)]
    pub capture_content: bool,
}

impl TracesConfig {
    /// The settings as the standard variables, in a fixed order.
    pub fn variables(&self) -> Vec<(&'static str, String)> {
        let mut variables = Vec::new();
        let set = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &self.endpoint),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &self.traces_endpoint),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", &self.protocol),
            ("OTEL_TRACES_SAMPLER", &self.sampler),
            ("OTEL_TRACES_SAMPLER_ARG", &self.sampler_arg),
        ];
        for (name, value) in set {
            if let Some(value) = value {
                variables.push((name, value.clone()));
            }
        }
        if self.capture_content {
            variables.push((CAPTURE_CONTENT_VARIABLE, "true".to_owned()));
        }
        variables
    }

    /// The collector URLs the pod reaches.
    pub fn urls(&self) -> impl Iterator<Item = &str> {
        self.endpoint.iter().chain(&self.traces_endpoint).map(String::as_str)
    }
}

/// The bounds on child agents, resolved from the Agent's `spec.delegation`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DelegationConfig {
    /// Most children alive at once.
    pub max_children: u32,
    /// Levels of descendants allowed below this agent.
    pub max_depth: u32,
    /// `Model`s a child may use, this agent's own first.
    pub models: Vec<String>,
    /// This agent's tool entries a child may be given, as the Agent declares them.
    pub tools: Vec<Tool>,
    /// Seconds after a child's last task finished before it is deleted.
    pub ttl_seconds_after_finished: Option<u32>,
}

/// Default most children alive at once.
pub const DEFAULT_MAX_CHILDREN: u32 = 3;
/// Default levels of descendants.
pub const DEFAULT_MAX_DEPTH: u32 = 1;

/// How the runtime reaches the Kubernetes API from its pod.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterAccess {
    /// Base URL of the API server.
    pub api_url: String,
    /// File holding the pod's ServiceAccount token (re-read as it rotates).
    pub token_file: String,
    /// File holding the API server's CA certificates.
    pub ca_file: String,
}

impl Default for ClusterAccess {
    fn default() -> Self {
        let dir = "/var/run/secrets/kubernetes.io/serviceaccount";
        Self {
            api_url: "https://kubernetes.default.svc".to_owned(),
            token_file: format!("{dir}/token"),
            ca_file: format!("{dir}/ca.crt"),
        }
    }
}

/// Which tool calls wait for a human decision, and for how long.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalConfig {
    /// Tool names or globs, whatever their source (MCP entries add their own `require_approval`).
    pub tools: Vec<String>,
    /// Seconds before an undecided call is denied.
    pub timeout_seconds: u32,
}

/// Default seconds an approval waits.
pub const DEFAULT_APPROVAL_TIMEOUT_SECONDS: u32 = 3600;

impl Default for ApprovalConfig {
    fn default() -> Self {
        Self { tools: Vec::new(), timeout_seconds: DEFAULT_APPROVAL_TIMEOUT_SECONDS }
    }
}

/// Identity of the agent.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentIdentity {
    /// Name of the Agent object.
    pub name: String,
    /// Namespace of the Agent object.
    pub namespace: String,
    /// UID of the Agent object (children's owner references name it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// How many parents the agent has (0 for an agent nobody delegated).
    #[serde(default)]
    pub depth: u32,
}

/// Persona of the agent.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PersonaConfig {
    /// Display name.
    pub name: String,
    /// One-line description.
    pub description: Option<String>,
    /// The system prompt.
    pub system_prompt: Option<TextSource>,
}

/// Text given inline or read from a mounted file.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum TextSource {
    /// The text itself.
    Inline(String),
    /// Path of a file holding the text (a mounted Secret key).
    File(String),
}

/// How the agent is driven.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskConfig {
    /// `Chat`, `Once` or `Schedule`.
    pub mode: TaskMode,
    /// Standing instructions.
    pub instructions: Option<String>,
    /// Cron schedule for `Schedule`.
    pub schedule: Option<String>,
    /// Task input for `Once` and `Schedule`.
    pub input: Option<String>,
    /// Digest of the Agent's `spec.task`: a `Once` task runs once per generation.
    #[serde(default)]
    pub generation: String,
    /// What a scheduled run due while the previous one runs does.
    #[serde(default)]
    pub concurrency_policy: ConcurrencyPolicy,
    /// How late a missed scheduled run may be caught up; `None` means however late.
    #[serde(default)]
    pub starting_deadline_seconds: Option<u32>,
    /// Completed scheduled runs kept.
    #[serde(default = "default_successful_runs")]
    pub successful_runs_history_limit: u32,
    /// Failed and canceled scheduled runs kept.
    #[serde(default = "default_failed_runs")]
    pub failed_runs_history_limit: u32,
}

/// Default completed scheduled runs kept.
pub const DEFAULT_SUCCESSFUL_RUNS: u32 = 3;
/// Default failed scheduled runs kept.
pub const DEFAULT_FAILED_RUNS: u32 = 1;

fn default_successful_runs() -> u32 {
    DEFAULT_SUCCESSFUL_RUNS
}

fn default_failed_runs() -> u32 {
    DEFAULT_FAILED_RUNS
}

/// The chat model endpoint.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelConfig {
    /// Name of the `Model` object.
    pub model_object: String,
    /// OpenAI-compatible base URL, including `/v1`.
    pub base_url: String,
    /// Model name sent in requests.
    pub model: String,
    /// File holding the API key.
    pub api_key_file: Option<String>,
    /// Extra headers.
    pub headers: BTreeMap<String, String>,
    /// PEM CA bundle to trust.
    pub ca_pem: Option<String>,
    /// Chat or completion prompts.
    pub prompt_format: PromptFormat,
    /// Context length of the model, when known.
    pub context_length: Option<i64>,
    /// Whether the model supports tool calls.
    pub supports_tools: bool,
    /// Generation parameters.
    pub parameters: GenerationParameters,
    /// What the model's tokens cost, when its Model says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pricing: Option<Pricing>,
    /// Set when the Model scales to zero (`serve.autoscaling.minReplicas: 0`): the runtime
    /// records its demand on its Agent's status and waits for the Model to wake.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wake: Option<WakeConfig>,
}

/// How an agent waits for a Model that scales to zero.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WakeConfig {
    /// Seconds a request waits for the Model to wake before it is answered 503 with
    /// `Retry-After` (the Model's `serve.autoscaling.wakeTimeout`).
    pub timeout_seconds: u64,
}

/// Vector memory.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemoryConfig {
    /// Where vectors live.
    pub store: VectorStoreConfig,
    /// Collection holding this agent's vectors.
    pub collection: String,
    /// Dimension of the dense vectors; always equals the embedding's dimension.
    pub vector_dimension: u32,
    /// Distance function.
    pub distance: Distance,
    /// How text is embedded.
    pub embedding: EmbeddingConfig,
    /// Seconds memories are kept; `None` keeps them forever.
    pub retention_seconds: Option<u64>,
}

/// Where vectors live.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum VectorStoreConfig {
    /// A Qdrant Edge shard in this directory.
    Embedded {
        /// Directory of the shard.
        path: String,
    },
    /// A Qdrant server.
    Qdrant {
        /// gRPC URL.
        url: String,
        /// File holding the API key.
        api_key_file: Option<String>,
    },
}

/// Vector distance function.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum Distance {
    /// Cosine similarity.
    Cosine,
    /// Dot product.
    Dot,
}

/// How text is embedded.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum EmbeddingConfig {
    /// The runtime's built-in model, run in-process.
    Builtin {
        /// Model name, [`BUILTIN_EMBEDDING_MODEL`].
        model: String,
    },
    /// An OpenAI-compatible `/v1/embeddings` endpoint.
    Endpoint {
        /// Base URL including `/v1`.
        base_url: String,
        /// Model name.
        model: String,
        /// File holding the API key.
        api_key_file: Option<String>,
        /// What the model's tokens cost, when its Model says.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pricing: Option<Pricing>,
    },
}

/// One tool.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ToolConfig {
    /// Name of the tool entry.
    pub name: String,
    /// What kind of tool it is.
    pub kind: ToolKind,
}

/// The kinds of tools.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum ToolKind {
    /// A built-in tool.
    Builtin {
        /// Which one.
        tool: BuiltinToolKind,
        /// URL prefixes allowed for `httpGet`.
        allowed_urls: Vec<String>,
    },
    /// An MCP server.
    Mcp {
        /// Streamable HTTP endpoint, or the event-stream URL with the SSE transport.
        url: String,
        /// How the server is reached.
        #[serde(default)]
        transport: McpTransport,
        /// Offered tools, exact names or globs; empty offers all.
        allow: Vec<String>,
        /// Tools needing approval.
        require_approval: Vec<String>,
        /// File holding a bearer token.
        token_file: Option<String>,
        /// Extra headers: name -> file holding the value.
        #[serde(default)]
        header_files: BTreeMap<String, String>,
        /// PEM CA certificates trusted beside the system roots.
        #[serde(default)]
        ca_pem: Option<String>,
        /// Longest one tool call may take, in seconds; `None` uses the runtime's tool timeout.
        #[serde(default)]
        timeout_seconds: Option<u32>,
    },
    /// Another agent, asked over A2A.
    Agent {
        /// Base URL of the other agent's API.
        url: String,
        /// Whether it is a remote A2A agent (found through its card) rather than an `Agent`.
        #[serde(default)]
        remote: bool,
        /// File holding the bearer token presented to it.
        #[serde(default)]
        token_file: Option<String>,
    },
    /// A plain HTTP endpoint.
    Http {
        /// URL called with the arguments as JSON.
        url: String,
        /// Description shown to the model.
        description: String,
        /// JSON schema of the arguments.
        parameters: Option<serde_json::Value>,
    },
}

/// The resolved recipe.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecipeConfig {
    /// Name of the recipe.
    pub name: String,
    /// Every declared parameter with its effective value.
    pub parameters: BTreeMap<String, serde_json::Value>,
    /// The recipe's pipeline.
    pub spec: RecipeSpec,
    /// Documents ingested at start.
    pub sources: Vec<String>,
}

/// The HTTP server.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServerConfig {
    /// Port of the API.
    pub port: u16,
    /// File holding the API key clients must present; `None` disables auth.
    pub api_key_file: Option<String>,
    /// Directory for sessions and the embedded vector store (the agent's volume).
    pub data_dir: String,
    /// URL prefixes documents may be fetched from even when their host is internal.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fetch_allowed_urls: Vec<String>,
}

/// Where things live inside the agent pod; the operator mounts, the renderer points at them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodPaths {
    /// The agent's volume.
    pub data_dir: String,
    /// Root under which referenced Secrets are mounted, one folder per Secret.
    pub secrets_dir: String,
}

impl Default for PodPaths {
    fn default() -> Self {
        Self { data_dir: "/var/lib/agent".to_owned(), secrets_dir: "/var/run/agent-operator/secrets".to_owned() }
    }
}

impl PodPaths {
    /// Path the given Secret key is mounted at.
    pub fn secret_file(&self, secret: &SecretKeyReference) -> String {
        format!("{}/{}/{}", self.secrets_dir, secret.name, secret.key)
    }
}
