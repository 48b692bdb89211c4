//! Opening the agent's knowledge and long-term memory from the config's `memory` slice: the
//! embedder and the vector store. A part that is configured but cannot start is an error that
//! names it; only a built-in embedding model without a model folder (a runtime started without
//! one, as tests do) leaves knowledge off, and says so.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use agent_crds::runtime_config::{MemoryConfig, VectorStoreConfig};

use super::Knowledge;
use super::chunk::{ChunkSize, EstimatedTokens};
use crate::embeddings::{self, EmbedError, Embedder};
use crate::measured::{MeasuredEmbedder, MeasuredStore};
use crate::memory::Memory;
use crate::secret_file::SecretFiles;
use crate::usage::Ledger;
use crate::vector::edge::EdgeStore;
use crate::vector::{QdrantSettings, QdrantStore, VectorError, VectorStore};

/// The embedded store builds its HNSW index once writes have been quiet this long, so a bulk
/// ingest is indexed once, after it ends.
const OPTIMIZE_AFTER_QUIET: Duration = Duration::from_secs(30);

/// What knowledge needs besides its config slice.
pub struct KnowledgeSetup<'a> {
    /// Folder of the built-in embedding model's files.
    pub embedding_model_dir: Option<&'a Path>,
    /// API key for an embeddings endpoint whose config names no key file.
    pub api_key: Option<&'a str>,
    /// How documents are chunked (the recipe's ingest settings).
    pub chunking: ChunkSize,
    /// Opens Secret files (an embeddings endpoint's or Qdrant's key); its metrics are where
    /// store and embedding calls are timed.
    pub secrets: &'a SecretFiles,
    /// Where an embeddings endpoint's calls are counted (tokens and cost).
    pub usage: Option<Arc<Ledger>>,
}

/// Knowledge and memory, opened.
pub struct Opened {
    /// The agent's documents.
    pub knowledge: Arc<Knowledge>,
    /// Its long-term memory (same store).
    pub memory: Arc<Memory>,
    /// The store under both, for readiness checks.
    pub store: Arc<dyn VectorStore>,
    /// Whether the store is a server that may be down (checked until it answers).
    pub remote: bool,
}

/// Why knowledge could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum KnowledgeSetupError {
    /// The embedding model cannot be loaded or set up.
    #[error("knowledge: embedding model: {0}")]
    Embedding(EmbedError),
    /// The vector store cannot be opened.
    #[error("knowledge: vector store: {0}")]
    Store(VectorError),
}

/// Knowledge, or why it is off (a runtime without an embedding model folder).
pub enum Knowledgeable {
    /// Open.
    On(Opened),
    /// Off, with the reason shown on `/readyz` and in errors.
    Off(String),
}

/// Opens the embedder and the vector store `config` names.
pub fn open(config: &MemoryConfig, setup: &KnowledgeSetup<'_>) -> Result<Knowledgeable, KnowledgeSetupError> {
    let embedder = match embeddings::from_config_with_secrets(
        &config.embedding,
        config.vector_dimension,
        setup.embedding_model_dir,
        setup.api_key,
        setup.secrets,
        setup.usage.clone(),
    ) {
        Ok(embedder) => embedder,
        Err(EmbedError::NoModelDir) => return Ok(Knowledgeable::Off(EmbedError::NoModelDir.to_string())),
        Err(error) => return Err(KnowledgeSetupError::Embedding(error)),
    };
    let embedder: Arc<dyn Embedder> = Arc::new(MeasuredEmbedder::new(embedder, setup.secrets.metrics().clone()));
    let dimension = config.vector_dimension as usize;
    let (store, remote): (Arc<dyn VectorStore>, bool) = match &config.store {
        VectorStoreConfig::Embedded { path } => {
            let store =
                EdgeStore::open(Path::new(path), dimension, config.distance).map_err(KnowledgeSetupError::Store)?;
            let store = Arc::new(store);
            if tokio::runtime::Handle::try_current().is_ok() {
                store.spawn_optimizer(OPTIMIZE_AFTER_QUIET);
            }
            (store, false)
        }
        VectorStoreConfig::Qdrant { url, api_key_file } => {
            let key_file = api_key_file.as_deref().map(Path::new);
            let settings = QdrantSettings::from_config(url, key_file, config, setup.secrets)
                .map_err(KnowledgeSetupError::Store)?;
            (Arc::new(QdrantStore::connect(settings).map_err(KnowledgeSetupError::Store)?), true)
        }
    };
    let store: Arc<dyn VectorStore> = Arc::new(MeasuredStore::new(store, setup.secrets.metrics().clone()));
    let knowledge = Knowledge::new(store.clone(), embedder.clone(), Arc::new(EstimatedTokens), setup.chunking);
    let retention = config.retention_seconds.map(Duration::from_secs);
    let memory = Memory::new(store.clone(), embedder, retention);
    Ok(Knowledgeable::On(Opened { knowledge: Arc::new(knowledge), memory: Arc::new(memory), store, remote }))
}
