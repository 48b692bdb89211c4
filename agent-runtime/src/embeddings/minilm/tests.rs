//! Tests of the built-in embedder against the real all-MiniLM-L6-v2 files installed by
//! `scripts/install-llm.sh`. They fail, rather than skip, when the files are missing.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Instant;

use agent_crds::runtime_config::EmbeddingConfig;

use super::*;
use crate::embeddings::from_config;

/// The model folder, from the env file `scripts/install-llm.sh` writes.
fn minilm_dir() -> PathBuf {
    let llm_dir = std::env::var_os("AGENT_LLM_DIR").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into())).join(".cache/agent-operator/llm"),
        PathBuf::from,
    );
    let env_file = llm_dir.join("env");
    let text = std::fs::read_to_string(&env_file).unwrap_or_else(|error| {
        panic!(
            "cannot read {} ({error}): run scripts/install-llm.sh to install the built-in embedding model",
            env_file.display()
        )
    });
    let dir = text
        .lines()
        .find_map(|line| line.trim().trim_start_matches("export ").strip_prefix("MINILM_DIR="))
        .unwrap_or_else(|| panic!("{} names no MINILM_DIR: run scripts/install-llm.sh", env_file.display()));
    PathBuf::from(dir.trim().trim_matches(['"', '\'']))
}

/// One model for all tests: loading it takes a while in debug builds.
fn model() -> &'static MiniLm {
    static MODEL: OnceLock<MiniLm> = OnceLock::new();
    MODEL.get_or_init(|| {
        let dir = minilm_dir();
        MiniLm::load(&dir)
            .unwrap_or_else(|error| panic!("{error} (from {}; run scripts/install-llm.sh)", dir.display()))
    })
}

async fn embed(texts: &[&str]) -> Vec<Vec<f32>> {
    model().embed(texts.iter().map(|t| (*t).to_owned()).collect()).await.expect("embeds")
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn max_difference(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[tokio::test]
async fn vectors_have_384_dimensions_and_unit_length() {
    let vectors = embed(&["A cat sits on the mat", "", "Ünïcödé and emoji 🚀 too"]).await;
    assert_eq!(model().dimension(), 384);
    assert_eq!(vectors.len(), 3);
    for vector in &vectors {
        assert_eq!(vector.len(), 384);
        assert!((dot(vector, vector).sqrt() - 1.0).abs() < 1e-5, "norm is {}", dot(vector, vector).sqrt());
    }
}

#[tokio::test]
async fn a_padded_batch_gives_the_same_vectors_as_texts_embedded_one_by_one() {
    let texts: Vec<String> = (0..40)
        .map(|i| format!("Sentence number {i} says {}.", "something rather long and padded ".repeat(i % 9)))
        .collect();
    let batched = model().embed(texts.clone()).await.expect("embeds the batch");
    assert_eq!(batched.len(), texts.len());
    let mut largest = 0.0_f32;
    for (text, from_batch) in texts.iter().zip(&batched) {
        let alone = model().embed(vec![text.clone()]).await.expect("embeds one text");
        let difference = max_difference(&alone[0], from_batch);
        assert!(difference < 1e-4, "{text:?} differs by {difference} between batch and alone");
        largest = largest.max(difference);
    }
    println!("largest difference between batched and alone: {largest:e}");
}

#[tokio::test]
async fn a_paraphrase_is_much_closer_than_an_unrelated_sentence() {
    let v = embed(&["A cat sits on the mat", "A kitten is sitting on a rug", "Stock markets fell sharply today"]).await;
    let (paraphrase, unrelated) = (dot(&v[0], &v[1]), dot(&v[0], &v[2]));
    println!("cos(paraphrase) = {paraphrase}, cos(unrelated) = {unrelated}");
    assert!(paraphrase - unrelated > 0.3, "cos(paraphrase) = {paraphrase}, cos(unrelated) = {unrelated}");
}

/// Reference: the first five values sentence-transformers gives for "hello world", as pinned by
/// qdrant/fastembed `tests/test_text_onnx_embeddings.py` (since its "MiniLM fix", PR #275, which
/// switched to sentence-transformers' own pooling), checked there with the same tolerance.
#[tokio::test]
async fn hello_world_matches_the_sentence_transformers_reference() {
    const REFERENCE: [f32; 5] = [-0.034_478, 0.031_02, 0.006_73, 0.026_11, -0.039_362];
    let vectors = embed(&["hello world"]).await;
    let difference = max_difference(&vectors[0][..5], &REFERENCE);
    println!("hello world: {:?}, largest difference from the reference {difference:e}", &vectors[0][..5]);
    assert!(difference < 1e-3, "got {:?}, want {REFERENCE:?}", &vectors[0][..5]);
}

#[tokio::test]
async fn texts_are_cut_at_256_tokens_not_at_the_128_of_the_tokenizer_file() {
    // "the" is one token; [CLS] comes first, so word n is token n.
    let prefix = |words: usize| "the ".repeat(words);
    let v = embed(&[
        &format!("{}cats", prefix(200)),
        &format!("{}stocks", prefix(200)),
        &format!("{}cats", prefix(300)),
        &format!("{}stocks", prefix(300)),
    ])
    .await;
    assert!(max_difference(&v[0], &v[1]) > 1e-3, "words past token 128 must count");
    assert!(max_difference(&v[2], &v[3]) < 1e-6, "words past token 256 must be cut");
}

#[tokio::test]
async fn embedding_nothing_gives_nothing() {
    assert!(model().embed(Vec::new()).await.expect("embeds").is_empty());
}

#[test]
fn the_config_builds_the_builtin_model_and_checks_its_dimension() {
    let config = EmbeddingConfig::Builtin { model: BUILTIN_EMBEDDING_MODEL.into() };
    let dir = minilm_dir();
    let embedder = from_config(&config, 384, Some(&dir), None).expect("builds");
    assert_eq!((embedder.dimension(), embedder.model()), (384, BUILTIN_EMBEDDING_MODEL));
    match from_config(&config, 768, Some(&dir), None) {
        Err(EmbedError::Dimension { expected: 768, got: 384, .. }) => {}
        other => panic!("expected a dimension error, got {:?}", other.err()),
    }
}

/// Throughput of raw embedding: 256 texts of ~50 words in batches of 32, median of 3 runs.
/// Printed, not asserted. Run it in a release build:
/// `cargo test --release -p agent-runtime --lib throughput -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "a measurement, not a check; slow in debug builds"]
async fn throughput_of_256_chunks_of_50_words() {
    const CHUNKS: u32 = 256;
    let words = "memory retrieval agents embed every chunk of text they store and search later on";
    let texts: Vec<String> = (0..CHUNKS)
        .map(|i| format!("Chunk {i}: {}", std::iter::repeat_n(words, 4).collect::<Vec<_>>().join(" ")))
        .map(|text| text.split(' ').take(50).collect::<Vec<_>>().join(" "))
        .collect();
    model().embed(texts[..BATCH_SIZE].to_vec()).await.expect("warms up");
    let mut rates = Vec::new();
    for _ in 0..3 {
        let start = Instant::now();
        let vectors = model().embed(texts.clone()).await.expect("embeds");
        assert_eq!(vectors.len(), texts.len());
        rates.push(f64::from(CHUNKS) / start.elapsed().as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    println!("all-MiniLM-L6-v2 throughput: {:.1} chunks/s (median of {rates:.1?})", rates[1]);
}
