//! Prometheus metrics of the controllers: reconciles, failures by category, duration, and the
//! Agents by namespace and readiness (counted from the controller's cache at each scrape).

use std::sync::OnceLock;
use std::time::Duration;

use agent_crds::Agent;
use agent_crds::conditions::{READY, holds};
use kube::ResourceExt as _;
use kube::runtime::reflector::Store;
use prometheus_client::metrics::gauge::Gauge;

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

/// Labels of the Agent count.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AgentLabels {
    /// The Agents' namespace.
    pub namespace: String,
    /// `true` when their `Ready` condition is True, else `false`.
    pub ready: &'static str,
}

/// The operator's metrics and their registry.
pub struct Metrics {
    registry: Registry,
    reconciles: Family<KindLabels, Counter>,
    failures: Family<FailureLabels, Counter>,
    duration: Family<KindLabels, Histogram>,
    probes: Family<ProbeLabels, Counter>,
    deferred: Family<KindLabels, Counter>,
    agents: Family<AgentLabels, Gauge>,
    /// The Agent controller's cache, counted at each scrape.
    agent_store: OnceLock<Store<Agent>>,
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
        let agents = Family::<AgentLabels, Gauge>::default();
        registry.register("agents", "Agents by namespace and whether they are Ready", agents.clone());
        Self { registry, reconciles, failures, duration, probes, deferred, agents, agent_store: OnceLock::new() }
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

    /// Counts the Agents in `store` (the Agent controller's cache) at every scrape.
    pub fn count_agents(&self, store: Store<Agent>) {
        let _ = self.agent_store.set(store);
    }

    /// The metrics in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        if let Some(store) = self.agent_store.get() {
            self.agents.clear();
            for agent in store.state() {
                let ready = agent.status.as_ref().is_some_and(|s| holds(&s.conditions, READY));
                let ready = if ready { "true" } else { "false" };
                self.agents
                    .get_or_create(&AgentLabels { namespace: agent.namespace().unwrap_or_default(), ready })
                    .inc();
            }
        }
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}
