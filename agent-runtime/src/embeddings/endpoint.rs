//! An embedder backed by any OpenAI-compatible `/v1/embeddings` endpoint (OpenAI, vLLM,
//! llama.cpp, Ollama, TEI, NIM). Sends batches, puts the answers back in input order, checks
//! their dimension and normalises them, so callers cannot tell it from the built-in model.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::Instrument as _;

use super::{EmbedError, Embedder, l2_normalize};
use crate::error::error_chain;
use crate::secret_file::SecretValue;
use crate::traces;
use crate::usage::Ledger;

/// Texts sent in one request; providers cap the inputs of a request (OpenAI at 2048, many
/// self-hosted servers much lower), and smaller requests fail and retry more cheaply.
pub const BATCH_SIZE: usize = 64;
/// Longest wait to open a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for a whole request, answer included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Characters of a non-JSON error body quoted in an error.
const QUOTED_BODY_CHARS: usize = 200;

/// An OpenAI-compatible embeddings endpoint.
pub struct EndpointEmbedder {
    client: reqwest::Client,
    url: String,
    model: String,
    dimension: usize,
    api_key: Option<SecretValue>,
    usage: Option<Arc<Ledger>>,
}

/// The part of an embeddings response that is used.
#[derive(Deserialize)]
struct EmbeddingsResponse {
    data: Vec<EmbeddingItem>,
    /// What the call used, when the server says.
    usage: Option<EmbeddingsUsage>,
}

#[derive(Deserialize)]
struct EmbeddingsUsage {
    prompt_tokens: u64,
}

#[derive(Deserialize)]
struct EmbeddingItem {
    /// Position of the input; some servers leave it out and answer in order.
    index: Option<usize>,
    embedding: Vec<f32>,
}

impl EndpointEmbedder {
    /// An embedder calling `{base_url}/embeddings` (`base_url` includes `/v1`) with `model`,
    /// expecting `dimension`-dimensional vectors, sending `api_key` (its value at each call) as a
    /// bearer token if given.
    pub fn new(
        base_url: &str,
        model: &str,
        dimension: usize,
        api_key: Option<SecretValue>,
    ) -> Result<Self, EmbedError> {
        crate::install_crypto_provider();
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(EmbedError::Client)?;
        Ok(Self {
            client,
            url: format!("{}/embeddings", base_url.trim_end_matches('/')),
            model: model.to_owned(),
            dimension,
            api_key,
            usage: None,
        })
    }

    /// The same embedder, counting its calls' tokens (and cost) in `usage`.
    #[must_use]
    pub fn counted_in(mut self, usage: Option<Arc<Ledger>>) -> Self {
        self.usage = usage;
        self
    }

    /// Embeds one batch of at most [`BATCH_SIZE`] texts, in an `embeddings` span.
    async fn embed_batch(&self, batch: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let span = traces::embeddings(&self.model, &traces::Server::of(&self.url), batch.len());
        let embedded = self.send_batch(batch).instrument(span.clone()).await;
        match &embedded {
            Ok(_) => {
                span.record("gen_ai.embeddings.dimension.count", traces::int(self.dimension));
            }
            Err(error) => traces::record_error(&span, "embeddings", &error.to_string()),
        }
        embedded
    }

    async fn send_batch(&self, batch: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut request = self.client.post(&self.url).json(&json!({ "model": self.model, "input": batch }));
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key.current());
        }
        let mut request = request.build().map_err(|e| self.unreachable(&e))?;
        agent_telemetry::propagation::inject_current(request.headers_mut());
        let response = self.client.execute(request).await.map_err(|e| self.unreachable(&e))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(EmbedError::Status {
                url: self.url.clone(),
                status: status.as_u16(),
                message: error_message(&body),
            });
        }
        let body: EmbeddingsResponse = response
            .json()
            .await
            .map_err(|e| if e.is_timeout() { self.unreachable(&e) } else { self.invalid(error_chain(&e)) })?;
        if let Some(usage) = &body.usage {
            tracing::Span::current().record("gen_ai.usage.input_tokens", traces::int(usage.prompt_tokens));
        }
        if let (Some(ledger), Some(usage)) = (&self.usage, &body.usage) {
            ledger.record(&self.model, usage.prompt_tokens, 0);
        }
        let mut vectors = in_input_order(body.data, batch.len()).map_err(|reason| self.invalid(reason))?;
        for vector in &mut vectors {
            if vector.len() != self.dimension {
                return Err(EmbedError::Dimension {
                    model: self.model.clone(),
                    expected: self.dimension,
                    got: vector.len(),
                });
            }
            l2_normalize(vector);
        }
        Ok(vectors)
    }

    fn unreachable(&self, error: &reqwest::Error) -> EmbedError {
        EmbedError::Unreachable { url: self.url.clone(), reason: error_chain(error) }
    }

    fn invalid(&self, reason: String) -> EmbedError {
        EmbedError::InvalidResponse { url: self.url.clone(), reason }
    }
}

impl Embedder for EndpointEmbedder {
    fn dimension(&self) -> usize {
        self.dimension
    }

    fn model(&self) -> &str {
        &self.model
    }

    fn embed(&self, texts: Vec<String>) -> BoxFuture<'_, Result<Vec<Vec<f32>>, EmbedError>> {
        async move {
            let mut vectors = Vec::with_capacity(texts.len());
            for batch in texts.chunks(BATCH_SIZE) {
                vectors.extend(self.embed_batch(batch).await?);
            }
            Ok(vectors)
        }
        .boxed()
    }
}

/// Puts the returned vectors in input order, by their `index` (the order of the list when the
/// server sends none), and checks there is exactly one per input.
fn in_input_order(items: Vec<EmbeddingItem>, inputs: usize) -> Result<Vec<Vec<f32>>, String> {
    if items.len() != inputs {
        return Err(format!("{} embeddings for {inputs} inputs", items.len()));
    }
    let mut slots: Vec<Option<Vec<f32>>> = vec![None; inputs];
    for (position, item) in items.into_iter().enumerate() {
        let index = item.index.unwrap_or(position);
        let slot = slots.get_mut(index).ok_or_else(|| format!("embedding index {index} for {inputs} inputs"))?;
        if slot.replace(item.embedding).is_some() {
            return Err(format!("embedding index {index} appears twice"));
        }
    }
    // With as many items as inputs and no index twice, every slot is filled.
    Ok(slots.into_iter().flatten().collect())
}

/// The message of an OpenAI-style error body (`{"error": {"message": ..}}`, `{"error": ".."}`
/// or `{"message": ..}`), else the start of the body.
fn error_message(body: &str) -> String {
    let json: Option<Value> = serde_json::from_str(body).ok();
    let message = json.as_ref().and_then(|v| {
        v.pointer("/error/message").or_else(|| v.get("error")).or_else(|| v.get("message")).and_then(Value::as_str)
    });
    match message {
        Some(message) => message.to_owned(),
        None if body.trim().is_empty() => "(empty body)".to_owned(),
        None => body.trim().chars().take(QUOTED_BODY_CHARS).collect(),
    }
}

#[cfg(test)]
mod tests;
