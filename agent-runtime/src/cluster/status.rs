//! The agent reports what only it knows to its Agent's status: the tools it offers now, the
//! tokens and cost of its model calls per model ([`crate::usage`], kept on the volume, so the
//! counts survive restarts), its latest task and, with budgets, its `BudgetExhausted` condition.
//! It applies them with server-side apply under its own field manager, so the operator's
//! conditions are untouched; its Role allows `patch` on its own Agent's status only.
//! It writes when something changed (a task moved, a tool came or went, tokens were used), at
//! most once per [`SETTLE`], and retries with backoff when the API server is away.

use std::collections::BTreeMap;
use std::time::Duration;

use agent_crds::agent::{ModelTokenUsage, OfferedTool, TaskMode, TaskSummary, TokenUsage};
use agent_crds::conditions::BUDGET_EXHAUSTED;
use agent_crds::runtime_config::TaskConfig;
use serde_json::{Value, json};

use super::KubeApi;
use crate::http::AppState;
use crate::tasks::record::state_name;
use crate::tasks::{Latest, TaskRecord};
use crate::usage::{Ledger, ModelCount, decimal};

/// Quiet time after a change before the status is written, so a burst costs one write.
pub const SETTLE: Duration = Duration::from_secs(1);
/// How often the tools and tokens are looked at when no task moves.
const LOOK_EVERY: Duration = Duration::from_secs(10);
/// What the runtime reports, as it goes into `status`.
fn report(state: &AppState, budget: &mut BudgetCondition) -> Value {
    let config = &state.agent.config;
    let tools: Vec<OfferedTool> = state
        .agent
        .tools()
        .listing()
        .tools
        .into_iter()
        .map(|t| OfferedTool { name: t.name, source: t.source, approval: t.requires_approval })
        .collect();
    let usage = token_usage(&state.usage.counts(), &config.model.model);
    let latest = state.tasks.latest().borrow().clone();
    let last_task = shown_task(&config.task, &latest).map(|record| TaskSummary {
        id: record.task.id.clone(),
        state: state_name(record.task.status.state).to_owned(),
        origin: record.origin.as_str().to_owned(),
        task_generation: record.generation.clone(),
        started: record.started.clone(),
        finished: record.finished.clone(),
        summary: record.summary(),
    });
    // Empty lists and absent fields are sent too (as empty), so a field the runtime stops
    // reporting is cleared rather than left stale.
    let mut status = json!({ "tools": tools, "usage": usage, "lastTask": last_task });
    // Only with budgets does the runtime own a condition; without, it claims none (server-side
    // apply then drops the one it owned, should the budgets go).
    if let Some(condition) = budget.update(&state.usage) {
        status["conditions"] = json!([condition]);
    }
    status
}

/// `status.usage` from the counts per model: totals, and the cost in the chat model's currency
/// (or the one currency the priced models share) summed over the models priced in it.
fn token_usage(counts: &BTreeMap<String, ModelCount>, chat_model: &str) -> TokenUsage {
    let currency = counts
        .get(chat_model)
        .and_then(|c| c.currency.clone())
        .or_else(|| counts.values().find_map(|c| c.currency.clone()));
    let cost = currency.as_ref().map(|currency| {
        decimal(counts.values().filter(|c| c.currency.as_ref() == Some(currency)).map(|c| c.cost_units).sum())
    });
    let input_tokens = counts.values().map(|c| c.input).sum();
    let output_tokens = counts.values().map(|c| c.output).sum();
    TokenUsage {
        input_tokens,
        output_tokens,
        total_tokens: input_tokens + output_tokens,
        cost,
        currency,
        models: counts
            .iter()
            .map(|(model, count)| ModelTokenUsage {
                model: model.clone(),
                input_tokens: count.input,
                output_tokens: count.output,
                calls: count.calls,
                cost: count.currency.as_ref().map(|_| decimal(count.cost_units)),
                currency: count.currency.clone(),
            })
            .collect(),
    }
}

/// The task `status.lastTask` shows: the newest one, except that a `Once` agent shows its own
/// task of the current task generation once it has one (tasks sent to it later through the
/// API do not hide whether its task succeeded).
fn shown_task<'a>(task: &TaskConfig, latest: &'a Latest) -> Option<&'a TaskRecord> {
    match &latest.own {
        Some(own) if task.mode == TaskMode::Once && own.generation.as_deref() == Some(task.generation.as_str()) => {
            Some(own)
        }
        _ => latest.any.as_ref(),
    }
}

/// The runtime's own condition, `BudgetExhausted`, while the Agent has daily or monthly budgets:
/// `True` while one is used up (until its window resets), else `False`. Its transition time is
/// when this process saw it flip (or first reported it).
#[derive(Default)]
struct BudgetCondition {
    last: Option<(bool, String)>,
}

impl BudgetCondition {
    fn update(&mut self, ledger: &Ledger) -> Option<Value> {
        if !ledger.has_budgets() {
            return None;
        }
        let exhausted = ledger.exhausted();
        let status = exhausted.is_some();
        let since = match &self.last {
            Some((before, since)) if *before == status => since.clone(),
            _ => ledger.now().to_string(),
        };
        self.last = Some((status, since.clone()));
        let (reason, message) = match &exhausted {
            Some(exhausted) => (exhausted.reason(), exhausted.to_string()),
            None => ("WithinBudget", "no daily or monthly budget of spec.limits is used up".to_owned()),
        };
        Some(json!({
            "type": BUDGET_EXHAUSTED,
            "status": if status { "True" } else { "False" },
            "reason": reason,
            "message": message,
            "lastTransitionTime": since,
        }))
    }
}

/// Reports the agent's status until the process ends.
pub async fn report_status(api: KubeApi, state: AppState) {
    let identity = state.agent.config.agent.clone();
    let mut latest = state.tasks.latest();
    let mut sent: Option<Value> = None;
    let mut retry = Duration::from_secs(1);
    let mut budget = BudgetCondition::default();
    loop {
        let status = report(&state, &mut budget);
        if sent.as_ref() != Some(&status) {
            match api.apply_agent_status(&identity.namespace, &identity.name, &status).await {
                Ok(()) => {
                    sent = Some(status);
                    retry = Duration::from_secs(1);
                }
                Err(error) => {
                    tracing::warn!(%error, retry_in = ?retry, "reporting the agent's status failed");
                    tokio::time::sleep(retry).await;
                    retry = (retry * 2).min(Duration::from_secs(60));
                    continue;
                }
            }
        }
        tokio::select! {
            changed = latest.changed() => {
                if changed.is_err() {
                    return;
                }
                tokio::time::sleep(SETTLE).await;
            }
            () = tokio::time::sleep(LOOK_EVERY) => {}
        }
    }
}

/// Starts reporting when the agent runs in a cluster; a client that cannot be built is an
/// error, never a silently missing status.
pub fn start(state: &AppState) -> Result<(), super::KubeError> {
    let Some(access) = &state.agent.config.cluster else { return Ok(()) };
    let api = KubeApi::new(access)?;
    tokio::spawn(report_status(api, state.clone()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use agent_crds::agent::ConcurrencyPolicy;

    use super::*;
    use crate::a2a::model::{Task, TaskState, TaskStatus};
    use crate::tasks::{Origin, TaskUsage};

    fn record(id: &str, origin: Origin, generation: Option<&str>) -> TaskRecord {
        TaskRecord {
            task: Task {
                id: id.into(),
                context_id: id.into(),
                status: TaskStatus { state: TaskState::Completed, message: None, timestamp: String::new() },
                history: Vec::new(),
                artifacts: Vec::new(),
                metadata: None,
            },
            origin,
            input: String::new(),
            created: String::new(),
            started: None,
            finished: None,
            usage: TaskUsage::default(),
            generation: generation.map(str::to_owned),
            scheduled_for: None,
            attempt: 1,
            retry_of: None,
            interrupted: false,
        }
    }

    fn task(mode: TaskMode) -> TaskConfig {
        TaskConfig {
            mode,
            instructions: None,
            schedule: None,
            input: Some("go".into()),
            generation: "g2".into(),
            concurrency_policy: ConcurrencyPolicy::Forbid,
            starting_deadline_seconds: None,
            successful_runs_history_limit: 3,
            failed_runs_history_limit: 1,
        }
    }

    #[test]
    fn a_once_agent_shows_its_own_task_of_the_current_generation_over_later_api_tasks() {
        let latest = Latest {
            any: Some(record("api-1", Origin::Api, None)),
            own: Some(record("once-2", Origin::Once, Some("g2"))),
        };
        assert_eq!(shown_task(&task(TaskMode::Once), &latest).map(|r| r.task.id.as_str()), Some("once-2"));
        assert_eq!(shown_task(&task(TaskMode::Chat), &latest).map(|r| r.task.id.as_str()), Some("api-1"));
        let stale = Latest { own: Some(record("once-1", Origin::Once, Some("g1"))), ..latest };
        assert_eq!(
            shown_task(&task(TaskMode::Once), &stale).map(|r| r.task.id.as_str()),
            Some("api-1"),
            "a task of an older generation says nothing about the current one"
        );
    }

    #[test]
    fn the_budget_condition_is_reported_only_with_budgets_and_keeps_its_transition_time() {
        use crate::usage::{Clock, Ledger};
        let now =
            std::sync::Arc::new(std::sync::Mutex::new("2026-11-29T10:00:00Z".parse::<jiff::Timestamp>().unwrap()));
        let read = now.clone();
        let clock = Clock::new(move || *read.lock().unwrap());
        let metrics = std::sync::Arc::new(crate::metrics::Metrics::default());
        let unlimited = Ledger::new(BTreeMap::new(), metrics.clone());
        assert_eq!(BudgetCondition::default().update(&unlimited), None, "no budgets, no condition");

        let limits = serde_json::from_value(json!({"tokensPerDay": 10})).unwrap();
        let ledger = Ledger::new(BTreeMap::new(), metrics).with_limits(Some(limits), clock);
        let mut condition = BudgetCondition::default();
        let within = condition.update(&ledger).unwrap();
        assert_eq!((within["status"].as_str(), within["reason"].as_str()), (Some("False"), Some("WithinBudget")));
        ledger.record("m", 7, 3);
        *now.lock().unwrap() = "2026-11-29T11:00:00Z".parse().unwrap();
        let used_up = condition.update(&ledger).unwrap();
        assert_eq!((used_up["status"].as_str(), used_up["reason"].as_str()), (Some("True"), Some("TokensPerDay")));
        assert_eq!(used_up["lastTransitionTime"], "2026-11-29T11:00:00Z");
        *now.lock().unwrap() = "2026-11-29T12:00:00Z".parse().unwrap();
        assert_eq!(condition.update(&ledger).unwrap()["lastTransitionTime"], "2026-11-29T11:00:00Z", "unchanged");
        *now.lock().unwrap() = "2026-11-30T00:00:01Z".parse().unwrap();
        assert_eq!(condition.update(&ledger).unwrap()["status"], "False", "the window reset");
    }
}
