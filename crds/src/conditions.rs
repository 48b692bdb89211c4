//! Condition types, statuses and reasons shared by the operator (which writes them) and tools that
//! read them.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use serde::{Deserialize, Serialize};

/// The spec and its references are valid.
pub const ACCEPTED: &str = "Accepted";
/// The agent's model is ready to serve.
pub const MODEL_READY: &str = "ModelReady";
/// The object serves: for an agent, its pod answers `/readyz`.
pub const READY: &str = "Ready";
/// A `Once` agent's task for the current task generation completed (`True`), failed (`False`)
/// or has not finished (`Unknown`).
pub const TASK_SUCCEEDED: &str = "TaskSucceeded";
/// A daily or monthly budget of `spec.limits` is used up; written by the agent's runtime (its
/// own field manager), not the operator.
pub const BUDGET_EXHAUSTED: &str = "BudgetExhausted";

/// Status of a condition. On the wire it is the text `True`, `False` or `Unknown` (serde and
/// [`Status::as_str`] agree); Kubernetes types hold it as a `String`, read it with [`Status::of`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    /// The condition holds.
    True,
    /// The condition does not hold.
    False,
    /// Not known yet.
    Unknown,
}

impl Status {
    /// The wire text of the status.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::True => "True",
            Self::False => "False",
            Self::Unknown => "Unknown",
        }
    }

    /// The status a condition's `status` text stands for; text that is neither `True` nor
    /// `False` is `Unknown`, as the API conventions read it.
    pub fn of(text: &str) -> Self {
        match text {
            "True" => Self::True,
            "False" => Self::False,
            _ => Self::Unknown,
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether the condition of `type_` is present and `True`.
pub fn holds(conditions: &[Condition], type_: &str) -> bool {
    conditions.iter().any(|c| c.type_ == type_ && Status::of(&c.status) == Status::True)
}

/// Reasons written into conditions; CamelCase, stable, documented.
pub mod reason {
    /// Spec and references are valid.
    pub const VALID: &str = "Valid";
    /// The spec breaks a rule the schema cannot express.
    pub const INVALID_SPEC: &str = "InvalidSpec";
    /// A referenced object does not exist.
    pub const REFERENCE_NOT_FOUND: &str = "ReferenceNotFound";
    /// The referenced Model does not exist.
    pub const MODEL_NOT_FOUND: &str = "ModelNotFound";
    /// The referenced Model reports Ready.
    pub const MODEL_READY: &str = "ModelReady";
    /// The referenced Model reports not Ready.
    pub const MODEL_NOT_READY: &str = "ModelNotReady";
    /// The referenced Model has no Ready condition yet.
    pub const MODEL_NOT_OBSERVED: &str = "ModelNotObserved";
    /// No Model matches the agent's selector.
    pub const NO_MATCHING_MODEL: &str = "NoMatchingModel";
    /// The agent's pod is ready.
    pub const POD_READY: &str = "PodReady";
    /// The agent's pod is starting or not ready.
    pub const POD_NOT_READY: &str = "PodNotReady";
    /// The agent is suspended by `operatingMode`.
    pub const SUSPENDED: &str = "Suspended";
    /// The Agent's recipe is neither a `Recipe` in its namespace nor built in.
    pub const RECIPE_NOT_FOUND: &str = "RecipeNotFound";
    /// The Agent's recipe parameters are unknown, of the wrong type, not allowed, or make the
    /// recipe's pipeline invalid.
    pub const INVALID_RECIPE_PARAMETERS: &str = "InvalidRecipeParameters";
    /// A template of the Agent's recipe does not parse, uses a variable its context lacks, or is
    /// missing for the recipe's mode.
    pub const INVALID_RECIPE_TEMPLATE: &str = "InvalidRecipeTemplate";
    /// The spec was not accepted, so nothing runs.
    pub const NOT_ACCEPTED: &str = "NotAccepted";
    /// A child Agent breaks its parent's `spec.delegation` bounds (or its parent is gone or
    /// does not delegate).
    pub const DELEGATION_REFUSED: &str = "DelegationRefused";
    /// A `Once` agent's task for the current task generation completed.
    pub const TASK_COMPLETED: &str = "TaskCompleted";
    /// A `Once` agent's task for the current task generation failed or was cancelled.
    pub const TASK_FAILED: &str = "TaskFailed";
    /// A `Once` agent's task for the current task generation has not finished yet.
    pub const TASK_PENDING: &str = "TaskPending";
    /// A `Once` agent with `completionPolicy: Suspend` finished its task and was scaled to zero.
    pub const TASK_FINISHED: &str = "TaskFinished";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_and_as_str_write_the_same_wire_text_and_of_reads_it_back() {
        for status in [Status::True, Status::False, Status::Unknown] {
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
            assert_eq!(serde_json::from_value::<Status>(status.as_str().into()).unwrap(), status);
            assert_eq!(Status::of(status.as_str()), status);
        }
        assert_eq!(Status::of("true"), Status::Unknown, "the wire text is case-sensitive");
    }
}
