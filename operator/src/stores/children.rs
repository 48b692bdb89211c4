//! Compact indexes of the agents' children: per child, only what the reconcile reads of it.
//! The children it only compares (ServiceAccounts, Roles, RoleBindings, ConfigMaps, Services,
//! NetworkPolicies) are fed by metadata-only watches and hold two numbers each ([`ChildState`]):
//! the digest of the spec the operator applied (the child's [`SPEC_HASH_ANNOTATION`]) and the
//! version the API server gave the object. A reconcile applies a child when its digest differs
//! from the one it would build, or when its version moved past the one the operator's last write
//! left (someone else changed it). StatefulSets and data claims add the few status and size
//! fields the reconcile reads ([`WorkloadState`], [`ClaimState`]). At ten thousand agents the
//! indexes cost a few MiB, where whole objects cost hundreds.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, PoisonError, RwLock};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::Resource;
use kube::api::ObjectMeta;
use kube::runtime::watcher::Event;

use crate::agent::build::labels::SPEC_HASH_ANNOTATION;

/// What the operator knows of one child.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChildState {
    /// The child's spec digest ([`SPEC_HASH_ANNOTATION`]), if it carries one.
    pub spec_hash: Option<u64>,
    /// Its `resourceVersion`, as a number.
    pub version: u64,
}

impl ChildState {
    /// The state of an object with `meta`, versioned by its `resourceVersion`.
    pub fn of(meta: &ObjectMeta) -> Self {
        Self { spec_hash: spec_hash(meta), version: meta.resource_version.as_deref().map_or(0, number) }
    }
}

/// The digest an object carries in [`SPEC_HASH_ANNOTATION`], as a number.
pub fn spec_hash(meta: &ObjectMeta) -> Option<u64> {
    u64::from_str_radix(meta.annotations.as_ref()?.get(SPEC_HASH_ANNOTATION)?, 16).ok()
}

/// A version string as a number: etcd's revisions are numbers; anything else is hashed (only
/// equality is ever asked of it).
fn number(version: &str) -> u64 {
    version.parse().unwrap_or_else(|_| digest(&version))
}

fn digest(value: &impl Hash) -> u64 {
    let mut hasher = DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

/// The key of a child: its namespace and name.
fn key(namespace: &str, name: &str) -> u64 {
    digest(&(namespace, name))
}

/// What the reconcile reads of an agent's StatefulSet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkloadState {
    /// Its spec digest, versioned by its `generation` (its status moves its resourceVersion all
    /// the time, its generation only moves with its spec).
    pub child: ChildState,
    /// `metadata.generation`.
    pub generation: Option<i64>,
    /// `status.observedGeneration`.
    pub observed_generation: Option<i64>,
    /// `status.readyReplicas`.
    pub ready_replicas: i32,
    /// The storage its (immutable) claim template requests.
    pub claim_size: Option<String>,
}

/// What the reconcile reads of an agent's data claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimState {
    /// The storage it requests.
    pub requested: Option<String>,
}

/// What an index keeps of an object of kind `K`.
pub trait Summary<K>: Clone {
    /// The summary of `object`.
    fn of(object: &K) -> Self;
}

impl<K: Resource> Summary<K> for ChildState {
    fn of(object: &K) -> Self {
        ChildState::of(object.meta())
    }
}

impl Summary<StatefulSet> for WorkloadState {
    fn of(object: &StatefulSet) -> Self {
        let generation = object.metadata.generation;
        let status = object.status.as_ref();
        let template = object.spec.as_ref().and_then(|s| s.volume_claim_templates.as_ref()?.first().cloned());
        Self {
            child: ChildState {
                spec_hash: spec_hash(&object.metadata),
                version: generation.and_then(|g| u64::try_from(g).ok()).unwrap_or_default(),
            },
            generation,
            observed_generation: status.and_then(|s| s.observed_generation),
            ready_replicas: status.and_then(|s| s.ready_replicas).unwrap_or(0),
            claim_size: template.as_ref().and_then(requested_storage),
        }
    }
}

impl Summary<PersistentVolumeClaim> for ClaimState {
    fn of(object: &PersistentVolumeClaim) -> Self {
        Self { requested: requested_storage(object) }
    }
}

/// The storage a claim requests.
fn requested_storage(claim: &PersistentVolumeClaim) -> Option<String> {
    Some(claim.spec.as_ref()?.resources.as_ref()?.requests.as_ref()?.get("storage")?.0.clone())
}

/// One kind's children, by namespace and name, as summaries `T`.
#[derive(Clone)]
pub struct Index<T> {
    entries: Arc<RwLock<HashMap<u64, T>>>,
    /// The entries of a relist in progress, swapped in when it is complete.
    relisting: Arc<RwLock<Option<HashMap<u64, T>>>>,
}

impl<T> Default for Index<T> {
    fn default() -> Self {
        Self { entries: Arc::default(), relisting: Arc::default() }
    }
}

/// The index of the children the reconcile only compares.
pub type ChildIndex = Index<ChildState>;

impl<T: Clone> Index<T> {
    /// The summary of the child `name` in `namespace`, if it exists.
    pub fn get(&self, namespace: &str, name: &str) -> Option<T> {
        self.entries.read().unwrap_or_else(PoisonError::into_inner).get(&key(namespace, name)).cloned()
    }

    /// How many children are indexed.
    pub fn len(&self) -> usize {
        self.entries.read().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Whether no child is indexed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records a watch event, as a reflector store would.
    pub fn apply_event<K: Resource>(&self, event: &Event<K>)
    where
        T: Summary<K>,
    {
        let entry = |object: &K| {
            let meta = object.meta();
            let key = key(meta.namespace.as_deref().unwrap_or_default(), meta.name.as_deref().unwrap_or_default());
            (key, T::of(object))
        };
        match event {
            Event::Apply(object) => {
                let (key, state) = entry(object);
                self.entries.write().unwrap_or_else(PoisonError::into_inner).insert(key, state);
            }
            Event::Delete(object) => {
                let (key, _) = entry(object);
                self.entries.write().unwrap_or_else(PoisonError::into_inner).remove(&key);
            }
            Event::Init => *self.relisting.write().unwrap_or_else(PoisonError::into_inner) = Some(HashMap::new()),
            Event::InitApply(object) => {
                let (key, state) = entry(object);
                if let Some(buffer) = self.relisting.write().unwrap_or_else(PoisonError::into_inner).as_mut() {
                    buffer.insert(key, state);
                }
            }
            Event::InitDone => {
                if let Some(listed) = self.relisting.write().unwrap_or_else(PoisonError::into_inner).take() {
                    *self.entries.write().unwrap_or_else(PoisonError::into_inner) = listed;
                }
            }
        }
    }
}

/// The version of each child the operator's last write left, by kind, namespace and name, so
/// a change someone else made (the version moved on) is noticed without caching the child.
/// Empty after a restart: until its next write, a child's drift is not noticed.
#[derive(Debug, Default)]
pub struct WrittenVersions(std::sync::Mutex<HashMap<u64, u64>>);

impl WrittenVersions {
    /// Records the version a write of `kind` `namespace/name` left.
    pub fn record(&self, kind: &str, namespace: &str, name: &str, version: u64) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).insert(digest(&(kind, namespace, name)), version);
    }

    /// Whether the child changed since the operator's last write of it.
    pub fn drifted(&self, kind: &str, namespace: &str, name: &str, version: u64) -> bool {
        let written =
            self.0.lock().unwrap_or_else(PoisonError::into_inner).get(&digest(&(kind, namespace, name))).copied();
        written.is_some_and(|written| written != version)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::api::core::v1::ConfigMap;

    use super::*;

    fn config_map(name: &str, version: &str, hash: Option<&str>) -> ConfigMap {
        let mut object = ConfigMap::default();
        object.metadata.name = Some(name.to_owned());
        object.metadata.namespace = Some("demo".to_owned());
        object.metadata.resource_version = Some(version.to_owned());
        object.metadata.annotations = hash.map(|h| BTreeMap::from([(SPEC_HASH_ANNOTATION.to_owned(), h.to_owned())]));
        object
    }

    #[test]
    fn the_index_follows_watch_events_and_a_relist_replaces_it_when_complete() {
        let index = ChildIndex::default();
        index.apply_event(&Event::Apply(config_map("a", "7", Some("00000000000000ff"))));
        assert_eq!(index.get("demo", "a"), Some(ChildState { spec_hash: Some(255), version: 7 }));
        assert_eq!(index.get("other", "a"), None);
        index.apply_event(&Event::<ConfigMap>::Init);
        index.apply_event(&Event::InitApply(config_map("b", "9", None)));
        assert!(index.get("demo", "a").is_some(), "the old entries serve until the relist is complete");
        index.apply_event(&Event::<ConfigMap>::InitDone);
        assert_eq!(index.get("demo", "a"), None, "a child gone during the relist is gone");
        assert_eq!(index.get("demo", "b"), Some(ChildState { spec_hash: None, version: 9 }));
        index.apply_event(&Event::Delete(config_map("b", "10", None)));
        assert!(index.is_empty());
    }

    #[test]
    fn a_version_other_than_the_operators_last_write_is_drift() {
        let written = WrittenVersions::default();
        assert!(!written.drifted("ConfigMap", "demo", "a", 3), "nothing written yet (after a restart)");
        written.record("ConfigMap", "demo", "a", 3);
        assert!(!written.drifted("ConfigMap", "demo", "a", 3));
        assert!(written.drifted("ConfigMap", "demo", "a", 4), "someone changed it");
        assert!(!written.drifted("Service", "demo", "a", 4), "kinds are apart");
    }
}
