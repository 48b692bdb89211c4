//! Apply: server-side apply of a served Model's children that differ from what exists, with one
//! field manager, forced, in a fixed order: what the pods depend on before the pods (claim
//! template, cache claim, download Job), then an autoscaler no longer wanted is deleted, then
//! the workload of the other kind is deleted (a Deployment when `serve.nodes` went above 1, a
//! LeaderWorkerSet when it went back to 1: both would claim accelerators), then the workload, the
//! Service in front of it, and last the autoscaler (HPA or KEDA ScaledObject).
//!
//! While autoscaling is on the operator does not own the Deployment's `spec.replicas`: the
//! autoscaler does. Dropping a field from an apply would make the API server remove it (and the
//! Deployment fall back to 1 replica) if no other manager owned it, so the operator first hands
//! it over: a separate field manager ([`HANDOFF_MANAGER`]) applies the current count, then the
//! operator's apply without `replicas` releases it. The autoscaler's own updates take the field
//! from there; the operator's later applies leave it alone.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::resource::v1::ResourceClaim;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;

use super::build::autoscaler::Autoscaler;
use super::build::{ModelChildren, Workload};
use super::dereference::ObservedChildren;
use super::keda::ScaledObject;
use super::lws::LeaderWorkerSet;
use super::scale_to_zero::KEDA_PAUSED_REPLICAS;
use crate::agent::build::labels::FIELD_MANAGER;
use crate::ssa::{ApplyError, apply as apply_always, apply_if_changed as apply_one};

/// Field manager that holds a Deployment's `spec.replicas` between the operator's release of it
/// and the autoscaler's first scale.
pub const HANDOFF_MANAGER: &str = "agent-operator-autoscaler-handoff";

/// Applies the children that differ from the observed ones and removes an autoscaler that is no
/// longer wanted; returns how many objects were written or deleted.
pub async fn apply(
    client: &Client,
    namespace: &str,
    children: &ModelChildren,
    autoscaler: Option<&Autoscaler>,
    observed: &ObservedChildren,
) -> Result<usize, ApplyError> {
    let mut written = 0;
    if let Some(template) = &children.claim_template {
        written += usize::from(apply_one(client, namespace, template, observed.claim_template.as_ref()).await?);
    }
    if let Some(shared) = &children.shared_claim
        && observed.shared_claim.is_none()
    {
        written += usize::from(create_if_absent(client, namespace, shared).await?);
    }
    if let Some(claim) = &children.cache_claim {
        written += usize::from(apply_one(client, namespace, claim, observed.cache_claim.as_ref()).await?);
    }
    if let Some(job) = &children.download_job {
        written += usize::from(apply_one(client, namespace, job, observed.download_job.as_ref()).await?);
    }
    // An autoscaler no longer wanted goes before the Deployment takes its replicas back, so it
    // cannot scale once more in between.
    if observed.hpa.is_some() && !matches!(autoscaler, Some(Autoscaler::Hpa(_))) {
        written += usize::from(delete::<HorizontalPodAutoscaler>(client, namespace, observed.hpa.as_ref()).await?);
    }
    if observed.scaled_object.is_some() && !matches!(autoscaler, Some(Autoscaler::Keda(_))) {
        written += usize::from(delete::<ScaledObject>(client, namespace, observed.scaled_object.as_ref()).await?);
    }
    match &children.workload {
        Workload::Deployment(deployment) => {
            written +=
                usize::from(delete::<LeaderWorkerSet>(client, namespace, observed.leader_worker_set.as_ref()).await?);
            let minimum = autoscaler.map_or(1, min_replicas);
            if let Some(replicas) = handoff_replicas(deployment, observed.deployment.as_ref(), minimum) {
                hand_off(client, namespace, deployment, replicas).await?;
                apply_always(client, namespace, deployment.as_ref()).await?;
                written += 2;
            } else {
                written +=
                    usize::from(apply_one(client, namespace, deployment.as_ref(), observed.deployment.as_ref()).await?);
            }
        }
        Workload::LeaderWorkerSet(set) => {
            written += usize::from(delete::<Deployment>(client, namespace, observed.deployment.as_ref()).await?);
            written +=
                usize::from(apply_one(client, namespace, set.as_ref(), observed.leader_worker_set.as_ref()).await?);
        }
    }
    // A selector that lost a key (the leaders' worker index, when `serve.nodes` went back to 1)
    // still "holds" every desired field, so it is compared whole: the apply removes the key.
    let selector = |service: &Service| service.spec.as_ref().and_then(|s| s.selector.clone());
    if observed.service.as_ref().is_some_and(|current| selector(current) != selector(&children.service)) {
        apply_always(client, namespace, &children.service).await?;
        written += 1;
    } else {
        written += usize::from(apply_one(client, namespace, &children.service, observed.service.as_ref()).await?);
    }
    match autoscaler {
        Some(Autoscaler::Hpa(hpa)) => {
            written += usize::from(apply_one(client, namespace, hpa.as_ref(), observed.hpa.as_ref()).await?);
        }
        Some(Autoscaler::Keda(scaled)) => {
            // A pause the desired object no longer has is not a missing field, so "holds every
            // desired field" would keep it: waking a scale-to-zero Model applies it away.
            let paused =
                |s: Option<&ScaledObject>| s.is_some_and(|s| s.annotations().contains_key(KEDA_PAUSED_REPLICAS));
            if paused(observed.scaled_object.as_ref()) && !paused(Some(scaled.as_ref())) {
                apply_always(client, namespace, scaled.as_ref()).await?;
                written += 1;
            } else {
                written +=
                    usize::from(apply_one(client, namespace, scaled.as_ref(), observed.scaled_object.as_ref()).await?);
            }
        }
        None => {}
    }
    Ok(written)
}

fn min_replicas(autoscaler: &Autoscaler) -> i32 {
    match autoscaler {
        Autoscaler::Hpa(hpa) => hpa.spec.as_ref().and_then(|s| s.min_replicas).unwrap_or(1),
        Autoscaler::Keda(scaled) => scaled.spec.min_replica_count.unwrap_or(1),
    }
}

/// The replica count to hand over when `desired` leaves `replicas` to an autoscaler while the
/// operator's own apply still owns it on `observed`: the current count, raised to the
/// autoscaler's minimum (an HPA does not scale a Deployment at 0, where the operator keeps it
/// while the weights download). `None` when there is nothing to hand over.
pub fn handoff_replicas(desired: &Deployment, observed: Option<&Deployment>, minimum: i32) -> Option<i32> {
    if desired.spec.as_ref().is_none_or(|s| s.replicas.is_some()) {
        return None;
    }
    let observed = observed?;
    let owned = observed.metadata.managed_fields.iter().flatten().any(|entry| {
        entry.manager.as_deref() == Some(FIELD_MANAGER)
            && entry.operation.as_deref() == Some("Apply")
            && entry.subresource.as_deref().is_none_or(str::is_empty)
            && entry.fields_v1.as_ref().is_some_and(|fields| !fields.0["f:spec"]["f:replicas"].is_null())
    });
    let current = observed.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    owned.then_some(current.max(minimum))
}

/// Creates the shared claim; one made meanwhile (by another Model naming it) is as good.
async fn create_if_absent(client: &Client, namespace: &str, claim: &ResourceClaim) -> Result<bool, ApplyError> {
    let api: Api<ResourceClaim> = Api::namespaced(client.clone(), namespace);
    match api.create(&kube::api::PostParams::default(), claim).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
        Err(source) => Err(ApplyError { kind: "ResourceClaim".to_owned(), name: claim.name_any(), source }),
    }
}

/// Applies only `spec.replicas` under [`HANDOFF_MANAGER`].
async fn hand_off(client: &Client, namespace: &str, deployment: &Deployment, replicas: i32) -> Result<(), ApplyError> {
    let name = deployment.name_any();
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let body = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {"replicas": replicas},
    });
    let params = PatchParams::apply(HANDOFF_MANAGER).force();
    api.patch(&name, &params, &Patch::Apply(&body)).await.map_err(|source| ApplyError {
        kind: "Deployment".to_owned(),
        name,
        source,
    })?;
    Ok(())
}

/// Deletes `observed` (an autoscaler or a workload no longer wanted); a 404 means it is gone
/// already.
async fn delete<K>(client: &Client, namespace: &str, observed: Option<&K>) -> Result<bool, ApplyError>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + serde::de::DeserializeOwned
        + Clone
        + std::fmt::Debug,
{
    let Some(object) = observed else { return Ok(false) };
    let name = object.name_any();
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    match api.delete(&name, &DeleteParams::background()).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
        Err(source) => Err(ApplyError { kind: K::kind(&()).into_owned(), name, source }),
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::DeploymentSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{FieldsV1, ManagedFieldsEntry};

    use super::*;

    fn deployment(replicas: Option<i32>, managers: &[(&str, &str, serde_json::Value)]) -> Deployment {
        let mut deployment = Deployment {
            spec: Some(DeploymentSpec { replicas, ..DeploymentSpec::default() }),
            ..Deployment::default()
        };
        deployment.metadata.managed_fields = Some(
            managers
                .iter()
                .map(|(manager, operation, fields)| ManagedFieldsEntry {
                    manager: Some((*manager).to_owned()),
                    operation: Some((*operation).to_owned()),
                    fields_v1: Some(FieldsV1(fields.clone())),
                    ..ManagedFieldsEntry::default()
                })
                .collect(),
        );
        deployment
    }

    #[test]
    fn replicas_owned_by_the_operator_are_handed_over_raised_to_the_minimum() {
        let desired = deployment(None, &[]);
        let owned = deployment(Some(0), &[(FIELD_MANAGER, "Apply", json!({"f:spec": {"f:replicas": {}}}))]);
        assert_eq!(handoff_replicas(&desired, Some(&owned), 2), Some(2));
        let scaled = deployment(Some(5), &[(FIELD_MANAGER, "Apply", json!({"f:spec": {"f:replicas": {}}}))]);
        assert_eq!(handoff_replicas(&desired, Some(&scaled), 2), Some(5));
    }

    #[test]
    fn nothing_is_handed_over_once_the_autoscaler_owns_replicas_or_while_the_operator_wants_them() {
        let desired = deployment(None, &[]);
        let autoscaled = deployment(
            Some(4),
            &[
                (FIELD_MANAGER, "Apply", json!({"f:spec": {"f:template": {}}})),
                ("kube-controller-manager", "Update", json!({"f:spec": {"f:replicas": {}}})),
            ],
        );
        assert_eq!(handoff_replicas(&desired, Some(&autoscaled), 1), None);
        assert_eq!(handoff_replicas(&desired, None, 1), None, "a new Deployment has nothing to hand over");
        let fixed = deployment(Some(1), &[]);
        let owned = deployment(Some(3), &[(FIELD_MANAGER, "Apply", json!({"f:spec": {"f:replicas": {}}}))]);
        assert_eq!(handoff_replicas(&fixed, Some(&owned), 1), None);
    }
}
