//! Build: pure functions from a served Model (and whether its cache is filled) to the child
//! objects the operator applies. No I/O here; every builder is tested without a cluster.

pub mod autoscaler;
pub mod cache;
pub mod claim_template;
pub mod deployment;
pub mod labels;
pub mod leader_worker_set;
pub mod service;

use agent_crds::model::{Accelerator, Model, ModelServe};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Service};
use k8s_openapi::api::resource::v1::{ResourceClaim, ResourceClaimTemplate};
use kube::ResourceExt;

use super::engine;
use super::lws::LeaderWorkerSet;
use super::source::Source;

/// Everything the builders need.
#[derive(Clone, Debug)]
pub struct BuildInput<'a> {
    /// The Model.
    pub model: &'a Model,
    /// Its `serve` section.
    pub serve: &'a ModelServe,
    /// Its parsed `serve.uri`.
    pub source: &'a Source,
    /// The operator's runtime image, for engine `runtime`.
    pub runtime_image: &'a str,
    /// Whether the weights are in place; until then the Deployment has no replicas.
    pub cache_ready: bool,
    /// Whether the cache claim already records that it holds this source's weights; then no
    /// download Job is built, so deleting a finished Job never downloads (or scales down) again.
    pub cache_recorded: bool,
}

impl BuildInput<'_> {
    /// Name the engine serves the model under.
    pub fn served_name(&self) -> String {
        self.serve.served_name.clone().unwrap_or_else(|| self.model.name_any())
    }

    /// The engine image: the Model's, else the pinned default.
    pub fn image(&self) -> String {
        let accelerated = Devices::of(self.serve) != Devices::None;
        self.serve
            .image
            .clone()
            .or_else(|| engine::default_image(self.serve.engine, accelerated).map(str::to_owned))
            .unwrap_or_else(|| self.runtime_image.to_owned())
    }
}

/// Whether `serve` spreads each replica over several pods (a LeaderWorkerSet group).
pub fn is_multi_node(serve: &ModelServe) -> bool {
    serve.nodes > 1
}

/// How a replica gets its accelerators.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Devices<'a> {
    /// CPU only.
    None,
    /// A DRA claim made from the Model's ResourceClaimTemplate.
    Dra(&'a Accelerator),
    /// A classic extended resource, e.g. `nvidia.com/gpu: 2`.
    Extended(&'a str, i64),
}

impl<'a> Devices<'a> {
    /// The accelerators of `serve`.
    pub fn of(serve: &'a ModelServe) -> Self {
        match &serve.accelerator {
            None => Self::None,
            Some(accelerator) => match &accelerator.extended_resource {
                Some(name) => Self::Extended(name, accelerator.count),
                None => Self::Dra(accelerator),
            },
        }
    }

    /// Devices per replica.
    pub fn count(&self) -> i64 {
        match self {
            Self::None => 0,
            Self::Dra(accelerator) => accelerator.count,
            Self::Extended(_, count) => *count,
        }
    }
}

/// The child objects of a served Model, in the order they are applied.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelChildren {
    /// The DRA claim template, when accelerators are claimed through DRA, a claim per replica.
    pub claim_template: Option<ResourceClaimTemplate>,
    /// The one claim every replica shares (`accelerator.sharedClaimName`), created if absent.
    pub shared_claim: Option<ResourceClaim>,
    /// The cache volume, when weights are downloaded.
    pub cache_claim: Option<PersistentVolumeClaim>,
    /// The download Job, when weights are downloaded.
    pub download_job: Option<Job>,
    /// The engine: a Deployment, or a LeaderWorkerSet when each replica spans several pods.
    pub workload: Workload,
    /// The Service agents call.
    pub service: Service,
}

/// The engine workload of a served Model; one kind at a time (switching deletes the other).
#[derive(Clone, Debug, PartialEq)]
pub enum Workload {
    /// One pod per replica.
    Deployment(Box<Deployment>),
    /// A group of `serve.nodes` pods per replica.
    LeaderWorkerSet(Box<LeaderWorkerSet>),
}

impl Workload {
    /// The Deployment, when the workload is one.
    pub fn deployment(&self) -> Option<&Deployment> {
        match self {
            Self::Deployment(deployment) => Some(deployment),
            Self::LeaderWorkerSet(_) => None,
        }
    }

    /// The LeaderWorkerSet, when the workload is one.
    pub fn leader_worker_set(&self) -> Option<&LeaderWorkerSet> {
        match self {
            Self::LeaderWorkerSet(set) => Some(set),
            Self::Deployment(_) => None,
        }
    }
}

/// Builds every child of a served Model.
pub fn build(input: &BuildInput<'_>) -> ModelChildren {
    let cache = input.serve.cache.as_ref();
    let (claim_template, shared_claim) = match Devices::of(input.serve) {
        Devices::Dra(accelerator) => match &accelerator.shared_claim_name {
            Some(name) => (None, Some(claim_template::build_shared_claim(input.model, accelerator, name))),
            None => (Some(claim_template::build_claim_template(input.model, accelerator)), None),
        },
        Devices::None | Devices::Extended(..) => (None, None),
    };
    ModelChildren {
        claim_template,
        shared_claim,
        cache_claim: input.source.needs_download().then(|| {
            let filled = input.cache_ready.then(|| input.source.digest());
            cache::build_cache_claim(input.model, cache, filled.as_deref())
        }),
        download_job: if input.cache_recorded {
            None
        } else {
            cache::build_download_job(input.model, input.source, cache)
        },
        workload: if is_multi_node(input.serve) {
            Workload::LeaderWorkerSet(Box::new(leader_worker_set::build_leader_worker_set(input)))
        } else {
            Workload::Deployment(Box::new(deployment::build_deployment(input)))
        },
        service: service::build_service(input.model),
    }
}

impl ModelChildren {
    /// The children as JSON objects in apply order, keys sorted (for snapshots and validation).
    pub fn to_values(&self) -> Vec<serde_json::Value> {
        let mut values = Vec::new();
        values.extend(self.claim_template.as_ref().map(serde_json::to_value));
        values.extend(self.shared_claim.as_ref().map(serde_json::to_value));
        values.extend(self.cache_claim.as_ref().map(serde_json::to_value));
        values.extend(self.download_job.as_ref().map(serde_json::to_value));
        values.push(match &self.workload {
            Workload::Deployment(deployment) => serde_json::to_value(deployment.as_ref()),
            Workload::LeaderWorkerSet(set) => serde_json::to_value(set.as_ref()),
        });
        values.push(serde_json::to_value(&self.service));
        values.into_iter().map(|v| agent_crds::crd::canonical(v.unwrap_or_default())).collect()
    }
}
