//! The CEL rules of `serve.autoscaling` and of Kueue's fields on a served Model, evaluated with
//! kube-cel against the committed CRD: the autoscaled examples pass, and each bad combination is
//! refused with its own message (scale-to-zero settings, bounds, targets, engines without the signal).

mod common;

use kube::core::cel::Validator;
use serde_json::{Value, json};

const FILE: &str = "examples/autoscaled-model.yaml";

fn check(object: &Value) -> Result<(), String> {
    Validator::new().validate(&common::committed_schema("models"), object, None).map_err(|e| e.to_string())
}

fn assert_rejected(object: &Value, message: &str) {
    let error = check(object).expect_err(&format!("accepted, but should fail with {message:?}"));
    assert!(error.contains(message), "expected {message:?}, got: {error}");
}

fn model(name: &str) -> Value {
    common::example(FILE, "Model", name)
}

fn with_autoscaling(name: &str, field: &str, value: Value) -> Value {
    let mut object = model(name);
    object["spec"]["serve"]["autoscaling"][field] = value;
    object
}

#[test]
fn every_autoscaled_example_satisfies_the_rules() {
    let documents = common::documents(FILE);
    assert_eq!(documents.len(), 4);
    for doc in documents {
        check(&doc).unwrap_or_else(|e| panic!("{}: {e}", doc["metadata"]["name"]));
    }
}

#[test]
fn scale_to_zero_is_allowed_and_min_may_not_exceed_max() {
    check(&with_autoscaling("llama-autoscaled", "minReplicas", json!(0))).unwrap();
    assert_rejected(
        &with_autoscaling("llama-autoscaled", "minReplicas", json!(5)),
        "minReplicas must not exceed maxReplicas",
    );
    check(&with_autoscaling("llama-autoscaled", "minReplicas", json!(4))).unwrap();
}

#[test]
fn the_idle_period_and_wake_timeout_need_min_zero_and_sensible_durations() {
    let scale_to_zero = common::example("examples/scale-to-zero-model.yaml", "Model", "gemma-on-demand");
    check(&scale_to_zero).unwrap();
    let agent = common::example("examples/scale-to-zero-model.yaml", "Agent", "night-owl");
    Validator::new().validate(&common::committed_schema("agents"), &agent, None).unwrap();
    assert_rejected(
        &with_autoscaling("llama-autoscaled", "scaleToZeroAfter", json!("10m")),
        "scaleToZeroAfter needs minReplicas 0",
    );
    assert_rejected(
        &with_autoscaling("llama-autoscaled", "wakeTimeout", json!("2m")),
        "wakeTimeout needs minReplicas 0",
    );
    let with = |field: &str, value: &str| {
        let mut object = scale_to_zero.clone();
        object["spec"]["serve"]["autoscaling"][field] = json!(value);
        object
    };
    assert_rejected(&with("scaleToZeroAfter", "30s"), "scaleToZeroAfter must be between 1m and 720h");
    assert_rejected(&with("wakeTimeout", "2h"), "wakeTimeout must be between 5s and 1h");
    check(&with("scaleToZeroAfter", "1h30m")).unwrap();
    check(&with("wakeTimeout", "45s")).unwrap();
}

#[test]
fn a_target_is_a_positive_quantity_and_a_gpu_target_a_percentage() {
    assert_rejected(&with_autoscaling("llama-autoscaled", "target", json!("0")), "target must be greater than zero");
    assert_rejected(&with_autoscaling("llama-autoscaled", "target", json!("lots")), "must be a Kubernetes quantity");
    assert_rejected(&with_autoscaling("mistral-gpu-scaled", "target", json!("120")), "at most 100");
    check(&with_autoscaling("qwen-latency", "target", json!("1500m"))).unwrap();
}

#[test]
fn a_signal_the_engine_does_not_export_is_refused() {
    let mut tgi_queue = with_autoscaling("mistral-gpu-scaled", "metric", json!("QueueDepth"));
    assert_rejected(&tgi_queue, "needs engine vllm or llamacpp");
    tgi_queue["spec"]["serve"]["engine"] = json!("llamacpp");
    tgi_queue["spec"]["serve"]["uri"] = json!("pvc://weights/model.gguf");
    check(&tgi_queue).unwrap();
    let llama_latency = with_autoscaling("gemma-autoscaled", "metric", json!("TimeToFirstToken"));
    assert_rejected(&llama_latency, "autoscaling on TimeToFirstToken needs engine vllm");
    let mut cpu_gpu = with_autoscaling("gemma-autoscaled", "metric", json!("GpuUtilization"));
    cpu_gpu["spec"]["serve"]["autoscaling"]["target"] = json!("80");
    assert_rejected(&cpu_gpu, "autoscaling on GpuUtilization needs an accelerator");
}

#[test]
fn prometheus_address_is_a_url_and_a_workload_priority_needs_a_queue() {
    assert_rejected(
        &with_autoscaling("gemma-autoscaled", "prometheusAddress", json!("prometheus:9090")),
        "prometheusAddress must be an http:// or https:// URL",
    );
    let mut priority = model("llama-autoscaled");
    priority["spec"]["serve"].as_object_mut().unwrap().remove("queueName");
    assert_rejected(&priority, "workloadPriorityClassName needs a queueName");
}

#[test]
fn the_model_crd_has_a_scale_subresource_over_serve_replicas_and_status() {
    let crd: Value = serde_yaml::from_str(
        &std::fs::read_to_string(common::repo_root().join("crds/yaml/models.agent-operator.dev.yaml")).unwrap(),
    )
    .unwrap();
    let scale = &crd["spec"]["versions"][0]["subresources"]["scale"];
    assert_eq!(
        scale,
        &json!({"specReplicasPath": ".spec.serve.replicas", "statusReplicasPath": ".status.replicas", "labelSelectorPath": ".status.selector"})
    );
    let status = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"];
    assert_eq!(
        (status["replicas"]["type"].as_str(), status["selector"]["type"].as_str()),
        (Some("integer"), Some("string"))
    );
}
