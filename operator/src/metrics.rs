//! Prometheus metrics of the controllers: reconciles, failures by category, duration.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Labels of per-kind metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// The reconciled kind, e.g. `Agent`.
    pub kind: &'static str,
}

/// Labels of failure metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    /// The reconciled kind.
    pub kind: &'static str,
    /// The failure category, from an exhaustive match on the error.
    pub category: &'static str,
}

/// Labels of endpoint probe metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProbeLabels {
    /// The probe's result: the `Ready` reason it led to, e.g. `EndpointReachable` or `Unreachable`.
    pub result: &'static str,
}

/// The operator's metrics and their registry.
pub struct Metrics {
    registry: Registry,
    reconciles: Family<KindLabels, Counter>,
    failures: Family<FailureLabels, Counter>,
    duration: Family<KindLabels, Histogram>,
    probes: Family<ProbeLabels, Counter>,
    deferred: Family<KindLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("agent_operator");
        let reconciles = Family::<KindLabels, Counter>::default();
        let failures = Family::<FailureLabels, Counter>::default();
        let duration = Family::<KindLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
        });
        registry.register("reconciles", "Reconciliations started", reconciles.clone());
        registry.register("reconcile_failures", "Reconciliations that failed, by category", failures.clone());
        registry.register("reconcile_duration_seconds", "Duration of reconciliations", duration.clone());
        let probes = Family::<ProbeLabels, Counter>::default();
        registry.register("model_endpoint_probes", "Probes of external model endpoints, by result", probes.clone());
        let deferred = Family::<KindLabels, Counter>::default();
        registry.register(
            "reconciles_deferred",
            "Reconciliations put off because their namespace held its share of the concurrent ones",
            deferred.clone(),
        );
        Self { registry, reconciles, failures, duration, probes, deferred }
    }
}

impl Metrics {
    /// Counts a reconciliation and records how long it took.
    pub fn reconciled(&self, kind: &'static str, elapsed: Duration) {
        self.reconciles.get_or_create(&KindLabels { kind }).inc();
        self.duration.get_or_create(&KindLabels { kind }).observe(elapsed.as_secs_f64());
    }

    /// Counts a failed reconciliation.
    pub fn failed(&self, kind: &'static str, category: &'static str) {
        self.failures.get_or_create(&FailureLabels { kind, category }).inc();
    }

    /// Counts a reconciliation put off for its namespace's share.
    pub fn deferred(&self, kind: &'static str) {
        self.deferred.get_or_create(&KindLabels { kind }).inc();
    }

    /// Counts a probe of an external model endpoint.
    pub fn probed(&self, result: &'static str) {
        self.probes.get_or_create(&ProbeLabels { result }).inc();
    }

    /// The metrics in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}
