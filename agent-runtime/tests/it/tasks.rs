//! Tasks: the task API (submit, follow, read, list, cancel, bad requests), the same task read
//! over A2A, durability across `kill -9`, and the Agent's own `Once` and `Schedule` runs
//! (not repeated after a restart, retried once when cut off, on a seconds-precise cron in
//! tests, one catch-up run, concurrency and history limits).

use std::time::Duration;

use agent_runtime::http::AppState;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};

use crate::support::peers::eventually;
use crate::support::process::{Running, run_agent_args, run_agent_with};
use crate::support::{Reply, Upstream, config, post, quick_options, send, state, temp_dir};

fn agent(upstream: &Upstream, name: &str) -> AppState {
    state(config(&upstream.base_url(), "", &temp_dir(name), "Chat"), &quick_options())
}

async fn get(agent: &AppState, path: &str) -> (StatusCode, Value) {
    let (status, body) = send(agent, Request::get(path).body(Body::empty()).unwrap()).await;
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

async fn submit(agent: &AppState, body: Value) -> (StatusCode, Value) {
    let (status, body) = send(agent, post("/v1/tasks", &body)).await;
    (status, serde_json::from_str(&body).unwrap())
}

/// The SSE events of a body: `(event, data)`.
fn sse_events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter_map(|block| {
            let event = block.lines().find_map(|l| l.strip_prefix("event: "))?;
            let data = block.lines().find_map(|l| l.strip_prefix("data: "))?;
            Some((event.to_owned(), serde_json::from_str(data).unwrap()))
        })
        .collect()
}

#[tokio::test]
async fn a_task_is_submitted_followed_read_listed_and_is_the_same_task_over_a2a() {
    let upstream = Upstream::start(vec![Reply::Slow("alpha beta gamma".into(), Duration::from_millis(150))]).await;
    let agent = agent(&upstream, "tasks-api");
    let (status, queued) = submit(&agent, json!({"input": "say three words"})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    assert!(matches!(queued["state"].as_str(), Some("queued" | "running")), "{queued}");
    assert_eq!((queued["origin"].as_str(), queued["input"].as_str()), (Some("api"), Some("say three words")));
    let id = queued["id"].as_str().unwrap().to_owned();

    let (status, body) =
        send(&agent, Request::get(format!("/v1/tasks/{id}/events")).body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let events = sse_events(&body);
    assert_eq!(events.first().map(|e| e.0.as_str()), Some("task"), "{body}");
    let streamed: String =
        events.iter().filter(|e| e.0 == "content").map(|e| e.1["text"].as_str().unwrap().to_owned()).collect();
    assert_eq!(streamed.split_whitespace().collect::<Vec<_>>(), ["alpha", "beta", "gamma"], "{body}");
    let (last, done) = events.last().unwrap();
    assert_eq!((last.as_str(), done["state"].as_str()), ("task", Some("completed")), "{body}");

    let (status, task) = get(&agent, &format!("/v1/tasks/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(task["state"], "completed");
    assert_eq!(task["result"].as_str().unwrap().split_whitespace().collect::<Vec<_>>(), ["alpha", "beta", "gamma"]);
    assert_eq!(task["usage"], json!({"inputTokens": 7, "outputTokens": 3}), "the scripted model's usage");
    assert!(task["started"].is_string() && task["finished"].is_string(), "{task}");
    assert_eq!(task["error"], Value::Null);

    // Following a finished task gives it once.
    let (_, body) = send(&agent, Request::get(format!("/v1/tasks/{id}/events")).body(Body::empty()).unwrap()).await;
    assert_eq!(sse_events(&body).len(), 1, "{body}");

    let (status, waited) = submit(&agent, json!({"input": "and now?", "wait": true})).await;
    assert_eq!(
        (status, waited["state"].as_str(), waited["result"].as_str()),
        (StatusCode::OK, Some("completed"), Some("ok"))
    );

    let (_, listed) = get(&agent, "/v1/tasks?state=completed").await;
    let ids: Vec<&str> = listed["tasks"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [waited["id"].as_str().unwrap(), id.as_str()], "newest first");
    let (_, none) = get(&agent, "/v1/tasks?origin=schedule").await;
    assert_eq!(none["tasks"], json!([]));

    let a2a = json!({"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": id}});
    let (_, answer) = send(&agent, post("/a2a", &a2a)).await;
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["result"]["status"]["state"], "TASK_STATE_COMPLETED", "{answer}");
    assert!(answer["result"].get("origin").is_none(), "A2A clients get the A2A task only: {answer}");
}

#[tokio::test]
async fn a_running_task_is_cancelled_once_and_bad_requests_are_named() {
    let upstream = Upstream::start(vec![Reply::Hang]).await;
    let agent = agent(&upstream, "tasks-cancel");
    let (_, task) = submit(&agent, json!({"input": "think forever"})).await;
    let id = task["id"].as_str().unwrap();
    let (status, cancelled) = send(&agent, post(&format!("/v1/tasks/{id}/cancel"), &json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    let cancelled: Value = serde_json::from_str(&cancelled).unwrap();
    assert_eq!((cancelled["state"].as_str(), cancelled["error"].as_str()), (Some("cancelled"), Some("canceled")));
    let (status, again) = send(&agent, post(&format!("/v1/tasks/{id}/cancel"), &json!({}))).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(again.contains("cannot be canceled: it is cancelled"), "{again}");

    for (body, says) in [
        (json!({}), "missing field `input`"),
        (json!({"input": "  "}), "input must not be empty"),
        (json!({"input": "x", "priority": 1}), "unknown field `priority`"),
        (json!({"input": "x", "contextId": "no spaces allowed"}), "contextId"),
    ] {
        let (status, error) = submit(&agent, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {error}");
        assert!(error["error"]["message"].as_str().unwrap().contains(says), "{body}: {error}");
    }
    let (status, missing) = get(&agent, "/v1/tasks/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(missing["error"]["message"], "task nope not found");
}

async fn tasks_of(agent: &Running, query: &str) -> Vec<Value> {
    agent.get_json(&format!("/v1/tasks{query}")).await["tasks"].as_array().unwrap().clone()
}

#[tokio::test]
async fn kill_9_mid_task_leaves_it_failed_and_interrupted_after_the_restart_and_it_is_not_run_again() {
    let upstream =
        Upstream::start(vec![Reply::Slow("one two three four five six".into(), Duration::from_millis(400))]).await;
    let mut agent = run_agent_with(&upstream, "tasks-kill9", "", |_| {}).await;
    let submitted = agent.post_json("/v1/tasks", &json!({"input": "count slowly"})).await;
    let id = submitted["id"].as_str().unwrap().to_owned();
    eventually(10, "the task runs", || async {
        agent.get_json(&format!("/v1/tasks/{id}")).await["state"] == "running"
    })
    .await;
    agent.kill();
    let calls = upstream.received().len();
    agent.restart().await;
    let task = agent.get_json(&format!("/v1/tasks/{id}")).await;
    assert_eq!((task["state"].as_str(), task["interrupted"].as_bool()), (Some("failed"), Some(true)), "{task}");
    assert!(task["error"].as_str().unwrap().contains("restarted while the task ran"), "{task}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(upstream.received().len(), calls, "an API task is not run again by itself");
    agent.kill();
}

const ONCE: &str = "  task: {mode: Once, input: Write the daily report.}\n";

#[tokio::test]
async fn a_once_task_runs_at_first_start_not_after_a_restart_and_again_for_a_new_task_generation() {
    let upstream = Upstream::start(vec![Reply::Text("report written".into())]).await;
    let mut agent = run_agent_with(&upstream, "tasks-once", ONCE, |_| {}).await;
    eventually(10, "the Once task completes", || async {
        tasks_of(&agent, "?origin=once").await.first().is_some_and(|t| t["state"] == "completed")
    })
    .await;
    let first = tasks_of(&agent, "?origin=once").await.remove(0);
    assert_eq!(
        (first["input"].as_str(), first["result"].as_str()),
        (Some("Write the daily report."), Some("report written"))
    );
    assert_eq!(first["attempt"], 1);
    let generation = first["taskGeneration"].as_str().unwrap().to_owned();

    agent.kill();
    agent.restart().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(tasks_of(&agent, "?origin=once").await.len(), 1, "not run again after a restart");
    assert_eq!(upstream.received().len(), 1);

    agent.kill();
    agent.rewrite_config(|config| {
        config.task.input = Some("Write the weekly report.".into());
        config.task.generation = "edited-task".into();
    });
    agent.restart().await;
    eventually(10, "the new generation's task completes", || async {
        let once = tasks_of(&agent, "?origin=once").await;
        once.len() == 2 && once[0]["state"] == "completed"
    })
    .await;
    let newest = tasks_of(&agent, "?origin=once").await.remove(0);
    assert_eq!(newest["taskGeneration"], "edited-task");
    assert_ne!(newest["taskGeneration"].as_str(), Some(generation.as_str()));
    agent.kill();
}

#[tokio::test]
async fn a_once_task_cut_off_by_a_restart_is_retried_once_as_attempt_2() {
    let upstream = Upstream::start(vec![
        Reply::Slow("slow slow slow slow slow slow".into(), Duration::from_millis(400)),
        Reply::Text("done on the second try".into()),
    ])
    .await;
    let mut agent = run_agent_with(&upstream, "tasks-once-retry", ONCE, |_| {}).await;
    eventually(10, "the Once task runs", || async {
        tasks_of(&agent, "?origin=once").await.first().is_some_and(|t| t["state"] == "running")
    })
    .await;
    agent.kill();
    agent.restart().await;
    eventually(10, "the retry completes", || async {
        tasks_of(&agent, "?origin=once").await.first().is_some_and(|t| t["state"] == "completed")
    })
    .await;
    let once = tasks_of(&agent, "?origin=once").await;
    assert_eq!(once.len(), 2, "{once:#?}");
    let (retry, cut) = (&once[0], &once[1]);
    assert_eq!((retry["attempt"].as_u64(), retry["result"].as_str()), (Some(2), Some("done on the second try")));
    assert_eq!(retry["retryOf"], cut["id"]);
    assert_eq!((cut["state"].as_str(), cut["interrupted"].as_bool()), (Some("failed"), Some(true)));

    agent.kill();
    agent.restart().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(tasks_of(&agent, "?origin=once").await.len(), 2, "a completed retry is not run again");
    agent.kill();
}

const SCHEDULE: &str = "  task: {mode: Schedule, schedule: '* * * * *', input: Check the queue., successfulRunsHistoryLimit: 2, failedRunsHistoryLimit: 1}\n";

/// A schedule every `seconds` seconds (seconds-precise schedules are a test-only knob).
fn every(seconds: u32) -> impl FnOnce(&mut agent_crds::RuntimeConfig) {
    move |config| config.task.schedule = Some(format!("*/{seconds} * * * * *"))
}

#[tokio::test]
async fn scheduled_runs_follow_the_cron_keep_their_history_limit_and_catch_up_one_missed_run() {
    let upstream = Upstream::start(Vec::new()).await;
    let mut agent = run_agent_args(&upstream, "tasks-schedule", SCHEDULE, every(2), &["--schedule-seconds"]).await;
    eventually(15, "three scheduled runs happened", || async { upstream.received().len() >= 3 }).await;
    eventually(5, "the history is pruned to its limit", || async {
        tasks_of(&agent, "?origin=schedule").await.len() == 2
    })
    .await;
    let runs = tasks_of(&agent, "?origin=schedule").await;
    for run in &runs {
        assert_eq!(run["state"], "completed", "{run}");
        let at: jiff::Timestamp = run["scheduledFor"].as_str().unwrap().parse().unwrap();
        assert_eq!(at.as_second() % 2, 0, "runs start at the cron's times: {run}");
    }

    agent.kill();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let restarted = jiff::Timestamp::now();
    let calls = upstream.received().len();
    agent.restart().await;
    eventually(10, "a catch-up run happened", || async {
        tasks_of(&agent, "?origin=schedule").await.iter().any(|run| {
            let at: jiff::Timestamp = run["scheduledFor"].as_str().unwrap().parse().unwrap();
            let created: jiff::Timestamp = run["created"].as_str().unwrap().parse().unwrap();
            at < restarted && created > restarted && run["state"] == "completed"
        })
    })
    .await;
    let caught_up = tasks_of(&agent, "?origin=schedule")
        .await
        .into_iter()
        .filter(|run| {
            let created: jiff::Timestamp = run["created"].as_str().unwrap().parse().unwrap();
            let at: jiff::Timestamp = run["scheduledFor"].as_str().unwrap().parse().unwrap();
            created > restarted && at < restarted
        })
        .count();
    assert_eq!(caught_up, 1, "one catch-up run for the two or three missed times");
    assert!(upstream.received().len() > calls);
    agent.kill();
}

#[tokio::test]
async fn a_scheduled_run_due_while_the_previous_one_runs_is_skipped_by_default() {
    let upstream = Upstream::start(vec![Reply::Slow("a b c d e f g h".into(), Duration::from_millis(500))]).await;
    let agent = run_agent_args(&upstream, "tasks-forbid", SCHEDULE, every(1), &["--schedule-seconds"]).await;
    eventually(15, "the slow run finished and a later one ran", || async { upstream.received().len() >= 2 }).await;
    let runs = tasks_of(&agent, "?origin=schedule").await;
    let stamp = |value: &Value| value.as_str().and_then(|text| text.parse::<jiff::Timestamp>().ok());
    let mut spans: Vec<(jiff::Timestamp, jiff::Timestamp)> =
        runs.iter().filter_map(|r| Some((stamp(&r["started"])?, stamp(&r["finished"])?))).collect();
    spans.sort();
    assert!(spans.len() >= 2, "{runs:#?}");
    for pair in spans.windows(2) {
        assert!(pair[1].0 >= pair[0].1, "runs overlapped under Forbid: {pair:?}");
    }
    let mut agent = agent;
    agent.kill();
}

#[tokio::test]
async fn under_replace_a_due_run_cancels_the_one_still_running() {
    let upstream = Upstream::start(vec![Reply::Slow("a b c d e f g h".into(), Duration::from_millis(500))]).await;
    let replace = |config: &mut agent_crds::RuntimeConfig| {
        every(1)(config);
        config.task.concurrency_policy = agent_crds::agent::ConcurrencyPolicy::Replace;
        config.task.failed_runs_history_limit = 5;
    };
    let mut agent = run_agent_args(&upstream, "tasks-replace", SCHEDULE, replace, &["--schedule-seconds"]).await;
    eventually(15, "a slow run was replaced and a later one completed", || async {
        let runs = tasks_of(&agent, "?origin=schedule").await;
        runs.iter().any(|r| r["state"] == "cancelled") && runs.iter().any(|r| r["state"] == "completed")
    })
    .await;
    let cancelled = tasks_of(&agent, "?state=cancelled").await;
    assert_eq!(cancelled[0]["origin"], "schedule", "{cancelled:#?}");
    agent.kill();
}
