//! Apply: server-side apply of a served Model's children that differ from what exists, with one
//! field manager, forced, in a fixed order: what the pods depend on before the pods (claim
//! template, cache claim, download Job), then the Deployment, then the Service in front of it.

use kube::Client;

use super::build::ModelChildren;
use super::dereference::ObservedChildren;
use crate::ssa::{ApplyError, apply_if_changed as apply_one};

/// Applies the children that differ from the observed ones; returns how many were written.
pub async fn apply(
    client: &Client,
    namespace: &str,
    children: &ModelChildren,
    observed: &ObservedChildren,
) -> Result<usize, ApplyError> {
    let mut written = 0;
    if let Some(template) = &children.claim_template {
        written += usize::from(apply_one(client, namespace, template, observed.claim_template.as_ref()).await?);
    }
    if let Some(claim) = &children.cache_claim {
        written += usize::from(apply_one(client, namespace, claim, observed.cache_claim.as_ref()).await?);
    }
    if let Some(job) = &children.download_job {
        written += usize::from(apply_one(client, namespace, job, observed.download_job.as_ref()).await?);
    }
    written += usize::from(apply_one(client, namespace, &children.deployment, observed.deployment.as_ref()).await?);
    written += usize::from(apply_one(client, namespace, &children.service, observed.service.as_ref()).await?);
    Ok(written)
}
