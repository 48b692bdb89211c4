//! The operator's HTTP endpoints: metrics in Prometheus format, liveness, and readiness that says why not.

use std::sync::Arc;
use std::time::Duration;

use agent_operator::http::{HttpState, router};
use agent_operator::metrics::Metrics;
use agent_operator::readiness::{Phase, Readiness};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt;

async fn get(state: &HttpState, path: &str) -> (StatusCode, String) {
    let response = router(state.clone()).oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

#[tokio::test]
async fn readiness_reports_missing_crds_then_standby_then_running() {
    let state = HttpState { metrics: Arc::new(Metrics::default()), readiness: Arc::new(Readiness::default()) };
    state.readiness.set(Phase::WaitingForCrds("CRD agents.agent-operator.dev is not installed".into()));
    let (status, body) = get(&state, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("agents.agent-operator.dev"), "{body}");
    assert_eq!(get(&state, "/healthz").await.0, StatusCode::OK, "liveness does not depend on the CRDs");
    state.readiness.set(Phase::Standby);
    assert_eq!(get(&state, "/readyz").await.0, StatusCode::OK);
    state.readiness.set(Phase::Running);
    assert_eq!(get(&state, "/readyz").await, (StatusCode::OK, "leading and reconciling".into()));
}

#[tokio::test]
async fn metrics_expose_reconciles_failures_and_durations() {
    let state = HttpState { metrics: Arc::new(Metrics::default()), readiness: Arc::new(Readiness::default()) };
    state.metrics.reconciled("Agent", Duration::from_millis(20));
    state.metrics.failed("Agent", "apply");
    let (status, body) = get(&state, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains(r#"agent_operator_reconciles_total{kind="Agent"} 1"#), "{body}");
    assert!(body.contains(r#"agent_operator_reconcile_failures_total{kind="Agent",category="apply"} 1"#), "{body}");
    assert!(body.contains(r#"agent_operator_reconcile_duration_seconds_bucket{le="0.025",kind="Agent"} 1"#), "{body}");
}

/// An Agent in `namespace` whose `Ready` condition has `ready` as its status.
fn agent(namespace: &str, name: &str, ready: &str) -> agent_crds::Agent {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "agent-operator.dev/v1alpha1", "kind": "Agent",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"model": {"modelRef": {"name": "m"}}},
        "status": {"conditions": [{"type": "Ready", "status": ready, "reason": "Test", "message": "",
                                   "lastTransitionTime": "2026-11-29T00:00:00Z"}]}
    }))
    .unwrap()
}

#[tokio::test]
async fn agents_are_counted_by_namespace_and_readiness_and_the_controller_alerts_use_them() {
    let (store, mut writer) = kube::runtime::reflector::store::<agent_crds::Agent>();
    for agent in
        [agent("team-a", "helpdesk", "True"), agent("team-a", "triage", "False"), agent("team-b", "x", "Unknown")]
    {
        writer.apply_watcher_event(&kube::runtime::watcher::Event::Apply(agent));
    }
    let state = HttpState { metrics: Arc::new(Metrics::default()), readiness: Arc::new(Readiness::default()) };
    state.metrics.count_agents(store);
    let (_, body) = get(&state, "/metrics").await;
    for line in [
        r#"agent_operator_agents{namespace="team-a",ready="true"} 1"#,
        r#"agent_operator_agents{namespace="team-a",ready="false"} 1"#,
        r#"agent_operator_agents{namespace="team-b",ready="false"} 1"#,
    ] {
        assert!(body.lines().any(|l| l == line), "{line} in\n{body}");
    }
    // The chart's controller alerts name only metrics this scrape has.
    let rules = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../charts/agent-operator/files/agent-rules.yaml"
    ))
    .unwrap();
    let named: Vec<&str> = rules
        .match_indices("agent_operator_")
        .map(|(at, _)| rules[at..].split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).next().unwrap())
        .collect();
    assert!(!named.is_empty(), "the rules hold the controller's alerts");
    for name in named {
        assert!(body.lines().any(|l| l.starts_with(name)), "{name} is not in the operator's scrape");
    }
}
