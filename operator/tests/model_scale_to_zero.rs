//! Reconcile tests of a scale-to-zero Model (`serve.autoscaling.minReplicas: 0`) against kube-rs's
//! mocked API server: idle past `scaleToZeroAfter` it is scaled to zero (and with KEDA its
//! ScaledObject paused there), an agent's wake request scales it back to one replica and starts
//! `status.coldStart`, which the next reconciles fill in from the wake's pod.

mod support;

use std::sync::Arc;
use std::time::Duration;

use agent_crds::model::Model;
use agent_operator::context::Context;
use agent_operator::metrics::Metrics;
use agent_operator::model::scale_to_zero::{KEDA_PAUSED_REPLICAS, SCALE_MANAGER};
use agent_operator::model::{ModelContext, reconcile};
use jiff::{Timestamp, ToSpan};
use serde_json::{Value, json};
use support::{Call, Cluster};

const MODEL: &str = "/apis/agent-operator.dev/v1alpha1/namespaces/demo/models/gemma-on-demand";
const DEPLOYMENT: &str = "/apis/apps/v1/namespaces/demo/deployments/gemma-on-demand";
const HPA: &str = "/apis/autoscaling/v2/namespaces/demo/horizontalpodautoscalers/gemma-on-demand";
const SCALED_OBJECT: &str = "/apis/keda.sh/v1alpha1/namespaces/demo/scaledobjects/gemma-on-demand";

/// The example's scale-to-zero Model, on weights from a claim (no download, so its cache is
/// ready), made `age` ago; with `prometheus` it would get a ScaledObject where KEDA runs.
fn model(age: jiff::Span, prometheus: bool) -> Value {
    let mut model = support::example("examples/scale-to-zero-model.yaml", "Model", "gemma-on-demand");
    model["metadata"]["uid"] = json!("5e2d0a11-1111-2222-3333-444455556666");
    model["metadata"]["generation"] = json!(1);
    model["metadata"]["creationTimestamp"] = json!(ago(age));
    model["spec"]["serve"]["uri"] = json!("pvc://shared-weights/gemma-3-270m-Q8_0.gguf");
    model["spec"]["serve"].as_object_mut().unwrap().remove("cache");
    if prometheus {
        model["spec"]["serve"]["autoscaling"]["prometheusAddress"] = json!("http://prometheus.monitoring.svc:9090");
    }
    model
}

fn ago(span: jiff::Span) -> String {
    Timestamp::now().checked_sub(span).unwrap().to_string()
}

/// The engine Deployment at `replicas`, its count owned by an update (the autoscaler's or the
/// operator's scale), as after the hand-over.
fn deployment(replicas: i64) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "gemma-on-demand", "namespace": "demo", "managedFields": [
            {"manager": "agent-operator", "operation": "Apply", "apiVersion": "apps/v1", "fieldsType": "FieldsV1",
             "fieldsV1": {"f:spec": {"f:selector": {}, "f:template": {}}}},
            {"manager": SCALE_MANAGER, "operation": "Update", "apiVersion": "apps/v1", "fieldsType": "FieldsV1",
             "fieldsV1": {"f:spec": {"f:replicas": {}}}}]},
        "spec": {"replicas": replicas},
        "status": {"observedGeneration": 1, "replicas": replicas, "readyReplicas": replicas}})
}

/// An agent of the Model whose runtime asked it to wake `age` ago.
fn waking_agent(age: jiff::Span) -> Value {
    json!({"apiVersion": "agent-operator.dev/v1alpha1", "kind": "Agent",
        "metadata": {"name": "night-owl", "namespace": "demo"},
        "spec": {"model": {"modelRef": {"name": "gemma-on-demand"}}},
        "status": {"boundModel": "gemma-on-demand", "modelDemand": {
            "model": "gemma-on-demand", "lastRequestAt": ago(age), "wakeRequestedAt": ago(age)}}})
}

async fn reconcile_once(cluster: &Cluster) -> Vec<Call> {
    let (client, calls) = cluster.client();
    let base = Arc::new(Context::new(client, Arc::new(Metrics::default()), "runtime:test".into(), None));
    let ctx = Arc::new(ModelContext::new(base));
    let stored: Model = serde_json::from_value(cluster.get(MODEL).unwrap()).unwrap();
    reconcile(Arc::new(stored), ctx.clone()).await.unwrap_or_else(|error| panic!("{error}"));
    drop(ctx);
    tokio::time::timeout(Duration::from_secs(5), calls).await.unwrap().unwrap()
}

fn manager(call: &Call) -> Option<&str> {
    call.query.split('&').find_map(|pair| pair.strip_prefix("fieldManager="))
}

/// The replica counts the operator's scale wrote to the Deployment.
fn scaled_to(calls: &[Call]) -> Vec<Value> {
    calls
        .iter()
        .filter(|c| c.is_write() && c.path == DEPLOYMENT && manager(c) == Some(SCALE_MANAGER))
        .map(|c| c.body.as_ref().unwrap()["spec"]["replicas"].clone())
        .collect()
}

fn body<'a>(calls: &'a [Call], path: &str) -> &'a Value {
    calls.iter().rev().find(|c| c.is_write() && c.path == path).expect("a write").body.as_ref().unwrap()
}

fn ready(status: &Value) -> (String, String, String) {
    let ready = status["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Ready").unwrap();
    let text = |key: &str| ready[key].as_str().unwrap().to_owned();
    (text("status"), text("reason"), text("message"))
}

#[tokio::test]
async fn an_idle_model_is_scaled_to_zero_and_stays_ready_as_idle() {
    let cluster = Cluster::default();
    cluster.put(model(1.hour(), false)).put(deployment(2));
    cluster.put(waking_agent(20.minutes()));
    let calls = reconcile_once(&cluster).await;
    assert_eq!(scaled_to(&calls), [json!(0)], "idle for longer than scaleToZeroAfter (10m)");
    assert_eq!(body(&calls, HPA)["spec"]["minReplicas"], 1, "the HPA works above one replica");
    let status = &body(&calls, &format!("{MODEL}/status"))["status"];
    let (state, reason, message) = ready(status);
    assert_eq!((state.as_str(), reason.as_str()), ("True", "Idle"), "{message}");
    assert!(message.contains("the next agent request wakes it"), "{message}");
    assert!(calls.iter().any(|c| c.path.ends_with("/events")), "scaling to zero is announced");

    // Asleep and still idle: nothing is scaled again.
    cluster.put(deployment(0));
    let calls = reconcile_once(&cluster).await;
    assert!(scaled_to(&calls).is_empty());
}

#[tokio::test]
async fn a_model_in_use_stays_up_and_looks_again_when_its_idle_period_would_end() {
    let cluster = Cluster::default();
    cluster.put(model(1.hour(), false)).put(deployment(1)).put(waking_agent(2.minutes()));
    let (client, calls) = cluster.client();
    let base = Arc::new(Context::new(client, Arc::new(Metrics::default()), "runtime:test".into(), None));
    let stored: Model = serde_json::from_value(cluster.get(MODEL).unwrap()).unwrap();
    let action = reconcile(Arc::new(stored), Arc::new(ModelContext::new(base))).await.unwrap();
    let calls = tokio::time::timeout(Duration::from_secs(5), calls).await.unwrap().unwrap();
    assert!(scaled_to(&calls).is_empty(), "an agent called it two minutes ago");
    let text = format!("{action:?}");
    // Eight minutes (and a second) left of ten: requeued then, not at the ten-minute resync.
    assert!(text.contains("requeue_after: Some(481") || text.contains("requeue_after: Some(480"), "{text}");
}

#[tokio::test]
async fn a_wake_request_scales_to_one_replica_and_the_cold_start_timeline_follows_the_pod() {
    let cluster = Cluster::default();
    cluster.put(model(1.hour(), false)).put(deployment(0)).put(waking_agent(1.second()));
    let calls = reconcile_once(&cluster).await;
    assert_eq!(scaled_to(&calls), [json!(1)]);
    let status = &body(&calls, &format!("{MODEL}/status"))["status"];
    let (state, reason, message) = ready(status);
    assert_eq!((state.as_str(), reason.as_str()), ("True", "Waking"), "{message}");
    assert_eq!(status["coldStart"]["phase"], "Scheduling");
    let requested: Timestamp = status["coldStart"]["requestedAt"].as_str().unwrap().parse().unwrap();
    assert!(Timestamp::now().duration_since(requested).as_secs() < 5, "requested now: {requested}");

    // The wake's pod: scheduled 2 s after the request, its engine started 30 s later (image
    // pulled), ready 60 s after that (weights loaded).
    let at = |seconds: i64| requested.checked_add(seconds.seconds()).unwrap().to_string();
    cluster.put(json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "gemma-on-demand-6f7d9-x2k4p", "namespace": "demo", "creationTimestamp": at(1),
                     "labels": {"app.kubernetes.io/instance": "gemma-on-demand", "app.kubernetes.io/name": "model-server"}},
        "status": {"phase": "Running",
            "conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": at(2)},
                           {"type": "Ready", "status": "True", "lastTransitionTime": at(92)}],
            "containerStatuses": [{"name": "engine", "ready": true, "restartCount": 0, "image": "e", "imageID": "",
                                   "state": {"running": {"startedAt": at(32)}}}]}}));
    let mut up = deployment(1);
    up["status"]["readyReplicas"] = json!(1);
    cluster.put(up);
    let calls = reconcile_once(&cluster).await;
    assert!(scaled_to(&calls).is_empty(), "it is up");
    let status = &body(&calls, &format!("{MODEL}/status"))["status"];
    let cold_start = &status["coldStart"];
    assert_eq!(cold_start["phase"], "Ready");
    assert_eq!(cold_start["pod"], "gemma-on-demand-6f7d9-x2k4p");
    assert_eq!(
        [
            &cold_start["schedulingSeconds"],
            &cold_start["imageSeconds"],
            &cold_start["weightsSeconds"],
            &cold_start["totalSeconds"]
        ],
        [&json!(2), &json!(30), &json!(60), &json!(92)]
    );
    assert_eq!(ready(status).1, "Serving");
}

#[tokio::test]
async fn with_keda_an_idle_model_is_paused_at_zero_and_a_wake_unpauses_it() {
    let cluster = Cluster::default();
    cluster.put(model(1.hour(), true)).put(deployment(1));
    cluster.put(json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                       "metadata": {"name": "scaledobjects.keda.sh"}}));
    let calls = reconcile_once(&cluster).await;
    let scaled = body(&calls, SCALED_OBJECT);
    assert_eq!(scaled["metadata"]["annotations"][KEDA_PAUSED_REPLICAS], "0");
    assert_eq!(scaled["spec"]["minReplicaCount"], 1);
    assert_eq!(scaled_to(&calls), [json!(0)]);

    cluster.put(deployment(0)).put(waking_agent(1.second()));
    let calls = reconcile_once(&cluster).await;
    let scaled = body(&calls, SCALED_OBJECT);
    assert!(scaled["metadata"]["annotations"].get(KEDA_PAUSED_REPLICAS).is_none(), "{scaled}");
    assert_eq!(scaled_to(&calls), [json!(1)]);
}
