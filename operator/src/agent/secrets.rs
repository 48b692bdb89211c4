//! The Secret keys an agent's pod needs mounted: API auth, model and embedding keys, Qdrant key,
//! MCP tokens and a system prompt kept in a Secret.

use std::collections::{BTreeMap, BTreeSet};

use agent_crds::agent::Agent;
use agent_crds::model::Model;
use agent_crds::references::SecretKeyReference;

/// Secret name -> keys the pod reads from it.
pub type SecretKeys = BTreeMap<String, BTreeSet<String>>;

/// Every Secret key the agent's pod reads, given the models it uses.
pub fn referenced_secret_keys(agent: &Agent, models: &[&Model]) -> SecretKeys {
    let spec = &agent.spec;
    let mut refs: Vec<&SecretKeyReference> = Vec::new();
    refs.extend(spec.api.auth_secret_ref.as_ref());
    refs.extend(spec.persona.system_prompt_from.as_ref().and_then(|v| v.secret_key_ref.as_ref()));
    refs.extend(spec.memory.qdrant.as_ref().and_then(|q| q.api_key_secret_ref.as_ref()));
    refs.extend(spec.tools.iter().filter_map(|t| t.agent.as_ref()).filter_map(|a| a.token_secret_ref.as_ref()));
    for mcp in spec.tools.iter().filter_map(|t| t.mcp.as_ref()) {
        refs.extend(mcp.auth_secret_ref.as_ref());
        refs.extend(mcp.headers_from.iter().map(|h| &h.secret_key_ref));
    }
    refs.extend(models.iter().filter_map(|m| m.spec.endpoint.as_ref()).filter_map(|e| e.api_key_secret_ref.as_ref()));
    let mut keys = SecretKeys::new();
    for r in refs {
        keys.entry(r.name.clone()).or_default().insert(r.key.clone());
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mcp_bearer_tokens_and_header_values_are_mounted_from_their_secrets() {
        let agent: Agent = serde_yaml::from_str(
            "apiVersion: agent-operator.dev/v1alpha1\nkind: Agent\nmetadata: {name: triage, namespace: support}\nspec:\n  model: {modelRef: {name: m}}\n  tools:\n  - name: tickets\n    mcp:\n      url: http://tickets/mcp\n      authSecretRef: {name: tickets-mcp, key: token}\n      headersFrom: [{name: X-Api-Key, secretKeyRef: {name: tickets-mcp, key: api-key}}, {name: X-Tenant, secretKeyRef: {name: tenant, key: id}}]\n",
        )
        .unwrap();
        let keys = referenced_secret_keys(&agent, &[]);
        assert_eq!(keys["tickets-mcp"], BTreeSet::from(["api-key".to_owned(), "token".to_owned()]));
        assert_eq!(keys["tenant"], BTreeSet::from(["id".to_owned()]));
    }
}
