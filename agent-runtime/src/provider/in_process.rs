//! The agent's model run inside this process ([`crate::inference`]): what `agent-runtime run`
//! uses for a Model served by the runtime itself (`serve.engine: runtime`). The conversation is
//! rendered with the GGUF's chat template, or as a Question/Answer transcript for base models
//! (`promptFormat: Completion`), and the engine's events become OpenAI chunks. Tools are not
//! offered: llama.cpp's built-in templates have no tool-call format.

use std::sync::Arc;

use agent_crds::model::PromptFormat;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};

use super::prompt::{STOP, completion_prompt};
use super::{ChunkStream, ModelProvider, ModelRequest, ProviderError};
use crate::inference::{ChatTurn, Engine, Event, InferenceError, Prompt, Sampling};
use crate::openai::{ChatChunk, ChunkIdentity, Delta, Message, Role, Usage};

/// A provider generating with an in-process [`Engine`].
pub struct InProcessProvider {
    engine: Arc<Engine>,
    model: String,
    format: PromptFormat,
}

impl InProcessProvider {
    /// Generates with `engine`, answering as model `model`, prompting in `format`.
    pub fn new(engine: Arc<Engine>, model: impl Into<String>, format: PromptFormat) -> Self {
        Self { engine, model: model.into(), format }
    }

    fn prompt(&self, messages: &[Message]) -> (Prompt, &'static [&'static str]) {
        match self.format {
            PromptFormat::Chat => (Prompt::Chat(messages.iter().map(chat_turn).collect()), &[]),
            PromptFormat::Completion => (Prompt::Text(completion_prompt(messages)), &STOP),
        }
    }
}

/// The template's roles: system, user, assistant; a tool's result is shown to the model as the
/// user's message (the built-in templates know no tool role).
fn chat_turn(message: &Message) -> ChatTurn {
    let (role, content) = match message.role {
        Role::System | Role::Developer => ("system", message.content_str().to_owned()),
        Role::User => ("user", message.content_str().to_owned()),
        Role::Assistant => ("assistant", message.content_str().to_owned()),
        Role::Tool => ("user", format!("Tool result: {}", message.content_str())),
    };
    ChatTurn { role: role.to_owned(), content }
}

/// An engine error as a model error: the request's own faults are the model's 400s.
pub fn provider_error(error: &InferenceError) -> ProviderError {
    let status = if error.is_request_fault() { 400 } else { 500 };
    ProviderError::Status { status, message: error.to_string() }
}

impl ModelProvider for InProcessProvider {
    fn stream(&self, request: ModelRequest) -> BoxFuture<'_, Result<ChunkStream, ProviderError>> {
        async move {
            let mut sampling = Sampling::from_request(&request.parameters).map_err(|e| provider_error(&e.into()))?;
            let (prompt, stops) = self.prompt(&request.messages);
            sampling.stop.extend(stops.iter().map(|s| (*s).to_owned()));
            let generation = self.engine.generate(&prompt, sampling).map_err(|e| provider_error(&e))?;
            let chunks = Chunks::new(&self.model, generation.prompt_tokens);
            let stream = generation.into_stream().map(move |event| chunks.chunk(event));
            if request.whole {
                let whole = collect_whole(stream).await;
                return Ok(Box::pin(futures::stream::once(async move { whole })) as ChunkStream);
            }
            Ok(Box::pin(stream) as ChunkStream)
        }
        .boxed()
    }

    fn check(&self) -> BoxFuture<'_, Result<(), ProviderError>> {
        // Loaded before the runtime starts; the engine thread lives as long as the engine.
        async { Ok(()) }.boxed()
    }

    fn supports_tools(&self) -> bool {
        false
    }
}

/// Builds the OpenAI chunks of one generation.
struct Chunks {
    identity: ChunkIdentity,
    prompt_tokens: u64,
}

impl Chunks {
    fn new(model: &str, prompt_tokens: usize) -> Self {
        Self { identity: ChunkIdentity::new(model), prompt_tokens: prompt_tokens as u64 }
    }

    fn chunk(&self, event: Event) -> Result<ChatChunk, ProviderError> {
        let (delta, finish_reason, usage) = match event {
            Event::Text(text) => {
                (Delta { role: Some(Role::Assistant), content: Some(text), ..Delta::default() }, None, None)
            }
            Event::Finished { finish, completion_tokens } => {
                let completion_tokens = u64::from(completion_tokens);
                let usage = Usage {
                    prompt_tokens: self.prompt_tokens,
                    completion_tokens,
                    total_tokens: self.prompt_tokens + completion_tokens,
                };
                (Delta::default(), Some(finish.as_str().to_owned()), Some(usage))
            }
            Event::Failed(error) => return Err(provider_error(&error)),
        };
        Ok(self.identity.chunk(delta, finish_reason, usage))
    }
}

/// One chunk holding the whole answer, its finish reason and usage.
async fn collect_whole(
    stream: impl futures::Stream<Item = Result<ChatChunk, ProviderError>>,
) -> Result<ChatChunk, ProviderError> {
    let mut stream = std::pin::pin!(stream);
    let mut whole: Option<ChatChunk> = None;
    let mut text = String::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        for choice in &chunk.choices {
            text.push_str(choice.delta.content.as_deref().unwrap_or_default());
        }
        let finish = chunk.choices.first().and_then(|c| c.finish_reason.clone());
        let usage = chunk.usage;
        let whole = whole.get_or_insert(chunk);
        if finish.is_some() {
            whole.choices[0].finish_reason = finish;
            whole.usage = usage;
        }
    }
    let mut whole = whole.ok_or_else(|| ProviderError::Malformed("the model ended without an answer".into()))?;
    whole.choices[0].delta = Delta { role: Some(Role::Assistant), content: Some(text), ..Delta::default() };
    Ok(whole)
}
