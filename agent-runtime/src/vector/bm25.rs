//! BM25 sparse vectors for keyword search, from qdrant-edge's embedder (the same tokenizer,
//! English stopwords, stemmer and term hashing as a Qdrant server's BM25).
//!
//! Documents get term-frequency weights and queries weight 1 per term; the inverse document
//! frequency is applied by the store at search time, so it follows the stored corpus.

use qdrant_edge::bm25_embed::{EdgeBm25, EdgeBm25Config};

use super::SparseVector;

/// Turns text into BM25 sparse vectors.
pub struct Bm25 {
    /// `None` only if qdrant-edge ever rejects its own default config; keyword vectors are then
    /// empty (dense search still works) rather than failing every caller.
    inner: Option<EdgeBm25>,
}

impl std::fmt::Debug for Bm25 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bm25").field("ready", &self.inner.is_some()).finish()
    }
}

impl Default for Bm25 {
    fn default() -> Self {
        Self::new()
    }
}

impl Bm25 {
    /// An English BM25 embedder with Qdrant's defaults (k = 1.2, b = 0.75, average length 256).
    pub fn new() -> Self {
        let inner = EdgeBm25::new(EdgeBm25Config::default())
            .inspect_err(|error| tracing::error!(%error, "BM25 embedder unavailable; keyword search finds nothing"))
            .ok();
        Self { inner }
    }

    /// The sparse vector to store with a document.
    pub fn document(&self, text: &str) -> SparseVector {
        self.inner.as_ref().map_or_else(SparseVector::default, |bm25| {
            let vector = bm25.embed_document(text);
            SparseVector { indices: vector.indices, values: vector.values }
        })
    }

    /// The sparse vector to search with; empty when the text has only stopwords.
    pub fn query(&self, text: &str) -> SparseVector {
        self.inner.as_ref().map_or_else(SparseVector::default, |bm25| {
            let vector = bm25.embed_query(text);
            SparseVector { indices: vector.indices, values: vector.values }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bm25() -> Bm25 {
        let bm25 = Bm25::new();
        assert!(bm25.inner.is_some(), "the default BM25 config is valid");
        bm25
    }

    #[test]
    fn bm25_query_weights_each_distinct_term_once() {
        let query = bm25().query("rust rust compiler");
        assert_eq!(query.indices.len(), 2, "two distinct terms: {query:?}");
        assert!(query.values.iter().all(|&v| (v - 1.0).abs() < f32::EPSILON));
    }

    #[test]
    fn bm25_document_and_query_share_term_ids_after_stemming() {
        let bm25 = bm25();
        let document = bm25.document("The compilers were compiling quickly");
        let query = bm25.query("compiler");
        assert_eq!(query.indices.len(), 1);
        assert!(document.indices.contains(&query.indices[0]), "{document:?} lacks {query:?}");
    }

    #[test]
    fn bm25_document_weighs_repeated_terms_higher() {
        let bm25 = bm25();
        let document = bm25.document("kestrel kestrel falcon");
        let weight = |word: &str| {
            let id = bm25.query(word).indices[0];
            let position = document.indices.iter().position(|&i| i == id).expect("term is in the document");
            document.values[position]
        };
        assert!(weight("kestrel") > weight("falcon"));
    }

    #[test]
    fn bm25_query_of_only_stopwords_is_empty() {
        let query = bm25().query("the and of");
        assert!(query.indices.is_empty(), "{query:?}");
    }
}
