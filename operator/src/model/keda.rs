//! The part of KEDA's `ScaledObject` (keda.sh/v1alpha1) the operator writes: a scale target, the
//! replica bounds and Prometheus triggers. KEDA itself is optional; its CRD is detected.

use std::collections::BTreeMap;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{Api, Client, CustomResource};
use serde::{Deserialize, Serialize};

/// What KEDA scales and on which triggers.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "keda.sh",
    version = "v1alpha1",
    kind = "ScaledObject",
    namespaced,
    schema = "disabled",
    derive = "PartialEq"
)]
#[serde(rename_all = "camelCase")]
pub struct ScaledObjectSpec {
    /// The workload scaled (through its `/scale` subresource).
    pub scale_target_ref: ScaleTarget,
    /// Seconds between two queries of the triggers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub polling_interval: Option<i32>,
    /// Fewest replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_replica_count: Option<i32>,
    /// Most replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_replica_count: Option<i32>,
    /// The signals scaled on.
    pub triggers: Vec<ScaleTrigger>,
}

/// Reference to the scaled workload.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ScaleTarget {
    /// API version of the workload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Kind of the workload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Name of the workload.
    pub name: String,
}

/// One trigger: a scaler type and its settings.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ScaleTrigger {
    /// Scaler, e.g. `prometheus`.
    #[serde(rename = "type")]
    pub type_: String,
    /// Name of the trigger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// How the value compares with the threshold: `AverageValue` (per replica) or `Value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_type: Option<String>,
    /// The scaler's settings (for `prometheus`: `serverAddress`, `query`, `threshold`).
    pub metadata: BTreeMap<String, String>,
}

/// Whether KEDA's ScaledObject CRD is installed; an error reading it (RBAC, API down) reads as
/// not installed, logged.
pub async fn installed(client: &Client) -> bool {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    match crds.get_opt(super::autoscaling::KEDA_CRD).await {
        Ok(found) => found.is_some(),
        Err(error) => {
            tracing::warn!(%error, "cannot tell whether KEDA is installed; not watching ScaledObjects");
            false
        }
    }
}
