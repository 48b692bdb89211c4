//! Names, labels and annotations of an agent's child objects; one place so they never drift.

use std::collections::BTreeMap;

use agent_crds::Agent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::{Resource, ResourceExt};

/// The field manager of every server-side apply.
pub const FIELD_MANAGER: &str = "agent-operator";
/// `app.kubernetes.io/name` of agent children.
pub const APP_NAME: &str = "agent";
/// Label key of the instance (the Agent's name).
pub const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";
/// Label key of the app name.
pub const NAME_LABEL: &str = "app.kubernetes.io/name";
/// Label key of the managing controller; owned-object watches select on it.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Value of [`MANAGED_BY_LABEL`].
pub const MANAGED_BY: &str = "agent-operator";
/// Label naming the agent a child belongs to.
pub const AGENT_LABEL: &str = "agent-operator.dev/agent";
/// Kueue's queue label.
pub const KUEUE_QUEUE_LABEL: &str = "kueue.x-k8s.io/queue-name";
/// Pod template annotation holding the hash of the configuration; a change rolls the pod.
pub const CONFIG_HASH_ANNOTATION: &str = "agent-operator.dev/config-hash";
/// Annotation on every child of an agent (the data claim aside) holding a digest of everything
/// the operator applies in it: the operator caches children without what it does not read (the
/// StatefulSet without its pod template, the others as this digest and a version) and compares
/// this instead.
pub const SPEC_HASH_ANNOTATION: &str = "agent-operator.dev/spec-hash";
/// Key of the RuntimeConfig in the ConfigMap.
pub const RUNTIME_CONFIG_KEY: &str = "runtime-config.json";
/// Mount path of the RuntimeConfig.
pub const CONFIG_DIR: &str = "/etc/agent-runtime";
/// Name of the data volume claim template.
pub const DATA_VOLUME: &str = "data";

/// Suffix of the ServiceAccount of an agent that delegates. The chart's
/// ValidatingAdmissionPolicy recognises agent runtimes allowed to create Agents by it, so it
/// must not drift.
pub const DELEGATOR_SUFFIX: &str = "-delegator";

/// Name of the ServiceAccount the agent's pod runs as: `<agent>-delegator` when it delegates
/// (`spec.delegation.enabled`), else `<agent>`.
pub fn service_account_name(agent: &Agent) -> String {
    if agent.spec.delegation.as_ref().is_some_and(|d| d.enabled) {
        format!("{}{DELEGATOR_SUFFIX}", agent.name_any())
    } else {
        agent.name_any()
    }
}

/// Name of the RuntimeConfig ConfigMap.
pub fn config_map_name(agent: &Agent) -> String {
    format!("{}-runtime", agent.name_any())
}

/// Name of the headless Service that gives the pod its stable DNS name.
pub fn headless_service_name(agent: &Agent) -> String {
    format!("{}-headless", agent.name_any())
}

/// Name of the PVC the StatefulSet creates for its only pod.
pub fn data_claim_name(agent: &Agent) -> String {
    format!("{DATA_VOLUME}-{}-0", agent.name_any())
}

/// Labels selecting the agent's pod; stable for the agent's lifetime.
pub fn selector_labels(agent: &Agent) -> BTreeMap<String, String> {
    BTreeMap::from([(NAME_LABEL.to_owned(), APP_NAME.to_owned()), (INSTANCE_LABEL.to_owned(), agent.name_any())])
}

/// Labels of every child object.
pub fn labels(agent: &Agent) -> BTreeMap<String, String> {
    let mut labels = selector_labels(agent);
    labels.insert(MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned());
    labels.insert(AGENT_LABEL.to_owned(), agent.name_any());
    labels
}

/// Prefix of the labels that say which Agents a pod calls over A2A: `<prefix>/<callee name>`
/// with the callee's namespace as value. The callee's NetworkPolicy admits pods carrying its own.
pub const CALLS_LABEL_PREFIX: &str = "a2a.agent-operator.dev";

/// The label a pod calling Agent `name` in `namespace` carries.
pub fn calls_label(name: &str, namespace: &str) -> (String, String) {
    (format!("{CALLS_LABEL_PREFIX}/{name}"), namespace.to_owned())
}

/// Labels of the workload (StatefulSet and pod): the child labels plus Kueue's queue, which
/// admits the workload only, and one label per Agent the agent calls (for the callee's
/// NetworkPolicy); Services and ConfigMaps do not carry them.
pub fn workload_labels(agent: &Agent) -> BTreeMap<String, String> {
    let mut labels = labels(agent);
    if let Some(queue) = &agent.spec.runtime.queue_name {
        labels.insert(KUEUE_QUEUE_LABEL.to_owned(), queue.clone());
    }
    let own_namespace = agent.namespace().unwrap_or_default();
    for callee in agent.spec.tools.iter().filter_map(|t| t.agent.as_ref()) {
        if let Some(name) = &callee.name {
            let (key, value) = calls_label(name, callee.namespace.as_deref().unwrap_or(&own_namespace));
            labels.insert(key, value);
        }
    }
    labels
}

/// Metadata of a child named `name`: namespace, labels, and the Agent as controlling owner so
/// deleting the Agent deletes its children.
pub fn child_meta(agent: &Agent, name: String) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: agent.namespace(),
        labels: Some(labels(agent)),
        owner_references: agent.controller_owner_ref(&()).map(|owner| vec![owner]),
        ..ObjectMeta::default()
    }
}
