//! A provider that waits for a Model that scales to zero (`serve.autoscaling.minReplicas: 0`):
//! wraps the agent's model provider so a call that finds the Model asleep (its Service has no
//! ready endpoint: the connection is refused, or a proxy answers 502/503/504) asks it to wake
//! ([`Demand`]: the Agent's `status.modelDemand`, which the operator watches) and tries again
//! with backoff, up to the Model's `wakeTimeout`. Past that the call fails with
//! [`ProviderError::Waking`], which the HTTP edge answers 503 with `Retry-After` and the wake's
//! phase. Every call also records the agent's demand (at most every [`REQUEST_EVERY`]), which
//! keeps the Model up while agents use it.
//!
//! Only calls that have not produced a chunk are tried again (a failure before the first chunk,
//! as in `openai.rs`), so nothing is generated twice. A readiness check that finds the Model
//! asleep passes: the Model serves on demand, and an agent that is not ready would never get
//! the request that wakes it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use jiff::Timestamp;
use tokio::time::Instant;

use super::{ChunkStream, ModelProvider, ModelRequest, ProviderError};

/// Shortest time between two records of the agent's latest request.
pub const REQUEST_EVERY: Duration = Duration::from_secs(30);
/// Shortest time between two wake requests (concurrent calls ask once).
const WAKE_EVERY: Duration = Duration::from_secs(10);
/// First pause between two tries; doubled up to [`LONGEST_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(250);
/// Longest pause between two tries.
const LONGEST_PAUSE: Duration = Duration::from_secs(5);
/// `Retry-After` of a request that waited its whole bound: a wake is under way.
const RETRY_AFTER_SECONDS: u64 = 30;

/// What the agent reports of its demand: both times, each time (the report replaces the last).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DemandReport {
    /// When the agent last called the Model.
    pub last_request_at: Option<Timestamp>,
    /// When the agent last asked the Model to wake.
    pub wake_requested_at: Option<Timestamp>,
}

/// Where the Model's wake is (its `status.coldStart`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WakePhase {
    /// `Scheduling`, `PullingImage`, `LoadingWeights` or `Ready`.
    pub phase: String,
    /// When the wake was requested (RFC 3339).
    pub since: Option<String>,
}

/// Where the agent's demand goes, and where the Model's wake phase comes from.
pub trait Demand: Send + Sync {
    /// Records the agent's demand.
    fn report(&self, report: DemandReport) -> BoxFuture<'_, Result<(), String>>;
    /// The Model's current wake phase, when it can be read.
    fn phase(&self) -> BoxFuture<'_, Option<WakePhase>>;
}

/// The agent's provider, waiting for its Model to wake.
pub struct Wake {
    inner: Arc<dyn ModelProvider>,
    model: String,
    timeout: Duration,
    demand: Option<Arc<dyn Demand>>,
    state: Arc<Mutex<State>>,
}

/// What was reported, and when.
#[derive(Default)]
struct State {
    report: DemandReport,
    request_recorded: Option<Instant>,
    wake_asked: Option<Instant>,
}

impl Wake {
    /// Waits up to `timeout` for `inner`'s Model `model` to wake; reports demand to `demand`
    /// (`None` outside a cluster: it only waits).
    pub fn new(
        inner: Arc<dyn ModelProvider>,
        model: String,
        timeout: Duration,
        demand: Option<Arc<dyn Demand>>,
    ) -> Self {
        Self { inner, model, timeout, demand, state: Arc::default() }
    }

    /// Records this call (in the background: the call does not wait for the API server).
    fn note_request(&self) {
        let Some(demand) = self.demand.clone() else { return };
        let report = {
            let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if state.request_recorded.is_some_and(|at| at.elapsed() < REQUEST_EVERY) {
                return;
            }
            state.request_recorded = Some(Instant::now());
            state.report.last_request_at = Some(Timestamp::now());
            state.report
        };
        tokio::spawn(async move {
            if let Err(error) = demand.report(report).await {
                tracing::warn!(%error, "cannot record the agent's demand for its model");
            }
        });
    }

    /// Asks the Model to wake, unless a call did a moment ago.
    async fn ask_to_wake(&self, why: &ProviderError) {
        let Some(demand) = &self.demand else { return };
        let report = {
            let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if state.wake_asked.is_some_and(|at| at.elapsed() < WAKE_EVERY) {
                return;
            }
            state.wake_asked = Some(Instant::now());
            state.report.wake_requested_at = Some(Timestamp::now());
            state.report
        };
        tracing::info!(model = %self.model, %why, "the model is not answering; asking it to wake");
        if let Err(error) = demand.report(report).await {
            tracing::warn!(%error, "cannot ask the model to wake");
        }
    }

    /// The error of a call that waited its whole bound.
    async fn still_waking(&self, last: &ProviderError) -> ProviderError {
        let phase = match &self.demand {
            Some(demand) => demand.phase().await,
            None => None,
        };
        let phase = phase.map_or_else(String::new, |p| {
            let since = p.since.map(|s| format!(" since {s}")).unwrap_or_default();
            format!(" (wake phase: {}{since})", p.phase)
        });
        ProviderError::Waking {
            message: format!(
                "Model {} is waking from zero replicas{phase}; it did not answer within {} s ({last}); retry shortly",
                self.model,
                self.timeout.as_secs()
            ),
            retry_after_seconds: RETRY_AFTER_SECONDS,
        }
    }
}

/// Whether `error` means the Model is not there to answer (asleep or starting) rather than
/// that it refused the request.
pub fn asleep(error: &ProviderError) -> bool {
    match error {
        ProviderError::Unreachable(_) => true,
        ProviderError::Status { status, .. } => matches!(status, 502..=504),
        _ => false,
    }
}

impl ModelProvider for Wake {
    fn stream(&self, request: ModelRequest) -> BoxFuture<'_, Result<ChunkStream, ProviderError>> {
        Box::pin(async move {
            self.note_request();
            let deadline = Instant::now() + self.timeout;
            let mut pause = FIRST_PAUSE;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                let error = match tokio::time::timeout(left, self.inner.stream(request.clone())).await {
                    Ok(Ok(chunks)) => return Ok(chunks),
                    Ok(Err(error)) if asleep(&error) => error,
                    Ok(Err(error)) => return Err(error),
                    // Our own bound cut the try short.
                    Err(_) => ProviderError::Timeout(self.timeout),
                };
                self.ask_to_wake(&error).await;
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(self.still_waking(&error).await);
                }
                tokio::time::sleep(pause.min(left)).await;
                pause = (pause * 2).min(LONGEST_PAUSE);
            }
        })
    }

    fn check(&self) -> BoxFuture<'_, Result<(), ProviderError>> {
        Box::pin(async move {
            match self.inner.check().await {
                Err(error) if asleep(&error) => {
                    tracing::debug!(model = %self.model, %error, "the model sleeps; a request wakes it");
                    Ok(())
                }
                other => other,
            }
        })
    }

    fn supports_tools(&self) -> bool {
        self.inner.supports_tools()
    }
}

/// `provider`, waiting for its Model when the Model scales to zero (`model.wake` in the
/// config), reporting demand through the cluster when the runtime has one.
pub fn wrap(
    provider: Arc<dyn ModelProvider>,
    config: &agent_crds::runtime_config::RuntimeConfig,
) -> Result<Arc<dyn ModelProvider>, crate::cluster::KubeError> {
    let Some(wake) = &config.model.wake else { return Ok(provider) };
    let demand = match &config.cluster {
        Some(access) => Some(Arc::new(crate::cluster::demand::ClusterDemand::new(
            crate::cluster::KubeApi::new(access)?,
            config.agent.namespace.clone(),
            config.agent.name.clone(),
            config.model.model_object.clone(),
        )) as Arc<dyn Demand>),
        None => None,
    };
    let timeout = Duration::from_secs(wake.timeout_seconds);
    Ok(Arc::new(Wake::new(provider, config.model.model_object.clone(), timeout, demand)))
}
