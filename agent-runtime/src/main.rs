//! The agent runtime binary: parse arguments, start logging, serve.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// The agent runtime.
#[derive(Parser)]
#[command(name = "agent-runtime", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the agent described by a RuntimeConfig file.
    Serve {
        /// Path of the RuntimeConfig JSON.
        #[arg(long, env = "AGENT_RUNTIME_CONFIG")]
        config: PathBuf,
        /// Address to listen on.
        #[arg(long, env = "AGENT_RUNTIME_ADDR", default_value = "0.0.0.0:8080")]
        addr: SocketAddr,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    match Cli::parse().command {
        Command::Serve { config, addr } => {
            let config = agent_runtime::config::load(&config)?;
            agent_runtime::serve(config, addr).await?;
        }
    }
    Ok(())
}
