//! Objects read from manifest files instead of a cluster: what the runtime's local mode and
//! offline rendering (GitOps review, tests) resolve an Agent's references against.

use kube::ResourceExt;
use serde::Deserialize;

use crate::Agent;
use crate::model::Model;
use crate::recipe::Recipe;
use crate::render::ResolvedReferences;
use k8s_openapi::api::core::v1::ConfigMap;

/// Objects read from manifests, by kind; other kinds are ignored.
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

/// A document that is not valid YAML or not a valid object of its kind.
#[derive(Debug, thiserror::Error)]
#[error("document {index}: {source}")]
pub struct ParseError {
    /// Position of the document in the stream, from 0.
    pub index: usize,
    /// The parse error, with line and column.
    #[source]
    pub source: serde_yaml::Error,
}

impl Manifests {
    /// Parses a multi-document YAML stream and adds its objects.
    pub fn add_yaml(&mut self, text: &str) -> Result<(), ParseError> {
        for (index, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
            let error = |source| ParseError { index, source };
            let value = serde_yaml::Value::deserialize(document).map_err(error)?;
            match value.get("kind").and_then(serde_yaml::Value::as_str) {
                Some("Agent") => self.agents.push(serde_yaml::from_value(value).map_err(error)?),
                Some("Model") => self.models.push(serde_yaml::from_value(value).map_err(error)?),
                Some("Recipe") => self.recipes.push(serde_yaml::from_value(value).map_err(error)?),
                Some("ConfigMap") => self.config_maps.push(serde_yaml::from_value(value).map_err(error)?),
                _ => {}
            }
        }
        Ok(())
    }

    /// Parses one multi-document YAML stream.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let mut manifests = Self::default();
        manifests.add_yaml(text)?;
        Ok(manifests)
    }

    /// Models in the agent's namespace.
    pub fn models_for(&self, agent: &Agent) -> Vec<Model> {
        self.models.iter().filter(|m| m.namespace() == agent.namespace()).cloned().collect()
    }

    /// Resolves everything the agent references except its chat model, which the caller picks
    /// (by name, or through a scheduler for selectors). The recipe is the `Recipe` of that name in
    /// the agent's namespace, else the built-in one, as in a cluster.
    pub fn references(&self, agent: &Agent, model: Option<Model>) -> ResolvedReferences {
        let namespace = agent.namespace();
        let mut references = ResolvedReferences { model, ..ResolvedReferences::default() };
        if let Some(wanted) = &agent.spec.memory.embedding_model_ref {
            references.embedding_model = self.models_for(agent).into_iter().find(|m| m.name_any() == wanted.name);
        }
        if let Some(knowledge) = &agent.spec.knowledge {
            let object =
                self.recipes.iter().find(|r| r.namespace() == namespace && r.name_any() == knowledge.recipe).cloned();
            references.recipe = crate::catalogue::resolve(&knowledge.recipe, object);
        }
        for config_map in self.config_maps.iter().filter(|cm| cm.namespace() == namespace) {
            for (key, value) in config_map.data.iter().flatten() {
                references.config_map_values.insert((config_map.name_any(), key.clone()), value.clone());
            }
        }
        if let Some(ca) =
            references.model.as_ref().and_then(|m| m.spec.endpoint.as_ref()).and_then(|e| e.ca_config_map_ref.as_ref())
        {
            references.model_ca_pem = references.config_map_values.get(&(ca.name.clone(), ca.key.clone())).cloned();
        }
        references
    }
}
