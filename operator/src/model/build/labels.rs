//! Names, labels and annotations of a served Model's child objects; one place so they never drift.
//! The Service's name (`<name>-model`) is agent-crds' [`Model::service_name`], since the agents'
//! RuntimeConfig points at it too.

use std::collections::BTreeMap;

use agent_crds::model::Model;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::{Resource, ResourceExt};

use crate::agent::build::labels::{INSTANCE_LABEL, KUEUE_QUEUE_LABEL, MANAGED_BY, MANAGED_BY_LABEL, NAME_LABEL};

/// `app.kubernetes.io/name` of served-model children.
pub const APP_NAME: &str = "model-server";
/// Label naming the Model a child belongs to.
pub const MODEL_LABEL: &str = "agent-operator.dev/model";
/// Name of the pod's DRA claim and of the container's claim reference.
pub const CLAIM_NAME: &str = "accelerator";

/// Name of the ResourceClaimTemplate each replica's claim is made from, for the template spec
/// with `digest`: a template's spec is immutable, so another request gets another template.
pub fn claim_template_name(model: &Model, digest: &str) -> String {
    format!("{}-accelerator-{digest}", model.name_any())
}

/// Name of the model-cache claim.
pub fn cache_claim_name(model: &Model) -> String {
    format!("{}-cache", model.name_any())
}

/// Name of the download Job of the source with `digest` (a Job's template is immutable, so a new
/// source gets a new Job).
pub fn download_job_name(model: &Model, digest: &str) -> String {
    format!("{}-download-{digest}", model.name_any())
}

/// Labels selecting the Model's serving pods; stable for the Model's lifetime.
pub fn selector_labels(model: &Model) -> BTreeMap<String, String> {
    BTreeMap::from([(NAME_LABEL.to_owned(), APP_NAME.to_owned()), (INSTANCE_LABEL.to_owned(), model.name_any())])
}

/// Labels of every child object; the owned-object watches select on `managed-by`.
pub fn labels(model: &Model) -> BTreeMap<String, String> {
    let mut labels = selector_labels(model);
    labels.insert(MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned());
    labels.insert(MODEL_LABEL.to_owned(), model.name_any());
    labels
}

/// Labels of the serving workload (Deployment and pods): the child labels plus Kueue's queue.
pub fn workload_labels(model: &Model) -> BTreeMap<String, String> {
    let mut labels = labels(model);
    if let Some(queue) = model.spec.serve.as_ref().and_then(|s| s.queue_name.as_ref()) {
        labels.insert(KUEUE_QUEUE_LABEL.to_owned(), queue.clone());
    }
    labels
}

/// Label selector (as text) of every object made for `model`, including claims made from its template.
pub fn model_selector(model: &Model) -> String {
    format!("{MODEL_LABEL}={}", model.name_any())
}

/// Metadata of a child named `name`: namespace, labels, and the Model as controlling owner.
pub fn child_meta(model: &Model, name: String) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: model.namespace(),
        labels: Some(labels(model)),
        owner_references: model.controller_owner_ref(&()).map(|owner| vec![owner]),
        ..ObjectMeta::default()
    }
}
