//! The main job's shape: `agent-runtime run` with a Model the runtime serves itself
//! (`serve.engine: runtime`) is one process: the model in process (Gemma 3 270M GGUF), embedded
//! memory and the web page. Without the GGUF, or with one for a Model reached over HTTP, it
//! refuses to start and says what to pass.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::peers::{free_port, repo_root};
use crate::support::{gemma_gguf, minilm_dir, temp_dir};

const EXAMPLE: &str = "examples/local-agent.yaml";

fn local_run(manifest: &std::path::Path, data: &std::path::Path, port: u16) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_agent-runtime"));
    command
        .arg("run")
        .arg(manifest)
        .args(["--addr", &format!("127.0.0.1:{port}"), "--threads", "2"])
        .arg("--data-dir")
        .arg(data)
        .arg("--embedding-model-dir")
        .arg(minilm_dir())
        .env("RUST_LOG", "warn")
        .env_remove("AGENT_MODEL_FILE");
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_example_runs_its_model_memory_and_page_in_one_process() {
    agent_runtime::install_crypto_provider();
    let dir = temp_dir("in-process-local");
    let port = free_port();
    let started = Instant::now();
    let child = local_run(&repo_root().join(EXAMPLE), &dir.join("data"), port)
        .arg("--model-file")
        .arg(gemma_gguf())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("agent-runtime starts");
    let agent = Agent { child, base: format!("http://127.0.0.1:{port}") };
    let client = reqwest::Client::new();
    loop {
        let ready = client.get(format!("{}/readyz", agent.base)).send().await.map(|r| r.status().as_u16()).ok();
        if ready == Some(200) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "not ready within 2 minutes: {ready:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("ready {:.2} s after start, model in process", started.elapsed().as_secs_f64());

    let question = json!({"messages": [{"role": "user", "content": "What is the capital of France?"}], "stream": true,
        "stream_options": {"include_usage": true}});
    let response = client
        .post(format!("{}/v1/chat/completions", agent.base))
        .header("x-session-id", "one-process")
        .json(&question)
        .send()
        .await
        .expect("chat");
    assert_eq!(response.status(), 200);
    let body = response.text().await.expect("stream");
    let chunks: Vec<Value> = body
        .lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .filter(|data| *data != "[DONE]")
        .map(|data| serde_json::from_str(data).expect("JSON chunk"))
        .collect();
    let text: String =
        chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect::<Vec<_>>().concat();
    assert!(!text.trim().is_empty(), "an answer: {body}");
    let usage = chunks.iter().find_map(|c| c.get("usage").filter(|u| !u.is_null())).expect("usage chunk");
    assert!(usage["completion_tokens"].as_u64().unwrap() > 0 && usage["prompt_tokens"].as_u64().unwrap() > 5);
    println!("answered {text:?} with usage {usage}");

    let session: Value = client
        .get(format!("{}/v1/sessions/one-process", agent.base))
        .send()
        .await
        .expect("session")
        .json()
        .await
        .expect("JSON");
    assert_eq!(session["messages"].as_array().map(Vec::len), Some(2), "{session}");
    let page = client.get(format!("{}/", agent.base)).send().await.expect("page");
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("<html"), "the web page is served");
    drop(agent);
    std::fs::remove_dir_all(&dir).ok();
}

/// The runtime process, killed when the test ends.
struct Agent {
    child: std::process::Child,
    base: String,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_runtime_served_model_needs_its_gguf_and_a_remote_one_refuses_it() {
    let dir = temp_dir("in-process-refusals");
    let without = local_run(&repo_root().join(EXAMPLE), &dir.join("data"), free_port()).output().expect("runs");
    let stderr = String::from_utf8_lossy(&without.stderr);
    assert!(!without.status.success());
    assert!(
        stderr.contains("Model gemma-local is served by the runtime (serve.engine: runtime")
            && stderr.contains("--model-file"),
        "{stderr}"
    );
    let missing = local_run(&repo_root().join(EXAMPLE), &dir.join("data"), free_port())
        .args(["--model-file", "/nonexistent/model.gguf"])
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.contains("cannot load the model /nonexistent/model.gguf: no such file"), "{stderr}");
    let remote = local_run(&repo_root().join("examples/chat-agent.yaml"), &dir.join("data"), free_port())
        .arg("--model-file")
        .arg(gemma_gguf())
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&remote.stderr);
    assert!(stderr.contains("--model-file runs a Model with serve.engine: runtime"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}
