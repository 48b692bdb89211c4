//! Statistics and the report: per-round percentiles, medians over rounds, edge/Chroma ratios
//! taken within a round, as markdown tables and JSON.

use std::fmt::Write as _;

use serde::Serialize;

/// Nearest-rank percentile of sorted, non-empty `values`.
pub fn percentile(sorted: &[f64], percent: usize) -> f64 {
    let rank = (sorted.len() * percent).div_ceil(100).max(1);
    sorted[rank - 1]
}

/// Median of `values` (0 when empty).
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => 0.0,
        _ if n % 2 == 1 => sorted[n / 2],
        _ => f64::midpoint(sorted[n / 2 - 1], sorted[n / 2]),
    }
}

/// One round of one store: its latency percentiles, in milliseconds.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Percentiles {
    /// Median latency.
    pub p50_ms: f64,
    /// 99th percentile latency.
    pub p99_ms: f64,
}

impl Percentiles {
    /// The percentiles of one round's latencies.
    pub fn of(latencies_ms: &[f64]) -> Self {
        let mut sorted = latencies_ms.to_vec();
        sorted.sort_by(f64::total_cmp);
        Self { p50_ms: percentile(&sorted, 50), p99_ms: percentile(&sorted, 99) }
    }
}

/// The run's fixed parameters.
#[derive(Debug, Serialize)]
pub struct Setup {
    /// Vector length.
    pub dimension: usize,
    /// Clusters the vectors are drawn around.
    pub clusters: usize,
    /// Expected norm of a vector's noise around its (unit) centroid.
    pub spread: f64,
    /// Data seed.
    pub seed: u64,
    /// Queries in a round.
    pub queries: usize,
    /// Hits per query.
    pub k: usize,
    /// Rounds; latencies are medians over them.
    pub rounds: usize,
    /// Points per insert call, for both stores.
    pub batch: usize,
    /// CPUs this process may use.
    pub cpus: usize,
    /// `chromadb.__version__`.
    pub chroma_version: String,
    /// Chroma's HNSW parameters, as it reports them.
    pub chroma_hnsw: serde_json::Value,
}

/// One store at one size.
#[derive(Debug, Serialize)]
pub struct SearchRow {
    /// Points stored.
    pub size: usize,
    /// Which store.
    pub store: String,
    /// How it searches (full scan or HNSW and its parameters).
    pub index: String,
    /// Time to insert every point (durable on return for the embedded store).
    pub load_seconds: f64,
    /// Time of a separate index build, where there is one.
    pub index_seconds: Option<f64>,
    /// Each round's percentiles, in round order.
    pub rounds: Vec<Percentiles>,
    /// Median over rounds of p50.
    pub p50_ms: f64,
    /// Median over rounds of p99.
    pub p99_ms: f64,
    /// Share of the exact top k found (first measured round).
    pub recall: f64,
    /// For the embedded store: median over rounds of (this p50 / Chroma's p50 in that round).
    pub p50_over_chroma: Option<f64>,
    /// For the embedded store: median over rounds of (this p99 / Chroma's p99 in that round).
    pub p99_over_chroma: Option<f64>,
}

impl SearchRow {
    /// Fills in the ratios against Chroma's row of the same size.
    pub fn compare_with(&mut self, chroma: &SearchRow) {
        let ratios = |f: fn(&Percentiles) -> f64| {
            let per_round: Vec<f64> = self.rounds.iter().zip(&chroma.rounds).map(|(a, b)| f(a) / f(b)).collect();
            median(&per_round)
        };
        self.p50_over_chroma = Some(ratios(|p| p.p50_ms));
        self.p99_over_chroma = Some(ratios(|p| p.p99_ms));
    }
}

/// Reopening one store directory.
#[derive(Debug, Serialize)]
pub struct StartupRow {
    /// Points stored.
    pub size: usize,
    /// Which directory.
    pub store: String,
    /// Each `EdgeStore::open`, in milliseconds.
    pub opens_ms: Vec<f64>,
    /// Median of `opens_ms`.
    pub open_ms: f64,
    /// Median time of the first search after opening, in milliseconds.
    pub first_search_ms: f64,
    /// The count the reopened store reported.
    pub count: u64,
}

/// The ingest comparison for one document shape.
#[derive(Debug, Serialize)]
pub struct IngestRow {
    /// How the text was split into documents.
    pub shape: String,
    /// Documents ingested.
    pub documents: usize,
    /// Chunks they made.
    pub chunks: usize,
    /// Each round's end-to-end throughput (chunks/s through `Knowledge::ingest`).
    pub ingest_rounds: Vec<f64>,
    /// Each round's embedding-only throughput (chunks/s through `Embedder::embed`).
    pub embed_rounds: Vec<f64>,
    /// Median of `ingest_rounds`.
    pub ingest_chunks_per_second: f64,
    /// Median of `embed_rounds`.
    pub embed_chunks_per_second: f64,
    /// Median over rounds of ingest/embed throughput: the share of the model's limit that
    /// ingestion reaches.
    pub ingest_over_embed: f64,
}

/// The ingest part: measured, or why not.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Ingest {
    /// Rows per document shape.
    Measured(Vec<IngestRow>),
    /// Why it did not run.
    Skipped(String),
}

/// The whole run.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Fixed parameters.
    pub setup: Setup,
    /// Search latency and recall.
    pub search: Vec<SearchRow>,
    /// Reopening the embedded store.
    pub startup: Vec<StartupRow>,
    /// Ingest throughput against the embedding model alone.
    pub ingest: Ingest,
}

impl Report {
    /// The report as markdown tables.
    pub fn markdown(&self) -> String {
        let s = &self.setup;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "### Vector search: {} queries, k={}, {}-d unit vectors around {} clusters (spread {}), \
             median of {} rounds; chromadb {}; {} CPUs\n",
            s.queries, s.k, s.dimension, s.clusters, s.spread, s.rounds, s.chroma_version, s.cpus
        );
        out.push_str(
            "| vectors | store | index | load s | index build s | p50 ms | p99 ms | recall@k | p50 edge/chroma | p99 edge/chroma |\n\
             |---:|---|---|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for r in &self.search {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.2} | {} | {:.3} | {:.3} | {:.3} | {} | {} |",
                r.size,
                r.store,
                r.index,
                r.load_seconds,
                r.index_seconds.map_or_else(|| "-".to_owned(), |s| format!("{s:.2}")),
                r.p50_ms,
                r.p99_ms,
                r.recall,
                ratio(r.p50_over_chroma),
                ratio(r.p99_over_chroma),
            );
        }
        out.push_str(
            "\n### Start to ready: `EdgeStore::open` on a store already on disk (warm page cache), median of reopens\n\n\
             | vectors | store | open ms | first search ms | count |\n|---:|---|---:|---:|---:|\n",
        );
        for r in &self.startup {
            let _ = writeln!(
                out,
                "| {} | {} | {:.1} | {:.2} | {} |",
                r.size, r.store, r.open_ms, r.first_search_ms, r.count
            );
        }
        out.push_str(
            "\n### Ingest: chunks/s through `Knowledge::ingest` vs `Embedder::embed` alone on the same chunks\n\n",
        );
        match &self.ingest {
            Ingest::Skipped(reason) => {
                let _ = writeln!(out, "skipped: {reason}");
            }
            Ingest::Measured(rows) => {
                out.push_str(
                    "| documents | chunks | ingest chunks/s | embed-only chunks/s | ingest/embed |\n\
                     |---|---:|---:|---:|---:|\n",
                );
                for r in rows {
                    let _ = writeln!(
                        out,
                        "| {} | {} | {:.1} | {:.1} | {:.2} |",
                        r.shape, r.chunks, r.ingest_chunks_per_second, r.embed_chunks_per_second, r.ingest_over_embed
                    );
                }
            }
        }
        out
    }
}

fn ratio(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"))
}
