//! The operator's caches, fed by the controller's own watches (each kind is watched once;
//! children only through the operator's `managed-by` label, data claims through the agent pods'
//! name label). A reconcile reads its Model, Recipe, family and existing children from here
//! instead of GETting them, so an agent at rest costs the API server nothing. The kinds the
//! reconcile reads whole (Agents, Models, Recipes) are reflector stores of objects without what
//! the operator never reads ([`Cached`]); the agents' children are compact [`Index`]es of what
//! the reconcile reads of each (see [`children`]).

pub mod children;

pub use self::children::{ChildIndex, ChildState, ClaimState, Index, WorkloadState, WrittenVersions, spec_hash};

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
    /// The agents' StatefulSets.
    pub stateful_sets: Index<WorkloadState>,
    /// The agents' data claims (made by the StatefulSet controller from the claim template).
    pub data_claims: Index<ClaimState>,
    /// The agents' ServiceAccounts.
    pub service_accounts: ChildIndex,
    /// The agents' Roles.
    pub roles: ChildIndex,
    /// The agents' RoleBindings.
    pub role_bindings: ChildIndex,
    /// The agents' RuntimeConfig ConfigMaps.
    pub config_maps: ChildIndex,
    /// The agents' Services (headless and API).
    pub services: ChildIndex,
    /// The agents' NetworkPolicies.
    pub network_policies: ChildIndex,
}

/// The writing ends of the reflector stores in [`Stores`], moved into the controller's
/// reflectors when it starts.
pub struct Writers {
    /// Agents.
    pub agents: Writer<Agent>,
    /// Models.
    pub models: Writer<Model>,
    /// Recipes.
    pub recipes: Writer<Recipe>,
}

impl Writers {
    fn new() -> Self {
        Self { agents: Writer::default(), models: Writer::default(), recipes: Writer::default() }
    }

    fn readers(&self) -> Stores {
        Stores {
            agents: self.agents.as_reader(),
            models: self.models.as_reader(),
            recipes: self.recipes.as_reader(),
            stateful_sets: Index::default(),
            data_claims: Index::default(),
            service_accounts: ChildIndex::default(),
            roles: ChildIndex::default(),
            role_bindings: ChildIndex::default(),
            config_maps: ChildIndex::default(),
            services: ChildIndex::default(),
            network_policies: ChildIndex::default(),
        }
    }

    /// Records `object` (any kind the stores hold, as JSON) in its store or index as a watch
    /// event would; other kinds are ignored. Returns whether it was recorded.
    pub fn observe(&mut self, indexes: &Stores, object: &serde_json::Value) -> bool {
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
        fn index<K, T>(index: &Index<T>, object: &serde_json::Value) -> bool
        where
            K: Resource + serde::de::DeserializeOwned,
            T: children::Summary<K>,
        {
            match serde_json::from_value::<K>(object.clone()) {
                Ok(parsed) => {
                    index.apply_event(&watcher::Event::Apply(parsed));
                    true
                }
                Err(_) => false,
            }
        }
        match object["kind"].as_str().unwrap_or_default() {
            "Agent" => put(&mut self.agents, object),
            "Model" => put(&mut self.models, object),
            "Recipe" => put(&mut self.recipes, object),
            "StatefulSet" => index::<StatefulSet, _>(&indexes.stateful_sets, object),
            "PersistentVolumeClaim" => index::<PersistentVolumeClaim, _>(&indexes.data_claims, object),
            "ServiceAccount" => index::<ServiceAccount, _>(&indexes.service_accounts, object),
            "Role" => index::<Role, _>(&indexes.roles, object),
            "RoleBinding" => index::<RoleBinding, _>(&indexes.role_bindings, object),
            "ConfigMap" => index::<ConfigMap, _>(&indexes.config_maps, object),
            "Service" => index::<Service, _>(&indexes.services, object),
            "NetworkPolicy" => index::<NetworkPolicy, _>(&indexes.network_policies, object),
            _ => false,
        }
    }
}

/// A kind the reflector stores hold, and what of it they drop: `managedFields` (the operator
/// never reads them).
pub trait Cached: Resource {
    /// Drops what the operator never reads.
    fn prune(&mut self) {
        self.meta_mut().managed_fields = None;
    }
}

/// An Agent also drops what its runtime reports and the operator never reads (the offered
/// tools, token usage) and `kubectl apply`'s copy of the whole object.
impl Cached for Agent {
    fn prune(&mut self) {
        self.metadata.managed_fields = None;
        if let Some(annotations) = &mut self.metadata.annotations {
            annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
        }
        if let Some(status) = &mut self.status {
            status.tools = Vec::new();
            status.usage = None;
        }
    }
}

impl Cached for Model {}
impl Cached for Recipe {}

/// The stores, with their writers until the controller takes them.
pub struct Caches {
    /// The readers.
    pub stores: Stores,
    /// The versions the operator's writes left on its children (shared: tests carry it from
    /// one reconcile's context to the next, as one process would).
    pub written: Arc<WrittenVersions>,
    writers: Mutex<Option<Writers>>,
}

impl Default for Caches {
    fn default() -> Self {
        let writers = Writers::new();
        Self { stores: writers.readers(), written: Arc::default(), writers: Mutex::new(Some(writers)) }
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
                writers.observe(&self.stores, object);
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
