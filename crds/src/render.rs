//! The one pure function that turns an Agent and the objects it references into the
//! [`RuntimeConfig`] of its pod. The operator and the runtime's local mode both call it.

use std::collections::BTreeMap;

use crate::agent::{Agent, Knowledge, MemoryBackend, Tool};
use crate::model::Model;
use crate::recipe::Recipe;
use crate::recipe_params::ParameterError;
use crate::references::{SecretKeyReference, ValueFrom};
use crate::runtime_config::{
    AgentIdentity, ApprovalConfig, BUILTIN_EMBEDDING_DIMENSION, BUILTIN_EMBEDDING_MODEL,
    DEFAULT_APPROVAL_TIMEOUT_SECONDS, DEFAULT_FAILED_RUNS, DEFAULT_MAX_CHILDREN, DEFAULT_MAX_DEPTH,
    DEFAULT_SUCCESSFUL_RUNS, DelegationConfig, Distance, EmbeddingConfig, MemoryConfig, ModelConfig, PersonaConfig,
    PodPaths, RUNTIME_CONFIG_VERSION, RUNTIME_PORT, RecipeConfig, RuntimeConfig, ServerConfig, TaskConfig, TextSource,
    ToolConfig, ToolKind, VectorStoreConfig, WakeConfig,
};
use crate::schedule::{InvalidSchedule, Precision, parse_schedule, task_generation};
use kube::ResourceExt;

/// The objects an Agent references, already read from the cluster (or from local files).
#[derive(Clone, Debug, Default)]
pub struct ResolvedReferences {
    /// The Model the agent is bound to.
    pub model: Option<Model>,
    /// The embeddings Model named by `memory.embeddingModelRef`.
    pub embedding_model: Option<Model>,
    /// The Recipe named by `knowledge.recipe`.
    pub recipe: Option<Recipe>,
    /// Values of the ConfigMap keys the agent references, by `(configMap, key)`.
    pub config_map_values: BTreeMap<(String, String), String>,
    /// PEM CA bundle of the model endpoint, read from its ConfigMap.
    pub model_ca_pem: Option<String>,
    /// API keys of the Agents in the same namespace the agent calls as tools, by Agent name.
    pub callee_keys: BTreeMap<String, SecretKeyReference>,
}

/// Why a RuntimeConfig cannot be rendered; each is a problem with the spec or its references.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RenderError {
    /// The agent has no namespace.
    #[error("the Agent has no namespace")]
    MissingNamespace,
    /// The model was not resolved.
    #[error("model {0} is not available")]
    ModelMissing(String),
    /// The model cannot chat.
    #[error("model {0} does not have the chat capability")]
    ModelCannotChat(String),
    /// The embeddings model was not resolved.
    #[error("embedding model {0} is not available")]
    EmbeddingModelMissing(String),
    /// The embeddings model cannot embed or has no dimension.
    #[error("embedding model {0} must declare capabilities.embeddings=true and capabilities.embeddingDimension")]
    EmbeddingModelUnusable(String),
    /// A served model is referenced for embeddings or chat but has no endpoint yet.
    #[error("model {0} has no endpoint")]
    ModelWithoutEndpoint(String),
    /// A referenced ConfigMap key was not resolved.
    #[error("ConfigMap {0} has no key {1}")]
    ConfigMapKeyMissing(String, String),
    /// The recipe was not resolved: no Recipe object of that name, and no built-in one.
    #[error(
        "recipe {0} is neither a Recipe in the agent's namespace nor built in (built in: {builtin})",
        builtin = crate::catalogue::names().join(", ")
    )]
    RecipeMissing(String),
    /// The agent's recipe parameters do not suit the recipe, or make its pipeline or templates invalid.
    #[error(transparent)]
    Recipe(#[from] ParameterError),
    /// The task's schedule does not parse.
    #[error("task.{0}")]
    BadSchedule(#[from] InvalidSchedule),
    /// The retention duration does not parse.
    #[error("memory.retention {0:?} is not a duration like 720h or 30m")]
    BadRetention(String),
    /// A cost budget is set but the chat model has no price to count cost with.
    #[error("limits.costPerDay/costPerMonth need a priced chat model: Model {0} has no spec.pricing")]
    CostLimitWithoutPricing(String),
}

/// Renders the RuntimeConfig of `agent` from its resolved references.
pub fn render_runtime_config(
    agent: &Agent,
    refs: &ResolvedReferences,
    paths: &PodPaths,
) -> Result<RuntimeConfig, RenderError> {
    if let Some(schedule) = &agent.spec.task.schedule {
        parse_schedule(schedule, Precision::Minutes)?;
    }
    let name = agent.name_any();
    let namespace = agent.namespace().ok_or(RenderError::MissingNamespace)?;
    let spec = &agent.spec;
    let embedding = render_embedding(agent, refs, paths)?;
    Ok(RuntimeConfig {
        version: RUNTIME_CONFIG_VERSION,
        agent: AgentIdentity {
            name: name.clone(),
            namespace: namespace.clone(),
            uid: agent.metadata.uid.clone(),
            depth: delegation_depth(agent),
        },
        persona: PersonaConfig {
            name: spec.persona.name.clone().unwrap_or_else(|| name.clone()),
            description: spec.persona.description.clone(),
            system_prompt: render_system_prompt(agent, refs, paths)?,
        },
        task: TaskConfig {
            mode: spec.task.mode,
            instructions: spec.task.instructions.clone(),
            schedule: spec.task.schedule.clone(),
            input: spec.task.input.clone(),
            generation: task_generation(&spec.task),
            concurrency_policy: spec.task.concurrency_policy.unwrap_or_default(),
            starting_deadline_seconds: spec.task.starting_deadline_seconds,
            successful_runs_history_limit: spec.task.successful_runs_history_limit.unwrap_or(DEFAULT_SUCCESSFUL_RUNS),
            failed_runs_history_limit: spec.task.failed_runs_history_limit.unwrap_or(DEFAULT_FAILED_RUNS),
        },
        model: render_model(agent, refs, paths)?,
        memory: MemoryConfig {
            store: match (&spec.memory.backend, &spec.memory.qdrant) {
                (MemoryBackend::Qdrant, Some(qdrant)) => VectorStoreConfig::Qdrant {
                    url: qdrant.url.clone(),
                    api_key_file: qdrant.api_key_secret_ref.as_ref().map(|s| paths.secret_file(s)),
                },
                _ => VectorStoreConfig::Embedded { path: format!("{}/vectors", paths.data_dir) },
            },
            collection: spec
                .memory
                .qdrant
                .as_ref()
                .and_then(|q| q.collection.clone())
                .unwrap_or_else(|| format!("{namespace}-{name}")),
            vector_dimension: embedding.1,
            distance: Distance::Cosine,
            embedding: embedding.0,
            retention_seconds: spec.memory.retention.as_deref().map(parse_duration_seconds).transpose()?,
        },
        tools: spec.tools.iter().map(|tool| render_tool(tool, &namespace, paths, refs)).collect(),
        approval: ApprovalConfig {
            tools: spec.approval.as_ref().map(|a| a.tools.clone()).unwrap_or_default(),
            timeout_seconds: spec
                .approval
                .as_ref()
                .and_then(|a| a.timeout_seconds)
                .unwrap_or(DEFAULT_APPROVAL_TIMEOUT_SECONDS),
        },
        recipe: render_recipe(agent, refs)?,
        server: ServerConfig {
            port: RUNTIME_PORT,
            api_key_file: spec.api.auth_secret_ref.as_ref().map(|s| paths.secret_file(s)),
            data_dir: paths.data_dir.clone(),
            fetch_allowed_urls: spec.api.fetch_allowed_urls.clone(),
        },
        delegation: render_delegation(agent, refs),
        limits: render_limits(agent, refs)?,
        cluster: None,
        traces: None,
    })
}

/// The Agent's budgets; cost budgets need a chat model with a price.
fn render_limits(agent: &Agent, refs: &ResolvedReferences) -> Result<Option<crate::agent::Limits>, RenderError> {
    let Some(limits) = &agent.spec.limits else { return Ok(None) };
    let priced = refs.model.as_ref().is_some_and(|m| m.spec.pricing.is_some());
    if (limits.cost_per_day.is_some() || limits.cost_per_month.is_some()) && !priced {
        let model = refs.model.as_ref().and_then(|m| m.metadata.name.clone()).unwrap_or_default();
        return Err(RenderError::CostLimitWithoutPricing(model));
    }
    Ok(Some(limits.clone()))
}

/// Label naming the parent of an Agent created by delegation.
pub const PARENT_LABEL: &str = "agent-operator.dev/parent";
/// Label holding how many parents an Agent created by delegation has (`1` for a child).
pub const DEPTH_LABEL: &str = "agent-operator.dev/delegation-depth";

/// How many parents `agent` has, from its depth label (0 when it has none or it does not parse).
pub fn delegation_depth(agent: &Agent) -> u32 {
    agent.labels().get(DEPTH_LABEL).and_then(|depth| depth.parse().ok()).unwrap_or(0)
}

fn render_delegation(agent: &Agent, refs: &ResolvedReferences) -> Option<DelegationConfig> {
    let delegation = agent.spec.delegation.as_ref().filter(|d| d.enabled)?;
    let own_model = refs.model.as_ref().map(ResourceExt::name_any);
    let mut models: Vec<String> = own_model.into_iter().collect();
    for model in &delegation.models {
        if !models.contains(model) {
            models.push(model.clone());
        }
    }
    Some(DelegationConfig {
        max_children: delegation.max_children.unwrap_or(DEFAULT_MAX_CHILDREN),
        max_depth: delegation.max_depth.unwrap_or(DEFAULT_MAX_DEPTH),
        models,
        tools: agent.spec.tools.iter().filter(|tool| delegation.tools.contains(&tool.name)).cloned().collect(),
        ttl_seconds_after_finished: delegation.ttl_seconds_after_finished,
    })
}

/// The name of the Model the agent asks for, when it names one directly.
pub fn model_ref_name(agent: &Agent) -> Option<&str> {
    agent.spec.model.model_ref.as_ref().map(|r| r.name.as_str())
}

fn render_system_prompt(
    agent: &Agent,
    refs: &ResolvedReferences,
    paths: &PodPaths,
) -> Result<Option<TextSource>, RenderError> {
    let persona = &agent.spec.persona;
    if let Some(text) = &persona.system_prompt {
        return Ok(Some(TextSource::Inline(text.clone())));
    }
    match &persona.system_prompt_from {
        Some(ValueFrom { secret_key_ref: Some(secret), .. }) => Ok(Some(TextSource::File(paths.secret_file(secret)))),
        Some(ValueFrom { config_map_key_ref: Some(cm), .. }) => refs
            .config_map_values
            .get(&(cm.name.clone(), cm.key.clone()))
            .map(|text| Some(TextSource::Inline(text.clone())))
            .ok_or_else(|| RenderError::ConfigMapKeyMissing(cm.name.clone(), cm.key.clone())),
        _ => Ok(None),
    }
}

fn render_model(agent: &Agent, refs: &ResolvedReferences, paths: &PodPaths) -> Result<ModelConfig, RenderError> {
    let wanted = model_ref_name(agent).unwrap_or("(selected)").to_owned();
    let model = refs.model.as_ref().ok_or(RenderError::ModelMissing(wanted))?;
    let model_name = model.name_any();
    if !model.spec.capabilities.chat {
        return Err(RenderError::ModelCannotChat(model_name));
    }
    let endpoint = model.openai_endpoint().ok_or_else(|| RenderError::ModelWithoutEndpoint(model_name.clone()))?;
    Ok(ModelConfig {
        model_object: model_name,
        base_url: endpoint.base_url,
        model: endpoint.model,
        api_key_file: endpoint.api_key.as_ref().map(|s| paths.secret_file(s)),
        headers: endpoint.headers,
        ca_pem: refs.model_ca_pem.clone(),
        prompt_format: model.spec.prompt_format,
        context_length: model.spec.capabilities.context_length,
        supports_tools: model.spec.capabilities.tools,
        parameters: agent.spec.model.parameters.clone(),
        pricing: model.spec.pricing.clone(),
        wake: model
            .spec
            .serve
            .as_ref()
            .and_then(|s| s.autoscaling.as_ref()?.wake_timeout_seconds())
            .map(|timeout_seconds| WakeConfig { timeout_seconds }),
    })
}

fn render_embedding(
    agent: &Agent,
    refs: &ResolvedReferences,
    paths: &PodPaths,
) -> Result<(EmbeddingConfig, u32), RenderError> {
    let Some(wanted) = &agent.spec.memory.embedding_model_ref else {
        return Ok((
            EmbeddingConfig::Builtin { model: BUILTIN_EMBEDDING_MODEL.to_owned() },
            BUILTIN_EMBEDDING_DIMENSION,
        ));
    };
    let model = refs.embedding_model.as_ref().ok_or_else(|| RenderError::EmbeddingModelMissing(wanted.name.clone()))?;
    let capabilities = &model.spec.capabilities;
    let dimension = capabilities
        .embedding_dimension
        .filter(|_| capabilities.embeddings)
        .and_then(|d| u32::try_from(d).ok())
        .ok_or_else(|| RenderError::EmbeddingModelUnusable(wanted.name.clone()))?;
    let endpoint = model.openai_endpoint().ok_or_else(|| RenderError::ModelWithoutEndpoint(wanted.name.clone()))?;
    Ok((
        EmbeddingConfig::Endpoint {
            base_url: endpoint.base_url,
            model: endpoint.model,
            api_key_file: endpoint.api_key.as_ref().map(|s| paths.secret_file(s)),
            pricing: model.spec.pricing.clone(),
        },
        dimension,
    ))
}

fn render_tool(tool: &Tool, namespace: &str, paths: &PodPaths, refs: &ResolvedReferences) -> ToolConfig {
    let kind = if let Some(builtin) = &tool.builtin {
        ToolKind::Builtin { tool: builtin.kind, allowed_urls: builtin.allowed_urls.clone() }
    } else if let Some(mcp) = &tool.mcp {
        ToolKind::Mcp {
            url: mcp.url.clone(),
            transport: mcp.transport,
            allow: mcp.allow.clone(),
            require_approval: mcp.require_approval.clone(),
            token_file: mcp.auth_secret_ref.as_ref().map(|s| paths.secret_file(s)),
            header_files: mcp
                .headers_from
                .iter()
                .map(|h| (h.name.clone(), paths.secret_file(&h.secret_key_ref)))
                .collect(),
            ca_pem: mcp
                .ca_config_map_ref
                .as_ref()
                .and_then(|ca| refs.config_map_values.get(&(ca.name.clone(), ca.key.clone())).cloned()),
            timeout_seconds: mcp.timeout_seconds,
        }
    } else if let Some(other) = &tool.agent {
        let token = other.token_secret_ref.as_ref().or_else(|| {
            let same_namespace = other.namespace.as_deref().is_none_or(|n| n == namespace);
            other.name.as_ref().filter(|_| same_namespace).and_then(|name| refs.callee_keys.get(name))
        });
        let token_file = token.map(|secret| paths.secret_file(secret));
        match (&other.name, &other.url) {
            (Some(name), _) => ToolKind::Agent {
                url: agent_service_url(name, other.namespace.as_deref().unwrap_or(namespace)),
                remote: false,
                token_file,
            },
            (None, url) => ToolKind::Agent { url: url.clone().unwrap_or_default(), remote: true, token_file },
        }
    } else if let Some(http) = &tool.http {
        ToolKind::Http {
            url: http.url.clone(),
            description: http.description.clone(),
            parameters: http.parameters.clone(),
        }
    } else {
        // The CRD's CEL rule requires exactly one kind; an object that bypassed it gets the
        // harmless clock tool rather than a panic.
        ToolKind::Builtin { tool: crate::agent::BuiltinToolKind::CurrentTime, allowed_urls: Vec::new() }
    };
    ToolConfig { name: tool.name.clone(), kind }
}

/// In-cluster base URL of an agent's API.
pub fn agent_service_url(name: &str, namespace: &str) -> String {
    format!("http://{name}.{namespace}.svc:{RUNTIME_PORT}")
}

fn render_recipe(agent: &Agent, refs: &ResolvedReferences) -> Result<Option<RecipeConfig>, RenderError> {
    let Some(knowledge) = &agent.spec.knowledge else { return Ok(None) };
    let recipe = refs.recipe.as_ref().ok_or_else(|| RenderError::RecipeMissing(knowledge.recipe.clone()))?;
    render_recipe_config(knowledge, recipe).map(Some)
}

/// The recipe part of the RuntimeConfig: `recipe` with the agent's parameter values (each checked
/// against its declared type and allowed values, defaults filled in), the pipeline settings that
/// parameters of the same name override, and every template checked against the context the
/// runtime gives it. See [`crate::recipe_params`].
pub fn render_recipe_config(knowledge: &Knowledge, recipe: &Recipe) -> Result<RecipeConfig, RenderError> {
    let (parameters, spec) = crate::recipe_params::resolve(&knowledge.recipe, &knowledge.parameters, &recipe.spec)?;
    Ok(RecipeConfig { name: knowledge.recipe.clone(), parameters, spec, sources: knowledge.sources.clone() })
}

/// Parses a Go-style duration made of `h`, `m` and `s` parts (`720h`, `1h30m`) into seconds.
pub fn parse_duration_seconds(text: &str) -> Result<u64, RenderError> {
    let bad = || RenderError::BadRetention(text.to_owned());
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return Err(bad()),
        };
        let amount: u64 = digits.parse().map_err(|_| bad())?;
        total = amount.checked_mul(unit).and_then(|s| total.checked_add(s)).ok_or_else(bad)?;
        digits.clear();
    }
    if !digits.is_empty() || total == 0 {
        return Err(bad());
    }
    Ok(total)
}
