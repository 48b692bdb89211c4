//! The `Agent` resource: one stateful AI agent (persona, task, model, memory, tools, knowledge).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ResourceRequirements, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::references::{ConfigMapKeyReference, LocalObjectReference, SecretKeyReference, ValueFrom};

/// The desired state of an agent.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "agent-operator.dev",
    version = "v1alpha1",
    kind = "Agent",
    doc = "An AI agent: a stateful workload with a persona, a task, a model, memory, tools and knowledge.",
    namespaced,
    status = "AgentStatus",
    shortname = "ag",
    category = "agent-operator",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Model","type":"string","jsonPath":".status.boundModel"}"#,
    printcolumn = r#"{"name":"Task","type":"string","jsonPath":".status.lastTask.state"}"#,
    printcolumn = r#"{"name":"Tokens","type":"integer","jsonPath":".status.usage.totalTokens"}"#,
    printcolumn = r#"{"name":"Cost","type":"string","jsonPath":".status.usage.cost"}"#,
    printcolumn = r#"{"name":"Mode","type":"string","jsonPath":".spec.operatingMode","priority":1}"#,
    printcolumn = r#"{"name":"Parent","type":"string","jsonPath":".metadata.labels.agent-operator\\.dev/parent","priority":1}"#,
    printcolumn = r#"{"name":"Endpoint","type":"string","jsonPath":".status.endpoint","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct AgentSpec {
    /// Who the agent is: its name, description and system prompt.
    #[serde(default)]
    pub persona: Persona,
    /// What the agent does: chat on demand, run once, or run on a schedule.
    #[serde(default)]
    pub task: Task,
    /// Which model the agent talks to, and with which generation parameters.
    pub model: ModelBinding,
    /// Where the agent keeps its long-term memory and knowledge.
    #[serde(default)]
    pub memory: Memory,
    /// Tools the agent may call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub tools: Vec<Tool>,
    /// Tool calls that wait for a human decision (`POST /v1/approvals/{id}`) before they run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approval>,
    /// A RAG recipe from the catalogue (a `Recipe` object or a built-in one) and its parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub knowledge: Option<Knowledge>,
    /// Whether the model may create child Agents (agents that create agents), and within which
    /// bounds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegation: Option<Delegation>,
    /// `Running` keeps one pod serving; `Suspended` scales to zero and keeps memory and sessions.
    #[serde(default)]
    pub operating_mode: OperatingMode,
    /// Pod settings of the agent runtime.
    #[serde(default)]
    pub runtime: RuntimeSettings,
    /// Access to the agent's HTTP API.
    #[serde(default)]
    pub api: ApiSettings,
    /// Where the agent's pod may connect to (its egress NetworkPolicy).
    #[serde(default)]
    pub egress: Egress,
    /// Budgets the runtime enforces before each model call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
}

/// Budgets of an agent, enforced by its runtime before each model call and counted over every
/// model it calls (chat and embeddings). Days and months are UTC. A call past a daily or monthly
/// budget is refused (chat: HTTP 429 with `Retry-After`; tasks: failed with the reason) and the
/// Agent shows `BudgetExhausted=True` until the window resets; the counts survive restarts.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    /// Tokens (prompt plus generated) per UTC day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub tokens_per_day: Option<u64>,
    /// Tokens per UTC month.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub tokens_per_month: Option<u64>,
    /// Cost per UTC day, a decimal in the chat model's `pricing.currency`; needs a priced model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 24), regex(pattern = r"^[0-9]{1,12}(\.[0-9]{1,6})?$"))]
    pub cost_per_day: Option<String>,
    /// Cost per UTC month, as `costPerDay`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 24), regex(pattern = r"^[0-9]{1,12}(\.[0-9]{1,6})?$"))]
    pub cost_per_month: Option<String>,
    /// Tokens one turn may use over all its model calls; the turn stops (HTTP 422, a failed
    /// task) before a call once it is reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_tokens_per_turn: Option<u64>,
    /// Tool calls one turn may make; further calls are not run (the model is told and answers
    /// without tools).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1000))]
    pub max_tool_calls_per_turn: Option<u32>,
}

/// Human approval of tool calls: the turn pauses before a listed tool runs, is kept on the
/// agent's volume (a pending approval survives restarts), and resumes once someone approves or
/// denies the call, or is denied when nobody decides in time.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Approval {
    /// Tools (as the model names them, from any source) that need an approval: exact names or
    /// globs (`*` any run, `?` one character); `*` puts every tool call before a human. An MCP
    /// tool entry's `requireApproval` adds to this list.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256))]
    pub tools: Vec<String>,
    /// Seconds a call waits for a decision before it is denied (default 3600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 10, max = 604_800))]
    pub timeout_seconds: Option<u32>,
}

/// Who the agent is.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "!(has(self.systemPrompt) && has(self.systemPromptFrom))",
    "message": "set at most one of systemPrompt or systemPromptFrom"
}]))]
pub struct Persona {
    /// Display name the agent uses for itself; defaults to the object's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub name: Option<String>,
    /// One-line description, published in the agent card for other agents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub description: Option<String>,
    /// The system prompt, inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 65536))]
    pub system_prompt: Option<String>,
    /// The system prompt, read from a ConfigMap or Secret key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_prompt_from: Option<ValueFrom>,
}

/// What the agent does.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    { "rule": "self.mode != 'Schedule' || has(self.schedule)", "message": "mode Schedule needs a schedule (cron)" },
    { "rule": "!has(self.schedule) || self.mode == 'Schedule'", "message": "schedule is only allowed with mode Schedule" },
    { "rule": "self.mode == 'Chat' || has(self.input)", "message": "modes Once and Schedule need an input" },
    { "rule": "!has(self.completionPolicy) || self.mode == 'Once'", "message": "completionPolicy is only allowed with mode Once" },
    { "rule": "self.mode == 'Schedule' || !(has(self.concurrencyPolicy) || has(self.startingDeadlineSeconds) || has(self.successfulRunsHistoryLimit) || has(self.failedRunsHistoryLimit))", "message": "concurrencyPolicy, startingDeadlineSeconds and the history limits are only allowed with mode Schedule" }
]))]
pub struct Task {
    /// Standing instructions, added to the system prompt on every turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 65536))]
    pub instructions: Option<String>,
    /// `Chat` serves requests; `Once` runs `input` once, when the agent first starts (again only
    /// when the task changes); `Schedule` runs `input` on `schedule`. Every mode also serves the
    /// chat, task and A2A APIs.
    #[serde(default)]
    pub mode: TaskMode,
    /// Cron schedule for mode `Schedule`: 5 fields (minute hour day-of-month month day-of-week,
    /// UTC) or a macro such as `@hourly`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "self.matches('^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|[0-9*/,-]+\\\\s+[0-9*/,-]+\\\\s+[0-9*/,?LW-]+\\\\s+[0-9A-Za-z*/,-]+\\\\s+[0-9A-Za-z*/,?L#-]+)$')",
        "message": "schedule must be a 5-field cron expression (minute hour day-of-month month day-of-week, UTC) or @hourly, @daily, @weekly, @monthly, @yearly"
    }]))]
    pub schedule: Option<String>,
    /// The input given to the agent for modes `Once` and `Schedule`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 65536))]
    pub input: Option<String>,
    /// Mode `Schedule`: what a run due while the previous one still runs does. `Forbid`
    /// (default) skips it, `Allow` runs both, `Replace` cancels the running one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency_policy: Option<ConcurrencyPolicy>,
    /// Mode `Schedule`: runs missed while the agent was down are caught up with one run (the
    /// latest missed time) if it is at most this many seconds late; unset catches up however
    /// late, 0 never catches up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 31_536_000))]
    pub starting_deadline_seconds: Option<u32>,
    /// Mode `Schedule`: completed runs kept (default 3); older ones are deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1000))]
    pub successful_runs_history_limit: Option<u32>,
    /// Mode `Schedule`: failed and canceled runs kept (default 1); older ones are deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1000))]
    pub failed_runs_history_limit: Option<u32>,
    /// Mode `Once`: `Keep` (default) leaves the agent serving after its task finished;
    /// `Suspend` scales it to zero once the task completed or failed, keeping its volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_policy: Option<CompletionPolicy>,
}

/// How the agent is driven.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum TaskMode {
    /// Answer requests on the HTTP API.
    #[default]
    Chat,
    /// Run the task input once, when the agent first starts, and keep the result.
    Once,
    /// Run the task input on a cron schedule.
    Schedule,
}

/// What a scheduled run due while the previous one still runs does.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ConcurrencyPolicy {
    /// Skip the new run.
    #[default]
    Forbid,
    /// Run both.
    Allow,
    /// Cancel the running one and start the new one.
    Replace,
}

/// What happens to a `Once` agent after its task finished.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum CompletionPolicy {
    /// Keep serving.
    #[default]
    Keep,
    /// Scale to zero, keeping the volume (the task's result stays readable in the status and,
    /// once resumed, through the task API).
    Suspend,
}

/// Bounds on the child Agents this agent's model may create. A child is a real `Agent` owned by
/// this one (deleting this agent deletes its children), labelled with its parent and depth. The
/// bounds are checked by the operator (a child outside them is `Accepted=False`, reason
/// `DelegationRefused`, and gets no pod) and, for requests from agent pods, by the chart's
/// ValidatingAdmissionPolicy in the API server itself.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Delegation {
    /// Whether the model is given the tools to create, task, list and delete children.
    #[serde(default)]
    pub enabled: bool,
    /// Most children alive at once (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub max_children: Option<u32>,
    /// Levels of descendants below this agent (default 1: children, no grandchildren). A child
    /// that delegates gets at most one level less.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 5))]
    pub max_depth: Option<u32>,
    /// `Model`s (by name, in this namespace) a child may use; empty allows only this agent's own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub models: Vec<String>,
    /// Names of this agent's tool entries a child may be given (copied as they are here); empty
    /// gives children no tools. Entries that reference a Secret cannot be given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub tools: Vec<String>,
    /// Seconds after a child's last task finished before it is deleted (unset keeps children
    /// until the model or a person deletes them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 31_536_000))]
    pub ttl_seconds_after_finished: Option<u32>,
}

/// Which model the agent uses: a named `Model`, or a selector the scheduler binds.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "has(self.modelRef) != has(self.selector)",
    "message": "set exactly one of modelRef or selector"
}]))]
pub struct ModelBinding {
    /// A `Model` in the agent's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_ref: Option<LocalObjectReference>,
    /// Requirements the scheduler matches against Ready `Model`s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<ModelSelector>,
    /// Generation parameters sent with every request.
    #[serde(default)]
    pub parameters: GenerationParameters,
}

/// Requirements a `Model` must meet to be bound to the agent.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelSelector {
    /// Capabilities the model must have.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub capabilities: Vec<Capability>,
    /// Minimum context length in tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub min_context_length: Option<i64>,
    /// Labels the `Model` must carry.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
}

/// A capability a model offers.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Capability {
    /// Chat completions.
    Chat,
    /// Embeddings.
    Embeddings,
    /// Function (tool) calling.
    Tools,
}

/// Sampling parameters for the agent's model calls; unset fields use the model server's defaults.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GenerationParameters {
    /// Sampling temperature, 0 to 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 2.0))]
    pub temperature: Option<f64>,
    /// Nucleus sampling probability mass, 0 to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub top_p: Option<f64>,
    /// Maximum tokens generated per model call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_tokens: Option<i64>,
    /// Stop sequences.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 4))]
    pub stop: Vec<String>,
    /// Seed for reproducible sampling where the server supports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    /// Token budget of the context sent to the model; older turns are summarised beyond it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 256))]
    pub context_budget: Option<i64>,
}

/// Where the agent keeps memory and knowledge.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    { "rule": "self.backend != 'Qdrant' || has(self.qdrant)", "message": "backend Qdrant needs qdrant.url" },
    { "rule": "self.backend != 'Embedded' || !has(self.qdrant)", "message": "qdrant is only allowed with backend Qdrant" }
]))]
pub struct Memory {
    /// `Embedded` keeps a Qdrant Edge shard on the agent's volume; `Qdrant` uses a Qdrant server.
    #[serde(default)]
    pub backend: MemoryBackend,
    /// The agent's persistent volume (sessions always live here; vectors too when embedded).
    #[serde(default)]
    pub storage: Storage,
    /// The Qdrant server, for backend `Qdrant`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qdrant: Option<QdrantMemory>,
    /// An embeddings `Model`; unset uses the runtime's built-in all-MiniLM-L6-v2 (384 dimensions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding_model_ref: Option<LocalObjectReference>,
    /// How long memories are kept, as a duration (`720h`); unset keeps them forever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    #[schemars(extend("x-kubernetes-validations" = [{ "rule": "duration(self) > duration('0s')", "message": "retention must be a positive duration such as 720h" }]))]
    pub retention: Option<String>,
}

/// The vector store backend.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum MemoryBackend {
    /// An embedded Qdrant Edge shard on the agent's volume.
    #[default]
    Embedded,
    /// A Qdrant server reached over gRPC.
    Qdrant,
}

/// The agent's persistent volume.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "quantity(self.size).compareTo(quantity(oldSelf.size)) >= 0",
    "message": "storage.size may grow but never shrink"
}]))]
pub struct Storage {
    /// Size of the volume; it may grow (if the storage class allows expansion), never shrink.
    #[serde(default = "default_storage_size")]
    #[schemars(schema_with = "crate::schema::quantity_string")]
    pub size: String,
    /// Storage class of the volume; unset uses the cluster default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub storage_class_name: Option<String>,
}

impl Default for Storage {
    fn default() -> Self {
        Self { size: default_storage_size(), storage_class_name: None }
    }
}

fn default_storage_size() -> String {
    "1Gi".to_owned()
}

/// A Qdrant server holding the agent's vectors.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct QdrantMemory {
    /// gRPC URL of the server, e.g. `http://qdrant.qdrant:6334`.
    #[schemars(length(min = 1, max = 2048))]
    #[schemars(extend("x-kubernetes-validations" = [{ "rule": "isURL(self)", "message": "url must be an absolute URL" }]))]
    pub url: String,
    /// API key of the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_secret_ref: Option<SecretKeyReference>,
    /// Collection name; defaults to `<namespace>-<agent name>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 255))]
    pub collection: Option<String>,
}

/// One tool the agent may call; exactly one of `builtin`, `mcp`, `agent`, `http` is set.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "(has(self.builtin) ? 1 : 0) + (has(self.mcp) ? 1 : 0) + (has(self.agent) ? 1 : 0) + (has(self.http) ? 1 : 0) == 1",
    "message": "set exactly one of builtin, mcp, agent or http"
}]))]
pub struct Tool {
    /// Unique name of the tool entry within the agent.
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[a-z0-9]([-a-z0-9_]*[a-z0-9])?$"))]
    pub name: String,
    /// A tool built into the runtime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builtin: Option<BuiltinTool>,
    /// An MCP server (streamable HTTP or HTTP+SSE) whose tools the model may call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcp: Option<McpTool>,
    /// Another agent, asked over A2A: an `Agent` of this operator (same or another namespace)
    /// or a remote A2A agent by URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentTool>,
    /// A plain HTTP endpoint the model may call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpTool>,
}

/// A tool built into the runtime.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BuiltinTool {
    /// Which built-in tool.
    pub kind: BuiltinToolKind,
    /// URL prefixes `http_get` may fetch; private, loopback and link-local addresses are refused
    /// unless listed here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub allowed_urls: Vec<String>,
}

/// The tools built into the runtime.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum BuiltinToolKind {
    /// The current date and time.
    #[default]
    CurrentTime,
    /// Fetch a URL from the allowlist.
    HttpGet,
    /// Store a fact in long-term memory.
    Remember,
    /// Search long-term memory.
    Recall,
}

/// An MCP server whose tools the model may call.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct McpTool {
    /// URL of the server: its streamable HTTP endpoint (e.g. `http://tickets:8000/mcp`), or with
    /// `transport: SSE` its event-stream URL (e.g. `http://tickets:8000/sse`).
    #[schemars(length(min = 1, max = 2048))]
    #[schemars(extend("x-kubernetes-validations" = [{ "rule": "isURL(self)", "message": "url must be an absolute URL" }]))]
    pub url: String,
    /// How the server is reached: `StreamableHTTP` (the current MCP transport) or `SSE` (the
    /// older HTTP+SSE transport of MCP 2024-11-05).
    #[serde(default)]
    pub transport: McpTransport,
    /// Tools of the server the model is offered: exact names or globs (`*` any run of
    /// characters, `?` one); empty offers all of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256))]
    pub allow: Vec<String>,
    /// Tools of this server that need a human approval before each call: exact names or globs
    /// (see `spec.approval` for the flow and its timeout).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256))]
    pub require_approval: Vec<String>,
    /// A Secret key sent as a bearer token (`Authorization: Bearer <value>`); mounted as a
    /// file in the pod, never copied into its ConfigMap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_secret_ref: Option<SecretKeyReference>,
    /// Extra HTTP headers sent with every request, each value read from a Secret key (mounted
    /// as a file, never copied into the pod's ConfigMap).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub headers_from: Vec<McpHeader>,
    /// A ConfigMap key holding PEM CA certificates trusted for the server's TLS, beside the
    /// system roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_config_map_ref: Option<ConfigMapKeyReference>,
    /// Longest one call to a tool of this server may take, in seconds; a call past it is
    /// cancelled (`notifications/cancelled`) and the model told. Defaults to the runtime's tool
    /// timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 3600))]
    pub timeout_seconds: Option<u32>,
}

/// How an MCP server is reached.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum McpTransport {
    /// Streamable HTTP: one endpoint for requests, answers and server notifications.
    #[default]
    #[serde(rename = "StreamableHTTP")]
    StreamableHttp,
    /// HTTP+SSE (MCP 2024-11-05): an event stream, and a POST endpoint it names.
    #[serde(rename = "SSE")]
    Sse,
}

/// An HTTP header sent to an MCP server, its value from a Secret.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "!(self.name.lowerAscii() in ['accept', 'authorization', 'content-type', 'host', 'mcp-session-id', 'mcp-protocol-version', 'last-event-id'])",
    "message": "this header is set by the MCP client itself (use authSecretRef for a bearer token)"
}]))]
pub struct McpHeader {
    /// Header name, e.g. `X-Api-Key`.
    #[schemars(length(min = 1, max = 128), regex(pattern = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$"))]
    pub name: String,
    /// The Secret key holding the value.
    pub secret_key_ref: SecretKeyReference,
}

/// Another agent as a tool, asked over A2A (a blocking `SendMessage`; its task's answer is the
/// result). The caller authenticates with a bearer token the callee checks as its API key: for
/// an `Agent` in the same namespace, the callee's `spec.api.authSecretRef` is mounted into the
/// caller's pod (read-only, never copied into its ConfigMap); for an `Agent` in another
/// namespace or a remote agent, `tokenSecretRef` names a Secret key in the caller's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    { "rule": "has(self.name) != has(self.url)", "message": "set exactly one of name (an Agent) or url (a remote A2A agent)" },
    { "rule": "!has(self.__namespace__) || has(self.name)", "message": "namespace goes with name" }
]))]
pub struct AgentTool {
    /// Name of the `Agent`; an Agent that does not exist keeps the caller from being accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub name: Option<String>,
    /// Namespace of the `Agent`; defaults to the caller's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub namespace: Option<String>,
    /// Base URL of a remote A2A agent (its card is at `/.well-known/agent-card.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    #[schemars(extend("x-kubernetes-validations" = [{ "rule": "isURL(self)", "message": "url must be an absolute URL" }]))]
    pub url: Option<String>,
    /// A Secret key in the caller's namespace holding the bearer token presented to the other
    /// agent (its API key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_secret_ref: Option<SecretKeyReference>,
}

/// A plain HTTP endpoint exposed to the model as a tool.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HttpTool {
    /// URL called with the tool's JSON arguments as the body.
    #[schemars(length(min = 1, max = 2048))]
    #[schemars(extend("x-kubernetes-validations" = [{ "rule": "isURL(self)", "message": "url must be an absolute URL" }]))]
    pub url: String,
    /// What the tool does, shown to the model.
    #[schemars(length(min = 1, max = 1024))]
    pub description: String,
    /// JSON schema of the tool's arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::any_value")]
    pub parameters: Option<serde_json::Value>,
}

/// The RAG recipe the agent runs.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Knowledge {
    /// Name of a `Recipe` in the agent's namespace or of a built-in recipe.
    #[schemars(length(min = 1, max = 253))]
    pub recipe: String,
    /// Values for the recipe's declared parameters.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "crate::schema::any_value_map")]
    pub parameters: BTreeMap<String, serde_json::Value>,
    /// Documents ingested when the agent starts (URLs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256))]
    pub sources: Vec<String>,
}

/// Whether the agent runs.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum OperatingMode {
    /// One pod serves the agent.
    #[default]
    Running,
    /// No pod runs; the volume with memory and sessions is kept.
    Suspended,
}

/// Pod settings of the agent runtime.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeSettings {
    /// Runtime image; defaults to the operator's configured runtime image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub image: Option<String>,
    /// CPU and memory of the runtime container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Node labels the pod must match.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Tolerations of the pod.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// Kueue LocalQueue; set as the `kueue.x-k8s.io/queue-name` label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub queue_name: Option<String>,
    /// Priority class of the pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub priority_class_name: Option<String>,
}

/// Access to the agent's HTTP API.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiSettings {
    /// A Secret key holding the API key clients must send as a bearer token; unset means no auth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_secret_ref: Option<SecretKeyReference>,
    /// Namespaces (by label selector match on `kubernetes.io/metadata.name`) allowed to reach the API;
    /// empty allows every namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub allowed_namespaces: Vec<String>,
    /// URL prefixes clients may ask the agent to fetch documents from (`POST
    /// /v1/knowledge/documents` with `urls`) even when their host resolves to a loopback, private,
    /// link-local or metadata address; public URLs need no entry. The recipe's `sources` are
    /// always allowed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub fetch_allowed_urls: Vec<String>,
}

/// Where the agent's pod may connect to. `Restricted` (the default) admits DNS, the Kubernetes
/// API (status reports, delegation) and every destination the Agent's spec names: its model and
/// embeddings endpoint, vector store, MCP, HTTP and agent tools, `httpGet` URLs, recipe sources
/// and `api.fetchAllowedUrls`. A URL whose host is an IP address admits that address on its port;
/// an in-cluster name (`svc`, `svc.ns`, `svc.ns.svc[.cluster.local]`) admits its namespace (a
/// Service's port is not its pods' port, which is what a NetworkPolicy sees); any other host name
/// admits public addresses (not private, loopback, link-local or shared ranges) on its port.
/// Anything else, such as URLs clients ask the agent to fetch, needs an entry in `to`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Egress {
    /// `Restricted` admits only what is described above plus `to`; `Unrestricted` puts no
    /// egress rules on the pod (the opt-out).
    #[serde(default)]
    pub policy: EgressPolicy,
    /// Destinations admitted besides the ones derived from the spec.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub to: Vec<EgressDestination>,
}

/// Whether the agent's egress is limited.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum EgressPolicy {
    /// Only DNS, the Kubernetes API, the spec's destinations and `to`.
    #[default]
    Restricted,
    /// No egress rules.
    Unrestricted,
}

/// A destination the agent's pod may connect to: an address range or a namespace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    { "rule": "has(self.cidr) != has(self.__namespace__)", "message": "set exactly one of cidr or namespace" },
    { "rule": "!has(self.except) || has(self.cidr)", "message": "except goes with cidr" }
]))]
pub struct EgressDestination {
    /// An address range, e.g. `203.0.113.0/24` or `2001:db8::/32`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    #[schemars(extend("x-kubernetes-validations" = [{ "rule": "isCIDR(self)", "message": "cidr must be a CIDR such as 10.0.0.0/8" }]))]
    pub cidr: Option<String>,
    /// Ranges inside `cidr` that stay closed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::schema::cidr_list")]
    pub except: Vec<String>,
    /// Every pod of this namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub namespace: Option<String>,
    /// TCP ports admitted; empty admits every port.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::schema::port_list")]
    pub ports: Vec<u16>,
}

/// The observed state of an agent.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentStatus {
    /// The `metadata.generation` this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Accepted`, `ModelReady` and `Ready`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::schema::conditions")]
    pub conditions: Vec<Condition>,
    /// In-cluster URL of the agent's API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The `Model` the agent is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound_model: Option<String>,
    /// The tools the agent offers its model right now (reported by the agent's runtime).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub tools: Vec<OfferedTool>,
    /// Tokens the agent's model calls used since its volume was created (reported by the
    /// runtime).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<TokenUsage>,
    /// The agent's most recent task (reported by the runtime); for a `Once` agent, its own task
    /// of the current task generation once it has one, whatever was sent to it after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_task: Option<TaskSummary>,
    /// When the agent last called its Model and asked it to wake (reported by the runtime, only
    /// for a Model that scales to zero): the operator keeps the Model up while agents call it
    /// and wakes it for them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_demand: Option<ModelDemand>,
}

/// An agent's demand for its scale-to-zero Model, written by its runtime under its own field
/// manager.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelDemand {
    /// The Model called (the runtime's `Model` object).
    pub model: String,
    /// When the agent last sent the Model a request (RFC 3339, recorded at most every 30 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_request_at: Option<String>,
    /// When the agent last found the Model unreachable and asked it to wake (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wake_requested_at: Option<String>,
}

impl AgentStatus {
    /// The part of the status the operator writes: the fields the runtime reports cleared.
    #[must_use]
    pub fn operator_part(&self) -> Self {
        let conditions =
            self.conditions.iter().filter(|c| c.type_ != crate::conditions::BUDGET_EXHAUSTED).cloned().collect();
        Self { tools: Vec::new(), usage: None, last_task: None, model_demand: None, conditions, ..self.clone() }
    }
}

/// A tool the agent offers its model.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OfferedTool {
    /// The name the model calls it by.
    pub name: String,
    /// Where it comes from: `builtin`, `mcp/<entry>`, `agent/<entry>`, `http/<entry>` or
    /// `delegation`.
    pub source: String,
    /// Whether each call waits for a human decision.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub approval: bool,
}

/// Tokens used, in total and per model.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenUsage {
    /// Prompt tokens, all models.
    pub input_tokens: u64,
    /// Generated tokens, all models.
    pub output_tokens: u64,
    /// Input plus output tokens.
    pub total_tokens: u64,
    /// What the calls cost, as a decimal of `currency` (6 places), summed over the models with a
    /// price in that currency; absent when no model the agent uses has a price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<String>,
    /// The currency of `cost` (when models are priced in several, the one of the chat model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// Per model.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub models: Vec<ModelTokenUsage>,
}

/// Tokens used by one model.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelTokenUsage {
    /// The model's name as the agent calls it.
    pub model: String,
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Generated tokens.
    pub output_tokens: u64,
    /// Calls made.
    #[serde(default)]
    pub calls: u64,
    /// What they cost (6 decimal places), when the model has a price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<String>,
    /// The currency of `cost`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
}

/// A task, summed up for the status.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskSummary {
    /// The task's id (`GET /v1/tasks/{id}` on the agent).
    pub id: String,
    /// `queued`, `running`, `input-required`, `completed`, `failed` or `cancelled`.
    pub state: String,
    /// What started it: `api` (the task API, which parents use too), `a2a`, `once` or `schedule`.
    pub origin: String,
    /// The task generation it ran for (`Once` and `Schedule`): a digest of `spec.task`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_generation: Option<String>,
    /// When it started (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<String>,
    /// When it finished (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<String>,
    /// The start of its result or error (at most 256 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
}
