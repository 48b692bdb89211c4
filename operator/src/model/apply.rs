//! Apply: server-side apply of a served Model's children that differ from what exists, with one
//! field manager, forced, in a fixed order: what the pods depend on before the pods (claim
//! template, cache claim, download Job), then the Deployment, then the Service in front of it.

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::build::ModelChildren;
use super::dereference::ObservedChildren;
use crate::agent::apply::holds;
use crate::agent::build::labels::FIELD_MANAGER;

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
    children: &ModelChildren,
    observed: &ObservedChildren,
) -> Result<usize, ApplyError> {
    let mut written = 0;
    if let Some(template) = &children.claim_template {
        written += usize::from(
            apply_one(client, namespace, "ResourceClaimTemplate", template, observed.claim_template.as_ref()).await?,
        );
    }
    if let Some(claim) = &children.cache_claim {
        written += usize::from(
            apply_one(client, namespace, "PersistentVolumeClaim", claim, observed.cache_claim.as_ref()).await?,
        );
    }
    if let Some(job) = &children.download_job {
        written += usize::from(apply_one(client, namespace, "Job", job, observed.download_job.as_ref()).await?);
    }
    written += usize::from(
        apply_one(client, namespace, "Deployment", &children.deployment, observed.deployment.as_ref()).await?,
    );
    written +=
        usize::from(apply_one(client, namespace, "Service", &children.service, observed.service.as_ref()).await?);
    Ok(written)
}

async fn apply_one<K>(
    client: &Client,
    namespace: &str,
    kind: &'static str,
    desired: &K,
    observed: Option<&K>,
) -> Result<bool, ApplyError>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope> + Serialize + DeserializeOwned + Clone + Debug,
{
    if observed.is_some_and(|current| holds(desired, current)) {
        return Ok(false);
    }
    let name = desired.name_any();
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch(&name, &params, &Patch::Apply(desired)).await.map_err(|source| ApplyError { kind, name, source })?;
    Ok(true)
}
