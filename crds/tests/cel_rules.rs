//! The CEL rules of the committed CRDs compile, stay within the apiserver's cost budget, accept
//! every example and reject each invalid combination with its own message. Rules are evaluated
//! with kube-cel, which implements the Kubernetes CEL libraries (quantity, URL, duration).

mod common;

use kube::core::cel::{CompiledSchema, ScopeContext, Validator, WarningKind, analyze_rule, compile_schema};
use serde_json::{Value, json};

fn rules_in(node: &Value, path: &str, found: &mut Vec<(String, String, Value)>) {
    for rule in node["x-kubernetes-validations"].as_array().into_iter().flatten() {
        found.push((path.to_owned(), rule["rule"].as_str().unwrap().to_owned(), node.clone()));
    }
    for (key, child) in node["properties"].as_object().into_iter().flatten() {
        rules_in(child, &format!("{path}.{key}"), found);
    }
    for key in ["items", "additionalProperties"] {
        if node[key].is_object() {
            rules_in(&node[key], &format!("{path}[{key}]"), found);
        }
    }
}

#[test]
fn every_rule_compiles_is_in_scope_and_within_cost_budget() {
    let mut count = 0;
    for plural in ["agents", "models", "recipes"] {
        let schema = common::committed_schema(plural);
        let compiled: CompiledSchema = compile_schema(&schema);
        let errors: Vec<_> = compiled.compilation_errors().iter().map(ToString::to_string).collect();
        assert!(errors.is_empty(), "{plural}: rules that do not compile: {errors:#?}");
        let mut rules = Vec::new();
        rules_in(&schema, plural, &mut rules);
        for (path, rule, node) in rules {
            let warnings = analyze_rule(&rule, &compile_schema(&node), ScopeContext::CrdValidation);
            let serious: Vec<_> = warnings
                .iter()
                .filter(|w| matches!(w.kind, WarningKind::WrongScope | WarningKind::CostExceeded))
                .map(|w| &w.message)
                .collect();
            assert!(serious.is_empty(), "{path}: `{rule}`: {serious:?}");
            count += 1;
        }
    }
    assert!(count >= 20, "expected the CRDs to carry their CEL rules, found {count}");
}

fn check(plural: &str, object: &Value, old: Option<&Value>) -> Result<(), String> {
    Validator::new().validate(&common::committed_schema(plural), object, old).map_err(|e| e.to_string())
}

#[test]
fn every_example_object_satisfies_the_rules() {
    let mut files: Vec<String> = [
        "examples/chat-agent.yaml",
        "examples/rag-agent.yaml",
        "examples/suspended-agent.yaml",
        "examples/mcp-agent.yaml",
        "examples/delegating-agent.yaml",
        "examples/served-model.yaml",
        "recipes/catalogue.yaml",
    ]
    .map(String::from)
    .to_vec();
    files.extend(agent_crds::catalogue::names().iter().map(|name| format!("recipes/{name}/agent.yaml")));
    for file in &files {
        for doc in common::documents(file.as_str()) {
            let plural = match doc["kind"].as_str() {
                Some("Agent") => "agents",
                Some("Model") => "models",
                Some("Recipe") => "recipes",
                _ => continue,
            };
            check(plural, &doc, None).unwrap_or_else(|e| panic!("{file} {}: {e}", doc["metadata"]["name"]));
        }
    }
}

fn agent() -> Value {
    common::example("examples/chat-agent.yaml", "Agent", "helpdesk")
}

fn served_model() -> Value {
    common::example("examples/rag-agent.yaml", "Model", "llama-8b")
}

fn recipe() -> Value {
    common::example("examples/rag-agent.yaml", "Recipe", "docs-qna")
}

fn with(mut object: Value, pointer: &str, value: Value) -> Value {
    if let Some(slot) = object.pointer_mut(pointer) {
        *slot = value;
    } else {
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        object.pointer_mut(parent).unwrap_or_else(|| panic!("no {parent}"))[key] = value;
    }
    object
}

fn assert_rejected(plural: &str, object: &Value, old: Option<&Value>, message: &str) {
    let error = check(plural, object, old).expect_err(&format!("accepted, but should fail with {message:?}"));
    assert!(error.contains(message), "expected {message:?}, got: {error}");
}

#[test]
fn an_agent_names_its_model_by_ref_or_selector_not_both_nor_neither() {
    let both = with(agent(), "/spec/model/selector", json!({"capabilities": ["chat"]}));
    assert_rejected("agents", &both, None, "set exactly one of modelRef or selector");
    let neither = with(agent(), "/spec/model", json!({}));
    assert_rejected("agents", &neither, None, "set exactly one of modelRef or selector");
    let selector_only = with(agent(), "/spec/model", json!({"selector": {"capabilities": ["chat", "tools"]}}));
    check("agents", &selector_only, None).unwrap();
}

#[test]
fn agent_storage_may_grow_but_never_shrink() {
    let old = agent();
    let grown = with(agent(), "/spec/memory/storage/size", json!("10Gi"));
    check("agents", &grown, Some(&old)).unwrap();
    let shrunk = with(agent(), "/spec/memory/storage/size", json!("1500Mi"));
    assert_rejected("agents", &shrunk, Some(&old), "storage.size may grow but never shrink");
    let garbage = with(agent(), "/spec/memory/storage/size", json!("lots"));
    assert_rejected("agents", &garbage, None, "must be a Kubernetes quantity");
}

#[test]
fn agent_cross_field_rules_reject_bad_combinations() {
    let cases = [
        (with(agent(), "/spec/task", json!({"mode": "Schedule"})), "mode Schedule needs a schedule"),
        (with(agent(), "/spec/task", json!({"mode": "Chat", "schedule": "* * * * *"})), "schedule is only allowed"),
        (with(agent(), "/spec/task", json!({"mode": "Once"})), "modes Once and Schedule need an input"),
        (
            with(agent(), "/spec/task", json!({"mode": "Schedule", "schedule": "*/5 * * * * *", "input": "x"})),
            "schedule must be a 5-field cron expression",
        ),
        (
            with(agent(), "/spec/task", json!({"mode": "Schedule", "schedule": "every day", "input": "x"})),
            "schedule must be a 5-field cron expression",
        ),
        (
            with(agent(), "/spec/task", json!({"mode": "Chat", "completionPolicy": "Suspend"})),
            "completionPolicy is only allowed with mode Once",
        ),
        (
            with(agent(), "/spec/task", json!({"mode": "Once", "input": "x", "concurrencyPolicy": "Allow"})),
            "only allowed with mode Schedule",
        ),
        (with(agent(), "/spec/memory/backend", json!("Qdrant")), "backend Qdrant needs qdrant.url"),
        (
            with(agent(), "/spec/tools/0/mcp", json!({"url": "http://mcp:8000/mcp"})),
            "set exactly one of builtin, mcp, agent or http",
        ),
        (with(agent(), "/spec/tools/1", json!({"name": "empty"})), "set exactly one of builtin, mcp, agent or http"),
        (
            with(agent(), "/spec/persona/systemPromptFrom", json!({"configMapKeyRef": {"name": "p", "key": "k"}})),
            "set at most one of systemPrompt or systemPromptFrom",
        ),
        (
            with(
                agent(),
                "/spec/persona",
                json!({"systemPromptFrom": {"configMapKeyRef": {"name": "p", "key": "k"}, "secretKeyRef": {"name": "s", "key": "k"}}}),
            ),
            "set exactly one of configMapKeyRef or secretKeyRef",
        ),
        (with(agent(), "/spec/memory/retention", json!("forever")), "retention"),
        (
            with(agent(), "/spec/tools/0", json!({"name": "web", "http": {"url": "not a url", "description": "d"}})),
            "url must be an absolute URL",
        ),
        (
            with(
                agent(),
                "/spec/tools/0",
                json!({"name": "tickets", "mcp": {"url": "http://mcp:8000/mcp", "headersFrom": [
                    {"name": "Mcp-Session-Id", "secretKeyRef": {"name": "s", "key": "k"}}
                ]}}),
            ),
            "set by the MCP client itself",
        ),
        (
            with(
                agent(),
                "/spec/tools/0",
                json!({"name": "peer", "agent": {"name": "a", "url": "https://b.example.com"}}),
            ),
            "set exactly one of name (an Agent) or url",
        ),
        (
            with(
                agent(),
                "/spec/tools/0",
                json!({"name": "peer", "agent": {"url": "https://b.example.com", "namespace": "x"}}),
            ),
            "namespace goes with name",
        ),
    ];
    for (object, message) in cases {
        assert_rejected("agents", &object, None, message);
    }
}

#[test]
fn a_model_sets_exactly_one_of_endpoint_or_serve() {
    let endpoint = common::example("examples/chat-agent.yaml", "Model", "gpt-small");
    let both = with(endpoint.clone(), "/spec/serve", served_model()["spec"]["serve"].clone());
    assert_rejected("models", &both, None, "set exactly one of endpoint or serve");
    let neither = with(endpoint, "/spec", json!({"capabilities": {"chat": true}}));
    assert_rejected("models", &neither, None, "set exactly one of endpoint or serve");
}

#[test]
fn model_accelerator_and_uri_rules_reject_bad_combinations() {
    let selectors_without_class = with(
        served_model(),
        "/spec/serve/accelerator",
        json!({"count": 1, "selectors": ["device.driver == 'gpu.nvidia.com'"]}),
    );
    assert_rejected("models", &selectors_without_class, None, "selectors need a deviceClassName");
    let mixed = with(
        served_model(),
        "/spec/serve/accelerator",
        json!({"count": 1, "deviceClassName": "gpu.nvidia.com", "extendedResource": "nvidia.com/gpu"}),
    );
    assert_rejected("models", &mixed, None, "extendedResource cannot be combined");
    let mig_on_extended = with(
        served_model(),
        "/spec/serve/accelerator",
        json!({"count": 1, "extendedResource": "nvidia.com/gpu", "migProfile": "1g.10gb"}),
    );
    assert_rejected("models", &mig_on_extended, None, "migProfile is a DRA field");
    let shared_on_extended = with(
        served_model(),
        "/spec/serve/accelerator",
        json!({"count": 1, "extendedResource": "nvidia.com/gpu", "sharedClaimName": "gpus"}),
    );
    assert_rejected("models", &shared_on_extended, None, "sharedClaimName is a DRA field");
    let bad_uri = with(served_model(), "/spec/serve/uri", json!("s3://bucket/model"));
    assert_rejected("models", &bad_uri, None, "uri must start with");
}

#[test]
fn recipe_rules_reject_inconsistent_pipelines() {
    let overlap = with(recipe(), "/spec/ingest", json!({"chunkSize": 64, "chunkOverlap": 64}));
    assert_rejected("recipes", &overlap, None, "chunkOverlap must be smaller than chunkSize");
    let fetch = with(recipe(), "/spec/retrieve", json!({"topK": 10, "fetchK": 5}));
    assert_rejected("recipes", &fetch, None, "fetchK must be at least topK");
    let rerank = with(recipe(), "/spec/rerank", json!({"strategy": "Endpoint"}));
    assert_rejected("recipes", &rerank, None, "strategy Endpoint needs an endpoint");
}

fn engine_model(name: &str) -> Value {
    common::example("examples/served-model.yaml", "Model", name)
}

/// `accelerator.count: 0` is rejected by the schema's `minimum: 1`, which is structural, not
/// CEL: the operator's `model_manifests` test checks it with the Kubernetes schema validator.
#[test]
fn served_model_rules_reject_options_that_do_nothing_for_the_source_or_engine() {
    let parser_on_tgi = with(engine_model("mistral-tgi"), "/spec/serve/toolCallParser", json!("hermes"));
    assert_rejected("models", &parser_on_tgi, None, "toolCallParser is only used by engine vllm");
    check("models", &engine_model("llama-8b"), None).unwrap();

    let token_for_https = with(
        engine_model("qwen-small"),
        "/spec/serve/cache",
        json!({"size": "2Gi", "hfTokenSecretRef": {"name": "hf", "key": "t"}}),
    );
    assert_rejected("models", &token_for_https, None, "cache.hfTokenSecretRef needs an hf:// uri");

    let cache_for_pvc = with(engine_model("mistral-tgi"), "/spec/serve/cache", json!({"size": "10Gi"}));
    assert_rejected("models", &cache_for_pvc, None, "cache is not used with pvc:// or oci:// uris");

    let mut nim = engine_model("llama-nim");
    nim["spec"]["serve"].as_object_mut().unwrap().remove("image");
    assert_rejected("models", &nim, None, "engine nim needs an image");
}

#[test]
fn a_model_with_both_endpoint_and_serve_is_rejected_whatever_the_engine() {
    for name in ["llama-8b", "gemma-small", "minilm"] {
        let both =
            with(engine_model(name), "/spec/endpoint", json!({"baseUrl": "https://api.example.com/v1", "model": "m"}));
        assert_rejected("models", &both, None, "set exactly one of endpoint or serve");
    }
    let dra_selectors_without_class = with(
        engine_model("llama-nim"),
        "/spec/serve/accelerator",
        json!({"count": 1, "selectors": ["device.attributes['gpu.nvidia.com'].profile == '1g.10gb'"]}),
    );
    assert_rejected("models", &dra_selectors_without_class, None, "selectors need a deviceClassName");
}

#[test]
fn a_model_cache_may_grow_but_keeps_its_volumes_mode_and_class() {
    let old = engine_model("llama-8b");
    check("models", &with(old.clone(), "/spec/serve/cache/size", json!("80Gi")), Some(&old)).unwrap();
    let shrunk = with(old.clone(), "/spec/serve/cache/size", json!("20Gi"));
    assert_rejected("models", &shrunk, Some(&old), "cache.size may grow but never shrink");
    let old_mode = with(old.clone(), "/spec/serve/cache/accessMode", json!("ReadWriteOnce"));
    let new_mode = with(old.clone(), "/spec/serve/cache/accessMode", json!("ReadWriteMany"));
    assert_rejected("models", &new_mode, Some(&old_mode), "cache.accessMode is immutable");
    let new_class = with(old.clone(), "/spec/serve/cache/storageClassName", json!("slow-hdd"));
    assert_rejected("models", &new_class, Some(&old), "cache.storageClassName is immutable");
    let mut unset_class = old.clone();
    unset_class["spec"]["serve"]["cache"].as_object_mut().unwrap().remove("storageClassName");
    assert_rejected("models", &unset_class, Some(&old), "cache.storageClassName is immutable");
}

#[test]
fn five_field_schedules_and_macros_are_admitted() {
    for schedule in ["0 7 * * 1-5", "*/15 * * * *", "0 0 1 JAN,JUL *", "@hourly", "30 2 L * ?"] {
        let scheduled = with(agent(), "/spec/task", json!({"mode": "Schedule", "schedule": schedule, "input": "x"}));
        check("agents", &scheduled, None).unwrap_or_else(|e| panic!("{schedule}: {e}"));
    }
}

#[test]
fn an_egress_destination_is_a_cidr_or_a_namespace_and_its_addresses_are_cidrs() {
    let to = |destination: Value| with(agent(), "/spec/egress", json!({"to": [destination]}));
    assert_rejected(
        "agents",
        &to(json!({"cidr": "10.0.0.0/8", "namespace": "tools"})),
        None,
        "set exactly one of cidr or namespace",
    );
    assert_rejected("agents", &to(json!({"ports": [443]})), None, "set exactly one of cidr or namespace");
    assert_rejected(
        "agents",
        &to(json!({"namespace": "tools", "except": ["10.0.0.0/8"]})),
        None,
        "except goes with cidr",
    );
    assert_rejected("agents", &to(json!({"cidr": "10.0.0.0"})), None, "must be a CIDR");
    assert_rejected("agents", &to(json!({"cidr": "10.0.0.0/8", "except": ["nope"]})), None, "must be a CIDR");
    let fine = to(json!({"cidr": "2001:db8::/32", "except": ["2001:db8::/64"], "ports": [443, 8443]}));
    check("agents", &fine, None).unwrap();
    check("agents", &to(json!({"namespace": "tools"})), None).unwrap();
}
