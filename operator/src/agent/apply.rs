//! Apply: server-side apply of the children that differ from what exists, with one field
//! manager, forced, in a fixed order: identity and configuration before the workload that uses
//! them (ServiceAccount, its Role and RoleBinding, ConfigMap, headless Service, Service, NetworkPolicy, StatefulSet, then a
//! grown data claim). A child that already holds every desired field is not written at all.

use kube::Client;

use super::build::Children;
use super::dereference::ObservedChildren;
use crate::ssa::{ApplyError, apply_if_changed as apply_one};

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
    written += usize::from(apply_one(client, namespace, &children.role, observed.role.as_ref()).await?);
    written += usize::from(apply_one(client, namespace, &children.role_binding, observed.role_binding.as_ref()).await?);
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
