//! Building a runtime from its config: each subsystem opens itself from its own slice of the
//! RuntimeConfig (sessions, knowledge, tools, recipe, agent). A configured part that cannot
//! start fails the build with a message naming it; a part that can recover (a Qdrant server
//! that is down) starts not ready and is watched until it answers.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use agent_crds::RuntimeConfig;
use agent_crds::recipe::PipelineMode;
use agent_crds::runtime_config::{EmbeddingConfig, TextSource};

use crate::ServeOptions;
use crate::agent::{Agent, AgentParts, Limits};
use crate::cluster::KubeApi;
use crate::delegation::cluster::ClusterChildren;
use crate::delegation::local::LocalChildren;
use crate::delegation::{self, Children};
use crate::fetch::{FetchError, FetchPolicy, Fetcher};
use crate::http::AppState;
use crate::knowledge::Knowledge;
use crate::knowledge::chunk::ChunkSize;
use crate::knowledge::open::{KnowledgeSetup, KnowledgeSetupError, Knowledgeable, Opened};
use crate::metrics::Metrics;
use crate::provider::ModelProvider;
use crate::provider::metered::Metered;
use crate::provider::openai::{OpenAiProvider, ProviderSetupError};
use crate::provider::traced::Traced;
use crate::readiness::{ComponentState, Readiness};
use crate::recipe::{Pipeline, RecipeError};
use crate::secret_file::{SecretFile, SecretFiles, SecretValue};
use crate::sessions::{SessionStore, StoreError};
use crate::tasks::Tasks;
use crate::tools::{ToolDeps, ToolSetupError};
use crate::usage::{Ledger, Price};
use crate::vector::VectorStore;

/// Readiness name of the knowledge component (embedder and vector store).
pub const KNOWLEDGE: &str = "knowledge";

/// Longest a document fetch (ingestion by URL, recipe sources) may take.
const DOCUMENT_FETCH_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the runtime could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The model provider could not be set up.
    #[error(transparent)]
    Provider(#[from] ProviderSetupError),
    /// The session store could not be opened.
    #[error(transparent)]
    Sessions(#[from] StoreError),
    /// Knowledge (embedder, vector store) could not be opened.
    #[error(transparent)]
    Knowledge(#[from] KnowledgeSetupError),
    /// A configured tool cannot be offered.
    #[error(transparent)]
    Tools(#[from] ToolSetupError),
    /// The document fetcher cannot be built.
    #[error("document fetcher: {0}")]
    Fetcher(#[from] FetchError),
    /// A Secret file named by the config could not be read.
    #[error("cannot read {path} ({field}): {source}")]
    SecretFile {
        /// The config field naming it.
        field: &'static str,
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The address could not be bound.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The recipe cannot run.
    #[error("recipe: {0}")]
    Recipe(#[from] RecipeError),
    /// The approvals waiting for a decision cannot be read.
    #[error("pending approvals: {0}")]
    Approvals(String),
    /// The tasks cannot be read, or the Agent's task schedule cannot run.
    #[error("tasks: {0}")]
    Tasks(String),
    /// The token and cost counts kept on the volume cannot be read.
    #[error("usage counts: {0}")]
    Usage(String),
    /// The Kubernetes API client cannot be built.
    #[error(transparent)]
    Cluster(#[from] crate::cluster::KubeError),
}

/// A runtime ready to serve: the agent and what its API and background tasks need.
pub struct Runtime {
    /// The HTTP state (agent, knowledge, limits, readiness).
    pub state: AppState,
    /// The vector store when it is a server that may be down, to watch until it answers.
    pub remote_store: Option<Arc<dyn VectorStore>>,
}

impl Runtime {
    /// Builds the runtime of `config` with the OpenAI-compatible provider.
    pub fn build(config: RuntimeConfig, options: &ServeOptions) -> Result<Self, StartError> {
        crate::install_crypto_provider();
        let secrets = secret_files(options);
        let fallback_key = options.model_api_key.as_deref();
        let provider = OpenAiProvider::new(&config.model, options.call_policy, fallback_key, &secrets)?;
        Self::assemble(config, options, Arc::new(provider), &secrets)
    }

    /// Builds the runtime of `config` with a given provider (an in-process model, a test double).
    pub fn build_with(
        config: RuntimeConfig,
        options: &ServeOptions,
        provider: Arc<dyn ModelProvider>,
    ) -> Result<Self, StartError> {
        crate::install_crypto_provider();
        Self::assemble(config, options, provider, &secret_files(options))
    }

    /// Builds the runtime around `provider`; its Secret files are opened with `secrets`, whose
    /// metrics are the runtime's.
    fn assemble(
        config: RuntimeConfig,
        options: &ServeOptions,
        provider: Arc<dyn ModelProvider>,
        secrets: &SecretFiles,
    ) -> Result<Self, StartError> {
        let metrics = secrets.metrics().clone();
        let readiness = Arc::new(Readiness::default());
        let sessions = SessionStore::open(&Path::new(&config.server.data_dir).join("sessions"))?;
        let usage = Arc::new(
            Ledger::new(prices(&config), metrics.clone()).with_limits(config.limits.clone(), options.clock.clone()),
        );
        let provider = crate::provider::wake::wrap(provider, &config)?;
        let provider: Arc<dyn ModelProvider> =
            Arc::new(Metered::new(provider, config.model.model.clone(), usage.clone()));
        let provider: Arc<dyn ModelProvider> =
            Arc::new(Traced::new(provider, config.model.model.clone(), &config.model.base_url));
        let (opened, knowledge_off) = open_knowledge(&config, options, secrets, &usage)?;
        readiness.set(KNOWLEDGE, knowledge_state(opened.as_ref(), knowledge_off.as_deref()), &metrics);
        let knowledge = opened.as_ref().map(|o| o.knowledge.clone());
        let memory = opened.as_ref().map(|o| o.memory.clone());
        let off_reason = knowledge_off.clone().unwrap_or_default();
        let deps = ToolDeps {
            timeout: options.tool_timeout,
            memory: memory.clone(),
            memory_off_reason: off_reason.clone(),
            secrets: secrets.clone(),
        };
        let mut tools = crate::tools::registry(&config.tools, &deps)?;
        tools.require_approval(config.approval.tools.clone());
        if let Some(bounds) = &config.delegation {
            let children: Arc<dyn Children> = match &config.cluster {
                Some(access) => Arc::new(ClusterChildren::new(KubeApi::new(access)?, config.agent.clone())),
                None => {
                    Arc::new(LocalChildren::new(config.clone(), options.clone(), provider.clone(), sessions.clone()))
                }
            };
            for tool in delegation::tools(config.agent.clone(), bounds.clone(), children, options.tool_timeout) {
                tools.insert("delegation", tool);
            }
        }
        let pipeline = open_pipeline(&config, knowledge.as_ref(), &off_reason, options.tool_timeout)?;
        if let Some(pipeline) = pipeline.as_ref().filter(|p| p.mode() == PipelineMode::Agent) {
            tools.insert("recipe", Arc::new(crate::recipe::tool::SearchKnowledge(pipeline.clone())));
        }
        let api_key = open_secret(secrets, "server.apiKeyFile", config.server.api_key_file.as_deref())?;
        let system_prompt = match &config.persona.system_prompt {
            Some(TextSource::Inline(text)) => Some(SecretValue::from(text.as_str())),
            Some(TextSource::File(path)) => open_secret(secrets, "persona.systemPrompt", Some(path))?.map(Into::into),
            None => None,
        };
        let fetcher = Fetcher::new(document_fetch_policy(&config), DOCUMENT_FETCH_TIMEOUT)?;
        let budgets = config.limits.clone().unwrap_or_default();
        let limits = Limits {
            max_tool_steps: options.max_tool_steps,
            context_budget: context_budget(&config),
            max_tokens_per_turn: budgets.max_tokens_per_turn,
            max_tool_calls_per_turn: budgets.max_tool_calls_per_turn,
        };
        let agent = Agent::new(AgentParts {
            config: Arc::new(config),
            provider,
            tools,
            sessions,
            metrics: metrics.clone(),
            limits,
            memory,
            pipeline,
            busy_session: options.busy_session,
            system_prompt,
        });
        let agent = Arc::new(agent);
        let state = AppState {
            tasks: Arc::new(Tasks::new(agent.clone())),
            agent,
            metrics,
            api_key,
            limits: options.limits,
            permits: Arc::new(tokio::sync::Semaphore::new(options.limits.max_concurrency)),
            knowledge,
            knowledge_off,
            fetcher,
            readiness,
            usage,
        };
        let remote_store = opened.filter(|o| o.remote).map(|o| o.store);
        Ok(Self { state, remote_store })
    }
}

/// The prices of the models the agent calls (its chat model, an embeddings endpoint's model),
/// by the name it calls them.
fn prices(config: &RuntimeConfig) -> BTreeMap<String, Price> {
    let mut prices = BTreeMap::new();
    if let Some(price) = config.model.pricing.as_ref().and_then(Price::of) {
        prices.insert(config.model.model.clone(), price);
    }
    if let EmbeddingConfig::Endpoint { model, pricing: Some(pricing), .. } = &config.memory.embedding
        && let Some(price) = Price::of(pricing)
    {
        prices.insert(model.clone(), price);
    }
    prices
}

/// How the runtime's Secret files are checked; reloads are counted in its metrics.
fn secret_files(options: &ServeOptions) -> SecretFiles {
    SecretFiles::new(options.secret_check_every, Arc::new(Metrics::default()))
}

/// The Secret file at `path`, named by config field `field`, when the config names one.
fn open_secret(
    secrets: &SecretFiles,
    field: &'static str,
    path: Option<&str>,
) -> Result<Option<SecretFile>, StartError> {
    path.map(|path| {
        secrets.open(field, path).map_err(|source| StartError::SecretFile { field, path: path.to_owned(), source })
    })
    .transpose()
}

/// Knowledge and memory, or why they are off.
fn open_knowledge(
    config: &RuntimeConfig,
    options: &ServeOptions,
    secrets: &SecretFiles,
    usage: &Arc<Ledger>,
) -> Result<(Option<Opened>, Option<String>), KnowledgeSetupError> {
    if options.without_knowledge {
        return Ok((None, Some("turned off (--without-knowledge)".into())));
    }
    let setup = KnowledgeSetup {
        embedding_model_dir: options.embedding_model_dir.as_deref(),
        api_key: options.model_api_key.as_deref(),
        chunking: chunking(config),
        secrets,
        usage: Some(usage.clone()),
    };
    Ok(match crate::knowledge::open::open(&config.memory, &setup)? {
        Knowledgeable::On(opened) => (Some(opened), None),
        Knowledgeable::Off(reason) => (None, Some(reason)),
    })
}

/// The knowledge component's state at start: a vector store server is not ready until it answers.
fn knowledge_state(opened: Option<&Opened>, off: Option<&str>) -> ComponentState {
    match (opened, off) {
        (Some(Opened { remote: true, .. }), _) => ComponentState::NotReady("connecting to the vector store".into()),
        (_, Some(reason)) => ComponentState::Disabled(reason.to_owned()),
        _ => ComponentState::Ready,
    }
}

/// The recipe, ready to run; a recipe that retrieves needs knowledge.
fn open_pipeline(
    config: &RuntimeConfig,
    knowledge: Option<&Arc<Knowledge>>,
    knowledge_off: &str,
    timeout: Duration,
) -> Result<Option<Arc<Pipeline>>, RecipeError> {
    let Some(recipe) = &config.recipe else { return Ok(None) };
    let pipeline = Pipeline::new(recipe.clone(), knowledge.cloned(), timeout)?;
    if pipeline.mode() != PipelineMode::Summarize && knowledge.is_none() {
        return Err(RecipeError::Input(format!(
            "recipe {} retrieves from the agent's knowledge, which is off: {knowledge_off}",
            recipe.name
        )));
    }
    tracing::info!(recipe = %recipe.name, mode = ?pipeline.mode(), "running recipe");
    Ok(Some(Arc::new(pipeline)))
}

/// Document URLs may reach internal hosts under the configured prefixes and the recipe's sources.
fn document_fetch_policy(config: &RuntimeConfig) -> FetchPolicy {
    let mut allowed = config.server.fetch_allowed_urls.clone();
    allowed.extend(config.recipe.iter().flat_map(|r| r.sources.iter().cloned()));
    FetchPolicy::public_and(allowed)
}

/// Chunking of ingested documents: the recipe's, or 256 tokens with 32 of overlap.
fn chunking(config: &RuntimeConfig) -> ChunkSize {
    config.recipe.as_ref().map_or(ChunkSize { size: 256, overlap: 32 }, |recipe| ChunkSize {
        size: usize::try_from(recipe.spec.ingest.chunk_size).unwrap_or(256),
        overlap: usize::try_from(recipe.spec.ingest.chunk_overlap).unwrap_or(32),
    })
}

/// Tokens of history sent to the model: the configured budget, or three quarters of the
/// model's context (the rest is for the answer), or 3072.
fn context_budget(config: &RuntimeConfig) -> usize {
    let configured = config.model.parameters.context_budget.or(config.model.context_length.map(|c| c * 3 / 4));
    configured.and_then(|tokens| usize::try_from(tokens).ok()).unwrap_or(3072)
}
