//! The Model controller: validate -> dereference -> (probe | build -> apply) -> status.
//!
//! An `endpoint` Model is probed (`GET /models`) and rechecked on a bounded interval, backing
//! off while it fails. A `serve` Model becomes a DRA claim template, a model cache (claim and
//! download Job), an engine Deployment (or, with `serve.nodes` above 1, a LeaderWorkerSet where
//! LWS is installed) and a Service. Validation comes first here because the
//! children's names depend on the parsed source.

pub mod apply;
pub mod autoscaling;
pub mod build;
pub mod dereference;
pub mod device_health;
pub mod engine;
pub mod keda;
pub mod kueue;
pub mod lws;
pub mod probe;
pub mod scale_to_zero;
pub mod source;
pub mod status;
pub mod validate;

use std::sync::Arc;
use std::time::{Duration, Instant};

use agent_crds::Agent;
use agent_crds::conditions::{READY, Status, holds};
use agent_crds::model::{ColdStartPhase, Model, ModelStatus, reason};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Service};
use k8s_openapi::api::resource::v1::ResourceClaimTemplate;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::EvictParams;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, watcher};
use kube::{Api, ResourceExt};
use tracing::Instrument as _;

use self::build::autoscaler::{Autoscaler, build_autoscaler};
use self::build::cache::CACHE_SOURCE_ANNOTATION;
use self::build::{BuildInput, build};
use self::dereference::Observed;
use self::probe::{ProbeFailure, ProbeRequest, probe};
use self::scale_to_zero::Plan;
use self::status::{Outcome, cache_condition};
use crate::agent::build::labels::{MANAGED_BY, MANAGED_BY_LABEL};
use crate::backoff::Backoff;
use crate::context::Context;
use crate::ssa::api;
use crate::telemetry;

/// How often a healthy Model is reconciled without any change (drift the watches missed).
const RESYNC: Duration = Duration::from_secs(600);
/// How often a reachable endpoint is probed again.
const RECHECK: Duration = Duration::from_secs(300);
/// How often a served Model that is not Ready yet looks again: pods and claims are not watched.
const PROGRESS: Duration = Duration::from_secs(30);
/// How often a waking Model looks at its pods for the cold-start timeline.
const WAKE_PROGRESS: Duration = Duration::from_secs(5);
/// How often a Model with missing Secrets or ConfigMaps (not watched) looks again.
const MISSING_REFERENCE_RETRY: Duration = Duration::from_secs(60);
/// How often a multi-node Model looks again for the LeaderWorkerSet CRD (not watched).
const LWS_MISSING_RETRY: Duration = Duration::from_secs(60);
/// Limit of one endpoint probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Shared state of the Model controller.
pub struct ModelContext {
    /// What every controller shares (client, recorder, metrics, backoff of failed reconciles).
    pub base: Arc<Context>,
    /// Per-Model backoff of failed endpoint probes, between 5 seconds and [`RECHECK`].
    pub probe_backoff: Backoff,
    /// Limit of one endpoint probe.
    pub probe_timeout: Duration,
}

impl ModelContext {
    /// The Model controller's state over the shared context.
    pub fn new(base: Arc<Context>) -> Self {
        Self { base, probe_backoff: Backoff::new(Duration::from_secs(5), RECHECK), probe_timeout: PROBE_TIMEOUT }
    }
}

/// A reconcile failed for a reason that may pass; it is retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading references or children failed.
    #[error("reading references: {0}")]
    Dereference(#[source] kube::Error),
    /// Applying a child failed.
    #[error(transparent)]
    Apply(#[from] crate::ssa::ApplyError),
    /// Writing status failed.
    #[error("writing status: {0}")]
    Status(#[source] kube::Error),
}

impl Error {
    /// Metric label of the failure.
    pub fn category(&self) -> &'static str {
        match self {
            Self::Dereference(_) => "dereference",
            Self::Apply(_) => "apply",
            Self::Status(_) => "status",
        }
    }
}

/// Reconciles one Model.
pub async fn reconcile(model: Arc<Model>, ctx: Arc<ModelContext>) -> Result<Action, Error> {
    let started = Instant::now();
    let span = telemetry::reconcile_span(model.as_ref());
    let result = Box::pin(reconcile_model(&model, &ctx)).instrument(span.clone()).await;
    ctx.base.metrics.reconciled("Model", started.elapsed());
    match &result {
        Ok(_) => ctx.base.backoff.reset(&key(&model)),
        Err(error) => {
            telemetry::record_failure(&span, error.category(), error);
            ctx.base.metrics.failed("Model", error.category());
            ctx.base.publish(model.as_ref(), EventType::Warning, "ReconcileFailed", error.to_string()).await;
        }
    }
    result
}

/// Transient failures are retried per object with exponential backoff and jitter.
#[allow(clippy::needless_pass_by_value)] // the signature is fixed by `Controller::run`
pub fn error_policy(model: Arc<Model>, error: &Error, ctx: Arc<ModelContext>) -> Action {
    let delay = ctx.base.backoff.next_delay(&key(&model));
    tracing::warn!(model = %key(&model), %error, ?delay, "reconcile failed; retrying");
    Action::requeue(delay)
}

/// Backoff key of a Model; prefixed so it never shares failure counts with an Agent of the same name.
fn key(model: &Model) -> String {
    format!("Model/{}/{}", model.namespace().unwrap_or_default(), model.name_any())
}

async fn reconcile_model(model: &Model, ctx: &ModelContext) -> Result<Action, Error> {
    let client = &ctx.base.client;
    let (outcome, observed, action) = match validate::validate(model) {
        Err(problems) => (Outcome::Invalid(problems), Observed::default(), Action::await_change()),
        Ok(source) => {
            let observed =
                Box::pin(dereference::dereference(client, model, source.as_ref())).await.map_err(Error::Dereference)?;
            let (outcome, action) = if !observed.missing.is_empty() {
                (Outcome::MissingReferences(observed.missing.clone()), Action::requeue(MISSING_REFERENCE_RETRY))
            } else if let Some(source) = source {
                serve(model, &observed, source, ctx).await?
            } else {
                check_endpoint(model, &observed, ctx).await
            };
            (outcome, observed, action)
        }
    };
    let now = Time(jiff::Timestamp::now());
    let status = status::compute_status(model, &observed, &outcome, &now);
    announce_readiness_change(&ctx.base, model, &status).await;
    status::patch_status(client, model, &status).await.map_err(Error::Status)?;
    Ok(action)
}

/// Builds and applies a served Model's children.
async fn serve(
    model: &Model,
    observed: &Observed,
    source: source::Source,
    ctx: &ModelContext,
) -> Result<(Outcome, Action), Error> {
    let Some(serve) = &model.spec.serve else {
        return Ok((Outcome::Invalid("serve is not set".to_owned()), Action::await_change()));
    };
    if build::is_multi_node(serve) && !observed.lws_installed {
        return Ok((Outcome::LeaderWorkerSetMissing, Action::requeue(LWS_MISSING_RETRY)));
    }
    let cache_recorded = observed
        .children
        .cache_claim
        .as_ref()
        .and_then(|claim| claim.metadata.annotations.as_ref()?.get(CACHE_SOURCE_ANNOTATION))
        .is_some_and(|digest| *digest == source.digest());
    let cache_ready =
        cache_condition(&source, observed.children.download_job.as_ref(), cache_recorded).status == Status::True;
    let input = BuildInput {
        model,
        serve,
        source: &source,
        runtime_image: &ctx.base.runtime_image,
        cache_ready,
        cache_recorded,
    };
    let children = build(&input);
    let now = jiff::Timestamp::now();
    // Scale to zero decides only once the weights are in place (until then the Deployment is
    // held at 0 by the operator's own apply).
    let plan = serve.autoscaling.as_ref().filter(|_| cache_ready).and_then(|autoscaling| {
        let observed_deployment = observed.children.deployment.as_ref();
        // Autoscaling is refused with serve.nodes > 1: the workload is a Deployment.
        let replicas = children
            .workload
            .deployment()
            .and_then(|desired| apply::handoff_replicas(desired, observed_deployment, 1))
            .or_else(|| observed_deployment.map(|d| d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)))
            .unwrap_or(1);
        scale_to_zero::plan(autoscaling, replicas, scale_to_zero::last_activity(model, observed.demand), now)
    });
    let autoscaler = build_autoscaler(model, observed.keda_installed, plan.as_ref().is_some_and(Plan::asleep));
    let namespace = model.namespace().unwrap_or_default();
    let written =
        apply::apply(&ctx.base.client, &namespace, &children, autoscaler.as_ref(), &observed.children).await?;
    tracing::debug!(model = %key(model), written, "applied children");
    if let Some(replicas) = plan.as_ref().and_then(Plan::replicas) {
        scale_to_zero::scale(&ctx.base.client, model, replicas).await?;
        let (reason, note) = if replicas == 0 {
            (
                "ScaledToZero",
                "no agent request for the idle period (serve.autoscaling.scaleToZeroAfter); scaled to zero",
            )
        } else {
            ("Waking", "an agent asked for the Model; scaled from zero to one replica")
        };
        ctx.base.publish(model, EventType::Normal, reason, note.to_owned()).await;
    }
    let sleep = plan.as_ref().map(|plan| {
        Box::new(status::Sleep {
            replicas: plan.replicas().unwrap_or(i32::from(!plan.asleep())),
            cold_start: scale_to_zero::cold_start(
                model.status.as_ref().and_then(|s| s.cold_start.as_ref()),
                plan,
                &observed.pods,
                now,
            ),
        })
    });
    let autoscaler = autoscaler.as_ref().map(Autoscaler::reference);
    let replacing = replace_pods_on_unfit_devices(model, observed, ctx).await;
    let waking = sleep
        .as_ref()
        .is_some_and(|s| s.replicas > 0 && s.cold_start.as_ref().is_some_and(|c| c.phase != ColdStartPhase::Ready));
    let outcome = Outcome::Applied { source, cache_ready, cache_recorded, autoscaler, sleep };
    let ready =
        holds(&status::compute_status(model, observed, &outcome, &Time(jiff::Timestamp::now())).conditions, READY);
    let mut wait = if ready && !replacing && !waking { RESYNC } else { PROGRESS };
    if waking {
        wait = wait.min(WAKE_PROGRESS);
    }
    if let Some(Plan::StayUp { idle_in }) = plan {
        // Look again when the idle period ends (a request meanwhile reconciles earlier).
        wait = wait.min(idle_in + Duration::from_secs(1));
    }
    Ok((outcome, Action::requeue(wait)))
}

/// Evicts (honouring PodDisruptionBudgets) the serving pods that hold a tainted or unhealthy
/// device; their Deployment replaces them and the scheduler allocates the new claims elsewhere
/// (a tainted device is not allocated). Returns whether any pod is being replaced. A refused
/// eviction (a budget) is retried at the next reconcile.
async fn replace_pods_on_unfit_devices(model: &Model, observed: &Observed, ctx: &ModelContext) -> bool {
    let unfit = device_health::unfit_devices(&observed.pods, &observed.claims, &observed.slices);
    let terminating: std::collections::BTreeSet<String> =
        observed.pods.iter().filter(|p| p.metadata.deletion_timestamp.is_some()).map(ResourceExt::name_any).collect();
    let pods: Api<Pod> = Api::namespaced(ctx.base.client.clone(), &model.namespace().unwrap_or_default());
    for device in &unfit {
        for pod in device.pods.iter().filter(|p| !terminating.contains(*p)) {
            let note = format!("pod {pod} holds device {}, which is {}; evicting it", device.device, device.why);
            match pods.evict(pod, &EvictParams::default()).await {
                Ok(_) => ctx.base.publish(model, EventType::Warning, "DeviceUnfit", note).await,
                Err(error) => {
                    tracing::warn!(model = %key(model), %pod, %error, "evicting a pod on an unfit device failed");
                }
            }
        }
    }
    !unfit.is_empty()
}

/// Probes an external endpoint; a failure backs off per Model, a success rechecks later.
async fn check_endpoint(model: &Model, observed: &Observed, ctx: &ModelContext) -> (Outcome, Action) {
    let Some(endpoint) = &model.spec.endpoint else {
        return (Outcome::Invalid("set exactly one of endpoint or serve".to_owned()), Action::await_change());
    };
    let request = ProbeRequest {
        base_url: endpoint.base_url.clone(),
        model: endpoint.model.clone(),
        api_key: observed.api_key.clone(),
        headers: endpoint.headers.clone(),
        ca_pem: observed.ca_pem.clone(),
        timeout: ctx.probe_timeout,
    };
    let result = probe(&request).await;
    if let (Err(ProbeFailure::Unauthorized(status)), Some(secret)) = (&result, &observed.unreadable_key_secret) {
        ctx.base.metrics.probed(reason::KEY_NOT_CHECKED);
        ctx.probe_backoff.reset(&key(model));
        let outcome = Outcome::KeyNotChecked { secret: secret.clone(), status: *status };
        return (outcome, Action::requeue(RECHECK));
    }
    ctx.base.metrics.probed(match &result {
        Ok(_) => reason::ENDPOINT_REACHABLE,
        Err(failure) => failure.reason(),
    });
    let action = match &result {
        Ok(_) => {
            ctx.probe_backoff.reset(&key(model));
            Action::requeue(RECHECK)
        }
        Err(failure) => {
            let delay = ctx.probe_backoff.next_delay(&key(model));
            tracing::info!(model = %key(model), %failure, ?delay, "endpoint not usable; probing again");
            Action::requeue(delay)
        }
    };
    (Outcome::Probed(result), action)
}

/// An event when `Ready` flips or its reason changes: Normal when it becomes ready, Warning when
/// it fails. None while it stays the same, and none for progress (cache filling, engine starting).
async fn announce_readiness_change(ctx: &Context, model: &Model, status: &ModelStatus) {
    let before = model.status.as_ref().and_then(|s| crate::conditions::find(&s.conditions, READY));
    let Some(after) = crate::conditions::find(&status.conditions, READY) else { return };
    if before.is_some_and(|b| b.status == after.status && b.reason == after.reason) {
        return;
    }
    let progress = [reason::CACHE_NOT_READY, reason::STARTING, reason::SCALED_TO_ZERO, reason::QUEUED];
    if progress.contains(&after.reason.as_str()) {
        return;
    }
    let type_ = if Status::of(&after.status) == Status::True { EventType::Normal } else { EventType::Warning };
    ctx.publish(model, type_, &after.reason, after.message.clone()).await;
}

/// The Models an Agent concerns: the one it is bound to (a binding change updates its `boundAgents`)
/// and the one it reports demand for (a wake request wakes it).
#[allow(clippy::needless_pass_by_value)] // the signature is fixed by `Controller::watches`
fn bound_model(agent: Agent) -> Vec<ObjectRef<Model>> {
    let (Some(status), Some(namespace)) = (agent.status.as_ref(), agent.namespace()) else { return Vec::new() };
    // The Model it is bound to, and the one its runtime reports demand for (the same once the
    // binding is written; the demand alone wakes a scale-to-zero Model without waiting for it).
    let demanded = status.model_demand.as_ref().map(|d| &d.model).filter(|d| status.bound_model.as_ref() != Some(*d));
    status.bound_model.iter().chain(demanded).map(|name| ObjectRef::new(name).within(&namespace)).collect()
}

/// Runs the Model controller until `shutdown` resolves. Children are watched by the
/// `managed-by` label so only the operator's own objects are cached.
pub async fn run(
    ctx: Arc<ModelContext>,
    namespace: Option<&str>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let client = ctx.base.client.clone();
    let children = watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY}"));
    let mut controller = Controller::new(api::<Model>(&client, namespace), watcher::Config::default().any_semantic())
        .owns(api::<ResourceClaimTemplate>(&client, namespace), children.clone())
        .owns(api::<PersistentVolumeClaim>(&client, namespace), children.clone())
        .owns(api::<Job>(&client, namespace), children.clone())
        .owns(api::<Deployment>(&client, namespace), children.clone())
        .owns(api::<Service>(&client, namespace), children.clone())
        .owns(api::<HorizontalPodAutoscaler>(&client, namespace), children.clone());
    // ScaledObjects and LeaderWorkerSets are watched only where KEDA and LWS were installed when
    // the operator started (a watch of a missing resource would fail forever); reconciles detect
    // them on their own.
    if keda::installed(&client).await {
        controller = controller.owns(api::<keda::ScaledObject>(&client, namespace), children.clone());
    }
    if lws::installed(&client).await {
        controller = controller.owns(api::<lws::LeaderWorkerSet>(&client, namespace), children);
    }
    controller
        .watches(api::<Agent>(&client, namespace), watcher::Config::default(), bound_model)
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "model controller event");
            }
        })
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_agents_demand_reconciles_its_model_before_the_agent_is_bound() {
        let agent = |bound: Option<&str>, demand: Option<&str>| {
            let mut agent: Agent = serde_json::from_value(serde_json::json!({
                "apiVersion": "agent-operator.dev/v1alpha1", "kind": "Agent",
                "metadata": {"name": "night-owl", "namespace": "demo"},
                "spec": {"model": {"modelRef": {"name": "gemma"}}}
            }))
            .unwrap();
            agent.status = Some(agent_crds::AgentStatus {
                bound_model: bound.map(str::to_owned),
                model_demand: demand
                    .map(|model| agent_crds::agent::ModelDemand { model: model.to_owned(), ..Default::default() }),
                ..Default::default()
            });
            agent
        };
        let names = |agent| bound_model(agent).into_iter().map(|r| r.name).collect::<Vec<_>>();
        assert_eq!(names(agent(None, Some("gemma"))), ["gemma"]);
        assert_eq!(names(agent(Some("gemma"), Some("gemma"))), ["gemma"]);
        assert_eq!(names(agent(Some("old"), Some("gemma"))), ["old", "gemma"]);
        assert!(names(agent(None, None)).is_empty());
    }
}
