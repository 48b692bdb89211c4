//! The official OpenAI Python SDK talks to an agent whose model is a real llama.cpp server
//! running Gemma 3 270M: listing, whole and streamed answers, a two-turn session, and the SDK's
//! error types for a bad request and a wrong key. The model is a base model, so the agent's Model
//! uses the completion prompt format and the checks are on structure, not wording.

use agent_crds::render::{ResolvedReferences, render_runtime_config};
use agent_crds::runtime_config::PodPaths;
use agent_crds::{Agent, Model};
use agent_runtime::ServeOptions;
use agent_tests::llama::LlamaServer;
use agent_tests::{repo_root, run_checked};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_openai_client_talks_to_an_agent_backed_by_llama_server() {
    let llama = LlamaServer::start().await;
    let dir = std::env::temp_dir().join(format!("openai-client-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("secrets/agent-api")).unwrap();
    std::fs::write(dir.join("secrets/agent-api/token"), "sdk-test-key").unwrap();
    let model: Model = serde_yaml::from_str(&format!(
        "apiVersion: agent-operator.dev/v1alpha1\nkind: Model\nmetadata: {{name: gemma, namespace: local}}\nspec:\n  endpoint: {{baseUrl: \"{}\", model: gemma-3-270m}}\n  promptFormat: Completion\n",
        llama.base_url()
    ))
    .unwrap();
    let agent: Agent = serde_yaml::from_str(
        "apiVersion: agent-operator.dev/v1alpha1\nkind: Agent\nmetadata: {name: geography, namespace: local}\nspec:\n  persona: {systemPrompt: Answer geography questions in one short sentence.}\n  model: {modelRef: {name: gemma}, parameters: {temperature: 0}}\n  api: {authSecretRef: {name: agent-api, key: token}}\n",
    )
    .unwrap();
    let paths = PodPaths {
        data_dir: dir.join("data").display().to_string(),
        secrets_dir: dir.join("secrets").display().to_string(),
    };
    let config =
        render_runtime_config(&agent, &ResolvedReferences { model: Some(model), ..Default::default() }, &paths)
            .unwrap();
    let state = agent_runtime::build_state(config, &ServeOptions::default()).unwrap();
    state.agent.check_model().await.expect("the runtime reaches llama-server");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, agent_runtime::http::router(state)).await.unwrap() });

    let script = repo_root().join("tests/python/openai_client_check.py");
    let base_for_python = base.clone();
    let report = tokio::task::spawn_blocking(move || {
        run_checked("python3", &[script.to_str().unwrap(), &base_for_python, "sdk-test-key", "geography"])
    })
    .await
    .unwrap();
    let report: serde_json::Value = serde_json::from_str(report.trim()).unwrap_or_else(|e| panic!("{e}: {report}"));
    assert_eq!(report["session_turns"], 2);
    println!("OpenAI SDK {} against the agent: {report}", report["sdk"]);
    drop(llama);
    std::fs::remove_dir_all(&dir).ok();
}
