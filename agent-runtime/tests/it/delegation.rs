//! Agents that create agents, driven by a scripted model that calls the delegation tools: in
//! local mode the child runs in the same process (created, tasked, answering, kept across a
//! restart, deleted); in a cluster the child is an Agent created through the Kubernetes API
//! (recorded by a stand-in API server: owner reference, labels, bounded fields, the pod's
//! token), and every bound the runtime checks is refused with a reason the model reads, as is an
//! API server's refusal (the admission policy's message).

use std::sync::{Arc, Mutex};

use agent_crds::runtime_config::ClusterAccess;
use agent_runtime::http::AppState;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::{Value, json};

use crate::support::{Reply, Upstream, config, post, quick_options, send, state, temp_dir};

const DELEGATING: &str = "  tools:\n  - name: clock\n    builtin: {kind: currentTime}\n  delegation: {enabled: true, maxChildren: 1, tools: [clock]}\n";

fn call(tool: &str, arguments: &Value) -> Reply {
    Reply::ToolCall(tool.into(), arguments.to_string())
}

async fn ask(agent: &AppState, question: &str) -> Value {
    let body = json!({"model": "x", "messages": [{"role": "user", "content": question}]});
    let (status, answer) = send(agent, post("/v1/chat/completions", &body)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    serde_json::from_str(&answer).unwrap()
}

#[tokio::test]
async fn in_local_mode_a_child_is_created_tasked_kept_across_a_restart_and_deleted() {
    let researcher = json!({"name": "researcher", "system_prompt": "You find facts.", "tools": ["clock"]});
    let upstream = Upstream::start(vec![
        call("create_agent", &researcher),
        call("delegate_task", &json!({"agent": "researcher", "input": "What is the moon made of?"})),
        Reply::Text("Rock, mostly.".into()),
        Reply::Text("My researcher says: rock.".into()),
    ])
    .await;
    let dir = temp_dir("delegation-local");
    let lead = state(config(&upstream.base_url(), DELEGATING, &dir, "Chat"), &quick_options());
    let tools = lead.agent.tools().listing().tools;
    let delegation: Vec<&str> = tools.iter().filter(|t| t.source == "delegation").map(|t| t.name.as_str()).collect();
    assert_eq!(delegation, ["create_agent", "delegate_task", "delete_agent", "get_task_result", "list_agents"]);

    let answer = ask(&lead, "Find out what the moon is made of.").await;
    assert_eq!(answer["choices"][0]["message"]["content"], "My researcher says: rock.");
    let results = upstream.tool_results();
    assert!(
        results[0].starts_with("created child agent helper-researcher (model scripted, tools: [clock])"),
        "{results:?}"
    );
    assert_eq!(results[1], "Rock, mostly.", "the child's answer is the tool result");
    let child_call = &upstream.received()[2];
    assert_eq!(child_call["messages"][0]["content"], "You find facts.", "the child has its own persona");
    let child_tools: Vec<&str> =
        child_call["tools"].as_array().unwrap().iter().map(|t| t["function"]["name"].as_str().unwrap()).collect();
    assert_eq!(child_tools, ["current_time"], "the child gets only the tools it was given");

    // A restart of the parent brings the child back; the bounds still hold.
    drop(lead);
    let upstream = Upstream::start(vec![
        call("list_agents", &json!({})),
        call("create_agent", &json!({"name": "second", "system_prompt": "x"})),
        call("create_agent", &json!({"name": "other", "system_prompt": "x", "can_delegate": true})),
        call("delete_agent", &json!({"agent": "researcher"})),
        call("list_agents", &json!({})),
        call("create_agent", &json!({"name": "planner", "system_prompt": "x", "can_delegate": true})),
        call("create_agent", &json!({"name": "coder", "system_prompt": "x", "tools": ["shell"]})),
        Reply::Text("cleaned up".into()),
    ])
    .await;
    let lead = state(config(&upstream.base_url(), DELEGATING, &dir, "Chat"), &quick_options());
    ask(&lead, "Tidy up your children.").await;
    let results = upstream.tool_results();
    let listed: Value = serde_json::from_str(&results[0]).unwrap();
    assert_eq!(
        listed,
        json!([{"name": "helper-researcher", "model": "scripted", "tools": ["clock"], "state": "ready"}])
    );
    assert_eq!(results[1], "error: refused: this agent already has 1 children, its maxChildren; delete one first");
    assert!(results[2].contains("already has 1 children"), "{}", results[2]);
    assert_eq!(results[3], "deleted child agent helper-researcher");
    assert_eq!(results[4], "[]");
    assert!(results[5].contains("cannot delegate: that would exceed this agent's maxDepth"), "{}", results[5]);
    assert!(results[6].contains("tool \"shell\" cannot be given to a child; allowed: clock"), "{}", results[6]);
    assert!(!dir.join("children/helper-researcher").exists(), "a deleted local child's data goes with it");
}

/// What the stand-in API server saw.
#[derive(Clone, Default)]
struct Seen {
    requests: Arc<Mutex<Vec<Value>>>,
    agents: Arc<Mutex<Vec<Value>>>,
}

async fn create(
    State(seen): State<Seen>,
    Path(namespace): Path<String>,
    Query(query): Query<Value>,
    headers: HeaderMap,
    Json(agent): Json<Value>,
) -> impl IntoResponse {
    let token = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    seen.requests
        .lock()
        .unwrap()
        .push(json!({"create": agent, "namespace": namespace, "query": query, "token": token}));
    if agent["metadata"]["name"].as_str().unwrap_or_default().contains("forbidden") {
        let message = "agents.agent-operator.dev \"x\" is forbidden: ValidatingAdmissionPolicy 'agent-operator-delegation' denied request: a child may not reference Secrets";
        let status =
            json!({"kind": "Status", "status": "Failure", "reason": "Forbidden", "code": 403, "message": message});
        return (StatusCode::FORBIDDEN, Json(status));
    }
    seen.agents.lock().unwrap().push(agent.clone());
    (StatusCode::CREATED, Json(agent))
}

async fn list(State(seen): State<Seen>, Query(query): Query<Value>) -> Json<Value> {
    seen.requests.lock().unwrap().push(json!({"list": query}));
    Json(json!({"kind": "AgentList", "items": *seen.agents.lock().unwrap()}))
}

async fn status(State(seen): State<Seen>, Query(query): Query<Value>, headers: HeaderMap, body: String) -> StatusCode {
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let body: Value = serde_json::from_str(&body).unwrap();
    seen.requests.lock().unwrap().push(json!({"status": body, "query": query, "contentType": content_type}));
    StatusCode::OK
}

async fn stand_in_api_server() -> (String, Seen) {
    let seen = Seen::default();
    let agents = "/apis/agent-operator.dev/v1alpha1/namespaces/{namespace}/agents";
    let app = axum::Router::new()
        .route(agents, axum::routing::post(create).get(list))
        .route(&format!("{agents}/{{name}}/status"), axum::routing::patch(status))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

fn in_cluster(upstream: &Upstream, api_url: &str, name: &str) -> AppState {
    let dir = temp_dir(name);
    std::fs::write(dir.join("token"), "pod-token\n").unwrap();
    let mut config = config(&upstream.base_url(), DELEGATING, &dir, "Chat");
    config.agent.uid = Some("uid-of-helper".into());
    config.cluster = Some(ClusterAccess {
        api_url: api_url.to_owned(),
        token_file: dir.join("token").display().to_string(),
        ca_file: dir.join("no-ca-over-http").display().to_string(),
    });
    state(config, &quick_options())
}

#[tokio::test]
async fn in_a_cluster_the_child_is_an_owned_bounded_agent_created_with_the_pods_token() {
    let (api_url, seen) = stand_in_api_server().await;
    let upstream = Upstream::start(vec![
        call("create_agent", &json!({"name": "forbidden", "system_prompt": "x"})),
        call("create_agent", &json!({"name": "shell", "system_prompt": "x", "model": "gpt-huge"})),
        call("create_agent", &json!({"name": "researcher", "system_prompt": "You find facts.", "tools": ["clock"]})),
        call("create_agent", &json!({"name": "writer", "system_prompt": "x"})),
        call("list_agents", &json!({})),
        Reply::Text("one researcher".into()),
    ])
    .await;
    let lead = in_cluster(&upstream, &api_url, "delegation-cluster");
    ask(&lead, "Build a team.").await;
    let results = upstream.tool_results();
    assert!(
        results[0].contains("denied request: a child may not reference Secrets"),
        "the API server's reason: {}",
        results[0]
    );
    assert!(results[1].contains("model \"gpt-huge\" is not allowed for children; allowed: scripted"), "{}", results[1]);
    assert!(results[2].starts_with("created child agent helper-researcher"), "{}", results[2]);
    assert!(results[3].contains("already has 1 children"), "{}", results[3]);
    let listed: Value = serde_json::from_str(&results[4]).unwrap();
    assert_eq!(listed[0]["name"], "helper-researcher");

    let requests = seen.requests.lock().unwrap().clone();
    let created: Vec<&Value> = requests.iter().filter(|r| r.get("create").is_some()).collect();
    assert_eq!(created.len(), 2, "refused bounds never reach the API server: {created:#?}");
    let made = &created[1];
    assert_eq!((made["namespace"].as_str(), made["token"].as_str()), (Some("test"), Some("Bearer pod-token")));
    assert_eq!(made["query"]["fieldManager"], "agent-runtime");
    let agent = &made["create"];
    assert_eq!(
        (agent["apiVersion"].as_str(), agent["kind"].as_str()),
        (Some("agent-operator.dev/v1alpha1"), Some("Agent"))
    );
    assert_eq!(
        agent["metadata"]["ownerReferences"],
        json!([{"apiVersion": "agent-operator.dev/v1alpha1", "kind": "Agent", "name": "helper", "uid": "uid-of-helper", "controller": true}])
    );
    let labels = &agent["metadata"]["labels"];
    assert_eq!(
        (labels["agent-operator.dev/parent"].as_str(), labels["agent-operator.dev/delegation-depth"].as_str()),
        (Some("helper"), Some("1"))
    );
    assert_eq!(agent["metadata"]["annotations"]["kustomize.toolkit.fluxcd.io/prune"], "disabled");
    assert_eq!(agent["spec"]["model"]["modelRef"]["name"], "scripted");
    assert_eq!(agent["spec"]["tools"], json!([{"name": "clock", "builtin": {"kind": "currentTime"}}]));
    assert_eq!(agent["spec"]["persona"]["systemPrompt"], "You find facts.");
    assert_eq!(agent["spec"]["api"]["allowedNamespaces"], json!(["test"]));
    assert!(agent["spec"].get("delegation").is_none(), "a child does not delegate unless asked and allowed");
    let listing = requests.iter().find_map(|r| r.get("list")).unwrap();
    assert_eq!(listing["labelSelector"], "agent-operator.dev/parent=helper");
}

#[tokio::test]
async fn the_runtime_reports_tools_tokens_and_the_last_task_to_its_agents_status() {
    let (api_url, seen) = stand_in_api_server().await;
    let upstream = Upstream::start(vec![Reply::Text("the report".into())]).await;
    let lead = in_cluster(&upstream, &api_url, "delegation-status");
    let access = lead.agent.config.cluster.clone().unwrap();
    tokio::spawn(agent_runtime::cluster::status::report_status(
        agent_runtime::cluster::KubeApi::new(&access).unwrap(),
        lead.clone(),
    ));
    let (status, task) = send(&lead, post("/v1/tasks", &json!({"input": "write the report", "wait": true}))).await;
    assert_eq!(status, StatusCode::OK, "{task}");
    let task: Value = serde_json::from_str(&task).unwrap();
    let reported =
        || seen.requests.lock().unwrap().iter().rev().find_map(|r| r.get("status").cloned().map(|s| (s, r.clone())));
    crate::support::peers::eventually(10, "the finished task is reported", || async {
        reported().is_some_and(|(body, _)| body["status"]["lastTask"]["state"] == "completed")
    })
    .await;
    let (body, request) = reported().unwrap();
    assert_eq!(request["contentType"], "application/apply-patch+yaml");
    assert_eq!(
        (request["query"]["fieldManager"].as_str(), request["query"]["force"].as_str()),
        (Some("agent-runtime"), Some("true"))
    );
    assert_eq!((body["kind"].as_str(), body["metadata"]["name"].as_str()), (Some("Agent"), Some("helper")));
    let status = &body["status"];
    assert_eq!(status["lastTask"]["id"], task["id"]);
    assert_eq!(
        (status["lastTask"]["origin"].as_str(), status["lastTask"]["summary"].as_str()),
        (Some("api"), Some("the report"))
    );
    assert_eq!(status["usage"]["inputTokens"], 7, "the scripted model's prompt tokens");
    assert_eq!(status["usage"]["outputTokens"], 3);
    assert_eq!(
        status["usage"]["models"],
        json!([{"model": "scripted", "inputTokens": 7, "outputTokens": 3, "calls": 1}])
    );
    assert!(status["usage"].get("cost").is_none(), "a Model without pricing has no cost: {status}");
    let tools: Vec<(&str, &str)> = status["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap(), t["source"].as_str().unwrap()))
        .collect();
    assert!(
        tools.contains(&("current_time", "builtin")) && tools.contains(&("create_agent", "delegation")),
        "{tools:?}"
    );
    assert!(status.get("conditions").is_none(), "without budgets the runtime writes no condition");
}
