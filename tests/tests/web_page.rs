//! The web chat page in a real headless Chromium: Debian's `chromium` driven by `playwright-core`
//! (both installed by `scripts/install-browser.sh`, cached), against the runtime's HTTP API on
//! a socket with a real llama.cpp server (Gemma 3 270M), real MiniLM embeddings, the embedded
//! Qdrant Edge store, the chatqna recipe and an API key. `tests/browser/chat_page.mjs` does the
//! clicking and the checks (wrong key refused, streamed answer, the session after a reload,
//! upload progress, a cited answer with its source, the phone layout, a deleted session) and
//! keeps screenshots in `$CARGO_TARGET_DIR/browser/`. The model is a small base model, so the
//! checks are on structure, streaming and citations, never on its wording.

use std::path::PathBuf;
use std::process::Command;

use agent_crds::render::{ResolvedReferences, render_runtime_config};
use agent_crds::runtime_config::PodPaths;
use agent_crds::{Agent, Model, catalogue};
use agent_runtime::ServeOptions;
use agent_tests::llama::LlamaServer;
use agent_tests::repo_root;

/// The key the agent asks for.
const API_KEY: &str = "page-test-key";

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

/// Serves the chatqna agent on `llama` with knowledge on and an API key; returns its base URL.
async fn serve(llama: &LlamaServer) -> String {
    let dir = std::env::temp_dir().join(format!("web-page-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("secrets/page-key")).unwrap();
    std::fs::write(dir.join("secrets/page-key/key"), API_KEY).unwrap();
    let model: Model = serde_yaml::from_str(&format!(
        "apiVersion: agent-operator.dev/v1alpha1\nkind: Model\nmetadata: {{name: gemma, namespace: local}}\nspec:\n  endpoint: {{baseUrl: \"{}\", model: gemma-3-270m}}\n  promptFormat: Completion\n",
        llama.base_url()
    ))
    .unwrap();
    let agent: Agent = serde_yaml::from_str(
        "apiVersion: agent-operator.dev/v1alpha1\nkind: Agent\nmetadata: {name: web-page, namespace: local}\nspec:\n  persona: {description: The agent the chat page test talks to.}\n  model: {modelRef: {name: gemma}, parameters: {temperature: 0, maxTokens: 24, contextBudget: 3072}}\n  knowledge: {recipe: chatqna, parameters: {topK: 2}}\n  tools: [{name: clock, builtin: {kind: currentTime}}]\n  api: {authSecretRef: {name: page-key, key: key}}\n",
    )
    .unwrap();
    let references = ResolvedReferences {
        model: Some(model),
        recipe: Some(catalogue::builtin("chatqna").expect("the built-in chatqna recipe")),
        ..Default::default()
    };
    let paths =
        PodPaths { data_dir: dir.display().to_string(), secrets_dir: dir.join("secrets").display().to_string() };
    let config = render_runtime_config(&agent, &references, &paths).unwrap();
    assert!(config.server.api_key_file.is_some(), "the agent asks for a key");
    let options = ServeOptions { embedding_model_dir: Some(LlamaServer::minilm_dir()), ..ServeOptions::default() };
    let state = agent_runtime::build_state(config, &options).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(axum::serve(listener, agent_runtime::http::router(state)).into_future());
    url
}

/// Where the screenshots go: `$CARGO_TARGET_DIR/browser` (or `target/browser`).
fn screenshot_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| repo_root().join("target"), PathBuf::from).join("browser")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_page_refuses_a_wrong_key_streams_keeps_sessions_and_cites_an_uploaded_document_in_chromium() {
    agent_runtime::install_crypto_provider();
    let browser_dir = install_browser();
    let llama = LlamaServer::start().await;
    let agent = serve(&llama).await;
    let out = screenshot_dir();
    let script = repo_root().join("tests/browser/chat_page.mjs");
    let args = [
        script.display().to_string(),
        "--url".into(),
        agent.clone(),
        "--key".into(),
        API_KEY.into(),
        "--out".into(),
        out.display().to_string(),
        "--browser-dir".into(),
        browser_dir.display().to_string(),
    ];
    // The browser talks to the agent served by this test's runtime: wait for it off the runtime.
    let output = tokio::task::spawn_blocking(move || Command::new("node").args(args).current_dir(repo_root()).output())
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("cannot run node: {e}; scripts/install-browser.sh installs Node.js"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(output.status.success(), "the browser test failed ({}):\n{stdout}\n{stderr}", output.status);
    assert!(stdout.contains("all 10 checks passed"), "every check ran:\n{stdout}");
    for name in ["chat-page.png", "chat-page-phone.png", "chat-page-phone-agent.png"] {
        let path = out.join(name);
        assert!(stdout.contains(&format!("screenshot: {}", path.display())), "{name} is reported:\n{stdout}");
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or_default();
        assert!(size > 10_000, "{} is a real screenshot ({size} bytes)", path.display());
    }
}
