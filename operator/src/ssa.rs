//! Server-side apply as every controller uses it: one field manager, forced; a child written
//! only when it lacks a desired field; status written through the status subresource; and the
//! namespaced-or-cluster-wide `Api` the controllers watch with.

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::agent::build::labels::FIELD_MANAGER;

/// A child could not be applied.
#[derive(Debug, thiserror::Error)]
#[error("applying {kind} {name}: {source}")]
pub struct ApplyError {
    /// Kind of the child.
    pub kind: String,
    /// Name of the child.
    pub name: String,
    /// The API error.
    #[source]
    pub source: kube::Error,
}

/// Applies `desired` unless `observed` already holds every field of it; returns whether it wrote.
pub async fn apply_if_changed<K>(
    client: &Client,
    namespace: &str,
    desired: &K,
    observed: Option<&K>,
) -> Result<bool, ApplyError>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope> + Serialize + DeserializeOwned + Clone + Debug,
{
    if observed.is_some_and(|current| holds(desired, current)) {
        return Ok(false);
    }
    apply(client, namespace, desired).await?;
    Ok(true)
}

/// Applies `desired`; returns the object as the API server holds it afterwards.
pub async fn apply<K>(client: &Client, namespace: &str, desired: &K) -> Result<K, ApplyError>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope> + Serialize + DeserializeOwned + Clone + Debug,
{
    let name = desired.name_any();
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch(&name, &params, &Patch::Apply(desired)).await.map_err(|source| ApplyError {
        kind: K::kind(&()).into_owned(),
        name,
        source,
    })
}

/// Writes `status` to `object`'s status subresource with server-side apply.
pub async fn write_status<K>(client: &Client, object: &K, status: &impl Serialize) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope> + DeserializeOwned + Clone + Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), &object.namespace().unwrap_or_default());
    let body = json!({ "apiVersion": K::api_version(&()), "kind": K::kind(&()), "status": status });
    api.patch_status(&object.name_any(), &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&body)).await?;
    Ok(())
}

/// The `Api` of `K` in `namespace`, or in every namespace when it is `None`.
pub fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
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
