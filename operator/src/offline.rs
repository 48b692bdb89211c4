//! Building an agent's children from manifests on disk instead of a cluster: what a GitOps
//! review, the snapshot tests and the schema validation see. References resolve against the
//! given objects only; Secrets are assumed to exist.

use agent_crds::Agent;
use agent_crds::model::Model;
use agent_crds::recipe::Recipe;
use agent_crds::render::render_runtime_config;
use agent_crds::runtime_config::PodPaths;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use serde::Deserialize;

use crate::agent::build::{BuildInput, Children, build};
use crate::agent::dereference::{ModelLookup, Observed};
use crate::agent::model_selection::select_model;
use crate::agent::secrets::referenced_secret_keys;
use crate::agent::validate::validate;

/// Objects read from manifests, by kind.
#[derive(Clone, Debug, Default)]
pub struct Manifests {
    /// Agents.
    pub agents: Vec<Agent>,
    /// Models.
    pub models: Vec<Model>,
    /// Recipes.
    pub recipes: Vec<Recipe>,
    /// ConfigMaps.
    pub config_maps: Vec<ConfigMap>,
}

/// Why manifests could not be turned into children.
#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    /// A document is not valid YAML or not a valid object of its kind.
    #[error("document {index}: {source}")]
    Parse {
        /// Position of the document in the stream.
        index: usize,
        /// The parse error.
        source: serde_yaml::Error,
    },
    /// The agent's spec or references are invalid.
    #[error("Agent {agent}: {message}")]
    Invalid {
        /// The agent.
        agent: String,
        /// What is wrong.
        message: String,
    },
}

impl Manifests {
    /// Parses a multi-document YAML stream, keeping the kinds it knows and skipping the rest.
    pub fn parse(text: &str) -> Result<Self, OfflineError> {
        let mut manifests = Self::default();
        for (index, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
            let value =
                serde_yaml::Value::deserialize(document).map_err(|source| OfflineError::Parse { index, source })?;
            let parse_err = |source| OfflineError::Parse { index, source };
            match value.get("kind").and_then(serde_yaml::Value::as_str) {
                Some("Agent") => manifests.agents.push(serde_yaml::from_value(value).map_err(parse_err)?),
                Some("Model") => manifests.models.push(serde_yaml::from_value(value).map_err(parse_err)?),
                Some("Recipe") => manifests.recipes.push(serde_yaml::from_value(value).map_err(parse_err)?),
                Some("ConfigMap") => manifests.config_maps.push(serde_yaml::from_value(value).map_err(parse_err)?),
                _ => {}
            }
        }
        Ok(manifests)
    }

    /// Resolves an agent's references against these manifests, as `dereference` does in a cluster.
    pub fn observe(&self, agent: &Agent) -> Observed {
        let namespace = agent.namespace();
        let same_namespace = |other: Option<String>| other == namespace;
        let models: Vec<Model> = self.models.iter().filter(|m| same_namespace(m.namespace())).cloned().collect();
        let model = match (&agent.spec.model.model_ref, &agent.spec.model.selector) {
            (Some(reference), _) => models.iter().find(|m| m.name_any() == reference.name).map_or_else(
                || ModelLookup::NotFound(reference.name.clone()),
                |m| ModelLookup::Found(Box::new(m.clone())),
            ),
            (None, Some(selector)) => match select_model(selector, &models, None) {
                Ok(model) => ModelLookup::Found(Box::new(model.clone())),
                Err(no_match) => ModelLookup::NoMatch(no_match),
            },
            (None, None) => ModelLookup::NotLookedUp,
        };
        let mut observed = Observed { model, ..Observed::default() };
        if let ModelLookup::Found(model) = &observed.model {
            observed.references.model = Some((**model).clone());
        }
        if let Some(wanted) = &agent.spec.memory.embedding_model_ref {
            observed.references.embedding_model = models.iter().find(|m| m.name_any() == wanted.name).cloned();
        }
        if let Some(knowledge) = &agent.spec.knowledge {
            observed.references.recipe = self
                .recipes
                .iter()
                .find(|r| same_namespace(r.namespace()) && r.name_any() == knowledge.recipe)
                .cloned();
        }
        for cm in self.config_maps.iter().filter(|cm| same_namespace(cm.namespace())) {
            for (key, value) in cm.data.iter().flatten() {
                observed.references.config_map_values.insert((cm.name_any(), key.clone()), value.clone());
            }
        }
        let used: Vec<&Model> =
            observed.references.model.iter().chain(observed.references.embedding_model.iter()).collect();
        observed.secret_keys = referenced_secret_keys(agent, &used);
        observed.secret_versions =
            observed.secret_keys.keys().map(|name| (name.clone(), "offline".to_owned())).collect();
        observed
    }

    /// Validates, renders and builds the children of `agent`, as the controller would for a new agent.
    pub fn children(&self, agent: &Agent, runtime_image: &str) -> Result<Children, OfflineError> {
        let invalid = |message: String| OfflineError::Invalid { agent: agent.name_any(), message };
        validate(agent).map_err(invalid)?;
        let observed = self.observe(agent);
        let paths = PodPaths::default();
        let config = render_runtime_config(agent, &observed.references, &paths).map_err(|e| invalid(e.to_string()))?;
        let input = BuildInput {
            agent,
            config: &config,
            paths: &paths,
            default_image: runtime_image,
            secret_keys: &observed.secret_keys,
            secret_versions: &observed.secret_versions,
            existing_claim_size: None,
            existing_claim_request: None,
        };
        build(&input).map_err(|e| invalid(e.to_string()))
    }
}

/// The children as a list of JSON objects in apply order.
pub fn children_as_values(children: &Children) -> Vec<serde_json::Value> {
    let mut values = vec![
        serde_json::to_value(&children.service_account),
        serde_json::to_value(&children.config_map),
        serde_json::to_value(&children.headless_service),
        serde_json::to_value(&children.service),
        serde_json::to_value(&children.network_policy),
        serde_json::to_value(&children.stateful_set),
    ];
    values.extend(children.grown_claim.as_ref().map(serde_json::to_value));
    values.into_iter().map(Result::unwrap_or_default).collect()
}
