//! Reranking retrieved passages: maximal marginal relevance (built in, on the agent's own
//! embeddings) or a rerank API speaking the common `/rerank` shape of TEI, llama.cpp and Jina.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::embeddings::EmbedError;
use crate::error::error_chain;
use crate::knowledge::{Knowledge, Passage};

/// Why reranking failed.
#[derive(Debug, thiserror::Error)]
pub enum RerankError {
    /// Embedding the query (or candidates the store has no vectors for) failed.
    #[error(transparent)]
    Embed(#[from] EmbedError),
    /// Reading the candidates' stored vectors failed.
    #[error("reading the passages' vectors: {0}")]
    Vectors(String),
    /// The rerank API could not be reached or failed.
    #[error("rerank endpoint {url}: {reason}")]
    Endpoint {
        /// The endpoint.
        url: String,
        /// What went wrong.
        reason: String,
    },
}

/// Picks `keep` of `passages` by maximal marginal relevance: each next pick maximises
/// `lambda * sim(query, p) - (1 - lambda) * max sim(p, picked)`, with cosine similarities of
/// the normalised embeddings. The passages' vectors are read from the store; only those it
/// cannot return (and the query) are embedded. A picked passage's score becomes its MMR score.
pub async fn mmr(
    knowledge: &Knowledge,
    query: &str,
    passages: Vec<Passage>,
    keep: usize,
    lambda: f32,
) -> Result<Vec<Passage>, RerankError> {
    if passages.len() <= 1 {
        return Ok(passages.into_iter().take(keep).collect());
    }
    let stored = knowledge.vectors_of(&passages).await.map_err(|e| RerankError::Vectors(e.to_string()))?;
    let mut texts = vec![query.to_owned()];
    texts.extend(passages.iter().zip(&stored).filter(|(_, v)| v.is_none()).map(|(p, _)| p.text.clone()));
    let mut embedded = knowledge.embedder.embed(texts).await?.into_iter();
    let Some(query_vector) = embedded.next() else { return Ok(passages) };
    let vectors: Vec<Vec<f32>> =
        stored.into_iter().map(|vector| vector.or_else(|| embedded.next()).unwrap_or_default()).collect();
    Ok(select_mmr(&query_vector, &vectors, passages, keep, lambda))
}

fn select_mmr(query: &[f32], vectors: &[Vec<f32>], passages: Vec<Passage>, keep: usize, lambda: f32) -> Vec<Passage> {
    let relevance: Vec<f32> = vectors.iter().map(|v| dot(query, v)).collect();
    let mut picked: Vec<usize> = Vec::new();
    let mut scores = Vec::new();
    while picked.len() < keep.min(passages.len()) {
        let best = (0..passages.len())
            .filter(|i| !picked.contains(i))
            .map(|i| {
                let redundancy = picked.iter().map(|&j| dot(&vectors[i], &vectors[j])).fold(f32::MIN, f32::max);
                let redundancy = if picked.is_empty() { 0.0 } else { redundancy };
                (i, lambda * relevance[i] - (1.0 - lambda) * redundancy)
            })
            .max_by(|a, b| a.1.total_cmp(&b.1));
        let Some((index, score)) = best else { break };
        picked.push(index);
        scores.push(score);
    }
    let mut slots: Vec<Option<Passage>> = passages.into_iter().map(Some).collect();
    picked.into_iter().zip(scores).filter_map(|(i, score)| slots[i].take().map(|p| Passage { score, ..p })).collect()
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// A rerank API: `POST {url}` with the query and the candidate texts.
#[derive(Clone, Debug)]
pub struct RerankEndpoint {
    client: reqwest::Client,
    url: String,
    model: Option<String>,
}

/// One scored candidate, in either answer shape.
#[derive(Deserialize)]
struct Ranked {
    index: usize,
    #[serde(alias = "relevance_score")]
    score: f32,
}

impl RerankEndpoint {
    /// A client for the rerank API at `url` (the full path, e.g. `http://tei:8080/rerank`).
    pub fn new(url: &str, model: Option<String>, timeout: Duration) -> Result<Self, RerankError> {
        crate::install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| RerankError::Endpoint { url: url.to_owned(), reason: error_chain(&e) })?;
        Ok(Self { client, url: url.to_owned(), model })
    }

    /// The `keep` best of `passages` by the API's scores, best first, each with its API score.
    ///
    /// The request carries the candidates as both `documents` (llama.cpp, Jina, Cohere) and
    /// `texts` (TEI); the answer is TEI's list of `{index, score}` or the others'
    /// `{"results": [{index, relevance_score}]}`.
    pub async fn rerank(&self, query: &str, passages: Vec<Passage>, keep: usize) -> Result<Vec<Passage>, RerankError> {
        if passages.is_empty() {
            return Ok(passages);
        }
        let texts: Vec<&str> = passages.iter().map(|p| p.text.as_str()).collect();
        let mut body =
            json!({ "query": query, "documents": texts, "texts": texts, "top_n": keep, "return_documents": false });
        if let Some(model) = &self.model {
            body["model"] = json!(model);
        }
        let failed = |reason: String| RerankError::Endpoint { url: self.url.clone(), reason };
        let response = self.client.post(&self.url).json(&body).send().await.map_err(|e| failed(error_chain(&e)))?;
        let status = response.status();
        let answer: Value = response
            .json()
            .await
            .map_err(|e| failed(format!("answered {status} with a body that is not JSON: {}", error_chain(&e))))?;
        if !status.is_success() {
            return Err(failed(format!("answered {status}: {answer}")));
        }
        let ranked = answer.get("results").unwrap_or(&answer).clone();
        let mut ranked: Vec<Ranked> = serde_json::from_value(ranked).map_err(|e| {
            failed(format!(
                "unexpected answer ({e}); expected [{{index, score}}] or {{results: [{{index, relevance_score}}]}}"
            ))
        })?;
        ranked.sort_by(|a, b| b.score.total_cmp(&a.score));
        let mut slots: Vec<Option<Passage>> = passages.into_iter().map(Some).collect();
        let total = slots.len();
        let mut kept = Vec::new();
        for Ranked { index, score } in ranked {
            let slot =
                slots.get_mut(index).ok_or_else(|| failed(format!("answered index {index} for {total} documents")))?;
            if let Some(passage) = slot.take() {
                kept.push(Passage { score, ..passage });
            }
            if kept.len() == keep {
                break;
            }
        }
        Ok(kept)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passage(text: &str, score: f32) -> Passage {
        Passage { document_id: text.into(), document_name: format!("{text}.md"), chunk: 0, text: text.into(), score }
    }

    #[test]
    fn mmr_skips_a_near_duplicate_for_a_less_similar_but_new_passage() {
        let query = [1.0, 0.0, 0.0];
        let norm = |v: [f32; 3]| {
            let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.map(|x| x / n).to_vec()
        };
        let vectors = vec![norm([1.0, 0.1, 0.0]), norm([1.0, 0.11, 0.0]), norm([0.7, 0.0, 0.7])];
        let passages = vec![passage("a", 0.99), passage("a-copy", 0.98), passage("other", 0.7)];
        let relevance_only = select_mmr(&query, &vectors, passages.clone(), 2, 1.0);
        assert_eq!(relevance_only.iter().map(|p| p.text.as_str()).collect::<Vec<_>>(), ["a", "a-copy"]);
        let diverse = select_mmr(&query, &vectors, passages, 2, 0.5);
        assert_eq!(diverse.iter().map(|p| p.text.as_str()).collect::<Vec<_>>(), ["a", "other"]);
    }
}
