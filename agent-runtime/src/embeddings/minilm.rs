//! The built-in embedder: sentence-transformers' all-MiniLM-L6-v2 run in-process with candle
//! (BERT forward pass, mean pooling over real tokens, L2 normalisation), on the CPU, in
//! blocking tasks so the async runtime keeps serving.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use agent_crds::runtime_config::BUILTIN_EMBEDDING_MODEL;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config, DTYPE};
use futures::FutureExt;
use futures::future::BoxFuture;
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use super::{EmbedError, Embedder, l2_normalize};

/// Texts run through the model at once: bounds memory (activations grow with batch × length²).
pub const BATCH_SIZE: usize = 32;
/// Tokens kept per text, as sentence-transformers does for this model (`max_seq_length`); the
/// `tokenizer.json` shipped with it says 128, which would silently cut longer chunks short.
pub const MAX_TOKENS: usize = 256;

/// all-MiniLM-L6-v2, loaded from a folder holding `model.safetensors`, `tokenizer.json` and
/// `config.json`.
pub struct MiniLm {
    model: Arc<Model>,
    dimension: usize,
}

/// The parts inference needs, shared with the blocking tasks.
struct Model {
    bert: BertModel,
    tokenizer: Tokenizer,
    device: Device,
}

impl MiniLm {
    /// Loads the model from `dir`. This reads ~90 MB; call it once at startup.
    pub fn load(dir: &Path) -> Result<Self, EmbedError> {
        let device = Device::Cpu;
        let config_path = dir.join("config.json");
        let config_text = std::fs::read_to_string(&config_path).map_err(|e| file_error(&config_path, e))?;
        let config: Config = serde_json::from_str(&config_text).map_err(|e| file_error(&config_path, e))?;

        let tokenizer_path = dir.join("tokenizer.json");
        let mut tokenizer = Tokenizer::from_file(&tokenizer_path).map_err(|e| file_error(&tokenizer_path, e))?;
        // Pad each batch only to its longest text (the file pads everything to 128) and keep 256 tokens.
        let padding = match tokenizer.get_padding() {
            Some(file) => PaddingParams { strategy: PaddingStrategy::BatchLongest, ..file.clone() },
            None => PaddingParams::default(),
        };
        tokenizer.with_padding(Some(padding));
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: MAX_TOKENS, ..TruncationParams::default() }))
            .map_err(|e| file_error(&tokenizer_path, e))?;

        let weights_path = dir.join("model.safetensors");
        // Read rather than memory-mapped: mapping needs `unsafe`, and the file is small.
        let weights = std::fs::read(&weights_path).map_err(|e| file_error(&weights_path, e))?;
        let vb =
            VarBuilder::from_buffered_safetensors(weights, DTYPE, &device).map_err(|e| file_error(&weights_path, e))?;
        let bert = BertModel::load(vb, &config).map_err(|e| file_error(&weights_path, e))?;
        Ok(Self { model: Arc::new(Model { bert, tokenizer, device }), dimension: config.hidden_size })
    }

    /// Tokens the model reads of `texts` (each cut at [`MAX_TOKENS`]), special tokens included:
    /// the usage an embeddings API reports.
    pub fn count_tokens(&self, texts: &[String]) -> Result<usize, EmbedError> {
        texts.iter().try_fold(0, |total, text| {
            let encoding =
                self.model.tokenizer.encode(text.as_str(), true).map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
            Ok(total + encoding.get_ids().len())
        })
    }
}

impl Embedder for MiniLm {
    fn dimension(&self) -> usize {
        self.dimension
    }

    fn model(&self) -> &str {
        BUILTIN_EMBEDDING_MODEL
    }

    fn embed(&self, texts: Vec<String>) -> BoxFuture<'_, Result<Vec<Vec<f32>>, EmbedError>> {
        async move {
            let mut vectors = Vec::with_capacity(texts.len());
            let mut texts = texts.into_iter().peekable();
            // One blocking task per batch: if the caller gives up, the remaining batches never run.
            while texts.peek().is_some() {
                let batch: Vec<String> = texts.by_ref().take(BATCH_SIZE).collect();
                let model = self.model.clone();
                let batch_vectors = tokio::task::spawn_blocking(move || model.embed_batch(&batch))
                    .await
                    .map_err(|e| EmbedError::Task(e.to_string()))??;
                vectors.extend(batch_vectors);
            }
            Ok(vectors)
        }
        .boxed()
    }
}

impl Model {
    /// Embeds one batch: tokenise with padding to the longest text, run BERT, average the hidden
    /// states of real (unmasked) tokens, normalise.
    fn embed_batch(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let inputs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let encodings = self.tokenizer.encode_batch(inputs, true).map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        let Some(first) = encodings.first() else { return Ok(Vec::new()) };
        let shape = (encodings.len(), first.get_ids().len());
        let (mut ids, mut type_ids, mut mask) = (Vec::new(), Vec::new(), Vec::new());
        for encoding in &encodings {
            ids.extend_from_slice(encoding.get_ids());
            type_ids.extend_from_slice(encoding.get_type_ids());
            mask.extend_from_slice(encoding.get_attention_mask());
        }
        let mut vectors = self.forward(shape, ids, type_ids, mask).map_err(|e| EmbedError::Inference(e.to_string()))?;
        for vector in &mut vectors {
            l2_normalize(vector);
        }
        Ok(vectors)
    }

    /// Runs the model on padded token rows and mean-pools over the attention mask.
    fn forward(
        &self,
        shape: (usize, usize),
        ids: Vec<u32>,
        type_ids: Vec<u32>,
        mask: Vec<u32>,
    ) -> candle_core::Result<Vec<Vec<f32>>> {
        let ids = Tensor::from_vec(ids, shape, &self.device)?;
        let type_ids = Tensor::from_vec(type_ids, shape, &self.device)?;
        let mask = Tensor::from_vec(mask, shape, &self.device)?;
        let hidden = self.bert.forward(&ids, &type_ids, Some(&mask))?; // (batch, tokens, dimension)
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?; // (batch, tokens, 1)
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?; // (batch, dimension)
        let counts = mask.sum(1)?.clamp(1e-9f32, f32::MAX)?; // (batch, 1)
        summed.broadcast_div(&counts)?.to_vec2::<f32>()
    }
}

fn file_error(path: &Path, error: impl std::fmt::Display) -> EmbedError {
    EmbedError::ModelFile { path: PathBuf::from(path), reason: error.to_string() }
}

#[cfg(test)]
mod tests;
