//! The agent runtime: the program inside every agent pod, and the same program run locally
//! from a manifest. It loads the RuntimeConfig, connects to its model, opens its session store
//! and serves the agent's OpenAI-compatible API.

pub mod agent;
pub mod budget;
pub mod config;
pub mod embeddings;
pub mod error;
pub mod http;
pub mod ingest;
pub mod knowledge;
pub mod local;
pub mod measured;
pub mod memory;
pub mod metrics;
pub mod openai;
pub mod provider;
pub mod recipe;
pub mod recipes_cli;
pub mod sessions;
pub mod tools;
pub mod vector;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use agent_crds::RuntimeConfig;
use axum::serve::ListenerExt;

use crate::agent::{Agent, Limits};
use crate::embeddings::Embedder;
use crate::http::{ApiLimits, AppState};
use crate::knowledge::Knowledge;
use crate::knowledge::chunk::{ChunkSize, EstimatedTokens};
use crate::measured::{MeasuredEmbedder, MeasuredStore};
use crate::memory::Memory;
use crate::metrics::Metrics;
use crate::provider::ModelProvider;
use crate::provider::openai::{CallPolicy, OpenAiProvider};
use crate::recipe::Pipeline;
use crate::sessions::SessionStore;
use crate::tools::ToolRegistry;
use crate::vector::edge::EdgeStore;
use crate::vector::{QdrantSettings, QdrantStore, VectorStore};
use agent_crds::agent::BuiltinToolKind;
use agent_crds::recipe::PipelineMode;
use agent_crds::runtime_config::{ToolKind, VectorStoreConfig};

/// Settings of the serving process (flags with env fallbacks, parsed once in `main`).
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Address to listen on.
    pub addr: SocketAddr,
    /// Model call timeouts and retries.
    pub call_policy: CallPolicy,
    /// API limits.
    pub limits: ApiLimits,
    /// Longest a tool may run.
    pub tool_timeout: Duration,
    /// Tool rounds before the model must answer.
    pub max_tool_steps: usize,
    /// Model API key used when the config names no key file (from the environment).
    pub model_api_key: Option<String>,
    /// Folder of the built-in embedding model's files; without it, knowledge and memory are off
    /// unless the agent uses an embeddings endpoint.
    pub embedding_model_dir: Option<std::path::PathBuf>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([0, 0, 0, 0], 8080)),
            call_policy: CallPolicy::default(),
            limits: ApiLimits {
                max_body_bytes: 1 << 20,
                max_concurrency: 64,
                request_timeout: Duration::from_secs(300),
                max_document_bytes: 32 << 20,
            },
            tool_timeout: Duration::from_secs(15),
            max_tool_steps: 8,
            model_api_key: None,
            embedding_model_dir: None,
        }
    }
}

/// Why the runtime could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The model provider could not be set up.
    #[error(transparent)]
    Provider(#[from] provider::openai::ProviderSetupError),
    /// The session store could not be opened.
    #[error(transparent)]
    Sessions(#[from] sessions::StoreError),
    /// A file named by the config could not be read, or the address could not be bound.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The recipe cannot run.
    #[error("recipe: {0}")]
    Recipe(#[from] recipe::RecipeError),
}

/// Installs the process-wide TLS crypto provider (ring, as kube uses) once; every HTTP client
/// of the runtime is built after this.
pub fn install_crypto_provider() {
    // Fails only when a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Builds the agent's HTTP state from its config, with the OpenAI-compatible provider.
pub fn build_state(config: RuntimeConfig, options: &ServeOptions) -> Result<AppState, StartError> {
    install_crypto_provider();
    let provider: Arc<dyn ModelProvider> =
        Arc::new(OpenAiProvider::new(&config.model, options.call_policy, options.model_api_key.as_deref())?);
    build_state_with(config, options, provider)
}

/// Builds the agent's HTTP state with a given provider (an in-process model, or a test double).
pub fn build_state_with(
    config: RuntimeConfig,
    options: &ServeOptions,
    provider: Arc<dyn ModelProvider>,
) -> Result<AppState, StartError> {
    install_crypto_provider();
    let metrics = Arc::new(Metrics::default());
    let sessions = SessionStore::open(&Path::new(&config.server.data_dir).join("sessions"))?;
    let (knowledge, memory) = match open_knowledge(&config, options, &metrics) {
        Ok((knowledge, memory)) => (Some(knowledge), Some(memory)),
        Err(why) => {
            tracing::warn!(%why, "knowledge and long-term memory are off");
            (None, None)
        }
    };
    let (mut tools, skipped) = ToolRegistry::from_config(&config.tools, options.tool_timeout);
    for name in skipped {
        let memory_tool = config.tools.iter().any(|t| {
            t.name == name
                && matches!(t.kind, ToolKind::Builtin { tool: BuiltinToolKind::Remember | BuiltinToolKind::Recall, .. })
        });
        match (&memory, memory_tool) {
            (Some(memory), true) => {
                tools.insert(Arc::new(memory::tools::Remember(memory.clone())));
                tools.insert(Arc::new(memory::tools::Recall(memory.clone())));
            }
            _ => {
                tracing::warn!(tool = %name, "this runtime cannot run this tool kind yet; it is not offered to the model");
            }
        }
    }
    let api_key = match &config.server.api_key_file {
        Some(path) => Some(std::fs::read_to_string(path)?.trim().to_owned()),
        None => None,
    };
    let pipeline = match &config.recipe {
        Some(recipe) => {
            let pipeline = Pipeline::new(recipe.clone(), knowledge.clone(), options.tool_timeout)?;
            let pipeline = Arc::new(pipeline);
            if pipeline.mode() == PipelineMode::Agent {
                tools.insert(Arc::new(recipe::tool::SearchKnowledge(pipeline.clone())));
            }
            tracing::info!(recipe = %recipe.name, mode = ?pipeline.mode(), "running recipe");
            Some(pipeline)
        }
        None => None,
    };
    let limits = Limits { max_tool_steps: options.max_tool_steps, context_budget: context_budget(&config) };
    let config = Arc::new(config);
    let mut agent = Agent::new(config, provider, tools, sessions, metrics.clone(), limits, memory)?;
    if let Some(pipeline) = pipeline {
        agent = agent.with_pipeline(pipeline);
    }
    let agent = Arc::new(agent);
    Ok(AppState::new(agent, metrics, api_key, options.limits, knowledge))
}

/// Opens the vector store and the embedder the config names, for knowledge and memory.
fn open_knowledge(
    config: &RuntimeConfig,
    options: &ServeOptions,
    metrics: &Arc<Metrics>,
) -> Result<(Arc<Knowledge>, Arc<Memory>), String> {
    let memory_config = &config.memory;
    let dimension = memory_config.vector_dimension;
    let embedder = embeddings::from_config(
        &memory_config.embedding,
        dimension,
        options.embedding_model_dir.as_deref(),
        options.model_api_key.as_deref(),
    )
    .map_err(|e| e.to_string())?;
    let embedder: Arc<dyn Embedder> = Arc::new(MeasuredEmbedder::new(embedder, metrics.clone()));
    let store: Arc<dyn VectorStore> = match &memory_config.store {
        VectorStoreConfig::Embedded { path } => {
            let store = Arc::new(
                EdgeStore::open(Path::new(path), dimension as usize, memory_config.distance)
                    .map_err(|e| e.to_string())?,
            );
            if tokio::runtime::Handle::try_current().is_ok() {
                store.spawn_optimizer(OPTIMIZE_AFTER_QUIET);
            }
            store
        }
        VectorStoreConfig::Qdrant { url, api_key_file } => {
            let settings = QdrantSettings::from_config(url, api_key_file.as_deref().map(Path::new), memory_config)
                .map_err(|e| e.to_string())?;
            Arc::new(QdrantStore::connect(settings).map_err(|e| e.to_string())?)
        }
    };
    let store: Arc<dyn VectorStore> = Arc::new(MeasuredStore::new(store, metrics.clone()));
    let chunking = config.recipe.as_ref().map_or(ChunkSize { size: 256, overlap: 32 }, |recipe| ChunkSize {
        size: usize::try_from(recipe.spec.ingest.chunk_size).unwrap_or(256),
        overlap: usize::try_from(recipe.spec.ingest.chunk_overlap).unwrap_or(32),
    });
    let knowledge = Arc::new(Knowledge::new(store.clone(), embedder.clone(), Arc::new(EstimatedTokens), chunking));
    let retention = memory_config.retention_seconds.map(Duration::from_secs);
    Ok((knowledge, Arc::new(Memory::new(store, embedder, retention))))
}

/// The embedded store builds its HNSW index once writes have been quiet this long, so a bulk
/// ingest is indexed once, after it ends.
const OPTIMIZE_AFTER_QUIET: Duration = Duration::from_secs(30);

/// Tokens of history sent to the model: the configured budget, or three quarters of the
/// model's context (the rest is for the answer), or 3072.
fn context_budget(config: &RuntimeConfig) -> usize {
    let configured = config.model.parameters.context_budget.or(config.model.context_length.map(|c| c * 3 / 4));
    configured.and_then(|tokens| usize::try_from(tokens).ok()).unwrap_or(3072)
}

/// Serves the agent until SIGTERM or SIGINT, then lets streams finish.
pub async fn serve(config: RuntimeConfig, options: ServeOptions) -> Result<(), StartError> {
    let state = build_state(config, &options)?;
    let listener = tokio::net::TcpListener::bind(options.addr).await?;
    tracing::info!(agent = %state.agent.config.agent.name, addr = %listener.local_addr()?, "serving");
    tokio::spawn(watch_model(state.agent.clone()));
    if let Some(memory) = state.agent.memory().cloned() {
        tokio::spawn(forget_expired_memories(memory));
    }
    if let (Some(recipe), Some(knowledge)) = (&state.agent.config.recipe, &state.knowledge)
        && !recipe.sources.is_empty()
    {
        tokio::spawn(ingest_sources(knowledge.clone(), recipe.sources.clone(), options.limits.max_document_bytes));
    }
    // Tokens go out as small writes; without NODELAY, Nagle's algorithm holds the last ones back
    // until the client's delayed ACK (~40 ms a response).
    let listener = listener.tap_io(|tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
    });
    axum::serve(listener, http::router(state)).with_graceful_shutdown(shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Ingests the recipe's source URLs at start (already stored content is recognised by its hash
/// and skipped); a source that fails is retried with backoff for about an hour.
async fn ingest_sources(knowledge: Arc<Knowledge>, sources: Vec<String>, limit: usize) {
    for url in sources {
        let mut delay = Duration::from_secs(2);
        loop {
            let outcome = match http::knowledge::fetch(&url, limit).await {
                Ok((content_type, bytes)) => {
                    knowledge.ingest(&url, content_type.as_deref(), &bytes).await.map_err(|e| e.to_string())
                }
                Err(error) => Err(error.to_string()),
            };
            match outcome {
                Ok(ingested) => {
                    tracing::info!(%url, created = ingested.created, chunks = ingested.document.chunks, "source ingested");
                    break;
                }
                Err(error) if delay < Duration::from_secs(1200) => {
                    tracing::warn!(%url, %error, retry_in = ?delay, "ingesting a source failed");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                Err(error) => {
                    tracing::error!(%url, %error, "giving up on a source");
                    break;
                }
            }
        }
    }
}

/// Deletes memories past their retention, hourly.
async fn forget_expired_memories(memory: Arc<Memory>) {
    let mut every = tokio::time::interval(Duration::from_secs(3600));
    loop {
        every.tick().await;
        if let Err(error) = memory.forget_expired().await {
            tracing::warn!(%error, "deleting expired memories failed");
        }
    }
}

/// Checks the model until it answers once, so `/readyz` turns ready.
async fn watch_model(agent: Arc<Agent>) {
    let mut delay = Duration::from_millis(200);
    while !agent.model_reached() {
        match agent.check_model().await {
            Ok(()) => tracing::info!(model = %agent.config.model.base_url, "model reachable"),
            Err(error) => {
                tracing::warn!(%error, model = %agent.config.model.base_url, "model not reachable yet");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutdown signal received; finishing open requests");
}
