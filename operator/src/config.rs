//! Operator configuration: command-line flags with environment fallbacks, parsed once in `main`.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Parser, ValueEnum};

/// Configuration of the operator process.
#[derive(Parser, Debug, Clone)]
#[command(name = "agent-operator", version, about = "Runs agents as Kubernetes workloads")]
pub struct Config {
    /// Namespace to watch; empty watches all namespaces.
    #[arg(long, env = "WATCH_NAMESPACE", default_value = "")]
    pub watch_namespace: String,
    /// Image of the agent runtime used for agent pods that do not set one.
    #[arg(long, env = "AGENT_RUNTIME_IMAGE", default_value = "ghcr.io/agent-operator/agent-runtime:0.1.0")]
    pub runtime_image: String,
    /// Address of the HTTP server for `/metrics`, `/healthz` and `/readyz`.
    #[arg(long, env = "HTTP_ADDR", default_value = "0.0.0.0:8080")]
    pub http_addr: SocketAddr,
    /// Elect a leader through a Lease so several replicas can run; only the leader reconciles.
    #[arg(long, env = "LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_election: bool,
    /// Name of the leader-election Lease.
    #[arg(long, env = "LEASE_NAME", default_value = "agent-operator")]
    pub lease_name: String,
    /// Namespace of the Lease (the operator's own namespace).
    #[arg(long, env = "POD_NAMESPACE", default_value = "agent-operator")]
    pub lease_namespace: String,
    /// Identity of this replica in the Lease (the pod name).
    #[arg(long, env = "POD_NAME", default_value = "agent-operator")]
    pub pod_name: String,
    /// How long a Lease is valid without renewal, in seconds.
    #[arg(long, env = "LEASE_DURATION_SECONDS", default_value_t = 15)]
    pub lease_duration_seconds: u64,
    /// Log output format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Agents reconciled at once; more wait their turn, oldest trigger first, whatever their
    /// namespace (0 means no bound).
    #[arg(long, env = "MAX_CONCURRENT_RECONCILES", default_value_t = 16)]
    pub max_concurrent_reconciles: u16,
    /// Most of those one namespace may hold, so a namespace applying thousands of agents leaves
    /// slots to the others; a reconcile beyond it waits a moment (no API request). Defaults to
    /// three quarters of MAX_CONCURRENT_RECONCILES; 0 means no per-namespace limit.
    #[arg(long, env = "MAX_CONCURRENT_RECONCILES_PER_NAMESPACE")]
    pub max_concurrent_reconciles_per_namespace: Option<u16>,
    /// Milliseconds an Agent waits after a change (its own or one of its children's) before it
    /// is reconciled; more changes meanwhile restart the wait. Applying an agent's children
    /// makes a burst of watch events: waiting lets them land in the caches and costs one
    /// reconcile instead of one per event.
    #[arg(long, env = "RECONCILE_DEBOUNCE_MS", default_value_t = 500)]
    pub reconcile_debounce_ms: u64,
    /// Requests per second the operator sends the API server on average (like
    /// kube-controller-manager's `--kube-api-qps`); watches count once, when they start.
    #[arg(long, env = "KUBE_API_QPS", default_value_t = 50.0)]
    pub kube_api_qps: f64,
    /// Requests the operator may send at once above the average rate (`--kube-api-burst`).
    #[arg(long, env = "KUBE_API_BURST", default_value_t = 100)]
    pub kube_api_burst: u32,
}

impl Config {
    /// The Lease duration.
    pub fn lease_duration(&self) -> Duration {
        Duration::from_secs(self.lease_duration_seconds.max(2))
    }

    /// How the Agent controller schedules reconciles.
    pub fn controller(&self) -> kube::runtime::controller::Config {
        kube::runtime::controller::Config::default()
            .concurrency(self.max_concurrent_reconciles)
            .debounce(Duration::from_millis(self.reconcile_debounce_ms))
    }

    /// Most concurrent Agent reconciles of one namespace (0: no limit).
    pub fn namespace_share(&self) -> usize {
        let total = usize::from(self.max_concurrent_reconciles);
        match self.max_concurrent_reconciles_per_namespace {
            Some(limit) => usize::from(limit),
            None if total == 0 => 0,
            None => (total - total / 4).max(1),
        }
    }

    /// The namespace to watch, `None` for all.
    pub fn namespace(&self) -> Option<&str> {
        Some(self.watch_namespace.as_str()).filter(|ns| !ns.is_empty())
    }
}

/// Log output format.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}
