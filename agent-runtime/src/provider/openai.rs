//! A provider for any OpenAI-compatible endpoint (OpenAI, vLLM, llama.cpp, Ollama, TGI, NIM),
//! through `async-openai`. Streams, so time to first token is known and a quiet model is noticed
//! between chunks; an answer wanted whole is asked for whole (one chunk, bounded by the answer
//! timeout), which costs less than a stream nobody reads piece by piece. Retries
//! 429/5xx/connection failures with backoff, but only before the first chunk: after that the
//! client already has part of the answer.

use std::time::Duration;

use agent_crds::model::PromptFormat;
use agent_crds::runtime_config::ModelConfig;
use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::middleware::HttpRequestFactory;
use futures::future::BoxFuture;
use futures::{FutureExt, Stream, StreamExt};
use reqwest::header::{AUTHORIZATION, HeaderValue};
use serde::Deserialize;
use serde_json::{Value, json};

use super::prompt::{STOP, completion_prompt};
use super::{ChunkStream, ModelProvider, ModelRequest, ProviderError};
use crate::error::error_chain;
use crate::openai::{ChatChunk, ChunkChoice, Delta, FunctionDelta, Role, ToolCall, ToolCallDelta, Usage};
use crate::secret_file::SecretFiles;

/// Timeouts and retries of model calls.
#[derive(Clone, Copy, Debug)]
pub struct CallPolicy {
    /// Longest wait for the first chunk, and between chunks.
    pub idle_timeout: Duration,
    /// Longest wait for an answer asked for whole.
    pub answer_timeout: Duration,
    /// Attempts before giving up, the first included.
    pub attempts: u32,
    /// Delay before the first retry; doubles each time.
    pub backoff: Duration,
}

impl Default for CallPolicy {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(60),
            answer_timeout: Duration::from_secs(300),
            attempts: 3,
            backoff: Duration::from_millis(250),
        }
    }
}

/// Why the provider could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ProviderSetupError {
    /// The API key file could not be read.
    #[error("cannot read the model API key from {path}: {source}")]
    ApiKey {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The CA bundle is not valid PEM.
    #[error("the model CA bundle is not valid PEM: {0}")]
    Ca(reqwest::Error),
    /// A header name or value is invalid.
    #[error("invalid model header {0}")]
    Header(String),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(reqwest::Error),
}

/// An OpenAI-compatible endpoint.
pub struct OpenAiProvider {
    client: Client<OpenAIConfig>,
    model: String,
    format: PromptFormat,
    supports_tools: bool,
    policy: CallPolicy,
}

impl OpenAiProvider {
    /// A provider for the model in `config`. The API key comes from the config's mounted Secret
    /// file (opened with `secrets`, so every call sends the key the file holds now), else from
    /// `fallback_key` (the process environment, read in `main`).
    pub fn new(
        config: &ModelConfig,
        policy: CallPolicy,
        fallback_key: Option<&str>,
        secrets: &SecretFiles,
    ) -> Result<Self, ProviderSetupError> {
        let mut openai = OpenAIConfig::new().with_api_base(config.base_url.trim_end_matches('/'));
        let key_file = match &config.api_key_file {
            Some(path) => Some(
                secrets
                    .open("model.apiKeyFile", path)
                    .map_err(|source| ProviderSetupError::ApiKey { path: path.clone(), source })?,
            ),
            None => None,
        };
        if let (None, Some(key)) = (&key_file, fallback_key) {
            openai = openai.with_api_key(key);
        }
        for (name, value) in &config.headers {
            let header = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| ProviderSetupError::Header(name.clone()))?;
            openai =
                openai.with_header(header, value.as_str()).map_err(|_| ProviderSetupError::Header(name.clone()))?;
        }
        let mut http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(90));
        if let Some(pem) = &config.ca_pem {
            for certificate in reqwest::Certificate::from_pem_bundle(pem.as_bytes()).map_err(ProviderSetupError::Ca)? {
                http = http.add_root_certificate(certificate);
            }
        }
        let http = http.build().map_err(ProviderSetupError::Client)?;
        // A configured Authorization header wins over the key, as it does in the client's config.
        let configured = config.headers.keys().any(|name| name.eq_ignore_ascii_case("authorization"));
        let key_file = key_file.filter(|_| !configured);
        // The key is set on each request rather than in the client's config, which is fixed once
        // built. Retries are this provider's own (before the first chunk only), so the client's
        // built-in retry layer is left out: the two would multiply attempts.
        let service = tower::service_fn(move |factory: HttpRequestFactory| {
            let (http, key_file) = (http.clone(), key_file.clone());
            async move {
                let mut request = factory.build().await?;
                agent_telemetry::propagation::inject_current(request.headers_mut());
                if let Some(key) = key_file {
                    let mut value = HeaderValue::from_str(&format!("Bearer {}", key.current()))
                        .map_err(|_| OpenAIError::InvalidArgument("the model API key is not a valid header".into()))?;
                    value.set_sensitive(true);
                    request.headers_mut().insert(AUTHORIZATION, value);
                }
                http.execute(request).await.map_err(OpenAIError::Reqwest)
            }
        });
        Ok(Self {
            client: Client::with_config(openai).with_http_service(service),
            model: config.model.clone(),
            format: config.prompt_format,
            supports_tools: config.supports_tools && config.prompt_format == PromptFormat::Chat,
            policy,
        })
    }

    fn body(&self, request: &ModelRequest) -> Value {
        let mut body = request.parameters.clone();
        body.insert("model".into(), json!(self.model));
        body.insert("stream".into(), json!(!request.whole));
        if !request.whole {
            body.insert("stream_options".into(), json!({"include_usage": true}));
        }
        match self.format {
            PromptFormat::Chat => {
                body.insert("messages".into(), json!(request.messages));
                if !request.tools.is_empty() && self.supports_tools {
                    body.insert("tools".into(), json!(request.tools));
                }
            }
            PromptFormat::Completion => {
                body.insert("prompt".into(), json!(completion_prompt(&request.messages)));
                let mut stop: Vec<Value> = body.get("stop").and_then(Value::as_array).cloned().unwrap_or_default();
                stop.extend(STOP.iter().map(|s| json!(s)));
                body.insert("stop".into(), Value::Array(stop));
            }
        }
        Value::Object(body)
    }

    async fn open(&self, body: Value, whole: bool) -> Result<ChunkStream, ProviderError> {
        if whole {
            let chunk = match self.format {
                PromptFormat::Chat => {
                    self.client.chat().create_byot::<Value, WholeChat>(body).await.map_err(classify)?.into_chunk()
                }
                PromptFormat::Completion => self
                    .client
                    .completions()
                    .create_byot::<Value, CompletionChunk>(body)
                    .await
                    .map_err(classify)?
                    .into_chat(),
            };
            return Ok(Box::pin(futures::stream::once(async move { Ok(chunk) })));
        }
        let stream: ChunkStream = match self.format {
            PromptFormat::Chat => {
                let raw = self.client.chat().create_stream_byot::<Value, ChatChunk>(body).await.map_err(classify)?;
                Box::pin(raw.map(|item| item.map_err(classify)))
            }
            PromptFormat::Completion => {
                let raw = self
                    .client
                    .completions()
                    .create_stream_byot::<Value, CompletionChunk>(body)
                    .await
                    .map_err(classify)?;
                Box::pin(raw.map(|item| item.map(CompletionChunk::into_chat).map_err(classify)))
            }
        };
        Ok(stream)
    }

    /// Opens the stream and waits for its first chunk (the whole answer, when asked whole),
    /// retrying what may pass.
    async fn first_chunk(&self, body: &Value, whole: bool) -> Result<(ChatChunk, ChunkStream), ProviderError> {
        let mut delay = self.policy.backoff;
        let mut attempt = 1;
        let limit = if whole { self.policy.answer_timeout } else { self.policy.idle_timeout };
        loop {
            let result = tokio::time::timeout(limit, async {
                let mut stream = self.open(body.clone(), whole).await?;
                match stream.next().await {
                    Some(Ok(first)) => Ok((first, stream)),
                    Some(Err(error)) => Err(error),
                    None => Err(ProviderError::Malformed("the stream ended before any chunk".into())),
                }
            })
            .await
            .unwrap_or(Err(ProviderError::Timeout(limit)));
            match result {
                Err(error) if error.is_retryable() && attempt < self.policy.attempts => {
                    tracing::warn!(%error, attempt, ?delay, "model call failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

impl ModelProvider for OpenAiProvider {
    fn stream(&self, request: ModelRequest) -> BoxFuture<'_, Result<ChunkStream, ProviderError>> {
        let body = self.body(&request);
        async move {
            let (first, rest) = self.first_chunk(&body, request.whole).await?;
            let idle = self.policy.idle_timeout;
            let stream = futures::stream::once(async move { Ok(first) }).chain(with_idle_timeout(rest, idle));
            Ok(Box::pin(stream) as ChunkStream)
        }
        .boxed()
    }

    fn check(&self) -> BoxFuture<'_, Result<(), ProviderError>> {
        async move {
            tokio::time::timeout(self.policy.idle_timeout, self.client.models().list_byot::<Value>())
                .await
                .map_err(|_| ProviderError::Timeout(self.policy.idle_timeout))?
                .map(|_| ())
                .map_err(classify)
        }
        .boxed()
    }

    fn supports_tools(&self) -> bool {
        self.supports_tools
    }
}

/// Ends the stream with a timeout error when the model goes quiet for longer than `idle`.
fn with_idle_timeout(
    stream: ChunkStream,
    idle: Duration,
) -> impl Stream<Item = Result<ChatChunk, ProviderError>> + Send {
    futures::stream::unfold(Some(stream), move |state| async move {
        let mut stream = state?;
        match tokio::time::timeout(idle, stream.next()).await {
            Ok(Some(item)) => Some((item, Some(stream))),
            Ok(None) => None,
            Err(_) => Some((Err(ProviderError::Timeout(idle)), None)),
        }
    })
}

fn classify(error: OpenAIError) -> ProviderError {
    match error {
        OpenAIError::ApiError(response) => {
            ProviderError::Status { status: response.status_code.as_u16(), message: response.api_error.message }
        }
        OpenAIError::Reqwest(error) if error.is_timeout() => ProviderError::Timeout(Duration::ZERO),
        OpenAIError::Reqwest(error) => {
            if let Some(status) = error.status() {
                ProviderError::Status { status: status.as_u16(), message: error.to_string() }
            } else {
                ProviderError::Unreachable(error_chain(&error))
            }
        }
        OpenAIError::JSONDeserialize(error, body) => {
            ProviderError::Malformed(format!("{error} in {}", body.chars().take(200).collect::<String>()))
        }
        other => ProviderError::Unreachable(other.to_string()),
    }
}

/// A whole (non-streamed) chat completion, read as the one chunk of its answer.
#[derive(Deserialize)]
struct WholeChat {
    #[serde(default)]
    id: String,
    #[serde(default)]
    created: i64,
    #[serde(default)]
    model: String,
    #[serde(default)]
    choices: Vec<WholeChoice>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct WholeChoice {
    #[serde(default)]
    message: WholeMessage,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize, Default)]
struct WholeMessage {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Vec<ToolCall>,
}

impl WholeChat {
    fn into_chunk(self) -> ChatChunk {
        let choices = self
            .choices
            .into_iter()
            .map(|choice| ChunkChoice {
                index: 0,
                delta: Delta {
                    role: Some(Role::Assistant),
                    content: choice.message.content.filter(|c| !c.is_empty()),
                    tool_calls: choice
                        .message
                        .tool_calls
                        .into_iter()
                        .enumerate()
                        .map(|(index, call)| ToolCallDelta {
                            index,
                            id: Some(call.id),
                            function: Some(FunctionDelta {
                                name: Some(call.function.name),
                                arguments: Some(call.function.arguments),
                            }),
                        })
                        .collect(),
                },
                finish_reason: choice.finish_reason,
            })
            .collect();
        ChatChunk {
            id: self.id,
            object: "chat.completion.chunk".into(),
            created: self.created,
            model: self.model,
            choices,
            usage: self.usage,
            citations: Vec::new(),
            pending_approval: None,
        }
    }
}

/// A `/v1/completions` stream chunk (or whole answer: the same shape).
#[derive(Deserialize)]
struct CompletionChunk {
    #[serde(default)]
    id: String,
    #[serde(default)]
    created: i64,
    #[serde(default)]
    model: String,
    #[serde(default)]
    choices: Vec<CompletionChoice>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct CompletionChoice {
    #[serde(default)]
    text: String,
    #[serde(default)]
    finish_reason: Option<String>,
}

impl CompletionChunk {
    fn into_chat(self) -> ChatChunk {
        ChatChunk {
            id: self.id,
            object: "chat.completion.chunk".into(),
            created: self.created,
            model: self.model,
            choices: self
                .choices
                .into_iter()
                .map(|c| ChunkChoice {
                    index: 0,
                    delta: Delta {
                        role: None,
                        content: Some(c.text).filter(|t| !t.is_empty()),
                        tool_calls: Vec::new(),
                    },
                    finish_reason: c.finish_reason,
                })
                .collect(),
            usage: self.usage,
            citations: Vec::new(),
            pending_approval: None,
        }
    }
}
