//! The Agent controller: dereference -> validate (with the delegation bounds of a child) ->
//! build -> apply -> status; a finished child past its parent's TTL is deleted instead.

pub mod apply;
pub mod build;
pub mod delegation;
pub mod dereference;
pub mod secrets;
pub mod status;
pub mod task;
pub mod validate;

use std::sync::Arc;
use std::time::{Duration, Instant};

use agent_crds::Agent;
use agent_crds::conditions::{ACCEPTED, Status};
use agent_crds::render::{PARENT_LABEL, RenderError, render_runtime_config};
use agent_crds::runtime_config::ClusterAccess;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, PartialObjectMeta};
use kube::runtime::controller::Action;
use kube::runtime::controller::Config as ControllerConfig;
use kube::runtime::events::EventType;
use kube::runtime::reflector::store::Writer;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Api, Resource, ResourceExt};
use tracing::Instrument as _;

use self::build::labels::{APP_NAME, INSTANCE_LABEL, MANAGED_BY, MANAGED_BY_LABEL, NAME_LABEL};
use self::build::{BuildError, BuildInput, Children};
use self::delegation::Expiry;
use self::dereference::{ModelLookup, Observed};
use self::status::Outcome;
use crate::context::Context;
use crate::ssa::api;
use crate::stores::children::Summary;
use crate::stores::{ChildIndex, Index};
use crate::telemetry;

/// How often an agent is reconciled without any change, to repair drift the watches missed.
const RESYNC: Duration = Duration::from_secs(600);
/// How often an agent with missing Secrets or ConfigMaps (which are not watched) looks again.
const MISSING_REFERENCE_RETRY: Duration = Duration::from_secs(60);

/// A reconcile failed for a reason that may pass; it is retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading references or children failed.
    #[error("reading references: {0}")]
    Dereference(#[source] kube::Error),
    /// Building children failed.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// Applying a child failed.
    #[error(transparent)]
    Apply(#[from] crate::ssa::ApplyError),
    /// Writing status failed.
    #[error("writing status: {0}")]
    Status(#[source] kube::Error),
    /// Deleting a child Agent past its parent's TTL failed.
    #[error("deleting the finished child Agent: {0}")]
    Expire(#[source] kube::Error),
}

impl Error {
    /// Metric label of the failure.
    pub fn category(&self) -> &'static str {
        match self {
            Self::Dereference(_) => "dereference",
            Self::Build(_) => "build",
            Self::Apply(_) => "apply",
            Self::Status(_) => "status",
            Self::Expire(_) => "expire",
        }
    }
}

/// The plan a reconcile follows after the pure steps.
enum Plan {
    Stop(Outcome),
    Apply(Box<Children>),
}

/// Reconciles one Agent.
pub async fn reconcile(agent: Arc<Agent>, ctx: Arc<Context>) -> Result<Action, Error> {
    let Some(_turn) = ctx.namespace_share.try_enter(&agent.namespace().unwrap_or_default()) else {
        ctx.metrics.deferred("Agent");
        return Ok(Action::requeue(crate::fair_share::DEFERRED_RETRY));
    };
    let started = Instant::now();
    let span = telemetry::reconcile_span(agent.as_ref());
    let result = Box::pin(reconcile_agent(&agent, &ctx)).instrument(span.clone()).await;
    ctx.metrics.reconciled("Agent", started.elapsed());
    match &result {
        Ok(_) => ctx.backoff.reset(&key(&agent)),
        Err(error) => {
            telemetry::record_failure(&span, error.category(), error);
            ctx.metrics.failed("Agent", error.category());
            ctx.publish(agent.as_ref(), EventType::Warning, "ReconcileFailed", error.to_string()).await;
        }
    }
    result
}

/// Transient failures are retried per object with exponential backoff and jitter.
#[allow(clippy::needless_pass_by_value)] // the signature is fixed by `Controller::run`
pub fn error_policy(agent: Arc<Agent>, error: &Error, ctx: Arc<Context>) -> Action {
    let delay = ctx.backoff.next_delay(&key(&agent));
    tracing::warn!(agent = %key(&agent), %error, ?delay, "reconcile failed; retrying");
    Action::requeue(delay)
}

fn key(agent: &Agent) -> String {
    format!("{}/{}", agent.namespace().unwrap_or_default(), agent.name_any())
}

async fn reconcile_agent(agent: &Agent, ctx: &Context) -> Result<Action, Error> {
    let observed =
        dereference::dereference(&ctx.client, &ctx.caches.stores, agent).await.map_err(Error::Dereference)?;
    let namespace = agent.namespace().unwrap_or_default();
    let parent = observed.family.as_ref().and_then(|f| f.parent.as_ref());
    let expiry = parent.map_or(Expiry::Keep, |parent| delegation::expiry(agent, parent, jiff::Timestamp::now()));
    if let (Expiry::Due, Some(parent), None) = (expiry, parent, &agent.metadata.deletion_timestamp) {
        expire(ctx, agent, parent).await?;
        return Ok(Action::await_change());
    }
    let (outcome, wait) = match plan(agent, &observed, ctx)? {
        Plan::Stop(outcome) => {
            let wait = match &outcome {
                Outcome::MissingReferences(_) => Some(MISSING_REFERENCE_RETRY),
                _ => None,
            };
            (outcome, wait)
        }
        Plan::Apply(children) => {
            let written =
                apply::apply(&ctx.client, &namespace, &children, &observed.children, &ctx.caches.written).await?;
            tracing::debug!(agent = %key(agent), written, "applied children");
            (Outcome::Applied, Some(RESYNC))
        }
    };
    // A finished child comes back when its TTL passes, whatever else it waits for.
    let wait = match (wait, expiry) {
        (Some(wait), Expiry::In(ttl)) => Some(wait.min(ttl)),
        (None, Expiry::In(ttl)) => Some(ttl),
        (wait, _) => wait,
    };
    let action = wait.map_or_else(Action::await_change, Action::requeue);
    let now = Time(jiff::Timestamp::now());
    let status = status::compute_status(agent, &observed, &outcome, &now);
    announce_acceptance_change(ctx, agent, &status).await;
    announce_rebinding(ctx, agent, &status).await;
    status::patch_status(&ctx.client, agent, &status).await.map_err(Error::Status)?;
    Ok(action)
}

/// Deletes a child Agent whose last task finished longer ago than its parent's
/// `delegation.ttlSecondsAfterFinished`; its own children go with it (owner references).
async fn expire(ctx: &Context, agent: &Agent, parent: &Agent) -> Result<(), Error> {
    let api: Api<Agent> = Api::namespaced(ctx.client.clone(), &agent.namespace().unwrap_or_default());
    match api.delete(&agent.name_any(), &DeleteParams::default()).await {
        Ok(_) => {}
        // Deleted meanwhile (by its parent's model or a person): nothing left to do.
        Err(kube::Error::Api(status)) if status.code == 404 => return Ok(()),
        Err(error) => return Err(Error::Expire(error)),
    }
    let note = format!(
        "deleted child Agent {}: its last task finished more than ttlSecondsAfterFinished ago",
        agent.name_any()
    );
    ctx.publish(parent, EventType::Normal, "ChildExpired", note).await;
    Ok(())
}

/// Validate and build: pure, decides whether anything is applied.
fn plan(agent: &Agent, observed: &Observed, ctx: &Context) -> Result<Plan, Error> {
    if let Err(problems) = validate::validate(agent) {
        return Ok(Plan::Stop(Outcome::Invalid(problems)));
    }
    if let Some(family) = &observed.family
        && let Err(message) = delegation::check(agent, family)
    {
        return Ok(Plan::Stop(Outcome::DelegationRefused(message)));
    }
    if let Err(outcome) = validate::validate_recipe(agent, observed) {
        return Ok(Plan::Stop(outcome));
    }
    if !observed.missing.is_empty() {
        return Ok(Plan::Stop(Outcome::MissingReferences(observed.missing.clone())));
    }
    if !matches!(observed.model, ModelLookup::Found(_)) {
        return Ok(Plan::Stop(Outcome::NoModel));
    }
    let mut config = match render_runtime_config(agent, &observed.references, &ctx.paths) {
        Ok(config) => config,
        Err(RenderError::ModelMissing(_)) => return Ok(Plan::Stop(Outcome::NoModel)),
        Err(invalid) => return Ok(Plan::Stop(status::render_outcome(&invalid))),
    };
    // The runtime reports its own status (and manages its children) with its pod's token.
    config.cluster = Some(ClusterAccess::default());
    config.traces.clone_from(&ctx.traces);
    let claim_template_size = observed.children.stateful_set.as_ref().and_then(|s| s.claim_size.as_deref());
    let claim_request = observed.children.data_claim.as_ref().and_then(|c| c.requested.as_deref());
    let input = BuildInput {
        agent,
        config: &config,
        paths: &ctx.paths,
        default_image: &ctx.runtime_image,
        secret_keys: &observed.secret_keys,
        existing_claim_size: claim_template_size,
        existing_claim_request: claim_request,
        api_server: &ctx.api_server,
    };
    Ok(Plan::Apply(Box::new(build::build(&input)?)))
}

/// A Warning event when the spec stops being accepted or the reason changes; none while it stays the same.
async fn announce_acceptance_change(ctx: &Context, agent: &Agent, status: &agent_crds::AgentStatus) {
    let before = agent.status.as_ref().and_then(|s| crate::conditions::find(&s.conditions, ACCEPTED));
    let Some(after) = crate::conditions::find(&status.conditions, ACCEPTED) else { return };
    let changed = before.is_none_or(|b| b.status != after.status || b.message != after.message);
    if changed && Status::of(&after.status) == Status::False {
        ctx.publish(agent, EventType::Warning, &after.reason, after.message.clone()).await;
    }
}

/// A Normal event when the scheduler moves the agent to another Model (the bound one was deleted
/// or stopped matching); none on the first binding.
async fn announce_rebinding(ctx: &Context, agent: &Agent, status: &agent_crds::AgentStatus) {
    let before = agent.status.as_ref().and_then(|s| s.bound_model.as_deref());
    if let (Some(before), Some(after)) = (before, status.bound_model.as_deref())
        && before != after
    {
        let note = format!("Model {before} is gone or no longer matches the selector; bound to Model {after}");
        ctx.publish(agent, EventType::Normal, "ModelRebound", note).await;
    }
}

/// Agents a Model or Recipe change may affect: those in its namespace that name it, or that
/// select models by capability.
fn agents_referencing<K: Resource>(
    store: &Store<Agent>,
    changed: &K,
    uses: fn(&Agent, &str) -> bool,
) -> Vec<ObjectRef<Agent>> {
    let name = changed.meta().name.clone().unwrap_or_default();
    let namespace = changed.meta().namespace.clone();
    store
        .state()
        .iter()
        .filter(|agent| agent.namespace() == namespace && uses(agent, &name))
        .map(|agent| ObjectRef::from_obj(agent.as_ref()))
        .collect()
}

fn uses_model(agent: &Agent, model: &str) -> bool {
    let spec = &agent.spec;
    spec.model.selector.is_some()
        || spec.model.model_ref.as_ref().is_some_and(|r| r.name == model)
        || spec.memory.embedding_model_ref.as_ref().is_some_and(|r| r.name == model)
}

fn uses_recipe(agent: &Agent, recipe: &str) -> bool {
    agent.spec.knowledge.as_ref().is_some_and(|k| k.recipe == recipe)
}

/// Agents whose delegation check an Agent change may affect: its children (a parent's bounds
/// or TTL changed) and its siblings (a child created or deleted changes their count).
fn family_of(store: &Store<Agent>, changed: &Agent) -> Vec<ObjectRef<Agent>> {
    let name = changed.name_any();
    let namespace = changed.namespace();
    let parent = changed.labels().get(PARENT_LABEL);
    store
        .state()
        .iter()
        .filter(|agent| agent.namespace() == namespace && agent.name_any() != name)
        .filter(|agent| {
            let theirs = agent.labels().get(PARENT_LABEL);
            theirs == Some(&name) || (parent.is_some() && theirs == parent)
        })
        .map(|agent| ObjectRef::from_obj(agent.as_ref()))
        .collect()
}

/// Runs the Agent controller until `shutdown` resolves, feeding the context's stores: each kind
/// is watched once, children by the `managed-by` label and data claims by the agent pods' name
/// label, so only the operator's own objects are cached. Without the stores' writers (another
/// controller took them) it does not start.
pub async fn run(
    ctx: Arc<Context>,
    namespace: Option<&str>,
    config: ControllerConfig,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let Some(writers) = ctx.caches.take_writers() else {
        tracing::error!("the Agent controller's stores are already fed by another controller; not starting");
        return;
    };
    let client = ctx.client.clone();
    let children = watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY}"));
    let claims = watcher::Config::default().labels(&format!("{NAME_LABEL}={APP_NAME}"));
    let stores = ctx.caches.stores.clone();
    let agents = cached(writers.agents, &client, namespace, watcher::Config::default().any_semantic());
    let (model_agents, recipe_agents, family_agents, claim_agents) =
        (stores.agents.clone(), stores.agents.clone(), stores.agents.clone(), stores.agents.clone());
    Controller::for_stream(agents, stores.agents.clone())
        .with_config(config)
        .owns_stream(indexed::<StatefulSet, _>(&stores.stateful_sets, &client, namespace, children.clone()))
        .owns_stream(metadata_indexed::<ConfigMap>(&stores.config_maps, &client, namespace, children.clone()))
        .owns_stream(metadata_indexed::<Service>(&stores.services, &client, namespace, children.clone()))
        .owns_stream(metadata_indexed::<ServiceAccount>(&stores.service_accounts, &client, namespace, children.clone()))
        .owns_stream(metadata_indexed::<Role>(&stores.roles, &client, namespace, children.clone()))
        .owns_stream(metadata_indexed::<RoleBinding>(&stores.role_bindings, &client, namespace, children.clone()))
        .owns_stream(metadata_indexed::<NetworkPolicy>(&stores.network_policies, &client, namespace, children))
        // A data claim the StatefulSet controller made (or resized) wakes its agent.
        .watches_stream(
            indexed::<PersistentVolumeClaim, _>(&stores.data_claims, &client, namespace, claims),
            move |claim| claim_owner(&claim_agents, &claim),
        )
        // The main watch already reacts to every Agent change, status included (the runtime's
        // `status.lastTask` drives `TaskSucceeded`, Suspend and the TTL); this one, which caches
        // nothing, wakes the changed Agent's children and siblings.
        .watches(api::<Agent>(&client, namespace), watcher::Config::default().any_semantic(), move |agent| {
            family_of(&family_agents, &agent)
        })
        .watches_stream(cached(writers.models, &client, namespace, watcher::Config::default()), move |model| {
            agents_referencing(&model_agents, &model, uses_model)
        })
        .watches_stream(cached(writers.recipes, &client, namespace, watcher::Config::default()), move |recipe| {
            agents_referencing(&recipe_agents, &recipe, uses_recipe)
        })
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "controller event");
            }
        })
        .await;
}

/// The objects of a watch of `K`, kept in `writer`'s store without what the operator never
/// reads.
fn cached<K>(
    writer: Writer<K>,
    client: &kube::Client,
    namespace: Option<&str>,
    config: watcher::Config,
) -> impl futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static
where
    K: crate::stores::Cached + Watched,
{
    watcher(api::<K>(client, namespace), config)
        .default_backoff()
        .modify(crate::stores::Cached::prune)
        .reflect(writer)
        .applied_objects()
}

/// A namespaced kind the controller watches.
trait Watched:
    kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
    + Clone
    + std::fmt::Debug
    + serde::de::DeserializeOwned
    + Send
    + Sync
    + 'static
{
}

impl<K> Watched for K where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static
{
}

/// The metadata of a watch of `K`, kept in `index` as each child's digest and version.
fn metadata_indexed<K>(
    index: &ChildIndex,
    client: &kube::Client,
    namespace: Option<&str>,
    config: watcher::Config,
) -> impl futures::Stream<Item = Result<PartialObjectMeta<K>, watcher::Error>> + Send + 'static
where
    K: Watched,
{
    indexed::<PartialObjectMeta<K>, _>(index, client, namespace, config)
}

/// The objects of a watch of `K`, summarised in `index`; the stream passes them on whole (the
/// controller maps them to their agent) and nothing keeps them.
fn indexed<K, T>(
    index: &Index<T>,
    client: &kube::Client,
    namespace: Option<&str>,
    config: watcher::Config,
) -> impl futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static
where
    K: Watched,
    T: Summary<K> + Send + Sync + 'static,
{
    let index = index.clone();
    watcher(api::<K>(client, namespace), config)
        .default_backoff()
        .inspect_ok(move |event| index.apply_event(event))
        .applied_objects()
}

/// The agent whose pod's data claim this is (by the pod's instance label).
fn claim_owner(
    agents: &Store<Agent>,
    claim: &k8s_openapi::api::core::v1::PersistentVolumeClaim,
) -> Option<ObjectRef<Agent>> {
    let name = claim.labels().get(INSTANCE_LABEL)?;
    let agent = ObjectRef::new(name).within(&claim.namespace()?);
    agents.get(&agent).map(|_| agent)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn agent(name: &str, namespace: &str, parent: Option<&str>) -> Agent {
        let labels = parent.map_or_else(|| json!({}), |p| json!({ PARENT_LABEL: p }));
        serde_json::from_value(json!({
            "apiVersion": "agent-operator.dev/v1alpha1", "kind": "Agent",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {"model": {"modelRef": {"name": "m"}}}
        }))
        .unwrap()
    }

    #[test]
    fn a_parent_change_wakes_its_children_and_a_child_change_wakes_its_siblings() {
        let mut writer = Writer::<Agent>::default();
        for agent in [
            agent("lead", "demo", None),
            agent("a", "demo", Some("lead")),
            agent("b", "demo", Some("lead")),
            agent("other", "demo", Some("someone")),
            agent("far", "elsewhere", Some("lead")),
        ] {
            writer.apply_watcher_event(&watcher::Event::Apply(agent));
        }
        let store = writer.as_reader();
        let names = |changed: &Agent| {
            let mut names: Vec<String> = family_of(&store, changed).into_iter().map(|r| r.name).collect();
            names.sort();
            names
        };
        assert_eq!(names(&agent("lead", "demo", None)), ["a", "b"]);
        assert_eq!(names(&agent("a", "demo", Some("lead"))), ["b"], "a deleted or new child frees or takes a place");
        assert_eq!(names(&agent("loner", "demo", None)), Vec::<String>::new());
    }
}
