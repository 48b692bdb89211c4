//! Rendering the RuntimeConfig from an Agent and its references: the contract between the
//! operator and the runtime.

mod common;

use agent_crds::recipe_params::ParameterError;
use agent_crds::render::{RenderError, ResolvedReferences, parse_duration_seconds, render_runtime_config};
use agent_crds::runtime_config::{EmbeddingConfig, PodPaths, TextSource, VectorStoreConfig};
use agent_crds::{Agent, Model, Recipe};
use serde_json::json;

fn agent(file: &str, name: &str) -> Agent {
    serde_json::from_value(common::example(file, "Agent", name)).unwrap()
}

fn model(file: &str, name: &str) -> Model {
    serde_json::from_value(common::example(file, "Model", name)).unwrap()
}

fn researcher_refs() -> ResolvedReferences {
    let mut refs = ResolvedReferences {
        model: Some(model("examples/rag-agent.yaml", "llama-8b")),
        recipe: Some(
            serde_json::from_value::<Recipe>(common::example("examples/rag-agent.yaml", "Recipe", "docs-qna")).unwrap(),
        ),
        ..ResolvedReferences::default()
    };
    refs.config_map_values.insert(("researcher-prompt".into(), "system".into()), "Cite sources.".into());
    refs
}

#[test]
fn a_chat_agent_renders_model_memory_tools_and_secret_files() {
    let refs = ResolvedReferences { model: Some(model("examples/chat-agent.yaml", "gpt-small")), ..Default::default() };
    let config =
        render_runtime_config(&agent("examples/chat-agent.yaml", "helpdesk"), &refs, &PodPaths::default()).unwrap();
    assert_eq!(config.model.base_url, "https://api.openai.com/v1");
    assert_eq!(config.model.api_key_file.as_deref(), Some("/var/run/agent-operator/secrets/openai/api-key"));
    assert_eq!(
        config.persona.system_prompt,
        Some(TextSource::Inline("You are a concise, friendly IT helpdesk assistant.".into()))
    );
    assert_eq!(config.memory.store, VectorStoreConfig::Embedded { path: "/var/lib/agent/vectors".into() });
    assert_eq!(config.memory.collection, "demo-helpdesk");
    assert_eq!(config.memory.vector_dimension, 384, "the built-in embedding model's dimension");
    assert_eq!(config.memory.retention_seconds, Some(720 * 3600));
    assert_eq!(config.tools.len(), 2);
}

#[test]
fn a_rag_agent_renders_its_recipe_with_defaults_and_overrides() {
    let config = render_runtime_config(
        &agent("examples/rag-agent.yaml", "researcher"),
        &researcher_refs(),
        &PodPaths::default(),
    )
    .unwrap();
    let recipe = config.recipe.unwrap();
    assert_eq!(recipe.parameters["topK"], json!(6), "the agent's value wins");
    assert_eq!(recipe.parameters["answerStyle"], json!("concise"), "the recipe's default fills in");
    assert_eq!(
        config.model.base_url, "http://llama-8b-model.research.svc:8000/v1",
        "a served model is reached through its Service"
    );
    assert_eq!(config.model.model, "llama-3.1-8b");
    assert_eq!(config.persona.system_prompt, Some(TextSource::Inline("Cite sources.".into())));
}

#[test]
fn recipe_parameter_errors_name_the_parameter() {
    let mut researcher = agent("examples/rag-agent.yaml", "researcher");
    let knowledge = researcher.spec.knowledge.as_mut().unwrap();
    knowledge.parameters.insert("topk".into(), json!(3));
    let error = render_runtime_config(&researcher, &researcher_refs(), &PodPaths::default()).unwrap_err();
    assert_eq!(error.to_string(), "recipe docs-qna has no parameter topk; it declares: topK, answerStyle");

    let knowledge = researcher.spec.knowledge.as_mut().unwrap();
    knowledge.parameters.clear();
    knowledge.parameters.insert("topK".into(), json!("six"));
    let error = render_runtime_config(&researcher, &researcher_refs(), &PodPaths::default()).unwrap_err();
    assert_eq!(error.to_string(), r#"parameter topK of recipe docs-qna must be an integer, got "six""#);
}

#[test]
fn an_embedding_model_sets_the_vector_dimension_or_is_rejected() {
    let mut helpdesk = agent("examples/chat-agent.yaml", "helpdesk");
    helpdesk.spec.memory.embedding_model_ref =
        Some(agent_crds::references::LocalObjectReference { name: "embedder".into() });
    let mut embedder = model("examples/chat-agent.yaml", "gpt-small");
    embedder.metadata.name = Some("embedder".into());
    let mut refs = ResolvedReferences {
        model: Some(model("examples/chat-agent.yaml", "gpt-small")),
        embedding_model: Some(embedder.clone()),
        ..Default::default()
    };
    let error = render_runtime_config(&helpdesk, &refs, &PodPaths::default()).unwrap_err();
    assert!(matches!(error, RenderError::EmbeddingModelUnusable(_)), "{error}");

    embedder.spec.capabilities.embeddings = true;
    embedder.spec.capabilities.embedding_dimension = Some(1024);
    refs.embedding_model = Some(embedder);
    let config = render_runtime_config(&helpdesk, &refs, &PodPaths::default()).unwrap();
    assert_eq!(config.memory.vector_dimension, 1024);
    assert!(matches!(config.memory.embedding, EmbeddingConfig::Endpoint { .. }));
}

#[test]
fn a_model_without_chat_is_rejected_and_a_missing_model_is_reported() {
    let helpdesk = agent("examples/chat-agent.yaml", "helpdesk");
    let mut embedder = model("examples/chat-agent.yaml", "gpt-small");
    embedder.spec.capabilities.chat = false;
    let refs = ResolvedReferences { model: Some(embedder), ..Default::default() };
    assert_eq!(
        render_runtime_config(&helpdesk, &refs, &PodPaths::default()).unwrap_err(),
        RenderError::ModelCannotChat("gpt-small".into())
    );
    assert_eq!(
        render_runtime_config(&helpdesk, &ResolvedReferences::default(), &PodPaths::default()).unwrap_err(),
        RenderError::ModelMissing("gpt-small".into())
    );
}

#[test]
fn task_modes_render_with_their_generation_schedule_policies_and_delegation_bounds() {
    let mut helpdesk = agent("examples/chat-agent.yaml", "helpdesk");
    let refs = ResolvedReferences { model: Some(model("examples/chat-agent.yaml", "gpt-small")), ..Default::default() };
    helpdesk.spec.task.mode = agent_crds::agent::TaskMode::Schedule;
    helpdesk.spec.task.schedule = Some("*/15 * * * *".into());
    helpdesk.spec.task.input = Some("Report.".into());
    helpdesk.spec.task.successful_runs_history_limit = Some(5);
    helpdesk.spec.delegation =
        Some(serde_json::from_value(json!({"enabled": true, "models": ["gpt-large"], "maxChildren": 2})).unwrap());
    let config = render_runtime_config(&helpdesk, &refs, &PodPaths::default()).unwrap();
    assert_eq!(config.task.generation, agent_crds::schedule::task_generation(&helpdesk.spec.task));
    assert_eq!((config.task.successful_runs_history_limit, config.task.failed_runs_history_limit), (5, 1));
    let delegation = config.delegation.unwrap();
    assert_eq!(delegation.models, ["gpt-small", "gpt-large"], "the agent's own model first");
    assert_eq!((delegation.max_children, delegation.max_depth), (2, 1));
    assert!(delegation.tools.is_empty(), "no tool is given to children unless listed");

    helpdesk.spec.task.schedule = Some("61 * * * *".into());
    let error = render_runtime_config(&helpdesk, &refs, &PodPaths::default()).unwrap_err();
    assert!(matches!(error, RenderError::BadSchedule(_)), "{error}");
    assert!(error.to_string().starts_with("task.schedule \"61 * * * *\" is not a valid cron expression"), "{error}");
}

#[test]
fn durations_parse_in_hours_minutes_and_seconds() {
    assert_eq!(parse_duration_seconds("720h"), Ok(2_592_000));
    assert_eq!(parse_duration_seconds("1h30m15s"), Ok(5415));
    for bad in ["", "10", "5d", "h", "0s"] {
        assert!(parse_duration_seconds(bad).is_err(), "{bad}");
    }
}

#[test]
fn the_runtime_config_round_trips_through_json() {
    let config = render_runtime_config(
        &agent("examples/rag-agent.yaml", "researcher"),
        &researcher_refs(),
        &PodPaths::default(),
    )
    .unwrap();
    let json = serde_json::to_string(&config).unwrap();
    assert_eq!(serde_json::from_str::<agent_crds::RuntimeConfig>(&json).unwrap(), config);
    assert!(json.contains("\"apiKeyFile\"") && !json.contains("api_key_file"), "camelCase on the wire: {json}");
}

/// An agent of the recipe examples, resolved against its file as local mode does.
fn recipe_example(recipe: &str) -> (Agent, ResolvedReferences) {
    let text = std::fs::read_to_string(common::repo_root().join(format!("recipes/{recipe}/agent.yaml"))).unwrap();
    let mut manifests = agent_crds::manifests::Manifests::parse(&text).unwrap();
    let mut agent = manifests.agents.remove(0);
    agent.metadata.namespace = Some("default".into());
    let model = manifests.models.first().cloned();
    let references = manifests.references(&agent, model);
    (agent, references)
}

#[test]
fn every_recipe_example_renders_with_the_builtin_recipe_and_its_overrides() {
    for name in agent_crds::catalogue::names() {
        let (agent, references) = recipe_example(&name);
        let builtin = agent_crds::catalogue::builtin(&name).unwrap();
        assert_eq!(
            references.recipe.as_ref().map(|r| &r.spec),
            Some(&builtin.spec),
            "{name}: resolves to the built-in"
        );
        let config = render_runtime_config(&agent, &references, &PodPaths::default())
            .unwrap_or_else(|e| panic!("recipes/{name}/agent.yaml: {e}"));
        let recipe = config.recipe.unwrap();
        for (parameter, value) in &agent.spec.knowledge.as_ref().unwrap().parameters {
            assert_eq!(&recipe.parameters[parameter], value, "{name}: the agent's {parameter} wins");
        }
        assert_eq!(recipe.parameters.len(), builtin.spec.parameters.len(), "{name}: every parameter has a value");
    }
    let (agent, references) = recipe_example("docsum");
    let config = render_runtime_config(&agent, &references, &PodPaths::default()).unwrap();
    assert_eq!(
        config.recipe.unwrap().spec.generate.strategy,
        agent_crds::recipe::SummaryStrategy::Refine,
        "the docsum example's strategy parameter overrides generate.strategy"
    );
}

#[test]
fn an_unknown_recipe_a_bad_parameter_and_a_bad_template_are_clear_errors() {
    let (mut agent, references) = recipe_example("chatqna");
    agent.spec.knowledge.as_mut().unwrap().recipe = "chat-qna".into();
    let error = render_runtime_config(
        &agent,
        &agent_crds::manifests::Manifests::default().references(&agent, references.model.clone()),
        &PodPaths::default(),
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "recipe chat-qna is neither a Recipe in the agent's namespace nor built in (built in: chatqna, \
         chatqna-norerank, doc-retriever, docsum, faqgen, codegen, react-agent)"
    );

    let (mut agent, references) = recipe_example("chatqna");
    agent.spec.knowledge.as_mut().unwrap().parameters.insert("mmrLambda".into(), json!(1.5));
    let error = render_runtime_config(&agent, &references, &PodPaths::default()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "parameter mmrLambda of recipe chatqna sets rerank.mmrLambda, which must be a number from 0 to 1"
    );

    let (agent, mut references) = recipe_example("chatqna");
    let recipe = references.recipe.as_mut().unwrap();
    recipe.spec.generate.sources_template = Some("{{#each chunks}}{{documentTitle}}{{/each}}".into());
    let error = render_runtime_config(&agent, &references, &PodPaths::default()).unwrap_err();
    assert!(matches!(&error, RenderError::Recipe(ParameterError::Template { .. })), "{error}");
    let message = error.to_string();
    assert!(message.starts_with("recipe chatqna: generate.sourcesTemplate: "), "{message}");
    assert!(message.contains("documentTitle"), "the message names the missing variable: {message}");
}

#[test]
fn prices_and_budgets_render_and_a_cost_budget_needs_a_priced_model() {
    let mut helpdesk = agent("examples/chat-agent.yaml", "helpdesk");
    helpdesk.spec.limits = Some(serde_json::from_value(json!({"costPerDay": "5", "maxToolCallsPerTurn": 4})).unwrap());
    let priced =
        ResolvedReferences { model: Some(model("examples/chat-agent.yaml", "gpt-small")), ..Default::default() };
    let config = render_runtime_config(&helpdesk, &priced, &PodPaths::default()).unwrap();
    let pricing = config.model.pricing.expect("the Model's pricing");
    assert_eq!((pricing.input_per_million_tokens.as_str(), pricing.currency.as_str()), ("0.15", "USD"));
    assert_eq!(agent_crds::model::Pricing::micros(&pricing.output_per_million_tokens), Some(600_000));
    assert_eq!(config.limits.and_then(|l| l.max_tool_calls_per_turn), Some(4));

    let mut unpriced = model("examples/chat-agent.yaml", "gpt-small");
    unpriced.spec.pricing = None;
    let refs = ResolvedReferences { model: Some(unpriced), ..Default::default() };
    assert_eq!(
        render_runtime_config(&helpdesk, &refs, &PodPaths::default()).unwrap_err(),
        RenderError::CostLimitWithoutPricing("gpt-small".into())
    );
}

#[test]
fn the_operators_part_of_the_status_leaves_out_what_the_runtime_writes() {
    let status: agent_crds::AgentStatus = serde_json::from_value(json!({
        "conditions": [
            {"type": "Ready", "status": "True", "reason": "PodReady", "message": "", "lastTransitionTime": "2026-11-29T00:00:00Z"},
            {"type": "BudgetExhausted", "status": "True", "reason": "TokensPerDay", "message": "", "lastTransitionTime": "2026-11-29T00:00:00Z"}
        ],
        "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2}
    }))
    .unwrap();
    let part = status.operator_part();
    assert_eq!(part.conditions.iter().map(|c| c.type_.as_str()).collect::<Vec<_>>(), ["Ready"]);
    assert!(part.usage.is_none());
}
