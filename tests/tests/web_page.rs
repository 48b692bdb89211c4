//! The web chat page in a real headless Chromium: Debian's `chromium` driven by `playwright-core`
//! (both installed by `scripts/install-browser.sh`, cached), against the runtime's HTTP API on
//! a socket. The node scripts in `tests/browser/` do the clicking and the checks and keep
//! screenshots in `$CARGO_TARGET_DIR/browser/`.
//! - `chat_page.mjs`: a real llama.cpp server with Gemma 3 270M, real MiniLM embeddings, the
//!   embedded Qdrant Edge store, the chatqna recipe and an API key (wrong key refused, streamed
//!   answer, the session after a reload, upload progress, a cited answer with its source, the
//!   phone layout, a deleted session). The model is a small base model, so the checks are on
//!   structure, streaming and citations, never on its wording.
//! - `approvals_page.mjs`: a scripted model that calls the clock tool, whose calls need an
//!   approval (the base model does not call tools), approved on the page.

use std::path::PathBuf;
use std::process::Command;

use agent_crds::render::{ResolvedReferences, render_runtime_config};
use agent_crds::runtime_config::PodPaths;
use agent_crds::{Agent, Model, catalogue};
use agent_runtime::ServeOptions;
use agent_tests::llama::LlamaServer;
use agent_tests::repo_root;
use axum::Json;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// The key the agents ask for.
const API_KEY: &str = "page-test-key";

/// What the scripted model answers once it has the clock's result.
const APPROVED_ANSWER: &str = "The clock tool answered after your approval.";

/// Runs `scripts/install-browser.sh` (Chromium, Node.js, playwright-core); returns the folder
/// holding playwright-core's `node_modules`.
fn install_browser() -> PathBuf {
    let output = Command::new("bash")
        .arg(repo_root().join("scripts/install-browser.sh"))
        .output()
        .expect("bash runs scripts/install-browser.sh");
    assert!(
        output.status.success(),
        "scripts/install-browser.sh could not install Chromium, Node.js or playwright-core ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
}

/// Where an agent's model is and how it is prompted (`Chat` or `Completion`).
struct ModelAt<'a>(&'a str, &'a str);

/// Serves an agent (the Agent `spec` in YAML, with an API key added) on `model`; returns the
/// agent's base URL.
async fn serve(name: &str, model: ModelAt<'_>, spec: &str, recipe: Option<&str>, options: &ServeOptions) -> String {
    let ModelAt(base_url, prompt_format) = model;
    let dir = std::env::temp_dir().join(format!("web-page-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("secrets/page-key")).unwrap();
    std::fs::write(dir.join("secrets/page-key/key"), API_KEY).unwrap();
    let model: Model = serde_yaml::from_str(&format!(
        "apiVersion: agent-operator.dev/v1alpha1\nkind: Model\nmetadata: {{name: model, namespace: local}}\nspec:\n  endpoint: {{baseUrl: \"{base_url}\", model: m}}\n  promptFormat: {prompt_format}\n"
    ))
    .unwrap();
    let agent: Agent = serde_yaml::from_str(&format!(
        "apiVersion: agent-operator.dev/v1alpha1\nkind: Agent\nmetadata: {{name: {name}, namespace: local}}\nspec:\n  api: {{authSecretRef: {{name: page-key, key: key}}}}\n{spec}"
    ))
    .unwrap();
    let references = ResolvedReferences {
        model: Some(model),
        recipe: recipe.map(|r| catalogue::builtin(r).expect("a built-in recipe")),
        ..Default::default()
    };
    let paths =
        PodPaths { data_dir: dir.display().to_string(), secrets_dir: dir.join("secrets").display().to_string() };
    let config = render_runtime_config(&agent, &references, &paths).unwrap();
    assert!(config.server.api_key_file.is_some(), "the agent asks for a key");
    let state = agent_runtime::build_state(config, options).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(axum::serve(listener, agent_runtime::http::router(state)).into_future());
    url
}

/// Runs the browser scenario `script` against `agent`; returns its output once every check
/// passed, and checks the screenshots it reports.
async fn run_browser(script: &str, agent: &str, env: &[(&str, &str)], screenshots: &[&str]) -> String {
    let browser_dir = install_browser();
    let out =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| repo_root().join("target"), PathBuf::from).join("browser");
    let mut command = Command::new("node");
    command
        .arg(repo_root().join("tests/browser").join(script))
        .args(["--url", agent, "--key", API_KEY])
        .arg("--out")
        .arg(&out)
        .arg("--browser-dir")
        .arg(&browser_dir)
        .current_dir(repo_root())
        .envs(env.iter().copied());
    // The browser talks to the agent this test's runtime serves: wait for it off the runtime.
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("cannot run node: {e}; scripts/install-browser.sh installs Node.js"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(output.status.success(), "{script} failed ({}):\n{stdout}\n{stderr}", output.status);
    assert!(stdout.contains("checks passed"), "{script} ran to the end:\n{stdout}");
    for name in screenshots {
        let path = out.join(name);
        assert!(stdout.contains(&format!("screenshot: {}", path.display())), "{name} is reported:\n{stdout}");
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or_default();
        assert!(size > 10_000, "{} is a real screenshot ({size} bytes)", path.display());
    }
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_page_refuses_a_wrong_key_streams_keeps_sessions_and_cites_an_uploaded_document_in_chromium() {
    agent_runtime::install_crypto_provider();
    let llama = LlamaServer::start().await;
    let spec = "  persona: {description: The agent the chat page test talks to.}\n  model: {modelRef: {name: model}, parameters: {temperature: 0, maxTokens: 24, contextBudget: 3072}}\n  knowledge: {recipe: chatqna, parameters: {topK: 2}}\n  tools: [{name: clock, builtin: {kind: currentTime}}]\n";
    let options = ServeOptions { embedding_model_dir: Some(LlamaServer::minilm_dir()), ..ServeOptions::default() };
    let agent = serve("web-page", ModelAt(&llama.base_url(), "Completion"), spec, Some("chatqna"), &options).await;
    let stdout = run_browser(
        "chat_page.mjs",
        &agent,
        &[],
        &["chat-page.png", "chat-page-phone.png", "chat-page-phone-agent.png"],
    )
    .await;
    assert!(stdout.contains("all 10 checks passed"), "every check ran:\n{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_page_shows_a_pending_approval_and_resumes_the_turn_when_it_is_approved_in_chromium() {
    agent_runtime::install_crypto_provider();
    let model = scripted_model().await;
    let spec = "  model: {modelRef: {name: model}}\n  tools: [{name: clock, builtin: {kind: currentTime}}]\n  approval: {tools: [\"current_*\"], timeoutSeconds: 600}\n";
    let options = ServeOptions { without_knowledge: true, ..ServeOptions::default() };
    let agent = serve("web-approvals", ModelAt(&model, "Chat"), spec, None, &options).await;
    let stdout = run_browser(
        "approvals_page.mjs",
        &agent,
        &[("AGENT_APPROVED_ANSWER", APPROVED_ANSWER)],
        &["chat-page-phone-approval.png", "chat-page-approved.png"],
    )
    .await;
    assert!(stdout.contains("all 3 checks passed"), "every check ran:\n{stdout}");
}

/// A scripted OpenAI-compatible model on a free port (its base URL is returned): it calls
/// `current_time` when the conversation ends with the user's message, and answers
/// [`APPROVED_ANSWER`] once it ends with the tool's result.
async fn scripted_model() -> String {
    let app = axum::Router::new().route("/v1/chat/completions", axum::routing::post(scripted_answer));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(axum::serve(listener, app).into_future());
    url
}

async fn scripted_answer(Json(request): Json<Value>) -> Response {
    let after_tool =
        request["messages"].as_array().and_then(|messages| messages.last()).is_some_and(|last| last["role"] == "tool");
    let call = json!({"id": "call_1", "type": "function", "function": {"name": "current_time", "arguments": "{}"}});
    let (message, finish) = if after_tool {
        (json!({"role": "assistant", "content": APPROVED_ANSWER}), "stop")
    } else {
        (json!({"role": "assistant", "content": null, "tool_calls": [call]}), "tool_calls")
    };
    let usage = json!({"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10});
    if request["stream"] != json!(true) {
        let body = json!({"id": "c1", "object": "chat.completion", "created": 1, "model": "m",
                          "choices": [{"index": 0, "message": message, "finish_reason": finish}], "usage": usage});
        return Json(body).into_response();
    }
    let mut delta = message;
    if let Some(calls) = delta.get_mut("tool_calls").and_then(Value::as_array_mut) {
        calls[0]["index"] = json!(0);
    }
    let chunk = |delta: Value, finish: Option<&str>| {
        json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let usage_chunk = json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [], "usage": usage});
    let body = format!(
        "data: {}\n\ndata: {}\n\ndata: {usage_chunk}\n\ndata: [DONE]\n\n",
        chunk(delta, None),
        chunk(json!({}), Some(finish))
    );
    ([(CONTENT_TYPE, "text/event-stream")], body).into_response()
}
