//! The runtime's Prometheus metrics: requests by status, time to first token, inter-token
//! latency, tokens in and out, tool calls, active streams, and the latency of vector store and
//! embedding calls (retrieval, ingestion, memory), and values reloaded from changed Secret files.

use std::sync::atomic::{AtomicI64, AtomicU64};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Labels of request counts.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Matched route.
    pub route: &'static str,
    /// HTTP status code.
    pub status: u16,
}

/// Labels of token counts.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenLabels {
    /// `in` (prompt) or `out` (completion).
    pub direction: &'static str,
}

/// Labels of tool calls.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ToolLabels {
    /// Name of a configured tool, or `unknown` (never a name the model made up).
    pub tool: String,
    /// `ok`, `error`, `timeout`, `unknown`.
    pub outcome: &'static str,
}

/// Labels of component readiness.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ComponentLabels {
    /// `model`, `knowledge`, `mcp/<tool entry>`: one per configured part, so bounded.
    pub component: String,
}

/// Labels of vector store and embedding calls.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    /// `search`, `upsert`, `delete`, `count`, `scroll`, `retrieve`, or `embed`.
    pub operation: &'static str,
    /// `ok` or `error`.
    pub outcome: &'static str,
}

/// The runtime's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    time_to_first_token: Histogram,
    inter_token_latency: Histogram,
    tokens: Family<TokenLabels, Counter>,
    tool_calls: Family<ToolLabels, Counter>,
    active_streams: Gauge<i64, AtomicI64>,
    vector_operations: Family<OperationLabels, Histogram>,
    embeddings: Family<OperationLabels, Histogram>,
    embedded_texts: Counter,
    component_ready: Family<ComponentLabels, Gauge>,
    approvals: Family<ApprovalLabels, Counter>,
    secret_reloads: Family<SecretLabels, Counter>,
    model_tokens: Family<ModelTokenLabels, Counter>,
    model_cost: Family<CostLabels, Counter<f64, AtomicU64>>,
    budget_used: Family<BudgetLabels, Gauge<f64, AtomicU64>>,
}

/// Labels of budget use.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BudgetLabels {
    /// The `spec.limits` field: `tokensPerDay`, `tokensPerMonth`, `costPerDay`, `costPerMonth`.
    pub budget: &'static str,
}

/// Labels of tokens per model.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModelTokenLabels {
    /// The model's name as the agent calls it (its chat model or embeddings model: bounded).
    pub model: String,
    /// `in` (prompt) or `out` (completion).
    pub direction: &'static str,
}

/// Labels of cost per model.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CostLabels {
    /// The model's name as the agent calls it.
    pub model: String,
    /// ISO 4217 code of the model's prices.
    pub currency: String,
}

/// Labels of Secret file reloads.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SecretLabels {
    /// The config field the file is named by (`server.apiKeyFile`, `tools[<entry>].tokenFile`):
    /// one per configured file, so bounded; never its path or value.
    pub file: String,
}

/// Labels of approval events.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApprovalLabels {
    /// `requested`, `approved`, `denied` or `expired`.
    pub outcome: &'static str,
}

/// Buckets of vector store and embedding latency: 100 µs to 10 s.
fn storage_buckets() -> Histogram {
    Histogram::new([0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0])
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("agent");
        let requests = Family::default();
        let time_to_first_token = Histogram::new([0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]);
        let inter_token_latency = Histogram::new([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0]);
        let tokens = Family::default();
        let tool_calls = Family::default();
        let active_streams = Gauge::default();
        registry.register("requests", "HTTP requests by route and status", requests.clone());
        registry.register(
            "time_to_first_token_seconds",
            "Time from request to the first answer token",
            time_to_first_token.clone(),
        );
        registry.register("inter_token_latency_seconds", "Time between answer tokens", inter_token_latency.clone());
        registry.register("tokens", "Model tokens by direction", tokens.clone());
        registry.register("tool_calls", "Tool calls by tool and outcome", tool_calls.clone());
        registry.register("active_streams", "Streamed answers in progress", active_streams.clone());
        let vector_operations = Family::new_with_constructor(storage_buckets as fn() -> Histogram);
        let embeddings = Family::new_with_constructor(storage_buckets as fn() -> Histogram);
        let embedded_texts = Counter::default();
        registry.register(
            "vector_operation_seconds",
            "Vector store calls (knowledge and memory) by operation and outcome",
            vector_operations.clone(),
        );
        registry.register("embedding_seconds", "Embedding calls by outcome", embeddings.clone());
        registry.register("embedded_texts", "Texts embedded (chunks, queries, memories)", embedded_texts.clone());
        let component_ready = Family::default();
        registry.register(
            "component_ready",
            "Whether a component can serve (1) or not (0); see /readyz for the reason",
            component_ready.clone(),
        );
        let approvals = Family::default();
        registry.register(
            "approvals",
            "Tool calls put before a human, and how they were decided (requested, approved, denied, expired)",
            approvals.clone(),
        );
        let secret_reloads = Family::default();
        registry.register(
            "secret_reloads",
            "Values reloaded from a changed Secret file, by the config field naming the file",
            secret_reloads.clone(),
        );
        let model_tokens = Family::default();
        registry.register(
            "model_tokens",
            "Tokens by model and direction: every call to the chat model (turns, summaries, recipe steps) and to an embeddings endpoint",
            model_tokens.clone(),
        );
        let model_cost = Family::default();
        registry.register(
            "model_cost",
            "Cost of the model calls, by model and currency, from the Models' pricing",
            model_cost.clone(),
        );
        let budget_used = Family::default();
        registry.register(
            "budget_used_ratio",
            "Share of each daily and monthly budget of spec.limits used in its current UTC window (1 = used up)",
            budget_used.clone(),
        );
        Self {
            registry,
            requests,
            time_to_first_token,
            inter_token_latency,
            tokens,
            tool_calls,
            active_streams,
            vector_operations,
            embeddings,
            embedded_texts,
            component_ready,
            approvals,
            secret_reloads,
            model_tokens,
            model_cost,
            budget_used,
        }
    }
}

impl Metrics {
    /// Counts a value reloaded from the changed Secret file named by config field `file`.
    pub fn secret_reloaded(&self, file: &str) {
        self.secret_reloads.get_or_create(&SecretLabels { file: file.to_owned() }).inc();
    }

    /// Counts a finished request.
    pub fn request(&self, route: &'static str, status: u16) {
        self.requests.get_or_create(&RequestLabels { route, status }).inc();
    }

    /// Records the time to the first token.
    pub fn first_token(&self, elapsed: Duration) {
        self.time_to_first_token.observe(elapsed.as_secs_f64());
    }

    /// Records the gap between two tokens.
    pub fn inter_token(&self, elapsed: Duration) {
        self.inter_token_latency.observe(elapsed.as_secs_f64());
    }

    /// Model tokens counted since the process started: prompt, completion.
    pub fn token_totals(&self) -> (u64, u64) {
        let total = |direction| self.tokens.get_or_create(&TokenLabels { direction }).get();
        (total("in"), total("out"))
    }

    /// Counts model tokens.
    pub fn tokens(&self, prompt: u64, completion: u64) {
        self.tokens.get_or_create(&TokenLabels { direction: "in" }).inc_by(prompt);
        self.tokens.get_or_create(&TokenLabels { direction: "out" }).inc_by(completion);
    }

    /// Counts a model call's tokens.
    pub fn model_tokens(&self, model: &str, input: u64, output: u64) {
        for (direction, tokens) in [("in", input), ("out", output)] {
            self.model_tokens.get_or_create(&ModelTokenLabels { model: model.to_owned(), direction }).inc_by(tokens);
        }
    }

    /// Counts a model call's cost, in units of `currency`.
    pub fn model_cost(&self, model: &str, currency: &str, cost: f64) {
        let labels = CostLabels { model: model.to_owned(), currency: currency.to_owned() };
        self.model_cost.get_or_create(&labels).inc_by(cost);
    }

    /// Sets the share of `budget` used in its current window.
    pub fn budget_used(&self, budget: &'static str, ratio: f64) {
        self.budget_used.get_or_create(&BudgetLabels { budget }).set(ratio);
    }

    /// Counts an approval event.
    pub fn approval(&self, outcome: &'static str) {
        self.approvals.get_or_create(&ApprovalLabels { outcome }).inc();
    }

    /// Counts a tool call.
    pub fn tool_call(&self, tool: &str, outcome: &'static str) {
        self.tool_calls.get_or_create(&ToolLabels { tool: tool.to_owned(), outcome }).inc();
    }

    /// Records a vector store call.
    pub fn vector_operation(&self, operation: &'static str, ok: bool, elapsed: Duration) {
        let labels = OperationLabels { operation, outcome: if ok { "ok" } else { "error" } };
        self.vector_operations.get_or_create(&labels).observe(elapsed.as_secs_f64());
    }

    /// Records an embedding call of `texts` texts.
    pub fn embedding(&self, texts: usize, ok: bool, elapsed: Duration) {
        let labels = OperationLabels { operation: "embed", outcome: if ok { "ok" } else { "error" } };
        self.embeddings.get_or_create(&labels).observe(elapsed.as_secs_f64());
        if ok {
            self.embedded_texts.inc_by(texts as u64);
        }
    }

    /// Records whether `component` can serve.
    pub fn component_ready(&self, component: &str, ready: bool) {
        self.component_ready.get_or_create(&ComponentLabels { component: component.to_owned() }).set(i64::from(ready));
    }

    /// Marks a stream as active until the guard drops.
    pub fn stream_started(&self) -> StreamGuard {
        self.active_streams.inc();
        StreamGuard(self.active_streams.clone())
    }

    /// The metrics in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// Decrements the active-streams gauge when dropped.
pub struct StreamGuard(Gauge<i64, AtomicI64>);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}
