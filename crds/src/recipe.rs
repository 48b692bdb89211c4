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
    /// Name used in `Agent.spec.knowledge.parameters` and in templates.
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
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "self.strategy != 'Endpoint' || has(self.endpoint)",
    "message": "strategy Endpoint needs an endpoint"
}]))]
pub struct Rerank {
    /// `None`, `Mmr` (maximal marginal relevance, built in) or `Endpoint` (a `/rerank` API).
    #[serde(default)]
    pub strategy: RerankStrategy,
    /// URL of a rerank API (TEI, llama.cpp, Jina style).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub endpoint: Option<String>,
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

/// Prompt templates, in handlebars.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Generate {
    /// Template of the system prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 65536))]
    pub system_template: Option<String>,
    /// Template of the user prompt; sees `question`, `chunks` and the parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 65536))]
    pub prompt_template: Option<String>,
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
