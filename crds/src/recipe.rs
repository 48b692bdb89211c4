//! The `Recipe` resource: a RAG pipeline (ingest, embed, retrieve, rerank, generate) that agents
//! pick by name and tune with parameters.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A RAG recipe.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "agent-operator.dev",
    version = "v1alpha1",
    kind = "Recipe",
    doc = "A RAG recipe agents pick by name: ingest, retrieve, rerank and prompt templates.",
    namespaced,
    status = "RecipeStatus",
    shortname = "rcp",
    category = "agent-operator",
    printcolumn = r#"{"name":"Accepted","type":"string","jsonPath":".status.conditions[?(@.type==\"Accepted\")].status"}"#,
    printcolumn = r#"{"name":"Description","type":"string","jsonPath":".spec.description","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct RecipeSpec {
    /// What the recipe does, one paragraph.
    #[schemars(length(max = 4096))]
    pub description: String,
    /// Parameters agents may set, with types and defaults.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub parameters: Vec<RecipeParameter>,
    /// How documents are split before embedding.
    #[serde(default)]
    pub ingest: Ingest,
    /// How chunks are retrieved.
    #[serde(default)]
    pub retrieve: Retrieve,
    /// How retrieved chunks are reranked.
    #[serde(default)]
    pub rerank: Rerank,
    /// Prompt templates (handlebars).
    #[serde(default)]
    pub generate: Generate,
}

/// A parameter of a recipe.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecipeParameter {
    /// Name used in `Agent.spec.knowledge.parameters` and in templates (`{{params.<name>}}`).
    /// A parameter named after a pipeline setting overrides that setting with its effective value:
    /// `topK`, `fetchK`, `scoreThreshold`, `hybrid` (retrieve), `chunkSize`, `chunkOverlap`
    /// (ingest), `strategy` (generate.strategy: Stuff, MapReduce or Refine), `mmrLambda` and
    /// `rerank` (rerank.strategy: None, Mmr or Endpoint); its type must suit the setting.
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[a-zA-Z][a-zA-Z0-9_]*$"))]
    pub name: String,
    /// Type of the value.
    #[serde(rename = "type")]
    pub kind: ParameterType,
    /// Value used when the agent sets none; a parameter without default is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::any_value")]
    pub default: Option<serde_json::Value>,
    /// What the parameter does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub description: Option<String>,
    /// The values allowed; empty allows any value of the type.
    #[serde(rename = "enum", default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::schema::any_value_list")]
    pub allowed: Vec<serde_json::Value>,
}

/// Type of a recipe parameter.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ParameterType {
    /// A string.
    #[default]
    String,
    /// A whole number.
    Integer,
    /// A number.
    Number,
    /// `true` or `false`.
    Boolean,
}

/// Chunking of ingested documents.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "self.chunkOverlap < self.chunkSize",
    "message": "chunkOverlap must be smaller than chunkSize"
}]))]
pub struct Ingest {
    /// Chunk size in tokens.
    #[serde(default = "default_chunk_size")]
    #[schemars(range(min = 16, max = 8192))]
    pub chunk_size: i64,
    /// Tokens shared by consecutive chunks.
    #[serde(default = "default_chunk_overlap")]
    #[schemars(range(min = 0, max = 4096))]
    pub chunk_overlap: i64,
}

impl Default for Ingest {
    fn default() -> Self {
        Self { chunk_size: default_chunk_size(), chunk_overlap: default_chunk_overlap() }
    }
}

fn default_chunk_size() -> i64 {
    256
}

fn default_chunk_overlap() -> i64 {
    32
}

/// Retrieval settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "self.fetchK >= self.topK",
    "message": "fetchK must be at least topK"
}]))]
pub struct Retrieve {
    /// Chunks given to the model.
    #[serde(default = "default_top_k")]
    #[schemars(range(min = 1, max = 100))]
    pub top_k: i64,
    /// Chunks fetched before reranking.
    #[serde(default = "default_fetch_k")]
    #[schemars(range(min = 1, max = 1000))]
    pub fetch_k: i64,
    /// Minimum similarity score, 0 to 1; unset keeps every hit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub score_threshold: Option<f64>,
    /// Dense + BM25 sparse search with rank fusion.
    #[serde(default)]
    pub hybrid: bool,
}

impl Default for Retrieve {
    fn default() -> Self {
        Self { top_k: default_top_k(), fetch_k: default_fetch_k(), score_threshold: None, hybrid: false }
    }
}

fn default_top_k() -> i64 {
    4
}

fn default_fetch_k() -> i64 {
    20
}

/// Reranking of retrieved chunks.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "self.strategy != 'Endpoint' || has(self.endpoint)",
    "message": "strategy Endpoint needs an endpoint"
}]))]
pub struct Rerank {
    /// `None`, `Mmr` (maximal marginal relevance, built in) or `Endpoint` (a `/rerank` API).
    #[serde(default)]
    pub strategy: RerankStrategy,
    /// URL of a rerank API (TEI, llama.cpp, Jina style), e.g. `http://reranker:8080/rerank`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub endpoint: Option<String>,
    /// Model name sent to the rerank API (some servers host several).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub model: Option<String>,
    /// MMR trade-off between relevance (1) and diversity (0).
    #[serde(default = "default_mmr_lambda")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub mmr_lambda: f64,
}

impl Default for Rerank {
    fn default() -> Self {
        Self { strategy: RerankStrategy::None, endpoint: None, model: None, mmr_lambda: default_mmr_lambda() }
    }
}

fn default_mmr_lambda() -> f64 {
    0.5
}

/// How chunks are reranked.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum RerankStrategy {
    /// Keep the retrieval order.
    #[default]
    None,
    /// Maximal marginal relevance.
    Mmr,
    /// A rerank endpoint.
    Endpoint,
}

/// What the runtime does with a chat request, and its prompt templates (handlebars, strict:
/// a variable a template uses but the runtime does not provide is an error). Every template sees
/// `params` (the recipe's parameters); see each template for the rest.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    { "rule": "self.mode != 'Summarize' || self.strategy != 'MapReduce' || (has(self.mapTemplate) && has(self.combineTemplate))", "message": "Summarize with MapReduce needs mapTemplate and combineTemplate" },
    { "rule": "self.mode != 'Summarize' || self.strategy != 'Refine' || has(self.refineTemplate)", "message": "Summarize with Refine needs refineTemplate" },
    { "rule": "self.mode != 'Retrieve' || has(self.promptTemplate)", "message": "Retrieve needs promptTemplate (it formats the answer)" }
]))]
pub struct Generate {
    /// `Answer` (retrieve, rerank, answer from the chunks), `Retrieve` (answer with the chunks
    /// themselves, no model call), `Summarize` (summarize the user's text), or `Agent` (the model
    /// searches the knowledge with a tool when it wants).
    #[serde(default)]
    pub mode: PipelineMode,
    /// System prompt; sees `params`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 65536))]
    pub system_template: Option<String>,
    /// The user turn sent to the model (the answer itself for `Retrieve`); sees `question` and
    /// `chunks` (each `index` from 1, `text`, `documentId`, `documentName`, `chunk`, `score`);
    /// for `Summarize` with `Stuff`, sees `text`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 65536))]
    pub prompt_template: Option<String>,
    /// Appended to the answer's text, e.g. a list of sources; sees `chunks` (the cited ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 65536))]
    pub sources_template: Option<String>,
    /// `Summarize`: how text longer than one prompt is reduced.
    #[serde(default)]
    pub strategy: SummaryStrategy,
    /// `Summarize`/`MapReduce`: summary of one part; sees `text`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 65536))]
    pub map_template: Option<String>,
    /// `Summarize`/`MapReduce`: merges the parts' summaries; sees `summaries` (a list of strings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 65536))]
    pub combine_template: Option<String>,
    /// `Summarize`/`Refine`: improves `summary` with the next part `text`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 65536))]
    pub refine_template: Option<String>,
}

/// What the runtime does with a chat request.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum PipelineMode {
    /// Retrieve, rerank, and let the model answer from the chunks, citing them.
    #[default]
    Answer,
    /// Answer with the retrieved chunks, formatted by the prompt template; no model call.
    Retrieve,
    /// Summarize the text of the user's message.
    Summarize,
    /// Tools and memory loop; the knowledge is a `search_knowledge` tool.
    Agent,
}

/// How text longer than one prompt is summarized.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum SummaryStrategy {
    /// Everything in one prompt (input beyond the context is refused).
    Stuff,
    /// Summarize each part, then combine the summaries.
    #[default]
    MapReduce,
    /// Summarize the first part, then refine the summary with each next part.
    Refine,
}

/// The observed state of a recipe.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecipeStatus {
    /// The `metadata.generation` this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Accepted`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::schema::conditions")]
    pub conditions: Vec<Condition>,
}
