//! The operator's caches: one reflector store per kind the Agent reconcile reads, fed by the
//! controller's own watches (each kind is watched once; children only through the
//! operator's `managed-by` label, data claims through the agent pods' name label). A reconcile
//! reads its Model, Recipe, family and existing children from here instead of GETting them,
//! so an agent at rest costs the API server nothing. Stored objects drop `managedFields`, the
//! largest part of most objects and one the operator never reads.

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
            K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned,
        {
            match serde_json::from_value::<K>(object.clone()) {
                Ok(mut parsed) => {
                    prune(&mut parsed);
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

/// Drops what the operator never reads from a cached object.
pub fn prune<K: Resource>(object: &mut K) {
    object.meta_mut().managed_fields = None;
}

/// The stores, with their writers until the controller takes them.
pub struct Caches {
    /// The readers.
    pub stores: Stores,
    writers: Mutex<Option<Writers>>,
}

impl Default for Caches {
    fn default() -> Self {
        let writers = Writers::new();
        Self { stores: writers.readers(), writers: Mutex::new(Some(writers)) }
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
