//! The OpenAI chat wire format, as much of it as an agent speaks: requests, messages, tool calls,
//! responses and stream chunks. Unknown request fields are kept so they reach the model untouched.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A chat message.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Message {
    /// `system`, `user`, `assistant` or `tool`.
    pub role: Role,
    /// Text content; parts arrays are flattened to their text.
    #[serde(default, deserialize_with = "content_text", skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Tool calls the assistant made.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// For `tool` messages: the call answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// Optional participant name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Message {
    /// A message with text content.
    pub fn text(role: Role, content: impl Into<String>) -> Self {
        Self { role, content: Some(content.into()), tool_calls: Vec::new(), tool_call_id: None, name: None }
    }

    /// The text of the message, empty if none.
    pub fn content_str(&self) -> &str {
        self.content.as_deref().unwrap_or_default()
    }
}

/// Who wrote a message.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions.
    System,
    /// Developer instructions (newer clients); treated like `system`.
    Developer,
    /// The user.
    User,
    /// The model.
    Assistant,
    /// A tool result.
    Tool,
}

fn content_text<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<Value>::deserialize(deserializer)? {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(text),
        Some(Value::Array(parts)) => {
            Some(parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join("\n"))
        }
        Some(other) => return Err(serde::de::Error::custom(format!("content must be a string or parts, got {other}"))),
    })
}

/// A function call requested by the model.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct ToolCall {
    /// Call id, echoed in the tool result.
    #[serde(default)]
    pub id: String,
    /// Always `function`.
    #[serde(rename = "type", default = "function_type")]
    pub kind: String,
    /// The function and its JSON arguments.
    pub function: FunctionCall,
}

fn function_type() -> String {
    "function".to_owned()
}

/// Name and JSON-encoded arguments of a call.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct FunctionCall {
    /// Function name.
    #[serde(default)]
    pub name: String,
    /// Arguments as a JSON string.
    #[serde(default)]
    pub arguments: String,
}

/// `POST /v1/chat/completions` request body.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct ChatRequest {
    /// Model name; an agent answers to any name.
    #[serde(default)]
    pub model: String,
    /// The conversation (or, in a session, the new turn).
    pub messages: Vec<Message>,
    /// Stream chunks as server-sent events.
    #[serde(default)]
    pub stream: bool,
    /// Stream options (`include_usage`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    /// End-user id; used as the session id when no `X-Session-Id` header is sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Sampling and other parameters, passed to the model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Stream options.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default)]
pub struct StreamOptions {
    /// Send a final chunk with token usage.
    #[serde(default)]
    pub include_usage: bool,
}

/// Token usage.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
    /// Sum.
    pub total_tokens: u64,
}

impl Usage {
    /// Adds another call's usage.
    pub fn add(&mut self, other: Usage) {
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
        self.total_tokens += other.total_tokens;
    }
}

/// A non-streamed chat completion.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct ChatResponse {
    /// Completion id.
    #[serde(default)]
    pub id: String,
    /// `chat.completion`.
    #[serde(default)]
    pub object: String,
    /// Unix seconds.
    #[serde(default)]
    pub created: i64,
    /// Model name.
    #[serde(default)]
    pub model: String,
    /// Choices; agents return one.
    pub choices: Vec<Choice>,
    /// Token usage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// The knowledge chunks the answer was given (recipes), numbered as the answer cites them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub citations: Vec<Citation>,
    /// The approval the turn waits on, when a tool call needs a human decision (an extension
    /// field: OpenAI SDKs keep it as an extra attribute).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_approval: Option<Value>,
}

/// A knowledge chunk an answer was given, numbered as the prompt showed it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Citation {
    /// Number the prompt gave the chunk (`[1]`, `[2]`, ...).
    pub index: usize,
    /// Id of the chunk's document.
    pub document_id: String,
    /// Name of the chunk's document.
    pub document_name: String,
    /// Position of the chunk in its document.
    pub chunk: u64,
    /// Retrieval or rerank score.
    pub score: f32,
    /// The chunk's text.
    pub text: String,
}

/// One choice of a completion.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Choice {
    /// Index.
    #[serde(default)]
    pub index: u32,
    /// The message.
    pub message: Message,
    /// Why generation stopped.
    #[serde(default)]
    pub finish_reason: Option<String>,
}

/// One streamed chunk.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct ChatChunk {
    /// Completion id.
    #[serde(default)]
    pub id: String,
    /// `chat.completion.chunk`.
    #[serde(default)]
    pub object: String,
    /// Unix seconds.
    #[serde(default)]
    pub created: i64,
    /// Model name.
    #[serde(default)]
    pub model: String,
    /// Deltas.
    #[serde(default)]
    pub choices: Vec<ChunkChoice>,
    /// Usage, in the final chunk when asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// The knowledge chunks the answer was given (recipes), in the final chunk.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub citations: Vec<Citation>,
    /// The approval the turn waits on (final chunk; see [`ChatResponse::pending_approval`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_approval: Option<Value>,
}

/// One choice of a chunk.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct ChunkChoice {
    /// Index.
    #[serde(default)]
    pub index: u32,
    /// What changed.
    #[serde(default)]
    pub delta: Delta,
    /// Set in the last chunk of the choice.
    #[serde(default)]
    pub finish_reason: Option<String>,
}

/// Id, creation time and model name shared by every chunk of one answer.
#[derive(Clone, Debug)]
pub struct ChunkIdentity {
    /// `chatcmpl-<16 hex>`.
    pub id: String,
    /// Unix seconds.
    pub created: i64,
    /// The model answering.
    pub model: String,
}

impl ChunkIdentity {
    /// A new answer of `model`.
    pub fn new(model: &str) -> Self {
        Self {
            id: format!("chatcmpl-{:016x}", rand::random::<u64>()),
            created: jiff::Timestamp::now().as_second(),
            model: model.to_owned(),
        }
    }

    /// A chunk of this answer with one choice.
    pub fn chunk(&self, delta: Delta, finish_reason: Option<String>, usage: Option<Usage>) -> ChatChunk {
        ChatChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".into(),
            created: self.created,
            model: self.model.clone(),
            choices: vec![ChunkChoice { index: 0, delta, finish_reason }],
            usage,
            citations: Vec::new(),
            pending_approval: None,
        }
    }
}

/// The change a chunk carries.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct Delta {
    /// Role, in the first chunk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// Text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Partial tool calls, merged by index.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCallDelta>,
}

/// A partial tool call in a stream.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct ToolCallDelta {
    /// Which call this part belongs to.
    #[serde(default)]
    pub index: usize,
    /// Call id, in the first part.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Name and argument fragments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<FunctionDelta>,
}

/// Fragments of a function call.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct FunctionDelta {
    /// Name fragment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Arguments fragment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<String>,
}

/// A tool offered to the model.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ToolSpec {
    /// Always `function`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The function.
    pub function: FunctionSpec,
}

/// A function offered to the model.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct FunctionSpec {
    /// Name the model calls it by.
    pub name: String,
    /// What it does.
    pub description: String,
    /// JSON schema of its arguments.
    pub parameters: Value,
}
