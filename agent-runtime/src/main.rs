//! The agent runtime binary: parse arguments, start logging, serve.

use agent_crds::schedule::Precision;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use agent_runtime::http::ApiLimits;
use agent_runtime::inference::metrics::EngineMetrics;
use agent_runtime::inference::{Engine, EngineOptions};
use agent_runtime::ingest::{self, IngestOptions};
use agent_runtime::local::LocalOptions;
use agent_runtime::model_server::{ModelServerOptions, serve_model};
use agent_runtime::provider::in_process::InProcessProvider;
use agent_runtime::provider::openai::CallPolicy;
use agent_runtime::recipes_cli::{self, RecipesCommand};
use agent_runtime::secret_file::DEFAULT_CHECK_EVERY;
use agent_runtime::{BusySession, McpTiming, ServeOptions};
use clap::{Args, Parser, Subcommand};

/// The agent runtime: serves one agent's OpenAI-compatible API.
#[derive(Parser)]
#[command(name = "agent-runtime", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the agent described by a RuntimeConfig file (what agent pods run).
    Serve {
        /// Path of the RuntimeConfig JSON.
        #[arg(long, env = "AGENT_RUNTIME_CONFIG")]
        config: PathBuf,
        #[command(flatten)]
        serve: ServeArgs,
    },
    /// Run an agent locally from an Agent manifest and the Models beside it.
    Run {
        /// An Agent manifest, or a folder of manifests.
        manifests: PathBuf,
        /// The Agent to run when the manifests hold several.
        #[arg(long)]
        agent: Option<String>,
        /// Root of the agents' data (sessions, vectors).
        #[arg(long, env = "AGENT_DATA_DIR", default_value = ".agent-data")]
        data_dir: PathBuf,
        /// Folder of Secret keys, as `<secret>/<key>` files.
        #[arg(long, env = "AGENT_SECRETS_DIR", default_value = ".agent-secrets")]
        secrets_dir: PathBuf,
        /// The GGUF of a Model the runtime serves itself (`serve.engine: runtime`): the agent
        /// runs it in this process. Local mode does not download the Model's `serve.uri`.
        #[arg(long, env = "AGENT_MODEL_FILE")]
        model_file: Option<PathBuf>,
        #[command(flatten)]
        engine: EngineArgs,
        #[command(flatten)]
        serve: ServeArgs,
    },
    /// Serve a GGUF model on CPU behind an OpenAI-compatible API (what the operator runs for
    /// Models with `serve.engine: runtime`), with the built-in embedding model.
    ServeModel {
        /// The GGUF file.
        #[arg(long, env = "AGENT_MODEL_FILE")]
        model: PathBuf,
        /// Name the model is served under.
        #[arg(long, env = "AGENT_SERVED_MODEL_NAME")]
        served_model_name: String,
        /// Address to listen on.
        #[arg(long, env = "AGENT_MODEL_HOST", default_value = "0.0.0.0")]
        host: std::net::IpAddr,
        /// Port to listen on.
        #[arg(long, env = "AGENT_MODEL_PORT", default_value_t = 8000)]
        port: u16,
        /// Folder of the built-in embedding model (all-MiniLM-L6-v2), served on `/v1/embeddings`.
        #[arg(long, env = "AGENT_EMBEDDING_MODEL_DIR")]
        embedding_model_dir: Option<PathBuf>,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Send documents to a running agent's knowledge: folders (walked recursively), files or URLs.
    Ingest {
        /// Folders, files, or `http(s)://` URLs (the agent fetches URLs itself).
        #[arg(required = true)]
        sources: Vec<String>,
        /// Base URL of the agent, e.g. `http://localhost:8080`.
        #[arg(long, env = "AGENT_URL")]
        agent: String,
        /// Bearer token of the agent's API.
        #[arg(long, env = "AGENT_API_KEY", hide_env_values = true)]
        api_key: Option<String>,
        /// Documents sent at once.
        #[arg(long, default_value_t = 2)]
        concurrency: usize,
        /// Seconds one document may take (upload, parse, embed, store).
        #[arg(long, default_value_t = 600)]
        timeout_seconds: u64,
    },
    /// The recipe catalogue: list, show, render an Agent manifest, lint recipe folders.
    Recipes {
        #[command(subcommand)]
        command: RecipesCommand,
    },
}

/// How the in-process model runs.
#[derive(Args)]
struct EngineArgs {
    /// Tokens one sequence holds (prompt and answer); default: the Model's contextLength, else
    /// 4096 (never more than the model was trained for).
    #[arg(long, env = "AGENT_MODEL_CONTEXT_LENGTH")]
    context_length: Option<u32>,
    /// Sequences generated at once (continuous batching); more requests wait.
    #[arg(long, env = "AGENT_MODEL_SEQUENCES", default_value_t = 4)]
    sequences: u32,
    /// CPU threads of the model; default: the cores this process may use.
    #[arg(long, env = "AGENT_MODEL_THREADS")]
    threads: Option<u32>,
    /// Chat template instead of the GGUF's own: a llama.cpp built-in name (chatml, gemma,
    /// llama3, ...) or a template text.
    #[arg(long, env = "AGENT_MODEL_CHAT_TEMPLATE")]
    chat_template: Option<String>,
}

impl EngineArgs {
    fn options(&self, model: PathBuf, declared_context: Option<i64>) -> EngineOptions {
        let mut options = EngineOptions::new(model);
        if let Some(length) = self.context_length.or_else(|| declared_context.and_then(|c| u32::try_from(c).ok())) {
            options.context_length = length;
        }
        options.sequences = self.sequences.max(1);
        if let Some(threads) = self.threads {
            options.threads = threads.max(1);
        }
        options.chat_template.clone_from(&self.chat_template);
        options
    }
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "AGENT_RUNTIME_ADDR", default_value = "0.0.0.0:8080")]
    addr: SocketAddr,
    /// Address of a listener for `/metrics` alone; without it `/metrics` is served on `--addr`.
    /// In a cluster the operator sets it, so the API port answers only API clients.
    #[arg(long, env = "AGENT_METRICS_ADDR")]
    metrics_addr: Option<SocketAddr>,
    /// Seconds to wait for the model's first token, and between tokens.
    #[arg(long, env = "AGENT_MODEL_TIMEOUT_SECONDS", default_value_t = 60)]
    model_timeout_seconds: u64,
    /// Attempts per model call (429, 5xx and connection failures before the first token are retried).
    #[arg(long, env = "AGENT_MODEL_ATTEMPTS", default_value_t = 3)]
    model_attempts: u32,
    /// Chat requests served at once; more get 429.
    #[arg(long, env = "AGENT_MAX_CONCURRENCY", default_value_t = 64)]
    max_concurrency: usize,
    /// Largest request body in bytes.
    #[arg(long, env = "AGENT_MAX_BODY_BYTES", default_value_t = 1 << 20)]
    max_body_bytes: usize,
    /// Seconds a non-streamed request may take.
    #[arg(long, env = "AGENT_REQUEST_TIMEOUT_SECONDS", default_value_t = 300)]
    request_timeout_seconds: u64,
    /// Seconds a tool call may take.
    #[arg(long, env = "AGENT_TOOL_TIMEOUT_SECONDS", default_value_t = 15)]
    tool_timeout_seconds: u64,
    /// Tool rounds before the model must answer.
    #[arg(long, env = "AGENT_MAX_TOOL_STEPS", default_value_t = 8)]
    max_tool_steps: usize,
    /// Folder of the built-in embedding model (all-MiniLM-L6-v2: model.safetensors, tokenizer.json, config.json).
    #[arg(long, env = "AGENT_EMBEDDING_MODEL_DIR", default_value = "/models/all-MiniLM-L6-v2")]
    embedding_model_dir: std::path::PathBuf,
    /// Run without knowledge and long-term memory: no embedding model is loaded and no vector
    /// store opened (`/readyz` shows knowledge as disabled; recipes that retrieve and memory tools
    /// then refuse to start).
    #[arg(long, env = "AGENT_WITHOUT_KNOWLEDGE")]
    without_knowledge: bool,
    /// Seconds between pings of an idle MCP server (how soon one that went away is noticed
    /// and reconnected).
    #[arg(long, env = "AGENT_MCP_PING_SECONDS", default_value_t = 15)]
    mcp_ping_seconds: u64,
    /// Seconds between checks of a mounted Secret file in use (API keys, tokens, the system
    /// prompt); a changed file is used from its next check on.
    #[arg(long, env = "AGENT_SECRET_CHECK_SECONDS", default_value_t = DEFAULT_CHECK_EVERY.as_secs())]
    secret_check_seconds: u64,
    /// Largest document upload in bytes.
    #[arg(long, env = "AGENT_MAX_DOCUMENT_BYTES", default_value_t = 32 << 20)]
    max_document_bytes: usize,
    /// What a turn on a session that is busy with another turn does: wait for it, or get 409.
    #[arg(long, env = "AGENT_BUSY_SESSION", value_enum, default_value_t = BusySession::Queue)]
    busy_session: BusySession,
    /// Model API key, used when the Model names no key Secret (e.g. `OPENAI_API_KEY` locally).
    #[arg(long, env = "OPENAI_API_KEY", hide_env_values = true)]
    model_api_key: Option<String>,
    /// For tests only: the task schedule has a seconds field first (6 fields), so a test need
    /// not wait minutes. Agents' schedules are always 5 fields.
    #[arg(long, hide = true)]
    schedule_seconds: bool,
}

impl ServeArgs {
    fn options(&self) -> ServeOptions {
        ServeOptions {
            addr: self.addr,
            metrics_addr: self.metrics_addr,
            call_policy: CallPolicy {
                idle_timeout: Duration::from_secs(self.model_timeout_seconds),
                answer_timeout: Duration::from_secs(self.request_timeout_seconds),
                attempts: self.model_attempts.max(1),
                ..CallPolicy::default()
            },
            limits: ApiLimits {
                max_body_bytes: self.max_body_bytes,
                max_concurrency: self.max_concurrency.max(1),
                request_timeout: Duration::from_secs(self.request_timeout_seconds),
                max_document_bytes: self.max_document_bytes,
            },
            tool_timeout: Duration::from_secs(self.tool_timeout_seconds),
            max_tool_steps: self.max_tool_steps,
            model_api_key: self.model_api_key.clone(),
            embedding_model_dir: Some(self.embedding_model_dir.clone()),
            busy_session: self.busy_session,
            without_knowledge: self.without_knowledge,
            secret_check_every: Duration::from_secs(self.secret_check_seconds),
            mcp: McpTiming { ping_every: Duration::from_secs(self.mcp_ping_seconds.max(1)), ..McpTiming::default() },
            schedule_precision: if self.schedule_seconds { Precision::Seconds } else { Precision::Minutes },
            clock: agent_runtime::usage::Clock::default(),
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let telemetry = agent_telemetry::init(&agent_telemetry::Setup {
        service_name: "agent-runtime",
        exported_targets: &["agent_runtime"],
        trace_only_targets: &[agent_runtime::traces::TARGET],
        log_format: agent_telemetry::LogFormat::Text,
    })?;
    let outcome = run(Cli::parse().command).await;
    telemetry.shutdown().await;
    outcome
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve { config, serve } => {
            let config = agent_runtime::config::load(&config)?;
            agent_runtime::serve(config, serve.options()).await?;
        }
        Command::Run { manifests, agent, data_dir, secrets_dir, model_file, engine, serve } => {
            let local = agent_runtime::local::load(&LocalOptions { manifests, agent, data_dir, secrets_dir })?;
            let model = &local.config.model;
            match (local.in_process.as_ref(), model_file) {
                (None, None) => agent_runtime::serve(local.config, serve.options()).await?,
                (Some(served), None) => anyhow::bail!(
                    "Model {} is served by the runtime (serve.engine: runtime, uri {}): give its GGUF file \
                     with --model-file (local mode does not download models)",
                    model.model_object,
                    served.uri
                ),
                (None, Some(_)) => anyhow::bail!(
                    "--model-file runs a Model with serve.engine: runtime in this process, but Model {} \
                     is reached at {}",
                    model.model_object,
                    model.base_url
                ),
                (Some(_), Some(file)) => {
                    let mut config = local.config.clone();
                    // Logs, readiness and spans name the file the model runs from, not the
                    // cluster Service the Model would have.
                    config.model.base_url = format!("file://{}", std::path::absolute(&file)?.display());
                    let options = engine.options(file, model.context_length);
                    let loaded = Engine::start(options, EngineMetrics::default()).await?;
                    let provider = InProcessProvider::new(Arc::new(loaded), model.model.clone(), model.prompt_format);
                    agent_runtime::serve_with(config, serve.options(), Arc::new(provider)).await?;
                }
            }
        }
        Command::ServeModel { model, served_model_name, host, port, embedding_model_dir, engine } => {
            serve_model(ModelServerOptions {
                addr: SocketAddr::new(host, port),
                engine: engine.options(model, None),
                served_name: served_model_name,
                embedding_model_dir,
            })
            .await?;
        }
        Command::Ingest { sources, agent, api_key, concurrency, timeout_seconds } => {
            let options = IngestOptions {
                agent,
                api_key,
                concurrency,
                timeout: Duration::from_secs(timeout_seconds),
                progress: true,
            };
            let (sources, skipped) = ingest::collect_sources(&sources)?;
            let summary = ingest::ingest(sources, skipped, &options).await?;
            println!("{summary}");
            if !summary.all_ingested() {
                std::process::exit(1);
            }
        }
        Command::Recipes { command } => {
            if !recipes_cli::run(&command, &mut std::io::stdout().lock())? {
                std::process::exit(1);
            }
        }
    }
    Ok(())
}
