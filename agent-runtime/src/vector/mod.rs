//! The agent's vector store: backend-neutral points, filters, searches and the `VectorStore`
//! trait, with the embedded qdrant-edge backend in [`edge`], the Qdrant server backend in
//! [`qdrant`] and the BM25 embedder in [`bm25`].

pub mod bm25;
pub mod edge;
pub mod qdrant;

use std::path::PathBuf;

use futures::future::BoxFuture;
use serde_json::{Map, Value};

pub use bm25::Bm25;
pub use edge::EdgeStore;
pub use qdrant::{QdrantSettings, QdrantStore};

/// A sparse vector: parallel lists of dimension ids and weights (BM25 term weights here).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SparseVector {
    /// Dimension ids; each appears at most once.
    pub indices: Vec<u32>,
    /// Weight of each dimension, same length as `indices`.
    pub values: Vec<f32>,
}

/// One stored item: a dense embedding, an optional sparse (keyword) vector and a JSON payload.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    /// Caller-chosen id; writing an existing id replaces that point.
    pub id: u64,
    /// Dense embedding; its length must equal the store's dimension.
    pub dense: Vec<f32>,
    /// Sparse vector for keyword search; points without one are found by dense search only.
    pub sparse: Option<SparseVector>,
    /// Metadata returned with hits and matched by filters.
    pub payload: Map<String, Value>,
}

/// A condition on one payload field.
#[derive(Clone, Debug, PartialEq)]
pub enum Match {
    /// The field equals this string.
    Keyword(String),
    /// The field equals this integer.
    Integer(i64),
    /// The field is a number within these inclusive bounds (a missing bound is open).
    Range {
        /// Lower bound, inclusive.
        gte: Option<f64>,
        /// Upper bound, inclusive.
        lte: Option<f64>,
    },
}

/// A conjunction of payload conditions: a point matches when every condition holds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PayloadFilter {
    /// (payload key, condition) pairs; keys may be dotted paths into nested objects.
    pub must: Vec<(String, Match)>,
}

impl PayloadFilter {
    /// A filter with a single condition.
    pub fn new(key: impl Into<String>, condition: Match) -> Self {
        Self { must: vec![(key.into(), condition)] }
    }

    /// This filter with one more condition.
    #[must_use]
    pub fn and(mut self, key: impl Into<String>, condition: Match) -> Self {
        self.must.push((key.into(), condition));
        self
    }
}

/// RRF constant of hybrid searches: Qdrant's own default, so both backends fuse alike.
pub const RRF_K: u32 = 2;
/// Weight of the BM25 leg in hybrid searches (the dense leg weighs 1): a document BM25 ranks
/// first counts as much as the third dense hit. Measured on the labelled corpus (42 queries,
/// MiniLM): recall@1 dense 0.905, unweighted RRF 0.810, weight 0.5 0.881; recall@3 0.976
/// unweighted, 1.000 weighted (and dense). Unweighted, a document matched weakly by both legs
/// outranked the best dense match that BM25 missed.
pub const SPARSE_RRF_WEIGHT: f32 = 0.5;

/// A search: dense only, sparse only, or both (hybrid, fused by weighted reciprocal rank).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SearchRequest {
    /// Dense query embedding.
    pub dense: Option<Vec<f32>>,
    /// Sparse query vector (BM25 query weights).
    pub sparse: Option<SparseVector>,
    /// Most hits to return.
    pub limit: usize,
    /// Only points matching this filter are considered.
    pub filter: Option<PayloadFilter>,
    /// Lowest similarity a hit may have. It applies to the dense similarity when a dense query
    /// is given (in hybrid searches it prunes the dense candidates, since fused scores are
    /// rank-based), and to the BM25 score in sparse-only searches.
    pub score_threshold: Option<f32>,
}

/// A search or scroll result.
#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    /// Id of the point.
    pub id: u64,
    /// Similarity (dense or BM25), the fused rank score for hybrid searches, 0 for scrolls.
    pub score: f32,
    /// The point's payload.
    pub payload: Map<String, Value>,
}

/// Why a vector store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum VectorError {
    /// A dense vector has the wrong length; nothing was written.
    #[error(
        "{}expected a {expected}-dimensional dense vector, got {got} dimensions",
        .id.map_or(String::new(), |id| format!("point {id}: "))
    )]
    WrongDimension {
        /// The offending point's id, `None` for a query vector.
        id: Option<u64>,
        /// The store's dimension.
        expected: usize,
        /// The vector's length.
        got: usize,
    },
    /// The store on disk was created with other vector settings than the ones configured.
    #[error(
        "the vector store at {} holds {stored} vectors but {configured} vectors are configured; \
         re-index into a new directory or restore the old embedding settings",
        path.display()
    )]
    Incompatible {
        /// Directory of the store.
        path: PathBuf,
        /// Settings found on disk, e.g. "384-dimensional Cosine".
        stored: String,
        /// Settings asked for.
        configured: String,
    },
    /// The store was asked for zero-dimensional vectors.
    #[error("a vector store needs a dense dimension of at least 1")]
    ZeroDimension,
    /// A search gave neither a dense nor a sparse query vector.
    #[error("a search needs a dense or a sparse query vector")]
    EmptyRequest,
    /// A delete gave no condition, which would delete every point.
    #[error("a delete needs at least one filter condition")]
    EmptyFilter,
    /// A sparse vector is malformed (lengths differ or an index repeats); nothing was written.
    #[error("invalid sparse vector: {0}")]
    InvalidSparse(String),
    /// A payload key is not a valid path.
    #[error("invalid payload key {0:?}")]
    InvalidKey(String),
    /// A point id in the store is not a number, so this store did not write it.
    #[error("the store holds a point with a non-numeric id {0}")]
    ForeignId(String),
    /// The Qdrant collection exists with other vector settings than the ones configured.
    #[error(
        "the Qdrant collection {collection:?} at {url} holds {stored} vectors but {configured} vectors are \
         configured; use a new collection name or restore the old embedding settings"
    )]
    IncompatibleCollection {
        /// URL of the Qdrant server.
        url: String,
        /// Name of the collection.
        collection: String,
        /// Settings found on the server, e.g. "384-dimensional Cosine + BM25".
        stored: String,
        /// Settings asked for.
        configured: String,
    },
    /// The Qdrant server could not be reached (refused, timed out, not speaking gRPC).
    #[error("cannot reach the Qdrant server at {url}: {reason}")]
    Unreachable {
        /// URL of the Qdrant server.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The Qdrant server refused the request's credentials (missing or wrong API key).
    #[error("the Qdrant server at {url} refused the API key: {reason}")]
    Unauthorized {
        /// URL of the Qdrant server.
        url: String,
        /// The server's message.
        reason: String,
    },
    /// The Qdrant URL is not usable.
    #[error("invalid Qdrant URL {url:?}: {reason}")]
    InvalidUrl {
        /// The configured URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The Qdrant API key file cannot be used; the key itself is never shown.
    #[error("cannot use the Qdrant API key file {}: {reason}", path.display())]
    ApiKeyFile {
        /// Path of the file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The storage engine failed.
    #[error("{context}: {reason}")]
    Storage {
        /// What was being done.
        context: &'static str,
        /// The engine's message.
        reason: String,
    },
}

/// A store of points searchable by dense, sparse or hybrid similarity.
pub trait VectorStore: Send + Sync {
    /// Writes points (replacing points with the same ids); when it returns Ok they are durable
    /// (they survive kill -9). Every point is checked before any is written.
    fn upsert(&self, points: Vec<Point>) -> BoxFuture<'_, Result<(), VectorError>>;
    /// Deletes the points matching the filter; durable on return.
    fn delete(&self, filter: PayloadFilter) -> BoxFuture<'_, Result<(), VectorError>>;
    /// The best hits for the request, best first.
    fn search(&self, request: SearchRequest) -> BoxFuture<'_, Result<Vec<Hit>, VectorError>>;
    /// Number of points matching the filter (all points without one).
    fn count(&self, filter: Option<PayloadFilter>) -> BoxFuture<'_, Result<u64, VectorError>>;
    /// Payloads of points matching the filter (up to `limit`), e.g. to list documents.
    fn scroll(&self, filter: Option<PayloadFilter>, limit: usize) -> BoxFuture<'_, Result<Vec<Hit>, VectorError>>;
    /// The stored dense vectors of `ids`, in order (`None` for a missing point), so rerankers
    /// need not embed the hits again. Backends that cannot return them return all `None`.
    fn dense_vectors(&self, ids: Vec<u64>) -> BoxFuture<'_, Result<Vec<Option<Vec<f32>>>, VectorError>> {
        Box::pin(async move { Ok(vec![None; ids.len()]) })
    }
}
