//! The embedded store's side: points written through `EdgeStore` as the runtime writes them,
//! the HNSW index built on a copy (qdrant-edge 0.7.2 only builds indexes when
//! `EdgeShard::optimize` is called, which `EdgeStore` never does, so the runtime's store searches
//! by full scan), timed rounds of single searches, and timed reopens.

use std::path::Path;
use std::time::Instant;

use agent_crds::runtime_config::Distance;
use agent_runtime::vector::{EdgeStore, Point, SearchRequest, VectorStore};
use anyhow::{Context as _, bail};
use qdrant_edge::EdgeShard;
use serde_json::Map;
use tokio::runtime::Runtime;

use super::chroma::Round;
use super::data::Dataset;
use super::report::{StartupRow, median};

/// Writes every point (id = row number, no sparse vector, empty payload) in batches of `batch`;
/// returns the seconds it took. Each upsert is durable when it returns.
pub async fn load(store: &EdgeStore, data: &Dataset, batch: usize) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut next = 0;
    while next < data.len() {
        let end = (next + batch).min(data.len());
        let points = (next..end)
            .map(|index| Point {
                id: u64::try_from(index).expect("usize fits in u64"),
                dense: data.point(index).to_vec(),
                sparse: None,
                payload: Map::new(),
            })
            .collect();
        store.upsert(points).await?;
        next = end;
    }
    Ok(started.elapsed().as_secs_f64())
}

/// An index built by [`build_index`].
pub struct Indexed {
    /// Time of `optimize` and the flush after it.
    pub seconds: f64,
    /// The index's parameters and coverage, in words.
    pub description: String,
}

/// Runs qdrant-edge's optimizers on the closed store in `dir` until they have nothing left to
/// do, which builds the HNSW index of every segment past the indexing threshold.
pub fn build_index(dir: &Path) -> anyhow::Result<Indexed> {
    let shard = EdgeShard::load(dir, None).context("loading the shard to optimize it")?;
    let started = Instant::now();
    shard.optimize().context("optimizing the shard")?;
    shard.flush();
    let seconds = started.elapsed().as_secs_f64();
    let info = shard.info();
    let hnsw = shard.config().hnsw_config;
    let description = format!(
        "HNSW m={} ef_construct={} (search ef={}); {} of {} vectors indexed, {} segments",
        hnsw.m,
        hnsw.ef_construct,
        hnsw.ef_construct,
        info.indexed_vectors_count,
        info.points_count,
        info.segments_count
    );
    Ok(Indexed { seconds, description })
}

/// Copies the closed store in `from` to `to`, file by file.
pub fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// Every query once, one after another, each timed around the awaited search.
pub async fn round(store: &EdgeStore, data: &Dataset, k: usize) -> anyhow::Result<Round> {
    let (mut latencies_ms, mut ids) = (Vec::new(), Vec::new());
    for query in data.queries() {
        let request = SearchRequest { dense: Some(query.to_vec()), limit: k, ..SearchRequest::default() };
        let started = Instant::now();
        let hits = store.search(request).await?;
        latencies_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        ids.push(hits.into_iter().map(|hit| hit.id).collect());
    }
    Ok(Round { latencies_ms, ids })
}

/// Opens the store in `dir` `times` times (dropping it in between), timing each open and the
/// first search after it; fails unless every open counts `expected` points.
pub fn reopen(
    runtime: &Runtime,
    dir: &Path,
    label: &str,
    (data, expected): (&Dataset, usize),
    times: usize,
) -> anyhow::Result<StartupRow> {
    let (mut opens_ms, mut first_ms) = (Vec::new(), Vec::new());
    let mut count = 0;
    for _ in 0..times {
        let started = Instant::now();
        let store = EdgeStore::open(dir, data.dimension, Distance::Cosine)?;
        opens_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        count = runtime.block_on(store.count(None))?;
        if usize::try_from(count)? != expected {
            bail!("{label}: the reopened store counts {count} points, {expected} were written");
        }
        let query = data.queries().next().context("at least one query")?.to_vec();
        let started = Instant::now();
        runtime.block_on(store.search(SearchRequest { dense: Some(query), limit: 10, ..SearchRequest::default() }))?;
        first_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        drop(store);
    }
    Ok(StartupRow {
        size: expected,
        store: label.to_owned(),
        open_ms: median(&opens_ms),
        opens_ms,
        first_search_ms: median(&first_ms),
        count,
    })
}
