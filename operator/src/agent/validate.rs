//! Validate: the rules the CRD schema cannot express, checked before anything is built. Pure.

use agent_crds::Agent;
use agent_crds::agent::{BuiltinToolKind, TaskMode};
use agent_crds::conditions::reason;
use agent_crds::render::render_recipe_config;
use agent_crds::schedule::{Precision, parse_schedule};
use kube::ResourceExt;

use super::dereference::Observed;
use super::status::{Outcome, render_outcome};
use crate::quantity::parse_bytes;

/// Longest Agent name: the StatefulSet's `controller-revision-hash` label (`<name>-<10 chars>`)
/// must fit in 63 characters.
pub const MAX_AGENT_NAME: usize = 52;

/// Checks the agent's spec; returns every problem found, in one message.
pub fn validate(agent: &Agent) -> Result<(), String> {
    let mut problems = Vec::new();
    let name = agent.name_any();
    if name.len() > MAX_AGENT_NAME {
        problems.push(format!("name {name:?} is longer than {MAX_AGENT_NAME} characters"));
    }
    let spec = &agent.spec;
    if spec.task.mode == TaskMode::Schedule
        && let Some(schedule) = &spec.task.schedule
        && let Err(invalid) = parse_schedule(schedule, Precision::Minutes)
    {
        problems.push(format!("task.{invalid}"));
    }
    if spec.task.mode != TaskMode::Chat && spec.task.input.as_deref().is_none_or(str::is_empty) {
        problems.push(format!("task.mode {:?} needs task.input", spec.task.mode));
    }
    if parse_bytes(&spec.memory.storage.size).is_none_or(|bytes| bytes == 0) {
        problems.push(format!("memory.storage.size {:?} is not a positive quantity", spec.memory.storage.size));
    }
    for tool in &spec.tools {
        if let Some(builtin) = &tool.builtin {
            for url in &builtin.allowed_urls {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    problems
                        .push(format!("tool {}: allowed URL {url:?} must start with http:// or https://", tool.name));
                }
            }
            if builtin.kind != BuiltinToolKind::HttpGet && !builtin.allowed_urls.is_empty() {
                problems.push(format!("tool {}: allowedUrls only applies to httpGet", tool.name));
            }
        }
        let calls_itself = tool.agent.as_ref().is_some_and(|other| {
            other.name.as_deref() == Some(name.as_str())
                && other.namespace.as_deref().is_none_or(|n| Some(n) == agent.metadata.namespace.as_deref())
        });
        if calls_itself {
            problems.push(format!("tool {}: an agent cannot call itself", tool.name));
        }
    }
    if spec.runtime.image.as_deref().is_some_and(|image| image.trim().is_empty() || image.contains(char::is_whitespace))
    {
        problems.push("runtime.image must be an image reference without spaces".to_owned());
    }
    if problems.is_empty() { Ok(()) } else { Err(problems.join("; ")) }
}

/// Checks the agent's recipe: it resolved, the agent's parameters suit it, and its templates
/// render. Done before the model is looked at, so a bad recipe is reported even while the model
/// is missing.
pub fn validate_recipe(agent: &Agent, observed: &Observed) -> Result<(), Outcome> {
    let Some(knowledge) = &agent.spec.knowledge else { return Ok(()) };
    if let Some(message) = &observed.recipe_not_found {
        return Err(Outcome::InvalidRecipe { reason: reason::RECIPE_NOT_FOUND, message: message.clone() });
    }
    match &observed.references.recipe {
        Some(recipe) => render_recipe_config(knowledge, recipe).map(drop).map_err(|e| render_outcome(&e)),
        None => Ok(()),
    }
}
