//! The turn as a whole: one turn at a time per session, errors that keep their kind to the
//! edge, bounded metric labels, and a runtime that refuses to start without what its config
//! asks for instead of running with parts silently off.

use crate::support::{Reply, Upstream, config, post, quick_options, send, state, temp_dir};
use agent_crds::recipe::{PipelineMode, RecipeSpec, SummaryStrategy};
use agent_crds::runtime_config::RecipeConfig;
use agent_runtime::BusySession;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};

fn recipe_config(name: &str, spec: RecipeSpec) -> RecipeConfig {
    RecipeConfig { name: name.into(), parameters: std::collections::BTreeMap::new(), spec, sources: Vec::new() }
}

fn turn_on(session: &str, content: &str) -> Request<Body> {
    Request::post("/v1/chat/completions")
        .header("content-type", "application/json")
        .header("x-session-id", session)
        .body(Body::from(json!({"messages": [{"role": "user", "content": content}]}).to_string()))
        .unwrap()
}

async fn session(agent: &agent_runtime::http::AppState, id: &str) -> Value {
    let (status, body) = send(agent, Request::get(format!("/v1/sessions/{id}")).body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    serde_json::from_str(&body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_concurrent_turns_on_one_session_are_sixteen_turns() {
    let upstream = Upstream::start(vec![]).await;
    let dir = temp_dir("concurrent-turns");
    let agent = state(config(&upstream.base_url(), "", &dir, "Chat"), &quick_options());
    let turns = (0..16).map(|i| {
        let agent = agent.clone();
        tokio::spawn(async move { send(&agent, turn_on("busy", &format!("question {i}"))).await })
    });
    for turn in futures::future::join_all(turns).await {
        let (status, body) = turn.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let session = session(&agent, "busy").await;
    assert_eq!(session["turns"], 16);
    let messages = session["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 32);
    for i in 0..16 {
        let question = format!("question {i}");
        assert!(messages.iter().any(|m| m["content"] == question), "{question} is kept");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_busy_session_reject_an_overlapping_turn_gets_409_and_loses_nothing() {
    let pause = std::time::Duration::from_millis(100);
    let upstream = Upstream::start(vec![Reply::Slow("a slow answer".into(), pause)]).await;
    let dir = temp_dir("reject-busy");
    let mut options = quick_options();
    options.busy_session = BusySession::Reject;
    let agent = state(config(&upstream.base_url(), "", &dir, "Chat"), &options);
    let slow = tokio::spawn({
        let agent = agent.clone();
        async move { send(&agent, turn_on("one", "first")).await }
    });
    while upstream.received().is_empty() {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let (status, body) = send(&agent, turn_on("one", "second")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body.contains("session one is busy"), "{body}");
    assert_eq!(slow.await.unwrap().0, StatusCode::OK);
    assert_eq!(send(&agent, turn_on("one", "third")).await.0, StatusCode::OK);
    assert_eq!(session(&agent, "one").await["turns"], 2);
}

#[tokio::test]
async fn a_model_timeout_inside_a_map_reduce_summary_is_a_504() {
    let upstream = Upstream::start(vec![Reply::Hang]).await;
    let dir = temp_dir("summary-timeout");
    let mut config = config(&upstream.base_url(), "", &dir, "Chat");
    config.model.parameters.context_budget = Some(512);
    let mut spec = RecipeSpec::default();
    spec.generate.mode = PipelineMode::Summarize;
    spec.generate.strategy = SummaryStrategy::MapReduce;
    spec.generate.combine_template = Some("Combine:{{#each summaries}}\n- {{this}}{{/each}}".into());
    config.recipe = Some(recipe_config("summary", spec));
    let agent = state(config, &quick_options());
    let long_text = "The harbour crane lifts containers from the ships onto the trucks all day. ".repeat(40);
    let request = json!({"messages": [{"role": "user", "content": long_text}]});
    let (status, body) = send(&agent, post("/v1/chat/completions", &request)).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    assert!(body.contains("did not answer within 2 s"), "{body}");
}

#[tokio::test]
async fn tool_call_metrics_are_labelled_with_configured_tool_names_only() {
    let upstream = Upstream::start(vec![
        Reply::ToolCall("made_up_tool_1234".into(), "{}".into()),
        Reply::ToolCall("current_time".into(), "{}".into()),
        Reply::Text("done".into()),
    ])
    .await;
    let dir = temp_dir("tool-labels");
    let tools = "  tools: [{name: clock, builtin: {kind: currentTime}}]\n";
    let agent = state(config(&upstream.base_url(), tools, &dir, "Chat"), &quick_options());
    assert_eq!(
        send(&agent, post("/v1/chat/completions", &json!({"messages": [{"role": "user", "content": "go"}]}))).await.0,
        StatusCode::OK
    );
    let (_, metrics) = send(&agent, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    assert!(metrics.contains(r#"agent_tool_calls_total{tool="unknown",outcome="unknown"} 1"#), "{metrics}");
    assert!(metrics.contains(r#"agent_tool_calls_total{tool="current_time",outcome="ok"} 1"#), "{metrics}");
    assert!(!metrics.contains("made_up_tool_1234"), "{metrics}");
}

#[tokio::test]
async fn readyz_lists_each_component_with_its_state_and_reason() {
    let upstream = Upstream::start(vec![]).await;
    let dir = temp_dir("readyz-components");
    let agent = state(config(&upstream.base_url(), "", &dir, "Chat"), &quick_options());
    let (status, body) = send(&agent, Request::get("/readyz").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let report: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["ready"], false);
    assert_eq!(report["components"]["model"]["state"], "notReady");
    assert!(report["components"]["model"]["reason"].as_str().unwrap().contains("waiting for the model"));
    assert_eq!(report["components"]["knowledge"]["state"], "disabled", "no embedding model folder was given");
    agent.agent.check_model().await.unwrap();
    let (status, body) = send(&agent, Request::get("/readyz").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, metrics) = send(&agent, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    assert!(metrics.contains(r#"agent_component_ready{component="model"} 1"#), "{metrics}");
}

/// The error `build_state` fails with for an agent spec (YAML under `spec:`).
fn start_error(name: &str, spec: &str, options: &agent_runtime::ServeOptions) -> String {
    let dir = temp_dir(name);
    let config = config("http://127.0.0.1:9/v1", spec, &dir, "Chat");
    match agent_runtime::build_state(config, options) {
        Ok(_) => panic!("the runtime started"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn a_memory_tool_without_knowledge_fails_startup_and_names_the_tool() {
    let error = start_error("memory-tool", "  tools: [{name: notes, builtin: {kind: remember}}]\n", &quick_options());
    assert!(error.starts_with("tool notes: needs long-term memory, which is off"), "{error}");
}

#[test]
fn a_retrieving_recipe_without_knowledge_fails_startup() {
    let dir = temp_dir("recipe-off");
    let mut config = config("http://127.0.0.1:9/v1", "", &dir, "Chat");
    let spec = RecipeSpec::default();
    assert_eq!(spec.generate.mode, PipelineMode::Answer);
    config.recipe = Some(recipe_config("qa", spec));
    let error = agent_runtime::build_state(config, &quick_options()).err().expect("the runtime must not start");
    assert!(error.to_string().contains("recipe qa retrieves from the agent's knowledge, which is off"), "{error}");
}

#[test]
fn an_embedding_model_folder_that_does_not_hold_the_model_fails_startup() {
    let mut options = quick_options();
    options.embedding_model_dir = Some(temp_dir("empty-model-dir"));
    let error = start_error("bad-model-dir", "", &options);
    assert!(error.starts_with("knowledge: embedding model: embedding model file"), "{error}");
}
