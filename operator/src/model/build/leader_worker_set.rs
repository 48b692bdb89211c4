//! The LeaderWorkerSet of a multi-node served Model (`serve.nodes` above 1): each replica is a
//! group of `nodes` pods, a leader serving the API and workers holding the rest of the model,
//! made from the same pod template as the single-node Deployment. Every pod claims its own
//! accelerators from the Model's ResourceClaimTemplate.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;

use super::BuildInput;
use super::deployment::pod_template;
use super::labels::{child_meta, workload_labels};
use crate::model::engine::GroupRole;
use crate::model::lws::{LeaderWorkerSet, LeaderWorkerSetSpec, LeaderWorkerTemplate};

/// LWS's restart policy that recreates every pod of a group when one fails: a Ray cluster that
/// lost a member does not take it back.
pub const RECREATE_GROUP: &str = "RecreateGroupOnPodRestart";
/// LWS's startup policy that creates the workers with the leader (the leader waits for them).
pub const LEADER_CREATED: &str = "LeaderCreated";

/// Builds the LeaderWorkerSet, named after the Model. While the cache is not ready it has no
/// groups, so no accelerator is held while weights download.
pub fn build_leader_worker_set(input: &BuildInput<'_>) -> LeaderWorkerSet {
    let model = input.model;
    let mut metadata: ObjectMeta = child_meta(model, model.name_any());
    metadata.labels = Some(workload_labels(model));
    LeaderWorkerSet {
        metadata,
        spec: LeaderWorkerSetSpec {
            replicas: Some(if input.cache_ready { input.serve.replicas } else { 0 }),
            leader_worker_template: LeaderWorkerTemplate {
                size: Some(input.serve.nodes),
                restart_policy: Some(RECREATE_GROUP.to_owned()),
                leader_template: Some(pod_template(input, Some(GroupRole::Leader))),
                worker_template: pod_template(input, Some(GroupRole::Worker)),
            },
            startup_policy: Some(LEADER_CREATED.to_owned()),
        },
        status: None,
    }
}
