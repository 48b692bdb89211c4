//! The chat API against a scripted OpenAI-compatible upstream: the wire format, sessions, the
//! tool loop, and a clear error for every way a request or the model can fail.

use crate::support::{Reply, Upstream, config, post, quick_options, send, state, temp_dir};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};

fn chat(content: &str, stream: bool) -> Value {
    json!({"model": "helper", "messages": [{"role": "user", "content": content}], "stream": stream})
}

fn sse_data(body: &str) -> Vec<String> {
    body.lines().filter_map(|l| l.strip_prefix("data: ")).map(str::to_owned).collect()
}

#[tokio::test]
async fn a_non_streamed_answer_has_the_openai_shape_and_the_persona_applies() {
    let upstream = Upstream::start(vec![Reply::Text("Paris is the capital.".into())]).await;
    let dir = temp_dir("plain");
    let agent = state(
        config(
            &upstream.base_url(),
            "  persona: {systemPrompt: You are terse.}\n  model: {modelRef: {name: scripted}, parameters: {temperature: 0.1}}\n",
            &dir,
            "Chat",
        ),
        &quick_options(),
    );
    let (status, body) = send(&agent, post("/v1/chat/completions", &chat("Capital of France?", false))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let response: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(response["object"], "chat.completion");
    assert_eq!(response["model"], "helper");
    assert_eq!(response["choices"][0]["message"]["content"], "Paris is the capital.");
    assert_eq!(response["choices"][0]["finish_reason"], "stop");
    assert_eq!(response["usage"]["total_tokens"], 10);
    let sent = &upstream.received()[0];
    assert_eq!(sent["messages"][0], json!({"role": "system", "content": "You are terse."}));
    assert_eq!(sent["temperature"], 0.1, "the agent's generation parameters reach the model");
}

#[tokio::test]
async fn a_streamed_answer_is_sse_chunks_then_usage_then_done() {
    let upstream = Upstream::start(vec![Reply::Text("one two three".into())]).await;
    let dir = temp_dir("stream");
    let agent = state(config(&upstream.base_url(), "", &dir, "Chat"), &quick_options());
    let mut request = chat("count", true);
    request["stream_options"] = json!({"include_usage": true});
    let (status, body) = send(&agent, post("/v1/chat/completions", &request)).await;
    assert_eq!(status, StatusCode::OK);
    let data = sse_data(&body);
    assert_eq!(data.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = data[..data.len() - 1].iter().map(|d| serde_json::from_str(d).unwrap()).collect();
    let text: String = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(text, "one two three");
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert!(chunks.iter().all(|c| c["object"] == "chat.completion.chunk" && c["id"] == chunks[0]["id"]));
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    assert_eq!(last["usage"]["completion_tokens"], 3);
}

#[tokio::test]
async fn a_session_keeps_the_conversation_and_the_second_turn_sees_the_first() {
    let upstream =
        Upstream::start(vec![Reply::Text("Nice to meet you, Ada.".into()), Reply::Text("You are Ada.".into())]).await;
    let dir = temp_dir("session");
    let agent = state(config(&upstream.base_url(), "", &dir, "Chat"), &quick_options());
    let turn = |content: &str| {
        Request::post("/v1/chat/completions")
            .header("content-type", "application/json")
            .header("x-session-id", "ada-1")
            .body(Body::from(chat(content, false).to_string()))
            .unwrap()
    };
    assert_eq!(send(&agent, turn("I am Ada.")).await.0, StatusCode::OK);
    assert_eq!(send(&agent, turn("Who am I?")).await.0, StatusCode::OK);
    let second = &upstream.received()[1]["messages"];
    let contents: Vec<&str> = second.as_array().unwrap().iter().map(|m| m["content"].as_str().unwrap()).collect();
    assert_eq!(contents, ["I am Ada.", "Nice to meet you, Ada.", "Who am I?"]);

    let (status, body) = send(&agent, Request::get("/v1/sessions/ada-1").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let session: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(session["turns"], 2);
    assert_eq!(session["messages"].as_array().unwrap().len(), 4);
    let delete = || Request::delete("/v1/sessions/ada-1").body(Body::empty()).unwrap();
    assert_eq!(send(&agent, delete()).await.0, StatusCode::NO_CONTENT);
    assert_eq!(send(&agent, delete()).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_user_field_names_the_session_and_resent_history_is_not_duplicated() {
    let upstream = Upstream::start(vec![Reply::Text("A.".into()), Reply::Text("B.".into())]).await;
    let dir = temp_dir("user");
    let agent = state(config(&upstream.base_url(), "", &dir, "Chat"), &quick_options());
    let mut first = chat("q1", false);
    first["user"] = json!("bob");
    send(&agent, post("/v1/chat/completions", &first)).await;
    let second = json!({"user": "bob", "messages": [
        {"role": "user", "content": "q1"}, {"role": "assistant", "content": "A."}, {"role": "user", "content": "q2"}]});
    send(&agent, post("/v1/chat/completions", &second)).await;
    let messages = upstream.received()[1]["messages"].as_array().unwrap().len();
    assert_eq!(messages, 3, "the stored turn and the resent one are the same turn");
}

#[tokio::test]
async fn the_model_calls_a_tool_and_answers_with_its_result() {
    let upstream =
        Upstream::start(vec![Reply::ToolCall("current_time".into(), "{}".into()), Reply::Text("It is late.".into())])
            .await;
    let dir = temp_dir("tools");
    let agent = state(
        config(&upstream.base_url(), "  tools: [{name: clock, builtin: {kind: currentTime}}]\n", &dir, "Chat"),
        &quick_options(),
    );
    let (status, body) = send(&agent, post("/v1/chat/completions", &chat("What time is it?", false))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let response: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(response["choices"][0]["message"]["content"], "It is late.");
    let calls = upstream.received();
    assert_eq!(calls[0]["tools"][0]["function"]["name"], "current_time");
    let follow_up = calls[1]["messages"].as_array().unwrap();
    let tool_message = follow_up.iter().find(|m| m["role"] == "tool").expect("the tool result goes back to the model");
    assert_eq!(tool_message["tool_call_id"], "call_a");
    assert!(tool_message["content"].as_str().unwrap().contains('T'), "an RFC 3339 time: {tool_message}");
    let (_, metrics) = send(&agent, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    assert!(metrics.contains(r#"agent_tool_calls_total{tool="current_time",outcome="ok"} 1"#), "{metrics}");
}

#[tokio::test]
async fn a_model_that_keeps_calling_tools_is_stopped_after_the_step_bound() {
    let script = vec![Reply::ToolCall("current_time".into(), "{}".into()); 3];
    let upstream = Upstream::start(script).await;
    let dir = temp_dir("steps");
    let mut options = quick_options();
    options.max_tool_steps = 2;
    let agent = state(
        config(&upstream.base_url(), "  tools: [{name: clock, builtin: {kind: currentTime}}]\n", &dir, "Chat"),
        &options,
    );
    let (status, body) = send(&agent, post("/v1/chat/completions", &chat("loop", false))).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(body.contains("the model kept calling tools after 2 tool steps"), "{body}");
    let calls = upstream.received();
    assert_eq!(calls.len(), 3, "two tool rounds, then a final call");
    assert!(calls[2].get("tools").is_none(), "the last call offers no tools, so the model must answer");
}

#[tokio::test]
async fn an_unknown_tool_is_reported_to_the_model_not_to_the_client() {
    let upstream =
        Upstream::start(vec![Reply::ToolCall("rm_rf".into(), "{}".into()), Reply::Text("Sorry.".into())]).await;
    let dir = temp_dir("unknown-tool");
    let agent = state(
        config(&upstream.base_url(), "  tools: [{name: clock, builtin: {kind: currentTime}}]\n", &dir, "Chat"),
        &quick_options(),
    );
    let (status, _) = send(&agent, post("/v1/chat/completions", &chat("go", false))).await;
    assert_eq!(status, StatusCode::OK);
    let follow_up = upstream.received()[1]["messages"].clone();
    let tool = follow_up.as_array().unwrap().iter().find(|m| m["role"] == "tool").unwrap().clone();
    assert!(
        tool["content"].as_str().unwrap().contains("there is no tool named rm_rf; available: current_time"),
        "{tool}"
    );
}

#[tokio::test]
async fn a_base_model_gets_a_plain_question_answer_prompt() {
    let upstream = Upstream::start(vec![Reply::Text(" Paris.".into())]).await;
    let dir = temp_dir("completion");
    let agent = state(
        config(&upstream.base_url(), "  persona: {systemPrompt: Answer briefly.}\n", &dir, "Completion"),
        &quick_options(),
    );
    let (status, body) = send(&agent, post("/v1/chat/completions", &chat("Capital of France?", false))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let sent = &upstream.received()[0];
    assert_eq!(sent["prompt"], "Answer briefly.\n\nQuestion: Capital of France?\nAnswer:");
    assert!(sent["stop"].as_array().unwrap().contains(&json!("\nQuestion:")));
    let response: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(response["choices"][0]["message"]["content"], " Paris.");
}

#[tokio::test]
async fn malformed_oversized_and_invalid_requests_get_400_and_413() {
    let upstream = Upstream::start(vec![]).await;
    let dir = temp_dir("bad");
    let mut options = quick_options();
    options.limits.max_body_bytes = 4096;
    let agent = state(config(&upstream.base_url(), "", &dir, "Chat"), &options);
    let broken = Request::post("/v1/chat/completions")
        .header("content-type", "application/json")
        .body(Body::from("{\"messages\": ["))
        .unwrap();
    let (status, body) = send(&agent, broken).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["error"]["type"], "invalid_request_error");
    assert_eq!(send(&agent, post("/v1/chat/completions", &json!({"messages": []}))).await.0, StatusCode::BAD_REQUEST);
    let (status, body) = send(&agent, post("/v1/chat/completions", &chat(&"x".repeat(10_000), false))).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(body.contains("exceeds 4096 bytes"), "{body}");
    let bad_session = Request::post("/v1/chat/completions")
        .header("content-type", "application/json")
        .header("x-session-id", "../../etc")
        .body(Body::from(chat("hi", false).to_string()))
        .unwrap();
    assert_eq!(send(&agent, bad_session).await.0, StatusCode::BAD_REQUEST);
    assert!(upstream.received().is_empty(), "no bad request reaches the model");
}

#[tokio::test]
async fn a_wrong_or_missing_api_key_gets_401() {
    let upstream = Upstream::start(vec![]).await;
    let dir = temp_dir("auth");
    std::fs::create_dir_all(dir.join("secrets/helper-api")).unwrap();
    std::fs::write(dir.join("secrets/helper-api/token"), "s3cret\n").unwrap();
    let agent = state(
        config(&upstream.base_url(), "  api: {authSecretRef: {name: helper-api, key: token}}\n", &dir, "Chat"),
        &quick_options(),
    );
    let with_key = |key: &str| {
        Request::post("/v1/chat/completions")
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {key}"))
            .body(Body::from(chat("hi", false).to_string()))
            .unwrap()
    };
    assert_eq!(send(&agent, with_key("wrong")).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(send(&agent, post("/v1/chat/completions", &chat("hi", false))).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(send(&agent, with_key("s3cret")).await.0, StatusCode::OK);
    assert_eq!(
        send(&agent, Request::get("/healthz").body(Body::empty()).unwrap()).await.0,
        StatusCode::OK,
        "probes need no key"
    );
}

#[tokio::test]
async fn a_failing_model_is_retried_before_the_first_token_then_reported_as_502() {
    let upstream = Upstream::start(vec![Reply::Status(503), Reply::Text("recovered".into())]).await;
    let dir = temp_dir("retry");
    let agent = state(config(&upstream.base_url(), "", &dir, "Chat"), &quick_options());
    let (status, body) = send(&agent, post("/v1/chat/completions", &chat("hi", false))).await;
    assert_eq!(status, StatusCode::OK, "a 503 is retried: {body}");
    assert_eq!(upstream.received().len(), 2);

    let broken = Upstream::start(vec![Reply::Status(500); 3]).await;
    let agent = state(config(&broken.base_url(), "", &temp_dir("retry-fail"), "Chat"), &quick_options());
    let (status, body) = send(&agent, post("/v1/chat/completions", &chat("hi", true))).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert!(body.contains("HTTP 500"), "{body}");
    assert_eq!(broken.received().len(), 3, "three attempts");
    let rejected = Upstream::start(vec![Reply::Status(400)]).await;
    let agent = state(config(&rejected.base_url(), "", &temp_dir("no-retry"), "Chat"), &quick_options());
    assert_eq!(send(&agent, post("/v1/chat/completions", &chat("hi", false))).await.0, StatusCode::BAD_GATEWAY);
    assert_eq!(rejected.received().len(), 1, "a 400 is not retried");
}

#[tokio::test]
async fn an_unreachable_model_is_502_and_a_hanging_one_504_and_the_agent_stays_healthy() {
    let dir = temp_dir("down");
    let agent = state(config("http://127.0.0.1:9/v1", "", &dir, "Chat"), &quick_options());
    let (status, body) = send(&agent, post("/v1/chat/completions", &chat("hi", false))).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert!(body.contains("unreachable"), "{body}");

    let hanging = Upstream::start(vec![Reply::Hang]).await;
    let agent = state(config(&hanging.base_url(), "", &temp_dir("hang"), "Chat"), &quick_options());
    let (status, body) = send(&agent, post("/v1/chat/completions", &chat("hi", true))).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    assert!(body.contains("did not answer within 2 s"), "{body}");
    assert_eq!(send(&agent, Request::get("/healthz").body(Body::empty()).unwrap()).await.0, StatusCode::OK);
}

#[tokio::test]
async fn requests_beyond_the_concurrency_bound_get_429() {
    let upstream = Upstream::start(vec![Reply::Hang]).await;
    let dir = temp_dir("busy");
    let mut options = quick_options();
    options.limits.max_concurrency = 1;
    let agent = state(config(&upstream.base_url(), "", &dir, "Chat"), &options);
    let busy = agent.clone();
    let first = tokio::spawn(async move { send(&busy, post("/v1/chat/completions", &chat("slow", false))).await });
    while upstream.received().is_empty() {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let (status, body) = send(&agent, post("/v1/chat/completions", &chat("second", false))).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(first.await.unwrap().0, StatusCode::GATEWAY_TIMEOUT);
}

#[tokio::test]
async fn readiness_waits_for_the_model_and_metrics_count_requests() {
    let upstream = Upstream::start(vec![Reply::Text("hi".into())]).await;
    let dir = temp_dir("ready");
    let agent = state(config(&upstream.base_url(), "", &dir, "Chat"), &quick_options());
    assert_eq!(
        send(&agent, Request::get("/readyz").body(Body::empty()).unwrap()).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    agent.agent.check_model().await.unwrap();
    assert_eq!(send(&agent, Request::get("/readyz").body(Body::empty()).unwrap()).await.0, StatusCode::OK);
    send(&agent, post("/v1/chat/completions", &chat("hi", true))).await;
    let (_, metrics) = send(&agent, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    assert!(metrics.contains(r#"agent_requests_total{route="chat_completions",status="200"} 1"#), "{metrics}");
    assert!(metrics.contains("agent_time_to_first_token_seconds_count 1"), "{metrics}");
    assert!(metrics.contains(r#"agent_tokens_total{direction="out"} 3"#), "{metrics}");
    assert!(metrics.contains("agent_active_streams 0"), "{metrics}");
    let (status, models) = send(&agent, Request::get("/v1/models").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(models.contains("\"id\":\"helper\""), "{models}");
}

#[tokio::test]
async fn with_a_metrics_port_the_api_port_no_longer_answers_metrics_and_the_metrics_port_only_metrics() {
    use tower::ServiceExt;
    let upstream = Upstream::start(vec![Reply::Text("hi".into())]).await;
    let dir = temp_dir("metrics-port");
    let agent = state(config(&upstream.base_url(), "", &dir, "Chat"), &quick_options());
    let get = |path: &str| Request::get(path).body(Body::empty()).unwrap();
    let api = agent_runtime::http::api_router(agent.clone());
    let on_api = api.clone().oneshot(get("/metrics")).await.unwrap();
    assert_eq!(on_api.status(), StatusCode::NOT_FOUND);
    assert_eq!(api.oneshot(get("/healthz")).await.unwrap().status(), StatusCode::OK);
    let metrics = agent_runtime::http::metrics_router(agent.clone());
    let scraped = metrics.clone().oneshot(get("/metrics")).await.unwrap();
    assert_eq!(scraped.status(), StatusCode::OK);
    let body = axum::body::to_bytes(scraped.into_body(), 1 << 20).await.unwrap();
    assert!(String::from_utf8_lossy(&body).contains("agent_requests_total"), "the scrape is the runtime's metrics");
    let chat_there = metrics.oneshot(post("/v1/chat/completions", &chat("hi", false))).await.unwrap();
    assert_eq!(chat_there.status(), StatusCode::NOT_FOUND, "the metrics port serves no API");
}

#[tokio::test]
async fn every_model_call_of_a_turn_is_counted_and_priced_per_model() {
    let upstream =
        Upstream::start(vec![Reply::ToolCall("current_time".into(), "{}".into()), Reply::Text("It is late.".into())])
            .await;
    let dir = temp_dir("priced");
    let mut config =
        config(&upstream.base_url(), "  tools: [{name: clock, builtin: {kind: currentTime}}]\n", &dir, "Chat");
    config.model.pricing = Some(agent_crds::model::Pricing {
        input_per_million_tokens: "2.5".into(),
        output_per_million_tokens: "10".into(),
        currency: "EUR".into(),
    });
    let agent = state(config, &quick_options());
    let (status, body) = send(&agent, post("/v1/chat/completions", &chat("What time is it?", false))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Two calls (the tool call, then the answer), 7 prompt and 3 generated tokens each.
    let counted = &agent.usage.counts()["scripted"];
    assert_eq!((counted.calls, counted.input, counted.output), (2, 14, 6));
    // 14 × 2.5 / 1M + 6 × 10 / 1M = 0.000035 + 0.00006
    assert_eq!(agent_runtime::usage::decimal(counted.cost_units), "0.000095");
    let (_, metrics) = send(&agent, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    assert!(metrics.contains(r#"agent_model_tokens_total{model="scripted",direction="in"} 14"#), "{metrics}");
    assert!(metrics.contains(r#"agent_model_cost_total{model="scripted",currency="EUR"} 0.000095"#), "{metrics}");
}

#[tokio::test]
async fn older_turns_beyond_the_context_budget_are_summarised_by_the_model_not_cut() {
    let long = "word ".repeat(120);
    let script = vec![
        Reply::Text(long.clone()),
        Reply::Text(long.clone()),
        Reply::Text("Ada likes tea and lives in Paris.".into()),
        Reply::Text("You like tea.".into()),
    ];
    let upstream = Upstream::start(script).await;
    let dir = temp_dir("summary");
    let spec = "  model: {modelRef: {name: scripted}, parameters: {contextBudget: 400}}\n";
    let agent = state(config(&upstream.base_url(), spec, &dir, "Chat"), &quick_options());
    let turn = |content: String| {
        Request::post("/v1/chat/completions")
            .header("content-type", "application/json")
            .header("x-session-id", "long")
            .body(Body::from(chat(&content, false).to_string()))
            .unwrap()
    };
    for content in
        [format!("I am Ada, I like tea. {long}"), format!("I live in Paris. {long}"), "What do I like?".to_owned()]
    {
        let (status, body) = send(&agent, turn(content)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let calls = upstream.received();
    assert_eq!(calls.len(), 4, "two turns, one summary call, one answer");
    let summary_call = calls[2]["messages"].as_array().unwrap();
    assert!(summary_call[0]["content"].as_str().unwrap().starts_with("Summarise the conversation"));
    assert!(
        summary_call[1]["content"].as_str().unwrap().contains("I am Ada, I like tea."),
        "the oldest turn is summarised"
    );
    let answered = calls[3]["messages"].as_array().unwrap();
    assert_eq!(answered[0]["content"], "Summary of the earlier conversation: Ada likes tea and lives in Paris.");
    assert!(
        !answered.iter().any(|m| m["content"].as_str().unwrap().starts_with("I am Ada")),
        "folded turns are not sent verbatim"
    );
    let (_, session) = send(&agent, Request::get("/v1/sessions/long").body(Body::empty()).unwrap()).await;
    let session: Value = serde_json::from_str(&session).unwrap();
    assert_eq!(session["summary"], "Ada likes tea and lives in Paris.");
    assert_eq!(session["turns"], 3);
}

#[tokio::test]
async fn the_model_api_key_and_extra_headers_are_sent_upstream() {
    let upstream = Upstream::start(vec![]).await;
    let dir = temp_dir("headers");
    std::fs::create_dir_all(dir.join("secrets/llm")).unwrap();
    std::fs::write(dir.join("secrets/llm/key"), "sk-upstream\n").unwrap();
    let mut config = config(&upstream.base_url(), "", &dir, "Chat");
    config.model.api_key_file = Some(dir.join("secrets/llm/key").display().to_string());
    config.model.headers.insert("X-Tenant".into(), "blue".into());
    let agent = state(config, &quick_options());
    assert_eq!(send(&agent, post("/v1/chat/completions", &chat("hi", false))).await.0, StatusCode::OK);
    let headers = &upstream.received()[0]["_headers"];
    assert_eq!(headers["authorization"], "Bearer sk-upstream");
    assert_eq!(headers["x-tenant"], "blue");
}
