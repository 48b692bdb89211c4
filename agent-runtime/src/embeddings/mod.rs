//! Text embeddings for memory and RAG: the [`Embedder`] trait, its two implementations (the
//! built-in all-MiniLM-L6-v2 run in-process, and any OpenAI-compatible `/v1/embeddings`
//! endpoint), and [`from_config`], which picks the one the RuntimeConfig names.

pub mod endpoint;
pub mod minilm;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use agent_crds::runtime_config::{BUILTIN_EMBEDDING_MODEL, EmbeddingConfig};
use futures::future::BoxFuture;

use crate::secret_file::{SecretFiles, SecretValue};
use crate::usage::Ledger;

pub use endpoint::EndpointEmbedder;
pub use minilm::MiniLm;

/// Turns text into dense vectors.
pub trait Embedder: Send + Sync {
    /// Dimension of the vectors.
    fn dimension(&self) -> usize;
    /// Model name.
    fn model(&self) -> &str;
    /// Embeds `texts` (any number; implementations batch internally). Vectors are L2-normalised.
    fn embed(&self, texts: Vec<String>) -> BoxFuture<'_, Result<Vec<Vec<f32>>, EmbedError>>;
}

/// Why text could not be embedded, or an embedder could not be built.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// The config names a built-in model this runtime does not have.
    #[error("unknown built-in embedding model {0:?}; the built-in model is {BUILTIN_EMBEDDING_MODEL:?}")]
    UnknownBuiltinModel(String),
    /// The built-in model was asked for, but no folder holding its files was given.
    #[error(
        "the built-in embedding model {BUILTIN_EMBEDDING_MODEL} needs the folder holding its files \
         (model.safetensors, tokenizer.json, config.json); none was given"
    )]
    NoModelDir,
    /// A model file is missing or cannot be used.
    #[error("embedding model file {} is missing or invalid: {reason}", path.display())]
    ModelFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The tokenizer failed on the input.
    #[error("cannot tokenize the text to embed: {0}")]
    Tokenizer(String),
    /// The model failed while computing the vectors.
    #[error("embedding inference failed: {0}")]
    Inference(String),
    /// The API key file of the endpoint could not be read.
    #[error("cannot read the embedding API key from {path}: {source}")]
    ApiKey {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The HTTP client could not be built.
    #[error("cannot build the embedding HTTP client: {0}")]
    Client(reqwest::Error),
    /// The endpoint answered with an error status.
    #[error("embedding endpoint {url} answered HTTP {status}: {message}")]
    Status {
        /// The URL called.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The error message of the endpoint, or the start of its body.
        message: String,
    },
    /// The endpoint could not be reached, or did not answer in time.
    #[error("embedding endpoint {url} is unreachable: {reason}")]
    Unreachable {
        /// The URL called.
        url: String,
        /// The connection or timeout error.
        reason: String,
    },
    /// The endpoint answered 2xx with a body that is not a valid embeddings response.
    #[error("embedding endpoint {url} sent an invalid response: {reason}")]
    InvalidResponse {
        /// The URL called.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The vectors do not have the configured dimension.
    #[error("embedding model {model} returns {got}-dimensional vectors, but the memory is configured for {expected}")]
    Dimension {
        /// The model.
        model: String,
        /// The configured dimension.
        expected: usize,
        /// The dimension the model returns.
        got: usize,
    },
    /// The blocking inference task was cancelled or panicked.
    #[error("the embedding task did not finish: {0}")]
    Task(String),
}

/// Builds the embedder the RuntimeConfig names. `builtin_dir` is the folder holding the built-in
/// model's files; `api_key_fallback` is the endpoint key used when the config names no key file.
/// A key file is checked for changes every [`crate::secret_file::DEFAULT_CHECK_EVERY`].
pub fn from_config(
    config: &EmbeddingConfig,
    dimension: u32,
    builtin_dir: Option<&Path>,
    api_key_fallback: Option<&str>,
) -> Result<Arc<dyn Embedder>, EmbedError> {
    from_config_with_secrets(config, dimension, builtin_dir, api_key_fallback, &SecretFiles::default(), None)
}

/// [`from_config`], with the endpoint's key file opened by `secrets` (the runtime's check
/// interval and reload metrics) and an endpoint's calls counted in `usage`.
pub fn from_config_with_secrets(
    config: &EmbeddingConfig,
    dimension: u32,
    builtin_dir: Option<&Path>,
    api_key_fallback: Option<&str>,
    secrets: &SecretFiles,
    usage: Option<Arc<Ledger>>,
) -> Result<Arc<dyn Embedder>, EmbedError> {
    // A u32 always fits in usize on the 32- and 64-bit targets the runtime is built for.
    let dimension = usize::try_from(dimension).unwrap_or(usize::MAX);
    match config {
        EmbeddingConfig::Builtin { model } => {
            if model != BUILTIN_EMBEDDING_MODEL {
                return Err(EmbedError::UnknownBuiltinModel(model.clone()));
            }
            let embedder = MiniLm::load(builtin_dir.ok_or(EmbedError::NoModelDir)?)?;
            if embedder.dimension() != dimension {
                return Err(EmbedError::Dimension {
                    model: model.clone(),
                    expected: dimension,
                    got: embedder.dimension(),
                });
            }
            Ok(Arc::new(embedder))
        }
        EmbeddingConfig::Endpoint { base_url, model, api_key_file, .. } => {
            let key = match api_key_file {
                Some(path) => Some(SecretValue::File(
                    secrets
                        .open("memory.embedding.apiKeyFile", path)
                        .map_err(|source| EmbedError::ApiKey { path: path.clone(), source })?,
                )),
                None => api_key_fallback.map(SecretValue::from),
            };
            Ok(Arc::new(EndpointEmbedder::new(base_url, model, dimension, key)?.counted_in(usage)))
        }
    }
}

/// Scales `vector` to unit length; a zero vector is left as it is.
pub(crate) fn l2_normalize(vector: &mut [f32]) {
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > f32::EPSILON {
        for x in vector.iter_mut() {
            *x /= norm;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalising_gives_unit_length_and_keeps_direction() {
        let mut vector = vec![3.0, 4.0];
        l2_normalize(&mut vector);
        assert_eq!(vector, vec![0.6, 0.8]);
    }

    #[test]
    fn normalising_leaves_a_zero_vector_alone() {
        let mut vector = vec![0.0; 3];
        l2_normalize(&mut vector);
        assert_eq!(vector, vec![0.0; 3]);
    }

    #[test]
    fn an_unknown_builtin_model_is_refused_with_its_name() {
        let config = EmbeddingConfig::Builtin { model: "bge-small".into() };
        let error = from_config(&config, 384, None, None).err().map(|e| e.to_string());
        assert!(error.as_deref().is_some_and(|e| e.contains("bge-small") && e.contains(BUILTIN_EMBEDDING_MODEL)));
    }

    #[test]
    fn the_builtin_model_without_a_folder_is_refused() {
        let config = EmbeddingConfig::Builtin { model: BUILTIN_EMBEDDING_MODEL.into() };
        assert!(matches!(from_config(&config, 384, None, None), Err(EmbedError::NoModelDir)));
    }

    #[test]
    fn a_missing_model_folder_names_the_missing_file() {
        let config = EmbeddingConfig::Builtin { model: BUILTIN_EMBEDDING_MODEL.into() };
        let dir = Path::new("/nonexistent/minilm");
        match from_config(&config, 384, Some(dir), None) {
            Err(EmbedError::ModelFile { path, .. }) => assert!(path.starts_with(dir)),
            other => panic!("expected a model file error, got {:?}", other.err()),
        }
    }

    #[test]
    fn an_unreadable_api_key_file_is_reported_with_its_path() {
        let config = EmbeddingConfig::Endpoint {
            base_url: "http://127.0.0.1:1/v1".into(),
            model: "m".into(),
            api_key_file: Some("/nonexistent/key".into()),
            pricing: None,
        };
        match from_config(&config, 8, None, None) {
            Err(error @ EmbedError::ApiKey { .. }) => assert!(error.to_string().contains("/nonexistent/key")),
            other => panic!("expected an API key error, got {:?}", other.err()),
        }
    }
}
