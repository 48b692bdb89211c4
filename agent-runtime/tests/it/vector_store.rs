//! The embedded vector store against a real qdrant-edge shard: dense, BM25 and hybrid search,
//! filters, deletes, dimension checks, concurrent use, and durability across `kill -9` of the
//! writing process.

use std::path::{Path, PathBuf};

use agent_crds::runtime_config::Distance;
use agent_runtime::vector::{EdgeStore, Hit, Point};
use serde_json::{Map, Value};

use crate::support::scratch;

/// Dimension of the small test vectors.
const DIM: usize = 8;
/// Tells the test binary, run as a child, to be the writer that gets killed.
const WRITER_DIR_ENV: &str = "AGENT_RUNTIME_VECTOR_WRITER_DIR";

/// A fresh directory path (not created: the store creates it).
fn temp_dir(name: &str) -> PathBuf {
    scratch::scratch_path(name)
}

fn open(dir: &Path) -> EdgeStore {
    EdgeStore::open(dir, DIM, Distance::Cosine).expect("store opens")
}

/// A deterministic pseudo-random vector in [-1, 1)^dim (splitmix64).
fn seeded(seed: u64, dim: usize) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1);
    (0..dim)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            #[allow(clippy::cast_precision_loss)]
            let unit = (z >> 40) as f32 / (1u64 << 24) as f32;
            unit * 2.0 - 1.0
        })
        .collect()
}

/// The one-hot vector along `axis`.
fn axis(axis: usize) -> Vec<f32> {
    let mut vector = vec![0.0; DIM];
    vector[axis] = 1.0;
    vector
}

fn object(value: Value) -> Map<String, Value> {
    let Value::Object(map) = value else { panic!("payload must be an object") };
    map
}

fn point(id: u64, dense: Vec<f32>, payload: Value) -> Point {
    Point { id, dense, sparse: None, payload: object(payload) }
}

fn ids(hits: &[Hit]) -> Vec<u64> {
    hits.iter().map(|hit| hit.id).collect()
}

fn sorted(mut ids: Vec<u64>) -> Vec<u64> {
    ids.sort_unstable();
    ids
}

mod edge {
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use agent_crds::runtime_config::Distance;
    use agent_runtime::vector::{
        Bm25, EdgeStore, Match, PayloadFilter, Point, SearchRequest, SparseVector, VectorError, VectorStore,
    };
    use serde_json::json;

    use super::{DIM, WRITER_DIR_ENV, axis, ids, object, open, point, seeded, sorted, temp_dir};

    fn dense_request(dense: Vec<f32>, limit: usize) -> SearchRequest {
        SearchRequest { dense: Some(dense), limit, ..SearchRequest::default() }
    }

    /// Eight points along the axes, with a kind and a year to filter on.
    async fn axis_store(name: &str) -> EdgeStore {
        let store = open(&temp_dir(name));
        let points = (0..DIM)
            .map(|i| {
                let kind = if i % 2 == 0 { "note" } else { "doc" };
                point(i as u64, axis(i), json!({"title": format!("axis {i}"), "kind": kind, "year": 2018 + i}))
            })
            .collect();
        store.upsert(points).await.expect("upsert");
        store
    }

    #[tokio::test]
    async fn dense_search_returns_the_nearest_points_first_with_their_scores() {
        let store = axis_store("dense").await;
        let mut query = vec![0.0; DIM];
        query[3] = 0.9;
        query[5] = 0.4;
        let hits = store.search(dense_request(query, 3)).await.expect("search");
        assert_eq!(ids(&hits)[..2], [3, 5]);
        assert_eq!(hits.len(), 3);
        let norm = (0.9f32 * 0.9 + 0.4 * 0.4).sqrt();
        assert!((hits[0].score - 0.9 / norm).abs() < 1e-4, "cosine score of axis 3: {}", hits[0].score);
        assert!((hits[1].score - 0.4 / norm).abs() < 1e-4, "cosine score of axis 5: {}", hits[1].score);
        assert_eq!(hits[0].payload["title"], "axis 3");
    }

    #[tokio::test]
    async fn score_threshold_drops_dense_hits_below_it() {
        let store = axis_store("threshold").await;
        let mut query = vec![0.0; DIM];
        query[1] = 0.9;
        query[2] = 0.4;
        let request = SearchRequest { score_threshold: Some(0.5), ..dense_request(query, 8) };
        let hits = store.search(request).await.expect("search");
        assert_eq!(ids(&hits), [1]);
    }

    #[tokio::test]
    async fn payload_filters_restrict_results_to_matching_keywords_integers_and_ranges() {
        let store = axis_store("filter").await;
        let search = |filter: PayloadFilter| {
            let request = SearchRequest { filter: Some(filter), ..dense_request(vec![1.0; DIM], 8) };
            let store = &store;
            async move { sorted(ids(&store.search(request).await.expect("search"))) }
        };
        assert_eq!(search(PayloadFilter::new("kind", Match::Keyword("doc".into()))).await, [1, 3, 5, 7]);
        assert_eq!(search(PayloadFilter::new("year", Match::Integer(2020))).await, [2]);
        let years = PayloadFilter::new("year", Match::Range { gte: Some(2019.0), lte: Some(2022.0) });
        assert_eq!(search(years.clone()).await, [1, 2, 3, 4]);
        assert_eq!(search(years.and("kind", Match::Keyword("note".into()))).await, [2, 4]);
        let open_ended = PayloadFilter::new("year", Match::Range { gte: Some(2024.0), lte: None });
        assert_eq!(search(open_ended).await, [6, 7]);
    }

    #[tokio::test]
    async fn delete_by_filter_removes_only_matching_points_and_count_and_scroll_agree() {
        let store = open(&temp_dir("delete"));
        let points =
            (0..10u64).map(|i| point(i, seeded(i, DIM), json!({"source": if i < 6 { "a" } else { "b" }}))).collect();
        store.upsert(points).await.expect("upsert");
        let from_a = || PayloadFilter::new("source", Match::Keyword("a".into()));
        assert_eq!(store.count(None).await.expect("count"), 10);
        assert_eq!(store.count(Some(from_a())).await.expect("count"), 6);

        store.delete(from_a()).await.expect("delete");

        assert_eq!(store.count(None).await.expect("count"), 4);
        let listed = store.scroll(None, 100).await.expect("scroll");
        assert_eq!(sorted(ids(&listed)), [6, 7, 8, 9]);
        assert!(listed.iter().all(|hit| hit.payload["source"] == "b"));
        assert_eq!(store.scroll(None, 2).await.expect("scroll").len(), 2);
        let hits = store.search(dense_request(seeded(0, DIM), 10)).await.expect("search");
        assert_eq!(sorted(ids(&hits)), [6, 7, 8, 9], "deleted points are not found either");
    }

    #[tokio::test]
    async fn a_delete_without_conditions_is_refused_and_deletes_nothing() {
        let store = axis_store("delete-all").await;
        let error = store.delete(PayloadFilter::default()).await.expect_err("refused");
        assert!(matches!(error, VectorError::EmptyFilter), "{error}");
        assert_eq!(store.count(None).await.expect("count"), DIM as u64);
    }

    #[tokio::test]
    async fn upserting_an_existing_id_replaces_the_point() {
        let store = axis_store("replace").await;
        store.upsert(vec![point(3, axis(0), json!({"title": "moved"}))]).await.expect("upsert");
        assert_eq!(store.count(None).await.expect("count"), DIM as u64);
        let hits = store.search(dense_request(axis(0), 2)).await.expect("search");
        assert_eq!(sorted(ids(&hits)), [0, 3]);
        let moved = hits.iter().find(|hit| hit.id == 3).expect("point 3");
        assert_eq!(moved.payload["title"], "moved");
    }

    /// Documents that all say "river" except one, which alone says "axolotl".
    async fn text_store(name: &str, bm25: &Bm25) -> EdgeStore {
        let store = open(&temp_dir(name));
        let texts = [
            "river river river river river river",
            "the river bends past the old mill",
            "a river of traffic on the ring road",
            "an axolotl lives in the lake",
            "river stones and river sand",
            "down by the river",
        ];
        let points = texts
            .iter()
            .zip(0u64..)
            .map(|(text, id)| Point {
                id,
                dense: seeded(id + 100, DIM),
                sparse: Some(bm25.document(text)),
                payload: object(json!({"text": text})),
            })
            .collect();
        store.upsert(points).await.expect("upsert");
        store
    }

    #[tokio::test]
    async fn bm25_search_ranks_the_document_with_the_rare_query_word_first() {
        let bm25 = Bm25::new();
        let store = text_store("bm25", &bm25).await;
        let request = SearchRequest { sparse: Some(bm25.query("river axolotl")), limit: 3, ..SearchRequest::default() };
        let hits = store.search(request).await.expect("search");
        // Without IDF the "river" x6 document would win on term frequency.
        assert_eq!(hits[0].id, 3, "{hits:?}");
        assert!(hits[0].score > hits[1].score);
    }

    #[tokio::test]
    async fn bm25_search_with_only_stopwords_finds_nothing() {
        let bm25 = Bm25::new();
        let store = text_store("stopwords", &bm25).await;
        let request = SearchRequest { sparse: Some(bm25.query("the of and")), limit: 3, ..SearchRequest::default() };
        assert!(store.search(request).await.expect("search").is_empty());
    }

    #[tokio::test]
    async fn hybrid_search_keeps_a_point_that_only_the_keyword_search_ranks_first() {
        let bm25 = Bm25::new();
        let store = text_store("hybrid", &bm25).await;
        // The dense query is document 0's own vector, and document 3 points the opposite way.
        store
            .upsert(vec![Point {
                id: 3,
                dense: seeded(100, DIM).iter().map(|x| -x).collect(),
                sparse: Some(bm25.document("an axolotl lives in the lake")),
                payload: object(json!({})),
            }])
            .await
            .expect("upsert");
        let dense_only = store.search(dense_request(seeded(100, DIM), 2)).await.expect("search");
        assert_eq!(dense_only[0].id, 0);
        assert!(!ids(&dense_only).contains(&3), "dense search alone misses it: {dense_only:?}");

        let hybrid = SearchRequest {
            dense: Some(seeded(100, DIM)),
            sparse: Some(bm25.query("axolotl")),
            limit: 2,
            ..SearchRequest::default()
        };
        let hits = store.search(hybrid).await.expect("search");
        assert_eq!(sorted(ids(&hits)), [0, 3], "{hits:?}");
    }

    #[tokio::test]
    async fn a_wrong_dense_dimension_is_refused_before_anything_is_written() {
        let store = open(&temp_dir("dimension"));
        let batch = vec![point(1, axis(0), json!({})), point(2, vec![0.5; DIM - 1], json!({}))];
        let error = store.upsert(batch).await.expect_err("refused");
        assert!(
            matches!(error, VectorError::WrongDimension { id: Some(2), expected: DIM, got } if got == DIM - 1),
            "{error:?}"
        );
        assert_eq!(error.to_string(), "point 2: expected a 8-dimensional dense vector, got 7 dimensions");
        assert_eq!(store.count(None).await.expect("count"), 0, "the valid point of the batch was not written");

        let error = store.search(dense_request(vec![1.0; DIM + 1], 3)).await.expect_err("refused");
        assert!(matches!(error, VectorError::WrongDimension { id: None, expected: DIM, got: 9 }), "{error:?}");
    }

    #[tokio::test]
    async fn reopening_with_another_dimension_or_distance_is_refused_and_keeps_the_data() {
        let dir = temp_dir("reopen");
        let store = open(&dir);
        store.upsert((0..3).map(|i| point(i, seeded(i, DIM), json!({}))).collect()).await.expect("upsert");
        drop(store);

        let error = EdgeStore::open(&dir, 16, Distance::Cosine).expect_err("refused");
        let message = error.to_string();
        assert!(matches!(error, VectorError::Incompatible { .. }), "{error:?}");
        assert!(message.contains("8-dimensional Cosine") && message.contains("16-dimensional Cosine"), "{message}");
        let error = EdgeStore::open(&dir, DIM, Distance::Dot).expect_err("refused");
        assert!(matches!(error, VectorError::Incompatible { .. }), "{error:?}");

        let store = open(&dir);
        assert_eq!(store.count(None).await.expect("count"), 3);
        let hits = store.search(dense_request(seeded(1, DIM), 1)).await.expect("search");
        assert_eq!(ids(&hits), [1]);
    }

    /// Past qdrant's indexing threshold (~6,700 384-d vectors) `optimize` builds the HNSW index;
    /// searches give the same nearest points before and after, and the index survives a reopen.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn optimize_indexes_a_large_store_without_changing_what_searches_find() {
        const WIDE: usize = 384;
        const POINTS: u64 = 7_000;
        let dir = temp_dir("optimize");
        let store = EdgeStore::open(&dir, WIDE, Distance::Cosine).expect("store opens");
        for first in (0..POINTS).step_by(1_000) {
            let points = (first..first + 1_000).map(|id| point(id, seeded(id, WIDE), json!({"n": id})));
            store.upsert(points.collect()).await.expect("upsert");
        }
        assert_eq!(store.indexed_points(), 0, "writes land in a plain segment");
        // Queries: stored points (each must find itself first) and fresh random vectors.
        let queries: Vec<Vec<f32>> = [11, 2_222, 4_444, 6_999, POINTS + 1, POINTS + 2, POINTS + 3]
            .into_iter()
            .map(|seed| seeded(seed, WIDE))
            .collect();
        let mut exact = Vec::new();
        for query in &queries {
            exact.push(ids(&store.search(dense_request(query.clone(), 10)).await.expect("search")));
        }
        let indexed = store.optimize().await.expect("optimize");
        assert!(indexed >= POINTS * 9 / 10, "the optimizer indexed {indexed} of {POINTS} points");
        let (mut found, mut wanted) = (0, 0);
        for (query, exact) in queries.iter().zip(&exact) {
            let approximate = ids(&store.search(dense_request(query.clone(), 10)).await.expect("search"));
            assert_eq!(approximate[0], exact[0], "the nearest point is still found first");
            found += approximate.iter().filter(|id| exact.contains(id)).count();
            wanted += exact.len();
        }
        // Uniform random 384-d vectors are nearly equidistant, HNSW's hardest case: 0.8 still
        // catches a broken index (which finds almost none) without failing on its approximation.
        assert!(found * 10 >= wanted * 8, "recall@10 after indexing {found}/{wanted}");
        store.upsert(vec![point(POINTS, axis_wide(WIDE), json!({"n": POINTS}))]).await.expect("write after optimize");
        drop(store);
        let reopened = EdgeStore::open(&dir, WIDE, Distance::Cosine).expect("reopens");
        assert_eq!(reopened.count(None).await.expect("count"), POINTS + 1);
        assert!(reopened.indexed_points() >= indexed, "the index is on disk");
        let hit = reopened.search(dense_request(axis_wide(WIDE), 1)).await.expect("search");
        assert_eq!(ids(&hit), [POINTS]);
    }

    fn axis_wide(dim: usize) -> Vec<f32> {
        let mut vector = vec![0.0; dim];
        vector[0] = 1.0;
        vector
    }

    #[tokio::test]
    async fn stored_dense_vectors_are_returned_in_the_order_asked_and_missing_ids_are_none() {
        let store = axis_store("vectors").await;
        let vectors = store.dense_vectors(vec![3, 99, 0]).await.expect("vectors");
        assert_eq!(vectors, [Some(axis(3)), None, Some(axis(0))]);
    }

    #[tokio::test]
    async fn a_second_handle_on_an_open_directory_is_refused() {
        let dir = temp_dir("locked");
        let _store = open(&dir);
        let error = EdgeStore::open(&dir, DIM, Distance::Cosine).expect_err("the directory is locked");
        assert!(matches!(error, VectorError::Storage { .. }), "{error:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_upserts_and_searches_from_many_tasks_are_safe() {
        const TASKS: u64 = 8;
        const BATCHES: u64 = 15;
        const BATCH: u64 = 4;
        let store = Arc::new(open(&temp_dir("concurrent")));
        let tasks = (0..TASKS).map(|task| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                for batch in 0..BATCHES {
                    let first = (task * BATCHES + batch) * BATCH;
                    let points = (first..first + BATCH).map(|id| point(id, seeded(id, DIM), json!({"task": task})));
                    store.upsert(points.collect()).await.expect("upsert");
                    store.search(dense_request(seeded(first, DIM), 5)).await.expect("search");
                    let own = PayloadFilter::new("task", Match::Integer(i64::try_from(task).expect("small")));
                    let count = store.count(Some(own)).await.expect("count");
                    assert_eq!(count, (batch + 1) * BATCH, "a task sees all of its acknowledged points");
                }
            })
        });
        for task in futures::future::join_all(tasks).await {
            task.expect("no task panicked");
        }
        assert_eq!(store.count(None).await.expect("count"), TASKS * BATCHES * BATCH);
    }

    /// Batches the writers acknowledge before the parent kills them.
    const ACKED_BEFORE_KILL: usize = 24;
    const POINTS_PER_BATCH: u64 = 10;
    /// Concurrent writer tasks in the child, so grouped flushes are killed too.
    const WRITERS: u64 = 4;

    #[tokio::test]
    async fn acknowledged_points_survive_kill_9_of_the_writing_process() {
        let dir = temp_dir("kill");
        let mut child = Command::new(std::env::current_exe().expect("test binary"))
            .args(["vector_store::edge::writer_child_acknowledges_batches_until_killed", "--exact", "--ignored"])
            .args(["--nocapture", "--test-threads=1"])
            .env(WRITER_DIR_ENV, &dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("child starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut acked = Vec::new();
        for line in BufReader::new(stdout).lines() {
            if let Some(batch) = line.expect("child output").strip_prefix("acked ") {
                acked.push(batch.parse::<i64>().expect("batch number"));
                if acked.len() == ACKED_BEFORE_KILL {
                    // SIGKILL while the writers are in the middle of their next batches.
                    child.kill().expect("kill");
                    break;
                }
            }
        }
        let status = child.wait().expect("child ends");
        assert!(!status.success(), "the writer never exits cleanly: {status:?}");
        assert_eq!(acked.len(), ACKED_BEFORE_KILL, "the writers acknowledged batches before they were killed");

        let store = open(&dir);
        for &batch in &acked {
            let count = store.count(Some(PayloadFilter::new("batch", Match::Integer(batch)))).await.expect("count");
            assert_eq!(count, POINTS_PER_BATCH, "acknowledged batch {batch} is complete after the kill");
        }
        let probe = u64::try_from(acked[acked.len() - 1]).expect("positive") * POINTS_PER_BATCH;
        let hits = store.search(dense_request(seeded(probe, DIM), 1)).await.expect("search");
        assert_eq!(ids(&hits), [probe], "the last acknowledged point is searchable");
    }

    /// The writer half of the kill test: run by that test as a child process, never on its own.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    #[ignore = "run as a child process by acknowledged_points_survive_kill_9_of_the_writing_process"]
    async fn writer_child_acknowledges_batches_until_killed() {
        let Some(dir) = std::env::var_os(WRITER_DIR_ENV) else { return };
        let store = Arc::new(open(std::path::Path::new(&dir)));
        let writers = (0..WRITERS).map(|writer| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                for batch in (writer..).step_by(usize::try_from(WRITERS).expect("small")) {
                    let first = batch * POINTS_PER_BATCH;
                    let points =
                        (first..first + POINTS_PER_BATCH).map(|id| point(id, seeded(id, DIM), json!({"batch": batch})));
                    store.upsert(points.collect()).await.expect("upsert");
                    println!("acked {batch}");
                    std::io::stdout().flush().expect("stdout");
                    if batch > 100 * WRITERS {
                        // Not killed: still leave without a clean shutdown.
                        std::process::abort();
                    }
                }
            })
        });
        futures::future::join_all(writers).await;
    }

    fn percentile(sorted: &[Duration], p: f64) -> Duration {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
        let index = ((sorted.len() - 1) as f64 * p).round() as usize;
        sorted[index]
    }

    async fn time_single_upserts(store: &EdgeStore, label: &str, first_id: u64) {
        let mut times = Vec::new();
        for id in first_id..first_id + 50 {
            let start = Instant::now();
            store.upsert(vec![point(id, seeded(id, 384), json!({"group": 0}))]).await.expect("upsert");
            times.push(start.elapsed());
        }
        times.sort_unstable();
        println!("{label}: p50 {:?}, p99 {:?}", percentile(&times, 0.5), percentile(&times, 0.99));
    }

    async fn time_searches(store: &EdgeStore, label: &str, request: impl Fn(u64) -> SearchRequest) {
        let mut times = Vec::new();
        for seed in 0..300u64 {
            let request = request(seed);
            let start = Instant::now();
            let hits = store.search(request).await.expect("search");
            times.push(start.elapsed());
            assert!(!hits.is_empty());
        }
        times.sort_unstable();
        println!("{label}: p50 {:?}, p99 {:?}", percentile(&times, 0.5), percentile(&times, 0.99));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "benchmark: cargo test --release -p agent-runtime vector_store::search_latency -- --ignored --nocapture"]
    async fn search_latency_over_ten_thousand_384_dimensional_points() {
        const N: u64 = 10_000;
        const DIMENSION: usize = 384;
        let store = Arc::new(EdgeStore::open(&temp_dir("latency"), DIMENSION, Distance::Cosine).expect("store opens"));
        time_single_upserts(&store, "single-point upsert into an empty store", 1_000_000).await;
        let sparse = |seed: u64| {
            let mut indices: Vec<u32> =
                (0..8).map(|i| u32::try_from((seed * 31 + i * 7919) % 5000).unwrap_or(0)).collect();
            indices.sort_unstable();
            indices.dedup();
            SparseVector { values: vec![1.0; indices.len()], indices }
        };
        let start = Instant::now();
        for first in (0..N).step_by(500) {
            let points = (first..first + 500).map(|id| Point {
                sparse: Some(sparse(id)),
                ..point(id, seeded(id, DIMENSION), json!({"group": id % 10}))
            });
            store.upsert(points.collect()).await.expect("upsert");
        }
        println!("upserted {N} points in batches of 500 (each flushed) in {:?}", start.elapsed());
        time_single_upserts(&store, "single-point upsert into 10k points", N).await;
        let start = Instant::now();
        let writers = (0..8u64).map(|writer| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                for i in 0..10 {
                    let id = 2_000_000 + writer * 100 + i;
                    store.upsert(vec![point(id, seeded(id, DIMENSION), json!({"group": 0}))]).await.expect("upsert");
                }
            })
        });
        for writer in futures::future::join_all(writers).await {
            writer.expect("writer");
        }
        println!("8 concurrent writers x 10 single-point upserts: {:?} in all", start.elapsed());
        time_searches(&store, "dense top-10", |seed| dense_request(seeded(N + seed, DIMENSION), 10)).await;
        time_searches(&store, "dense top-10, keyword filter", |seed| SearchRequest {
            filter: Some(PayloadFilter::new("group", Match::Integer(3))),
            ..dense_request(seeded(N + seed, DIMENSION), 10)
        })
        .await;
        time_searches(&store, "sparse top-10", |seed| SearchRequest {
            sparse: Some(sparse(seed)),
            limit: 10,
            ..SearchRequest::default()
        })
        .await;
        time_searches(&store, "hybrid top-10", |seed| SearchRequest {
            sparse: Some(sparse(seed)),
            ..dense_request(seeded(N + seed, DIMENSION), 10)
        })
        .await;
    }
}
