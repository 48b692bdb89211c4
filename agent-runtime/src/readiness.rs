//! Readiness by component: the model, knowledge (embedder and vector store), and whatever
//! else the runtime depends on. `/readyz` lists each with its state and reason, and the
//! `agent_component_ready` gauge carries the same, so a component that cannot serve is never
//! silently off: it is `NotReady` (the runtime is not ready), `Degraded` (the runtime serves
//! without it, as with an MCP server that is down) or `Disabled` (off by configuration).

use std::collections::BTreeMap;
use std::sync::RwLock;

use serde::Serialize;

use crate::metrics::Metrics;

/// The state of one component.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "reason", rename_all = "camelCase")]
pub enum ComponentState {
    /// Serving.
    Ready,
    /// Not serving yet or any more; the runtime is not ready.
    NotReady(String),
    /// Down, but the runtime serves without it (an MCP server's tools are absent until it is back).
    Degraded(String),
    /// Off by configuration; the runtime is ready without it.
    Disabled(String),
}

/// The readiness of every component.
#[derive(Default)]
pub struct Readiness {
    components: RwLock<BTreeMap<String, ComponentState>>,
}

/// What `/readyz` answers.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Whether every component is ready or disabled.
    pub ready: bool,
    /// Each component's state.
    pub components: BTreeMap<String, ComponentState>,
}

impl Readiness {
    /// Records the state of `component` (and its gauge).
    pub fn set(&self, component: &str, state: ComponentState, metrics: &Metrics) {
        metrics.component_ready(component, !matches!(state, ComponentState::NotReady(_) | ComponentState::Degraded(_)));
        let mut components = self.components.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if components.get(component) != Some(&state) {
            match &state {
                ComponentState::NotReady(reason) => tracing::warn!(component, %reason, "component not ready"),
                ComponentState::Degraded(reason) => tracing::warn!(component, %reason, "component degraded"),
                ComponentState::Disabled(reason) => tracing::warn!(component, %reason, "component disabled"),
                ComponentState::Ready => tracing::info!(component, "component ready"),
            }
            components.insert(component.to_owned(), state);
        }
    }

    /// The report, with `extra` (states computed on request) added.
    pub fn report(&self, extra: impl IntoIterator<Item = (&'static str, ComponentState)>) -> Report {
        let mut components = self.components.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        components.extend(extra.into_iter().map(|(name, state)| (name.to_owned(), state)));
        let ready = components.values().all(ComponentState::serves);
        Report { ready, components }
    }
}

impl ComponentState {
    /// Whether the runtime can serve with the component in this state.
    pub fn serves(&self) -> bool {
        !matches!(self, Self::NotReady(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_component_not_ready_makes_the_runtime_not_ready_and_disabled_ones_do_not() {
        let metrics = Metrics::default();
        let readiness = Readiness::default();
        readiness.set("knowledge", ComponentState::Disabled("no model folder".into()), &metrics);
        assert!(readiness.report([("model", ComponentState::Ready)]).ready);
        readiness.set("vectorStore", ComponentState::NotReady("cannot reach Qdrant".into()), &metrics);
        let report = readiness.report([("model", ComponentState::Ready)]);
        assert!(!report.ready);
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["components"]["vectorStore"]["state"], "notReady");
        assert_eq!(json["components"]["vectorStore"]["reason"], "cannot reach Qdrant");
        assert!(metrics.encode().contains(r#"agent_component_ready{component="vectorStore"} 0"#));
        readiness.set("vectorStore", ComponentState::Ready, &metrics);
        assert!(readiness.report([]).ready);
        assert!(metrics.encode().contains(r#"agent_component_ready{component="vectorStore"} 1"#));
    }
}
