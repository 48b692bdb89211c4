//! The agent as an A2A server, checked with the official a2a-sdk client (1.x): card, send,
//! stream, get, cancel, errors, an approval answered through input-required, a wrong token
//! refused; and the JSON-RPC edge's answers to malformed calls.

use std::time::Duration;

use agent_runtime::http::AppState;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};

use crate::support::peers::{peer_python, peer03_python, repo_root};
use crate::support::{Reply, Upstream, config, quick_options, send, state, temp_dir};

const TOKEN: &str = "a2a-test-key";

/// An agent with an API key and the clock tool, whose calls need an approval.
fn agent(upstream: &Upstream, name: &str) -> AppState {
    let dir = temp_dir(name);
    std::fs::create_dir_all(dir.join("secrets/api")).unwrap();
    std::fs::write(dir.join("secrets/api/token"), TOKEN).unwrap();
    let spec = "  persona: {description: Tells the time and answers questions.}\n  api: {authSecretRef: {name: api, key: token}}\n  tools:\n  - name: clock\n    builtin: {kind: currentTime}\n  approval: {tools: [current_time]}\n";
    state(config(&upstream.base_url(), spec, &dir, "Chat"), &quick_options())
}

async fn serve(agent: AppState) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, agent_runtime::http::router(agent)).await.unwrap() });
    base
}

#[tokio::test]
async fn the_official_a2a_sdk_client_sends_streams_gets_cancels_and_answers_an_approval() {
    let upstream = Upstream::start(vec![
        Reply::Text("hello back".into()),
        Reply::Text("a streamed answer".into()),
        Reply::Slow("one two three four five six seven eight nine ten".into(), Duration::from_millis(300)),
        Reply::ToolCall("current_time".into(), "{}".into()),
        Reply::Text("It is noon.".into()),
    ])
    .await;
    let base = serve(agent(&upstream, "a2a-sdk")).await;
    let script = repo_root().join("tests/python/a2a_client_check.py");
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(peer_python()).arg(script).args([&base, TOKEN]).output().unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    let report: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(report["card"]["name"], "helper", "{report}");
    assert_eq!(report["card"]["interfaces"], json!(["1.0", "0.3"]));
    assert_eq!(report["card"]["streaming"], true);
    assert_eq!(report["card"]["skills"], json!(["helper", "tool-current_time"]));
    assert_eq!(report["send"]["state"], "TASK_STATE_COMPLETED");
    assert_eq!(report["send"]["answer"], "hello back");
    assert_eq!(report["stream"]["first"], "task", "a task stream begins with the task: {report}");
    assert_eq!(report["stream"]["answer"], "a streamed answer");
    assert_eq!(report["stream"]["final"], "TASK_STATE_COMPLETED");
    assert_eq!(report["cancel"], json!({"before": "TASK_STATE_WORKING", "after": "TASK_STATE_CANCELED"}));
    assert_eq!(report["unknown_task"], "TaskNotFoundError");
    assert_eq!(report["cancel_completed"], "TaskNotCancelableError");
    assert_eq!(
        report["approval"],
        json!({"waiting": "TASK_STATE_INPUT_REQUIRED", "tool": "current_time", "after": "TASK_STATE_COMPLETED", "answer": "It is noon."})
    );
    assert!(report["wrong_token"].as_str().unwrap().contains("401"), "{report}");
}

#[tokio::test]
async fn the_official_a2a_sdk_0_3_client_kagent_speaks_sends_streams_gets_and_cancels() {
    let upstream = Upstream::start(vec![
        Reply::Text("hello back".into()),
        Reply::Text("a streamed answer".into()),
        Reply::Slow("one two three four five six seven eight nine ten".into(), Duration::from_millis(300)),
    ])
    .await;
    let base = serve(agent(&upstream, "a2a-sdk-03")).await;
    let script = repo_root().join("tests/python/a2a_client_check_03.py");
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(peer03_python()).arg(script).args([&base, TOKEN]).output().unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    let report: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert!(report["card"]["url"].as_str().unwrap().ends_with("/a2a"), "{report}");
    assert_eq!(report["send"], json!({"state": "completed", "answer": "hello back"}));
    assert_eq!(report["stream"], json!({"answer": "a streamed answer", "final": "completed"}));
    assert_eq!(report["cancel"], json!({"before": "working", "after": "canceled"}));
    assert_eq!((report["unknown_task"].as_i64(), report["cancel_completed"].as_i64()), (Some(-32001), Some(-32002)));
}

async fn rpc(agent: &AppState, body: &str) -> (StatusCode, Value) {
    let request = Request::post("/a2a")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(Body::from(body.to_owned()))
        .unwrap();
    let (status, text) = send(agent, request).await;
    (status, serde_json::from_str(&text).unwrap_or_else(|_| json!({"raw": text})))
}

#[tokio::test]
async fn malformed_calls_get_json_rpc_errors_and_nothing_is_lost() {
    let upstream = Upstream::start(vec![Reply::Text("still here".into())]).await;
    let agent = agent(&upstream, "a2a-errors");
    let (status, body) = rpc(&agent, "{not json").await;
    assert_eq!((status, body["error"]["code"].as_i64()), (StatusCode::OK, Some(-32700)), "{body}");
    let (_, body) = rpc(&agent, r#"[{"jsonrpc": "2.0", "id": 1, "method": "GetTask"}]"#).await;
    assert_eq!(body["error"]["code"], -32600, "{body}");
    let (_, body) = rpc(&agent, r#"{"jsonrpc": "1.0", "id": 1, "method": "GetTask"}"#).await;
    assert_eq!(body["error"]["code"], -32600, "{body}");
    let (_, body) = rpc(&agent, r#"{"jsonrpc": "2.0", "id": 7, "method": "tasks/explode", "params": {}}"#).await;
    assert_eq!((body["error"]["code"].as_i64(), body["id"].as_i64()), (Some(-32601), Some(7)), "{body}");
    assert_eq!(body["error"]["data"], Value::Null, "0.3 methods get 0.3 error data");
    let (_, body) =
        rpc(&agent, r#"{"jsonrpc": "2.0", "id": "x", "method": "GetTask", "params": {"id": "nope"}}"#).await;
    assert_eq!(body["error"]["code"], -32001);
    assert_eq!(body["error"]["data"][0]["reason"], "TASK_NOT_FOUND", "{body}");
    let empty = r#"{"jsonrpc": "2.0", "id": 2, "method": "SendMessage", "params": {"message": {"messageId": "m", "role": "ROLE_USER", "parts": []}}}"#;
    let (_, body) = rpc(&agent, empty).await;
    assert_eq!(body["error"]["code"], -32602, "{body}");
    let huge = format!(
        r#"{{"jsonrpc": "2.0", "id": 3, "method": "SendMessage", "params": {{"message": {{"messageId": "m", "role": "ROLE_USER", "parts": [{{"text": "{}"}}]}}}}}}"#,
        "x".repeat(2 << 20)
    );
    let (status, _) = rpc(&agent, &huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    let v03 = r#"{"jsonrpc": "2.0", "id": "a", "method": "message/send", "params": {"message": {"kind": "message", "messageId": "m1", "role": "user", "parts": [{"kind": "text", "text": "hi"}]}, "configuration": {"blocking": true}}}"#;
    let (_, body) = rpc(&agent, v03).await;
    let task = &body["result"];
    assert_eq!((task["kind"].as_str(), task["status"]["state"].as_str()), (Some("task"), Some("completed")), "{body}");
    assert_eq!(task["artifacts"][0]["parts"][0], json!({"kind": "text", "text": "still here"}));
    let get = json!({"jsonrpc": "2.0", "id": 4, "method": "GetTask", "params": {"id": task["id"]}}).to_string();
    let (_, body) = rpc(&agent, &get).await;
    assert_eq!(body["result"]["status"]["state"], "TASK_STATE_COMPLETED", "the same task in 1.0 shape: {body}");
    let (status, _) = send(&agent, Request::get("/.well-known/agent-card.json").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK, "the card needs no key");
}

/// An agent whose `colleague` tool asks the agent at `url` over A2A, presenting `token`.
fn caller(upstream: &Upstream, name: &str, url: &str, remote: bool, token: &str) -> AppState {
    let dir = temp_dir(name);
    std::fs::create_dir_all(dir.join("secrets/colleague")).unwrap();
    std::fs::write(dir.join("secrets/colleague/token"), token).unwrap();
    let target = if remote { format!("url: \"{url}\"") } else { "name: colleague".to_owned() };
    let spec = format!(
        "  tools:\n  - name: colleague\n    agent: {{{target}, tokenSecretRef: {{name: colleague, key: token}}}}\n"
    );
    let mut config = config(&upstream.base_url(), &spec, &dir, "Chat");
    if !remote && let agent_crds::runtime_config::ToolKind::Agent { url: target, .. } = &mut config.tools[0].kind {
        url.clone_into(target);
    }
    state(config, &quick_options())
}

#[tokio::test]
async fn one_runtime_asks_another_over_a2a_with_its_key_and_a_wrong_key_is_refused() {
    let green = || Reply::Text("The build is green.".into());
    let answering_model = Upstream::start(vec![green(), green()]).await;
    let callee = serve(agent(&answering_model, "a2a-callee")).await;
    let ask = || Reply::ToolCall("colleague".into(), json!({"question": "Is the build green?"}).to_string());

    let asking_model = Upstream::start(vec![ask(), Reply::Text("It is.".into())]).await;
    let by_name = caller(&asking_model, "a2a-caller", &callee, false, TOKEN);
    let (status, _) = send(
        &by_name,
        crate::support::post("/v1/chat/completions", &json!({"messages": [{"role": "user", "content": "build?"}]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(asking_model.last_tool_result(), "The build is green.");
    let asked = &answering_model.received()[0];
    assert_eq!(asked["messages"].as_array().unwrap().last().unwrap()["content"], "Is the build green?");

    let wrong_model = Upstream::start(vec![ask(), Reply::Text("It refused me.".into())]).await;
    let wrong = caller(&wrong_model, "a2a-wrong-key", &callee, false, "not-the-key");
    let (status, _) = send(
        &wrong,
        crate::support::post("/v1/chat/completions", &json!({"messages": [{"role": "user", "content": "build?"}]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "a refused call is the model's problem, not a failed turn");
    assert!(
        wrong_model.last_tool_result().contains("refused this agent's credential (HTTP 401)"),
        "{}",
        wrong_model.last_tool_result()
    );

    let remote_model = Upstream::start(vec![ask(), Reply::Text("ok".into())]).await;
    let remote = caller(&remote_model, "a2a-remote", &callee, true, TOKEN);
    send(
        &remote,
        crate::support::post("/v1/chat/completions", &json!({"messages": [{"role": "user", "content": "build?"}]})),
    )
    .await;
    assert_eq!(remote_model.last_tool_result(), "The build is green.", "a remote agent is found through its card");

    let nobody = format!("http://127.0.0.1:{}", crate::support::peers::free_port());
    let lost_model = Upstream::start(vec![ask(), Reply::Text("nobody there".into())]).await;
    let lost = caller(&lost_model, "a2a-nobody", &nobody, true, TOKEN);
    send(
        &lost,
        crate::support::post("/v1/chat/completions", &json!({"messages": [{"role": "user", "content": "build?"}]})),
    )
    .await;
    assert!(lost_model.last_tool_result().starts_with("error: failed:"), "{}", lost_model.last_tool_result());
}

#[tokio::test]
async fn a_task_cut_off_by_kill_9_reads_back_failed_after_the_restart() {
    let upstream = Upstream::start(vec![Reply::Slow(
        "one two three four five six seven eight".into(),
        Duration::from_millis(500),
    )])
    .await;
    let mut agent = crate::support::process::run_agent_with(&upstream, "a2a-kill9", "", |_| {}).await;
    let (client, base) = (agent.client.clone(), agent.base.clone());
    let call = |body: Value| {
        let (client, base) = (client.clone(), base.clone());
        async move { client.post(format!("{base}/a2a")).json(&body).send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let started = call(json!({"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {
        "message": {"messageId": "m1", "role": "ROLE_USER", "parts": [{"text": "take your time"}]},
        "configuration": {"returnImmediately": true}
    }}))
    .await;
    let id = started["result"]["task"]["id"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(300)).await;
    agent.kill();
    agent.restart().await;
    let task = call(json!({"jsonrpc": "2.0", "id": 2, "method": "GetTask", "params": {"id": id}})).await;
    assert_eq!(task["result"]["status"]["state"], "TASK_STATE_FAILED", "{task}");
    let said = task["result"]["status"]["message"]["parts"][0]["text"].as_str().unwrap();
    assert!(said.contains("restarted while the task ran"), "{said}");
    agent.kill();
}
