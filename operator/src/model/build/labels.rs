//! Names, labels and annotations of a served Model's child objects; one place so they never drift.
//! The Service's name (`<name>-model`) is agent-crds' [`Model::service_name`], since the agents'
//! RuntimeConfig points at it too.

use std::collections::BTreeMap;

use agent_crds::model::Model;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::{Resource, ResourceExt};

use crate::agent::build::labels::{INSTANCE_LABEL, KUEUE_QUEUE_LABEL, MANAGED_BY, MANAGED_BY_LABEL, NAME_LABEL};
use crate::model::lws::WORKER_INDEX_LABEL;

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

/// Labels selecting the pods that serve the Model's API: every serving pod, or with
/// `serve.nodes` above 1 the leader of each LeaderWorkerSet group (LWS labels it worker index 0).
pub fn serving_selector(model: &Model) -> BTreeMap<String, String> {
    let mut labels = selector_labels(model);
    if model.spec.serve.as_ref().is_some_and(super::is_multi_node) {
        labels.insert(WORKER_INDEX_LABEL.to_owned(), "0".to_owned());
    }
    labels
}

/// Labels of every child object; the owned-object watches select on `managed-by`.
pub fn labels(model: &Model) -> BTreeMap<String, String> {
    let mut labels = selector_labels(model);
    labels.insert(MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned());
    labels.insert(MODEL_LABEL.to_owned(), model.name_any());
    labels
}

/// Label naming a pod's Kueue WorkloadPriorityClass.
pub const KUEUE_PRIORITY_LABEL: &str = "kueue.x-k8s.io/priority-class";
/// Scheduling gate Kueue's pod integration holds a pod with until it admits it.
pub const KUEUE_ADMISSION_GATE: &str = "kueue.x-k8s.io/admission";

/// Labels of the serving workload (Deployment and pods): the child labels plus Kueue's queue
/// and workload priority. Kueue's pod integration reads them from the pods; newer Kueue versions
/// also manage a Deployment by its own label, so both carry them.
pub fn workload_labels(model: &Model) -> BTreeMap<String, String> {
    let mut labels = labels(model);
    if let Some(serve) = &model.spec.serve {
        if let Some(queue) = &serve.queue_name {
            labels.insert(KUEUE_QUEUE_LABEL.to_owned(), queue.clone());
        }
        if let Some(priority) = &serve.workload_priority_class_name {
            labels.insert(KUEUE_PRIORITY_LABEL.to_owned(), priority.clone());
        }
    }
    labels
}

/// The selector of the serving pods as text (`key=value,...`): every pod of the Model, the
/// workers of multi-node groups included (their claims and devices are the Model's too).
pub fn selector_text(model: &Model) -> String {
    as_text(&selector_labels(model))
}

/// The selector of the pods that serve the API as text, as `status.selector` and the `/scale`
/// subresource give it: one pod per replica (a group's leader with `serve.nodes` above 1).
pub fn serving_selector_text(model: &Model) -> String {
    as_text(&serving_selector(model))
}

fn as_text(labels: &BTreeMap<String, String>) -> String {
    labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
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
