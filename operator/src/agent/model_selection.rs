//! Binding an agent that gives a model selector to one Ready `Model`, like a PVC to a PV: an
//! existing binding is kept while it still matches; otherwise the match with the most spare
//! capacity wins (ties by name, so the choice is stable).

use agent_crds::agent::{Capability, ModelSelector};
use agent_crds::conditions::READY;
use agent_crds::model::Model;
use kube::ResourceExt;

/// Why no model matched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no Ready Model in the namespace matches the selector: {0}")]
pub struct NoMatch(pub String);

/// Picks the model for `selector` among `models`, keeping `bound` if it still qualifies.
pub fn select_model<'a>(
    selector: &ModelSelector,
    models: &'a [Model],
    bound: Option<&str>,
) -> Result<&'a Model, NoMatch> {
    let mut rejected = Vec::new();
    let mut candidates: Vec<&Model> = models
        .iter()
        .filter(|model| match mismatch(selector, model) {
            None => true,
            Some(why) => {
                rejected.push(format!("{} ({why})", model.name_any()));
                false
            }
        })
        .collect();
    if let Some(kept) = candidates.iter().find(|m| Some(m.name_any().as_str()) == bound) {
        return Ok(kept);
    }
    candidates.sort_by_key(|m| (std::cmp::Reverse(spare_capacity(m)), bound_agents(m), m.name_any()));
    candidates.first().copied().ok_or_else(|| {
        let mut why = if rejected.is_empty() { "there are no Models".to_owned() } else { rejected.join(", ") };
        if let Some(gone) = bound.filter(|name| !models.iter().any(|m| m.name_any() == *name)) {
            why = format!("{why}; the bound Model {gone} no longer exists");
        }
        NoMatch(why)
    })
}

fn mismatch(selector: &ModelSelector, model: &Model) -> Option<String> {
    let ready =
        model.status.as_ref().is_some_and(|s| s.conditions.iter().any(|c| c.type_ == READY && c.status == "True"));
    if !ready {
        return Some("not Ready".to_owned());
    }
    let caps = &model.spec.capabilities;
    for capability in &selector.capabilities {
        let has = match capability {
            Capability::Chat => caps.chat,
            Capability::Embeddings => caps.embeddings,
            Capability::Tools => caps.tools,
        };
        if !has {
            return Some(format!("lacks {capability:?}"));
        }
    }
    if let Some(min) = selector.min_context_length
        && caps.context_length.is_none_or(|length| length < min)
    {
        return Some(format!("context length below {min}"));
    }
    let labels = model.labels();
    if let Some((key, value)) = selector.match_labels.iter().find(|(k, v)| labels.get(*k) != Some(*v)) {
        return Some(format!("label {key}={value} missing"));
    }
    None
}

/// Declared concurrency minus bound agents (as the Model controller reports them); models that
/// declare none rank after those with room. Ties go to the least loaded.
fn spare_capacity(model: &Model) -> i64 {
    model.spec.capabilities.max_concurrency.map_or(0, |max| max - bound_agents(model))
}

fn bound_agents(model: &Model) -> i64 {
    model.status.as_ref().and_then(|s| s.bound_agents).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use agent_crds::model::{ModelCapabilities, ModelEndpoint, ModelSpec, ModelStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

    use super::*;

    fn model(name: &str, ready: bool, tools: bool, max: Option<i64>, bound: i64) -> Model {
        let mut model = Model::new(
            name,
            ModelSpec {
                endpoint: Some(ModelEndpoint {
                    base_url: "http://m/v1".into(),
                    model: name.into(),
                    ..Default::default()
                }),
                capabilities: ModelCapabilities {
                    tools,
                    max_concurrency: max,
                    context_length: Some(8192),
                    ..Default::default()
                },
                ..Default::default()
            },
        );
        model.status = Some(ModelStatus {
            conditions: vec![Condition {
                type_: READY.into(),
                status: if ready { "True" } else { "False" }.into(),
                reason: "Test".into(),
                message: String::new(),
                observed_generation: None,
                last_transition_time: Time("2026-01-01T00:00:00Z".parse().unwrap()),
            }],
            bound_agents: Some(bound),
            ..Default::default()
        });
        model
    }

    fn wants_tools() -> ModelSelector {
        ModelSelector { capabilities: vec![Capability::Chat, Capability::Tools], ..Default::default() }
    }

    #[test]
    fn binds_the_ready_matching_model_with_most_spare_capacity() {
        let models = [
            model("busy", true, true, Some(4), 4),
            model("roomy", true, true, Some(8), 1),
            model("down", false, true, Some(100), 0),
        ];
        assert_eq!(select_model(&wants_tools(), &models, None).unwrap().name_any(), "roomy");
    }

    #[test]
    fn keeps_an_existing_binding_while_it_still_matches() {
        let models = [model("busy", true, true, Some(4), 4), model("roomy", true, true, Some(8), 1)];
        assert_eq!(select_model(&wants_tools(), &models, Some("busy")).unwrap().name_any(), "busy");
    }

    #[test]
    fn rebinds_when_the_bound_model_is_gone_and_explains_when_nothing_matches() {
        let models = [model("roomy", true, true, Some(8), 1)];
        assert_eq!(select_model(&wants_tools(), &models, Some("deleted")).unwrap().name_any(), "roomy");
        let no_tools = [model("plain", true, false, None, 0), model("down", false, true, None, 0)];
        let error = select_model(&wants_tools(), &no_tools, Some("deleted")).unwrap_err().to_string();
        assert!(error.contains("plain (lacks Tools)") && error.contains("down (not Ready)"), "{error}");
        assert!(error.contains("the bound Model deleted no longer exists"), "{error}");
    }

    #[test]
    fn among_models_without_declared_capacity_the_least_loaded_wins() {
        let models = [model("loaded", true, true, None, 5), model("quiet", true, true, None, 1)];
        assert_eq!(select_model(&wants_tools(), &models, None).unwrap().name_any(), "quiet");
    }
}
