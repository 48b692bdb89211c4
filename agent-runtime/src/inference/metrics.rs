//! What the in-process engine reports (`agent_model_*` on `/metrics` of `serve-model`): queue
//! depth, running sequences, time to first token, inter-token latency and token counts (their
//! `rate()` is tokens per second), and finished requests by reason.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Labels of finished requests.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FinishLabels {
    /// `stop`, `length`, `cancelled` (the client went away) or `error`.
    pub reason: &'static str,
}

/// The engine's metrics; cheap to clone (every family is shared).
#[derive(Clone, Debug)]
pub struct EngineMetrics {
    waiting: Gauge,
    running: Gauge,
    time_to_first_token: Histogram,
    inter_token_latency: Histogram,
    prompt_tokens: Counter,
    generated_tokens: Counter,
    finished: Family<FinishLabels, Counter>,
}

impl Default for EngineMetrics {
    fn default() -> Self {
        Self {
            waiting: Gauge::default(),
            running: Gauge::default(),
            time_to_first_token: Histogram::new([0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
            inter_token_latency: Histogram::new([0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28]),
            prompt_tokens: Counter::default(),
            generated_tokens: Counter::default(),
            finished: Family::default(),
        }
    }
}

impl EngineMetrics {
    /// Registers the metrics in `registry` (prefix `agent_model` when it has prefix `agent`).
    pub fn register(&self, registry: &mut Registry) {
        let model = registry.sub_registry_with_prefix("model");
        model.register("requests_waiting", "Requests waiting for a free sequence (queue depth)", self.waiting.clone());
        model.register("requests_running", "Sequences being generated", self.running.clone());
        model.register(
            "time_to_first_token_seconds",
            "Time from a request's arrival to its first generated token (queueing and prompt included)",
            self.time_to_first_token.clone(),
        );
        model.register(
            "inter_token_latency_seconds",
            "Time between generated tokens of one sequence",
            self.inter_token_latency.clone(),
        );
        model.register("prompt_tokens", "Prompt tokens processed", self.prompt_tokens.clone());
        model.register("generated_tokens", "Tokens generated", self.generated_tokens.clone());
        model.register("requests_finished", "Finished requests by reason", self.finished.clone());
    }

    pub(super) fn occupancy(&self, waiting: usize, running: usize) {
        self.waiting.set(i64::try_from(waiting).unwrap_or(i64::MAX));
        self.running.set(i64::try_from(running).unwrap_or(i64::MAX));
    }

    pub(super) fn first_token(&self, elapsed: Duration) {
        self.time_to_first_token.observe(elapsed.as_secs_f64());
    }

    pub(super) fn next_token(&self, elapsed: Duration) {
        self.inter_token_latency.observe(elapsed.as_secs_f64());
    }

    pub(super) fn prompt(&self, tokens: usize) {
        self.prompt_tokens.inc_by(tokens as u64);
    }

    pub(super) fn generated(&self) {
        self.generated_tokens.inc();
    }

    pub(super) fn finished(&self, reason: &'static str) {
        self.finished.get_or_create(&FinishLabels { reason }).inc();
    }
}
