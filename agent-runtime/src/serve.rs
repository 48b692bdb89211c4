//! Serving a built runtime: the listener, the background tasks (model, vector store and MCP
//! server watchers, approval timeouts, recipe source ingestion, memory retention), tasks a crash
//! cut off, the Agent's own `Once` and `Schedule` runs, and graceful shutdown.

use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;

use crate::agent::Agent;
use crate::fetch::Fetcher;
use crate::knowledge::Knowledge;
use crate::memory::Memory;
use crate::metrics::Metrics;
use crate::readiness::{ComponentState, Readiness};
use crate::runtime::{KNOWLEDGE, Runtime, StartError};
use crate::tasks::runner;
use crate::tools::mcp::McpTiming;
use crate::vector::VectorStore;
use crate::{ServeOptions, http};

/// How often a vector store server is checked once it answered.
const STORE_CHECK_EVERY: Duration = Duration::from_secs(30);

/// Serves the agent until SIGTERM or SIGINT, then lets streams finish.
pub async fn serve(config: agent_crds::RuntimeConfig, options: ServeOptions) -> Result<(), StartError> {
    let runtime = Runtime::build(config, &options)?;
    serve_runtime(runtime, options).await
}

/// Serves the agent with its model from `provider` (the in-process model of local mode).
pub async fn serve_with(
    config: agent_crds::RuntimeConfig,
    options: ServeOptions,
    provider: Arc<dyn crate::provider::ModelProvider>,
) -> Result<(), StartError> {
    let runtime = Runtime::build_with(config, &options, provider)?;
    serve_runtime(runtime, options).await
}

async fn serve_runtime(Runtime { state, remote_store }: Runtime, options: ServeOptions) -> Result<(), StartError> {
    let listener = tokio::net::TcpListener::bind(options.addr).await?;
    tracing::info!(agent = %state.agent.config.agent.name, addr = %listener.local_addr()?, "serving");
    let sessions = state.agent.sessions().clone();
    state
        .usage
        .resume(sessions.clone(), &state.agent.config.model.model)
        .await
        .map_err(|e| StartError::Usage(e.to_string()))?;
    let usage = state.usage.clone();
    tokio::spawn(watch_model(state.agent.clone()));
    watch_tool_servers(&state, options.mcp);
    let pending = state.agent.watch_approvals().await.map_err(|e| StartError::Approvals(e.to_string()))?;
    if pending > 0 {
        tracing::info!(pending, "tool calls still wait for an approval");
    }
    let interrupted = state.tasks.recover().await.map_err(|e| StartError::Tasks(e.to_string()))?;
    if !interrupted.is_empty() {
        tracing::warn!(interrupted = interrupted.len(), "tasks that ran when the agent stopped are marked failed");
    }
    runner::start(state.tasks.clone(), &interrupted, options.schedule_precision)
        .await
        .map_err(|e| StartError::Tasks(e.to_string()))?;
    crate::cluster::status::start(&state)?;
    if let Some(store) = remote_store {
        tokio::spawn(watch_store(store, state.readiness.clone(), state.metrics.clone()));
    }
    if let Some(memory) = state.agent.memory().cloned() {
        tokio::spawn(forget_expired_memories(memory));
    }
    if let (Some(recipe), Some(knowledge)) = (&state.agent.config.recipe, &state.knowledge)
        && !recipe.sources.is_empty()
    {
        let sources = recipe.sources.clone();
        let limit = options.limits.max_document_bytes;
        tokio::spawn(ingest_sources(knowledge.clone(), state.fetcher.clone(), sources, limit));
    }
    // Tokens go out as small writes; without NODELAY, Nagle's algorithm holds the last ones back
    // until the client's delayed ACK (~40 ms a response).
    let listener = listener.tap_io(|tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
    });
    let api = match options.metrics_addr {
        None => http::router(state),
        Some(addr) => {
            let metrics = tokio::net::TcpListener::bind(addr).await?;
            tracing::info!(addr = %metrics.local_addr()?, "serving metrics");
            tokio::spawn(serve_metrics(metrics, http::metrics_router(state.clone())));
            http::api_router(state)
        }
    };
    axum::serve(listener, api).with_graceful_shutdown(shutdown_signal()).await?;
    if let Err(error) = usage.flush(&sessions).await {
        tracing::warn!(%error, "keeping the token counts at shutdown failed");
    }
    tracing::info!("stopped");
    Ok(())
}

/// Serves `/metrics` on its own listener until the process ends; a failure is logged, and the
/// kubelet's probes (on the API port) do not depend on it.
async fn serve_metrics(listener: tokio::net::TcpListener, router: axum::Router) {
    if let Err(error) = axum::serve(listener, router).await {
        tracing::error!(%error, "the metrics listener stopped");
    }
}

/// Starts watching (connecting to) every MCP server of the agent; each is a degraded readiness
/// component until it has listed its tools.
pub fn watch_tool_servers(state: &http::AppState, timing: McpTiming) {
    for server in state.agent.tools().servers() {
        let waiting = ComponentState::Degraded("connecting".into());
        state.readiness.set(&server.component(), waiting, &state.metrics);
        tokio::spawn(server.clone().watch(state.readiness.clone(), state.metrics.clone(), timing));
    }
}

/// Ingests the recipe's source URLs at start (already stored content is recognised by its hash
/// and skipped); a source that fails is retried with backoff for about an hour.
async fn ingest_sources(knowledge: Arc<Knowledge>, fetcher: Fetcher, sources: Vec<String>, limit: usize) {
    for url in sources {
        let mut delay = Duration::from_secs(2);
        loop {
            let outcome = match fetcher.document(&url, limit).await {
                Ok(document) => knowledge
                    .ingest(&url, document.content_type.as_deref(), &document.bytes)
                    .await
                    .map_err(|e| e.to_string()),
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

/// Checks a vector store server: quickly with backoff until it answers, then every
/// [`STORE_CHECK_EVERY`]; its state is the knowledge component's readiness.
pub async fn watch_store(store: Arc<dyn VectorStore>, readiness: Arc<Readiness>, metrics: Arc<Metrics>) {
    let mut delay = Duration::from_millis(200);
    loop {
        match store.count(None).await {
            Ok(_) => {
                readiness.set(KNOWLEDGE, ComponentState::Ready, &metrics);
                delay = Duration::from_millis(200);
                tokio::time::sleep(STORE_CHECK_EVERY).await;
            }
            Err(error) => {
                readiness.set(KNOWLEDGE, ComponentState::NotReady(error.to_string()), &metrics);
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
    }
}

pub(crate) async fn shutdown_signal() {
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
