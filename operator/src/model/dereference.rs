//! Dereference: read what a Model points at (its API key Secret where the operator may read it,
//! CA ConfigMap, Hugging Face token)
//! and what exists for it (children, serving pods, their DRA claims, bound agents). The only
//! step besides apply, probe and status that talks to the API.

use agent_crds::Agent;
use agent_crds::model::Model;
use agent_crds::references::SecretKeyReference;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod, Secret, Service};
use k8s_openapi::api::resource::v1::{ResourceClaim, ResourceClaimTemplate, ResourceSlice};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};

use super::autoscaling::KEDA_CRD;
use super::build::Devices;
use super::build::claim_template::template_name;
use super::build::is_multi_node;
use super::build::labels::{cache_claim_name, download_job_name, model_selector, selector_text};
use super::keda::ScaledObject;
use super::lws::{LWS_CRD, LeaderWorkerSet};
use super::source::Source;

/// What the reconcile found in the cluster.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    /// The endpoint's API key, read from its Secret.
    pub api_key: Option<String>,
    /// The key's Secret, when the operator may not read it (no Secret access in the namespace):
    /// the probe then goes without the key.
    pub unreadable_key_secret: Option<String>,
    /// The endpoint's CA bundle, read from its ConfigMap.
    pub ca_pem: Option<String>,
    /// References that do not resolve, as sentences.
    pub missing: Vec<String>,
    /// Children that already exist.
    pub children: ObservedChildren,
    /// The serving pods.
    pub pods: Vec<Pod>,
    /// DRA claims made from the Model's claim template.
    pub claims: Vec<ResourceClaim>,
    /// The ResourceSlices of the drivers those claims allocate from (for device taints).
    pub slices: Vec<ResourceSlice>,
    /// Agents whose `status.boundModel` names this Model.
    pub bound_agents: i64,
    /// Whether KEDA's ScaledObject CRD is installed (looked up only for autoscaled Models).
    pub keda_installed: bool,
    /// Whether the LeaderWorkerSet CRD is installed (looked up only for multi-node Models).
    pub lws_installed: bool,
    /// The latest request or wake request of an agent for this Model (from the Agents'
    /// `status.modelDemand`; only agents of a scale-to-zero Model report one).
    pub demand: Option<jiff::Timestamp>,
}

/// Children that already exist, as the API server returned them.
#[derive(Clone, Debug, Default)]
pub struct ObservedChildren {
    /// The DRA claim template.
    pub claim_template: Option<ResourceClaimTemplate>,
    /// The claim every replica shares (`accelerator.sharedClaimName`).
    pub shared_claim: Option<ResourceClaim>,
    /// The cache claim.
    pub cache_claim: Option<PersistentVolumeClaim>,
    /// The download Job of the current source.
    pub download_job: Option<Job>,
    /// The engine Deployment (for a multi-node Model, only one the Model owns: it is deleted).
    pub deployment: Option<Deployment>,
    /// The LeaderWorkerSet named after the Model, if the Model owns it.
    pub leader_worker_set: Option<LeaderWorkerSet>,
    /// The Service.
    pub service: Option<Service>,
    /// The HorizontalPodAutoscaler named after the Model.
    pub hpa: Option<HorizontalPodAutoscaler>,
    /// The KEDA ScaledObject named after the Model (looked up where KEDA is installed, or where
    /// the Model's status records one).
    pub scaled_object: Option<ScaledObject>,
}

/// Reads the Model's references and, for a served Model with `source`, its children.
pub async fn dereference(client: &Client, model: &Model, source: Option<&Source>) -> Result<Observed, kube::Error> {
    let namespace = model.namespace().unwrap_or_default();
    let mut observed = Observed::default();
    if let Some(endpoint) = &model.spec.endpoint {
        if let Some(reference) = &endpoint.api_key_secret_ref {
            match secret_value(client, &namespace, reference).await? {
                SecretLookup::Value(key) => observed.api_key = Some(key),
                SecretLookup::Missing(missing) => observed.missing.push(missing),
                SecretLookup::NotPermitted => observed.unreadable_key_secret = Some(reference.name.clone()),
            }
        }
        if let Some(ca) = &endpoint.ca_config_map_ref {
            let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
            match config_maps.get_opt(&ca.name).await? {
                None => observed.missing.push(format!("ConfigMap {} not found", ca.name)),
                Some(cm) => match cm.data.and_then(|mut data| data.remove(&ca.key)) {
                    Some(pem) => observed.ca_pem = Some(pem),
                    None => observed.missing.push(format!("ConfigMap {} has no key {}", ca.name, ca.key)),
                },
            }
        }
    }
    if let (Some(serve), Some(source)) = (&model.spec.serve, source) {
        // Without Secret access here the token is not checked; the download Job's pod then
        // waits with the kubelet's reason when the Secret is missing.
        if let Some(token) = serve.cache.as_ref().and_then(|c| c.hf_token_secret_ref.as_ref())
            && let SecretLookup::Missing(missing) = secret_value(client, &namespace, token).await?
        {
            observed.missing.push(missing);
        }
        observed.children = observe_children(client, model, &namespace, source).await?;
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        if serve.autoscaling.is_some() {
            observed.keda_installed = crds.get_opt(KEDA_CRD).await?.is_some();
        }
        if is_multi_node(serve) {
            observed.lws_installed = crds.get_opt(LWS_CRD).await?.is_some();
            let owned = observed.children.deployment.take().filter(|d| owned_by(d, model));
            observed.children.deployment = owned;
        }
        // Looked up for every served Model, so switching back to one node deletes the group's
        // LeaderWorkerSet; without LWS's CRD the API answers 404, read as none.
        observed.children.leader_worker_set = Api::<LeaderWorkerSet>::namespaced(client.clone(), &namespace)
            .get_opt(&model.name_any())
            .await?
            .filter(|set| owned_by(set, model));
        // Only the Model's own autoscalers count: one of the same name that another owner made
        // is never deleted (an apply would take over its fields, as for any child).
        observed.children.hpa = Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), &namespace)
            .get_opt(&model.name_any())
            .await?
            .filter(|hpa| owned_by(hpa, model));
        let recorded_scaled_object = model
            .status
            .as_ref()
            .and_then(|s| s.autoscaler.as_deref())
            .is_some_and(|autoscaler| autoscaler.starts_with("ScaledObject/"));
        if observed.keda_installed || recorded_scaled_object {
            // Without KEDA's CRD the resource does not exist: the API answers 404, read as none.
            observed.children.scaled_object = Api::<ScaledObject>::namespaced(client.clone(), &namespace)
                .get_opt(&model.name_any())
                .await?
                .filter(|scaled| owned_by(scaled, model));
        }
        let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
        observed.pods = pods.list(&ListParams::default().labels(&selector_text(model))).await?.items;
        if matches!(Devices::of(serve), Devices::Dra(_)) {
            let claims: Api<ResourceClaim> = Api::namespaced(client.clone(), &namespace);
            observed.claims = claims.list(&ListParams::default().labels(&model_selector(model))).await?.items;
            observed.claims.extend(observed.children.shared_claim.clone());
            observed.slices = slices_of(client, &observed.claims).await?;
        }
    }
    let agents: Api<Agent> = Api::namespaced(client.clone(), &namespace);
    let name = model.name_any();
    let agents = agents.list(&ListParams::default()).await?.items;
    observed.demand = super::scale_to_zero::demand(&name, &agents);
    observed.bound_agents = agents
        .iter()
        .filter(|agent| agent.status.as_ref().and_then(|s| s.bound_model.as_deref()) == Some(name.as_str()))
        .count()
        .try_into()
        .unwrap_or(i64::MAX);
    Ok(observed)
}

/// Whether `model` is `object`'s controlling owner.
fn owned_by<K: kube::Resource>(object: &K, model: &Model) -> bool {
    let uid = model.metadata.uid.as_deref();
    object.meta().owner_references.iter().flatten().any(|o| o.controller == Some(true) && Some(o.uid.as_str()) == uid)
}

/// What reading a Secret key found.
enum SecretLookup {
    /// The key's text.
    Value(String),
    /// A sentence saying what is missing.
    Missing(String),
    /// The operator may not read Secrets in this namespace (its default: it is granted Secret
    /// access only where a person opts in).
    NotPermitted,
}

/// The value of a Secret key.
async fn secret_value(
    client: &Client,
    namespace: &str,
    reference: &SecretKeyReference,
) -> Result<SecretLookup, kube::Error> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let secret = match secrets.get_opt(&reference.name).await {
        Ok(secret) => secret,
        Err(kube::Error::Api(status)) if status.code == 403 => return Ok(SecretLookup::NotPermitted),
        Err(error) => return Err(error),
    };
    Ok(match secret {
        None => SecretLookup::Missing(format!("Secret {} not found", reference.name)),
        Some(secret) => {
            let bytes = secret.data.and_then(|mut data| data.remove(&reference.key)).map(|b| b.0);
            let text =
                bytes.or_else(|| secret.string_data.and_then(|mut d| d.remove(&reference.key)).map(String::into_bytes));
            match text.map(String::from_utf8) {
                Some(Ok(text)) => SecretLookup::Value(text),
                Some(Err(_)) => {
                    SecretLookup::Missing(format!("Secret {} key {} is not UTF-8 text", reference.name, reference.key))
                }
                None => SecretLookup::Missing(format!("Secret {} has no key {}", reference.name, reference.key)),
            }
        }
    })
}

async fn observe_children(
    client: &Client,
    model: &Model,
    namespace: &str,
    source: &Source,
) -> Result<ObservedChildren, kube::Error> {
    let name = model.name_any();
    let template = match model.spec.serve.as_ref().map(Devices::of) {
        Some(Devices::Dra(accelerator)) => Some(template_name(model, accelerator)),
        _ => None,
    };
    let shared = match model.spec.serve.as_ref().map(Devices::of) {
        Some(Devices::Dra(accelerator)) => accelerator.shared_claim_name.clone(),
        _ => None,
    };
    Ok(ObservedChildren {
        shared_claim: match shared {
            Some(name) => Api::<ResourceClaim>::namespaced(client.clone(), namespace).get_opt(&name).await?,
            None => None,
        },
        claim_template: match template {
            Some(name) => Api::<ResourceClaimTemplate>::namespaced(client.clone(), namespace).get_opt(&name).await?,
            None => None,
        },
        cache_claim: if source.needs_download() {
            Api::<PersistentVolumeClaim>::namespaced(client.clone(), namespace)
                .get_opt(&cache_claim_name(model))
                .await?
        } else {
            None
        },
        download_job: if source.needs_download() {
            Api::<Job>::namespaced(client.clone(), namespace)
                .get_opt(&download_job_name(model, &source.digest()))
                .await?
        } else {
            None
        },
        deployment: Api::<Deployment>::namespaced(client.clone(), namespace).get_opt(&name).await?,
        service: Api::<Service>::namespaced(client.clone(), namespace).get_opt(&model.service_name()).await?,
        leader_worker_set: None,
        hpa: None,
        scaled_object: None,
    })
}

/// The ResourceSlices of every driver `claims` allocate from, listed per driver.
async fn slices_of(client: &Client, claims: &[ResourceClaim]) -> Result<Vec<ResourceSlice>, kube::Error> {
    let drivers: std::collections::BTreeSet<&str> = claims
        .iter()
        .filter_map(|c| c.status.as_ref()?.allocation.as_ref()?.devices.as_ref()?.results.as_ref())
        .flatten()
        .map(|r| r.driver.as_str())
        .collect();
    let api: Api<ResourceSlice> = Api::all(client.clone());
    let mut slices = Vec::new();
    for driver in drivers {
        slices.extend(api.list(&ListParams::default().fields(&format!("spec.driver={driver}"))).await?.items);
    }
    Ok(slices)
}
