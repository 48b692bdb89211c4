//! Reconcile tests of autoscaled served Models against kube-rs's mocked API server: the
//! autoscaler applied after the Deployment, the hand-over of `spec.replicas` (the operator never
//! fights the autoscaler), KEDA detected from its CRD, the autoscaler removed when autoscaling is
//! turned off, and pods waiting for Kueue's admission reported in `Ready`.

mod support;

use std::sync::Arc;
use std::time::Duration;

use agent_crds::model::Model;
use agent_operator::context::Context;
use agent_operator::metrics::Metrics;
use agent_operator::model::apply::HANDOFF_MANAGER;
use agent_operator::model::{ModelContext, reconcile};
use http::Method;
use serde_json::{Value, json};
use support::{Call, Cluster, example};

const MODEL: &str = "/apis/agent-operator.dev/v1alpha1/namespaces/models/models/qwen-latency";
const DEPLOYMENT: &str = "/apis/apps/v1/namespaces/models/deployments/qwen-latency";
const HPA: &str = "/apis/autoscaling/v2/namespaces/models/horizontalpodautoscalers/qwen-latency";
const SCALED_OBJECT: &str = "/apis/keda.sh/v1alpha1/namespaces/models/scaledobjects/qwen-latency";
const KEDA_CRD: &str = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/scaledobjects.keda.sh";

/// vLLM on weights from a claim (no download), scaled 2 to 6 on time to first token; with
/// `prometheus` it names the Prometheus KEDA would query.
fn model(prometheus: bool) -> Value {
    let mut model = example("examples/autoscaled-model.yaml", "Model", "qwen-latency");
    model["metadata"]["uid"] = json!("7c1d2e3f-1111-2222-3333-444455556666");
    model["metadata"]["generation"] = json!(1);
    if !prometheus {
        model["spec"]["serve"]["autoscaling"].as_object_mut().unwrap().remove("prometheusAddress");
    }
    model
}

/// Runs `times` reconciles of the Model stored in `cluster`, each reading it afresh; returns the
/// calls of each reconcile.
async fn reconcile_times(cluster: &Cluster, times: usize) -> Vec<Vec<Call>> {
    let mut rounds = Vec::new();
    for _ in 0..times {
        let (client, calls) = cluster.client();
        let base = Arc::new(Context::new(client, Arc::new(Metrics::default()), "runtime:test".into(), None));
        let ctx = Arc::new(ModelContext::new(base));
        let stored: Model = serde_json::from_value(cluster.get(MODEL).unwrap()).unwrap();
        reconcile(Arc::new(stored), ctx.clone()).await.unwrap_or_else(|error| panic!("{error}"));
        drop(ctx);
        rounds.push(tokio::time::timeout(Duration::from_secs(5), calls).await.unwrap().unwrap());
    }
    rounds
}

/// Writes to objects (events, published on `Ready` transitions, left out).
fn writes(calls: &[Call]) -> Vec<String> {
    calls
        .iter()
        .filter(|c| c.is_write() && !c.path.ends_with("/events"))
        .map(|c| format!("{} {}", c.method, c.path))
        .collect()
}

fn manager(call: &Call) -> Option<&str> {
    call.query.split('&').find_map(|pair| pair.strip_prefix("fieldManager="))
}

fn write_to<'a>(calls: &'a [Call], path: &str, field_manager: &str) -> Option<&'a Call> {
    calls.iter().find(|c| c.is_write() && c.path == path && manager(c) == Some(field_manager))
}

fn status(calls: &[Call]) -> &Value {
    &calls.iter().rev().find(|c| c.path.ends_with("/status")).expect("a status patch").body.as_ref().unwrap()["status"]
}

fn ready(status: &Value) -> (&str, &str, &str) {
    let ready = status["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Ready").unwrap();
    (ready["status"].as_str().unwrap(), ready["reason"].as_str().unwrap(), ready["message"].as_str().unwrap())
}

/// Marks the stored Deployment as scaled by the HPA to `replicas`: the controller manager's
/// update owns `spec.replicas`, the operator's apply owns the rest.
fn scale_by_hpa(cluster: &Cluster, replicas: i64) {
    let mut deployment = cluster.get(DEPLOYMENT).expect("the Deployment was applied");
    deployment["spec"]["replicas"] = json!(replicas);
    deployment["metadata"]["managedFields"] = json!([
        {"manager": "agent-operator", "operation": "Apply", "apiVersion": "apps/v1", "fieldsType": "FieldsV1",
         "fieldsV1": {"f:spec": {"f:selector": {}, "f:template": {}}}},
        {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "apps/v1", "fieldsType": "FieldsV1",
         "subresource": "scale", "fieldsV1": {"f:spec": {"f:replicas": {}}}}
    ]);
    deployment["status"] = json!({"observedGeneration": 1, "replicas": replicas, "readyReplicas": replicas});
    cluster.put(deployment);
}

fn crd(name: &str) -> Value {
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": name}})
}

/// The Model as controlling owner, as the operator sets it on its children.
fn owner() -> Value {
    json!([{"apiVersion": "agent-operator.dev/v1alpha1", "kind": "Model", "name": "qwen-latency",
            "uid": "7c1d2e3f-1111-2222-3333-444455556666", "controller": true}])
}

/// An HPA named after the Model, made by the operator (`owned`) or by someone else.
fn hpa(owned: bool) -> Value {
    let mut hpa = json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
           "metadata": {"name": "qwen-latency", "namespace": "models"},
           "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "qwen-latency"}, "maxReplicas": 6}});
    if owned {
        hpa["metadata"]["ownerReferences"] = owner();
    }
    hpa
}

#[tokio::test]
async fn without_keda_an_autoscaled_model_gets_an_hpa_after_its_deployment_which_leaves_replicas_to_it() {
    let cluster = Cluster::default();
    cluster.put(model(false));
    let calls = reconcile_times(&cluster, 1).await.remove(0);
    assert!(calls.iter().any(|c| c.method == Method::GET && c.path == KEDA_CRD), "KEDA is looked up, not assumed");
    let template = calls.iter().find(|c| c.path.contains("/resourceclaimtemplates/")).unwrap().path.clone();
    assert_eq!(
        writes(&calls),
        [
            format!("PATCH {template}"),
            format!("PATCH {DEPLOYMENT}"),
            "PATCH /api/v1/namespaces/models/services/qwen-latency-model".to_owned(),
            format!("PATCH {HPA}"),
            format!("PATCH {MODEL}/status"),
        ]
    );
    let deployment = write_to(&calls, DEPLOYMENT, "agent-operator").unwrap().body.as_ref().unwrap();
    assert!(deployment["spec"].get("replicas").is_none(), "the operator's apply does not own replicas");
    let hpa = write_to(&calls, HPA, "agent-operator").unwrap().body.as_ref().unwrap();
    assert_eq!(hpa["metadata"]["ownerReferences"][0]["name"], "qwen-latency");
    assert_eq!(hpa["spec"]["metrics"][0]["pods"]["metric"]["name"], "vllm_time_to_first_token_seconds");
    let status = status(&calls);
    assert_eq!(status["autoscaler"], "HorizontalPodAutoscaler/qwen-latency");
    assert_eq!(status["selector"], "app.kubernetes.io/instance=qwen-latency,app.kubernetes.io/name=model-server");
    assert_eq!(status["replicas"], 0, "the /scale subresource reads the Deployment's replicas");
}

#[tokio::test]
async fn replicas_the_operator_owned_are_handed_over_at_the_autoscalers_minimum_before_its_apply_drops_them() {
    let cluster = Cluster::default();
    cluster.put(model(false));
    cluster.put(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "qwen-latency", "namespace": "models", "managedFields": [
            {"manager": "agent-operator", "operation": "Apply", "apiVersion": "apps/v1", "fieldsType": "FieldsV1",
             "fieldsV1": {"f:spec": {"f:replicas": {}, "f:template": {}}}}
        ]},
        "spec": {"replicas": 1}
    }));
    let calls = reconcile_times(&cluster, 1).await.remove(0);
    let deployment_writes: Vec<&Call> = calls.iter().filter(|c| c.is_write() && c.path == DEPLOYMENT).collect();
    assert_eq!(deployment_writes.len(), 2, "{:?}", writes(&calls));
    let handoff = deployment_writes[0];
    assert_eq!(manager(handoff), Some(HANDOFF_MANAGER), "{handoff:?}");
    assert!(handoff.query.contains("force=true"), "{handoff:?}");
    assert_eq!(
        handoff.body.as_ref().unwrap(),
        &json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "qwen-latency"}, "spec": {"replicas": 2}}),
        "only replicas, raised to minReplicas"
    );
    let release = deployment_writes[1];
    assert_eq!(manager(release), Some("agent-operator"), "{release:?}");
    assert!(release.body.as_ref().unwrap()["spec"].get("replicas").is_none());
    assert_eq!(cluster.get(DEPLOYMENT).unwrap()["spec"]["replicas"], 2);
}

#[tokio::test]
async fn a_reconcile_after_the_hpa_changed_replicas_writes_nothing_to_the_deployment() {
    let cluster = Cluster::default();
    cluster.put(model(false));
    reconcile_times(&cluster, 1).await;
    scale_by_hpa(&cluster, 5);
    let rounds = reconcile_times(&cluster, 2).await;
    assert_eq!(writes(&rounds[0]), [format!("PATCH {MODEL}/status")], "only the new count is reported");
    let status = status(&rounds[0]);
    assert_eq!(status["replicas"], 5);
    assert_eq!(ready(status), ("True", "Serving", "5 of 5 replicas ready"));
    assert_eq!(writes(&rounds[1]), Vec::<String>::new(), "nothing changed, nothing written");
    assert_eq!(cluster.get(DEPLOYMENT).unwrap()["spec"]["replicas"], 5, "the HPA's count stands");
}

#[tokio::test]
async fn where_kedas_crd_is_installed_the_model_gets_a_scaled_object_and_its_former_hpa_is_deleted() {
    let cluster = Cluster::default();
    cluster.put(model(true)).put(crd("scaledobjects.keda.sh")).put(hpa(true));
    let calls = reconcile_times(&cluster, 1).await.remove(0);
    let written = writes(&calls);
    assert!(written.contains(&format!("PATCH {SCALED_OBJECT}")), "{written:?}");
    assert!(written.contains(&format!("DELETE {HPA}")), "{written:?}");
    let scaled = write_to(&calls, SCALED_OBJECT, "agent-operator").unwrap().body.as_ref().unwrap();
    let trigger = &scaled["spec"]["triggers"][0];
    assert_eq!(trigger["metadata"]["serverAddress"], "http://prometheus-operated.monitoring.svc:9090");
    assert_eq!(scaled["spec"]["scaleTargetRef"]["name"], "qwen-latency");
    assert_eq!(status(&calls)["autoscaler"], "ScaledObject/qwen-latency");
    assert!(cluster.get(HPA).is_none());
    // The same Model where KEDA is not installed: an HPA, and no ScaledObject is looked for.
    let cluster = Cluster::default();
    cluster.put(model(true));
    let calls = reconcile_times(&cluster, 1).await.remove(0);
    assert!(writes(&calls).contains(&format!("PATCH {HPA}")));
    assert!(!calls.iter().any(|c| c.path == SCALED_OBJECT), "no KEDA, no ScaledObject request");
}

#[tokio::test]
async fn turning_autoscaling_off_deletes_the_autoscalers_and_applies_serve_replicas_again() {
    let cluster = Cluster::default();
    let mut fixed = model(true);
    fixed["spec"]["serve"].as_object_mut().unwrap().remove("autoscaling");
    fixed["spec"]["serve"]["replicas"] = json!(3);
    fixed["status"] = json!({"autoscaler": "ScaledObject/qwen-latency"});
    let scaled = json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
                        "metadata": {"name": "qwen-latency", "namespace": "models", "ownerReferences": owner()},
                        "spec": {"scaleTargetRef": {"name": "qwen-latency"}, "triggers": []}});
    cluster.put(fixed.clone()).put(hpa(true)).put(scaled);
    let calls = reconcile_times(&cluster, 1).await.remove(0);
    let written = writes(&calls);
    assert!(
        written.contains(&format!("DELETE {HPA}")) && written.contains(&format!("DELETE {SCALED_OBJECT}")),
        "{written:?}"
    );
    let position = |write: &str| written.iter().position(|w| w == write).unwrap();
    assert!(
        position(&format!("DELETE {HPA}")) < position(&format!("PATCH {DEPLOYMENT}")),
        "the HPA goes before the Deployment takes replicas back: {written:?}"
    );
    assert!(!calls.iter().any(|c| c.path == KEDA_CRD), "KEDA is only looked up for autoscaled Models");
    let deployment = write_to(&calls, DEPLOYMENT, "agent-operator").unwrap().body.as_ref().unwrap();
    assert_eq!(deployment["spec"]["replicas"], 3, "serve.replicas wins again (the apply is forced)");
    assert!(status(&calls).get("autoscaler").is_none());
    // An HPA of the same name that the operator did not make is left alone.
    let cluster = Cluster::default();
    cluster.put(fixed).put(hpa(false));
    let calls = reconcile_times(&cluster, 1).await.remove(0);
    assert!(!writes(&calls).iter().any(|w| w.starts_with("DELETE")), "{:?}", writes(&calls));
    assert!(cluster.get(HPA).is_some());
}

#[tokio::test]
async fn pods_held_at_kueues_admission_gate_make_the_model_queued_in_its_local_queue() {
    let cluster = Cluster::default();
    let mut queued = model(false);
    queued["spec"]["serve"]["queueName"] = json!("gpu-serving");
    cluster.put(queued);
    cluster.put(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "qwen-latency-5d8f7c-x2k9p", "namespace": "models",
                     "labels": {"app.kubernetes.io/name": "model-server", "app.kubernetes.io/instance": "qwen-latency"}},
        "spec": {"containers": [{"name": "server"}], "schedulingGates": [{"name": "kueue.x-k8s.io/admission"}]},
        "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}
    }));
    let calls = reconcile_times(&cluster, 1).await.remove(0);
    let (state, reason, message) = ready(status(&calls));
    assert_eq!((state, reason), ("False", "Queued"));
    assert!(message.contains("LocalQueue gpu-serving") && message.contains("qwen-latency-5d8f7c-x2k9p"), "{message}");
    let deployment = write_to(&calls, DEPLOYMENT, "agent-operator").unwrap().body.as_ref().unwrap();
    assert_eq!(deployment["spec"]["template"]["metadata"]["labels"]["kueue.x-k8s.io/queue-name"], "gpu-serving");
}
