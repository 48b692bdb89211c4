//! The operator binary: parse config, start telemetry, run.

use clap::Parser;

#[global_allocator]
static ALLOCATOR: agent_operator::Allocator = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = agent_operator::Config::parse();
    let telemetry = agent_operator::telemetry::init(config.log_format)?;
    let outcome = agent_operator::run(config).await;
    telemetry.shutdown().await;
    outcome
}
