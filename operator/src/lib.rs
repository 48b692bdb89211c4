//! Agent Operator: controllers that turn `Agent`, `Model` and `Recipe` objects into running,
//! stateful agents.

/// The operator's allocator (the binary and the scale benchmark install it): many small
/// long-lived objects in its caches and bursts of short-lived ones per reconcile keep less
/// memory resident with mimalloc than with glibc's malloc.
pub type Allocator = mimalloc::MiMalloc;

pub mod agent;
pub mod api_server;
pub mod backoff;
pub mod conditions;
pub mod config;
pub mod context;
pub mod crd_check;
pub mod fair_share;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod model;
pub mod offline;
pub mod quantity;
pub mod rate_limit;
pub mod readiness;
pub mod recipe;
pub mod ssa;
pub mod stores;
pub mod telemetry;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use kube::Client;
use tokio::sync::watch;

pub use crate::config::Config;
use crate::context::Context;
use crate::http::HttpState;
use crate::leader::LeaderElector;
use crate::metrics::Metrics;
use crate::readiness::{Phase, Readiness};

/// Runs the operator until SIGTERM/SIGINT or until leadership is lost.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let client = client(&config).await?;
    let metrics = Arc::new(Metrics::default());
    let readiness = Arc::new(Readiness::default());
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(forward_signals(stop.clone()));

    let listener = tokio::net::TcpListener::bind(config.http_addr).await.context("binding the HTTP address")?;
    let app = http::router(HttpState { metrics: metrics.clone(), readiness: readiness.clone() });
    let server =
        tokio::spawn(axum::serve(listener, app).with_graceful_shutdown(wait_for(stopped.clone())).into_future());

    let waiting = readiness.clone();
    let prepared = async {
        crd_check::wait_for_crds(&client, Duration::from_secs(10), |why| waiting.set(Phase::WaitingForCrds(why))).await;
        let elector = config.leader_election.then(|| {
            LeaderElector::new(
                client.clone(),
                &config.lease_namespace,
                &config.lease_name,
                &config.pod_name,
                config.lease_duration(),
            )
        });
        if let Some(elector) = &elector {
            readiness.set(Phase::Standby);
            elector.acquire().await;
        }
        elector
    };
    let elector = tokio::select! {
        elector = prepared => elector,
        () = wait_for(stopped.clone()) => None,
    };
    let mut lost_lease = false;
    if !*stopped.borrow() {
        readiness.set(Phase::Running);
        let mut ctx = Context::new(client, metrics, config.runtime_image.clone(), Some(config.pod_name.clone()));
        ctx.namespace_share = fair_share::NamespaceShare::new(config.namespace_share());
        let service_host = std::env::var("KUBERNETES_SERVICE_HOST").ok();
        let service_port = std::env::var("KUBERNETES_SERVICE_PORT").ok();
        ctx.api_server = api_server::discover(&ctx.client, service_host.as_deref(), service_port.as_deref()).await;
        ctx.traces = telemetry::agent_traces(|name| std::env::var(name).ok());
        ctx.metrics.count_agents(ctx.caches.stores.agents.clone());
        let ctx = Arc::new(ctx);
        let model_ctx = Arc::new(model::ModelContext::new(ctx.clone()));
        // The controllers run under the same Lease and stop together.
        let controller = async {
            tokio::join!(
                agent::run(ctx.clone(), config.namespace(), config.controller(), wait_for(stopped.clone())),
                model::run(model_ctx, config.namespace(), wait_for(stopped.clone())),
                recipe::run(ctx, config.namespace(), wait_for(stopped.clone())),
            );
        };
        if let Some(elector) = elector {
            tokio::select! {
                () = controller => {}
                () = elector.hold() => {
                    lost_lease = true;
                    let _ = stop.send(true);
                }
            }
        } else {
            controller.await;
        }
    }
    readiness.set(Phase::Stopping);
    let _ = stop.send(true);
    server.await.context("HTTP server task")?.context("HTTP server")?;
    anyhow::ensure!(!lost_lease, "lost the leader Lease; exiting so a fresh start competes again");
    Ok(())
}

/// The Kubernetes client, its requests limited to `--kube-api-qps` and `--kube-api-burst`.
async fn client(config: &Config) -> anyhow::Result<Client> {
    let kube_config = kube::Config::infer().await.context("reading the Kubernetes client configuration")?;
    let builder = kube::client::ClientBuilder::try_from(kube_config).context("building the Kubernetes client")?;
    Ok(match rate_limit::RateLimitLayer::new(config.kube_api_qps, config.kube_api_burst) {
        Some(limit) => builder.with_layer(&limit).build(),
        None => builder.build(),
    })
}

async fn wait_for(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}

async fn forward_signals(stop: watch::Sender<bool>) {
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
    tracing::info!("shutdown signal received");
    let _ = stop.send(true);
}
