//! The embedded vector store: one qdrant-edge shard in a local directory, with a named dense
//! vector `dense`, a named BM25 sparse vector `bm25` (IDF applied at search time) and hybrid
//! search by reciprocal rank fusion.
//!
//! qdrant-edge 0.7.2 is synchronous, does not replay its WAL when a shard is loaded, and panics
//! when `flush` races an update. So every call runs on the blocking pool, and every write is
//! flushed before it is acknowledged, one at a time with concurrent writes grouped under one
//! flush ([`commit`]). Reads run beside writes: the shard's own locks allow it.
//!
//! Points land in a plain (brute-force) segment; [`EdgeStore::optimize`] builds the HNSW index
//! for segments past qdrant's indexing threshold (~10 MB of vectors: ~6,600 384-d points), and
//! [`EdgeStore::spawn_optimizer`] runs it in the background once writes have been quiet a while.

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use agent_crds::runtime_config::Distance;
use futures::future::BoxFuture;
use qdrant_edge::external::ordered_float::OrderedFloat;
use qdrant_edge::{
    Condition, CountRequest, Distance as EdgeDistance, EdgeConfig, EdgeShard, EdgeSparseVectorParams, EdgeVectorParams,
    FieldCondition, Filter, Fusion, JsonPath, Match as EdgeMatch, Modifier, NamedQuery, PointId, PointInsertOperations,
    PointOperations, PointStruct, PointStructPersisted, Prefetch, QueryEnum, QueryRequest, Range, ScoringQuery,
    ScrollRequest, UpdateOperation, ValueVariants, Vector, VectorInternal, VectorStructInternal, Vectors, WalOptions,
    WithPayloadInterface, WithVector,
};
use serde_json::{Map, Value};

use super::{
    Hit, Match, PayloadFilter, Point, RRF_K, SPARSE_RRF_WEIGHT, SearchRequest, SparseVector, VectorError, VectorStore,
};
use commit::GroupCommit;

mod commit;

/// Name of the dense vector in the shard.
const DENSE: &str = "dense";
/// Name of the BM25 sparse vector in the shard.
const SPARSE: &str = "bm25";
/// The file where qdrant-edge keeps a shard's settings (the crate keeps the name private).
const CONFIG_FILE: &str = "edge_config.json";
/// Each leg of a hybrid search fetches this many times the asked-for hits (at least
/// `MIN_PREFETCH`), so a point ranked lower in one leg can still win the fusion.
const PREFETCH_FACTOR: usize = 4;
const MIN_PREFETCH: usize = 50;
/// WAL file size: 0.7.2 never truncates its WAL, so smaller files keep a small store small.
const WAL_SEGMENT_BYTES: usize = 4 << 20;

/// A [`VectorStore`] kept in a local directory by qdrant-edge. Only one may be open per
/// directory (the shard locks it).
pub struct EdgeStore {
    shared: Arc<Shared>,
    dimension: usize,
}

struct Shared {
    shard: EdgeShard,
    /// Every update, optimization and flush goes through here: one at a time, concurrent writes grouped.
    writes: GroupCommit<Job>,
    /// Points were written (or the store was opened) since the last optimization.
    unoptimized: AtomicBool,
    /// Milliseconds from `opened` to the last write.
    last_write_ms: AtomicU64,
    opened: Instant,
}

/// A change to the shard, applied under the write lock.
enum Job {
    Update(Box<UpdateOperation>, &'static str),
    /// Run the optimizers (HNSW indexing, merges, vacuum) until they have nothing to do.
    Optimize,
}

impl std::fmt::Debug for EdgeStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeStore")
            .field("path", &self.shared.shard.path())
            .field("dimension", &self.dimension)
            .finish_non_exhaustive()
    }
}

impl EdgeStore {
    /// Opens the store in `dir`, creating it if needed. A store created with another dimension
    /// or distance is refused, untouched. Blocks while the shard loads.
    pub fn open(dir: &Path, dimension: usize, distance: Distance) -> Result<Self, VectorError> {
        if dimension == 0 {
            return Err(VectorError::ZeroDimension);
        }
        let config = edge_config(dimension, distance);
        check_stored_settings(dir, &config)?;
        std::fs::create_dir_all(dir).map_err(|e| storage("creating the vector store directory", e))?;
        let shard = EdgeShard::load(dir, Some(config)).map_err(|e| storage("opening the vector store", e))?;
        let state = Shared {
            shard,
            writes: GroupCommit::new(),
            unoptimized: AtomicBool::new(true),
            last_write_ms: AtomicU64::new(0),
            opened: Instant::now(),
        };
        Ok(Self { shared: Arc::new(state), dimension })
    }

    /// Builds the HNSW index of large segments, merges small ones and vacuums deleted points,
    /// until the optimizers have nothing left to do. Writes wait while it runs (seconds for
    /// 100k points); searches do not. Returns the number of points in HNSW-indexed segments.
    pub async fn optimize(&self) -> Result<u64, VectorError> {
        self.shared.unoptimized.store(false, Ordering::SeqCst);
        let shared = Arc::clone(&self.shared);
        let result = blocking("optimizing", move || {
            shared.writes.commit(Job::Optimize, |job| shared.run(job), || shared.shard.flush(), "optimizing")
        })
        .await;
        if result.is_err() {
            self.shared.unoptimized.store(true, Ordering::SeqCst);
        }
        result.map(|()| self.indexed_points())
    }

    /// Points in HNSW-indexed segments (the rest are searched by brute force).
    pub fn indexed_points(&self) -> u64 {
        self.shared.shard.info().indexed_vectors_count as u64
    }

    /// Optimizes in the background whenever points were written and no write came for `quiet`,
    /// so bulk ingests are indexed once they finish rather than after every batch. The task
    /// holds the store until it is aborted.
    pub fn spawn_optimizer(self: &Arc<Self>, quiet: Duration) -> tokio::task::JoinHandle<()> {
        let store = Arc::clone(self);
        tokio::spawn(async move {
            let quiet_ms = u64::try_from(quiet.as_millis()).unwrap_or(u64::MAX);
            loop {
                tokio::time::sleep(quiet).await;
                let shared = &store.shared;
                let since_write = shared.elapsed_ms().saturating_sub(shared.last_write_ms.load(Ordering::SeqCst));
                if !shared.unoptimized.load(Ordering::SeqCst) || since_write < quiet_ms {
                    continue;
                }
                let started = Instant::now();
                match store.optimize().await {
                    Ok(indexed) => tracing::debug!(indexed, elapsed = ?started.elapsed(), "vector store optimized"),
                    Err(error) => {
                        tracing::warn!(%error, "optimizing the vector store failed; searches stay exact but slower");
                    }
                }
            }
        })
    }

    /// Length of the dense vectors this store holds.
    pub fn dimension(&self) -> usize {
        self.dimension
    }

    /// Applies a write and flushes it, on the blocking pool.
    async fn write(&self, operation: UpdateOperation, context: &'static str) -> Result<(), VectorError> {
        let shared = Arc::clone(&self.shared);
        blocking(context, move || shared.apply(operation, context)).await
    }
}

impl Shared {
    /// Applies a write and returns once it is durable.
    fn apply(&self, operation: UpdateOperation, context: &'static str) -> Result<(), VectorError> {
        // `update` only appends to the WAL (not synced) and changes segments in memory, and the
        // WAL is not replayed on load: a write is durable once the segments are flushed.
        let result = self.writes.commit(
            Job::Update(Box::new(operation), context),
            |job| self.run(job),
            || self.shard.flush(),
            context,
        );
        self.last_write_ms.store(self.elapsed_ms(), Ordering::SeqCst);
        self.unoptimized.store(true, Ordering::SeqCst);
        result
    }

    fn run(&self, job: Job) -> Result<(), VectorError> {
        match job {
            Job::Update(operation, context) => self.shard.update(*operation).map_err(|e| storage(context, e)),
            Job::Optimize => self.shard.optimize().map(|_| ()).map_err(|e| storage("optimizing", e)),
        }
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

impl VectorStore for EdgeStore {
    fn dense_vectors(&self, ids: Vec<u64>) -> BoxFuture<'_, Result<Vec<Option<Vec<f32>>>, VectorError>> {
        Box::pin(async move {
            let shared = Arc::clone(&self.shared);
            let wanted: Vec<PointId> = ids.iter().map(|&id| PointId::NumId(id)).collect();
            let records = blocking("reading vectors", move || {
                let selector = WithVector::Selector(vec![DENSE.into()]);
                shared
                    .shard
                    .retrieve(&wanted, Some(WithPayloadInterface::Bool(false)), Some(selector))
                    .map_err(|e| storage("reading vectors", e))
            })
            .await?;
            let mut found: std::collections::HashMap<u64, Vec<f32>> = records
                .into_iter()
                .filter_map(|record| match (record.id, record.vector) {
                    (PointId::NumId(id), Some(vectors)) => dense_of(vectors).map(|dense| (id, dense)),
                    _ => None,
                })
                .collect();
            Ok(ids.iter().map(|id| found.remove(id)).collect())
        })
    }

    fn upsert(&self, points: Vec<Point>) -> BoxFuture<'_, Result<(), VectorError>> {
        Box::pin(async move {
            if points.is_empty() {
                return Ok(());
            }
            let points = points.into_iter().map(|p| edge_point(p, self.dimension)).collect::<Result<Vec<_>, _>>()?;
            let operation = UpdateOperation::PointOperation(PointOperations::UpsertPoints(
                PointInsertOperations::PointsList(points),
            ));
            self.write(operation, "writing points").await
        })
    }

    fn delete(&self, filter: PayloadFilter) -> BoxFuture<'_, Result<(), VectorError>> {
        Box::pin(async move {
            if filter.must.is_empty() {
                return Err(VectorError::EmptyFilter);
            }
            let operation =
                UpdateOperation::PointOperation(PointOperations::DeletePointsByFilter(edge_filter(filter)?));
            self.write(operation, "deleting points").await
        })
    }

    fn search(&self, request: SearchRequest) -> BoxFuture<'_, Result<Vec<Hit>, VectorError>> {
        Box::pin(async move {
            let query = query_request(request, self.dimension)?;
            if query.limit == 0 {
                return Ok(Vec::new());
            }
            let shared = Arc::clone(&self.shared);
            let points =
                blocking("searching", move || shared.shard.query(query).map_err(|e| storage("searching", e))).await?;
            points.into_iter().map(|p| hit(p.id, p.score, p.payload.map(|payload| payload.0))).collect()
        })
    }

    fn count(&self, filter: Option<PayloadFilter>) -> BoxFuture<'_, Result<u64, VectorError>> {
        Box::pin(async move {
            let request = CountRequest { filter: filter.map(edge_filter).transpose()?, exact: true };
            let shared = Arc::clone(&self.shared);
            let count =
                blocking("counting", move || shared.shard.count(request).map_err(|e| storage("counting", e))).await?;
            Ok(count as u64)
        })
    }

    fn scroll(&self, filter: Option<PayloadFilter>, limit: usize) -> BoxFuture<'_, Result<Vec<Hit>, VectorError>> {
        Box::pin(async move {
            if limit == 0 {
                return Ok(Vec::new());
            }
            let request = ScrollRequest {
                offset: None,
                limit: Some(limit),
                filter: filter.map(edge_filter).transpose()?,
                with_payload: Some(WithPayloadInterface::Bool(true)),
                with_vector: WithVector::Bool(false),
                order_by: None,
            };
            let shared = Arc::clone(&self.shared);
            let (records, _next) = blocking("listing points", move || {
                shared.shard.scroll(request).map_err(|e| storage("listing points", e))
            })
            .await?;
            records.into_iter().map(|r| hit(r.id, 0.0, r.payload.map(|payload| payload.0))).collect()
        })
    }
}

/// The shard settings for a store of `dimension`-long dense vectors.
fn edge_config(dimension: usize, distance: Distance) -> EdgeConfig {
    let distance = match distance {
        Distance::Cosine => EdgeDistance::Cosine,
        Distance::Dot => EdgeDistance::Dot,
    };
    EdgeConfig::builder()
        .vector(DENSE, EdgeVectorParams::builder(dimension, distance).build())
        .sparse_vector(SPARSE, EdgeSparseVectorParams::builder().modifier(Modifier::Idf).build())
        .wal_options(WalOptions { segment_capacity: WAL_SEGMENT_BYTES, ..WalOptions::default() })
        .build()
}

/// Refuses a directory whose store was created with other fixed settings, before the shard
/// is opened (opening rewrites the settings file).
fn check_stored_settings(dir: &Path, wanted: &EdgeConfig) -> Result<(), VectorError> {
    let bytes = match std::fs::read(dir.join(CONFIG_FILE)) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(storage("reading the vector store settings", error)),
    };
    let stored: EdgeConfig =
        serde_json::from_slice(&bytes).map_err(|e| storage("reading the vector store settings", e))?;
    let (stored, configured) = (describe(&stored), describe(wanted));
    if stored == configured {
        Ok(())
    } else {
        Err(VectorError::Incompatible { path: PathBuf::from(dir), stored, configured })
    }
}

/// The settings a store keeps for life, in words.
fn describe(config: &EdgeConfig) -> String {
    let dense = config
        .vectors
        .get(DENSE)
        .map_or_else(|| "no dense".to_owned(), |v| format!("{}-dimensional {:?}", v.size, v.distance));
    let sparse = match config.sparse_vectors.get(SPARSE).map(|s| s.modifier) {
        Some(Some(Modifier::Idf)) => "BM25",
        Some(_) => "BM25 without IDF",
        None => "no BM25",
    };
    format!("{dense} + {sparse}")
}

/// The shard point for a store point, after checking its vectors.
fn edge_point(point: Point, dimension: usize) -> Result<PointStructPersisted, VectorError> {
    let Point { id, dense, sparse, payload } = point;
    if dense.len() != dimension {
        return Err(VectorError::WrongDimension { id: Some(id), expected: dimension, got: dense.len() });
    }
    let mut vectors = vec![(DENSE, Vector::new_dense(dense))];
    if let Some(sparse) = sparse {
        let sparse = Vector::new_sparse(sparse.indices, sparse.values)
            .map_err(|e| VectorError::InvalidSparse(format!("point {id}: {e}")))?;
        vectors.push((SPARSE, sparse));
    }
    Ok(PointStruct::new(id, Vectors::new_named(vectors), Value::Object(payload)).into())
}

/// The shard query for a search: one nearest-neighbour query, or two fused by RRF.
fn query_request(request: SearchRequest, dimension: usize) -> Result<QueryRequest, VectorError> {
    let SearchRequest { dense, sparse, limit, filter, score_threshold } = request;
    if let Some(dense) = &dense
        && dense.len() != dimension
    {
        return Err(VectorError::WrongDimension { id: None, expected: dimension, got: dense.len() });
    }
    let threshold = score_threshold.map(OrderedFloat);
    let dense = dense.map(|v| nearest(VectorInternal::from(v), DENSE));
    let sparse = sparse.map(sparse_query).transpose()?.map(|v| nearest(v, SPARSE));
    let (prefetches, query, score_threshold) = match (dense, sparse) {
        (None, None) => return Err(VectorError::EmptyRequest),
        (Some(query), None) | (None, Some(query)) => (Vec::new(), query, threshold),
        (Some(dense), Some(sparse)) => {
            let leg_limit = limit.saturating_mul(PREFETCH_FACTOR).max(MIN_PREFETCH);
            let leg = |query, score_threshold| Prefetch {
                prefetches: Vec::new(),
                query: Some(query),
                limit: leg_limit,
                params: None,
                filter: None,
                score_threshold,
            };
            let fusion = ScoringQuery::Fusion(Fusion::Rrf {
                k: RRF_K as usize,
                weights: Some(vec![OrderedFloat(1.0), OrderedFloat(SPARSE_RRF_WEIGHT)]),
            });
            (vec![leg(dense, threshold), leg(sparse, None)], fusion, None)
        }
    };
    Ok(QueryRequest {
        prefetches,
        query: Some(query),
        // The shard applies the top-level filter to every prefetch too.
        filter: filter.map(edge_filter).transpose()?,
        score_threshold,
        limit,
        offset: 0,
        params: None,
        with_vector: WithVector::Bool(false),
        with_payload: WithPayloadInterface::Bool(true),
    })
}

fn nearest(vector: VectorInternal, using: &str) -> ScoringQuery {
    ScoringQuery::Vector(QueryEnum::Nearest(NamedQuery::new(vector, using)))
}

fn sparse_query(vector: SparseVector) -> Result<VectorInternal, VectorError> {
    Vector::new_sparse(vector.indices, vector.values)
        .map(VectorInternal::from)
        .map_err(|e| VectorError::InvalidSparse(format!("query: {e}")))
}

/// The shard filter for a payload filter: every condition must hold.
fn edge_filter(filter: PayloadFilter) -> Result<Filter, VectorError> {
    let conditions = filter
        .must
        .into_iter()
        .map(|(key, condition)| {
            let Ok(path) = key.parse::<JsonPath>() else {
                return Err(VectorError::InvalidKey(key));
            };
            let field = match condition {
                Match::Keyword(value) => {
                    FieldCondition::new_match(path, EdgeMatch::new_value(ValueVariants::String(value)))
                }
                Match::Integer(value) => {
                    FieldCondition::new_match(path, EdgeMatch::new_value(ValueVariants::Integer(value)))
                }
                Match::Range { gte, lte } => FieldCondition::new_range(
                    path,
                    Range { gte: gte.map(OrderedFloat), lte: lte.map(OrderedFloat), ..Range::default() },
                ),
            };
            Ok(Condition::Field(field))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Filter { must: Some(conditions), ..Filter::default() })
}

fn hit(id: PointId, score: f32, payload: Option<Map<String, Value>>) -> Result<Hit, VectorError> {
    match id {
        PointId::NumId(id) => Ok(Hit { id, score, payload: payload.unwrap_or_default() }),
        PointId::Uuid(uuid) => Err(VectorError::ForeignId(uuid.to_string())),
    }
}

/// The `dense` vector of a point's vectors.
fn dense_of(vectors: VectorStructInternal) -> Option<Vec<f32>> {
    match vectors {
        VectorStructInternal::Named(mut named) => match named.remove(DENSE) {
            Some(VectorInternal::Dense(dense)) => Some(dense),
            _ => None,
        },
        VectorStructInternal::Single(dense) => Some(dense),
        VectorStructInternal::MultiDense(_) => None,
    }
}

fn storage(context: &'static str, error: impl Display) -> VectorError {
    VectorError::Storage { context, reason: error.to_string() }
}

/// Runs a blocking shard call on tokio's blocking pool; a panic in it becomes an error.
async fn blocking<T: Send + 'static>(
    context: &'static str,
    task: impl FnOnce() -> Result<T, VectorError> + Send + 'static,
) -> Result<T, VectorError> {
    match tokio::task::spawn_blocking(task).await {
        Ok(result) => result,
        Err(error) if error.is_panic() => {
            let panic = error.into_panic();
            let message = panic
                .downcast_ref::<&str>()
                .map(ToString::to_string)
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            Err(VectorError::Storage { context, reason: format!("the storage engine panicked: {message}") })
        }
        Err(error) => Err(storage(context, error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vector_filter_translates_every_condition_into_a_must_clause() {
        let filter = PayloadFilter::new("kind", Match::Keyword("note".into()))
            .and("year", Match::Integer(2024))
            .and("score", Match::Range { gte: Some(0.5), lte: None });
        let translated = edge_filter(filter).expect("valid keys");
        let must = translated.must.expect("must clauses");
        assert_eq!(must.len(), 3);
        assert!(translated.should.is_none() && translated.must_not.is_none());
    }

    #[test]
    fn vector_search_without_any_query_vector_is_refused() {
        let request = SearchRequest { limit: 3, ..SearchRequest::default() };
        assert!(matches!(query_request(request, 8), Err(VectorError::EmptyRequest)));
    }

    #[test]
    fn vector_hybrid_search_fuses_two_prefetches_and_keeps_the_threshold_on_the_dense_leg() {
        let request = SearchRequest {
            dense: Some(vec![0.0; 8]),
            sparse: Some(SparseVector { indices: vec![1, 7], values: vec![1.0, 1.0] }),
            limit: 5,
            filter: None,
            score_threshold: Some(0.3),
        };
        let query = query_request(request, 8).expect("valid request");
        assert_eq!(query.prefetches.len(), 2);
        assert!(matches!(query.query, Some(ScoringQuery::Fusion(Fusion::Rrf { k: 2, weights: Some(_) }))));
        assert_eq!(query.score_threshold, None);
        assert_eq!(query.prefetches[0].score_threshold, Some(OrderedFloat(0.3)));
        assert_eq!(query.prefetches[1].score_threshold, None);
        assert_eq!(query.prefetches[0].limit, MIN_PREFETCH);
    }

    #[test]
    fn vector_point_with_a_malformed_sparse_vector_is_refused() {
        let point = Point {
            id: 1,
            dense: vec![0.0; 4],
            sparse: Some(SparseVector { indices: vec![1, 2], values: vec![1.0] }),
            payload: Map::new(),
        };
        assert!(matches!(edge_point(point, 4), Err(VectorError::InvalidSparse(_))));
    }

    #[test]
    fn vector_settings_description_names_dimension_distance_and_bm25() {
        assert_eq!(describe(&edge_config(384, Distance::Cosine)), "384-dimensional Cosine + BM25");
        assert_ne!(describe(&edge_config(384, Distance::Dot)), describe(&edge_config(384, Distance::Cosine)));
    }
}
