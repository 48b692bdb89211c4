//! The runtime's HTTP API: `/healthz` (alive), `/readyz` (able to serve) and `GET /v1/models`.

use std::sync::Arc;

use agent_crds::RuntimeConfig;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

/// State shared by the handlers.
#[derive(Clone)]
pub struct AppState {
    config: Arc<RuntimeConfig>,
}

impl AppState {
    /// State serving `config`.
    pub fn new(config: RuntimeConfig) -> Self {
        Self { config: Arc::new(config) }
    }
}

/// The runtime's router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ready" }))
        .route("/v1/models", get(models))
        .with_state(state)
}

/// The agent, listed as the one model an OpenAI client can pick.
async fn models(State(state): State<AppState>) -> Json<Value> {
    Json(json!({
        "object": "list",
        "data": [{"id": state.config.agent.name, "object": "model", "owned_by": "agent-operator"}],
    }))
}
