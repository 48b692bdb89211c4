//! The spans of a turn, named and attributed as the OpenTelemetry GenAI semantic conventions
//! say (`invoke_agent`, `chat`, `execute_tool`, `embeddings`, `retrieval`, memory operations),
//! plus the runtime's own steps (history folding, rerank, session commit). They are ordinary
//! `tracing` spans: exported only when telemetry exports (see `agent-telemetry`), free otherwise.
//!
//! Prompt and completion content is recorded only when
//! `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true` ([`capture_content`]).

use std::sync::LazyLock;

use opentelemetry::trace::Status;
use opentelemetry::{Array, StringValue, Value};
use tracing::Span;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::openai::Usage;

/// The target of these spans (traces only: log lines do not carry them).
pub const TARGET: &str = module_path!();

/// `gen_ai.provider.name` of an OpenAI-compatible endpoint: the API flavour it speaks, as the
/// conventions advise when the vendor behind it is unknown.
pub const OPENAI: &str = "openai";

pub use agent_crds::runtime_config::CAPTURE_CONTENT_VARIABLE;

static CAPTURE_CONTENT: LazyLock<bool> =
    LazyLock::new(|| std::env::var(CAPTURE_CONTENT_VARIABLE).is_ok_and(|v| v.trim().eq_ignore_ascii_case("true")));

/// Whether prompts, answers, tool arguments and results are recorded on spans.
pub fn capture_content() -> bool {
    *CAPTURE_CONTENT
}

/// Where a model or embeddings endpoint listens, for `server.address` and `server.port`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Server {
    /// Host name or address.
    pub address: Option<String>,
    /// Port (the scheme's default when the URL names none).
    pub port: Option<u16>,
}

impl Server {
    /// From an endpoint's base URL (nothing when it does not parse).
    pub fn of(url: &str) -> Self {
        reqwest::Url::parse(url).map_or_else(
            |_| Self::default(),
            |u| Self { address: u.host_str().map(str::to_owned), port: u.port_or_known_default() },
        )
    }
}

/// One request to the agent's API, continuing the caller's trace (`traceparent`).
pub fn http_server(method: &http::Method, route: &str, headers: &http::HeaderMap) -> Span {
    let span = tracing::info_span!(
        "http.server",
        otel.name = %format!("{method} {route}"),
        otel.kind = "server",
        http.request.method = %method,
        http.route = route,
        http.response.status_code = Empty,
    );
    agent_telemetry::propagation::continue_trace(&span, headers);
    span
}

/// The agent's turn (or task): parent of everything the turn does.
pub fn invoke_agent(agent: &str, model: &str, conversation: Option<&str>) -> Span {
    tracing::info_span!(
        "invoke_agent",
        otel.name = %format!("invoke_agent {agent}"),
        otel.kind = "internal",
        gen_ai.operation.name = "invoke_agent",
        gen_ai.provider.name = OPENAI,
        gen_ai.agent.name = agent,
        gen_ai.request.model = model,
        gen_ai.conversation.id = conversation,
        gen_ai.usage.input_tokens = Empty,
        gen_ai.usage.output_tokens = Empty,
        gen_ai.input.messages = Empty,
        gen_ai.output.messages = Empty,
        error.type = Empty,
    )
}

/// One model call.
pub fn chat(model: &str, server: &Server, streaming: bool) -> Span {
    tracing::info_span!(
        "chat",
        otel.name = %format!("chat {model}"),
        otel.kind = "client",
        gen_ai.operation.name = "chat",
        gen_ai.provider.name = OPENAI,
        gen_ai.request.model = model,
        gen_ai.request.stream = streaming,
        server.address = server.address.as_deref(),
        server.port = server.port.map(i64::from),
        gen_ai.response.model = Empty,
        gen_ai.response.id = Empty,
        gen_ai.response.time_to_first_chunk = Empty,
        gen_ai.usage.input_tokens = Empty,
        gen_ai.usage.output_tokens = Empty,
        error.type = Empty,
    )
}

/// One tool call; `kind` is `function` (the agent's own), `extension` (MCP, HTTP, agents) or
/// `datastore` (knowledge, memory).
pub fn execute_tool(name: &str, call_id: &str, kind: &str) -> Span {
    tracing::info_span!(
        "execute_tool",
        otel.name = %format!("execute_tool {name}"),
        otel.kind = "internal",
        gen_ai.operation.name = "execute_tool",
        gen_ai.tool.name = name,
        gen_ai.tool.call.id = call_id,
        gen_ai.tool.type = kind,
        gen_ai.tool.call.arguments = Empty,
        gen_ai.tool.call.result = Empty,
        error.type = Empty,
    )
}

/// One call to an embeddings model.
pub fn embeddings(model: &str, server: &Server, inputs: usize) -> Span {
    tracing::info_span!(
        "embeddings",
        otel.name = %format!("embeddings {model}"),
        otel.kind = if server.address.is_some() { "client" } else { "internal" },
        gen_ai.operation.name = "embeddings",
        gen_ai.provider.name = if server.address.is_some() { OPENAI } else { "agent_runtime" },
        gen_ai.request.model = model,
        server.address = server.address.as_deref(),
        server.port = server.port.map(i64::from),
        agent.embeddings.inputs = int(inputs),
        gen_ai.usage.input_tokens = Empty,
        gen_ai.embeddings.dimension.count = Empty,
        error.type = Empty,
    )
}

/// A search of the agent's knowledge.
pub fn retrieval(source: &str, top_k: usize) -> Span {
    tracing::info_span!(
        "retrieval",
        otel.name = %format!("retrieval {source}"),
        otel.kind = "internal",
        gen_ai.operation.name = "retrieval",
        gen_ai.data_source.id = source,
        gen_ai.request.top_k = int(top_k),
        gen_ai.retrieval.query.text = Empty,
        agent.retrieval.documents = Empty,
        error.type = Empty,
    )
}

/// Reranking of retrieved passages.
pub fn rerank(strategy: &str, candidates: usize) -> Span {
    tracing::info_span!(
        "rerank",
        otel.name = %format!("rerank {strategy}"),
        otel.kind = "internal",
        agent.rerank.strategy = strategy,
        agent.rerank.candidates = int(candidates),
        error.type = Empty,
    )
}

/// A memory operation (`search_memory`, `create_memory`, ...) on the agent's memory store.
pub fn memory(operation: &'static str, store: &str) -> Span {
    tracing::info_span!(
        "memory",
        otel.name = operation,
        otel.kind = "internal",
        gen_ai.operation.name = operation,
        gen_ai.memory.store.id = store,
        gen_ai.memory.record.count = Empty,
        error.type = Empty,
    )
}

/// Folding old turns of a session into its summary.
pub fn fold_history(session: &str) -> Span {
    tracing::info_span!(
        "fold_history",
        otel.kind = "internal",
        gen_ai.conversation.id = session,
        agent.history.folded_messages = Empty,
    )
}

/// Writing the turn to its session.
pub fn commit_session(session: &str) -> Span {
    tracing::info_span!("commit_session", otel.kind = "internal", gen_ai.conversation.id = session)
}

/// A count as a span attribute: OTLP integers are signed (`tracing` would export an unsigned
/// number as a string).
pub fn int(n: impl TryInto<i64>) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

/// Records a call's token counts.
pub fn record_usage(span: &Span, usage: &Usage) {
    span.record("gen_ai.usage.input_tokens", int(usage.prompt_tokens));
    span.record("gen_ai.usage.output_tokens", int(usage.completion_tokens));
}

/// Records why the model stopped (a string array, which `tracing` fields cannot carry).
pub fn record_finish_reasons(span: &Span, reasons: &[String]) {
    if reasons.is_empty() {
        return;
    }
    let values: Vec<StringValue> = reasons.iter().cloned().map(StringValue::from).collect();
    span.set_attribute("gen_ai.response.finish_reasons", Value::Array(Array::String(values)));
}

/// Marks `span` failed: `error.type` (low-cardinality) and the error status with `message`.
pub fn record_error(span: &Span, error_type: &str, message: &str) {
    span.record("error.type", error_type);
    span.set_status(Status::error(message.to_owned()));
}

/// Records `content` in `field` when content capture is on.
pub fn record_content(span: &Span, field: &'static str, content: impl FnOnce() -> String) {
    if capture_content() {
        span.record(field, content());
    }
}
