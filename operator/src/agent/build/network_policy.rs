//! The agent's NetworkPolicy. Ingress: the API port is reachable from every namespace or from
//! the namespaces listed in `spec.api.allowedNamespaces` (plus the agent's own), and from the pods
//! of Agents that name this one as an A2A tool, wherever they run (they carry the label
//! `a2a.agent-operator.dev/<this agent>: <its namespace>`); the metrics port from every namespace
//! (Prometheus runs wherever the cluster keeps it; metrics hold counts, never content). Egress:
//! see [`super::egress`].

use agent_crds::Agent;
use agent_crds::runtime_config::{METRICS_PORT, RUNTIME_PORT, RuntimeConfig};
use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicySpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use kube::ResourceExt;

use std::collections::BTreeMap;

use super::egress::{ApiServer, egress_rules, tcp};
use super::labels::{calls_label, child_meta, selector_labels};

/// Builds the agent's NetworkPolicy for the pod running `config`.
pub fn build_network_policy(agent: &Agent, config: &RuntimeConfig, api_server: &ApiServer) -> NetworkPolicy {
    let egress = egress_rules(agent, config, api_server);
    let mut policy_types = vec!["Ingress".to_owned()];
    if egress.is_some() {
        policy_types.push("Egress".to_owned());
    }
    let allowed = &agent.spec.api.allowed_namespaces;
    let namespace_selector = if allowed.is_empty() {
        LabelSelector::default()
    } else {
        let mut names = allowed.clone();
        names.extend(agent.namespace());
        names.sort();
        names.dedup();
        LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "kubernetes.io/metadata.name".to_owned(),
                operator: "In".to_owned(),
                values: Some(names),
            }]),
            ..LabelSelector::default()
        }
    };
    NetworkPolicy {
        metadata: child_meta(agent, agent.name_any()),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(selector_labels(agent)),
                ..LabelSelector::default()
            }),
            policy_types: Some(policy_types),
            egress,
            ingress: Some(vec![
                NetworkPolicyIngressRule {
                    from: Some(vec![
                        NetworkPolicyPeer {
                            namespace_selector: Some(namespace_selector),
                            ..NetworkPolicyPeer::default()
                        },
                        NetworkPolicyPeer {
                            namespace_selector: Some(LabelSelector::default()),
                            pod_selector: Some(LabelSelector {
                                match_labels: Some(BTreeMap::from([calls_label(
                                    &agent.name_any(),
                                    &agent.namespace().unwrap_or_default(),
                                )])),
                                ..LabelSelector::default()
                            }),
                            ..NetworkPolicyPeer::default()
                        },
                    ]),
                    ports: Some(vec![tcp(RUNTIME_PORT)]),
                },
                NetworkPolicyIngressRule {
                    from: Some(vec![NetworkPolicyPeer {
                        namespace_selector: Some(LabelSelector::default()),
                        ..NetworkPolicyPeer::default()
                    }]),
                    ports: Some(vec![tcp(METRICS_PORT)]),
                },
            ]),
        }),
    }
}
