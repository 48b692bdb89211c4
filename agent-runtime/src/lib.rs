//! The agent runtime: the program inside every agent pod, and the same program run locally
//! from a manifest. It loads the RuntimeConfig, builds the runtime from it ([`runtime`]) and
//! serves the agent's OpenAI-compatible API ([`serve`]).

pub mod a2a;
pub mod agent;
pub mod budget;
pub mod cluster;
pub mod config;
pub mod delegation;
pub mod embeddings;
pub mod error;
pub mod fetch;
pub mod http;
pub mod inference;
pub mod ingest;
pub mod knowledge;
pub mod local;
pub mod measured;
pub mod memory;
pub mod metrics;
pub mod model_server;
pub mod openai;
pub mod provider;
pub mod readiness;
pub mod recipe;
pub mod recipes_cli;
pub mod runtime;
pub mod secret_file;
pub mod serve;
pub mod sessions;
pub mod tasks;
pub mod tools;
pub mod traces;
pub mod usage;
pub mod vector;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use agent_crds::RuntimeConfig;

pub use crate::agent::BusySession;
use crate::http::{ApiLimits, AppState};
use crate::provider::ModelProvider;
use crate::provider::openai::CallPolicy;
pub use crate::runtime::{Runtime, StartError};
pub use crate::serve::{serve, serve_with, watch_tool_servers};
pub use crate::tools::mcp::McpTiming;

/// Settings of the serving process (flags with env fallbacks, parsed once in `main`).
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Address to listen on.
    pub addr: SocketAddr,
    /// Address of the `/metrics` listener; `None` serves `/metrics` on `addr`.
    pub metrics_addr: Option<SocketAddr>,
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
    /// What a turn on a session busy with another turn does.
    pub busy_session: BusySession,
    /// Runs without knowledge and long-term memory (no embedder, no vector store); `/readyz`
    /// shows knowledge as disabled.
    pub without_knowledge: bool,
    /// How MCP servers are pinged and reconnected.
    pub mcp: McpTiming,
    /// How precise the Agent's task schedule is: minutes (5 fields, as the Agent schema says),
    /// or seconds for tests that cannot wait a minute.
    pub schedule_precision: agent_crds::schedule::Precision,
    /// How often a value from a mounted Secret file (keys, tokens, the system prompt) is read
    /// again when it is used; tests shorten it to see a rotation at once.
    pub secret_check_every: Duration,
    /// Where budgets read the day and month (tests move it).
    pub clock: crate::usage::Clock,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([0, 0, 0, 0], 8080)),
            metrics_addr: None,
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
            busy_session: BusySession::Queue,
            without_knowledge: false,
            mcp: McpTiming::default(),
            schedule_precision: agent_crds::schedule::Precision::Minutes,
            secret_check_every: crate::secret_file::DEFAULT_CHECK_EVERY,
            clock: crate::usage::Clock::default(),
        }
    }
}

/// Installs the process-wide TLS crypto provider (ring, as kube uses) once; every HTTP client
/// of the runtime is built after this.
pub fn install_crypto_provider() {
    // Fails only when a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Builds the agent's HTTP state from its config, with the OpenAI-compatible provider.
pub fn build_state(config: RuntimeConfig, options: &ServeOptions) -> Result<AppState, StartError> {
    Ok(Runtime::build(config, options)?.state)
}

/// Builds the agent's HTTP state with a given provider (an in-process model, or a test double).
pub fn build_state_with(
    config: RuntimeConfig,
    options: &ServeOptions,
    provider: Arc<dyn ModelProvider>,
) -> Result<AppState, StartError> {
    Ok(Runtime::build_with(config, options, provider)?.state)
}
