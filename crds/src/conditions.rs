//! Condition types and reasons shared by the operator (which writes them) and tools that read them.

/// The spec and its references are valid.
pub const ACCEPTED: &str = "Accepted";
/// The agent's model is ready to serve.
pub const MODEL_READY: &str = "ModelReady";
/// The object serves: for an agent, its pod answers `/readyz`.
pub const READY: &str = "Ready";

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
}
