//! The runtime's operational endpoints and config loading.

use agent_crds::render::{ResolvedReferences, render_runtime_config};
use agent_crds::runtime_config::PodPaths;
use agent_crds::{Agent, Model, RuntimeConfig};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt;

fn config() -> RuntimeConfig {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/scheduled-agent.yaml")).unwrap();
    let mut documents = serde_yaml::Deserializer::from_str(&text);
    let model: Model = serde::Deserialize::deserialize(documents.next().unwrap()).unwrap();
    let agent: Agent = serde::Deserialize::deserialize(documents.next().unwrap()).unwrap();
    let refs = ResolvedReferences { model: Some(model), ..Default::default() };
    render_runtime_config(&agent, &refs, &PodPaths::default()).unwrap()
}

async fn get(path: &str) -> (StatusCode, String) {
    let app = agent_runtime::http::router(agent_runtime::http::AppState::new(config()));
    let response = app.oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn probes_answer_and_the_agent_is_listed_as_a_model() {
    assert_eq!(get("/healthz").await.0, StatusCode::OK);
    assert_eq!(get("/readyz").await.0, StatusCode::OK);
    let (status, body) = get("/v1/models").await;
    assert_eq!(status, StatusCode::OK);
    let models: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(models["data"][0]["id"], "nightly-report");
}

#[test]
fn a_config_with_another_version_or_bad_json_is_refused_with_the_file_named() {
    let dir = std::env::temp_dir().join(format!("runtime-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut newer = serde_json::to_value(config()).unwrap();
    newer["version"] = 2.into();
    std::fs::write(dir.join("newer.json"), newer.to_string()).unwrap();
    std::fs::write(dir.join("broken.json"), "{\"version\": 1,").unwrap();
    let error = agent_runtime::config::load(&dir.join("newer.json")).unwrap_err().to_string();
    assert!(error.contains("newer.json has RuntimeConfig version 2"), "{error}");
    let error = agent_runtime::config::load(&dir.join("broken.json")).unwrap_err().to_string();
    assert!(error.contains("broken.json is not a valid RuntimeConfig") && error.contains("line 1"), "{error}");
    assert!(agent_runtime::config::load(&dir.join("missing.json")).unwrap_err().to_string().contains("cannot read"));
    std::fs::remove_dir_all(&dir).ok();
}
