//! The runtime's Prometheus metrics: requests by status, time to first token, inter-token
//! latency, tokens in and out, tool calls and active streams.

use std::sync::atomic::AtomicI64;
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
    /// Tool name.
    pub tool: String,
    /// `ok`, `error`, `timeout`, `unknown`.
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
        Self { registry, requests, time_to_first_token, inter_token_latency, tokens, tool_calls, active_streams }
    }
}

impl Metrics {
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

    /// Counts model tokens.
    pub fn tokens(&self, prompt: u64, completion: u64) {
        self.tokens.get_or_create(&TokenLabels { direction: "in" }).inc_by(prompt);
        self.tokens.get_or_create(&TokenLabels { direction: "out" }).inc_by(completion);
    }

    /// Counts a tool call.
    pub fn tool_call(&self, tool: &str, outcome: &'static str) {
        self.tool_calls.get_or_create(&ToolLabels { tool: tool.to_owned(), outcome }).inc();
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
