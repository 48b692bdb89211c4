//! Building an agent's children from manifests on disk instead of a cluster: what a GitOps
//! review, the snapshot tests and the schema validation see. References resolve against the
//! given objects only; Secrets are assumed to exist.

use agent_crds::Agent;
use agent_crds::manifests::{Manifests, ParseError};
use agent_crds::model_selection::{ModelResolutionError, Readiness, resolve_model};
use agent_crds::render::{RenderError, render_runtime_config};
use agent_crds::runtime_config::{ClusterAccess, PodPaths};
use kube::ResourceExt;

use crate::agent::build::egress::ApiServer;
use crate::agent::build::{BuildInput, Children, build};
use crate::agent::dereference::{ModelLookup, Observed};
use crate::agent::secrets::referenced_secret_keys;
use crate::agent::validate::validate;

/// Why manifests could not be turned into children.
#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    /// A document does not parse.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// The agent's spec or references are invalid.
    #[error("Agent {agent}: {message}")]
    Invalid {
        /// The agent.
        agent: String,
        /// What is wrong.
        message: String,
    },
}

/// Resolves an agent's references against manifests, as `dereference` does in a cluster, with
/// the model-resolution rule local mode uses too (Models on disk have no status, so they count as
/// Ready). Secrets are assumed to exist.
pub fn observe(manifests: &Manifests, agent: &Agent) -> Observed {
    let models = manifests.models_for(agent);
    let model = match resolve_model(agent, &models, Readiness::AssumedWithoutStatus) {
        Ok(model) => ModelLookup::Found(Box::new(model.clone())),
        Err(ModelResolutionError::NotFound(name)) => ModelLookup::NotFound(name),
        Err(ModelResolutionError::NoMatch(no_match)) => ModelLookup::NoMatch(no_match),
        Err(ModelResolutionError::Unspecified) => ModelLookup::NotLookedUp,
    };
    let chosen = match &model {
        ModelLookup::Found(found) => Some((**found).clone()),
        _ => None,
    };
    let references = manifests.references(agent, chosen);
    let used: Vec<&agent_crds::Model> = references.model.iter().chain(references.embedding_model.iter()).collect();
    let secret_keys = referenced_secret_keys(agent, &used);
    Observed { model, references, secret_keys, ..Observed::default() }
}

/// Validates, renders and builds the children of `agent`, as the controller would for a new agent.
pub fn children(manifests: &Manifests, agent: &Agent, runtime_image: &str) -> Result<Children, OfflineError> {
    let invalid = |message: String| OfflineError::Invalid { agent: agent.name_any(), message };
    validate(agent).map_err(invalid)?;
    let observed = observe(manifests, agent);
    let paths = PodPaths::default();
    let mut config = render_runtime_config(agent, &observed.references, &paths).map_err(|error| {
        invalid(match (&error, &observed.model) {
            (RenderError::ModelMissing(_), ModelLookup::NotFound(name)) => {
                format!("Model {name} is not in the manifests")
            }
            (RenderError::ModelMissing(_), ModelLookup::NoMatch(no_match)) => no_match.to_string(),
            _ => error.to_string(),
        })
    })?;
    config.cluster = Some(ClusterAccess::default());
    let input = BuildInput {
        agent,
        config: &config,
        paths: &paths,
        default_image: runtime_image,
        secret_keys: &observed.secret_keys,
        existing_claim_size: None,
        existing_claim_request: None,
        // Offline there is no cluster to ask; the usual API server ports are admitted.
        api_server: &ApiServer::default(),
    };
    build(&input).map_err(|e| invalid(e.to_string()))
}

/// The children as a list of JSON objects in apply order.
pub fn children_as_values(children: &Children) -> Vec<serde_json::Value> {
    let mut values = vec![
        serde_json::to_value(&children.service_account),
        serde_json::to_value(&children.role),
        serde_json::to_value(&children.role_binding),
        serde_json::to_value(&children.config_map),
        serde_json::to_value(&children.headless_service),
        serde_json::to_value(&children.service),
        serde_json::to_value(&children.network_policy),
        serde_json::to_value(&children.stateful_set),
    ];
    values.extend(children.grown_claim.as_ref().map(serde_json::to_value));
    values.into_iter().map(|v| agent_crds::crd::canonical(v.unwrap_or_default())).collect()
}
