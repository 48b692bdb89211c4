//! A2A 1.0 objects as they go on the wire (ProtoJSON: camelCase, enums as SCREAMING_SNAKE
//! strings, empty fields left out), and the conversions to the 0.3 shapes (`kind`
//! discriminators, lowercase states) that older clients such as kagent's speak.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// Where a task is.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskState {
    /// Accepted, not started.
    #[serde(rename = "TASK_STATE_SUBMITTED")]
    Submitted,
    /// The agent is on it.
    #[serde(rename = "TASK_STATE_WORKING")]
    Working,
    /// Waiting for the client (here: a human decision on a tool call).
    #[serde(rename = "TASK_STATE_INPUT_REQUIRED")]
    InputRequired,
    /// Answered.
    #[serde(rename = "TASK_STATE_COMPLETED")]
    Completed,
    /// The turn failed.
    #[serde(rename = "TASK_STATE_FAILED")]
    Failed,
    /// Canceled by the client.
    #[serde(rename = "TASK_STATE_CANCELED")]
    Canceled,
}

impl TaskState {
    /// Whether nothing more happens to the task.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Canceled)
    }

    /// The 0.3 name.
    pub fn v03(self) -> &'static str {
        match self {
            Self::Submitted => "submitted",
            Self::Working => "working",
            Self::InputRequired => "input-required",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
        }
    }
}

/// Who wrote a message.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The client.
    #[serde(rename = "ROLE_USER")]
    User,
    /// The agent.
    #[serde(rename = "ROLE_AGENT")]
    Agent,
}

/// One part of a message or artifact: text or structured data.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Part {
    /// Text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Structured data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl Part {
    /// A text part.
    pub fn text(text: impl Into<String>) -> Self {
        Self { text: Some(text.into()), data: None }
    }
}

/// A message of a task.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    /// Its id.
    pub message_id: String,
    /// The conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_id: Option<String>,
    /// The task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    /// Who wrote it.
    pub role: Role,
    /// Its content.
    pub parts: Vec<Part>,
    /// Extra data (the pending approval on an input-required status).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

/// A task's state, with the agent's last word on it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TaskStatus {
    /// The state.
    pub state: TaskState,
    /// What the agent says about it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<Message>,
    /// Since when (RFC 3339).
    pub timestamp: String,
}

/// An output of a task.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    /// Its id.
    pub artifact_id: String,
    /// Its name.
    pub name: String,
    /// Its content.
    pub parts: Vec<Part>,
}

/// A unit of work: one turn of the agent, or a turn waiting for a decision.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    /// Its id.
    pub id: String,
    /// The conversation it belongs to (one agent session per context).
    pub context_id: String,
    /// Where it is.
    pub status: TaskStatus,
    /// Its outputs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<Artifact>,
    /// Its messages, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<Message>,
    /// Extra data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

/// One event of a streamed task.
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub enum StreamEvent {
    /// The task as it is (always first).
    Task(Task),
    /// The task's state changed.
    StatusUpdate {
        /// The task.
        #[serde(rename = "taskId")]
        task_id: String,
        /// Its conversation.
        #[serde(rename = "contextId")]
        context_id: String,
        /// The new status.
        status: TaskStatus,
    },
    /// A piece of an output.
    ArtifactUpdate {
        /// The task.
        #[serde(rename = "taskId")]
        task_id: String,
        /// Its conversation.
        #[serde(rename = "contextId")]
        context_id: String,
        /// The piece.
        artifact: Artifact,
        /// Whether it extends what came before.
        append: bool,
        /// Whether it is the last piece.
        #[serde(rename = "lastChunk")]
        last_chunk: bool,
    },
}

/// A message sent by a client, read leniently from either protocol version.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Inbound {
    /// The client's id for it.
    pub message_id: String,
    /// The conversation it continues, if any.
    pub context_id: Option<String>,
    /// The task it continues, if any.
    pub task_id: Option<String>,
    /// Its text parts, joined; data parts as JSON.
    pub text: String,
}

impl Inbound {
    /// Reads `message` (1.0 or 0.3 shape); `None` when it has no content the agent can read.
    pub fn read(message: &Value) -> Option<Self> {
        let mut pieces = Vec::new();
        for part in message.get("parts")?.as_array()? {
            if let Some(text) = part.get("text").and_then(Value::as_str) {
                pieces.push(text.to_owned());
            } else if let Some(data) = part.get("data") {
                pieces.push(data.to_string());
            } else if let Some(url) = part.get("url").or_else(|| part.pointer("/file/uri")).and_then(Value::as_str) {
                pieces.push(format!("[file {url}]"));
            }
        }
        let text = pieces.join("\n");
        if text.trim().is_empty() {
            return None;
        }
        let string = |key: &str| message.get(key).and_then(Value::as_str).map(str::to_owned);
        Some(Self {
            message_id: string("messageId").unwrap_or_default(),
            context_id: string("contextId"),
            task_id: string("taskId"),
            text,
        })
    }

    /// As it is kept in the task's history.
    pub fn message(&self, context_id: &str, task_id: &str) -> Message {
        Message {
            message_id: self.message_id.clone(),
            context_id: Some(context_id.to_owned()),
            task_id: Some(task_id.to_owned()),
            role: Role::User,
            parts: vec![Part::text(self.text.clone())],
            metadata: None,
        }
    }
}

/// The 0.3 shape of a message.
pub fn message_v03(message: &Message) -> Value {
    let mut value = json!({
        "kind": "message",
        "messageId": message.message_id,
        "role": if message.role == Role::User { "user" } else { "agent" },
        "parts": message.parts.iter().map(part_v03).collect::<Vec<_>>(),
    });
    if let Some(context) = &message.context_id {
        value["contextId"] = json!(context);
    }
    if let Some(task) = &message.task_id {
        value["taskId"] = json!(task);
    }
    if let Some(metadata) = &message.metadata {
        value["metadata"] = Value::Object(metadata.clone());
    }
    value
}

fn part_v03(part: &Part) -> Value {
    match (&part.text, &part.data) {
        (Some(text), _) => json!({"kind": "text", "text": text}),
        (None, Some(Value::Object(data))) => json!({"kind": "data", "data": data}),
        (None, Some(other)) => json!({"kind": "data", "data": {"value": other}}),
        (None, None) => json!({"kind": "text", "text": ""}),
    }
}

fn status_v03(status: &TaskStatus) -> Value {
    let mut value = json!({"state": status.state.v03(), "timestamp": status.timestamp});
    if let Some(message) = &status.message {
        value["message"] = message_v03(message);
    }
    value
}

fn artifact_v03(artifact: &Artifact) -> Value {
    json!({
        "artifactId": artifact.artifact_id,
        "name": artifact.name,
        "parts": artifact.parts.iter().map(part_v03).collect::<Vec<_>>(),
    })
}

/// The 0.3 shape of a task.
pub fn task_v03(task: &Task) -> Value {
    let mut value = json!({
        "kind": "task",
        "id": task.id,
        "contextId": task.context_id,
        "status": status_v03(&task.status),
        "artifacts": task.artifacts.iter().map(artifact_v03).collect::<Vec<_>>(),
        "history": task.history.iter().map(message_v03).collect::<Vec<_>>(),
    });
    if let Some(metadata) = &task.metadata {
        value["metadata"] = Value::Object(metadata.clone());
    }
    value
}

/// The 0.3 shape of a stream event.
pub fn event_v03(event: &StreamEvent) -> Value {
    match event {
        StreamEvent::Task(task) => task_v03(task),
        StreamEvent::StatusUpdate { task_id, context_id, status } => json!({
            "kind": "status-update",
            "taskId": task_id,
            "contextId": context_id,
            "status": status_v03(status),
            "final": status.state.is_terminal() || status.state == TaskState::InputRequired,
        }),
        StreamEvent::ArtifactUpdate { task_id, context_id, artifact, append, last_chunk } => json!({
            "kind": "artifact-update",
            "taskId": task_id,
            "contextId": context_id,
            "artifact": artifact_v03(artifact),
            "append": append,
            "lastChunk": last_chunk,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_of_either_version_are_read_and_empty_ones_refused() {
        let v10 = json!({"messageId": "m1", "role": "ROLE_USER", "contextId": "c", "parts": [{"text": "hi"}, {"data": {"k": 1}}]});
        let read = Inbound::read(&v10).unwrap();
        assert_eq!((read.text.as_str(), read.context_id.as_deref()), ("hi\n{\"k\":1}", Some("c")));
        let v03 =
            json!({"kind": "message", "messageId": "m2", "role": "user", "parts": [{"kind": "text", "text": "yo"}]});
        assert_eq!(Inbound::read(&v03).unwrap().text, "yo");
        assert_eq!(Inbound::read(&json!({"messageId": "m3", "parts": [{"text": "  "}]})), None);
        assert_eq!(Inbound::read(&json!({"messageId": "m4"})), None);
    }

    #[test]
    fn tasks_serialize_as_1_0_and_convert_to_0_3() {
        let task = Task {
            id: "t".into(),
            context_id: "c".into(),
            status: TaskStatus {
                state: TaskState::InputRequired,
                message: None,
                timestamp: "2026-11-29T00:00:00Z".into(),
            },
            artifacts: vec![Artifact { artifact_id: "a".into(), name: "answer".into(), parts: vec![Part::text("42")] }],
            history: Vec::new(),
            metadata: None,
        };
        let v10 = serde_json::to_value(&task).unwrap();
        assert_eq!(v10["status"]["state"], "TASK_STATE_INPUT_REQUIRED");
        assert!(v10.get("history").is_none(), "empty fields are left out");
        let v03 = task_v03(&task);
        assert_eq!((v03["kind"].as_str(), v03["status"]["state"].as_str()), (Some("task"), Some("input-required")));
        assert_eq!(v03["artifacts"][0]["parts"][0], json!({"kind": "text", "text": "42"}));
        let event =
            StreamEvent::StatusUpdate { task_id: "t".into(), context_id: "c".into(), status: task.status.clone() };
        assert_eq!(serde_json::to_value(&event).unwrap()["statusUpdate"]["taskId"], "t");
        assert_eq!(event_v03(&event)["final"], true);
    }
}
