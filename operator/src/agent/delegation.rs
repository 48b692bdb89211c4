//! Delegation: whether an Agent created by another one (it carries the parent label) stays
//! inside its parent's `spec.delegation` bounds, and when a finished child is due for deletion.
//! Pure; the parent and siblings are read by `dereference`. The chart's
//! ValidatingAdmissionPolicy checks the same bounds at admission for requests from agent pods;
//! this check also covers children created any other way and bounds that depend on other objects
//! (the parent's existence, its children's count).

use std::collections::BTreeSet;
use std::time::Duration;

use agent_crds::Agent;
use agent_crds::agent::Delegation;
use agent_crds::render::{DEPTH_LABEL, PARENT_LABEL, delegation_depth};
use agent_crds::runtime_config::{DEFAULT_MAX_CHILDREN, DEFAULT_MAX_DEPTH};
use jiff::Timestamp;
use kube::{Resource, ResourceExt};

use super::dereference::Family;

/// Task states after which a child's task will not change any more.
pub const TERMINAL_TASK_STATES: [&str; 3] = ["completed", "failed", "cancelled"];

/// Checks a child Agent against its parent's bounds; the error names every bound it breaks.
pub fn check(child: &Agent, family: &Family) -> Result<(), String> {
    let parent_name = child.labels().get(PARENT_LABEL).cloned().unwrap_or_default();
    let Some(parent) = &family.parent else {
        return Err(format!("parent Agent {parent_name} (label {PARENT_LABEL}) does not exist in this namespace"));
    };
    let Some(bounds) = parent.spec.delegation.as_ref().filter(|d| d.enabled) else {
        return Err(format!("parent Agent {parent_name} does not have spec.delegation.enabled"));
    };
    let mut problems = Vec::new();
    let owned = child.owner_references().iter().any(|owner| {
        owner.controller == Some(true)
            && owner.kind == Agent::kind(&())
            && owner.name == parent_name
            && parent.metadata.uid.as_deref() == Some(owner.uid.as_str())
    });
    if !owned {
        problems.push(format!("it has no controller ownerReference to its parent Agent {parent_name} (matching uid)"));
    }
    let depth = delegation_depth(parent) + 1;
    if child.labels().get(DEPTH_LABEL).map(String::as_str) != Some(depth.to_string().as_str()) {
        problems.push(format!("label {DEPTH_LABEL} must be {depth} (its parent's depth plus one)"));
    }
    let max_children = bounds.max_children.unwrap_or(DEFAULT_MAX_CHILDREN);
    let older = older_siblings(child, &parent_name, &family.siblings);
    if older >= max_children as usize {
        problems.push(format!(
            "parent Agent {parent_name} already has {older} children (delegation.maxChildren is {max_children})"
        ));
    }
    let models = allowed_models(parent, bounds);
    match child.spec.model.model_ref.as_ref() {
        Some(model) if models.contains(model.name.as_str()) => {}
        Some(model) => problems.push(format!(
            "Model {} is not one the parent allows (delegation.models and its own: {})",
            model.name,
            join(&models)
        )),
        None => problems.push("a child must name its Model with model.modelRef".to_owned()),
    }
    for tool in &child.spec.tools {
        match parent.spec.tools.iter().find(|own| own.name == tool.name) {
            Some(own) if bounds.tools.contains(&tool.name) && own == tool => {}
            Some(_) if bounds.tools.contains(&tool.name) => {
                problems.push(format!("tool {} differs from the parent's tool entry of that name", tool.name));
            }
            _ => problems.push(format!("tool {} is not in the parent's delegation.tools", tool.name)),
        }
    }
    let secrets = secret_references(child);
    if !secrets.is_empty() {
        problems.push(format!("a child cannot reference Secrets ({})", secrets.join(", ")));
    }
    if child.spec.egress != agent_crds::agent::Egress::default() {
        problems.push(
            "a child cannot widen its egress (egress.policy Unrestricted or egress.to): it gets the egress its \
             spec implies"
                .to_owned(),
        );
    }
    if let Some(own) = child.spec.delegation.as_ref().filter(|d| d.enabled) {
        let parent_depth = bounds.max_depth.unwrap_or(DEFAULT_MAX_DEPTH);
        let child_depth = own.max_depth.unwrap_or(DEFAULT_MAX_DEPTH);
        if child_depth >= parent_depth {
            problems.push(format!(
                "delegation.maxDepth {child_depth} must be below the parent's {parent_depth} (a child that \
                 delegates gets at most one level less)"
            ));
        }
        let child_max = own.max_children.unwrap_or(DEFAULT_MAX_CHILDREN);
        if child_max > max_children {
            problems.push(format!("delegation.maxChildren {child_max} exceeds the parent's {max_children}"));
        }
        let extra_models: Vec<&str> = own.models.iter().map(String::as_str).filter(|m| !models.contains(m)).collect();
        if !extra_models.is_empty() {
            problems.push(format!("delegation.models {} are not allowed by the parent", extra_models.join(", ")));
        }
        let extra_tools: Vec<&str> =
            own.tools.iter().map(String::as_str).filter(|t| !bounds.tools.iter().any(|p| p == t)).collect();
        if !extra_tools.is_empty() {
            problems.push(format!("delegation.tools {} are not in the parent's", extra_tools.join(", ")));
        }
    }
    if problems.is_empty() { Ok(()) } else { Err(format!("delegation refused: {}", problems.join("; "))) }
}

/// Children of `parent` created before `child` (by creation time, then name) and not being
/// deleted; the first `maxChildren` of them are the ones allowed.
fn older_siblings(child: &Agent, parent: &str, siblings: &[Agent]) -> usize {
    let key = |agent: &Agent| (agent.creation_timestamp().map(|t| t.0), agent.name_any());
    let own = key(child);
    siblings
        .iter()
        .filter(|s| s.labels().get(PARENT_LABEL).map(String::as_str) == Some(parent))
        .filter(|s| s.name_any() != child.name_any() && s.metadata.deletion_timestamp.is_none())
        .filter(|s| key(s) < own)
        .count()
}

/// The Models a child of `parent` may use: its delegation list and its own bound or named Model.
fn allowed_models<'a>(parent: &'a Agent, bounds: &'a Delegation) -> BTreeSet<&'a str> {
    let own = parent
        .status
        .as_ref()
        .and_then(|s| s.bound_model.as_deref())
        .or_else(|| parent.spec.model.model_ref.as_ref().map(|r| r.name.as_str()));
    bounds.models.iter().map(String::as_str).chain(own).collect()
}

fn join(names: &BTreeSet<&str>) -> String {
    names.iter().copied().collect::<Vec<_>>().join(", ")
}

/// Where the child's spec references a Secret, as field paths.
fn secret_references(agent: &Agent) -> Vec<String> {
    let spec = &agent.spec;
    let mut found = Vec::new();
    if spec.persona.system_prompt_from.as_ref().is_some_and(|v| v.secret_key_ref.is_some()) {
        found.push("persona.systemPromptFrom.secretKeyRef".to_owned());
    }
    if spec.api.auth_secret_ref.is_some() {
        found.push("api.authSecretRef".to_owned());
    }
    if spec.memory.qdrant.as_ref().is_some_and(|q| q.api_key_secret_ref.is_some()) {
        found.push("memory.qdrant.apiKeySecretRef".to_owned());
    }
    for tool in &spec.tools {
        if let Some(mcp) = &tool.mcp {
            if mcp.auth_secret_ref.is_some() {
                found.push(format!("tools[{}].mcp.authSecretRef", tool.name));
            }
            if !mcp.headers_from.is_empty() {
                found.push(format!("tools[{}].mcp.headersFrom", tool.name));
            }
        }
        if tool.agent.as_ref().is_some_and(|a| a.token_secret_ref.is_some()) {
            found.push(format!("tools[{}].agent.tokenSecretRef", tool.name));
        }
    }
    found
}

/// What happens to a child whose task finished, under its parent's `ttlSecondsAfterFinished`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// No TTL, or no finished task: the child stays.
    Keep,
    /// The TTL has passed: delete the child.
    Due,
    /// The TTL passes after this long: look again then.
    In(Duration),
}

/// Whether `child`'s last task finished more than the parent's TTL before `now`.
pub fn expiry(child: &Agent, parent: &Agent, now: Timestamp) -> Expiry {
    let Some(ttl) = parent.spec.delegation.as_ref().and_then(|d| d.ttl_seconds_after_finished) else {
        return Expiry::Keep;
    };
    let Some(task) = child.status.as_ref().and_then(|s| s.last_task.as_ref()) else { return Expiry::Keep };
    if !TERMINAL_TASK_STATES.contains(&task.state.as_str()) {
        return Expiry::Keep;
    }
    let Some(finished) = task.finished.as_deref().and_then(|f| f.parse::<Timestamp>().ok()) else {
        return Expiry::Keep;
    };
    let elapsed = if now > finished { now.duration_since(finished).unsigned_abs() } else { Duration::ZERO };
    match Duration::from_secs(u64::from(ttl)).checked_sub(elapsed) {
        Some(rest) if !rest.is_zero() => Expiry::In(rest),
        _ => Expiry::Due,
    }
}

#[cfg(test)]
mod tests;
