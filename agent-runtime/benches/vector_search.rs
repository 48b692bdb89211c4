//! Benchmark of the embedded vector store (`EdgeStore`, qdrant-edge) beside Chroma loaded with the
//! same vectors in the same run: single-query search latency (p50/p99), recall@k against exact
//! brute force, and load time, at each size; start-to-ready of the store on disk; and ingest
//! throughput through `Knowledge::ingest` against the embedding model alone.
//! `scripts/bench-memory.sh` installs Chroma and the model and runs it.
//!
//! Search rounds rotate the order of the stores, so that the noise of a shared machine falls on
//! all of them; the report gives medians over rounds and ratios taken within a round. Nothing here
//! asserts a timing.

mod support;

use std::path::{Path, PathBuf};

use agent_crds::runtime_config::{BUILTIN_EMBEDDING_MODEL, Distance, EmbeddingConfig};
use agent_runtime::embeddings;
use agent_runtime::vector::EdgeStore;
use anyhow::{Context as _, bail};
use clap::Parser;
use tokio::runtime::Runtime;

use support::chroma::{Chroma, Launch, Ready, Round};
use support::data::{Dataset, recall, write_f32};
use support::edge;
use support::ingest::{self, Shape};
use support::report::{Ingest, IngestRow, Percentiles, Report, SearchRow, Setup, StartupRow, median};

/// The built-in model's dimension, and so the dimension of every vector here.
const DIMENSION: usize = 384;
const EDGE_AS_WRITTEN: &str = "edge (as the runtime writes it)";
const EDGE_OPTIMIZED: &str = "edge (after optimize)";
const CHROMA: &str = "chroma";

/// Options; every one has a default, so `cargo bench --bench vector_search` works as is (the
/// ingest part needs `MINILM_DIR`).
#[derive(Parser, Debug)]
#[command(about = "Embedded vector store beside Chroma: latency, recall, load, start and ingest")]
struct Args {
    /// Numbers of stored vectors, one measurement each.
    #[arg(long, env = "BENCH_SIZES", value_delimiter = ',', default_value = "10000,100000")]
    sizes: Vec<usize>,
    /// Queries in a round.
    #[arg(long, env = "BENCH_QUERIES", default_value_t = 200)]
    queries: usize,
    /// Rounds; the report gives medians over them.
    #[arg(long, env = "BENCH_ROUNDS", default_value_t = 3)]
    rounds: usize,
    /// Hits per query; recall is measured at this k.
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// Clusters the vectors are drawn around.
    #[arg(long, default_value_t = 100)]
    clusters: usize,
    /// Expected norm of the noise around each (unit) centroid.
    #[arg(long, default_value_t = 1.0)]
    spread: f64,
    /// Points per insert call, for both stores.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Seed of the data.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Reopens of each store for the start-to-ready median.
    #[arg(long, default_value_t = 3)]
    reopens: usize,
    /// Python of the bench venv, with chromadb [default: `$HOME/.cache/agent-operator/bench-venv/bin/python`].
    #[arg(long, env = "BENCH_PYTHON")]
    python: Option<PathBuf>,
    /// Folder of the built-in embedding model; without it the ingest part is skipped.
    #[arg(long, env = "MINILM_DIR")]
    minilm_dir: Option<PathBuf>,
    /// Paragraphs of generated text for the ingest part.
    #[arg(long, default_value_t = 300)]
    paragraphs: usize,
    /// Words per paragraph.
    #[arg(long, default_value_t = 60)]
    words: usize,
    /// Where the JSON report goes [default: `<target dir>/bench/vector_search.json`].
    #[arg(long, env = "BENCH_OUT")]
    out: Option<PathBuf>,
    /// Keep the stores on disk (in `<out>.d`) instead of removing them.
    #[arg(long)]
    keep_data: bool,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.sizes.is_empty() || args.queries == 0 || args.rounds == 0 || args.k == 0 || args.batch == 0 {
        bail!("--sizes, --queries, --rounds, --k and --batch must be positive");
    }
    // The bench binary is `<target>/<profile>/deps/<name>`.
    let exe = std::env::current_exe()?;
    let target_dir = exe.ancestors().nth(3).context("the bench binary is in <target>/<profile>/deps")?;
    let out = args.out.clone().unwrap_or_else(|| target_dir.join("bench/vector_search.json"));
    let work = out.with_extension("d");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let python = args.python.clone().unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/agent-operator/bench-venv/bin/python")
    });
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/python/chroma_bench.py");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;

    let mut search = Vec::new();
    let mut startup = Vec::new();
    let mut chroma = None;
    for &size in &args.sizes {
        let measured = measure_size(&args, &runtime, (&python, &script), size, &work.join(size.to_string()))?;
        search.extend(measured.search);
        startup.extend(measured.startup);
        chroma = Some(measured.chroma);
    }
    let ingest = match &args.minilm_dir {
        Some(dir) => Ingest::Measured(measure_ingest(&args, &runtime, dir, &work)?),
        None => Ingest::Skipped("no MINILM_DIR (run scripts/install-llm.sh and source its env file)".to_owned()),
    };
    let chroma = chroma.context("at least one size was measured")?;
    let setup = Setup {
        dimension: DIMENSION,
        clusters: args.clusters,
        spread: args.spread,
        seed: args.seed,
        queries: args.queries,
        k: args.k,
        rounds: args.rounds,
        batch: args.batch,
        cpus: std::thread::available_parallelism().map_or(1, usize::from),
        chroma_version: chroma.version,
        chroma_hnsw: chroma.hnsw,
    };
    let report = Report { setup, search, startup, ingest };

    println!("{}", report.markdown());
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&out, serde_json::to_string_pretty(&report)?)?;
    if !args.keep_data {
        std::fs::remove_dir_all(&work)?;
    }
    eprintln!("JSON report: {}", out.display());
    Ok(())
}

/// What one size gives.
struct Measured {
    search: Vec<SearchRow>,
    startup: Vec<StartupRow>,
    chroma: Ready,
}

/// Loads `size` vectors into the embedded store (as written, and an optimized copy) and into
/// Chroma, times reopening the embedded stores, then runs the search rounds over all three.
fn measure_size(
    args: &Args,
    runtime: &Runtime,
    (python, script): (&Path, &Path),
    size: usize,
    work: &Path,
) -> anyhow::Result<Measured> {
    eprintln!("== {size} vectors");
    let data = Dataset::clustered(size, args.queries, DIMENSION, args.clusters, args.spread, args.seed);
    let exact = data.exact_top_k(args.k);
    std::fs::create_dir_all(work)?;
    let (vectors_file, queries_file) = (work.join("vectors.f32"), work.join("queries.f32"));
    write_f32(&vectors_file, &data.points)?;
    write_f32(&queries_file, &data.queries)?;

    let (plain_dir, optimized_dir) = (work.join("edge"), work.join("edge-optimized"));
    let store = EdgeStore::open(&plain_dir, DIMENSION, Distance::Cosine)?;
    let load_seconds = runtime.block_on(edge::load(&store, &data, args.batch))?;
    eprintln!("  edge: loaded in {load_seconds:.2} s");
    drop(store);
    edge::copy_dir(&plain_dir, &optimized_dir).context("copying the store")?;
    let indexed = edge::build_index(&optimized_dir)?;
    eprintln!("  edge: optimized in {:.2} s: {}", indexed.seconds, indexed.description);

    eprintln!("  edge: reopening");
    let startup = vec![
        edge::reopen(runtime, &plain_dir, EDGE_AS_WRITTEN, (&data, size), args.reopens)?,
        edge::reopen(runtime, &optimized_dir, EDGE_OPTIMIZED, (&data, size), args.reopens)?,
    ];
    let plain = EdgeStore::open(&plain_dir, DIMENSION, Distance::Cosine)?;
    let optimized = EdgeStore::open(&optimized_dir, DIMENSION, Distance::Cosine)?;

    eprintln!("  chroma: loading");
    let launch = Launch {
        python,
        script,
        vectors: &vectors_file,
        queries: &queries_file,
        dimension: DIMENSION,
        k: args.k,
        batch: args.batch,
        dir: work.join("chroma"),
    };
    let mut chroma = Chroma::start(&launch)?;
    eprintln!("  chroma {}: loaded in {:.2} s", chroma.ready.version, chroma.ready.load_seconds);
    if usize::try_from(chroma.ready.count)? != size {
        bail!("Chroma counts {} points, {size} were added", chroma.ready.count);
    }

    // Round 0 warms every store up (page cache, lazy loading) and is not reported.
    let mut rounds: [Vec<Round>; 3] = Default::default();
    for round in 0..=args.rounds {
        for turn in 0..3 {
            let target = (round + turn) % 3;
            let result = match target {
                0 => runtime.block_on(edge::round(&plain, &data, args.k))?,
                1 => runtime.block_on(edge::round(&optimized, &data, args.k))?,
                _ => chroma.round()?,
            };
            if round > 0 {
                rounds[target].push(result);
            }
        }
        if round > 0 {
            let p50 = |target: usize| rounds[target].last().map_or(0.0, |r| Percentiles::of(&r.latencies_ms).p50_ms);
            eprintln!(
                "  round {round}: p50 ms: as written {:.3}, optimized {:.3}, chroma {:.3}",
                p50(0),
                p50(1),
                p50(2)
            );
        }
    }
    let chroma_ready = chroma.ready.clone();
    drop((plain, optimized, chroma));

    let [plain_rounds, optimized_rounds, chroma_rounds] = rounds;
    let row = |store: &str, index: String, load_seconds, index_seconds, rounds: Vec<Round>| {
        search_row(size, store, index, (load_seconds, index_seconds), &rounds, &exact)
    };
    let chroma_row = row(CHROMA, chroma_index(&chroma_ready), chroma_ready.load_seconds, None, chroma_rounds);
    let mut search = vec![
        row(EDGE_AS_WRITTEN, "none: full scan of the appendable segment".to_owned(), load_seconds, None, plain_rounds),
        row(EDGE_OPTIMIZED, indexed.description, load_seconds, Some(indexed.seconds), optimized_rounds),
    ];
    for edge_row in &mut search {
        edge_row.compare_with(&chroma_row);
    }
    search.push(chroma_row);
    if !args.keep_data {
        std::fs::remove_dir_all(work)?;
    }
    Ok(Measured { search, startup, chroma: chroma_ready })
}

fn search_row(
    size: usize,
    store: &str,
    index: String,
    (load_seconds, index_seconds): (f64, Option<f64>),
    rounds: &[Round],
    exact: &[Vec<u64>],
) -> SearchRow {
    let percentiles: Vec<Percentiles> = rounds.iter().map(|r| Percentiles::of(&r.latencies_ms)).collect();
    SearchRow {
        size,
        store: store.to_owned(),
        index,
        load_seconds,
        index_seconds,
        p50_ms: median(&percentiles.iter().map(|p| p.p50_ms).collect::<Vec<_>>()),
        p99_ms: median(&percentiles.iter().map(|p| p.p99_ms).collect::<Vec<_>>()),
        rounds: percentiles,
        recall: rounds.first().map_or(0.0, |r| recall(&r.ids, exact)),
        p50_over_chroma: None,
        p99_over_chroma: None,
    }
}

/// Chroma's index in words, from the parameters it reports.
fn chroma_index(ready: &Ready) -> String {
    let get = |key: &str| ready.hnsw.get(key).map_or_else(|| "?".to_owned(), ToString::to_string);
    format!(
        "HNSW M={} ef_construction={} (search ef={})",
        get("max_neighbors"),
        get("ef_construction"),
        get("ef_search")
    )
}

/// The ingest comparison: the paragraphs as one document, and as one document each.
fn measure_ingest(args: &Args, runtime: &Runtime, model_dir: &Path, work: &Path) -> anyhow::Result<Vec<IngestRow>> {
    eprintln!("== ingest");
    let config = EmbeddingConfig::Builtin { model: BUILTIN_EMBEDDING_MODEL.to_owned() };
    let dimension = u32::try_from(DIMENSION)?;
    let embedder = embeddings::from_config(&config, dimension, Some(model_dir), None)?;
    let paragraphs = ingest::paragraphs(args.paragraphs, args.words, args.seed);
    let shapes = [
        Shape {
            name: format!("1 document of {} paragraphs", paragraphs.len()),
            documents: vec![paragraphs.join("\n\n")],
        },
        Shape { name: format!("{} one-paragraph documents", paragraphs.len()), documents: paragraphs },
    ];
    runtime.block_on(ingest::run(&embedder, &shapes, args.rounds, work))
}
