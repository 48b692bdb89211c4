//! The agent reports what only it knows to its Agent's status: the tools it offers now, the
//! tokens its model calls used (kept on the volume, so the count survives restarts) and its
//! latest task. It applies them with server-side apply under its own field manager, so the
//! operator's conditions are untouched; its Role allows `patch` on its own Agent's status only.
//! It writes when something changed (a task moved, a tool came or went, tokens were used), at
//! most once per [`SETTLE`], and retries with backoff when the API server is away.

use std::time::Duration;

use agent_crds::agent::{ModelTokenUsage, OfferedTool, TaskSummary, TokenUsage};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::KubeApi;
use crate::http::AppState;
use crate::sessions::RUNNER;
use crate::tasks::record::state_name;

/// Quiet time after a change before the status is written, so a burst costs one write.
pub const SETTLE: Duration = Duration::from_secs(1);
/// How often the tools and tokens are looked at when no task moves.
const LOOK_EVERY: Duration = Duration::from_secs(10);
/// Key of the token counts kept on the volume.
const USAGE_KEY: &str = "usage";

/// Tokens counted before this process started.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Counted {
    input: u64,
    output: u64,
}

/// What the runtime reports, as it goes into `status`.
fn report(state: &AppState, usage: Counted) -> Value {
    let config = &state.agent.config;
    let tools: Vec<OfferedTool> = state
        .agent
        .tools()
        .listing()
        .tools
        .into_iter()
        .map(|t| OfferedTool { name: t.name, source: t.source, approval: t.requires_approval })
        .collect();
    let usage = TokenUsage {
        input_tokens: usage.input,
        output_tokens: usage.output,
        total_tokens: usage.input + usage.output,
        models: vec![ModelTokenUsage {
            model: config.model.model.clone(),
            input_tokens: usage.input,
            output_tokens: usage.output,
        }],
    };
    let last_task = state.tasks.latest().borrow().as_ref().map(|record| TaskSummary {
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
    json!({ "tools": tools, "usage": usage, "lastTask": last_task })
}

/// Reports the agent's status until the process ends.
pub async fn report_status(api: KubeApi, state: AppState) {
    let identity = state.agent.config.agent.clone();
    let sessions = state.agent.sessions().clone();
    let before: Counted = match sessions.record(RUNNER, USAGE_KEY).await {
        Ok(counted) => counted.unwrap_or_default(),
        Err(error) => {
            tracing::warn!(%error, "the token counts kept on the volume cannot be read; counting from zero");
            Counted::default()
        }
    };
    let mut latest = state.tasks.latest();
    let mut sent: Option<Value> = None;
    let mut retry = Duration::from_secs(1);
    loop {
        let (input, output) = state.metrics.token_totals();
        let usage = Counted { input: before.input + input, output: before.output + output };
        let status = report(&state, usage);
        if sent.as_ref() != Some(&status) {
            if let Err(error) = sessions.put_record(RUNNER, USAGE_KEY, &usage).await {
                tracing::warn!(%error, "keeping the token counts failed");
            }
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
