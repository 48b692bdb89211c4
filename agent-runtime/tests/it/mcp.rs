//! MCP tools against a real MCP server from the official Python SDK: discovery and the
//! allowlist, calls with results fed back to the model, `isError`, a slow tool cancelled at its
//! timeout, `tools/list_changed`, the server down at start, killed and restarted, the older SSE
//! transport, a wrong token (and its Secret file corrected), and a server that answers garbage.

use std::time::Duration;

use agent_crds::runtime_config::ToolKind;
use agent_runtime::McpTiming;
use agent_runtime::http::AppState;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};

use crate::support::peers::{McpPeer, eventually, free_port, test_ca};
use crate::support::{Reply, Upstream, config, post, quick_options, send, state, temp_dir};

const TOKEN: &str = "mcp-test-token";

/// Pings and reconnects quickly, so the tests see changes within a second.
fn quick_timing() -> McpTiming {
    McpTiming {
        ping_every: Duration::from_millis(200),
        answer_timeout: Duration::from_secs(5),
        backoff_min: Duration::from_millis(100),
        backoff_max: Duration::from_millis(400),
    }
}

/// An agent whose one MCP entry `tickets` is `mcp_yaml` (the fields under `mcp:`), with the
/// token `token` and header X-Test-Header in its Secret files, watching its server.
fn agent(upstream: &Upstream, name: &str, mcp_yaml: &str, token: &str) -> AppState {
    agent_trusting(upstream, name, mcp_yaml, token, None)
}

/// The same, trusting the CA `ca_pem` for the server's TLS (what `caConfigMapRef` renders to).
fn agent_trusting(upstream: &Upstream, name: &str, mcp_yaml: &str, token: &str, ca_pem: Option<&str>) -> AppState {
    let dir = temp_dir(name);
    let secrets = dir.join("secrets/mcp-auth");
    std::fs::create_dir_all(&secrets).unwrap();
    std::fs::write(secrets.join("token"), format!("{token}\n")).unwrap();
    std::fs::write(secrets.join("header"), "from-a-secret").unwrap();
    let spec = format!(
        "  tools:\n  - name: tickets\n    mcp:\n      authSecretRef: {{name: mcp-auth, key: token}}\n      headersFrom: [{{name: X-Test-Header, secretKeyRef: {{name: mcp-auth, key: header}}}}]\n{mcp_yaml}"
    );
    let mut config = config(&upstream.base_url(), &spec, &dir, "Chat");
    if let ToolKind::Mcp { ca_pem: trusted, .. } = &mut config.tools[0].kind {
        *trusted = ca_pem.map(str::to_owned);
    }
    let state = state(config, &quick_options());
    agent_runtime::watch_tool_servers(&state, quick_timing());
    state
}

/// One non-streamed chat turn; the status and the JSON body.
async fn chat(state: &AppState, content: &str) -> (StatusCode, Value) {
    let request = post("/v1/chat/completions", &json!({"messages": [{"role": "user", "content": content}]}));
    let (status, body) = send(state, request).await;
    (status, serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}")))
}

async fn get_json(state: &AppState, path: &str) -> Value {
    let (_, body) = send(state, Request::get(path).body(Body::empty()).unwrap()).await;
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

async fn server_state(state: &AppState) -> Value {
    get_json(state, "/readyz").await["components"]["mcp/tickets"].clone()
}

async fn offered(state: &AppState) -> Vec<String> {
    let tools = get_json(state, "/v1/tools").await;
    tools["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_owned()).collect()
}

async fn wait_ready(state: &AppState) {
    eventually(30, "the MCP server is ready", || async { server_state(state).await["state"] == "ready" }).await;
}

#[tokio::test]
async fn allowed_tools_are_offered_with_their_schemas_called_and_their_results_fed_back() {
    let mut server = McpPeer::new(TOKEN);
    server.start();
    let upstream = Upstream::start(vec![
        Reply::ToolCall("echo".into(), json!({"text": "hi"}).to_string()),
        Reply::ToolCall("weather".into(), json!({"city": "Oslo"}).to_string()),
        Reply::ToolCall("fail".into(), json!({"message": "no such ticket"}).to_string()),
        Reply::ToolCall("headers".into(), "{}".into()),
        Reply::Text("done".into()),
    ])
    .await;
    let allow = r#"["echo", "weather", "fail", "head*", "dotted.name"]"#;
    let agent = agent(&upstream, "mcp-offer", &format!("      url: {}\n      allow: {allow}\n", server.url()), TOKEN);
    wait_ready(&agent).await;

    let listing = get_json(&agent, "/v1/tools").await;
    let names = offered(&agent).await;
    assert_eq!(names, ["echo", "weather", "fail", "headers"], "allowed tools only, dotted.name skipped");
    let echo = &listing["tools"][0];
    assert_eq!(echo["source"], "mcp/tickets");
    assert_eq!(echo["description"], "Echo the text back");
    assert_eq!(echo["parameters"]["properties"]["text"]["type"], "string", "{echo}");
    assert_eq!(echo["requiresApproval"], false);
    assert_eq!(listing["skipped"][0]["name"], "dotted.name");
    assert!(listing["skipped"][0]["reason"].as_str().unwrap().contains("function names"), "{listing}");

    let (status, body) = chat(&agent, "check ticket 7").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["choices"][0]["message"]["content"], "done");
    let first = &upstream.received()[0];
    let offered_echo = first["tools"].as_array().unwrap().iter().find(|t| t["function"]["name"] == "echo").unwrap();
    assert_eq!(offered_echo["function"]["parameters"], echo["parameters"], "the schema reaches the model unchanged");

    let results = upstream.tool_results();
    assert_eq!(results[0], "echo: hi");
    assert!(
        results[1].contains("\"temperature_c\":21.5") || results[1].contains("\"temperature_c\": 21.5"),
        "{}",
        results[1]
    );
    assert!(
        results[2].starts_with("error: the tool reported an error:") && results[2].contains("no such ticket"),
        "{}",
        results[2]
    );
    let headers: Value = serde_json::from_str(&results[3]).unwrap();
    assert_eq!(headers["x-test-header"], "from-a-secret", "the header from the Secret file");
    assert_eq!(headers["authorization"], "Bearer <redacted>", "the bearer token from the Secret file");
    let metrics = get_json_text(&agent, "/metrics").await;
    assert!(metrics.contains(r#"agent_tool_calls_total{tool="tickets",outcome="ok"} 3"#), "{metrics}");
    assert!(metrics.contains(r#"agent_tool_calls_total{tool="tickets",outcome="error"} 1"#), "{metrics}");
}

async fn get_json_text(state: &AppState, path: &str) -> String {
    send(state, Request::get(path).body(Body::empty()).unwrap()).await.1
}

#[tokio::test]
async fn a_server_tool_in_require_approval_pauses_the_turn_until_someone_decides() {
    let mut server = McpPeer::new(TOKEN);
    server.start();
    let upstream = Upstream::start(vec![
        Reply::ToolCall("echo".into(), json!({"text": "ship it"}).to_string()),
        Reply::Text("shipped".into()),
    ])
    .await;
    let yaml =
        format!("      url: {}\n      allow: [echo, weather]\n      requireApproval: [\"ech*\"]\n", server.url());
    let agent = agent(&upstream, "mcp-approval", &yaml, TOKEN);
    wait_ready(&agent).await;
    let listing = get_json(&agent, "/v1/tools").await;
    let needs: Vec<(String, bool)> = listing["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap().to_owned(), t["requiresApproval"].as_bool().unwrap()))
        .collect();
    assert_eq!(needs, [("echo".to_owned(), true), ("weather".to_owned(), false)]);
    let (_, paused) = chat(&agent, "deploy").await;
    let id = paused["pending_approval"]["id"].as_str().expect("the echo call waits").to_owned();
    assert_eq!(paused["pending_approval"]["arguments"]["text"], "ship it");
    let (status, answer) = {
        let request = post(&format!("/v1/approvals/{id}"), &json!({"decision": "approve"}));
        let (status, body) = send(&agent, request).await;
        (status, serde_json::from_str::<Value>(&body).unwrap())
    };
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["choices"][0]["message"]["content"], "shipped");
    assert_eq!(upstream.tool_results(), ["echo: ship it"]);
}

#[tokio::test]
async fn a_slow_tool_past_its_timeout_is_cancelled_on_the_server_and_the_model_told() {
    let mut server = McpPeer::new(TOKEN);
    server.start();
    let upstream = Upstream::start(vec![
        Reply::ToolCall("slow".into(), json!({"seconds": 20}).to_string()),
        Reply::Text("gave up".into()),
    ])
    .await;
    let agent = agent(&upstream, "mcp-slow", &format!("      url: {}\n      timeoutSeconds: 1\n", server.url()), TOKEN);
    wait_ready(&agent).await;
    let (status, body) = chat(&agent, "wait").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let results = upstream.tool_results();
    assert_eq!(results[0], "error: slow did not answer within 1 s and was cancelled");
    eventually(10, "the server saw notifications/cancelled", || async {
        let cancelled = agent.agent.tools().call("cancellations", "{}").await.text;
        cancelled.contains("request_id")
    })
    .await;
}

#[tokio::test]
async fn a_turn_abandoned_by_its_client_cancels_the_tool_call_it_waits_on() {
    let mut server = McpPeer::new(TOKEN);
    server.start();
    let upstream = Upstream::start(vec![Reply::ToolCall("slow".into(), json!({"seconds": 30}).to_string())]).await;
    let agent =
        agent(&upstream, "mcp-abandoned", &format!("      url: {}\n      timeoutSeconds: 60\n", server.url()), TOKEN);
    wait_ready(&agent).await;
    let turn = chat(&agent, "wait for it");
    assert!(tokio::time::timeout(Duration::from_secs(1), turn).await.is_err(), "the slow tool holds the turn");
    eventually(10, "the server saw notifications/cancelled", || async {
        agent.agent.tools().call("cancellations", "{}").await.text.contains("request_id")
    })
    .await;
}

#[tokio::test]
async fn a_tool_added_on_the_server_is_offered_after_list_changed() {
    let mut server = McpPeer::new(TOKEN);
    server.start();
    let upstream = Upstream::start(vec![]).await;
    let agent = agent(&upstream, "mcp-changed", &format!("      url: {}\n", server.url()), TOKEN);
    wait_ready(&agent).await;
    assert!(!offered(&agent).await.contains(&"late_report".to_owned()));
    let added = agent.agent.tools().call("add_tool", r#"{"name": "late_report"}"#).await;
    assert_eq!(added.text, "added late_report");
    eventually(10, "late_report is offered", || async { offered(&agent).await.contains(&"late_report".to_owned()) })
        .await;
    assert_eq!(agent.agent.tools().call("late_report", "{}").await.text, "dynamic late_report");
}

#[tokio::test]
async fn a_server_down_at_start_killed_and_restarted_leaves_the_agent_serving_and_its_tools_come_back() {
    let mut server = McpPeer::new(TOKEN);
    let upstream = Upstream::start(vec![Reply::Text("fine without tools".into())]).await;
    let agent = agent(&upstream, "mcp-down", &format!("      url: {}\n", server.url()), TOKEN);
    eventually(10, "the server is degraded", || async { server_state(&agent).await["reason"] != "connecting" }).await;
    let readyz = get_json(&agent, "/readyz").await;
    assert!(readyz["components"]["mcp/tickets"]["reason"].as_str().unwrap().contains("cannot connect"), "{readyz}");
    let (status, body) = chat(&agent, "hello").await;
    assert_eq!(status, StatusCode::OK, "the agent serves without the server: {body}");
    assert!(upstream.received()[0].get("tools").is_none(), "no MCP tools offered while the server is down");

    server.start();
    wait_ready(&agent).await;
    assert!(offered(&agent).await.contains(&"echo".to_owned()));

    server.kill();
    eventually(10, "the killed server is degraded and its tools gone", || async {
        server_state(&agent).await["state"] == "degraded" && offered(&agent).await.is_empty()
    })
    .await;
    let down = agent.agent.tools().call("echo", r#"{"text": "x"}"#).await;
    assert!(down.text.starts_with("error: there is no tool named echo"), "{}", down.text);

    server.start();
    wait_ready(&agent).await;
    assert_eq!(agent.agent.tools().call("echo", r#"{"text": "back"}"#).await.text, "echo: back");
}

#[tokio::test]
async fn the_older_http_sse_transport_works_too() {
    let mut server = McpPeer::new(TOKEN);
    server.start();
    let upstream = Upstream::start(vec![]).await;
    let yaml = format!("      url: {}\n      transport: SSE\n      allow: [echo]\n", server.sse_url());
    let agent = agent(&upstream, "mcp-sse", &yaml, TOKEN);
    wait_ready(&agent).await;
    assert_eq!(offered(&agent).await, ["echo"]);
    assert_eq!(agent.agent.tools().call("echo", r#"{"text": "over sse"}"#).await.text, "echo: over sse");
    server.kill();
    eventually(10, "the SSE server is degraded once killed", || async {
        server_state(&agent).await["state"] == "degraded"
    })
    .await;
}

#[tokio::test]
async fn a_wrong_token_is_a_degraded_server_that_says_why_and_offers_no_tools() {
    let mut server = McpPeer::new(TOKEN);
    server.start();
    let upstream = Upstream::start(vec![]).await;
    let agent = agent(&upstream, "mcp-token", &format!("      url: {}\n", server.url()), "wrong-token");
    eventually(10, "the server is degraded", || async { server_state(&agent).await["reason"] != "connecting" }).await;
    assert_eq!(server_state(&agent).await["state"], "degraded");
    let reason = server_state(&agent).await["reason"].as_str().unwrap().to_owned();
    assert!(reason.contains("401") || reason.to_lowercase().contains("auth"), "{reason}");
    assert!(offered(&agent).await.is_empty());
}

#[tokio::test]
async fn a_corrected_token_in_the_secret_file_is_used_to_reconnect() {
    let mut server = McpPeer::new(TOKEN);
    server.start();
    let upstream = Upstream::start(vec![]).await;
    let dir = temp_dir("mcp-token-rotated");
    let secrets = dir.join("secrets/mcp-auth");
    std::fs::create_dir_all(&secrets).unwrap();
    std::fs::write(secrets.join("token"), "wrong-token\n").unwrap();
    let spec = format!(
        "  tools:\n  - name: tickets\n    mcp:\n      authSecretRef: {{name: mcp-auth, key: token}}\n      url: {}\n",
        server.url()
    );
    let agent = state(config(&upstream.base_url(), &spec, &dir, "Chat"), &quick_options());
    agent_runtime::watch_tool_servers(&agent, quick_timing());
    eventually(10, "the server is degraded", || async { server_state(&agent).await["reason"] != "connecting" }).await;
    assert_eq!(server_state(&agent).await["state"], "degraded");

    std::fs::write(secrets.join("token"), format!("{TOKEN}\n")).unwrap();
    wait_ready(&agent).await;
    assert_eq!(agent.agent.tools().call("echo", r#"{"text": "again"}"#).await.text, "echo: again");
}

#[tokio::test]
async fn a_server_behind_tls_with_a_private_ca_is_trusted_only_with_that_ca() {
    let dir = temp_dir("mcp-tls-ca");
    let (ca_pem, certificate, key) = test_ca(&dir);
    let mut server = McpPeer::with_tls(TOKEN, certificate, key);
    server.start();
    let upstream = Upstream::start(vec![]).await;
    let yaml = format!("      url: {}\n      allow: [echo]\n", server.https_url());
    let trusting = agent_trusting(&upstream, "mcp-tls-trusting", &yaml, TOKEN, Some(&ca_pem));
    wait_ready(&trusting).await;
    assert_eq!(trusting.agent.tools().call("echo", r#"{"text": "over tls"}"#).await.text, "echo: over tls");

    let distrusting = agent(&upstream, "mcp-tls-distrusting", &yaml, TOKEN);
    eventually(10, "the untrusted server is degraded", || async {
        server_state(&distrusting).await["reason"] != "connecting"
    })
    .await;
    let reason = server_state(&distrusting).await["reason"].as_str().unwrap().to_owned();
    assert!(reason.contains("cannot connect"), "{reason}");
    assert!(offered(&distrusting).await.is_empty());
}

/// A server that speaks just enough MCP to be connected to, then misbehaves as `mode` says.
async fn garbage_server(mode: &'static str) -> String {
    use axum::response::IntoResponse;
    let port = free_port();
    let app = axum::Router::new().route(
        "/mcp",
        axum::routing::post(move |body: String| async move {
            let request: Value = serde_json::from_str(&body).unwrap_or_default();
            let Some(id) = request.get("id").cloned() else {
                return StatusCode::ACCEPTED.into_response();
            };
            let json = |result: Value| {
                (
                    [("content-type", "application/json")],
                    json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string(),
                )
                    .into_response()
            };
            match (request["method"].as_str().unwrap_or_default(), mode) {
                ("initialize", _) => json(json!({
                    "protocolVersion": "2025-06-18",
                    "capabilities": {"tools": {}},
                    "serverInfo": {"name": "garbage", "version": "0"}
                })),
                ("tools/list", "schemas") => json(json!({"tools": [
                    {"name": "good", "description": "fine", "inputSchema": {"type": "object", "properties": {}}},
                    {"name": "stringy", "inputSchema": {"type": "string"}},
                    {"name": "odd_properties", "inputSchema": {"type": "object", "properties": ["a"]}}
                ]})),
                ("tools/list", _) => json(json!({"tools": [{"name": "good", "inputSchema": {"type": "object"}}]})),
                ("tools/call", _) => ([("content-type", "application/json")], "{this is not json").into_response(),
                _ => json(json!({})),
            }
        })
        .get(|| async { StatusCode::METHOD_NOT_ALLOWED }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://127.0.0.1:{port}/mcp")
}

#[tokio::test]
async fn schemas_a_model_api_would_refuse_are_skipped_and_a_garbage_answer_is_a_tool_error() {
    let url = garbage_server("schemas").await;
    let upstream =
        Upstream::start(vec![Reply::ToolCall("good".into(), "{}".into()), Reply::Text("the tool broke".into())]).await;
    let agent = agent(&upstream, "mcp-garbage", &format!("      url: {url}\n"), TOKEN);
    wait_ready(&agent).await;
    assert_eq!(offered(&agent).await, ["good"]);
    let listing = get_json(&agent, "/v1/tools").await;
    let skipped: Vec<&str> =
        listing["skipped"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(skipped, ["stringy", "odd_properties"]);

    let (status, body) = chat(&agent, "use it").await;
    assert_eq!(status, StatusCode::OK, "a broken tool is the model's problem, not a failed turn: {body}");
    let results = upstream.tool_results();
    assert!(results[0].starts_with("error: failed: the MCP server tickets"), "{}", results[0]);
    let (status, _) = send(&agent, Request::get("/healthz").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
}
