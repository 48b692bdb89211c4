//! An agent whose Model scales to zero: a request that finds the Model asleep (connection
//! refused, as from a Service with no ready endpoint) records the wake request on the Agent's
//! status through a Kubernetes API (here a small fake that plays the operator: it brings the
//! model up on its port a moment after the request) and waits for it; a Model that does not
//! wake within the bound is answered 503 with `Retry-After` and the wake's phase.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agent_crds::runtime_config::{ClusterAccess, WakeConfig};
use agent_runtime::cluster::demand::DEMAND_FIELD_MANAGER;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::routing::any;
use axum::{Json, Router};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::support::peers::free_port;
use crate::support::{Upstream, config, post, quick_options, state, temp_dir};

/// What the fake API server saw, and what it does on a wake request.
#[derive(Clone, Default)]
struct FakeApi {
    /// `METHOD path?query` and body of every call.
    calls: Arc<Mutex<Vec<(String, Value)>>>,
    /// The loopback port to start the model on when a wake is requested, after a delay.
    wake_model_on: Option<(u16, Duration)>,
    /// `status.coldStart` of the Model it serves.
    cold_start: Value,
}

async fn api(State(fake): State<FakeApi>, method: Method, uri: Uri, body: String) -> Json<Value> {
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let waking = body.pointer("/status/modelDemand/wakeRequestedAt").is_some_and(|v| !v.is_null());
    let first_wake = waking
        && !fake
            .calls
            .lock()
            .unwrap()
            .iter()
            .any(|(_, b)| b.pointer("/status/modelDemand/wakeRequestedAt").is_some_and(|v| !v.is_null()));
    fake.calls.lock().unwrap().push((format!("{method} {uri}"), body));
    if let (true, Some((port, delay))) = (first_wake, fake.wake_model_on) {
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            Upstream::start_on(port, Vec::new()).await;
        });
    }
    if method == Method::GET && uri.path().contains("/models/") {
        return Json(json!({"kind": "Model", "status": {"coldStart": fake.cold_start}}));
    }
    Json(json!({}))
}

async fn start_api(fake: FakeApi) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = Router::new().fallback(any(api)).with_state(fake);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}")
}

/// An agent on a scale-to-zero Model at `model_port`, reporting to the API at `api_url`.
fn agent(name: &str, model_port: u16, api_url: String, timeout_seconds: u64) -> agent_runtime::http::AppState {
    let dir = temp_dir(name);
    let token = dir.join("token");
    std::fs::write(&token, "test-token").unwrap();
    let mut config = config(&format!("http://127.0.0.1:{model_port}/v1"), "", &dir, "Chat");
    config.model.wake = Some(WakeConfig { timeout_seconds });
    config.cluster = Some(ClusterAccess { api_url, token_file: token.display().to_string(), ca_file: String::new() });
    state(config, &quick_options())
}

fn chat() -> Value {
    json!({"model": "helper", "messages": [{"role": "user", "content": "are you awake?"}]})
}

fn demand_writes(fake: &FakeApi) -> Vec<Value> {
    fake.calls
        .lock()
        .unwrap()
        .iter()
        .filter(|(call, _)| {
            call.starts_with("PATCH /apis/agent-operator.dev/v1alpha1/namespaces/test/agents/helper/status?")
                && call.contains(&format!("fieldManager={DEMAND_FIELD_MANAGER}"))
        })
        .map(|(_, body)| body["status"]["modelDemand"].clone())
        .collect()
}

#[tokio::test]
async fn a_request_to_a_sleeping_model_asks_it_to_wake_and_is_answered_once_it_is_up() {
    let model_port = free_port();
    let fake = FakeApi { wake_model_on: Some((model_port, Duration::from_millis(1500))), ..FakeApi::default() };
    let agent = agent("wake-up", model_port, start_api(fake.clone()).await, 30);
    let started = Instant::now();
    let (status, body) = crate::support::send(&agent, post("/v1/chat/completions", &chat())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("ok"), "the model's answer: {body}");
    assert!(started.elapsed() >= Duration::from_millis(1500), "it waited for the model to come up");
    let writes = demand_writes(&fake);
    let wake = writes.iter().find(|d| !d["wakeRequestedAt"].is_null()).expect("a wake request on the Agent's status");
    assert_eq!(wake["model"], "scripted");
    assert!(!wake["lastRequestAt"].is_null(), "each report carries the latest request too: {wake}");
    assert_eq!(writes.iter().filter(|d| !d["wakeRequestedAt"].is_null()).count(), 1, "one wake request per wait");
}

#[tokio::test]
async fn a_model_that_does_not_wake_in_time_is_answered_503_with_retry_after_and_the_wake_phase() {
    let fake = FakeApi {
        cold_start: json!({"phase": "PullingImage", "requestedAt": "2026-11-29T12:00:00Z"}),
        ..FakeApi::default()
    };
    let agent = agent("never-wakes", free_port(), start_api(fake.clone()).await, 2);
    let started = Instant::now();
    let response =
        agent_runtime::http::router(agent.clone()).oneshot(post("/v1/chat/completions", &chat())).await.unwrap();
    let waited = started.elapsed();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "30");
    assert!(waited >= Duration::from_secs(2) && waited < Duration::from_secs(10), "bounded by wakeTimeout: {waited:?}");
    let body: Value =
        serde_json::from_slice(&axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap()).unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("Model scripted is waking"), "{message}");
    assert!(message.contains("PullingImage since 2026-11-29T12:00:00Z"), "{message}");
    assert!(!demand_writes(&fake).is_empty(), "the wake was requested");
    let read = fake
        .calls
        .lock()
        .unwrap()
        .iter()
        .any(|(call, _)| call == "GET /apis/agent-operator.dev/v1alpha1/namespaces/test/models/scripted");
    assert!(read, "the phase comes from the Model's status.coldStart");
}

#[tokio::test]
async fn a_refusal_from_a_running_model_is_not_waited_on() {
    // An endpoint that answers 404 is up, not asleep: the error comes back at once.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, Router::new()).await.unwrap() });
    let fake = FakeApi::default();
    let agent = agent("refused", port, start_api(fake.clone()).await, 30);
    let started = Instant::now();
    let (status, body) = crate::support::send(&agent, post("/v1/chat/completions", &chat())).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(demand_writes(&fake).iter().all(|d| d["wakeRequestedAt"].is_null()), "no wake was requested");
}
