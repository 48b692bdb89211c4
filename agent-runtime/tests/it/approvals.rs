//! Human approval of tool calls: a scripted model calls a tool that needs an approval; the turn
//! pauses and is kept (through `kill -9` and a restart), the client sees the pending approval
//! (also through the official OpenAI SDK), and the turn resumes on approve, on deny, or when
//! nobody decides in time. Each decision lands in the session and the metrics.

use agent_runtime::http::AppState;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};

use crate::support::peers::{eventually, repo_root};
use crate::support::process::run_agent_with;
use crate::support::{Reply, Upstream, config, post, quick_options, send, state, temp_dir};

/// An agent with the clock tool, whose calls need an approval.
const CLOCK_NEEDS_APPROVAL: &str = "  tools:\n  - name: clock\n    builtin: {kind: currentTime}\n  approval:\n    tools: [\"current_*\"]\n    timeoutSeconds: 600\n";

fn agent(upstream: &Upstream, name: &str, timeout_seconds: u32) -> AppState {
    let mut config = config(&upstream.base_url(), CLOCK_NEEDS_APPROVAL, &temp_dir(name), "Chat");
    config.approval.timeout_seconds = timeout_seconds;
    state(config, &quick_options())
}

fn turn(session: &str, content: &str) -> Request<Body> {
    Request::post("/v1/chat/completions")
        .header("content-type", "application/json")
        .header("x-session-id", session)
        .body(Body::from(json!({"messages": [{"role": "user", "content": content}]}).to_string()))
        .unwrap()
}

async fn json_of(agent: &AppState, request: Request<Body>) -> (StatusCode, Value) {
    let (status, body) = send(agent, request).await;
    (status, serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}")))
}

async fn get(agent: &AppState, path: &str) -> Value {
    json_of(agent, Request::get(path).body(Body::empty()).unwrap()).await.1
}

#[tokio::test]
async fn a_paused_turn_survives_kill_9_and_resumes_when_approved() {
    let upstream =
        Upstream::start(vec![Reply::ToolCall("current_time".into(), "{}".into()), Reply::Text("It is noon.".into())])
            .await;
    let mut agent = run_agent_with(&upstream, "approval-kill9", CLOCK_NEEDS_APPROVAL, |_| {}).await;
    let (client, base) = (agent.client.clone(), agent.base.clone());
    let paused: Value = client
        .post(format!("{base}/v1/chat/completions"))
        .header("x-session-id", "s1")
        .json(&json!({"messages": [{"role": "user", "content": "What time is it?"}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let approval = &paused["pending_approval"];
    let id = approval["id"].as_str().unwrap().to_owned();
    assert_eq!(approval["tool"], "current_time");
    assert_eq!(approval["state"], "pending");
    assert!(paused["choices"][0]["message"]["content"].as_str().unwrap().contains(&id), "{paused}");

    agent.kill();
    agent.restart().await;
    let pending: Value =
        client.get(format!("{base}/v1/approvals?state=pending")).send().await.unwrap().json().await.unwrap();
    assert_eq!(pending["approvals"][0]["id"], id.as_str(), "the pending approval survived kill -9: {pending}");

    let decided = client
        .post(format!("{base}/v1/approvals/{id}"))
        .json(&json!({"decision": "approve", "by": "alice", "reason": "routine"}))
        .send()
        .await
        .unwrap();
    assert_eq!(decided.status(), 200);
    let answer: Value = decided.json().await.unwrap();
    assert_eq!(answer["choices"][0]["message"]["content"], "It is noon.");
    assert!(
        !upstream.last_tool_result().starts_with("error"),
        "the approved call ran: {}",
        upstream.last_tool_result()
    );

    let session: Value = client.get(format!("{base}/v1/sessions/s1")).send().await.unwrap().json().await.unwrap();
    let contents: Vec<&str> =
        session["messages"].as_array().unwrap().iter().map(|m| m["content"].as_str().unwrap()).collect();
    assert_eq!(contents, ["What time is it?", "It is noon."]);
    let decision = &session["decisions"][0];
    assert_eq!((decision["approved"].as_bool(), decision["by"].as_str()), (Some(true), Some("alice")));
    assert_eq!(decision["reason"], "routine");
    assert_eq!(decision["tool"], "current_time");

    let after: Value = client.get(format!("{base}/v1/approvals/{id}")).send().await.unwrap().json().await.unwrap();
    assert_eq!((after["state"].as_str(), after["answer"].as_str()), (Some("approved"), Some("It is noon.")));
    let again =
        client.post(format!("{base}/v1/approvals/{id}")).json(&json!({"decision": "deny"})).send().await.unwrap();
    assert_eq!(again.status(), 409, "a decided approval is not decided again");
    let metrics = client.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains(r#"agent_approvals_total{outcome="approved"} 1"#), "{metrics}");
    agent.kill();
}

#[tokio::test]
async fn a_denied_call_is_explained_to_the_model_and_the_resumed_answer_streams_to_the_decider() {
    let upstream = Upstream::start(vec![
        Reply::ToolCall("current_time".into(), "{}".into()),
        Reply::Text("I may not look at the clock.".into()),
    ])
    .await;
    let agent = agent(&upstream, "approval-deny", 600);
    let (status, paused) = json_of(&agent, turn("s2", "What time is it?")).await;
    assert_eq!(status, StatusCode::OK, "{paused}");
    let id = paused["pending_approval"]["id"].as_str().unwrap().to_owned();

    let decide =
        post(&format!("/v1/approvals/{id}"), &json!({"decision": "deny", "reason": "not now", "stream": true}));
    let (status, body) = send(&agent, decide).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let streamed: String = body
        .lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .filter_map(|data| serde_json::from_str::<Value>(data).ok())
        .filter_map(|chunk| chunk["choices"][0]["delta"]["content"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(streamed, "I may not look at the clock.");
    assert!(body.trim_end().ends_with("data: [DONE]"), "{body}");
    assert_eq!(
        upstream.last_tool_result(),
        "error: the call was denied by api-client: not now; do not retry it, tell the user instead"
    );
    let session = get(&agent, "/v1/sessions/s2").await;
    assert_eq!(session["decisions"][0]["approved"], false);
    assert_eq!(session["messages"][1]["content"], "I may not look at the clock.");
    let metrics = send(&agent, Request::get("/metrics").body(Body::empty()).unwrap()).await.1;
    assert!(metrics.contains(r#"agent_approvals_total{outcome="denied"} 1"#), "{metrics}");
    assert!(metrics.contains(r#"agent_approvals_total{outcome="requested"} 1"#), "{metrics}");
}

#[tokio::test]
async fn nobody_deciding_in_time_denies_the_call() {
    let upstream = Upstream::start(vec![
        Reply::ToolCall("current_time".into(), "{}".into()),
        Reply::Text("Nobody let me check.".into()),
    ])
    .await;
    let agent = agent(&upstream, "approval-timeout", 1);
    let (_, paused) = json_of(&agent, turn("s3", "What time is it?")).await;
    let id = paused["pending_approval"]["id"].as_str().unwrap().to_owned();
    eventually(10, "the approval expired and its turn answered", || async {
        get(&agent, &format!("/v1/approvals/{id}")).await["answer"] == "Nobody let me check."
    })
    .await;
    let approval = get(&agent, &format!("/v1/approvals/{id}")).await;
    assert_eq!(approval["state"], "denied");
    assert_eq!(approval["decision"]["by"], "timeout");
    assert!(upstream.last_tool_result().contains("nobody decided within 1 s"), "{}", upstream.last_tool_result());
    let metrics = send(&agent, Request::get("/metrics").body(Body::empty()).unwrap()).await.1;
    assert!(metrics.contains(r#"agent_approvals_total{outcome="expired"} 1"#), "{metrics}");
}

#[tokio::test]
async fn unknown_approvals_and_malformed_decisions_are_clear_errors() {
    let upstream = Upstream::start(vec![Reply::ToolCall("current_time".into(), "{}".into())]).await;
    let agent = agent(&upstream, "approval-errors", 600);
    let (status, body) =
        json_of(&agent, post("/v1/approvals/appr-0000000000000000", &json!({"decision": "approve"}))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("no approval appr-0000000000000000"), "{body}");
    let (_, paused) = json_of(&agent, turn("s4", "time?")).await;
    let id = paused["pending_approval"]["id"].as_str().unwrap().to_owned();
    let (status, body) = json_of(&agent, post(&format!("/v1/approvals/{id}"), &json!({"decision": "maybe"}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("unknown variant `maybe`"), "{body}");
    assert_eq!(get(&agent, &format!("/v1/approvals/{id}")).await["state"], "pending", "a bad request decides nothing");
    let tools = get(&agent, "/v1/tools").await;
    assert_eq!(tools["tools"][0]["requiresApproval"], true, "{tools}");
}

#[tokio::test]
async fn the_official_openai_sdk_parses_paused_answers_and_sees_the_pending_approval() {
    let upstream = Upstream::start(vec![
        Reply::ToolCall("current_time".into(), "{}".into()),
        Reply::ToolCall("current_time".into(), "{}".into()),
    ])
    .await;
    let agent = agent(&upstream, "approval-sdk", 600);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, agent_runtime::http::router(agent)).await.unwrap() });
    let script = repo_root().join("tests/python/approval_client_check.py");
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3").arg(script).args([&base, "sdk"]).output().unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    let report: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert!(report["whole"]["id"].as_str().unwrap().starts_with("appr-"), "{report}");
    assert_eq!(report["whole"]["tool"], "current_time");
    assert!(report["whole_text"].as_str().unwrap().contains("waits for a human approval"), "{report}");
    assert_eq!(report["streamed"]["tool"], "current_time", "{report}");
    assert_eq!(report["finish"], "stop");
}
