//! Apply: server-side apply of the children that differ from what exists, with one field
//! manager, forced, in a fixed order: identity and configuration before the workload that uses
//! them (ServiceAccount, its Role and RoleBinding, ConfigMap, headless Service, Service,
//! NetworkPolicy, StatefulSet, then a grown data claim). The caches keep a child's spec digest
//! and version, not the child, so a child is written when its digest differs from the built one
//! or someone else changed it since the operator's last write (its version moved on).

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use kube::api::ObjectMeta;
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::build::Children;
use super::dereference::ObservedChildren;
use crate::ssa::ApplyError;
use crate::stores::{ChildState, WrittenVersions, spec_hash};

/// Applies the children that differ from the observed ones; returns how many were written.
pub async fn apply(
    client: &Client,
    namespace: &str,
    children: &Children,
    observed: &ObservedChildren,
    written: &WrittenVersions,
) -> Result<usize, ApplyError> {
    let target = Target { client, namespace, written };
    let mut count = 0;
    let by_resource = Version::Resource;
    count += usize::from(target.apply(&children.service_account, observed.service_account, by_resource).await?);
    count += usize::from(target.apply(&children.role, observed.role, by_resource).await?);
    count += usize::from(target.apply(&children.role_binding, observed.role_binding, by_resource).await?);
    count += usize::from(target.apply(&children.config_map, observed.config_map, by_resource).await?);
    count += usize::from(target.apply(&children.headless_service, observed.headless_service, by_resource).await?);
    count += usize::from(target.apply(&children.service, observed.service, by_resource).await?);
    count += usize::from(target.apply(&children.network_policy, observed.network_policy, by_resource).await?);
    let stateful_set = observed.stateful_set.as_ref().map(|current| current.child);
    count += usize::from(target.apply(&children.stateful_set, stateful_set, Version::Generation).await?);
    // Built only while the claim requests less than the Agent asks for.
    if let Some(claim) = &children.grown_claim {
        crate::ssa::apply(client, namespace, claim).await?;
        count += 1;
    }
    Ok(count)
}

/// Where children are applied, and the versions the writes left.
struct Target<'a> {
    client: &'a Client,
    namespace: &'a str,
    written: &'a WrittenVersions,
}

impl Target<'_> {
    /// Applies `desired` unless `observed` carries its digest and nobody else changed it since
    /// the operator's last write; returns whether it wrote.
    async fn apply<K>(&self, desired: &K, observed: Option<ChildState>, version: Version) -> Result<bool, ApplyError>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope> + Serialize + DeserializeOwned + Clone + Debug,
    {
        let kind = K::kind(&());
        let name = desired.name_any();
        let unchanged = observed.is_some_and(|current| {
            current.spec_hash == spec_hash(desired.meta())
                && !self.written.drifted(&kind, self.namespace, &name, current.version)
        });
        if unchanged {
            return Ok(false);
        }
        let applied = crate::ssa::apply(self.client, self.namespace, desired).await?;
        self.written.record(&kind, self.namespace, &name, version.of(applied.meta()));
        Ok(true)
    }
}

/// Which number of a child moves when its spec changes.
#[derive(Clone, Copy)]
enum Version {
    /// `resourceVersion`: for kinds without a status, every change is a change of what the
    /// operator applies.
    Resource,
    /// `generation`: a StatefulSet's status moves its resourceVersion all the time, its
    /// generation only moves with its spec.
    Generation,
}

impl Version {
    fn of(self, meta: &ObjectMeta) -> u64 {
        match self {
            Self::Resource => ChildState::of(meta).version,
            Self::Generation => meta.generation.and_then(|g| u64::try_from(g).ok()).unwrap_or_default(),
        }
    }
}
