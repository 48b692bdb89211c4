//! Apply: server-side apply of the children that differ from what exists, with one field
//! manager, forced, in a fixed order: identity and configuration before the workload that uses
//! them (ServiceAccount, its Role and RoleBinding, ConfigMap, headless Service, Service, NetworkPolicy, StatefulSet, then a
//! grown data claim). A child that already holds every desired field is not written at all; the
//! StatefulSet, cached without its pod template, is compared by its spec digest.

use k8s_openapi::api::apps::v1::StatefulSet;
use kube::{Client, ResourceExt};

use super::build::Children;
use super::build::labels::SPEC_HASH_ANNOTATION;
use super::dereference::ObservedChildren;
use crate::ssa::{ApplyError, apply_if_changed as apply_one};
use crate::stores::WrittenGenerations;

/// Applies the children that differ from the observed ones; returns how many were written.
pub async fn apply(
    client: &Client,
    namespace: &str,
    children: &Children,
    observed: &ObservedChildren,
    written_generations: &WrittenGenerations,
) -> Result<usize, ApplyError> {
    let mut written = 0;
    written +=
        usize::from(apply_one(client, namespace, &children.service_account, observed.service_account.as_ref()).await?);
    written += usize::from(apply_one(client, namespace, &children.role, observed.role.as_ref()).await?);
    written += usize::from(apply_one(client, namespace, &children.role_binding, observed.role_binding.as_ref()).await?);
    written += usize::from(apply_one(client, namespace, &children.config_map, observed.config_map.as_ref()).await?);
    written += usize::from(
        apply_one(client, namespace, &children.headless_service, observed.headless_service.as_ref()).await?,
    );
    written += usize::from(apply_one(client, namespace, &children.service, observed.service.as_ref()).await?);
    written +=
        usize::from(apply_one(client, namespace, &children.network_policy, observed.network_policy.as_ref()).await?);
    let stateful_set = observed.stateful_set.as_ref();
    written += usize::from(
        apply_stateful_set(client, namespace, &children.stateful_set, stateful_set, written_generations).await?,
    );
    if let Some(claim) = &children.grown_claim {
        written += usize::from(apply_one(client, namespace, claim, observed.data_claim.as_ref()).await?);
    }
    Ok(written)
}

/// Applies the StatefulSet unless the existing one carries the same spec digest and nobody else
/// changed its spec since the operator's last write (its generation moved on); the cache holds
/// StatefulSets without their pod template, so the digest is what is compared.
async fn apply_stateful_set(
    client: &Client,
    namespace: &str,
    desired: &StatefulSet,
    observed: Option<&StatefulSet>,
    written: &WrittenGenerations,
) -> Result<bool, ApplyError> {
    let key = format!("{namespace}/{}", desired.name_any());
    let digest = |s: &StatefulSet| s.annotations().get(SPEC_HASH_ANNOTATION).cloned();
    let unchanged = observed.is_some_and(|current| {
        digest(current) == digest(desired) && !written.drifted(&key, current.metadata.generation)
    });
    if unchanged {
        return Ok(false);
    }
    let applied = crate::ssa::apply(client, namespace, desired).await?;
    written.record(key, applied.metadata.generation);
    Ok(true)
}
