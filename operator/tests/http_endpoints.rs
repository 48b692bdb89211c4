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
