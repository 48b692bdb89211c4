//! The Recipe controller: checks each `Recipe` object on its own (parameter names, its pipeline
//! rules, and every template rendered with the defaults) and reports `Accepted` on it, so
//! `kubectl get recipes` shows which recipes agents can use before any agent names one. Agents
//! using a recipe are re-checked by the Agent controller with their own parameters.

use std::sync::Arc;

use agent_crds::conditions::{ACCEPTED, reason};
use agent_crds::recipe::{Recipe, RecipeStatus};
use agent_crds::recipe_params::recipe_problems;
use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::{Controller, watcher};
use tracing::Instrument as _;

use crate::conditions::{Computed, merge};
use crate::context::Context;
use crate::ssa::{api, write_status};

/// Reason of a Recipe whose own check fails.
pub const INVALID_RECIPE: &str = "InvalidRecipe";

/// Writing a Recipe's status failed; retried with backoff.
#[derive(Debug, thiserror::Error)]
#[error("writing recipe status: {0}")]
pub struct Error(#[source] kube::Error);

/// The status a Recipe should have: `Accepted` from its own check.
pub fn compute_status(recipe: &Recipe, now: &Time) -> RecipeStatus {
    let problems = recipe_problems(recipe);
    let accepted = if problems.is_empty() {
        Computed::yes(
            ACCEPTED,
            reason::VALID,
            "the recipe's parameters, rules and templates check out with its defaults",
        )
    } else {
        Computed::no(ACCEPTED, INVALID_RECIPE, problems.join("; "))
    };
    let previous = recipe.status.as_ref().map(|s| s.conditions.as_slice()).unwrap_or_default();
    RecipeStatus {
        observed_generation: recipe.metadata.generation,
        conditions: merge(previous, vec![accepted], recipe.metadata.generation, now),
    }
}

/// Reconciles one Recipe: writes its status when it changed, then waits for the next change.
pub async fn reconcile(recipe: Arc<Recipe>, ctx: Arc<Context>) -> Result<Action, Error> {
    let status = compute_status(&recipe, &Time(jiff::Timestamp::now()));
    if recipe.status.as_ref() != Some(&status) {
        let span = crate::telemetry::reconcile_span(recipe.as_ref());
        let written = write_status(&ctx.client, recipe.as_ref(), &status).instrument(span.clone()).await;
        written.inspect_err(|error| crate::telemetry::record_failure(&span, "status", error)).map_err(Error)?;
    }
    Ok(Action::await_change())
}

/// Retries a failed status write with the per-object backoff.
#[allow(clippy::needless_pass_by_value)] // the signature is fixed by `Controller::run`
pub fn error_policy(recipe: Arc<Recipe>, error: &Error, ctx: Arc<Context>) -> Action {
    let key = format!("Recipe/{}/{}", recipe.namespace().unwrap_or_default(), recipe.name_any());
    let delay = ctx.backoff.next_delay(&key);
    tracing::warn!(recipe = %key, %error, ?delay, "recipe status failed; retrying");
    Action::requeue(delay)
}

/// Runs the Recipe controller until `shutdown`.
pub async fn run(
    ctx: Arc<Context>,
    namespace: Option<&str>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    Controller::new(api::<Recipe>(&ctx.client, namespace), watcher::Config::default().any_semantic())
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "recipe controller event");
            }
        })
        .await;
}
