//! Status: conditions (with `TaskSucceeded` for `Once` agents), endpoint and binding computed
//! from the outcome of a reconcile (pure), and written only when they changed.

use crate::stores::WorkloadState;
use agent_crds::agent::OperatingMode;
use agent_crds::conditions::{ACCEPTED, MODEL_READY, READY, Status, reason};
use agent_crds::recipe_params::ParameterError;
use agent_crds::render::{RenderError, agent_service_url};
use agent_crds::{Agent, AgentStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{Client, ResourceExt};

use super::dereference::{ModelLookup, Observed};
use super::task::{suspended_after_task, task_condition};
use crate::conditions::{Computed, find, merge};
use crate::ssa::write_status;

/// How far the reconcile got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The spec breaks a rule; nothing was built.
    Invalid(String),
    /// The recipe is not found, or the agent's parameters or the recipe's templates are invalid;
    /// nothing was built.
    InvalidRecipe {
        /// `RecipeNotFound`, `InvalidRecipeParameters` or `InvalidRecipeTemplate`.
        reason: &'static str,
        /// What is wrong.
        message: String,
    },
    /// References are missing; nothing was built.
    MissingReferences(Vec<String>),
    /// The Agent was created by delegation and breaks its parent's bounds; nothing was built.
    DelegationRefused(String),
    /// The model is not available; nothing was built.
    NoModel,
    /// The children were applied.
    Applied,
}

/// Computes the agent's status from what was observed and how the reconcile ended.
pub fn compute_status(agent: &Agent, observed: &Observed, outcome: &Outcome, now: &Time) -> AgentStatus {
    let previous = agent.status.as_ref().map_or(&[][..], |s| s.conditions.as_slice());
    let accepted = match outcome {
        Outcome::Invalid(message) => Computed::no(ACCEPTED, reason::INVALID_SPEC, message.clone()),
        Outcome::InvalidRecipe { reason, message } => Computed::no(ACCEPTED, reason, message.clone()),
        Outcome::MissingReferences(missing) => Computed::no(ACCEPTED, reason::REFERENCE_NOT_FOUND, missing.join("; ")),
        Outcome::DelegationRefused(message) => Computed::no(ACCEPTED, reason::DELEGATION_REFUSED, message.clone()),
        Outcome::NoModel | Outcome::Applied => Computed::yes(ACCEPTED, reason::VALID, "spec and references are valid"),
    };
    let model_ready = model_condition(agent, &observed.model);
    let ready = ready_condition(agent, outcome, &model_ready, observed.children.stateful_set.as_ref());
    let mut conditions = vec![accepted, model_ready, ready];
    conditions.extend(task_condition(agent));
    let bound_model = match &observed.model {
        ModelLookup::Found(model) => Some(model.name_any()),
        _ => None,
    };
    AgentStatus {
        observed_generation: agent.metadata.generation,
        conditions: merge(previous, conditions, agent.metadata.generation, now),
        endpoint: (*outcome == Outcome::Applied)
            .then(|| agent_service_url(&agent.name_any(), &agent.namespace().unwrap_or_default())),
        bound_model,
        ..AgentStatus::default()
    }
}

/// The outcome of a RuntimeConfig that does not render: recipe problems get their own reasons.
pub fn render_outcome(error: &RenderError) -> Outcome {
    let reason = match error {
        RenderError::RecipeMissing(_) => reason::RECIPE_NOT_FOUND,
        RenderError::Recipe(ParameterError::Template { .. }) => reason::INVALID_RECIPE_TEMPLATE,
        RenderError::Recipe(
            ParameterError::UnknownParameter { .. }
            | ParameterError::WrongParameterType { .. }
            | ParameterError::MissingParameter { .. }
            | ParameterError::ParameterNotAllowed { .. }
            | ParameterError::InvalidOverride { .. }
            | ParameterError::InvalidPipeline { .. },
        ) => reason::INVALID_RECIPE_PARAMETERS,
        RenderError::MissingNamespace
        | RenderError::ModelMissing(_)
        | RenderError::ModelCannotChat(_)
        | RenderError::EmbeddingModelMissing(_)
        | RenderError::EmbeddingModelUnusable(_)
        | RenderError::ModelWithoutEndpoint(_)
        | RenderError::ConfigMapKeyMissing(..)
        | RenderError::BadRetention(_)
        | RenderError::CostLimitWithoutPricing(_)
        | RenderError::BadSchedule(_) => return Outcome::Invalid(error.to_string()),
    };
    Outcome::InvalidRecipe { reason, message: error.to_string() }
}

fn model_condition(agent: &Agent, lookup: &ModelLookup) -> Computed {
    match lookup {
        ModelLookup::Found(model) => {
            let name = model.name_any();
            match model.status.as_ref().and_then(|s| find(&s.conditions, READY)) {
                Some(c) if Status::of(&c.status) == Status::True => {
                    Computed::yes(MODEL_READY, reason::MODEL_READY, format!("Model {name} is ready"))
                }
                Some(c) => Computed::no(
                    MODEL_READY,
                    reason::MODEL_NOT_READY,
                    format!("Model {name} is not ready: {}", c.message),
                ),
                None => Computed::unknown(
                    MODEL_READY,
                    reason::MODEL_NOT_OBSERVED,
                    format!("Model {name} has not reported readiness yet"),
                ),
            }
        }
        ModelLookup::NotFound(name) => Computed::no(
            MODEL_READY,
            reason::MODEL_NOT_FOUND,
            format!("Model {name} not found in namespace {}", agent.namespace().unwrap_or_default()),
        ),
        ModelLookup::NoMatch(no_match) => Computed::no(MODEL_READY, reason::NO_MATCHING_MODEL, no_match.to_string()),
        ModelLookup::NotLookedUp => Computed::unknown(MODEL_READY, reason::NOT_ACCEPTED, "the spec was not accepted"),
    }
}

fn ready_condition(
    agent: &Agent,
    outcome: &Outcome,
    model: &Computed,
    stateful_set: Option<&WorkloadState>,
) -> Computed {
    match outcome {
        Outcome::Invalid(_)
        | Outcome::InvalidRecipe { .. }
        | Outcome::MissingReferences(_)
        | Outcome::DelegationRefused(_) => {
            return Computed::no(READY, reason::NOT_ACCEPTED, "the spec was not accepted; see the Accepted condition");
        }
        Outcome::NoModel => return Computed::no(READY, model.reason, model.message.clone()),
        Outcome::Applied => {}
    }
    if agent.spec.operating_mode == OperatingMode::Suspended {
        return Computed::no(READY, reason::SUSPENDED, "operatingMode is Suspended; memory and sessions are kept");
    }
    if suspended_after_task(agent) {
        return Computed::no(
            READY,
            reason::TASK_FINISHED,
            "the Once task finished and completionPolicy is Suspend: scaled to zero, the volume is kept; edit \
             spec.task to run it again",
        );
    }
    let current = stateful_set.is_some_and(|s| s.observed_generation >= s.generation);
    if current && stateful_set.is_some_and(|s| s.ready_replicas >= 1) {
        Computed::yes(READY, reason::POD_READY, "the agent pod is serving")
    } else {
        Computed::no(READY, reason::POD_NOT_READY, "waiting for the agent pod to become ready")
    }
}

/// Writes `status` with server-side apply if it differs from the agent's current status.
/// Returns whether it wrote.
pub async fn patch_status(client: &Client, agent: &Agent, status: &AgentStatus) -> Result<bool, kube::Error> {
    if agent.status.as_ref().map(AgentStatus::operator_part).as_ref() == Some(status) {
        return Ok(false);
    }
    write_status(client, agent, status).await?;
    Ok(true)
}
