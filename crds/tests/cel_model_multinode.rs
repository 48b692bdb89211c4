//! The CEL rules of `serve.nodes` on a served Model, evaluated with kube-cel against the
//! committed CRD: the multi-node example passes, one node changes nothing, and each combination
//! multi-node serving cannot run is refused with its own message.

mod common;

use kube::core::cel::{ScopeContext, Validator, WarningKind, analyze_rule, compile_schema};
use serde_json::{Value, json};

const FILE: &str = "examples/multinode-model.yaml";

fn check(object: &Value) -> Result<(), String> {
    Validator::new().validate(&common::committed_schema("models"), object, None).map_err(|e| e.to_string())
}

fn assert_rejected(object: &Value, message: &str) {
    let error = check(object).expect_err(&format!("accepted, but should fail with {message:?}"));
    assert!(error.contains(message), "expected {message:?}, got: {error}");
}

fn model() -> Value {
    common::example(FILE, "Model", "llama-405b")
}

fn with_serve(field: &str, value: Value) -> Value {
    let mut object = model();
    object["spec"]["serve"][field] = value;
    object
}

#[test]
fn the_nodes_rules_compile_and_stay_in_scope_and_budget() {
    let schema = common::committed_schema("models");
    let serve = &schema["properties"]["spec"]["properties"]["serve"];
    let nodes = &serve["properties"]["nodes"];
    assert_eq!(
        (nodes["minimum"].as_f64(), nodes["maximum"].as_f64(), nodes["default"].as_i64()),
        (Some(1.0), Some(64.0), Some(1)),
        "the API server keeps nodes within 1 to 64 and defaults it to 1"
    );
    let rules: Vec<&str> = serve["x-kubernetes-validations"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["rule"].as_str())
        .filter(|r| r.contains("self.nodes"))
        .collect();
    assert_eq!(rules.len(), 5, "{rules:#?}");
    let compiled = compile_schema(serve);
    let errors: Vec<String> = compiled.compilation_errors().iter().map(ToString::to_string).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    for rule in rules {
        let warnings = analyze_rule(rule, &compiled, ScopeContext::CrdValidation);
        let serious: Vec<_> = warnings
            .iter()
            .filter(|w| matches!(w.kind, WarningKind::WrongScope | WarningKind::CostExceeded))
            .map(|w| &w.message)
            .collect();
        assert!(serious.is_empty(), "`{rule}`: {serious:?}");
    }
}

#[test]
fn the_multinode_example_satisfies_the_rules() {
    check(&model()).unwrap();
    check(&with_serve("nodes", json!(64))).unwrap();
}

#[test]
fn several_nodes_need_engine_vllm() {
    let mut tgi = with_serve("engine", json!("tgi"));
    assert_rejected(&tgi, "nodes > 1 needs engine vllm");
    tgi["spec"]["serve"]["nodes"] = json!(1);
    check(&tgi).unwrap();
    let mut unset = with_serve("engine", json!("tgi"));
    unset["spec"]["serve"].as_object_mut().unwrap().remove("nodes");
    check(&unset).unwrap();
}

#[test]
fn several_nodes_refuse_autoscaling_kueue_and_a_shared_claim() {
    let autoscaled =
        with_serve("autoscaling", json!({"minReplicas": 1, "maxReplicas": 2, "metric": "QueueDepth", "target": "4"}));
    assert_rejected(&autoscaled, "autoscaling cannot be combined with nodes > 1");
    assert_rejected(&with_serve("queueName", json!("gpu")), "queueName cannot be combined with nodes > 1");
    let mut shared = model();
    shared["spec"]["serve"]["accelerator"]["sharedClaimName"] = json!("gpus");
    assert_rejected(&shared, "sharedClaimName cannot be combined with nodes > 1");
}

#[test]
fn downloaded_weights_on_several_nodes_need_a_read_write_many_cache() {
    let mut once = model();
    once["spec"]["serve"]["cache"]["accessMode"] = json!("ReadWriteOnce");
    assert_rejected(&once, "needs cache.accessMode ReadWriteMany");
    let mut no_cache = model();
    no_cache["spec"]["serve"].as_object_mut().unwrap().remove("cache");
    assert_rejected(&no_cache, "needs cache.accessMode ReadWriteMany");
    no_cache["spec"]["serve"]["uri"] = json!("pvc://weights/llama-405b");
    check(&no_cache).unwrap();
    no_cache["spec"]["serve"]["uri"] = json!("oci://registry.example.com/models/llama-405b:1");
    check(&no_cache).unwrap();
}
