//! Reconcile tests of agents that create agents, and of `Once` agents, against kube-rs's mocked
//! API server: a child outside its parent's bounds is refused, one inside them is built, a
//! finished child is deleted after the parent's TTL, and a finished `Once` task under
//! `completionPolicy: Suspend` scales the agent to zero without write loops.

mod support;

use std::sync::Arc;
use std::time::Duration;

use agent_crds::Agent;
use agent_crds::schedule::task_generation;
use agent_operator::agent::{error_policy, reconcile};
use agent_operator::context::Context;
use agent_operator::metrics::Metrics;
use http::Method;
use kube::runtime::controller::Action;
use serde_json::{Value, json};
use support::{Call, Cluster, example, ready, secret};

const FILE: &str = "examples/chat-agent.yaml";
const AGENTS: &str = "/apis/agent-operator.dev/v1alpha1/namespaces/demo/agents";
const PARENT_UID: &str = "5f0c4a2e-1111-2222-3333-444455556666";

/// The example helpdesk, delegating to at most one child with its clock tool.
fn parent() -> Value {
    let mut agent = example(FILE, "Agent", "helpdesk");
    agent["metadata"]["uid"] = json!(PARENT_UID);
    agent["metadata"]["generation"] = json!(1);
    agent["spec"]["delegation"] =
        json!({"enabled": true, "maxChildren": 1, "tools": ["clock"], "ttlSecondsAfterFinished": 600});
    agent
}

/// A child of the helpdesk, as its runtime would create it: labelled, owned, no Secrets.
fn child(name: &str, created: &str) -> Value {
    json!({
        "apiVersion": "agent-operator.dev/v1alpha1", "kind": "Agent",
        "metadata": {
            "name": name, "namespace": "demo", "uid": format!("uid-{name}"), "generation": 1,
            "creationTimestamp": created,
            "labels": {"agent-operator.dev/parent": "helpdesk", "agent-operator.dev/delegation-depth": "1"},
            "ownerReferences": [{
                "apiVersion": "agent-operator.dev/v1alpha1", "kind": "Agent", "name": "helpdesk",
                "uid": PARENT_UID, "controller": true
            }]
        },
        "spec": {
            "model": {"modelRef": {"name": "gpt-small"}},
            "tools": [{"name": "clock", "builtin": {"kind": "currentTime"}}]
        }
    })
}

fn cluster() -> Cluster {
    let cluster = Cluster::default();
    cluster.put(ready(example(FILE, "Model", "gpt-small"))).put(secret("demo", "openai", &["api-key"])).put(secret(
        "demo",
        "helpdesk-api",
        &["token"],
    ));
    cluster.put(parent());
    cluster
}

/// Runs one reconcile of `agent` against `cluster`; returns its result and every call made.
async fn run(cluster: &Cluster, agent: &Value) -> (Result<Action, String>, Vec<Call>) {
    cluster.put(agent.clone());
    let (client, calls) = cluster.client();
    let ctx = Arc::new(Context::new(client, Arc::new(Metrics::default()), "runtime:test".to_owned(), None));
    // The stores hold what the watches would have listed.
    ctx.caches.observe(&cluster.objects());
    let agent = Arc::new(serde_json::from_value::<Agent>(agent.clone()).unwrap());
    let result = reconcile(agent.clone(), ctx.clone()).await.map_err(|error| {
        error_policy(agent, &error, ctx.clone());
        error.to_string()
    });
    drop(ctx);
    (result, tokio::time::timeout(Duration::from_secs(5), calls).await.unwrap().unwrap())
}

fn writes(calls: &[Call]) -> Vec<String> {
    calls.iter().filter(|c| c.is_write()).map(|c| format!("{} {}", c.method, c.path)).collect()
}

fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["conditions"].as_array().unwrap().iter().find(|c| c["type"] == type_).unwrap_or_else(|| panic!("no {type_}"))
}

fn status_patch(calls: &[Call]) -> &Value {
    &calls.iter().find(|c| c.path.ends_with("/status")).expect("a status patch").body.as_ref().unwrap()["status"]
}

fn written<'a>(calls: &'a [Call], path_end: &str) -> &'a Value {
    calls
        .iter()
        .find(|c| c.is_write() && c.path.ends_with(path_end))
        .unwrap_or_else(|| panic!("no write to {path_end}"))
        .body
        .as_ref()
        .unwrap()
}

#[tokio::test]
async fn a_child_outside_its_parents_bounds_is_refused_with_a_warning_and_gets_no_pod() {
    let cluster = cluster();
    cluster.put(child("first", "2026-01-01T00:00:00Z"));
    let mut greedy = child("second", "2026-01-01T00:05:00Z");
    greedy["spec"]["tools"] = json!([{"name": "status-page", "builtin": {"kind": "httpGet", "allowedUrls": ["https://status.example.com/"]}}]);
    let (result, calls) = run(&cluster, &greedy).await;
    assert_eq!(result, Ok(Action::await_change()), "a refused child waits for its parent or siblings to change");
    assert_eq!(
        writes(&calls),
        ["POST /apis/events.k8s.io/v1/namespaces/demo/events", &format!("PATCH {AGENTS}/second/status")],
        "no child object is applied"
    );
    assert!(
        !calls.iter().any(|c| c.method == Method::GET && c.path.starts_with(AGENTS)),
        "the parent and siblings come from the Agent store: {calls:#?}"
    );
    let event = calls.iter().find(|c| c.path.ends_with("/events")).unwrap().body.as_ref().unwrap();
    assert_eq!((event["type"].as_str(), event["reason"].as_str()), (Some("Warning"), Some("DelegationRefused")));
    let status = status_patch(&calls);
    let accepted = condition(status, "Accepted");
    assert_eq!((accepted["status"].as_str(), accepted["reason"].as_str()), (Some("False"), Some("DelegationRefused")));
    assert_eq!(
        accepted["message"],
        "delegation refused: parent Agent helpdesk already has 1 children (delegation.maxChildren is 1); tool \
         status-page is not in the parent's delegation.tools"
    );
    assert_eq!(condition(status, "Ready")["reason"], "NotAccepted");

    let stored = cluster.get(&format!("{AGENTS}/second")).unwrap();
    let (_, again) = run(&cluster, &stored).await;
    assert_eq!(writes(&again), Vec::<String>::new(), "no repeated event or status write while nothing changes");

    cluster.remove(&format!("{AGENTS}/first"));
    let (_, after) = run(&cluster, &stored).await;
    let accepted = condition(status_patch(&after), "Accepted");
    assert_eq!(accepted["reason"], "DelegationRefused", "the tool is still outside the bounds");
    assert!(!accepted["message"].as_str().unwrap().contains("maxChildren"), "the freed place counts: {accepted}");
}

#[tokio::test]
async fn a_child_inside_its_parents_bounds_is_built_and_the_delegating_parent_runs_as_its_delegator() {
    let cluster = cluster();
    let (result, calls) = run(&cluster, &child("first", "2026-01-01T00:00:00Z")).await;
    assert_eq!(result, Ok(Action::requeue(Duration::from_secs(600))));
    assert_eq!(condition(status_patch(&calls), "Accepted")["status"], "True");
    let pod = &written(&calls, "/statefulsets/first")["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "first", "a child that does not delegate is no delegator");
    let role = written(&calls, "/roles/first");
    assert_eq!(role["rules"].as_array().unwrap().len(), 2, "it may only read itself and report its status");

    let (result, calls) = run(&cluster, &parent()).await;
    assert!(result.is_ok(), "{result:?}");
    assert!(writes(&calls).contains(&"PATCH /api/v1/namespaces/demo/serviceaccounts/helpdesk-delegator".to_owned()));
    let pod = &written(&calls, "/statefulsets/helpdesk")["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "helpdesk-delegator");
    let rules = &written(&calls, "/roles/helpdesk")["rules"];
    assert_eq!(
        rules[2],
        json!({"apiGroups": ["agent-operator.dev"], "resources": ["agents"], "verbs": ["create", "get", "list", "watch", "delete"]})
    );
    let binding = written(&calls, "/rolebindings/helpdesk");
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": "helpdesk-delegator", "namespace": "demo"}])
    );
    let config: Value = serde_json::from_str(
        written(&calls, "/configmaps/helpdesk-runtime")["data"]["runtime-config.json"].as_str().unwrap(),
    )
    .unwrap();
    assert_eq!(config["cluster"]["apiUrl"], "https://kubernetes.default.svc");
    assert_eq!(config["delegation"]["maxChildren"], 1);
}

#[tokio::test]
async fn a_finished_child_is_deleted_after_the_parents_ttl_and_looked_at_again_when_it_will_be_due() {
    let cluster = cluster();
    let now = jiff::Timestamp::now();
    let mut recent = child("first", "2026-01-01T00:00:00Z");
    let finished = now - jiff::SignedDuration::from_secs(60);
    recent["status"] =
        json!({"lastTask": {"id": "t1", "state": "completed", "origin": "parent", "finished": finished.to_string()}});
    let (result, calls) = run(&cluster, &recent).await;
    let Ok(action) = result else { panic!("{result:?}") };
    assert!(
        action != Action::requeue(Duration::from_secs(600)),
        "it comes back when the TTL passes, before the resync"
    );
    assert!(!writes(&calls).iter().any(|w| w.starts_with("DELETE")), "{:?}", writes(&calls));

    let mut old = recent.clone();
    let finished = now - jiff::SignedDuration::from_secs(601);
    old["status"]["lastTask"]["finished"] = json!(finished.to_string());
    let (result, calls) = run(&cluster, &old).await;
    assert_eq!(result, Ok(Action::await_change()));
    assert_eq!(
        writes(&calls),
        [format!("DELETE {AGENTS}/first"), "POST /apis/events.k8s.io/v1/namespaces/demo/events".to_owned()],
        "deleted, nothing applied, its parent told"
    );
    assert!(cluster.get(&format!("{AGENTS}/first")).is_none());
    let event = calls.iter().find(|c| c.path.ends_with("/events")).unwrap().body.as_ref().unwrap();
    assert_eq!(
        (event["reason"].as_str(), event["regarding"]["name"].as_str()),
        (Some("ChildExpired"), Some("helpdesk"))
    );

    let mut running = old.clone();
    running["status"]["lastTask"]["state"] = json!("running");
    let (_, calls) = run(&cluster, &running).await;
    assert!(!writes(&calls).iter().any(|w| w.starts_with("DELETE")), "a running task keeps its child");
}

#[tokio::test]
async fn a_finished_once_task_under_suspend_scales_the_agent_to_zero_and_a_second_reconcile_writes_nothing() {
    let cluster = Cluster::default();
    cluster.put(ready(example(FILE, "Model", "gpt-small"))).put(secret("demo", "openai", &["api-key"])).put(secret(
        "demo",
        "helpdesk-api",
        &["token"],
    ));
    let mut agent = example(FILE, "Agent", "helpdesk");
    agent["metadata"]["uid"] = json!(PARENT_UID);
    agent["metadata"]["generation"] = json!(1);
    let task = json!({"mode": "Once", "input": "summarise the open tickets", "completionPolicy": "Suspend"});
    agent["spec"]["task"] = task.clone();
    let (_, calls) = run(&cluster, &agent).await;
    assert_eq!(written(&calls, "/statefulsets/helpdesk")["spec"]["replicas"], 1, "the task has not run yet");

    // The runtime reports the task it ran for this generation; the status change wakes the agent.
    let mut reported = cluster.get(&format!("{AGENTS}/helpdesk")).unwrap();
    reported["status"]["lastTask"] = json!({
        "id": "t1", "state": "failed", "origin": "once", "taskGeneration": task_generation(&serde_json::from_value(task).unwrap()),
        "finished": "2026-01-01T00:00:00Z", "summary": "the model endpoint refused the request"
    });
    let (result, calls) = run(&cluster, &reported).await;
    assert_eq!(result, Ok(Action::requeue(Duration::from_secs(600))));
    let sts = written(&calls, "/statefulsets/helpdesk");
    assert_eq!(sts["spec"]["replicas"], 0);
    assert_eq!(sts["spec"]["persistentVolumeClaimRetentionPolicy"]["whenScaled"], "Retain", "the volume stays");
    let status = status_patch(&calls);
    assert!(status.get("lastTask").is_none(), "the operator never writes the runtime's fields: {status}");
    let succeeded = condition(status, "TaskSucceeded");
    assert_eq!(
        (succeeded["status"].as_str(), succeeded["reason"].as_str(), succeeded["message"].as_str()),
        (Some("False"), Some("TaskFailed"), Some("the model endpoint refused the request"))
    );
    let ready = condition(status, "Ready");
    assert_eq!((ready["status"].as_str(), ready["reason"].as_str()), (Some("False"), Some("TaskFinished")));

    let (_, again) = run(&cluster, &cluster.get(&format!("{AGENTS}/helpdesk")).unwrap()).await;
    assert_eq!(writes(&again), Vec::<String>::new(), "nothing changed, nothing written");
}
