//! Running the agent's RAG recipe: retrieval from its knowledge (dense or hybrid, fetch-k then
//! top-k, score threshold), reranking (MMR or a rerank API), and the recipe's prompt templates
//! rendered in strict mode. A turn's plan says what goes to the model, what is appended to the
//! answer, and which chunks the answer cites.

pub mod rerank;
pub mod summarize;
pub mod tool;

use std::sync::Arc;
use std::time::Duration;

use agent_crds::recipe::{PipelineMode, RerankStrategy};
use agent_crds::runtime_config::RecipeConfig;
use agent_crds::templates::{ChunkContext, TemplateError, TemplateField, render};
use serde_json::{Value, json};
use tracing::Instrument as _;

use self::rerank::{RerankEndpoint, RerankError, mmr};
use crate::knowledge::{Knowledge, KnowledgeError, Passage};
use crate::openai::Citation;
use crate::traces;

/// The prompt used when a recipe in `Answer` mode sets none.
pub const DEFAULT_ANSWER_PROMPT: &str = "Answer the question using only the context below. \
Cite the passages you use as [n].\n\nContext:\n{{#each chunks}}[{{index}}] ({{documentName}}) {{text}}\n{{/each}}\n\
Question: {{question}}";

/// Why a recipe step failed.
#[derive(Debug, thiserror::Error)]
pub enum RecipeError {
    /// Retrieval failed.
    #[error("retrieval failed: {0}")]
    Retrieve(#[from] KnowledgeError),
    /// Reranking failed.
    #[error("reranking failed: {0}")]
    Rerank(#[from] RerankError),
    /// A template failed to render.
    #[error("recipe template {0}")]
    Template(#[from] TemplateError),
    /// A model call of a multi-step recipe failed.
    #[error(transparent)]
    Model(#[from] crate::provider::ProviderError),
    /// The input does not fit the recipe.
    #[error("{0}")]
    Input(String),
    /// The recipe retrieves, but the agent's knowledge is off.
    #[error("this recipe retrieves from the agent's knowledge, which is off (no embedding model or vector store)")]
    NoKnowledge,
}

/// What a turn of an `Answer` or `Retrieve` recipe does.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Added to the system prompt (the rendered system template).
    pub system: Option<String>,
    /// Replaces the user's message sent to the model (for `Retrieve`: the whole answer).
    pub prompt: String,
    /// Appended to the answer (the rendered sources template).
    pub appendix: Option<String>,
    /// The chunks the prompt showed, numbered.
    pub citations: Vec<Citation>,
}

/// The agent's recipe, ready to run.
pub struct Pipeline {
    /// The resolved recipe.
    pub config: RecipeConfig,
    knowledge: Option<Arc<Knowledge>>,
    endpoint: Option<RerankEndpoint>,
    /// The system template rendered once: it sees only the parameters, which are fixed.
    system: Option<String>,
}

impl Pipeline {
    /// The recipe in `config` over `knowledge` (`None` when knowledge is off: only `Summarize`
    /// recipes work then); `timeout` bounds rerank API calls.
    pub fn new(
        config: RecipeConfig,
        knowledge: Option<Arc<Knowledge>>,
        timeout: Duration,
    ) -> Result<Self, RecipeError> {
        let rerank = &config.spec.rerank;
        let endpoint = match (rerank.strategy, &rerank.endpoint) {
            (RerankStrategy::Endpoint, Some(url)) => Some(RerankEndpoint::new(url, rerank.model.clone(), timeout)?),
            (RerankStrategy::Endpoint, None) => {
                return Err(RecipeError::Input("rerank strategy Endpoint needs rerank.endpoint".into()));
            }
            _ => None,
        };
        let system = match &config.spec.generate.system_template {
            Some(template) => {
                let text = render(TemplateField::System, template, &json!({ "params": config.parameters }))?;
                Some(text.trim().to_owned()).filter(|t| !t.is_empty())
            }
            None => None,
        };
        Ok(Self { config, knowledge, endpoint, system })
    }

    /// The recipe's mode.
    pub fn mode(&self) -> PipelineMode {
        self.config.spec.generate.mode
    }

    /// The recipe's parameters, as templates see them.
    pub fn params(&self) -> Value {
        json!(self.config.parameters)
    }

    /// The rendered system template, if the recipe has one.
    pub fn system(&self) -> Option<String> {
        self.system.clone()
    }

    /// Retrieves `fetchK` candidates above the threshold, reranks them and keeps `topK`.
    pub async fn retrieve(&self, question: &str) -> Result<Vec<Passage>, RecipeError> {
        let spec = &self.config.spec;
        let top_k = usize::try_from(spec.retrieve.top_k).unwrap_or(4).max(1);
        let fetch_k = usize::try_from(spec.retrieve.fetch_k).unwrap_or(top_k).max(top_k);
        let wide = spec.rerank.strategy != RerankStrategy::None;
        #[allow(clippy::cast_possible_truncation)]
        let threshold = spec.retrieve.score_threshold.map(|t| t as f32);
        let knowledge = self.knowledge.as_ref().ok_or(RecipeError::NoKnowledge)?;
        let fetched = if wide { fetch_k } else { top_k };
        let span = traces::retrieval(&self.config.name, fetched);
        traces::record_content(&span, "gen_ai.retrieval.query.text", || question.to_owned());
        let searched = knowledge
            .search_above(question, fetched, spec.retrieve.hybrid, Vec::new(), threshold)
            .instrument(span.clone())
            .await;
        let candidates = searched.inspect_err(|error| traces::record_error(&span, "knowledge", &error.to_string()))?;
        span.record("agent.retrieval.documents", traces::int(candidates.len()));
        let (span, reranked) = match (spec.rerank.strategy, &self.endpoint) {
            (RerankStrategy::Mmr, _) => {
                #[allow(clippy::cast_possible_truncation)]
                let lambda = spec.rerank.mmr_lambda as f32;
                let span = traces::rerank("mmr", candidates.len());
                let reranked = mmr(knowledge, question, candidates, top_k, lambda).instrument(span.clone()).await;
                (span, reranked.map_err(RecipeError::from))
            }
            (RerankStrategy::Endpoint, Some(endpoint)) => {
                let span = traces::rerank("endpoint", candidates.len());
                let reranked = endpoint.rerank(question, candidates, top_k).instrument(span.clone()).await;
                (span, reranked.map_err(RecipeError::from))
            }
            _ => return Ok(candidates.into_iter().take(top_k).collect()),
        };
        reranked.inspect_err(|error| traces::record_error(&span, "rerank", &error.to_string()))
    }

    /// The plan of an `Answer` or `Retrieve` turn for `question`.
    pub async fn plan(&self, question: &str) -> Result<Plan, RecipeError> {
        let passages = self.retrieve(question).await?;
        let chunks: Vec<ChunkContext> = passages
            .into_iter()
            .enumerate()
            .map(|(i, p)| ChunkContext {
                index: i + 1,
                text: p.text,
                document_id: p.document_id,
                document_name: p.document_name,
                chunk: p.chunk,
                score: p.score,
            })
            .collect();
        let generate = &self.config.spec.generate;
        let context = json!({ "params": self.params(), "question": question, "chunks": chunks, "text": question });
        let template = generate.prompt_template.as_deref().unwrap_or(DEFAULT_ANSWER_PROMPT);
        let prompt = render(TemplateField::Prompt, template, &context)?;
        // Set apart from the answer by a blank line, whatever whitespace the template has.
        let appendix = match &generate.sources_template {
            Some(template) => {
                let text =
                    render(TemplateField::Sources, template, &json!({ "params": self.params(), "chunks": chunks }))?;
                Some(format!("\n\n{}", text.trim())).filter(|_| !text.trim().is_empty())
            }
            None => None,
        };
        let citations = chunks
            .into_iter()
            .map(|c| Citation {
                index: c.index,
                document_id: c.document_id,
                document_name: c.document_name,
                chunk: c.chunk,
                score: c.score,
                text: c.text,
            })
            .collect();
        Ok(Plan { system: self.system(), prompt, appendix, citations })
    }
}
