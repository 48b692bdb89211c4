//! Operational endpoints: readiness, metrics, and the agent listed as a model.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::{Value, json};

use super::AppState;
use crate::readiness::ComponentState;
use crate::tools::ToolListing;

/// Readiness name of the model component.
const MODEL: &str = "model";

/// Ready once the model has answered at least once and no component is not ready; the body
/// lists each component with its state and reason.
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let model = if state.agent.model_reached() {
        ComponentState::Ready
    } else {
        ComponentState::NotReady(format!("waiting for the model at {}", state.agent.config.model.base_url))
    };
    state.metrics.component_ready(MODEL, model.serves());
    let report = state.readiness.report([(MODEL, model)]);
    let status = if report.ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(report))
}

/// Every tool the agent offers now (name, source, description, schema, whether it needs an
/// approval), and the ones it does not offer with the reason.
pub async fn tools(State(state): State<AppState>) -> Json<ToolListing> {
    Json(state.agent.tools().listing())
}

/// Prometheus metrics.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], state.metrics.encode())
}

/// The agent, as the one model an OpenAI client can pick.
pub async fn models(State(state): State<AppState>) -> Json<Value> {
    Json(json!({
        "object": "list",
        "data": [{"id": state.agent.config.agent.name, "object": "model", "created": 0, "owned_by": "agent-operator"}],
    }))
}
