//! What the protocols cost beside the plain paths they stand next to, measured in one run:
//! a tool call to a real MCP server (the official Python SDK, streamable HTTP) beside a built-in
//! tool, and an A2A `SendMessage` round trip beside a whole chat completion, both on the same
//! in-process runtime over loopback TCP with a fast scripted upstream.
//!
//! `cargo bench -p agent-tests --bench protocol_overhead` (needs `bash scripts/install-peers.sh`);
//! prints medians of each round and their ratio.

#[allow(dead_code)]
#[path = "support/upstream.rs"]
mod upstream;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use agent_crds::agent::Agent;
use agent_crds::model::Model;
use agent_crds::render::{ResolvedReferences, render_runtime_config};
use agent_crds::runtime_config::PodPaths;
use agent_runtime::{McpTiming, ServeOptions};
use agent_tests::repo_root;
use serde_json::{Value, json};

const ROUNDS: usize = 3;
const CALLS: usize = 300;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

struct McpServer(Child);

impl Drop for McpServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_mcp(port: u16) -> McpServer {
    let tools = std::env::var_os("AGENT_TOOLS_DIR").map_or_else(
        || PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/agent-operator/tools"),
        PathBuf::from,
    );
    let python = tools.join("peers/bin/python");
    assert!(python.exists(), "no peers venv at {}: run `bash scripts/install-peers.sh`", python.display());
    let child = Command::new(python)
        .arg(repo_root().join("tests/python/mcp_server.py"))
        .args(["--port", &port.to_string(), "--sse-port", "0", "--token", "bench"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the MCP server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    McpServer(child)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::main]
async fn main() {
    let upstream = upstream::start(8).await.unwrap();
    let mcp_port = free_port();
    let _mcp = start_mcp(mcp_port);
    let dir = std::env::temp_dir().join(format!("protocol-overhead-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("secrets/mcp")).unwrap();
    std::fs::write(dir.join("secrets/mcp/token"), "bench").unwrap();
    let model: Model = serde_yaml::from_str(&format!(
        "apiVersion: agent-operator.dev/v1alpha1\nkind: Model\nmetadata: {{name: m, namespace: bench}}\nspec:\n  endpoint: {{baseUrl: \"http://{upstream}/v1\", model: {}}}\n  capabilities: {{chat: true, tools: true}}\n",
        upstream::MODEL
    ))
    .unwrap();
    let agent: Agent = serde_yaml::from_str(&format!(
        "apiVersion: agent-operator.dev/v1alpha1\nkind: Agent\nmetadata: {{name: bench, namespace: bench}}\nspec:\n  model: {{modelRef: {{name: m}}}}\n  tools:\n  - name: clock\n    builtin: {{kind: currentTime}}\n  - name: mcp\n    mcp: {{url: \"http://127.0.0.1:{mcp_port}/mcp\", allow: [echo], authSecretRef: {{name: mcp, key: token}}}}\n"
    ))
    .unwrap();
    let paths =
        PodPaths { data_dir: dir.display().to_string(), secrets_dir: dir.join("secrets").display().to_string() };
    let references = ResolvedReferences { model: Some(model), ..ResolvedReferences::default() };
    let config = render_runtime_config(&agent, &references, &paths).unwrap();
    let options = ServeOptions { without_knowledge: true, ..ServeOptions::default() };
    let state = agent_runtime::build_state(config, &options).unwrap();
    agent_runtime::watch_tool_servers(&state, McpTiming::default());
    while state.agent.tools().listing().tools.len() < 2 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = agent_runtime::http::router(state.clone());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let client = reqwest::Client::new();

    println!(
        "round  builtin tool  MCP tool (Python SDK)  ratio  |  chat (whole)  A2A SendMessage  ratio   (medians, µs)"
    );
    for round in 1..=ROUNDS {
        let tools = state.agent.tools();
        let mut builtin = Vec::with_capacity(CALLS);
        let mut mcp = Vec::with_capacity(CALLS);
        for _ in 0..CALLS {
            let started = Instant::now();
            assert!(!tools.call("current_time", "{}").await.text.starts_with("error"));
            builtin.push(started.elapsed());
            let started = Instant::now();
            assert_eq!(tools.call("echo", r#"{"text": "x"}"#).await.text, "echo: x");
            mcp.push(started.elapsed());
        }
        let mut chat = Vec::with_capacity(CALLS);
        let mut a2a = Vec::with_capacity(CALLS);
        for i in 0..CALLS {
            let started = Instant::now();
            let answer: Value = client
                .post(format!("{base}/v1/chat/completions"))
                .json(&json!({"messages": [{"role": "user", "content": "hi"}]}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            chat.push(started.elapsed());
            assert!(answer["choices"][0]["message"]["content"].is_string());
            let started = Instant::now();
            let request = json!({"jsonrpc": "2.0", "id": i, "method": "SendMessage", "params": {"message": {"messageId": format!("m{round}-{i}"), "role": "ROLE_USER", "parts": [{"text": "hi"}]}}});
            let answer: Value =
                client.post(format!("{base}/a2a")).json(&request).send().await.unwrap().json().await.unwrap();
            a2a.push(started.elapsed());
            assert_eq!(answer["result"]["task"]["status"]["state"], "TASK_STATE_COMPLETED", "{answer}");
        }
        let (builtin, mcp, chat, a2a) = (median(builtin), median(mcp), median(chat), median(a2a));
        println!(
            "{round:>5}  {:>12.0}  {:>21.0}  {:>5.1}  |  {:>13.0}  {:>15.0}  {:>5.2}",
            micros(builtin),
            micros(mcp),
            micros(mcp) / micros(builtin),
            micros(chat),
            micros(a2a),
            micros(a2a) / micros(chat)
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}
