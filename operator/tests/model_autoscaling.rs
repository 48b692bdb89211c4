//! The objects built for an autoscaled served Model (examples/autoscaled-model.yaml): the
//! HorizontalPodAutoscaler or KEDA ScaledObject, the Deployment that leaves `replicas` to it and
//! Kueue's labels; snapshots, and validation against the Kubernetes 1.34 schemas and KEDA's
//! ScaledObject CRD (scripts/schemas).

mod support;

use agent_crds::model::Model;
use agent_operator::model::build::autoscaler::{Autoscaler, build_autoscaler};
use serde_json::{Value, json};
use support::{build_children, example_model, temp_dir, validate_manifests};

const FILE: &str = "examples/autoscaled-model.yaml";
const NAMES: [&str; 4] = ["llama-autoscaled", "gemma-autoscaled", "qwen-latency", "mistral-gpu-scaled"];

fn deployment(model: &Model, cache_ready: bool) -> Value {
    serde_json::to_value(
        build_children(model, "runtime:test", cache_ready).workload.deployment().expect("a Deployment"),
    )
    .unwrap()
}

fn autoscaler(name: &str, keda_installed: bool) -> Value {
    build_autoscaler(&example_model(FILE, name), keda_installed, false).expect("an autoscaled Model").to_value()
}

#[test]
fn an_autoscaled_model_gets_an_hpa_on_its_engines_queue_metric_and_a_deployment_without_replicas() {
    let hpa = autoscaler("llama-autoscaled", false);
    insta::assert_yaml_snapshot!("llama-autoscaled_hpa", hpa);
    assert_eq!(
        hpa["spec"]["scaleTargetRef"],
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "llama-autoscaled"})
    );
    assert_eq!((&hpa["spec"]["minReplicas"], &hpa["spec"]["maxReplicas"]), (&json!(1), &json!(4)));
    let metric = &hpa["spec"]["metrics"][0];
    assert_eq!(metric["pods"]["metric"]["name"], "vllm_num_requests_waiting");
    assert_eq!(metric["pods"]["target"], json!({"type": "AverageValue", "averageValue": "4"}));
    assert_eq!(hpa["metadata"]["ownerReferences"][0]["kind"], "Model");
    let model = example_model(FILE, "llama-autoscaled");
    let serving = deployment(&model, true);
    assert!(serving["spec"].get("replicas").is_none(), "the autoscaler owns replicas: {}", serving["spec"]);
    assert_eq!(deployment(&model, false)["spec"]["replicas"], 0, "no GPU is held while the weights download");
}

#[test]
fn keda_gets_a_scaled_object_only_where_installed_and_told_which_prometheus_to_ask() {
    let scaled = autoscaler("gemma-autoscaled", true);
    insta::assert_yaml_snapshot!("gemma-autoscaled_scaledobject", scaled);
    assert_eq!(
        (scaled["apiVersion"].as_str(), scaled["kind"].as_str()),
        (Some("keda.sh/v1alpha1"), Some("ScaledObject"))
    );
    let trigger = &scaled["spec"]["triggers"][0];
    assert_eq!(trigger["type"], "prometheus");
    assert_eq!(trigger["metricType"], "AverageValue", "a count is compared per replica");
    assert_eq!(trigger["metadata"]["threshold"], "2");
    assert_eq!(
        trigger["metadata"]["query"],
        r#"sum(llamacpp:requests_processing{namespace="models",pod=~"gemma-autoscaled-[a-z0-9]+-[a-z0-9]+"})"#
    );
    assert_eq!(autoscaler("gemma-autoscaled", false)["kind"], "HorizontalPodAutoscaler", "no KEDA, no ScaledObject");
    assert_eq!(
        autoscaler("llama-autoscaled", true)["kind"],
        "HorizontalPodAutoscaler",
        "KEDA without a Prometheus address cannot query anything"
    );
}

#[test]
fn latency_and_gpu_signals_compare_a_mean_with_the_target_not_a_per_replica_sum() {
    let latency = autoscaler("qwen-latency", true);
    insta::assert_yaml_snapshot!("qwen-latency_scaledobject", latency);
    let trigger = &latency["spec"]["triggers"][0];
    assert_eq!(
        (trigger["metricType"].as_str(), trigger["metadata"]["threshold"].as_str()),
        (Some("Value"), Some("0.5"))
    );
    let gpu = autoscaler("mistral-gpu-scaled", false);
    insta::assert_yaml_snapshot!("mistral-gpu-scaled_hpa", gpu);
    assert_eq!(gpu["spec"]["metrics"][0]["pods"]["metric"]["name"], "DCGM_FI_DEV_GPU_UTIL");
    assert_eq!(gpu["spec"]["minReplicas"], 1, "minReplicas defaults to 1");
}

#[test]
fn kueue_queue_and_workload_priority_are_labels_of_the_deployment_and_its_pods() {
    let deployment = deployment(&example_model(FILE, "llama-autoscaled"), true);
    for labels in [&deployment["metadata"]["labels"], &deployment["spec"]["template"]["metadata"]["labels"]] {
        assert_eq!(labels["kueue.x-k8s.io/queue-name"], "gpu-serving", "{labels}");
        assert_eq!(labels["kueue.x-k8s.io/priority-class"], "serving", "{labels}");
    }
    assert!(
        deployment["spec"]["template"]["spec"].get("priorityClassName").is_none(),
        "a Kueue WorkloadPriorityClass is not a pod PriorityClass"
    );
}

#[test]
fn hpas_scaled_objects_and_replica_less_deployments_validate_against_kubernetes_1_34_and_kedas_crd() {
    let dir = temp_dir("autoscalers");
    let mut documents = Vec::new();
    for name in NAMES {
        let model = example_model(FILE, name);
        for keda in [false, true] {
            documents.push(build_autoscaler(&model, keda, false).unwrap().to_value());
        }
        documents.push(agent_crds::crd::canonical(deployment(&model, true)));
    }
    let kinds = |kind: &str| documents.iter().filter(|d| d["kind"] == kind).count();
    assert_eq!((kinds("HorizontalPodAutoscaler"), kinds("ScaledObject")), (6, 2), "both autoscalers are checked");
    let text = documents.iter().map(|d| serde_yaml::to_string(d).unwrap()).collect::<Vec<_>>().join("---\n");
    std::fs::write(dir.join("autoscaled.yaml"), text).unwrap();
    let (ok, report) = validate_manifests(&[&dir]);
    assert!(ok, "{report}");
    assert!(report.contains(&format!("{} ok", documents.len())), "{report}");

    // The ScaledObject really meets KEDA's schema: a field it lacks fails.
    let mut wrong = build_autoscaler(&example_model(FILE, "gemma-autoscaled"), true, false).unwrap().to_value();
    wrong["spec"]["triggers"][0]["metricType"] = json!("Average");
    wrong["spec"]["maxReplicas"] = json!(3);
    std::fs::write(dir.join("autoscaled.yaml"), serde_yaml::to_string(&wrong).unwrap()).unwrap();
    let (ok, report) = validate_manifests(&[&dir]);
    std::fs::remove_dir_all(&dir).ok();
    assert!(!ok && report.contains("FAIL") && report.contains("ScaledObject"), "{report}");
}

#[test]
fn every_autoscaled_example_builds_an_autoscaler_of_its_kind() {
    for name in NAMES {
        let model = example_model(FILE, name);
        match build_autoscaler(&model, true, false).unwrap() {
            Autoscaler::Hpa(hpa) => assert!(
                model.spec.serve.as_ref().unwrap().autoscaling.as_ref().unwrap().prometheus_address.is_none(),
                "{name}: {hpa:?}"
            ),
            Autoscaler::Keda(scaled) => assert_eq!(scaled.spec.scale_target_ref.name, name),
        }
    }
}
