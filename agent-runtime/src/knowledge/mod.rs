//! Knowledge: documents an agent was given, split into chunks, embedded (dense and BM25 sparse)
//! and kept in the agent's vector store; and search over them. Documents are identified by the
//! hash of their text, so ingesting the same content twice stores it once.

pub mod chunk;
pub mod open;
pub mod parse;

use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use self::chunk::{ChunkSize, TokenCounter, chunk};
use self::parse::{Format, ParseError, to_text};
use crate::embeddings::{EmbedError, Embedder};
use crate::vector::bm25::Bm25;
use crate::vector::{Hit, Match, PayloadFilter, Point, SearchRequest, VectorError, VectorStore};

/// Payload key telling knowledge chunks from memories.
pub const KIND: &str = "kind";
/// [`KIND`] of knowledge chunks.
pub const KNOWLEDGE: &str = "knowledge";
/// Most chunks one document may have; larger documents are refused, not truncated.
pub const MAX_CHUNKS: usize = 4096;

/// A stored document.
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Document {
    /// Content hash (hex), stable across re-ingestion.
    pub id: String,
    /// Name given at upload (file name or URL).
    pub name: String,
    /// Number of chunks.
    pub chunks: u64,
    /// When it was ingested (RFC 3339).
    pub created: String,
}

/// The outcome of an ingest.
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Ingested {
    /// The document.
    pub document: Document,
    /// `false` when the same content was already stored.
    pub created: bool,
}

/// One search result.
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Passage {
    /// Document id.
    pub document_id: String,
    /// Document name.
    pub document_name: String,
    /// Position of the chunk in the document.
    pub chunk: u64,
    /// The chunk's text.
    pub text: String,
    /// Relevance score (higher is better; fused ranks for hybrid search).
    pub score: f32,
}

/// Why a knowledge operation failed.
#[derive(Debug, thiserror::Error)]
pub enum KnowledgeError {
    /// The document cannot be read.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// The document is too large.
    #[error("the document has {chunks} chunks; the limit is {MAX_CHUNKS}")]
    TooLarge {
        /// Chunks it would have.
        chunks: usize,
    },
    /// Embedding failed.
    #[error(transparent)]
    Embed(#[from] EmbedError),
    /// The vector store failed.
    #[error(transparent)]
    Store(#[from] VectorError),
}

/// Ingestion and search over an agent's documents.
pub struct Knowledge {
    store: Arc<dyn VectorStore>,
    /// The embedder of the stored chunks (rerankers reuse it).
    pub embedder: Arc<dyn Embedder>,
    bm25: Bm25,
    tokens: Arc<dyn TokenCounter>,
    chunking: ChunkSize,
}

impl Knowledge {
    /// Knowledge kept in `store`, embedded by `embedder`, chunked to `chunking` tokens.
    pub fn new(
        store: Arc<dyn VectorStore>,
        embedder: Arc<dyn Embedder>,
        tokens: Arc<dyn TokenCounter>,
        chunking: ChunkSize,
    ) -> Self {
        Self { store, embedder, bm25: Bm25::new(), tokens, chunking }
    }

    /// Reads, chunks, embeds and stores a document; durable when it returns.
    pub async fn ingest(
        &self,
        name: &str,
        content_type: Option<&str>,
        bytes: &[u8],
    ) -> Result<Ingested, KnowledgeError> {
        let format = Format::detect(content_type, Some(name))?;
        let text = if format == Format::Pdf {
            let owned = bytes.to_vec();
            tokio::task::spawn_blocking(move || to_text(&owned, format))
                .await
                .map_err(|_| ParseError::Pdf("the PDF parser stopped".into()))??
        } else {
            to_text(bytes, format)?
        };
        let id = content_id(&text);
        if let Some(existing) = self.document(&id).await? {
            return Ok(Ingested { document: existing, created: false });
        }
        let chunks = chunk(&text, self.chunking, self.tokens.as_ref());
        if chunks.is_empty() {
            return Err(ParseError::Empty.into());
        }
        if chunks.len() > MAX_CHUNKS {
            return Err(KnowledgeError::TooLarge { chunks: chunks.len() });
        }
        let dense = self.embedder.embed(chunks.clone()).await?;
        let created = jiff::Timestamp::now().to_string();
        let total = chunks.len() as u64;
        let points = chunks
            .into_iter()
            .zip(dense)
            .enumerate()
            .map(|(index, (text, vector))| Point {
                id: point_id(&id, index as u64),
                sparse: Some(self.bm25.document(&text)),
                dense: vector,
                payload: payload(json!({
                    KIND: KNOWLEDGE, "documentId": id, "documentName": name, "chunk": index, "chunks": total,
                    "text": text, "created": created,
                })),
            })
            .collect();
        self.store.upsert(points).await?;
        Ok(Ingested { document: Document { id, name: name.to_owned(), chunks: total, created }, created: true })
    }

    /// The document `id`, if stored.
    pub async fn document(&self, id: &str) -> Result<Option<Document>, KnowledgeError> {
        let first = self.store.scroll(Some(first_chunks(Some(id))), 1).await?;
        Ok(first.first().map(document_of))
    }

    /// Every stored document.
    pub async fn documents(&self) -> Result<Vec<Document>, KnowledgeError> {
        let firsts = self.store.scroll(Some(first_chunks(None)), 100_000).await?;
        let mut documents: Vec<Document> = firsts.iter().map(document_of).collect();
        documents.sort_by(|a, b| a.created.cmp(&b.created).then_with(|| a.name.cmp(&b.name)));
        Ok(documents)
    }

    /// Deletes the document `id`; returns whether it existed.
    pub async fn delete(&self, id: &str) -> Result<bool, KnowledgeError> {
        if self.document(id).await?.is_none() {
            return Ok(false);
        }
        self.store.delete(document_filter(id)).await?;
        Ok(true)
    }

    /// The `top_k` passages most relevant to `query`: dense, or hybrid (dense + BM25 fused by rank).
    /// `filter` restricts by payload (e.g. `documentId`).
    pub async fn search(
        &self,
        query: &str,
        top_k: usize,
        hybrid: bool,
        filter: Vec<(String, Match)>,
    ) -> Result<Vec<Passage>, KnowledgeError> {
        self.search_above(query, top_k, hybrid, filter, None).await
    }

    /// [`Knowledge::search`] keeping only passages whose dense similarity reaches `threshold`.
    pub async fn search_above(
        &self,
        query: &str,
        top_k: usize,
        hybrid: bool,
        filter: Vec<(String, Match)>,
        threshold: Option<f32>,
    ) -> Result<Vec<Passage>, KnowledgeError> {
        let dense = self.embedder.embed(vec![query.to_owned()]).await?.pop();
        let mut must = vec![(KIND.to_owned(), Match::Keyword(KNOWLEDGE.to_owned()))];
        must.extend(filter);
        let request = SearchRequest {
            dense,
            sparse: hybrid.then(|| self.bm25.query(query)),
            limit: top_k.max(1),
            filter: Some(PayloadFilter { must }),
            score_threshold: threshold,
        };
        Ok(self.store.search(request).await?.iter().map(passage_of).collect())
    }

    /// The stored dense vectors of `passages`, in order; `None` where the store cannot say.
    pub async fn vectors_of(&self, passages: &[Passage]) -> Result<Vec<Option<Vec<f32>>>, KnowledgeError> {
        let ids = passages.iter().map(|p| point_id(&p.document_id, p.chunk)).collect();
        Ok(self.store.dense_vectors(ids).await?)
    }

    /// The `top_k` passages by BM25 alone (for comparison and keyword lookups).
    pub async fn search_sparse(&self, query: &str, top_k: usize) -> Result<Vec<Passage>, KnowledgeError> {
        let request = SearchRequest {
            dense: None,
            sparse: Some(self.bm25.query(query)),
            limit: top_k.max(1),
            filter: Some(PayloadFilter { must: vec![(KIND.to_owned(), Match::Keyword(KNOWLEDGE.to_owned()))] }),
            score_threshold: None,
        };
        Ok(self.store.search(request).await?.iter().map(passage_of).collect())
    }
}

/// Hex SHA-256 of the normalised text (whitespace collapsed), first 16 bytes.
pub fn content_id(text: &str) -> String {
    let normalised = text.split_whitespace().collect::<Vec<_>>().join(" ");
    Sha256::digest(normalised.as_bytes()).iter().take(16).fold(String::with_capacity(32), |mut hex, byte| {
        use std::fmt::Write;
        let _ = write!(hex, "{byte:02x}");
        hex
    })
}

/// A stable point id for chunk `index` of document `id`.
fn point_id(id: &str, index: u64) -> u64 {
    let digest = Sha256::new().chain_update(id.as_bytes()).chain_update(index.to_le_bytes()).finalize();
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(bytes) >> 1
}

fn payload(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn document_filter(id: &str) -> PayloadFilter {
    PayloadFilter {
        must: vec![
            (KIND.to_owned(), Match::Keyword(KNOWLEDGE.to_owned())),
            ("documentId".to_owned(), Match::Keyword(id.to_owned())),
        ],
    }
}

fn first_chunks(id: Option<&str>) -> PayloadFilter {
    let mut filter = id.map_or_else(
        || PayloadFilter { must: vec![(KIND.to_owned(), Match::Keyword(KNOWLEDGE.to_owned()))] },
        document_filter,
    );
    filter.must.push(("chunk".to_owned(), Match::Integer(0)));
    filter
}

fn text_field(hit: &Hit, key: &str) -> String {
    hit.payload.get(key).and_then(Value::as_str).unwrap_or_default().to_owned()
}

fn document_of(hit: &Hit) -> Document {
    Document {
        id: text_field(hit, "documentId"),
        name: text_field(hit, "documentName"),
        chunks: hit.payload.get("chunks").and_then(Value::as_u64).unwrap_or_default(),
        created: text_field(hit, "created"),
    }
}

fn passage_of(hit: &Hit) -> Passage {
    Passage {
        document_id: text_field(hit, "documentId"),
        document_name: text_field(hit, "documentName"),
        chunk: hit.payload.get("chunk").and_then(Value::as_u64).unwrap_or_default(),
        text: text_field(hit, "text"),
        score: hit.score,
    }
}
