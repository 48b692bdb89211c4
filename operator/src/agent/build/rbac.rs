//! The agent's Role and RoleBinding: what its runtime may do with the Kubernetes API, and
//! nothing more. Every agent may read its own Agent and report its own status; an agent that
//! delegates may also create, read and delete Agents in its namespace (its children); an agent
//! whose Model scales to zero may read that Model (the phase of its wake, for the answer a
//! waiting request gets; its demand goes on its own Agent's status, so it needs no write on
//! the Model). The
//! operator, not this Role, keeps children inside their parent's bounds: a child outside them
//! is refused and gets no pod (see `agent::delegation`).

use agent_crds::Agent;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use kube::ResourceExt;

use super::labels::{child_meta, service_account_name};

/// API group of the Agent resource.
const AGENT_GROUP: &str = "agent-operator.dev";

/// Name of the agent's Role and RoleBinding (like the agent).
pub fn role_name(agent: &Agent) -> String {
    agent.name_any()
}

fn rule(resource: &str, verbs: &[&str], resource_names: Option<Vec<String>>) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![AGENT_GROUP.to_owned()]),
        resources: Some(vec![resource.to_owned()]),
        verbs: verbs.iter().map(|v| (*v).to_owned()).collect(),
        resource_names,
        ..PolicyRule::default()
    }
}

/// Builds the agent's Role; `wakes_model` names the agent's Model when it scales to zero.
pub fn build_role(agent: &Agent, wakes_model: Option<&str>) -> Role {
    let own = Some(vec![agent.name_any()]);
    let mut rules = vec![
        // The runtime writes `status.tools`, `status.usage` and `status.lastTask` of its own
        // Agent with server-side apply (a patch), reading it first; no other Agent's status.
        rule("agents/status", &["get", "patch"], own.clone()),
        // The runtime reads its own Agent (labels, owner, spec), never another one.
        rule("agents", &["get"], own),
    ];
    if let Some(model) = wakes_model {
        // Read-only, and only that Model: `get` is all the runtime does with it.
        rules.push(rule("models", &["get"], Some(vec![model.to_owned()])));
    }
    if agent.spec.delegation.as_ref().is_some_and(|d| d.enabled) {
        // Delegation: the runtime creates its children, follows them (list/watch, read their
        // status) and deletes them. `create` cannot be restricted by name, so this rule names
        // none; there is no update or patch, so a child's spec cannot be changed after the
        // operator checked it, and the bounds are enforced by the operator and the chart's
        // ValidatingAdmissionPolicy.
        rules.push(rule("agents", &["create", "get", "list", "watch", "delete"], None));
    }
    Role { metadata: child_meta(agent, role_name(agent)), rules: Some(rules) }
}

/// Builds the RoleBinding giving the agent's Role to its ServiceAccount.
pub fn build_role_binding(agent: &Agent) -> RoleBinding {
    RoleBinding {
        metadata: child_meta(agent, role_name(agent)),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".to_owned(),
            kind: "Role".to_owned(),
            name: role_name(agent),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".to_owned(),
            name: service_account_name(agent),
            namespace: agent.namespace(),
            ..Subject::default()
        }]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(delegates: bool) -> Agent {
        let mut agent: Agent = serde_json::from_value(serde_json::json!({
            "apiVersion": "agent-operator.dev/v1alpha1", "kind": "Agent",
            "metadata": {"name": "triage", "namespace": "support", "uid": "u-1"},
            "spec": {"model": {"modelRef": {"name": "m"}}}
        }))
        .unwrap();
        if delegates {
            agent.spec.delegation = Some(agent_crds::agent::Delegation { enabled: true, ..Default::default() });
        }
        agent
    }

    #[test]
    fn an_agent_may_only_read_itself_and_patch_its_own_status() {
        let role = build_role(&agent(false), None);
        let rules = role.rules.unwrap();
        assert_eq!(rules.len(), 2);
        for rule in &rules {
            assert_eq!(rule.resource_names.as_deref(), Some(&["triage".to_owned()][..]), "{rule:?}");
            assert!(!rule.verbs.iter().any(|v| ["create", "delete", "update", "list", "watch"].contains(&v.as_str())));
        }
        let binding = build_role_binding(&agent(false));
        let subject = &binding.subjects.unwrap()[0];
        assert_eq!((subject.name.as_str(), subject.namespace.as_deref()), ("triage", Some("support")));
    }

    #[test]
    fn an_agent_of_a_scale_to_zero_model_may_only_read_that_model() {
        let rules = build_role(&agent(false), Some("gemma-on-demand")).rules.unwrap();
        assert_eq!(rules.len(), 3);
        let model = rules.last().unwrap();
        assert_eq!(model.resources.as_deref(), Some(&["models".to_owned()][..]));
        assert_eq!(model.verbs, ["get"]);
        assert_eq!(model.resource_names.as_deref(), Some(&["gemma-on-demand".to_owned()][..]));
    }

    #[test]
    fn a_delegating_agent_may_create_and_delete_agents_but_never_update_them_and_runs_as_its_delegator() {
        let role = build_role(&agent(true), None);
        let rules = role.rules.unwrap();
        let delegation = rules.last().unwrap();
        assert_eq!(delegation.verbs, ["create", "get", "list", "watch", "delete"]);
        assert_eq!(delegation.resource_names, None);
        assert!(!rules.iter().flat_map(|r| &r.verbs).any(|v| v == "update" || v == "*"));
        assert_eq!(build_role_binding(&agent(true)).subjects.unwrap()[0].name, "triage-delegator");
        assert_eq!(build_role_binding(&agent(true)).role_ref.name, "triage");
    }
}
