//! An acknowledged turn survives `kill -9`: the real binary is killed while clients keep
//! writing, restarted on the same data directory, and every acknowledged turn is there.

mod support;

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use support::{Upstream, config, temp_dir};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start(config_file: &std::path::Path, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_agent-runtime"))
        .args(["serve", "--config", config_file.to_str().unwrap(), "--addr", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

async fn wait_ready(client: &reqwest::Client, base: &str) {
    for _ in 0..200 {
        if client.get(format!("{base}/readyz")).send().await.is_ok_and(|r| r.status().is_success()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the runtime did not become ready");
}

#[tokio::test]
async fn acknowledged_turns_survive_kill_9_during_a_stream_of_writes() {
    let upstream = Upstream::start(vec![]).await;
    let dir = temp_dir("kill9");
    let config_file = dir.join("runtime-config.json");
    std::fs::write(&config_file, serde_json::to_string(&config(&upstream.base_url(), "", &dir.join("data"), "Chat")).unwrap()).unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    agent_runtime::install_crypto_provider();
    let client = reqwest::Client::new();
    let mut child = start(&config_file, port);
    wait_ready(&client, &base).await;

    let acknowledged: Arc<Mutex<Vec<u64>>> = Arc::new(Mutex::new(vec![0; 4]));
    let writers: Vec<_> = (0..4)
        .map(|session| {
            let (client, base, acknowledged) = (client.clone(), base.clone(), acknowledged.clone());
            tokio::spawn(async move {
                for turn in 0.. {
                    let body = json!({"messages": [{"role": "user", "content": format!("turn {turn}")}]});
                    let sent = client.post(format!("{base}/v1/chat/completions")).header("x-session-id", format!("s{session}")).json(&body).send().await;
                    let Ok(response) = sent else { return };
                    if !response.status().is_success() || response.bytes().await.is_err() {
                        return;
                    }
                    acknowledged.lock().unwrap()[session] = turn + 1;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    child.kill().unwrap();
    child.wait().unwrap();
    for writer in writers {
        writer.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.iter().all(|&n| n > 0), "every writer got turns acknowledged before the kill: {acknowledged:?}");

    let mut child = start(&config_file, port);
    wait_ready(&client, &base).await;
    for (session, &count) in acknowledged.iter().enumerate() {
        let stored: Value = client.get(format!("{base}/v1/sessions/s{session}")).send().await.unwrap().json().await.unwrap();
        let turns = stored["turns"].as_u64().unwrap();
        assert!(turns >= count, "session s{session}: {count} turns acknowledged, {turns} survived");
        let last_user = format!("turn {}", count - 1);
        assert!(stored["messages"].as_array().unwrap().iter().any(|m| m["content"] == last_user.as_str()), "the last acknowledged turn is stored");
    }
    child.kill().unwrap();
    child.wait().unwrap();
}
