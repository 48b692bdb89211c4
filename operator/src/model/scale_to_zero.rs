//! Scale to zero and wake on demand, for a served Model with `serve.autoscaling.minReplicas: 0`.
//!
//! An HPA cannot take a Deployment to zero (not without an alpha feature gate) and does nothing
//! while its target has zero replicas, and KEDA's own scale from zero needs a signal while no
//! engine runs to export one. So the operator owns the step between 0 and 1 replica, on the
//! agents' demand, and the autoscaler (kept at a minimum of 1) works above 1:
//! - agents whose Model scales to zero record, on their own Agent's status, when they last
//!   called it and when they found it asleep and asked it to wake (`status.modelDemand`); the
//!   Model controller watches Agents, so that write reconciles the Model at once;
//! - the Model is wanted up while its latest activity (an agent's request or wake request, its
//!   own latest wake, its creation) is more recent than its idle period, and down after it;
//! - going down, the Deployment is scaled to 0 (under [`SCALE_MANAGER`]) and a KEDA ScaledObject
//!   is paused at 0 ([`KEDA_PAUSED_REPLICAS`], else KEDA would restore its minimum); going up it
//!   is scaled to 1 and `status.coldStart` starts a new timeline.
//!
//! The decision and the timeline are pure; [`scale`] is the one write.

use std::time::Duration;

use agent_crds::conditions::Status;
use agent_crds::model::{ColdStart, ColdStartPhase, Model, ModelAutoscaling};
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

use crate::ssa::ApplyError;

/// Field manager of the operator's scale between 0 and 1 replica (an update of
/// `spec.replicas`, as an autoscaler's; the operator's apply never owns the field here).
pub const SCALE_MANAGER: &str = "agent-operator-scale-to-zero";
/// KEDA's annotation holding a ScaledObject's target at a fixed count, autoscaling paused.
pub const KEDA_PAUSED_REPLICAS: &str = "autoscaling.keda.sh/paused-replicas";
/// How much earlier than the wake a pod may have been made and still count as the wake's (the
/// Deployment controller stamps it; clocks differ a little).
const CLOCK_SLACK: Duration = Duration::from_secs(5);

/// What the operator does with a scale-to-zero Model's replicas now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Keep it up; look again when the idle period would end.
    StayUp {
        /// Time left until the Model is idle.
        idle_in: Duration,
    },
    /// Scale it from zero to one replica: an agent asked for it.
    Wake,
    /// Scale it to zero: no agent called it for the idle period.
    Sleep,
    /// It is at zero and nobody asked for it.
    StayDown,
}

impl Plan {
    /// The replica count to write, when the plan writes one.
    pub fn replicas(&self) -> Option<i32> {
        match self {
            Self::Wake => Some(1),
            Self::Sleep => Some(0),
            Self::StayUp { .. } | Self::StayDown => None,
        }
    }

    /// Whether the Model is (or goes) to zero replicas.
    pub fn asleep(&self) -> bool {
        matches!(self, Self::Sleep | Self::StayDown)
    }
}

/// The latest time anything wanted `model` up: an agent's request or wake request for it
/// (`demand`), its own latest wake, or its creation.
pub fn last_activity(model: &Model, demand: Option<Timestamp>) -> Option<Timestamp> {
    let created = model.metadata.creation_timestamp.as_ref().map(|t| t.0);
    let woken = model.status.as_ref().and_then(|s| s.cold_start.as_ref()).and_then(|c| c.requested_at.parse().ok());
    [created, woken, demand].into_iter().flatten().max()
}

/// The latest request or wake request for Model `model` among the agents' `status.modelDemand`.
pub fn demand<'a>(model: &str, agents: impl IntoIterator<Item = &'a agent_crds::Agent>) -> Option<Timestamp> {
    agents
        .into_iter()
        .filter_map(|agent| agent.status.as_ref()?.model_demand.as_ref())
        .filter(|demand| demand.model == model)
        .flat_map(|demand| [demand.last_request_at.as_deref(), demand.wake_requested_at.as_deref()])
        .flatten()
        .filter_map(|text| text.parse::<Timestamp>().ok())
        .max()
}

/// What to do with a Model whose Deployment wants `replicas` now, last active at `last`.
pub fn plan(autoscaling: &ModelAutoscaling, replicas: i32, last: Option<Timestamp>, now: Timestamp) -> Option<Plan> {
    let idle = Duration::from_secs(autoscaling.idle_seconds()?);
    let since =
        last.map_or(Duration::MAX, |last| now.duration_since(last).max(jiff::SignedDuration::ZERO).unsigned_abs());
    let wanted = since < idle;
    Some(match (wanted, replicas > 0) {
        (true, true) => Plan::StayUp { idle_in: idle.saturating_sub(since) },
        (true, false) => Plan::Wake,
        (false, true) => Plan::Sleep,
        (false, false) => Plan::StayDown,
    })
}

/// `status.coldStart` after this reconcile: a new timeline when it wakes the Model now, the
/// running one brought up to date from the pods, or the last one kept as it was.
pub fn cold_start(previous: Option<&ColdStart>, plan: &Plan, pods: &[Pod], now: Timestamp) -> Option<ColdStart> {
    let requested_at = match (plan, previous) {
        (Plan::Wake, _) => now,
        (_, Some(previous)) if previous.phase != ColdStartPhase::Ready => previous.requested_at.parse().ok()?,
        (_, previous) => return previous.cloned(),
    };
    Some(timeline(requested_at, pods))
}

/// The timeline of a wake requested at `requested_at`, read from the first pod made for it:
/// `PodScheduled`, the engine container's start (its image pulled) and `Ready` (its weights
/// loaded and its readiness probe passed).
pub fn timeline(requested_at: Timestamp, pods: &[Pod]) -> ColdStart {
    let earliest = requested_at.checked_sub(CLOCK_SLACK).unwrap_or(requested_at);
    let pod = pods
        .iter()
        .filter(|pod| pod.metadata.deletion_timestamp.is_none())
        .filter(|pod| pod.metadata.creation_timestamp.as_ref().is_some_and(|t| t.0 >= earliest))
        .min_by_key(|pod| pod.metadata.creation_timestamp.as_ref().map(|t| t.0));
    let status = pod.and_then(|p| p.status.as_ref());
    let condition = |type_: &str| {
        status?
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == type_ && Status::of(&c.status) == Status::True)?
            .last_transition_time
            .as_ref()
            .map(|t| t.0)
    };
    let scheduled = condition("PodScheduled");
    let started = status
        .and_then(|s| s.container_statuses.as_ref()?.first()?.state.as_ref()?.running.as_ref()?.started_at.as_ref())
        .map(|t| t.0);
    let ready = condition("Ready");
    let seconds = |from: Option<Timestamp>, to: Option<Timestamp>| Some(to?.duration_since(from?).as_secs().max(0));
    let phase = match (scheduled, started, ready) {
        (_, _, Some(_)) => ColdStartPhase::Ready,
        (_, Some(_), None) => ColdStartPhase::LoadingWeights,
        (Some(_), None, None) => ColdStartPhase::PullingImage,
        (None, None, None) => ColdStartPhase::Scheduling,
    };
    ColdStart {
        requested_at: requested_at.to_string(),
        phase,
        pod: pod.map(ResourceExt::name_any),
        scheduled_at: scheduled.map(|t| t.to_string()),
        started_at: started.map(|t| t.to_string()),
        ready_at: ready.map(|t| t.to_string()),
        scheduling_seconds: seconds(Some(requested_at), scheduled),
        image_seconds: seconds(scheduled, started),
        weights_seconds: seconds(started, ready),
        total_seconds: seconds(Some(requested_at), ready),
    }
}

/// Scales the Model's Deployment to `replicas` (a merge patch of `spec.replicas` under
/// [`SCALE_MANAGER`]).
pub async fn scale(client: &Client, model: &Model, replicas: i32) -> Result<(), ApplyError> {
    let name = model.name_any();
    let api: Api<Deployment> = Api::namespaced(client.clone(), &model.namespace().unwrap_or_default());
    let params = PatchParams { field_manager: Some(SCALE_MANAGER.to_owned()), ..PatchParams::default() };
    let body = json!({"spec": {"replicas": replicas}});
    api.patch(&name, &params, &Patch::Merge(&body)).await.map_err(|source| ApplyError {
        kind: "Deployment".to_owned(),
        name,
        source,
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use agent_crds::model::AutoscalingMetric;
    use k8s_openapi::api::core::v1::{ContainerState, ContainerStateRunning, ContainerStatus, PodCondition, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;

    fn autoscaling(min: i32, after: Option<&str>) -> ModelAutoscaling {
        ModelAutoscaling {
            min_replicas: min,
            max_replicas: 3,
            metric: AutoscalingMetric::RunningRequests,
            target: "2".into(),
            prometheus_address: None,
            scale_to_zero_after: after.map(str::to_owned),
            wake_timeout: None,
        }
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn a_model_sleeps_after_its_idle_period_and_wakes_on_a_recent_request() {
        let ten_minutes = autoscaling(0, Some("10m"));
        let now = at("2026-01-01T12:00:00Z");
        let recent = Some(at("2026-01-01T11:55:00Z"));
        let old = Some(at("2026-01-01T11:49:59Z"));
        assert_eq!(plan(&ten_minutes, 1, recent, now), Some(Plan::StayUp { idle_in: Duration::from_secs(300) }));
        assert_eq!(plan(&ten_minutes, 2, old, now), Some(Plan::Sleep));
        assert_eq!(plan(&ten_minutes, 0, recent, now), Some(Plan::Wake));
        assert_eq!(plan(&ten_minutes, 0, old, now), Some(Plan::StayDown));
        assert_eq!(plan(&ten_minutes, 1, None, now), Some(Plan::Sleep), "never active is idle");
        assert_eq!(
            plan(&autoscaling(0, None), 1, Some(at("2026-01-01T11:51:00Z")), now).map(|p| p.asleep()),
            Some(false)
        );
        assert_eq!(plan(&autoscaling(1, None), 0, None, now), None, "minReplicas 1 never scales to zero");
    }

    #[test]
    fn the_latest_demand_for_this_model_counts_and_other_models_do_not() {
        let agent = |model: &str, last: Option<&str>, wake: Option<&str>| agent_crds::Agent {
            status: Some(agent_crds::AgentStatus {
                model_demand: Some(agent_crds::agent::ModelDemand {
                    model: model.to_owned(),
                    last_request_at: last.map(str::to_owned),
                    wake_requested_at: wake.map(str::to_owned),
                }),
                ..Default::default()
            }),
            ..agent_crds::Agent::new(
                "a",
                serde_json::from_value(json!({"model": {"modelRef": {"name": "m"}}})).unwrap(),
            )
        };
        let agents = [
            agent("gemma", Some("2026-01-01T10:00:00Z"), Some("2026-01-01T11:00:00Z")),
            agent("gemma", Some("2026-01-01T10:30:00Z"), None),
            agent("other", Some("2026-01-01T11:59:00Z"), None),
        ];
        assert_eq!(demand("gemma", &agents), Some(at("2026-01-01T11:00:00Z")));
        assert_eq!(demand("absent", &agents), None);
    }

    fn pod(created: &str, scheduled: Option<&str>, started: Option<&str>, ready: Option<&str>) -> Pod {
        let condition = |type_: &str, when: Option<&str>| {
            when.map(|when| PodCondition {
                type_: type_.to_owned(),
                status: "True".to_owned(),
                last_transition_time: Some(Time(at(when))),
                ..PodCondition::default()
            })
        };
        let mut pod = Pod::default();
        pod.metadata.name = Some(format!("gemma-{}", &created[14..16]));
        pod.metadata.creation_timestamp = Some(Time(at(created)));
        pod.status = Some(PodStatus {
            conditions: Some(
                [condition("PodScheduled", scheduled), condition("Ready", ready)].into_iter().flatten().collect(),
            ),
            container_statuses: started.map(|started| {
                vec![ContainerStatus {
                    name: "engine".to_owned(),
                    state: Some(ContainerState {
                        running: Some(ContainerStateRunning { started_at: Some(Time(at(started))) }),
                        ..ContainerState::default()
                    }),
                    ..ContainerStatus::default()
                }]
            }),
            ..PodStatus::default()
        });
        pod
    }

    #[test]
    fn the_timeline_splits_a_wake_into_scheduling_image_and_weights_from_the_wakes_own_pod() {
        let requested = at("2026-01-01T12:00:00Z");
        let old = pod("2026-01-01T09:00:00Z", Some("2026-01-01T09:00:01Z"), None, None);
        let waking = pod("2026-01-01T12:00:01Z", Some("2026-01-01T12:00:03Z"), Some("2026-01-01T12:00:43Z"), None);
        let timeline_now = timeline(requested, &[old.clone(), waking]);
        assert_eq!(timeline_now.pod.as_deref(), Some("gemma-00"));
        assert_eq!(timeline_now.phase, ColdStartPhase::LoadingWeights);
        assert_eq!((timeline_now.scheduling_seconds, timeline_now.image_seconds), (Some(3), Some(40)));
        assert_eq!((timeline_now.weights_seconds, timeline_now.total_seconds), (None, None));
        let ready = pod(
            "2026-01-01T12:00:01Z",
            Some("2026-01-01T12:00:03Z"),
            Some("2026-01-01T12:00:43Z"),
            Some("2026-01-01T12:02:13Z"),
        );
        let done = timeline(requested, &[old.clone(), ready]);
        assert_eq!(
            (done.phase, done.weights_seconds, done.total_seconds),
            (ColdStartPhase::Ready, Some(90), Some(133))
        );
        assert_eq!(done.ready_at.as_deref(), Some("2026-01-01T12:02:13Z"));
        let nothing_yet = timeline(requested, &[old]);
        assert_eq!((nothing_yet.phase, nothing_yet.pod), (ColdStartPhase::Scheduling, None));
    }

    #[test]
    fn a_wake_starts_a_new_timeline_and_a_finished_one_is_kept_once_its_pods_are_gone() {
        let now = at("2026-01-01T13:00:00Z");
        let finished = ColdStart {
            requested_at: "2026-01-01T12:00:00Z".into(),
            phase: ColdStartPhase::Ready,
            total_seconds: Some(133),
            ..ColdStart::default()
        };
        let woken = cold_start(Some(&finished), &Plan::Wake, &[], now).unwrap();
        assert_eq!((woken.requested_at.as_str(), woken.phase), ("2026-01-01T13:00:00Z", ColdStartPhase::Scheduling));
        assert_eq!(cold_start(Some(&finished), &Plan::Sleep, &[], now), Some(finished.clone()));
        assert_eq!(cold_start(None, &Plan::StayUp { idle_in: Duration::ZERO }, &[], now), None);
        let running = ColdStart { phase: ColdStartPhase::Scheduling, ..finished };
        let scheduled = pod("2026-01-01T12:00:01Z", Some("2026-01-01T12:00:02Z"), None, None);
        let updated = cold_start(Some(&running), &Plan::StayUp { idle_in: Duration::ZERO }, &[scheduled], now).unwrap();
        assert_eq!((updated.phase, updated.scheduling_seconds), (ColdStartPhase::PullingImage, Some(2)));
    }
}
