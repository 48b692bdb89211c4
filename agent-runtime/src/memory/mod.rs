//! Long-term memory: facts the agent keeps across conversations, agent-wide or for one session,
//! embedded and stored beside its knowledge; recalled by relevance within a token budget, and
//! forgotten after the configured retention.

pub mod tools;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tracing::Instrument as _;

use crate::budget::estimate_tokens;
use crate::embeddings::{EmbedError, Embedder};
use crate::openai::{Message, Role};
use crate::vector::bm25::Bm25;
use crate::vector::{Match, PayloadFilter, Point, SearchRequest, VectorError, VectorStore};

/// [`crate::knowledge::KIND`] of memories.
pub const MEMORY: &str = "memory";

/// Who a memory belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every conversation of the agent.
    Agent,
    /// One session.
    Session(String),
}

/// Why a memory operation failed.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    /// Nothing to remember.
    #[error("a memory needs text")]
    Empty,
    /// Embedding failed.
    #[error(transparent)]
    Embed(#[from] EmbedError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] VectorError),
}

/// The agent's long-term memory.
pub struct Memory {
    store: Arc<dyn VectorStore>,
    embedder: Arc<dyn Embedder>,
    bm25: Bm25,
    retention: Option<Duration>,
}

impl Memory {
    /// Memory in `store`; memories older than `retention` are neither recalled nor kept.
    pub fn new(store: Arc<dyn VectorStore>, embedder: Arc<dyn Embedder>, retention: Option<Duration>) -> Self {
        Self { store, embedder, bm25: Bm25::new(), retention }
    }

    /// Stores `text`; durable when it returns.
    pub async fn remember(&self, text: &str, scope: &Scope) -> Result<(), MemoryError> {
        let span = crate::traces::memory("create_memory", MEMORY);
        let stored = self.store_memory(text, scope).instrument(span.clone()).await;
        match &stored {
            Ok(()) => {
                span.record("gen_ai.memory.record.count", 1);
            }
            Err(error) => crate::traces::record_error(&span, "memory", &error.to_string()),
        }
        stored
    }

    async fn store_memory(&self, text: &str, scope: &Scope) -> Result<(), MemoryError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(MemoryError::Empty);
        }
        let dense = self.embedder.embed(vec![text.to_owned()]).await?.pop().unwrap_or_default();
        let now = jiff::Timestamp::now();
        let (scope_name, session) = match scope {
            Scope::Agent => ("agent", Value::Null),
            Scope::Session(id) => ("session", json!(id)),
        };
        let payload = json!({
            crate::knowledge::KIND: MEMORY, "scope": scope_name, "session": session, "text": text,
            "createdUnix": now.as_second(), "created": now.to_string(),
        });
        let id = rand::random::<u64>() >> 1;
        let point = Point {
            id,
            dense,
            sparse: Some(self.bm25.document(text)),
            payload: payload.as_object().cloned().unwrap_or_default(),
        };
        self.store.upsert(vec![point]).await?;
        Ok(())
    }

    /// Memories relevant to `query` for `session` (its own and the agent-wide ones), best first,
    /// as many as fit in `budget` tokens.
    pub async fn recall(
        &self,
        query: &str,
        session: Option<&str>,
        limit: usize,
        budget: usize,
    ) -> Result<Vec<String>, MemoryError> {
        let dense = self.embedder.embed(vec![query.to_owned()]).await?.pop();
        let mut scopes = vec![vec![("scope".to_owned(), Match::Keyword("agent".to_owned()))]];
        if let Some(id) = session {
            scopes.push(vec![
                ("scope".to_owned(), Match::Keyword("session".to_owned())),
                ("session".to_owned(), Match::Keyword(id.to_owned())),
            ]);
        }
        let mut hits = Vec::new();
        for scope in scopes {
            let mut must = vec![(crate::knowledge::KIND.to_owned(), Match::Keyword(MEMORY.to_owned()))];
            must.extend(scope);
            if let Some(cutoff) = self.cutoff() {
                must.push(("createdUnix".to_owned(), Match::Range { gte: Some(seconds(cutoff)), lte: None }));
            }
            let request = SearchRequest {
                dense: dense.clone(),
                sparse: None,
                limit,
                filter: Some(PayloadFilter { must }),
                score_threshold: Some(0.25),
            };
            hits.extend(self.store.search(request).await?);
        }
        hits.sort_by(|a, b| b.score.total_cmp(&a.score));
        let mut recalled = Vec::new();
        let mut used = 0;
        for hit in hits.into_iter().take(limit) {
            let text = hit.payload.get("text").and_then(Value::as_str).unwrap_or_default().to_owned();
            used += estimate_tokens(&[Message::text(Role::System, text.clone())]);
            if used > budget {
                break;
            }
            recalled.push(text);
        }
        Ok(recalled)
    }

    /// Deletes memories past the retention.
    pub async fn forget_expired(&self) -> Result<(), MemoryError> {
        let Some(cutoff) = self.cutoff() else { return Ok(()) };
        let filter = PayloadFilter {
            must: vec![
                (crate::knowledge::KIND.to_owned(), Match::Keyword(MEMORY.to_owned())),
                ("createdUnix".to_owned(), Match::Range { gte: None, lte: Some(seconds(cutoff) - 1.0) }),
            ],
        };
        self.store.delete(filter).await?;
        Ok(())
    }

    fn cutoff(&self) -> Option<i64> {
        let retention = i64::try_from(self.retention?.as_secs()).ok()?;
        Some(jiff::Timestamp::now().as_second() - retention)
    }
}

/// Unix seconds as the payload range filter's number type.
#[allow(clippy::cast_precision_loss)] // Unix seconds stay far below 2^53, where f64 is exact.
fn seconds(unix: i64) -> f64 {
    unix as f64
}
