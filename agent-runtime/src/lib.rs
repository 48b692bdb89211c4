//! The agent runtime: the program inside every agent pod, and the same program run locally
//! from a manifest. It loads the RuntimeConfig, connects to its model, opens its session store
//! and serves the agent's OpenAI-compatible API.

pub mod agent;
pub mod budget;
pub mod config;
pub mod error;
pub mod http;
pub mod local;
pub mod metrics;
pub mod openai;
pub mod provider;
pub mod sessions;
pub mod tools;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use agent_crds::RuntimeConfig;
use axum::serve::ListenerExt;

use crate::agent::{Agent, Limits};
use crate::http::{ApiLimits, AppState};
use crate::metrics::Metrics;
use crate::provider::ModelProvider;
use crate::provider::openai::{CallPolicy, OpenAiProvider};
use crate::sessions::SessionStore;
use crate::tools::ToolRegistry;

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
            },
            tool_timeout: Duration::from_secs(15),
            max_tool_steps: 8,
            model_api_key: None,
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
    let (tools, skipped) = ToolRegistry::from_config(&config.tools, options.tool_timeout);
    for name in skipped {
        tracing::warn!(tool = %name, "this runtime version cannot run this tool kind yet; it is not offered to the model");
    }
    let api_key = match &config.server.api_key_file {
        Some(path) => Some(std::fs::read_to_string(path)?.trim().to_owned()),
        None => None,
    };
    let limits = Limits { max_tool_steps: options.max_tool_steps, context_budget: context_budget(&config) };
    let config = Arc::new(config);
    let agent = Arc::new(Agent::new(config, provider, tools, sessions, metrics.clone(), limits)?);
    Ok(AppState::new(agent, metrics, api_key, options.limits))
}

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
