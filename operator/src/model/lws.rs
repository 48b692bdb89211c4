//! The part of LeaderWorkerSet (leaderworkerset.x-k8s.io/v1, kubernetes-sigs/lws) the operator
//! writes for multi-node serving, and the readiness it reads back. LWS itself is optional; its
//! CRD is detected.

use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{Api, Client, CustomResource};
use serde::{Deserialize, Serialize};

/// Name of the CRD whose presence means LeaderWorkerSet is installed.
pub const LWS_CRD: &str = "leaderworkersets.leaderworkerset.x-k8s.io";
/// Label LWS puts on each pod with its index in the group; the leader's is `"0"`.
pub const WORKER_INDEX_LABEL: &str = "leaderworkerset.sigs.k8s.io/worker-index";
/// Where LWS is documented and installed from, for messages.
pub const LWS_INSTALL: &str = "https://lws.sigs.k8s.io/docs/installation/";

/// Groups of pods, each a leader and `size - 1` workers, created and replaced together.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "leaderworkerset.x-k8s.io",
    version = "v1",
    kind = "LeaderWorkerSet",
    namespaced,
    status = "LeaderWorkerSetStatus",
    schema = "disabled",
    derive = "PartialEq"
)]
#[serde(rename_all = "camelCase")]
pub struct LeaderWorkerSetSpec {
    /// Number of groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// The pods of one group.
    pub leader_worker_template: LeaderWorkerTemplate,
    /// When workers are created: `LeaderCreated` (with the leader) or `LeaderReady`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub startup_policy: Option<String>,
}

/// The pods of one group.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LeaderWorkerTemplate {
    /// Pods per group, the leader included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<i32>,
    /// What a failed pod does to its group: `RecreateGroupOnPodRestart` recreates them all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<String>,
    /// The leader pod (index 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader_template: Option<PodTemplateSpec>,
    /// The worker pods (indexes 1 to size - 1).
    pub worker_template: PodTemplateSpec,
}

/// What the LWS controller reports.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LeaderWorkerSetStatus {
    /// Groups whose every pod is ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    /// Groups that exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
}

/// Whether the LeaderWorkerSet CRD is installed; an error reading it (RBAC, API down) reads as
/// not installed, logged.
pub async fn installed(client: &Client) -> bool {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    match crds.get_opt(LWS_CRD).await {
        Ok(found) => found.is_some(),
        Err(error) => {
            tracing::warn!(%error, "cannot tell whether LeaderWorkerSet is installed; not watching LeaderWorkerSets");
            false
        }
    }
}
