//! Which `Model` an Agent uses: the one rule the operator's scheduler, offline rendering and the
//! runtime's local mode share. A `modelRef` names the Model; a selector binds one like a PVC to a
//! PV: an existing binding is kept while it still matches; otherwise the match with the most
//! spare capacity wins (ties by name, so the choice is stable). Every rejected Model is explained.

use kube::ResourceExt;

use crate::agent::{Agent, Capability, ModelSelector};
use crate::conditions::{READY, holds};
use crate::model::Model;

/// Why no model matched a selector: each Model and why it was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no Ready Model in the namespace matches the selector: {0}")]
pub struct NoMatch(pub String);

/// How the rule learns whether a Model is Ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// From the Model's `Ready` condition, as the Model controller wrote it (in a cluster).
    FromStatus,
    /// Manifests on disk were never observed by a controller: a Model without a `Ready` condition
    /// counts as Ready. One whose status says otherwise is still rejected.
    AssumedWithoutStatus,
}

/// Why an Agent's Model could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelResolutionError {
    /// `modelRef` names a Model that is not among the candidates.
    #[error("Model {0} not found")]
    NotFound(String),
    /// No Model matches the selector.
    #[error(transparent)]
    NoMatch(#[from] NoMatch),
    /// The Agent sets neither `modelRef` nor `selector` (the CRD's rule forbids it; files read
    /// locally never met that rule).
    #[error("the Agent sets neither spec.model.modelRef nor spec.model.selector")]
    Unspecified,
}

/// The Model `agent` uses among `models` (those of its namespace): the one `modelRef` names, else
/// the one the scheduler binds for its selector, keeping `status.boundModel` while it matches.
pub fn resolve_model<'a>(
    agent: &Agent,
    models: &'a [Model],
    readiness: Readiness,
) -> Result<&'a Model, ModelResolutionError> {
    let model = &agent.spec.model;
    if let Some(reference) = &model.model_ref {
        return models
            .iter()
            .find(|m| m.name_any() == reference.name)
            .ok_or_else(|| ModelResolutionError::NotFound(reference.name.clone()));
    }
    let selector = model.selector.as_ref().ok_or(ModelResolutionError::Unspecified)?;
    let bound = agent.status.as_ref().and_then(|s| s.bound_model.as_deref());
    Ok(select_model(selector, models, bound, readiness)?)
}

/// Picks the model for `selector` among `models`, keeping `bound` if it still qualifies.
pub fn select_model<'a>(
    selector: &ModelSelector,
    models: &'a [Model],
    bound: Option<&str>,
    readiness: Readiness,
) -> Result<&'a Model, NoMatch> {
    let mut rejected = Vec::new();
    let mut candidates: Vec<&Model> = models
        .iter()
        .filter(|model| match mismatch(selector, model, readiness) {
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

fn is_ready(model: &Model, readiness: Readiness) -> bool {
    let conditions = model.status.as_ref().map_or(&[][..], |s| s.conditions.as_slice());
    match readiness {
        Readiness::FromStatus => holds(conditions, READY),
        Readiness::AssumedWithoutStatus => !conditions.iter().any(|c| c.type_ == READY) || holds(conditions, READY),
    }
}

fn mismatch(selector: &ModelSelector, model: &Model, readiness: Readiness) -> Option<String> {
    if !is_ready(model, readiness) {
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
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

    use super::*;
    use crate::AgentSpec;
    use crate::agent::ModelBinding;
    use crate::conditions::Status;
    use crate::model::{ModelCapabilities, ModelEndpoint, ModelSpec, ModelStatus};
    use crate::references::LocalObjectReference;

    fn model(name: &str, ready: bool, tools: bool, max: Option<i64>, bound: i64) -> Model {
        let mut model = unobserved(name, tools, max);
        model.status = Some(ModelStatus {
            conditions: vec![Condition {
                type_: READY.into(),
                status: if ready { Status::True } else { Status::False }.to_string(),
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

    /// A Model as written in a manifest: no status.
    fn unobserved(name: &str, tools: bool, max: Option<i64>) -> Model {
        Model::new(
            name,
            ModelSpec {
                endpoint: Some(ModelEndpoint {
                    base_url: "http://m/v1".into(),
                    model: name.into(),
                    ..Default::default()
                }),
                capabilities: ModelCapabilities {
                    chat: true,
                    tools,
                    max_concurrency: max,
                    context_length: Some(8192),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
    }

    fn wants_tools() -> ModelSelector {
        ModelSelector { capabilities: vec![Capability::Chat, Capability::Tools], ..Default::default() }
    }

    fn agent(model: ModelBinding) -> Agent {
        Agent::new("a", AgentSpec { model, ..AgentSpec::default() })
    }

    const IN_CLUSTER: Readiness = Readiness::FromStatus;

    #[test]
    fn binds_the_ready_matching_model_with_most_spare_capacity() {
        let models = [
            model("busy", true, true, Some(4), 4),
            model("roomy", true, true, Some(8), 1),
            model("down", false, true, Some(100), 0),
        ];
        assert_eq!(select_model(&wants_tools(), &models, None, IN_CLUSTER).unwrap().name_any(), "roomy");
    }

    #[test]
    fn keeps_an_existing_binding_while_it_still_matches() {
        let models = [model("busy", true, true, Some(4), 4), model("roomy", true, true, Some(8), 1)];
        assert_eq!(select_model(&wants_tools(), &models, Some("busy"), IN_CLUSTER).unwrap().name_any(), "busy");
    }

    #[test]
    fn rebinds_when_the_bound_model_is_gone_and_explains_when_nothing_matches() {
        let models = [model("roomy", true, true, Some(8), 1)];
        assert_eq!(select_model(&wants_tools(), &models, Some("deleted"), IN_CLUSTER).unwrap().name_any(), "roomy");
        let no_tools = [model("plain", true, false, None, 0), model("down", false, true, None, 0)];
        let error = select_model(&wants_tools(), &no_tools, Some("deleted"), IN_CLUSTER).unwrap_err().to_string();
        assert!(error.contains("plain (lacks Tools)") && error.contains("down (not Ready)"), "{error}");
        assert!(error.contains("the bound Model deleted no longer exists"), "{error}");
    }

    #[test]
    fn among_models_without_declared_capacity_the_least_loaded_wins() {
        let models = [model("loaded", true, true, None, 5), model("quiet", true, true, None, 1)];
        assert_eq!(select_model(&wants_tools(), &models, None, IN_CLUSTER).unwrap().name_any(), "quiet");
    }

    #[test]
    fn a_model_without_status_is_ready_only_where_no_controller_could_observe_it() {
        let models = [unobserved("written", true, None), model("down", false, true, None, 0)];
        let error = select_model(&wants_tools(), &models, None, IN_CLUSTER).unwrap_err().to_string();
        assert!(error.contains("written (not Ready)"), "{error}");
        let offline = Readiness::AssumedWithoutStatus;
        assert_eq!(select_model(&wants_tools(), &models, None, offline).unwrap().name_any(), "written");
        let error = select_model(&wants_tools(), &models[1..], None, offline).unwrap_err().to_string();
        assert!(error.contains("down (not Ready)"), "a status saying not Ready still counts: {error}");
    }

    #[test]
    fn a_model_ref_names_the_model_and_a_selector_goes_through_the_scheduler() {
        let models = [model("busy", true, true, Some(4), 4), model("roomy", true, true, Some(8), 1)];
        let by_name =
            ModelBinding { model_ref: Some(LocalObjectReference { name: "busy".into() }), ..ModelBinding::default() };
        assert_eq!(resolve_model(&agent(by_name), &models, IN_CLUSTER).unwrap().name_any(), "busy");
        let missing =
            ModelBinding { model_ref: Some(LocalObjectReference { name: "gone".into() }), ..ModelBinding::default() };
        let error = resolve_model(&agent(missing), &models, IN_CLUSTER).unwrap_err();
        assert_eq!(error, ModelResolutionError::NotFound("gone".into()));
        let selected = ModelBinding { selector: Some(wants_tools()), ..ModelBinding::default() };
        assert_eq!(resolve_model(&agent(selected), &models, IN_CLUSTER).unwrap().name_any(), "roomy");
        let error = resolve_model(&agent(ModelBinding::default()), &models, IN_CLUSTER).unwrap_err();
        assert_eq!(error, ModelResolutionError::Unspecified);
    }
}
