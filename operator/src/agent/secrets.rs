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
    refs.extend(spec.tools.iter().filter_map(|t| t.mcp.as_ref()).filter_map(|m| m.auth_secret_ref.as_ref()));
    refs.extend(models.iter().filter_map(|m| m.spec.endpoint.as_ref()).filter_map(|e| e.api_key_secret_ref.as_ref()));
    let mut keys = SecretKeys::new();
    for r in refs {
        keys.entry(r.name.clone()).or_default().insert(r.key.clone());
    }
    keys
}
