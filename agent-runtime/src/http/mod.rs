//! The agent's HTTP API: an OpenAI-compatible chat endpoint, sessions, and operations
//! (`/healthz`, `/readyz`, `/metrics`, the last on a port of its own when the runtime is given
//! one). Limits are layers: body size, API key, request metrics;
//! the chat handler also sheds load beyond its concurrency bound with a 429.

pub mod a2a;
pub mod approvals;
pub mod chat;
pub mod error;
pub mod extract;
pub mod knowledge;
pub mod ops;
pub mod page;
pub mod sessions;
pub mod tasks;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;
use tracing::Instrument as _;

pub use self::error::ApiError;
use crate::agent::Agent;
use crate::fetch::Fetcher;
use crate::knowledge::Knowledge;
use crate::metrics::Metrics;
use crate::readiness::Readiness;
use crate::secret_file::SecretFile;
use crate::tasks::Tasks;
use crate::traces;

/// Limits of the API.
#[derive(Clone, Copy, Debug)]
pub struct ApiLimits {
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Chat requests served at once; more get 429.
    pub max_concurrency: usize,
    /// Longest non-streamed chat request.
    pub request_timeout: Duration,
    /// Largest document upload.
    pub max_document_bytes: usize,
}

/// State shared by the handlers.
#[derive(Clone)]
pub struct AppState {
    /// The agent.
    pub agent: Arc<Agent>,
    /// The agent's tasks (task API, A2A, its own Once and Schedule runs).
    pub tasks: Arc<Tasks>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// API key clients must present, if any (from its Secret file, as it is now).
    pub api_key: Option<SecretFile>,
    /// Limits.
    pub limits: ApiLimits,
    /// Permits for concurrent chat requests.
    pub permits: Arc<Semaphore>,
    /// The agent's documents, when knowledge is on.
    pub knowledge: Option<Arc<Knowledge>>,
    /// Why knowledge is off, when it is.
    pub knowledge_off: Option<String>,
    /// Fetches documents clients name by URL.
    pub fetcher: Fetcher,
    /// Readiness of the runtime's components.
    pub readiness: Arc<Readiness>,
    /// Tokens and cost of the model calls, per model.
    pub usage: Arc<crate::usage::Ledger>,
}

/// The agent's router, `/metrics` included (local runs, and tests).
pub fn router(state: AppState) -> Router {
    routes(state, MetricsRoute::OnApiPort)
}

/// The agent's router without `/metrics`, for when metrics have their own listener
/// ([`metrics_router`]): the API port then answers only API clients.
pub fn api_router(state: AppState) -> Router {
    routes(state, MetricsRoute::Elsewhere)
}

/// `/metrics` (and `/healthz`) alone, for a listener of their own. Scrapers carry no API key;
/// who may reach the port is the network policy's business.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(ops::metrics))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(|| async { ApiError::NotFound("only /metrics is served on this port".into()) })
        .layer(middleware::from_fn_with_state(state.clone(), count_requests))
        .with_state(state)
}

/// Where `/metrics` is served.
#[derive(Clone, Copy, PartialEq, Eq)]
enum MetricsRoute {
    OnApiPort,
    Elsewhere,
}

fn routes(state: AppState, metrics: MetricsRoute) -> Router {
    let api = Router::new()
        .route("/v1/chat/completions", post(chat::chat_completions))
        .route("/v1/models", get(ops::models))
        .route("/v1/tools", get(ops::tools))
        .route(a2a::A2A_PATH, post(a2a::rpc))
        .route("/v1/tasks", post(tasks::submit).get(tasks::list))
        .route("/v1/tasks/{id}", get(tasks::get))
        .route("/v1/tasks/{id}/events", get(tasks::events))
        .route("/v1/tasks/{id}/cancel", post(tasks::cancel))
        .route("/v1/approvals", get(approvals::list))
        .route("/v1/approvals/{id}", get(approvals::get).post(approvals::decide))
        .route("/v1/sessions/{id}", get(sessions::get_session).delete(sessions::delete_session))
        .route(
            "/v1/knowledge/documents",
            post(knowledge::ingest).get(knowledge::list).layer(DefaultBodyLimit::max(state.limits.max_document_bytes)),
        )
        .route("/v1/knowledge/documents/{id}", delete(knowledge::delete))
        .route("/v1/knowledge/search", post(knowledge::search))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_api_key));
    let mut router = Router::new()
        .merge(api)
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ops::readyz))
        .route("/.well-known/agent-card.json", get(a2a::card))
        .merge(page::routes());
    if metrics == MetricsRoute::OnApiPort {
        router = router.route("/metrics", get(ops::metrics));
    }
    router
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .layer(middleware::from_fn_with_state(state.clone(), count_requests))
        .layer(middleware::from_fn(trace_requests))
        .layer(DefaultBodyLimit::max(state.limits.max_body_bytes))
        .with_state(state)
}

/// Checks `Authorization: Bearer <key>` in constant time when the agent has an API key.
async fn require_api_key(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if let Some(key) = &state.api_key {
        let expected = key.current();
        let presented = request
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !bool::from(presented.as_bytes().ct_eq(expected.as_bytes())) {
            return ApiError::Unauthorized.into_response();
        }
    }
    next.run(request).await
}

async fn count_requests(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = route_label(request.extensions().get::<MatchedPath>().map(MatchedPath::as_str));
    let response = next.run(request).await;
    state.metrics.request(route, response.status().as_u16());
    response
}

/// Routes never traced: the kubelet's probes and scrapes would make a trace every few seconds.
const UNTRACED_ROUTES: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// One server span per request, a child of the caller's trace when it sends `traceparent`.
async fn trace_requests(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or("", MatchedPath::as_str).to_owned();
    if UNTRACED_ROUTES.contains(&route.as_str()) {
        return next.run(request).await;
    }
    let span = traces::http_server(request.method(), &route, request.headers());
    let response = next.run(request).instrument(span.clone()).await;
    span.record("http.response.status_code", i64::from(response.status().as_u16()));
    response
}

fn route_label(path: Option<&str>) -> &'static str {
    match path {
        Some("/v1/chat/completions") => "chat_completions",
        Some("/v1/models") => "models",
        Some("/v1/sessions/{id}") => "sessions",
        Some("/v1/tools") => "tools",
        Some("/a2a") => "a2a",
        Some("/v1/tasks" | "/v1/tasks/{id}" | "/v1/tasks/{id}/events" | "/v1/tasks/{id}/cancel") => "tasks",
        Some("/.well-known/agent-card.json") => "agent_card",
        Some("/v1/approvals" | "/v1/approvals/{id}") => "approvals",
        Some("/v1/knowledge/documents" | "/v1/knowledge/documents/{id}") => "knowledge_documents",
        Some("/v1/knowledge/search") => "knowledge_search",
        Some("/healthz") => "healthz",
        Some("/readyz") => "readyz",
        Some("/metrics") => "metrics",
        Some("/" | "/web/{file}") => "page",
        _ => "other",
    }
}
