//! The operator's caches: one reflector store per kind the Agent reconcile reads, fed by the
//! controller's own watches (each kind is watched once; children only through the
//! operator's `managed-by` label, data claims through the agent pods' name label). A reconcile
//! reads its Model, Recipe, family and existing children from here instead of GETting them,
//! so an agent at rest costs the API server nothing. Stored objects drop what the operator never
//! reads ([`Cached`]).

use std::sync::{Arc, Mutex, PoisonError};

use agent_crds::Agent;
use agent_crds::model::Model;
use agent_crds::recipe::Recipe;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::Resource;
use kube::runtime::reflector::store::Writer;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;

/// The stores a reconcile reads.
#[derive(Clone)]
pub struct Stores {
    /// Every Agent (in the watched namespaces).
    pub agents: Store<Agent>,
    /// Every Model.
    pub models: Store<Model>,
    /// Every Recipe.
    pub recipes: Store<Recipe>,
    /// The agents' ServiceAccounts.
    pub service_accounts: Store<ServiceAccount>,
    /// The agents' Roles.
    pub roles: Store<Role>,
    /// The agents' RoleBindings.
    pub role_bindings: Store<RoleBinding>,
    /// The agents' RuntimeConfig ConfigMaps.
    pub config_maps: Store<ConfigMap>,
    /// The agents' Services (headless and API).
    pub services: Store<Service>,
    /// The agents' NetworkPolicies.
    pub network_policies: Store<NetworkPolicy>,
    /// The agents' StatefulSets.
    pub stateful_sets: Store<StatefulSet>,
    /// The agents' data claims (made by the StatefulSet controller from the claim template).
    pub data_claims: Store<PersistentVolumeClaim>,
}

/// The writing ends of [`Stores`], moved into the controller's reflectors when it starts.
pub struct Writers {
    /// Agents.
    pub agents: Writer<Agent>,
    /// Models.
    pub models: Writer<Model>,
    /// Recipes.
    pub recipes: Writer<Recipe>,
    /// ServiceAccounts.
    pub service_accounts: Writer<ServiceAccount>,
    /// Roles.
    pub roles: Writer<Role>,
    /// RoleBindings.
    pub role_bindings: Writer<RoleBinding>,
    /// ConfigMaps.
    pub config_maps: Writer<ConfigMap>,
    /// Services.
    pub services: Writer<Service>,
    /// NetworkPolicies.
    pub network_policies: Writer<NetworkPolicy>,
    /// StatefulSets.
    pub stateful_sets: Writer<StatefulSet>,
    /// Data claims.
    pub data_claims: Writer<PersistentVolumeClaim>,
}

impl Writers {
    fn new() -> Self {
        Self {
            agents: Writer::default(),
            models: Writer::default(),
            recipes: Writer::default(),
            service_accounts: Writer::default(),
            roles: Writer::default(),
            role_bindings: Writer::default(),
            config_maps: Writer::default(),
            services: Writer::default(),
            network_policies: Writer::default(),
            stateful_sets: Writer::default(),
            data_claims: Writer::default(),
        }
    }

    fn readers(&self) -> Stores {
        Stores {
            agents: self.agents.as_reader(),
            models: self.models.as_reader(),
            recipes: self.recipes.as_reader(),
            service_accounts: self.service_accounts.as_reader(),
            roles: self.roles.as_reader(),
            role_bindings: self.role_bindings.as_reader(),
            config_maps: self.config_maps.as_reader(),
            services: self.services.as_reader(),
            network_policies: self.network_policies.as_reader(),
            stateful_sets: self.stateful_sets.as_reader(),
            data_claims: self.data_claims.as_reader(),
        }
    }

    /// Records `object` (any kind the stores hold, as JSON) as a watch event would; other kinds
    /// are ignored. Returns whether it was stored.
    pub fn observe(&mut self, object: &serde_json::Value) -> bool {
        fn put<K>(writer: &mut Writer<K>, object: &serde_json::Value) -> bool
        where
            K: Cached<DynamicType = ()> + Clone + serde::de::DeserializeOwned,
        {
            match serde_json::from_value::<K>(object.clone()) {
                Ok(mut parsed) => {
                    parsed.prune();
                    writer.apply_watcher_event(&watcher::Event::Apply(parsed));
                    true
                }
                Err(_) => false,
            }
        }
        match object["kind"].as_str().unwrap_or_default() {
            "Agent" => put(&mut self.agents, object),
            "Model" => put(&mut self.models, object),
            "Recipe" => put(&mut self.recipes, object),
            "ServiceAccount" => put(&mut self.service_accounts, object),
            "Role" => put(&mut self.roles, object),
            "RoleBinding" => put(&mut self.role_bindings, object),
            "ConfigMap" => put(&mut self.config_maps, object),
            "Service" => put(&mut self.services, object),
            "NetworkPolicy" => put(&mut self.network_policies, object),
            "StatefulSet" => put(&mut self.stateful_sets, object),
            "PersistentVolumeClaim" => put(&mut self.data_claims, object),
            _ => false,
        }
    }
}

/// A kind the stores hold, and what of it they drop: `managedFields` always (the operator never
/// reads them); a StatefulSet's pod template too (the largest part of an agent's objects, about
/// 23 KiB of the ~50 KiB an agent cost in memory before it was dropped), since the operator
/// compares its StatefulSets by their spec digest
/// ([`crate::agent::build::labels::SPEC_HASH_ANNOTATION`]).
pub trait Cached: Resource {
    /// Drops what the operator never reads.
    fn prune(&mut self) {
        self.meta_mut().managed_fields = None;
    }
}

impl Cached for Agent {}
impl Cached for Model {}
impl Cached for Recipe {}
impl Cached for ServiceAccount {}
impl Cached for Role {}
impl Cached for RoleBinding {}
impl Cached for ConfigMap {}
impl Cached for Service {}
impl Cached for NetworkPolicy {}
impl Cached for PersistentVolumeClaim {}

impl Cached for StatefulSet {
    fn prune(&mut self) {
        self.meta_mut().managed_fields = None;
        if let Some(spec) = &mut self.spec {
            spec.template = k8s_openapi::api::core::v1::PodTemplateSpec::default();
        }
    }
}

/// The `metadata.generation` the operator last wrote to each StatefulSet (by `namespace/name`),
/// so a spec change someone else made (the generation moved past it) is noticed without
/// caching the pod template. Empty after a restart: until its next write, a StatefulSet's
/// drift is not noticed.
#[derive(Debug, Default)]
pub struct WrittenGenerations(Mutex<std::collections::HashMap<String, i64>>);

impl WrittenGenerations {
    /// Records the generation a write left.
    pub fn record(&self, key: String, generation: Option<i64>) {
        if let Some(generation) = generation {
            self.0.lock().unwrap_or_else(PoisonError::into_inner).insert(key, generation);
        }
    }

    /// Whether the object's spec changed since the operator's last write.
    pub fn drifted(&self, key: &str, generation: Option<i64>) -> bool {
        let written = self.0.lock().unwrap_or_else(PoisonError::into_inner).get(key).copied();
        matches!((written, generation), (Some(written), Some(now)) if now > written)
    }
}

/// The stores, with their writers until the controller takes them.
pub struct Caches {
    /// The readers.
    pub stores: Stores,
    /// What the operator last wrote to the StatefulSets.
    pub written: WrittenGenerations,
    writers: Mutex<Option<Writers>>,
}

impl Default for Caches {
    fn default() -> Self {
        let writers = Writers::new();
        Self { stores: writers.readers(), written: WrittenGenerations::default(), writers: Mutex::new(Some(writers)) }
    }
}

impl Caches {
    /// The writers, for the controller that feeds the stores; `None` once taken.
    pub fn take_writers(&self) -> Option<Writers> {
        self.writers.lock().unwrap_or_else(PoisonError::into_inner).take()
    }

    /// Records objects in the stores as watch events would, for code that drives reconciles
    /// without watches (tests, benchmarks). Does nothing once a controller took the writers.
    pub fn observe<'a>(&self, objects: impl IntoIterator<Item = &'a serde_json::Value>) {
        if let Some(writers) = self.writers.lock().unwrap_or_else(PoisonError::into_inner).as_mut() {
            for object in objects {
                writers.observe(object);
            }
        }
    }
}

/// A copy of the object `name` in `namespace` of `store`.
pub fn find<K>(store: &Store<K>, namespace: &str, name: &str) -> Option<K>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    store.get(&ObjectRef::new(name).within(namespace)).map(|found| (*found).clone())
}

/// Every object of `store` in `namespace`, by name (as a LIST would give them: messages and
/// choices between equals do not depend on the store's hash order).
pub fn in_namespace<K>(store: &Store<K>, namespace: &str) -> Vec<Arc<K>>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    let mut found: Vec<Arc<K>> =
        store.state().into_iter().filter(|o| o.meta().namespace.as_deref() == Some(namespace)).collect();
    found.sort_by(|a, b| a.meta().name.cmp(&b.meta().name));
    found
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::StatefulSetSpec;
    use k8s_openapi::api::core::v1::{PodSpec, PodTemplateSpec};

    use super::*;

    #[test]
    fn a_spec_change_after_the_operators_write_is_drift_and_its_own_write_is_not() {
        let written = WrittenGenerations::default();
        assert!(!written.drifted("demo/a", Some(3)), "nothing written yet (after a restart): no drift known");
        written.record("demo/a".into(), Some(3));
        assert!(!written.drifted("demo/a", Some(3)), "status updates keep the generation");
        assert!(written.drifted("demo/a", Some(4)), "someone changed the spec");
    }

    #[test]
    fn a_cached_stateful_set_keeps_its_claim_templates_and_status_but_not_its_pod_template() {
        let mut stateful_set = StatefulSet {
            spec: Some(StatefulSetSpec {
                template: PodTemplateSpec { spec: Some(PodSpec::default()), ..PodTemplateSpec::default() },
                volume_claim_templates: Some(vec![PersistentVolumeClaim::default()]),
                ..StatefulSetSpec::default()
            }),
            ..StatefulSet::default()
        };
        stateful_set.metadata.managed_fields = Some(Vec::new());
        stateful_set.prune();
        let spec = stateful_set.spec.unwrap();
        assert_eq!(spec.template, PodTemplateSpec::default());
        assert_eq!(spec.volume_claim_templates.map(|t| t.len()), Some(1));
        assert!(stateful_set.metadata.managed_fields.is_none());
    }
}
