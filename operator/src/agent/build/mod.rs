//! Build: pure functions from an Agent, its rendered RuntimeConfig and what was observed to the
//! child objects the operator applies. No I/O here; every builder is tested without a cluster.

pub mod config_map;
pub mod egress;
pub mod labels;
pub mod network_policy;
pub mod rbac;
pub mod service;
pub mod service_account;
pub mod stateful_set;

use agent_crds::Agent;
use agent_crds::runtime_config::{PodPaths, RuntimeConfig};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use sha2::{Digest, Sha256};

use super::secrets::SecretKeys;

/// Everything the builders need besides the Agent.
#[derive(Clone, Debug)]
pub struct BuildInput<'a> {
    /// The Agent.
    pub agent: &'a Agent,
    /// Its rendered RuntimeConfig.
    pub config: &'a RuntimeConfig,
    /// Where the pod mounts its volume and Secrets.
    pub paths: &'a PodPaths,
    /// Runtime image used when the Agent sets none.
    pub default_image: &'a str,
    /// Secret keys the pod mounts.
    pub secret_keys: &'a SecretKeys,
    /// Size in the existing StatefulSet's claim template; that field is immutable, so it is kept.
    pub existing_claim_size: Option<&'a str>,
    /// The data claim exists with this requested size (it can be grown in place).
    pub existing_claim_request: Option<&'a str>,
    /// Where pods reach the Kubernetes API server (admitted by the egress policy).
    pub api_server: &'a egress::ApiServer,
}

/// The child objects of an agent, in the order they are applied.
#[derive(Clone, Debug, PartialEq)]
pub struct Children {
    /// The pod's identity.
    pub service_account: ServiceAccount,
    /// What the pod's ServiceAccount may do with the API.
    pub role: Role,
    /// Gives the Role to the ServiceAccount.
    pub role_binding: RoleBinding,
    /// The RuntimeConfig.
    pub config_map: ConfigMap,
    /// The headless Service behind the StatefulSet's stable pod name.
    pub headless_service: Service,
    /// The agent's API Service.
    pub service: Service,
    /// Who may reach the API and what the pod may reach.
    pub network_policy: NetworkPolicy,
    /// The agent's pod and volume.
    pub stateful_set: StatefulSet,
    /// A larger request for the existing data claim, when `memory.storage.size` grew.
    pub grown_claim: Option<PersistentVolumeClaim>,
}

/// Builds every child of the agent.
pub fn build(input: &BuildInput<'_>) -> Result<Children, BuildError> {
    let config_map = config_map::build_config_map(input.agent, input.config)?;
    let hash = config_hash(&config_map);
    Ok(Children {
        service_account: stamp(service_account::build_service_account(input.agent)),
        role: stamp(rbac::build_role(
            input.agent,
            input.config.model.wake.as_ref().map(|_| input.config.model.model_object.as_str()),
        )),
        role_binding: stamp(rbac::build_role_binding(input.agent)),
        headless_service: stamp(service::build_headless_service(input.agent)),
        service: stamp(service::build_service(input.agent)),
        network_policy: stamp(network_policy::build_network_policy(input.agent, input.config, input.api_server)),
        stateful_set: stamp(stateful_set::build_stateful_set(input, &hash)),
        grown_claim: stateful_set::build_grown_claim(input),
        config_map: stamp(config_map),
    })
}

/// Stamps `child` with a digest of itself ([`labels::SPEC_HASH_ANNOTATION`]): the operator's
/// caches keep only that digest (and the pod-less StatefulSet), so it is what is compared.
fn stamp<K: kube::Resource + serde::Serialize>(mut child: K) -> K {
    let hash = short_hex(&Sha256::digest(serde_json::to_vec(&child).unwrap_or_default()));
    child.meta_mut().annotations.get_or_insert_default().insert(labels::SPEC_HASH_ANNOTATION.to_owned(), hash);
    child
}

/// Why children could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The RuntimeConfig did not serialize.
    #[error("RuntimeConfig does not serialize: {0}")]
    Serialize(#[from] serde_json::Error),
}

/// Hash of the pod's input that is not in its template: the RuntimeConfig. Secrets are not in
/// it: the runtime reloads their mounted files itself.
fn config_hash(config_map: &ConfigMap) -> String {
    let mut hasher = Sha256::new();
    for (key, value) in config_map.data.iter().flatten() {
        hasher.update(key.as_bytes());
        hasher.update([0]);
        hasher.update(value.as_bytes());
        hasher.update([0]);
    }
    short_hex(&hasher.finalize())
}

/// The first 8 bytes of a digest, in hex: short enough for an annotation, long enough to tell
/// versions apart.
fn short_hex(digest: &[u8]) -> String {
    digest.iter().take(8).fold(String::with_capacity(16), |mut hex, byte| {
        use std::fmt::Write;
        let _ = write!(hex, "{byte:02x}");
        hex
    })
}
