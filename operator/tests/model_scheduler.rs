//! The scheduler against kube-rs's mocked API server: an Agent with a model selector is bound to
//! a Ready matching Model with the most spare capacity, keeps its binding, is rebound when the
//! bound Model disappears, and is told why when nothing matches.

mod support;

use std::sync::Arc;
use std::time::Duration;

use agent_crds::Agent;
use agent_operator::agent::reconcile;
use agent_operator::context::Context;
use agent_operator::metrics::Metrics;
use http::Method;
use kube::runtime::controller::Action;
use serde_json::{Value, json};
use support::{Call, Cluster, example};

const AGENTS: &str = "/apis/agent-operator.dev/v1alpha1/namespaces/models/agents";

/// The example agent that selects a model with chat, tools and 16k context.
fn assistant(bound: Option<&str>) -> Value {
    let mut agent = example("examples/served-model.yaml", "Agent", "assistant");
    agent["metadata"]["uid"] = json!("1a2b3c4d-1111-2222-3333-444455556666");
    agent["metadata"]["generation"] = json!(1);
    if let Some(bound) = bound {
        agent["status"] = json!({"boundModel": bound});
    }
    agent
}

/// An endpoint Model with the given readiness, capabilities, capacity and bound agents.
fn model(name: &str, ready: bool, tools: bool, max_concurrency: Option<i64>, bound_agents: i64) -> Value {
    let mut capabilities = json!({"chat": true, "tools": tools, "contextLength": 32768});
    if let Some(max) = max_concurrency {
        capabilities["maxConcurrency"] = json!(max);
    }
    json!({
        "apiVersion": "agent-operator.dev/v1alpha1", "kind": "Model",
        "metadata": {"name": name, "namespace": "models"},
        "spec": {"endpoint": {"baseUrl": format!("http://{name}.example/v1"), "model": name}, "capabilities": capabilities},
        "status": {
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" },
                            "reason": "Test", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}],
            "boundAgents": bound_agents
        }
    })
}

async fn run(cluster: &Cluster, agent: &Value) -> (Result<Action, String>, Vec<Call>) {
    cluster.put(agent.clone());
    let (client, calls) = cluster.client();
    let ctx = Arc::new(Context::new(client, Arc::new(Metrics::default()), "runtime:test".into(), None));
    // The stores hold what the watches would have listed.
    ctx.caches.observe(&cluster.objects());
    let agent: Agent = serde_json::from_value(agent.clone()).unwrap();
    let result = reconcile(Arc::new(agent), ctx.clone()).await.map_err(|e| e.to_string());
    drop(ctx);
    (result, tokio::time::timeout(Duration::from_secs(5), calls).await.unwrap().unwrap())
}

fn status_patch(calls: &[Call]) -> &Value {
    &calls.iter().find(|c| c.path.ends_with("/status")).expect("a status patch").body.as_ref().unwrap()["status"]
}

fn model_ready(status: &Value) -> &Value {
    status["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "ModelReady").unwrap()
}

/// The model base URL the agent's pod is configured with.
fn configured_base_url(calls: &[Call]) -> String {
    let config_map = calls
        .iter()
        .find(|c| c.is_write() && c.path.ends_with("/configmaps/assistant-runtime"))
        .expect("the RuntimeConfig is applied");
    let text = config_map.body.as_ref().unwrap()["data"]["runtime-config.json"].as_str().unwrap();
    let config: Value = serde_json::from_str(text).unwrap();
    config["model"]["baseUrl"].as_str().unwrap().to_owned()
}

fn cluster_with(models: &[Value]) -> Cluster {
    let cluster = Cluster::default();
    for model in models {
        cluster.put(model.clone());
    }
    cluster
}

#[tokio::test]
async fn an_agent_is_bound_to_the_ready_matching_model_with_the_most_spare_capacity() {
    let cluster = cluster_with(&[
        model("busy", true, true, Some(8), 7),
        model("roomy", true, true, Some(8), 2),
        model("no-tools", true, false, Some(100), 0),
        model("down", false, true, Some(100), 0),
    ]);
    let (result, calls) = run(&cluster, &assistant(None)).await;
    assert_eq!(result, Ok(Action::requeue(Duration::from_secs(600))));
    let status = status_patch(&calls);
    assert_eq!(status["boundModel"], "roomy");
    assert_eq!(model_ready(status)["status"], "True");
    assert_eq!(configured_base_url(&calls), "http://roomy.example/v1", "the pod talks to the bound Model");
    assert!(!calls.iter().any(|c| c.method == Method::POST), "a first binding is not an event");
}

#[tokio::test]
async fn an_existing_binding_is_kept_while_the_model_still_matches() {
    let cluster = cluster_with(&[model("busy", true, true, Some(8), 7), model("roomy", true, true, Some(8), 2)]);
    let (_, calls) = run(&cluster, &assistant(Some("busy"))).await;
    assert_eq!(status_patch(&calls)["boundModel"], "busy");
    assert_eq!(configured_base_url(&calls), "http://busy.example/v1");
}

#[tokio::test]
async fn an_agent_whose_bound_model_was_deleted_is_rebound_and_told_so() {
    let cluster = cluster_with(&[model("roomy", true, true, Some(8), 2)]);
    let (_, first) = run(&cluster, &assistant(Some("busy"))).await;
    let status = status_patch(&first);
    assert_eq!(status["boundModel"], "roomy");
    assert_eq!(configured_base_url(&first), "http://roomy.example/v1");
    let event = first.iter().find(|c| c.method == Method::POST && c.path.ends_with("/events")).expect("an event");
    let event = event.body.as_ref().unwrap();
    assert_eq!((event["type"].as_str(), event["reason"].as_str()), (Some("Normal"), Some("ModelRebound")));
    assert!(event["note"].as_str().unwrap().contains("Model busy is gone"), "{event}");

    // Once rebound, nothing more happens.
    let stored = cluster.get(&format!("{AGENTS}/assistant")).unwrap();
    let (_, second) = run(&cluster, &stored).await;
    assert!(!second.iter().any(Call::is_write), "{second:#?}");
}

#[tokio::test]
async fn an_unbindable_agent_gets_model_ready_false_with_each_models_reason() {
    let cluster = cluster_with(&[model("no-tools", true, false, None, 0), model("down", false, true, None, 0)]);
    let (result, calls) = run(&cluster, &assistant(Some("deleted"))).await;
    assert_eq!(result, Ok(Action::await_change()), "the Model watch wakes the agent when a Model changes");
    let status = status_patch(&calls);
    let condition = model_ready(status);
    assert_eq!((condition["status"].as_str(), condition["reason"].as_str()), (Some("False"), Some("NoMatchingModel")));
    assert_eq!(
        condition["message"],
        "no Ready Model in the namespace matches the selector: down (not Ready), no-tools (lacks Tools); the bound Model deleted no longer exists"
    );
    assert!(status.get("boundModel").is_none_or(Value::is_null), "an unbindable agent is bound to nothing: {status}");
    assert!(
        calls.iter().filter(|c| c.is_write()).all(|c| c.path.ends_with("/status")),
        "nothing is applied without a model"
    );
}
