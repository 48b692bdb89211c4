//! Status: `Ready`, `CacheReady` and `ClaimsAllocated`, the endpoint, the served models and the
//! number of bound agents, computed from the outcome of a reconcile (pure) and written only when
//! they changed.

use agent_crds::conditions::{READY, Status};
use agent_crds::model::{CACHE_READY, CLAIMS_ALLOCATED, ColdStart, DEVICES_HEALTHY, Model, ModelStatus, reason};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::resource::v1::ResourceClaim;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{Client, ResourceExt};

use super::build::Devices;
use super::build::claim_template::SHARED_CLAIM_LABEL;
use super::build::is_multi_node;
use super::build::labels::serving_selector_text;
use super::dereference::Observed;
use super::device_health::{UnfitDevice, unfit_devices};
use super::kueue::{kueue_gated, queued_message};
use super::lws::{LWS_CRD, LWS_INSTALL};
use super::probe::ProbeFailure;
use super::source::Source;
use crate::conditions::{Computed, merge};
use crate::ssa::write_status;

/// Most model names kept in `status.servedModels` (some providers list hundreds).
pub const MAX_SERVED_MODELS: usize = 100;

/// How far the reconcile got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The spec breaks a rule; nothing was probed or built.
    Invalid(String),
    /// References are missing; nothing was probed or built.
    MissingReferences(Vec<String>),
    /// The external endpoint was probed.
    Probed(Result<Vec<String>, ProbeFailure>),
    /// The external endpoint answered, but wants the API key the operator may not read.
    KeyNotChecked {
        /// The key's Secret.
        secret: String,
        /// The endpoint's answer without the key (401 or 403).
        status: u16,
    },
    /// The Model wants several pods per replica, but the LeaderWorkerSet CRD is not installed;
    /// nothing was built.
    LeaderWorkerSetMissing,
    /// The served Model's children were applied.
    Applied {
        /// The parsed source.
        source: Source,
        /// Whether the weights were in place when building.
        cache_ready: bool,
        /// Whether the cache claim records the weights of this source.
        cache_recorded: bool,
        /// `Kind/name` of the autoscaler applied for `serve.autoscaling`.
        autoscaler: Option<String>,
        /// Where a scale-to-zero Model stands after this reconcile; `None` for any other.
        sleep: Option<Box<Sleep>>,
    },
}

/// A scale-to-zero Model after a reconcile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sleep {
    /// Replicas wanted now: 0 asleep, 1 or more awake.
    pub replicas: i32,
    /// Its latest wake.
    pub cold_start: Option<ColdStart>,
}

/// Computes the Model's status.
pub fn compute_status(model: &Model, observed: &Observed, outcome: &Outcome, now: &Time) -> ModelStatus {
    let previous = model.status.clone().unwrap_or_default();
    let mut served_models = Vec::new();
    let mut endpoint = None;
    let mut scale = Scale::default();
    let mut cold_start = previous.cold_start.clone();
    let conditions = match outcome {
        Outcome::Invalid(message) => vec![Computed::no(READY, reason::INVALID_SPEC, message.clone())],
        Outcome::MissingReferences(missing) => {
            vec![Computed::no(READY, reason::REFERENCE_NOT_FOUND, missing.join("; "))]
        }
        Outcome::Probed(result) => {
            endpoint = model.spec.endpoint.as_ref().map(|e| e.base_url.trim_end_matches('/').to_owned());
            vec![match result {
                Ok(served) => {
                    served_models.clone_from(served);
                    let wanted = model.spec.endpoint.as_ref().map(|e| e.model.as_str()).unwrap_or_default();
                    Computed::yes(READY, reason::ENDPOINT_REACHABLE, format!("the endpoint serves {wanted}"))
                }
                Err(failure) => {
                    if let ProbeFailure::ModelNotServed { served, .. } = failure {
                        served_models.clone_from(served);
                    }
                    Computed::no(READY, failure.reason(), failure.to_string())
                }
            }]
        }
        Outcome::KeyNotChecked { secret, status } => {
            endpoint = model.spec.endpoint.as_ref().map(|e| e.base_url.trim_end_matches('/').to_owned());
            vec![Computed::yes(
                READY,
                reason::KEY_NOT_CHECKED,
                format!(
                    "the endpoint answers (HTTP {status} without a key); the operator may not read Secret {secret} \
                     in this namespace, so the key and the model name are checked by the agents that mount it (the \
                     chart's modelKeyReaders value lets the operator check them here)"
                ),
            )]
        }
        Outcome::LeaderWorkerSetMissing => {
            let nodes = model.spec.serve.as_ref().map_or(1, |s| s.nodes);
            vec![Computed::no(
                READY,
                reason::LEADER_WORKER_SET_MISSING,
                format!(
                    "serve.nodes is {nodes}: multi-node serving needs LeaderWorkerSet (CRD {LWS_CRD}), which is not \
                     installed; install it ({LWS_INSTALL}) or set serve.nodes to 1. Nothing is built until then"
                ),
            )]
        }
        Outcome::Applied { source, cache_ready, cache_recorded, autoscaler, sleep } => {
            if let Some(sleep) = sleep {
                cold_start.clone_from(&sleep.cold_start);
            }
            endpoint = model.service_url();
            scale = Scale {
                replicas: Some(workload_progress(model, observed).replicas),
                selector: Some(serving_selector_text(model)),
                autoscaler: autoscaler.clone(),
            };
            let serving = serve_conditions(model, observed, source, (*cache_ready, *cache_recorded), sleep.as_deref());
            if serving.iter().any(|c| c.type_ == READY && c.reason == reason::SERVING) {
                served_models = model
                    .spec
                    .serve
                    .as_ref()
                    .map(|s| vec![s.served_name.clone().unwrap_or_else(|| model.name_any())])
                    .unwrap_or_default();
            }
            serving
        }
    };
    served_models.truncate(MAX_SERVED_MODELS);
    ModelStatus {
        observed_generation: model.metadata.generation,
        conditions: merge(&previous.conditions, conditions, model.metadata.generation, now),
        endpoint,
        served_models,
        bound_agents: Some(observed.bound_agents),
        replicas: scale.replicas,
        selector: scale.selector,
        autoscaler: scale.autoscaler,
        cold_start,
    }
}

/// What the `/scale` subresource and `status.autoscaler` report of a served Model.
#[derive(Default)]
struct Scale {
    replicas: Option<i32>,
    selector: Option<String>,
    autoscaler: Option<String>,
}

/// The conditions of a served Model: `CacheReady`, `ClaimsAllocated` (DRA only), then `Ready`.
fn serve_conditions(
    model: &Model,
    observed: &Observed,
    source: &Source,
    (cache_ready, cache_recorded): (bool, bool),
    sleep: Option<&Sleep>,
) -> Vec<Computed> {
    let Some(serve) = &model.spec.serve else { return Vec::new() };
    let cache = cache_condition(source, observed.children.download_job.as_ref(), cache_recorded);
    let mut conditions = vec![cache.clone()];
    // A pod Kueue holds at its gate is queued, not unschedulable.
    let unschedulable = observed.pods.iter().filter(|pod| !kueue_gated(pod)).find_map(unschedulable_message);
    if matches!(Devices::of(serve), Devices::Dra(_)) {
        conditions.push(claims_condition(&observed.claims, &observed.pods, unschedulable.as_deref()));
        if !observed.claims.is_empty() {
            conditions.push(devices_condition(&unfit_devices(&observed.pods, &observed.claims, &observed.slices)));
        }
    }
    let deployment = observed.children.deployment.as_ref();
    let ready_replicas = workload_progress(model, observed).ready;
    // With autoscaling the autoscaler's count (on the Deployment) is wanted, not serve.replicas.
    let wanted = match &serve.autoscaling {
        None => serve.replicas,
        Some(autoscaling) => deployment
            .and_then(|d| d.spec.as_ref()?.replicas)
            .filter(|replicas| *replicas > 0)
            .unwrap_or(autoscaling.min_replicas),
    };
    let queued = queued_message(&observed.pods, serve.queue_name.as_deref());
    let ready = if serve.autoscaling.is_none() && serve.replicas == 0 {
        Computed::no(READY, reason::SCALED_TO_ZERO, "serve.replicas is 0")
    } else if cache.reason == reason::DOWNLOAD_FAILED {
        // A failure, not progress: it gets its own reason (and so a Warning event).
        Computed::no(READY, reason::DOWNLOAD_FAILED, cache.message.clone())
    } else if !cache_ready {
        Computed::no(READY, reason::CACHE_NOT_READY, format!("waiting for the model cache: {}", cache.message))
    } else if let Some(sleep) = sleep.filter(|s| s.replicas == 0) {
        // Going to zero now: the replicas still shown are on their way out.
        sleep_condition(serve.autoscaling.as_ref(), sleep)
    } else if ready_replicas >= 1 {
        let groups = if is_multi_node(serve) { format!(" (groups of {} pods)", serve.nodes) } else { String::new() };
        let mut message = format!("{ready_replicas} of {wanted} replicas ready{groups}");
        if let Some(queued) = &queued {
            message.push_str("; ");
            message.push_str(queued);
        }
        Computed::yes(READY, reason::SERVING, message)
    } else if let Some(why) = queued {
        Computed::no(READY, reason::QUEUED, why)
    } else if let Some(why) = unschedulable {
        Computed::no(READY, reason::UNSCHEDULABLE, why)
    } else if let Some(sleep) = sleep {
        sleep_condition(serve.autoscaling.as_ref(), sleep)
    } else {
        Computed::no(READY, reason::STARTING, "waiting for the engine to start and load the weights")
    };
    conditions.push(ready);
    conditions
}

/// Replicas of the serving workload that exist and that are ready.
struct Progress {
    replicas: i32,
    ready: i32,
}

/// What the workload reports: the Deployment's replicas, or with `serve.nodes` above 1 the
/// LeaderWorkerSet's groups (a group is ready when every pod of it is).
fn workload_progress(model: &Model, observed: &Observed) -> Progress {
    let (replicas, ready) = if model.spec.serve.as_ref().is_some_and(is_multi_node) {
        let status = observed.children.leader_worker_set.as_ref().and_then(|s| s.status.as_ref());
        (status.and_then(|s| s.replicas), status.and_then(|s| s.ready_replicas))
    } else {
        let status = observed.children.deployment.as_ref().and_then(|d| d.status.as_ref());
        (status.and_then(|s| s.replicas), status.and_then(|s| s.ready_replicas))
    };
    Progress { replicas: replicas.unwrap_or(0), ready: ready.unwrap_or(0) }
}

/// `Ready` of a scale-to-zero Model with no ready replica: `True` (it serves on demand), `Idle`
/// at zero replicas, `Waking` on its way up, with the cold start's phase.
fn sleep_condition(autoscaling: Option<&agent_crds::model::ModelAutoscaling>, sleep: &Sleep) -> Computed {
    let idle = autoscaling.and_then(agent_crds::model::ModelAutoscaling::idle_seconds).unwrap_or_default();
    let last = sleep.cold_start.as_ref().and_then(|c| c.total_seconds).map(|s| format!(" (the last wake took {s} s)"));
    if sleep.replicas == 0 {
        return Computed::yes(
            READY,
            reason::IDLE,
            format!(
                "scaled to zero after {idle} s without an agent request; the next agent request wakes it{}",
                last.unwrap_or_default()
            ),
        );
    }
    let phase = sleep.cold_start.as_ref().map_or("Scheduling", |c| c.phase.as_str());
    let since = sleep.cold_start.as_ref().map(|c| format!(" since {}", c.requested_at)).unwrap_or_default();
    Computed::yes(READY, reason::WAKING, format!("waking for an agent request{since}: {phase}"))
}

/// Whether the weights are in place for `source`: recorded on the cache claim, or judged from
/// the download Job.
pub fn cache_condition(source: &Source, job: Option<&Job>, recorded: bool) -> Computed {
    match source {
        Source::Pvc { claim, .. } => {
            return Computed::yes(CACHE_READY, reason::EXISTING_CLAIM, format!("weights are read from claim {claim}"));
        }
        Source::Oci { image } => {
            return Computed::yes(CACHE_READY, reason::IMAGE_VOLUME, format!("weights are mounted from image {image}"));
        }
        Source::HuggingFace { .. } | Source::Https { .. } => {}
    }
    let downloaded = || Computed::yes(CACHE_READY, reason::DOWNLOADED, format!("{source} is in the model cache"));
    if recorded {
        return downloaded();
    }
    let Some(job) = job else {
        return Computed::no(CACHE_READY, reason::DOWNLOADING, format!("creating the download Job for {source}"));
    };
    let name = job.name_any();
    let status = job.status.clone().unwrap_or_default();
    if status.succeeded.unwrap_or(0) >= 1 {
        return downloaded();
    }
    if let Some(failed) =
        status.conditions.iter().flatten().find(|c| c.type_ == "Failed" && Status::of(&c.status) == Status::True)
    {
        let why = failed.message.clone().or_else(|| failed.reason.clone()).unwrap_or_default();
        return Computed::no(
            CACHE_READY,
            reason::DOWNLOAD_FAILED,
            format!("Job {name} failed: {why}; fix the cause, then delete the Job to retry"),
        );
    }
    let attempts = status.failed.unwrap_or(0) + status.active.unwrap_or(0);
    let since = status.start_time.map(|t| format!(" since {}", t.0)).unwrap_or_default();
    Computed::no(
        CACHE_READY,
        reason::DOWNLOADING,
        format!("Job {name} is downloading {source}{since} (attempt {})", attempts.max(1)),
    )
}

/// Whether every serving pod's claim is allocated, and if not, why pods wait.
pub fn claims_condition(claims: &[ResourceClaim], pods: &[Pod], unschedulable: Option<&str>) -> Computed {
    if claims.is_empty() {
        let why = unschedulable.map_or_else(|| "no serving pod has claimed devices yet".to_owned(), str::to_owned);
        return Computed::unknown(CLAIMS_ALLOCATED, reason::NO_CLAIMS, why);
    }
    let allocated: Vec<&ResourceClaim> =
        claims.iter().filter(|c| c.status.as_ref().and_then(|s| s.allocation.as_ref()).is_some()).collect();
    // A shared claim (`sharedClaimName`) serves every pod; otherwise each pod has its own.
    let shared = claims.iter().any(|c| c.labels().contains_key(SHARED_CLAIM_LABEL));
    if allocated.len() == claims.len() && (shared || claims.len() >= pods.len()) {
        let devices: Vec<String> = allocated
            .iter()
            .filter_map(|c| c.status.as_ref()?.allocation.as_ref()?.devices.as_ref())
            .flat_map(|d| d.results.iter().flatten())
            .map(|r| format!("{}/{}", r.pool, r.device))
            .collect();
        let listed = if devices.is_empty() { String::new() } else { format!(" ({})", devices.join(", ")) };
        return Computed::yes(
            CLAIMS_ALLOCATED,
            reason::ALLOCATED,
            format!("{} of {} claims allocated{listed}", allocated.len(), claims.len()),
        );
    }
    let mut message = format!("{} of {} claims allocated", allocated.len(), claims.len());
    if let Some(why) = unschedulable {
        message.push_str(": ");
        message.push_str(why);
    }
    Computed::no(CLAIMS_ALLOCATED, reason::PENDING, message)
}

/// `DevicesHealthy`: which allocated devices are tainted or reported unhealthy, and the pods
/// being replaced because they hold one.
pub fn devices_condition(unfit: &[UnfitDevice]) -> Computed {
    if unfit.is_empty() {
        return Computed::yes(DEVICES_HEALTHY, reason::HEALTHY, "no allocated device is tainted or reported unhealthy");
    }
    let sentences: Vec<String> = unfit
        .iter()
        .map(|u| {
            let pods: Vec<&str> = u.pods.iter().map(String::as_str).collect();
            let replaced = if pods.is_empty() { String::new() } else { format!("; replacing pod {}", pods.join(", ")) };
            format!("device {} is {}{replaced}", u.device, u.why)
        })
        .collect();
    Computed::no(DEVICES_HEALTHY, reason::DEVICE_UNFIT, sentences.join(". "))
}

/// `pod <name>: <scheduler message>` of a pod the scheduler could not place.
fn unschedulable_message(pod: &Pod) -> Option<String> {
    let condition = pod
        .status
        .as_ref()?
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "PodScheduled" && Status::of(&c.status) == Status::False)?;
    let why = condition.message.clone().or_else(|| condition.reason.clone()).unwrap_or_default();
    Some(format!("pod {} cannot be scheduled: {why}", pod.name_any()))
}

/// Writes `status` with server-side apply if it differs from the Model's current status.
/// Returns whether it wrote.
pub async fn patch_status(client: &Client, model: &Model, status: &ModelStatus) -> Result<bool, kube::Error> {
    if model.status.as_ref() == Some(status) {
        return Ok(false);
    }
    write_status(client, model, status).await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::batch::v1::{JobCondition, JobStatus};
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
    use k8s_openapi::api::resource::v1::{
        AllocationResult, DeviceAllocationResult, DeviceRequestAllocationResult, ResourceClaimStatus,
    };

    use super::*;

    fn job(status: JobStatus) -> Job {
        let mut job = Job::default();
        job.metadata.name = Some("m-download-1".into());
        job.status = Some(status);
        job
    }

    #[test]
    fn cache_readiness_follows_the_download_job() {
        let hf = Source::parse("hf://org/name").unwrap();
        assert_eq!(cache_condition(&hf, None, false).reason, reason::DOWNLOADING);
        assert_eq!(cache_condition(&hf, None, true).reason, reason::DOWNLOADED, "the claim's record outlives the Job");
        let running = cache_condition(
            &hf,
            Some(&job(JobStatus { active: Some(1), failed: Some(1), ..JobStatus::default() })),
            false,
        );
        assert_eq!((running.reason, running.message.contains("attempt 2")), (reason::DOWNLOADING, true), "{running:?}");
        let done = cache_condition(&hf, Some(&job(JobStatus { succeeded: Some(1), ..JobStatus::default() })), false);
        assert_eq!(done.reason, reason::DOWNLOADED);
        let failed = cache_condition(
            &hf,
            Some(&job(JobStatus {
                conditions: Some(vec![JobCondition {
                    type_: "Failed".into(),
                    status: Status::True.to_string(),
                    message: Some("Job has reached the specified backoff limit".into()),
                    ..JobCondition::default()
                }]),
                ..JobStatus::default()
            })),
            false,
        );
        assert_eq!(failed.reason, reason::DOWNLOAD_FAILED);
        assert!(failed.message.contains("backoff limit"));
        assert_eq!(
            cache_condition(&Source::parse("pvc://weights").unwrap(), None, false).reason,
            reason::EXISTING_CLAIM
        );
    }

    #[test]
    fn a_failed_download_makes_the_model_not_ready_with_its_own_reason() {
        let model: Model = serde_json::from_value(serde_json::json!({
            "apiVersion": "agent-operator.dev/v1alpha1", "kind": "Model",
            "metadata": {"name": "m", "namespace": "ml"},
            "spec": {"serve": {"engine": "vllm", "uri": "hf://org/name"}}
        }))
        .unwrap();
        let mut observed = Observed::default();
        observed.children.download_job = Some(job(JobStatus {
            failed: Some(5),
            conditions: Some(vec![JobCondition {
                type_: "Failed".into(),
                status: Status::True.to_string(),
                reason: Some("BackoffLimitExceeded".into()),
                ..JobCondition::default()
            }]),
            ..JobStatus::default()
        }));
        let outcome = Outcome::Applied {
            source: Source::parse("hf://org/name").unwrap(),
            cache_ready: false,
            cache_recorded: false,
            autoscaler: None,
            sleep: None,
        };
        let status = compute_status(&model, &observed, &outcome, &Time("2026-01-01T00:00:00Z".parse().unwrap()));
        let ready = status.conditions.iter().find(|c| c.type_ == READY).unwrap();
        assert_eq!((Status::of(&ready.status), ready.reason.as_str()), (Status::False, reason::DOWNLOAD_FAILED));
        assert!(
            ready.message.contains("BackoffLimitExceeded") && ready.message.contains("delete the Job"),
            "{ready:?}"
        );
        assert_eq!(status.endpoint.as_deref(), Some("http://m-model.ml.svc:8000/v1"));
    }

    fn claim(allocated: bool) -> ResourceClaim {
        ResourceClaim {
            status: Some(ResourceClaimStatus {
                allocation: allocated.then(|| AllocationResult {
                    devices: Some(DeviceAllocationResult {
                        results: Some(vec![DeviceRequestAllocationResult {
                            device: "gpu-0".into(),
                            driver: "gpu.nvidia.com".into(),
                            pool: "node-a".into(),
                            request: "gpu".into(),
                            ..DeviceRequestAllocationResult::default()
                        }]),
                        ..DeviceAllocationResult::default()
                    }),
                    ..AllocationResult::default()
                }),
                ..ResourceClaimStatus::default()
            }),
            ..ResourceClaim::default()
        }
    }

    fn pending_pod() -> Pod {
        Pod {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some("llama-7d9f-abcde".into()),
                ..Default::default()
            },
            status: Some(PodStatus {
                conditions: Some(vec![PodCondition {
                    type_: "PodScheduled".into(),
                    status: Status::False.to_string(),
                    reason: Some("Unschedulable".into()),
                    message: Some("0/3 nodes are available: 3 cannot allocate all claims.".into()),
                    ..PodCondition::default()
                }]),
                ..PodStatus::default()
            }),
            ..Pod::default()
        }
    }

    #[test]
    fn claims_report_allocated_devices_or_why_pods_wait() {
        let done = claims_condition(&[claim(true)], &[Pod::default()], None);
        assert_eq!(done.reason, reason::ALLOCATED);
        assert!(done.message.contains("node-a/gpu-0"), "{done:?}");
        let pod = pending_pod();
        let why = unschedulable_message(&pod);
        let pending = claims_condition(&[claim(false)], &[pod], why.as_deref());
        assert_eq!(pending.reason, reason::PENDING);
        assert!(
            pending.message.contains("0 of 1 claims allocated: pod llama-7d9f-abcde cannot be scheduled: 0/3 nodes")
        );
        assert_eq!(claims_condition(&[], &[], None).reason, reason::NO_CLAIMS);
    }

    #[test]
    fn serving_replicas_report_the_pods_kueue_still_holds_and_gated_pods_are_not_unschedulable() {
        let model: Model = serde_json::from_value(serde_json::json!({
            "apiVersion": "agent-operator.dev/v1alpha1", "kind": "Model",
            "metadata": {"name": "m", "namespace": "ml"},
            "spec": {"serve": {"engine": "vllm", "uri": "pvc://w/m", "replicas": 2, "queueName": "gpu",
                               "accelerator": {"deviceClassName": "gpu.nvidia.com"}}}
        }))
        .unwrap();
        let mut gated = pending_pod();
        gated.metadata.name = Some("m-1".into());
        gated.spec = Some(k8s_openapi::api::core::v1::PodSpec {
            scheduling_gates: Some(vec![k8s_openapi::api::core::v1::PodSchedulingGate {
                name: crate::model::build::labels::KUEUE_ADMISSION_GATE.into(),
            }]),
            ..Default::default()
        });
        let mut observed = Observed { pods: vec![gated], ..Observed::default() };
        let deployment = k8s_openapi::api::apps::v1::Deployment {
            status: Some(k8s_openapi::api::apps::v1::DeploymentStatus {
                ready_replicas: Some(1),
                ..Default::default()
            }),
            ..Default::default()
        };
        observed.children.deployment = Some(deployment);
        let outcome = Outcome::Applied {
            source: Source::parse("pvc://w/m").unwrap(),
            cache_ready: true,
            cache_recorded: false,
            autoscaler: None,
            sleep: None,
        };
        let status = compute_status(&model, &observed, &outcome, &Time("2026-01-01T00:00:00Z".parse().unwrap()));
        let ready = status.conditions.iter().find(|c| c.type_ == READY).unwrap();
        assert_eq!(ready.reason, reason::SERVING);
        assert!(ready.message.starts_with("1 of 2 replicas ready; 1 pod(s) wait for Kueue"), "{}", ready.message);
        assert!(ready.message.contains("LocalQueue gpu"), "{}", ready.message);
        let claims = status.conditions.iter().find(|c| c.type_ == CLAIMS_ALLOCATED).unwrap();
        assert!(!claims.message.contains("cannot be scheduled"), "{}", claims.message);
        assert_eq!(
            status.selector.as_deref(),
            Some("app.kubernetes.io/instance=m,app.kubernetes.io/name=model-server")
        );
        assert_eq!(status.replicas, Some(0), "the Deployment reported no replicas field");
    }
}
