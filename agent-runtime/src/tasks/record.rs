//! A task as it is kept: the A2A task (what an A2A client reads) and what the task API adds
//! (where it came from, its input, token usage, timestamps, the attempt), and the view the task
//! API answers with.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::a2a::model::{Task, TaskState};

/// What started a task.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// `POST /v1/tasks`.
    #[default]
    Api,
    /// An A2A `SendMessage`.
    A2a,
    /// The Agent's `task.mode: Once`.
    Once,
    /// The Agent's `task.mode: Schedule`.
    Schedule,
}

impl Origin {
    /// Its name in views and the Agent's status.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::A2a => "a2a",
            Self::Once => "once",
            Self::Schedule => "schedule",
        }
    }
}

/// Tokens a task's turns used.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TaskUsage {
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Generated tokens.
    pub output_tokens: u64,
}

/// A task as the store keeps it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TaskRecord {
    /// The A2A task: id, context, status, history, artifacts.
    #[serde(flatten)]
    pub task: Task,
    /// What started it.
    #[serde(default)]
    pub origin: Origin,
    /// What it was asked.
    #[serde(default)]
    pub input: String,
    /// When it was submitted (RFC 3339).
    #[serde(default)]
    pub created: String,
    /// When its turn started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<String>,
    /// When it reached a final state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<String>,
    /// Tokens its turns used.
    #[serde(default)]
    pub usage: TaskUsage,
    /// The Agent's task generation it ran for (`Once`, `Schedule`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<String>,
    /// The scheduled time it ran for (`Schedule`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_for: Option<String>,
    /// 1 for a first run; 2 for the retry of a run a restart cut off.
    #[serde(default = "first_attempt")]
    pub attempt: u32,
    /// The run a restart cut off that this one retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_of: Option<String>,
    /// Whether a restart of the agent cut this run off.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
}

fn first_attempt() -> u32 {
    1
}

/// The task API's name of a state.
pub fn state_name(state: TaskState) -> &'static str {
    match state {
        TaskState::Submitted => "queued",
        TaskState::Working => "running",
        TaskState::InputRequired => "input-required",
        TaskState::Completed => "completed",
        TaskState::Failed => "failed",
        TaskState::Canceled => "cancelled",
    }
}

/// Longest summary of a result in the Agent's status.
const SUMMARY_CHARS: usize = 256;

impl TaskRecord {
    /// The agent's last word: the answer of a completed task, the reason of a failed one.
    pub fn last_word(&self) -> Option<&str> {
        self.task.status.message.as_ref()?.parts.iter().find_map(|part| part.text.as_deref())
    }

    /// The answer, when the task completed.
    pub fn result(&self) -> Option<String> {
        (self.task.status.state == TaskState::Completed).then(|| {
            self.task.artifacts.iter().flat_map(|a| &a.parts).filter_map(|p| p.text.as_deref()).collect::<String>()
        })
    }

    /// The start of its result or error, for the Agent's status.
    pub fn summary(&self) -> Option<String> {
        let text = self.result().or_else(|| self.last_word().map(str::to_owned))?;
        let text = text.trim();
        Some(match text.char_indices().nth(SUMMARY_CHARS) {
            Some((cut, _)) => format!("{}…", &text[..cut]),
            None => text.to_owned(),
        })
    }

    /// The view the task API answers with.
    pub fn view(&self) -> Value {
        let state = self.task.status.state;
        let error = matches!(state, TaskState::Failed | TaskState::Canceled).then(|| self.last_word()).flatten();
        let approval = (state == TaskState::InputRequired)
            .then(|| self.task.metadata.as_ref().and_then(|m| m.get("approval")).cloned())
            .flatten();
        serde_json::json!({
            "id": self.task.id,
            "state": state_name(state),
            "origin": self.origin.as_str(),
            "input": self.input,
            "result": self.result(),
            "error": error,
            "pendingApproval": approval,
            "usage": self.usage,
            "contextId": self.task.context_id,
            "created": self.created,
            "started": self.started,
            "finished": self.finished,
            "taskGeneration": self.generation,
            "scheduledFor": self.scheduled_for,
            "attempt": self.attempt,
            "retryOf": self.retry_of,
            "interrupted": self.interrupted,
        })
    }
}
