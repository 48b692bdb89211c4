//! Apply: server-side apply of the children that differ from what exists, with one field
//! manager, forced, in a fixed order: identity and configuration before the workload that uses
//! them (ServiceAccount, ConfigMap, headless Service, Service, NetworkPolicy, StatefulSet, then a
//! grown data claim). A child that already holds every desired field is not written at all.

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::build::Children;
use super::build::labels::FIELD_MANAGER;
use super::dereference::ObservedChildren;

/// A child could not be applied.
#[derive(Debug, thiserror::Error)]
#[error("applying {kind} {name}: {source}")]
pub struct ApplyError {
    /// Kind of the child.
    pub kind: &'static str,
    /// Name of the child.
    pub name: String,
    /// The API error.
    #[source]
    pub source: kube::Error,
}

/// Applies the children that differ from the observed ones; returns how many were written.
pub async fn apply(
    client: &Client,
    namespace: &str,
    children: &Children,
    observed: &ObservedChildren,
) -> Result<usize, ApplyError> {
    let mut written = 0;
    written +=
        usize::from(apply_one(client, namespace, &children.service_account, observed.service_account.as_ref()).await?);
    written += usize::from(apply_one(client, namespace, &children.config_map, observed.config_map.as_ref()).await?);
    written += usize::from(
        apply_one(client, namespace, &children.headless_service, observed.headless_service.as_ref()).await?,
    );
    written += usize::from(apply_one(client, namespace, &children.service, observed.service.as_ref()).await?);
    written +=
        usize::from(apply_one(client, namespace, &children.network_policy, observed.network_policy.as_ref()).await?);
    written += usize::from(apply_one(client, namespace, &children.stateful_set, observed.stateful_set.as_ref()).await?);
    if let Some(claim) = &children.grown_claim {
        written += usize::from(apply_one(client, namespace, claim, observed.data_claim.as_ref()).await?);
    }
    Ok(written)
}

async fn apply_one<K>(client: &Client, namespace: &str, desired: &K, observed: Option<&K>) -> Result<bool, ApplyError>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope> + Serialize + DeserializeOwned + Clone + Debug,
{
    if observed.is_some_and(|current| holds(desired, current)) {
        return Ok(false);
    }
    let name = desired.name_any();
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch(&name, &params, &Patch::Apply(desired)).await.map_err(|source| ApplyError {
        kind: kind_name::<K>(),
        name,
        source,
    })?;
    Ok(true)
}

fn kind_name<K: Resource<DynamicType = ()>>() -> &'static str {
    match K::kind(&()).as_ref() {
        "ServiceAccount" => "ServiceAccount",
        "ConfigMap" => "ConfigMap",
        "Service" => "Service",
        "NetworkPolicy" => "NetworkPolicy",
        "StatefulSet" => "StatefulSet",
        "PersistentVolumeClaim" => "PersistentVolumeClaim",
        _ => "object",
    }
}

/// Whether `current` already holds every field of `desired`. Fields the API server adds
/// (defaults, status, uid) are ignored; a value it normalises differently (`1000m` for `1`) reads
/// as a difference, which costs one idempotent apply, never a missed change.
pub fn holds<K: Serialize>(desired: &K, current: &K) -> bool {
    match (serde_json::to_value(desired), serde_json::to_value(current)) {
        (Ok(desired), Ok(current)) => contains(&desired, &current),
        _ => false,
    }
}

fn contains(desired: &Value, current: &Value) -> bool {
    match (desired, current) {
        (Value::Object(want), Value::Object(have)) => want.iter().all(|(key, value)| match have.get(key) {
            Some(existing) => contains(value, existing),
            None => is_empty(value),
        }),
        (Value::Object(want), Value::Null) => want.values().all(is_empty),
        (Value::Array(want), Value::Array(have)) => {
            want.len() == have.len() && want.iter().zip(have).all(|(w, h)| contains(w, h))
        }
        (Value::Array(want), Value::Null) => want.is_empty(),
        (want, have) => want == have,
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(items) => items.is_empty(),
        Value::Object(fields) => fields.values().all(is_empty),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::contains;

    #[test]
    fn server_added_fields_do_not_count_as_differences() {
        let desired =
            json!({"metadata": {"name": "a", "labels": {"x": "1"}}, "spec": {"ports": [{"port": 80}], "selector": {}}});
        let current = json!({"metadata": {"name": "a", "uid": "u", "labels": {"x": "1", "y": "2"}}, "spec": {"ports": [{"port": 80, "protocol": "TCP"}], "clusterIP": "10.0.0.1"}, "status": {}});
        assert!(contains(&desired, &current));
    }

    #[test]
    fn changed_or_removed_desired_values_count_as_differences() {
        let desired = json!({"spec": {"replicas": 1, "ports": [{"port": 80}]}});
        assert!(!contains(&desired, &json!({"spec": {"replicas": 0, "ports": [{"port": 80}]}})));
        assert!(!contains(&desired, &json!({"spec": {"replicas": 1, "ports": [{"port": 80}, {"port": 81}]}})));
        assert!(!contains(&desired, &json!({"spec": {"ports": [{"port": 80}]}})));
    }
}
