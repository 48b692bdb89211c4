//! Ingest throughput: generated paragraphs through `Knowledge::ingest` end to end (parse, chunk,
//! embed, BM25, upsert, flush) against the embedding model alone on the very same chunks, which
//! is the limit ingestion can reach.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use agent_crds::runtime_config::Distance;
use agent_runtime::embeddings::Embedder;
use agent_runtime::knowledge::Knowledge;
use agent_runtime::knowledge::chunk::{ChunkSize, EstimatedTokens, chunk};
use agent_runtime::knowledge::parse::{Format, to_text};
use agent_runtime::vector::EdgeStore;
use anyhow::{Context as _, bail};

use super::data::XorShift;
use super::report::{IngestRow, median};

/// The runtime's chunking when no recipe sets one (see `open_knowledge` in the crate root).
const CHUNKING: ChunkSize = ChunkSize { size: 256, overlap: 32 };
const CONTENT_TYPE: &str = "text/plain";

/// `count` paragraphs of about `words` words, of sentences of 6 to 15 words from a fixed
/// vocabulary of made-up words plus common English function words.
pub fn paragraphs(count: usize, words: usize, seed: u64) -> Vec<String> {
    const SYLLABLES: [&str; 24] = [
        "ka", "lo", "mi", "ne", "ru", "ta", "vo", "si", "pe", "da", "gu", "ri", "ton", "mar", "sel", "bin", "cor",
        "fen", "lis", "quo", "tra", "dem", "pal", "wex",
    ];
    const COMMON: [&str; 12] = ["the", "of", "and", "a", "to", "in", "is", "that", "for", "with", "as", "on"];
    let mut rng = XorShift::new(seed);
    let vocabulary: Vec<String> =
        (0..800).map(|_| (0..=rng.below(3)).map(|_| SYLLABLES[rng.below(SYLLABLES.len())]).collect()).collect();
    (0..count)
        .map(|_| {
            let mut paragraph = String::new();
            let mut written = 0;
            while written < words {
                let length = 6 + rng.below(10);
                for position in 0..length {
                    let word = if rng.below(3) == 0 {
                        COMMON[rng.below(COMMON.len())]
                    } else {
                        &vocabulary[rng.below(vocabulary.len())]
                    };
                    if position == 0 {
                        if !paragraph.is_empty() {
                            paragraph.push(' ');
                        }
                        let mut letters = word.chars();
                        paragraph.extend(letters.next().map(|c| c.to_ascii_uppercase()));
                        paragraph.extend(letters);
                    } else {
                        paragraph.push(' ');
                        paragraph.push_str(word);
                    }
                }
                paragraph.push('.');
                written += length;
            }
            paragraph
        })
        .collect()
}

/// One way of cutting the text into documents.
pub struct Shape {
    /// What the report calls it.
    pub name: String,
    /// The documents' texts.
    pub documents: Vec<String>,
}

/// Measures each shape for `rounds` rounds, alternating which of ingest and embed goes first.
pub async fn run(
    embedder: &Arc<dyn Embedder>,
    shapes: &[Shape],
    rounds: usize,
    work: &Path,
) -> anyhow::Result<Vec<IngestRow>> {
    // The first inference pays for loading the weights into memory; keep it out of the rounds.
    embedder.embed(vec!["warm up".to_owned(); 4]).await?;
    let mut rows = Vec::new();
    for (index, shape) in shapes.iter().enumerate() {
        let chunks = chunks_of(&shape.documents)?;
        let (mut ingest_rounds, mut embed_rounds, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..rounds {
            let dir = work.join(format!("ingest-{index}-{round}"));
            let (ingest, embed) = if round % 2 == 0 {
                let ingest = ingest_rate(embedder, &shape.documents, chunks.len(), &dir).await?;
                (ingest, embed_rate(embedder, &chunks).await?)
            } else {
                let embed = embed_rate(embedder, &chunks).await?;
                (ingest_rate(embedder, &shape.documents, chunks.len(), &dir).await?, embed)
            };
            std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
            eprintln!("  {}: round {}: ingest {ingest:.1} chunks/s, embed {embed:.1} chunks/s", shape.name, round + 1);
            ingest_rounds.push(ingest);
            embed_rounds.push(embed);
            ratios.push(ingest / embed);
        }
        rows.push(IngestRow {
            shape: shape.name.clone(),
            documents: shape.documents.len(),
            chunks: chunks.len(),
            ingest_chunks_per_second: median(&ingest_rounds),
            embed_chunks_per_second: median(&embed_rounds),
            ingest_over_embed: median(&ratios),
            ingest_rounds,
            embed_rounds,
        });
    }
    Ok(rows)
}

/// The chunks `Knowledge::ingest` makes of these documents, by the same parse and chunk steps.
fn chunks_of(documents: &[String]) -> anyhow::Result<Vec<String>> {
    let mut chunks = Vec::new();
    for (index, document) in documents.iter().enumerate() {
        let format = Format::detect(Some(CONTENT_TYPE), Some(&name(index)))?;
        let text = to_text(document.as_bytes(), format)?;
        chunks.extend(chunk(&text, CHUNKING, &EstimatedTokens));
    }
    Ok(chunks)
}

/// Chunks per second through `Knowledge::ingest` into a new store in `dir`, one document after
/// another; the store is opened before the clock starts.
async fn ingest_rate(
    embedder: &Arc<dyn Embedder>,
    documents: &[String],
    chunks: usize,
    dir: &Path,
) -> anyhow::Result<f64> {
    let store = EdgeStore::open(dir, embedder.dimension(), Distance::Cosine)?;
    let knowledge = Knowledge::new(Arc::new(store), Arc::clone(embedder), Arc::new(EstimatedTokens), CHUNKING);
    let started = Instant::now();
    let mut stored = 0;
    for (index, document) in documents.iter().enumerate() {
        let ingested = knowledge.ingest(&name(index), Some(CONTENT_TYPE), document.as_bytes()).await?;
        if !ingested.created {
            bail!("document {index} was already stored: the generated documents must differ");
        }
        stored += ingested.document.chunks;
    }
    let seconds = started.elapsed().as_secs_f64();
    if usize::try_from(stored)? != chunks {
        bail!("ingest stored {stored} chunks but the same parse and chunk steps give {chunks}");
    }
    Ok(per_second(chunks, seconds))
}

/// Chunks per second through `Embedder::embed` alone, all chunks in one call (the embedder
/// batches internally), which is the model's best case.
async fn embed_rate(embedder: &Arc<dyn Embedder>, chunks: &[String]) -> anyhow::Result<f64> {
    let started = Instant::now();
    let vectors = embedder.embed(chunks.to_vec()).await?;
    let seconds = started.elapsed().as_secs_f64();
    if vectors.len() != chunks.len() {
        bail!("the embedder returned {} vectors for {} chunks", vectors.len(), chunks.len());
    }
    Ok(per_second(chunks.len(), seconds))
}

fn name(index: usize) -> String {
    format!("paragraphs-{index}.txt")
}

fn per_second(count: usize, seconds: f64) -> f64 {
    f64::from(u32::try_from(count).unwrap_or(u32::MAX)) / seconds
}
