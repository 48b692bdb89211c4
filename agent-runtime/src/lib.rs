//! The agent runtime: the program inside every agent pod. It loads the RuntimeConfig the
//! operator rendered and serves the agent's HTTP API. This first slice serves the operational
//! endpoints the pod's probes use and lists the agent as a model; the chat API, memory, tools and
//! recipes build on it.

pub mod config;
pub mod http;

use std::net::SocketAddr;

use agent_crds::RuntimeConfig;

/// Serves the agent described by `config` on `addr` until SIGTERM or SIGINT.
pub async fn serve(config: RuntimeConfig, addr: SocketAddr) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(agent = %config.agent.name, %addr, "serving");
    axum::serve(listener, http::router(http::AppState::new(config))).with_graceful_shutdown(shutdown_signal()).await
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
    tracing::info!("shutdown signal received; draining");
}
