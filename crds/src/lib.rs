//! The Agent Operator API: the `Agent`, `Model` and `Recipe` custom resources, the `RuntimeConfig`
//! the operator hands to every agent pod, and the one pure function that renders it.
//!
//! This crate has no Kubernetes client and no runtime: the operator and the agent runtime both
//! depend on it, never on each other.

pub mod agent;
pub mod catalogue;
pub mod conditions;
pub mod crd;
pub mod manifests;
pub mod model;
pub mod model_selection;
pub mod recipe;
pub mod recipe_params;
pub mod references;
pub mod render;
pub mod runtime_config;
pub mod schedule;
mod schema;
pub mod structural;
pub mod templates;

pub use agent::{Agent, AgentSpec, AgentStatus};
pub use model::{Model, ModelSpec, ModelStatus};
pub use recipe::{Recipe, RecipeSpec, RecipeStatus};
pub use render::{RenderError, ResolvedReferences, render_runtime_config};
pub use runtime_config::RuntimeConfig;

/// The API group of every Agent Operator resource.
pub const GROUP: &str = "agent-operator.dev";
/// The API version served by this crate.
pub const VERSION: &str = "v1alpha1";
