//! A provider whose every call is a `chat {model}` span (GenAI conventions): opened before the
//! request is sent (so the model is sent its `traceparent`) and ended with the stream, carrying
//! the response's model and id, time to first chunk, token usage, finish reasons and errors.

use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use futures::future::BoxFuture;
use tracing::{Instrument as _, Span};

use super::{ChunkStream, ModelProvider, ModelRequest, ProviderError};
use crate::openai::ChatChunk;
use crate::traces::{self, Server};

/// The agent's provider, traced.
pub struct Traced {
    inner: Arc<dyn ModelProvider>,
    model: String,
    server: Server,
}

impl Traced {
    /// Traces the calls to `inner`, a model named `model` at `base_url`.
    pub fn new(inner: Arc<dyn ModelProvider>, model: String, base_url: &str) -> Self {
        Self { inner, model, server: Server::of(base_url) }
    }
}

impl ModelProvider for Traced {
    fn stream(&self, request: ModelRequest) -> BoxFuture<'_, Result<ChunkStream, ProviderError>> {
        Box::pin(async move {
            let span = traces::chat(&self.model, &self.server, !request.whole);
            let started = Instant::now();
            let chunks = match self.inner.stream(request).instrument(span.clone()).await {
                Ok(chunks) => chunks,
                Err(error) => {
                    traces::record_error(&span, error.kind(), &error.to_string());
                    return Err(error);
                }
            };
            let mut call = Call { span, started, first: true, finish_reasons: Vec::new() };
            let traced = chunks.map(move |chunk| {
                call.see(&chunk);
                chunk
            });
            Ok(Box::pin(traced) as ChunkStream)
        })
    }

    fn check(&self) -> BoxFuture<'_, Result<(), ProviderError>> {
        self.inner.check()
    }

    fn supports_tools(&self) -> bool {
        self.inner.supports_tools()
    }
}

/// One call's span while its chunks arrive; the span ends when the stream is dropped.
struct Call {
    span: Span,
    started: Instant,
    first: bool,
    finish_reasons: Vec<String>,
}

impl Call {
    fn see(&mut self, chunk: &Result<ChatChunk, ProviderError>) {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(error) => return traces::record_error(&self.span, error.kind(), &error.to_string()),
        };
        if std::mem::take(&mut self.first) {
            self.span.record("gen_ai.response.time_to_first_chunk", self.started.elapsed().as_secs_f64());
            self.span.record("gen_ai.response.id", chunk.id.as_str());
            self.span.record("gen_ai.response.model", chunk.model.as_str());
        }
        if let Some(usage) = &chunk.usage {
            traces::record_usage(&self.span, usage);
        }
        let reasons = chunk.choices.iter().filter_map(|c| c.finish_reason.clone());
        let before = self.finish_reasons.len();
        self.finish_reasons.extend(reasons);
        if self.finish_reasons.len() > before {
            traces::record_finish_reasons(&self.span, &self.finish_reasons);
        }
    }
}
