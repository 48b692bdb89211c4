//! Reconcile tests of multi-node served Models against kube-rs's mocked API server: the
//! LeaderWorkerSet applied with server-side apply where LWS's CRD is installed, nothing but a
//! clear `Ready` condition where it is not, readiness read from the LWS's groups, and the
//! workload of the other kind deleted when `serve.nodes` crosses 1.

mod support;

use std::sync::Arc;
use std::time::Duration;

use agent_crds::model::Model;
use agent_operator::context::Context;
use agent_operator::metrics::Metrics;
use agent_operator::model::{ModelContext, reconcile};
use http::Method;
use kube::runtime::controller::Action;
use serde_json::{Value, json};
use support::{Call, Cluster, example};

const MODEL: &str = "/apis/agent-operator.dev/v1alpha1/namespaces/models/models/llama-405b";
const LWS: &str = "/apis/leaderworkerset.x-k8s.io/v1/namespaces/models/leaderworkersets/llama-405b";
const DEPLOYMENT: &str = "/apis/apps/v1/namespaces/models/deployments/llama-405b";
const SERVICE: &str = "/api/v1/namespaces/models/services/llama-405b-model";
const LWS_CRD: &str =
    "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/leaderworkersets.leaderworkerset.x-k8s.io";
const UID: &str = "7c1d2e3f-1111-2222-3333-444455556666";

/// The multi-node example (2 pods of 8 GPUs per replica) on weights from an existing claim, so
/// nothing is downloaded first; `nodes` pods per replica.
fn model(nodes: i64) -> Value {
    let mut model = example("examples/multinode-model.yaml", "Model", "llama-405b");
    model["metadata"]["uid"] = json!(UID);
    model["metadata"]["generation"] = json!(1);
    model["spec"]["serve"]["uri"] = json!("pvc://weights/llama-405b");
    model["spec"]["serve"].as_object_mut().unwrap().remove("cache");
    model["spec"]["serve"]["nodes"] = json!(nodes);
    model
}

fn lws_crd() -> Value {
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "leaderworkersets.leaderworkerset.x-k8s.io"}})
}

fn owner() -> Value {
    json!([{"apiVersion": "agent-operator.dev/v1alpha1", "kind": "Model", "name": "llama-405b", "uid": UID,
            "controller": true}])
}

/// Reconciles the Model stored in `cluster` once; returns the action and every call.
async fn reconcile_once(cluster: &Cluster) -> (Action, Vec<Call>) {
    let (client, calls) = cluster.client();
    let base = Arc::new(Context::new(client, Arc::new(Metrics::default()), "runtime:test".into(), None));
    let ctx = Arc::new(ModelContext::new(base));
    let stored: Model = serde_json::from_value(cluster.get(MODEL).unwrap()).unwrap();
    let action = reconcile(Arc::new(stored), ctx.clone()).await.unwrap_or_else(|error| panic!("{error}"));
    drop(ctx);
    (action, tokio::time::timeout(Duration::from_secs(5), calls).await.unwrap().unwrap())
}

/// Writes to objects (events left out).
fn writes(calls: &[Call]) -> Vec<String> {
    calls
        .iter()
        .filter(|c| c.is_write() && !c.path.ends_with("/events"))
        .map(|c| format!("{} {}", c.method, c.path))
        .collect()
}

fn status(calls: &[Call]) -> &Value {
    &calls.iter().rev().find(|c| c.path.ends_with("/status")).expect("a status patch").body.as_ref().unwrap()["status"]
}

fn ready(status: &Value) -> (&str, &str, &str) {
    let ready = status["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Ready").unwrap();
    (ready["status"].as_str().unwrap(), ready["reason"].as_str().unwrap(), ready["message"].as_str().unwrap())
}

#[tokio::test]
async fn where_lws_is_installed_a_multinode_model_applies_its_leader_worker_set_with_server_side_apply() {
    let cluster = Cluster::default();
    cluster.put(model(2)).put(lws_crd());
    let (action, calls) = reconcile_once(&cluster).await;
    assert!(calls.iter().any(|c| c.method == Method::GET && c.path == LWS_CRD), "LWS is looked up, not assumed");
    let template = calls.iter().find(|c| c.path.contains("/resourceclaimtemplates/")).unwrap().path.clone();
    assert_eq!(
        writes(&calls),
        [
            format!("PATCH {template}"),
            format!("PATCH {LWS}"),
            format!("PATCH {SERVICE}"),
            format!("PATCH {MODEL}/status")
        ]
    );
    let apply = calls.iter().find(|c| c.is_write() && c.path == LWS).unwrap();
    assert!(apply.query.contains("fieldManager=agent-operator") && apply.query.contains("force=true"), "{apply:?}");
    let body = apply.body.as_ref().unwrap();
    assert_eq!(
        (body["apiVersion"].as_str(), body["kind"].as_str()),
        (Some("leaderworkerset.x-k8s.io/v1"), Some("LeaderWorkerSet"))
    );
    assert_eq!(body["spec"]["leaderWorkerTemplate"]["size"], 2);
    assert_eq!(body["spec"]["replicas"], 1, "the weights are on a claim: serving starts at once");
    assert_eq!(body["metadata"]["ownerReferences"][0]["uid"], UID);
    let service = calls.iter().find(|c| c.is_write() && c.path == SERVICE).unwrap().body.as_ref().unwrap();
    assert_eq!(service["spec"]["selector"]["leaderworkerset.sigs.k8s.io/worker-index"], "0");
    let status = status(&calls);
    assert_eq!(ready(status).1, "Starting");
    assert_eq!(
        status["selector"],
        "app.kubernetes.io/instance=llama-405b,app.kubernetes.io/name=model-server,leaderworkerset.sigs.k8s.io/worker-index=0",
        "the /scale selector counts one pod (the leader) per replica"
    );
    assert_eq!(action, Action::requeue(Duration::from_secs(30)), "progress is polled until Ready");
    assert!(cluster.get(DEPLOYMENT).is_none(), "no Deployment beside the LeaderWorkerSet");
}

#[tokio::test]
async fn ready_follows_the_leader_worker_sets_ready_groups_and_an_unchanged_model_writes_nothing() {
    let cluster = Cluster::default();
    cluster.put(model(2)).put(lws_crd());
    reconcile_once(&cluster).await;
    let mut set = cluster.get(LWS).expect("the LeaderWorkerSet was applied");
    set["status"] = json!({"replicas": 1, "readyReplicas": 1, "updatedReplicas": 1});
    cluster.put(set);
    let (_, calls) = reconcile_once(&cluster).await;
    assert_eq!(writes(&calls), [format!("PATCH {MODEL}/status")]);
    let status = status(&calls);
    assert_eq!(ready(status), ("True", "Serving", "1 of 1 replicas ready (groups of 2 pods)"));
    assert_eq!(status["replicas"], 1);
    let (action, calls) = reconcile_once(&cluster).await;
    assert_eq!(writes(&calls), Vec::<String>::new(), "nothing changed, nothing written");
    assert_eq!(action, Action::requeue(Duration::from_secs(600)));
}

#[tokio::test]
async fn without_lws_a_multinode_model_builds_nothing_and_ready_says_what_to_install() {
    let cluster = Cluster::default();
    cluster.put(model(2));
    let (action, calls) = reconcile_once(&cluster).await;
    assert_eq!(writes(&calls), [format!("PATCH {MODEL}/status")], "nothing is applied, not even the claim template");
    let (state, reason, message) = ready(status(&calls));
    assert_eq!((state, reason), ("False", "LeaderWorkerSetMissing"));
    assert!(message.contains("leaderworkersets.leaderworkerset.x-k8s.io"), "{message}");
    assert!(message.contains("https://lws.sigs.k8s.io/docs/installation/"), "{message}");
    assert!(message.contains("serve.nodes is 2"), "{message}");
    assert!(status(&calls).get("endpoint").is_none(), "nothing serves, so there is no endpoint");
    let warning = calls.iter().find(|c| c.path.ends_with("/events")).expect("a Warning event").body.as_ref().unwrap();
    assert_eq!(
        (warning["type"].as_str(), warning["reason"].as_str()),
        (Some("Warning"), Some("LeaderWorkerSetMissing"))
    );
    assert_eq!(action, Action::requeue(Duration::from_secs(60)), "the CRD is not watched, so it is looked up again");
}

#[tokio::test]
async fn going_from_one_node_to_several_deletes_the_deployment_before_the_leader_worker_set_is_applied() {
    let cluster = Cluster::default();
    cluster.put(model(1)).put(lws_crd());
    reconcile_once(&cluster).await;
    assert!(cluster.get(DEPLOYMENT).is_some(), "one node: a Deployment");
    cluster.put(model(2));
    let (_, calls) = reconcile_once(&cluster).await;
    let written = writes(&calls);
    let position =
        |write: &str| written.iter().position(|w| w == write).unwrap_or_else(|| panic!("{write}: {written:?}"));
    assert!(position(&format!("DELETE {DEPLOYMENT}")) < position(&format!("PATCH {LWS}")), "{written:?}");
    assert!(cluster.get(DEPLOYMENT).is_none());

    // And back: the LeaderWorkerSet goes before the Deployment is applied again.
    cluster.put(model(1));
    let (_, calls) = reconcile_once(&cluster).await;
    let written = writes(&calls);
    let position =
        |write: &str| written.iter().position(|w| w == write).unwrap_or_else(|| panic!("{write}: {written:?}"));
    assert!(position(&format!("DELETE {LWS}")) < position(&format!("PATCH {DEPLOYMENT}")), "{written:?}");
    assert!(!calls.iter().any(|c| c.path == LWS_CRD), "LWS is only looked up for multi-node Models");
    let service = calls.iter().find(|c| c.is_write() && c.path == SERVICE).unwrap().body.as_ref().unwrap();
    assert!(service["spec"]["selector"].get("leaderworkerset.sigs.k8s.io/worker-index").is_none());
}

#[tokio::test]
async fn workloads_of_the_same_name_that_the_model_does_not_own_are_left_alone() {
    let cluster = Cluster::default();
    cluster.put(model(2)).put(lws_crd());
    cluster.put(json!({"apiVersion": "apps/v1", "kind": "Deployment",
                       "metadata": {"name": "llama-405b", "namespace": "models"}, "spec": {"replicas": 1}}));
    let (_, calls) = reconcile_once(&cluster).await;
    assert!(!writes(&calls).iter().any(|w| w.starts_with("DELETE")), "{:?}", writes(&calls));
    let cluster = Cluster::default();
    cluster.put(model(1));
    let mut foreign = json!({"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet",
                             "metadata": {"name": "llama-405b", "namespace": "models"},
                             "spec": {"leaderWorkerTemplate": {"workerTemplate": {}}}});
    cluster.put(foreign.clone());
    let (_, calls) = reconcile_once(&cluster).await;
    assert!(!writes(&calls).iter().any(|w| w.starts_with("DELETE")), "{:?}", writes(&calls));
    foreign["metadata"]["ownerReferences"] = owner();
    cluster.put(foreign);
    let (_, calls) = reconcile_once(&cluster).await;
    assert!(writes(&calls).contains(&format!("DELETE {LWS}")), "{:?}", writes(&calls));
}
