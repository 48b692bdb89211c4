//! The Agent's `spec.limits`: daily and monthly budgets refuse model calls (429 with
//! `Retry-After` on chat, a failed task with the reason) until their UTC window resets; per-turn
//! caps stop a turn's tokens and tool calls. The scripted model reports 7 prompt and 3 generated
//! tokens per call; time is injected.

use std::sync::{Arc, Mutex};

use agent_runtime::usage::Clock;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use jiff::Timestamp;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::support::{Reply, Upstream, config, post, quick_options, send, state, temp_dir};

fn chat(content: &str) -> Value {
    json!({"model": "helper", "messages": [{"role": "user", "content": content}]})
}

fn clock_at(time: &str) -> (Clock, Arc<Mutex<Timestamp>>) {
    let now = Arc::new(Mutex::new(time.parse::<Timestamp>().unwrap()));
    let read = now.clone();
    (Clock::new(move || *read.lock().unwrap()), now)
}

#[tokio::test]
async fn a_used_up_daily_budget_answers_429_with_retry_after_until_the_next_utc_day() {
    let upstream = Upstream::start(vec![Reply::Text("one".into()), Reply::Text("two".into())]).await;
    let dir = temp_dir("daily-budget");
    let (clock, now) = clock_at("2026-11-29T23:00:00Z");
    let options = agent_runtime::ServeOptions { clock, ..quick_options() };
    let agent = state(config(&upstream.base_url(), "  limits: {tokensPerDay: 10}\n", &dir, "Chat"), &options);

    let (status, body) = send(&agent, post("/v1/chat/completions", &chat("first"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let response = agent_runtime::http::router(agent.clone())
        .oneshot(post("/v1/chat/completions", &chat("second")))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "3600", "seconds until 00:00 UTC");
    let body: Value =
        serde_json::from_slice(&axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap()).unwrap();
    assert_eq!(body["error"]["type"], "insufficient_quota");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("spec.limits.tokensPerDay (10)") && message.contains("2026-11-30T00:00:00Z"), "{message}");
    assert_eq!(upstream.received().len(), 1, "the refused call never reached the model");

    let (status, task) = send(&agent, post("/v1/tasks", &json!({"input": "report", "wait": true}))).await;
    assert_eq!(status, StatusCode::OK, "{task}");
    let task: Value = serde_json::from_str(&task).unwrap();
    assert_eq!(task["state"], "failed", "{task}");
    assert!(task["error"].as_str().is_some_and(|e| e.contains("tokensPerDay")), "the task says why: {task}");

    *now.lock().unwrap() = "2026-11-30T00:00:05Z".parse().unwrap();
    let (status, body) = send(&agent, post("/v1/chat/completions", &chat("third"))).await;
    assert_eq!(status, StatusCode::OK, "a new UTC day: {body}");
}

#[tokio::test]
async fn tool_calls_past_the_turns_cap_are_not_run_and_the_model_answers_without_tools() {
    let script = vec![
        Reply::ToolCall("current_time".into(), "{}".into()),
        Reply::ToolCall("current_time".into(), "{}".into()),
        Reply::Text("Done.".into()),
    ];
    let upstream = Upstream::start(script).await;
    let dir = temp_dir("tool-cap");
    let spec = "  tools: [{name: clock, builtin: {kind: currentTime}}]\n  limits: {maxToolCallsPerTurn: 1}\n";
    let agent = state(config(&upstream.base_url(), spec, &dir, "Chat"), &quick_options());
    let (status, body) = send(&agent, post("/v1/chat/completions", &chat("time twice"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let calls = upstream.received();
    assert_eq!(calls.len(), 3);
    assert!(calls[1]["tools"].as_array().is_none_or(Vec::is_empty), "no tools offered once the cap is reached");
    let results = upstream.tool_results();
    assert!(results.iter().any(|r| r.starts_with("not run: this turn already made 1 tool calls")), "{results:?}");
    let (_, metrics) = send(&agent, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    assert!(
        metrics.contains(r#"agent_tool_calls_total{tool="current_time",outcome="ok"} 1"#),
        "one call ran: {metrics}"
    );
}

#[tokio::test]
async fn a_turn_past_its_token_cap_stops_before_the_next_model_call_with_422() {
    let upstream =
        Upstream::start(vec![Reply::ToolCall("current_time".into(), "{}".into()), Reply::Text("late".into())]).await;
    let dir = temp_dir("token-cap");
    let spec = "  tools: [{name: clock, builtin: {kind: currentTime}}]\n  limits: {maxTokensPerTurn: 5}\n";
    let agent = state(config(&upstream.base_url(), spec, &dir, "Chat"), &quick_options());
    let (status, body) = send(&agent, post("/v1/chat/completions", &chat("what time"))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains("maxTokensPerTurn"), "{body}");
    assert_eq!(upstream.received().len(), 1, "the second call was not made");
}
