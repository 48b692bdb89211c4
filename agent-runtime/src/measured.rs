//! Latency of retrieval's two parts on `/metrics`: a [`VectorStore`] and an [`Embedder`]
//! wrapped so every call is timed, whatever the backend.

use std::sync::Arc;
use std::time::Instant;

use futures::future::BoxFuture;

use crate::embeddings::{EmbedError, Embedder};
use crate::metrics::Metrics;
use crate::vector::{Hit, PayloadFilter, Point, SearchRequest, VectorError, VectorStore};

/// A vector store whose calls are timed into `agent_vector_operation_seconds{operation}`.
pub struct MeasuredStore {
    inner: Arc<dyn VectorStore>,
    metrics: Arc<Metrics>,
}

impl MeasuredStore {
    /// Times the calls of `inner`.
    pub fn new(inner: Arc<dyn VectorStore>, metrics: Arc<Metrics>) -> Self {
        Self { inner, metrics }
    }

    fn timed<'a, T: Send + 'a>(
        &'a self,
        operation: &'static str,
        call: BoxFuture<'a, Result<T, VectorError>>,
    ) -> BoxFuture<'a, Result<T, VectorError>> {
        Box::pin(async move {
            let started = Instant::now();
            let result = call.await;
            self.metrics.vector_operation(operation, result.is_ok(), started.elapsed());
            result
        })
    }
}

impl VectorStore for MeasuredStore {
    fn upsert(&self, points: Vec<Point>) -> BoxFuture<'_, Result<(), VectorError>> {
        self.timed("upsert", self.inner.upsert(points))
    }

    fn delete(&self, filter: PayloadFilter) -> BoxFuture<'_, Result<(), VectorError>> {
        self.timed("delete", self.inner.delete(filter))
    }

    fn search(&self, request: SearchRequest) -> BoxFuture<'_, Result<Vec<Hit>, VectorError>> {
        self.timed("search", self.inner.search(request))
    }

    fn count(&self, filter: Option<PayloadFilter>) -> BoxFuture<'_, Result<u64, VectorError>> {
        self.timed("count", self.inner.count(filter))
    }

    fn scroll(&self, filter: Option<PayloadFilter>, limit: usize) -> BoxFuture<'_, Result<Vec<Hit>, VectorError>> {
        self.timed("scroll", self.inner.scroll(filter, limit))
    }

    fn dense_vectors(&self, ids: Vec<u64>) -> BoxFuture<'_, Result<Vec<Option<Vec<f32>>>, VectorError>> {
        self.timed("retrieve", self.inner.dense_vectors(ids))
    }
}

/// An embedder whose calls are timed into `agent_embedding_seconds` and whose texts are
/// counted in `agent_embedded_texts`.
pub struct MeasuredEmbedder {
    inner: Arc<dyn Embedder>,
    metrics: Arc<Metrics>,
}

impl MeasuredEmbedder {
    /// Times the calls of `inner`.
    pub fn new(inner: Arc<dyn Embedder>, metrics: Arc<Metrics>) -> Self {
        Self { inner, metrics }
    }
}

impl Embedder for MeasuredEmbedder {
    fn dimension(&self) -> usize {
        self.inner.dimension()
    }

    fn model(&self) -> &str {
        self.inner.model()
    }

    fn embed(&self, texts: Vec<String>) -> BoxFuture<'_, Result<Vec<Vec<f32>>, EmbedError>> {
        Box::pin(async move {
            let (started, count) = (Instant::now(), texts.len());
            let result = self.inner.embed(texts).await;
            self.metrics.embedding(count, result.is_ok(), started.elapsed());
            result
        })
    }
}
