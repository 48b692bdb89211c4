//! `agent-runtime serve-model`: an OpenAI-compatible server of one in-process GGUF model
//! ([`crate::inference`]) and the built-in embedding model, what the operator runs for Models
//! with `serve.engine: runtime` (CPU serving in the cluster, no GPU). `/v1/chat/completions`,
//! `/v1/completions`, `/v1/embeddings`, `/v1/models`; `/healthz` answers while the weights
//! load, `/readyz` once they are loaded; `/metrics` has the engine's queue depth, running
//! sequences, time to first token, inter-token latency and token counts.

mod completions;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use prometheus_client::registry::Registry;
use serde_json::json;

use crate::embeddings::minilm::MiniLm;
use crate::http::ApiError;
use crate::inference::metrics::EngineMetrics;
use crate::inference::{Engine, EngineOptions};

/// Largest request body.
const MAX_BODY_BYTES: usize = 8 << 20;

/// What `serve-model` serves.
#[derive(Clone, Debug)]
pub struct ModelServerOptions {
    /// Address to listen on.
    pub addr: SocketAddr,
    /// The engine's model and its sequences, context and threads.
    pub engine: EngineOptions,
    /// Name the model is served under.
    pub served_name: String,
    /// Folder of the built-in embedding model; `None` serves no embeddings.
    pub embedding_model_dir: Option<PathBuf>,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ModelServerError {
    /// The listener could not be opened.
    #[error("cannot listen: {0}")]
    Listen(#[from] std::io::Error),
    /// The model could not be loaded.
    #[error(transparent)]
    Load(#[from] crate::inference::InferenceError),
    /// The embedding model could not be loaded.
    #[error("cannot load the embedding model: {0}")]
    Embeddings(String),
}

/// The server's shared state: the engine once loaded.
#[derive(Clone)]
struct ServerState {
    served_name: Arc<str>,
    engine: Arc<OnceLock<Arc<Engine>>>,
    embedder: Option<Arc<MiniLm>>,
    registry: Arc<Registry>,
}

/// The name the built-in embedding model is served under.
const EMBEDDING_MODEL: &str = agent_crds::runtime_config::BUILTIN_EMBEDDING_MODEL;

/// Listens at once (liveness answers while the weights load), loads the model, then serves
/// until SIGTERM or SIGINT. A model that cannot load ends the process with the reason.
pub async fn serve_model(options: ModelServerOptions) -> Result<(), ModelServerError> {
    let metrics = EngineMetrics::default();
    let mut registry = Registry::with_prefix("agent");
    metrics.register(&mut registry);
    let embedder = match &options.embedding_model_dir {
        Some(dir) => Some(Arc::new(MiniLm::load(dir).map_err(|e| ModelServerError::Embeddings(e.to_string()))?)),
        None => None,
    };
    let state = ServerState {
        served_name: options.served_name.clone().into(),
        engine: Arc::new(OnceLock::new()),
        embedder,
        registry: Arc::new(registry),
    };
    let listener = tokio::net::TcpListener::bind(options.addr).await?;
    tracing::info!(addr = %listener.local_addr()?, model = %options.engine.model_path.display(), "loading the model");
    let server = tokio::spawn(
        axum::serve(listener, router(state.clone()))
            .with_graceful_shutdown(crate::serve::shutdown_signal())
            .into_future(),
    );
    let engine = Engine::start(options.engine.clone(), metrics).await?;
    let _ = state.engine.set(Arc::new(engine));
    server.await.map_err(|e| std::io::Error::other(e.to_string()))??;
    tracing::info!("stopped");
    Ok(())
}

fn router(state: ServerState) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(completions::chat))
        .route("/v1/completions", post(completions::complete))
        .route("/v1/embeddings", post(completions::embeddings))
        .route("/v1/models", get(models))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

impl ServerState {
    fn engine(&self) -> Result<Arc<Engine>, ApiError> {
        self.engine.get().cloned().ok_or_else(|| ApiError::Unavailable("the model is still loading".into()))
    }
}

async fn ready(State(state): State<ServerState>) -> Response {
    match state.engine.get() {
        Some(_) => (StatusCode::OK, "ready").into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "loading the model").into_response(),
    }
}

async fn models(State(state): State<ServerState>) -> Response {
    let created = jiff::Timestamp::now().as_second();
    let mut data =
        vec![json!({"id": &*state.served_name, "object": "model", "created": created, "owned_by": "agent-runtime"})];
    if state.embedder.is_some() {
        data.push(json!({"id": EMBEDDING_MODEL, "object": "model", "created": created, "owned_by": "agent-runtime"}));
    }
    axum::Json(json!({"object": "list", "data": data})).into_response()
}

async fn metrics(State(state): State<ServerState>) -> Response {
    let mut text = String::new();
    if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &state.registry) {
        return ApiError::Internal(error.to_string()).into_response();
    }
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text).into_response()
}
