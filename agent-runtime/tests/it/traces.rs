//! Traces of a turn: the runtime binary, configured only by the standard `OTEL_*` variables,
//! exports over OTLP/HTTP to a real receiver (the OpenTelemetry proto package from PyPI,
//! `tests/python/otlp_receiver.py`). A chat turn with retrieval (a recipe), memory recall and an
//! MCP tool call (the official Python SDK's server) is one trace under the client's
//! `traceparent`, with the GenAI spans, attributes and parent links; the context reaches the
//! model and the MCP server; no content is recorded unless asked for; OTLP/JSON and OTLP/gRPC
//! (to a tonic receiver built from the OpenTelemetry protos) work as the protocol variable says.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use agent_crds::recipe::RecipeSpec;
use agent_crds::runtime_config::{RecipeConfig, ToolKind};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use serde_json::{Value, json};

use crate::support::peers::{McpPeer, peer_python, repo_root};
use crate::support::process::{Running, run_agent_env};
use crate::support::{Reply, Upstream};

const TOKEN: &str = "trace-test-token";
/// The client's trace and span (the W3C Trace Context example).
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";
const QUESTION: &str = "How do I reach the intranet from home?";

/// The OTLP receiver, killed on drop.
struct Receiver {
    child: Child,
    url: String,
}

impl Receiver {
    fn start() -> Self {
        let mut child = Command::new(peer_python())
            .arg(repo_root().join("tests/python/otlp_receiver.py"))
            .arg("0")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the OTLP receiver starts (scripts/install-peers.sh installs its venv)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port = line.trim().strip_prefix("LISTENING ").unwrap_or_else(|| panic!("receiver said {line:?}"));
        Self { child, url: format!("http://127.0.0.1:{port}") }
    }

    /// Waits until a span named `name` arrived, then returns every span received.
    async fn spans_once(&self, name: &str) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let spans: Vec<Value> = reqwest::get(format!("{}/spans", self.url)).await.unwrap().json().await.unwrap();
            if spans.iter().any(|s| s["name"] == name) {
                return spans;
            }
            assert!(Instant::now() < deadline, "no span {name:?} within 30 s; received: {spans:#?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An agent with a recipe over two documents and the MCP server's `trace_context` tool,
/// exporting its traces to `receiver` with `env` added.
async fn traced_agent(upstream: &Upstream, mcp: &McpPeer, receiver: &Receiver, env: &[(&str, String)]) -> Running {
    let spec = format!(
        "  tools:\n  - name: tickets\n    mcp:\n      url: {}\n      authSecretRef: {{name: mcp-auth, key: token}}\n      allow: [trace_context]\n",
        mcp.url()
    );
    let mut vars = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url.clone()),
        ("OTEL_SERVICE_NAME", "helpdesk".to_owned()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()),
    ];
    vars.extend(env.iter().cloned());
    let adjust = |config: &mut agent_crds::RuntimeConfig| {
        if let ToolKind::Mcp { token_file: Some(path), .. } = &config.tools[0].kind {
            std::fs::create_dir_all(std::path::Path::new(path).parent().unwrap()).unwrap();
            std::fs::write(path, TOKEN).unwrap();
        }
        let mut recipe = RecipeSpec::default();
        recipe.retrieve.top_k = 1;
        recipe.retrieve.fetch_k = 2;
        recipe.rerank.strategy = agent_crds::recipe::RerankStrategy::Mmr;
        config.recipe = Some(RecipeConfig {
            name: "helpdesk-qa".into(),
            parameters: BTreeMap::new(),
            spec: recipe,
            sources: Vec::new(),
        });
    };
    let agent = run_agent_env(upstream, "traced", &spec, adjust, &[], &vars).await;
    let documents = json!({"documents": [
        {"name": "vpn.md", "content": "Connect to the NorthGate VPN with your YubiKey before opening the intranet."},
        {"name": "lunch.md", "content": "The canteen serves lunch from noon to two o'clock every weekday."},
    ]});
    let ingested = agent.client.post(format!("{}/v1/knowledge/documents", agent.base)).json(&documents).send().await;
    assert_eq!(ingested.unwrap().status(), 201);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !agent.get_json("/v1/tools").await.to_string().contains("trace_context") {
        assert!(Instant::now() < deadline, "the MCP server's tools were never listed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    agent
}

/// One streamed chat turn in session `s-1` under the client's span.
async fn ask(agent: &Running) -> String {
    let response = agent
        .client
        .post(format!("{}/v1/chat/completions", agent.base))
        .header("traceparent", format!("00-{TRACE_ID}-{CLIENT_SPAN}-01"))
        .header("x-session-id", "s-1")
        .json(&json!({"messages": [{"role": "user", "content": QUESTION}], "stream": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

/// The spans of trace `trace` as an indented tree with durations (printed by the test).
fn tree(spans: &[Value], trace: &str) -> String {
    fn children(spans: &[Value], parent: &str, depth: usize, out: &mut String) {
        let mut level: Vec<&Value> = spans.iter().filter(|s| s["parent_span_id"] == parent).collect();
        level.sort_by_key(|s| s["start_ns"].as_u64());
        for span in level {
            let nanos = span["end_ns"].as_u64().unwrap_or(0) - span["start_ns"].as_u64().unwrap_or(0);
            let millis = std::time::Duration::from_nanos(nanos).as_secs_f64() * 1000.0;
            let line = format!(
                "{:indent$}{} ({:.1} ms)\n",
                "",
                span["name"].as_str().unwrap_or("?"),
                millis,
                indent = depth * 2
            );
            out.push_str(&line);
            children(spans, span["span_id"].as_str().unwrap_or_default(), depth + 1, out);
        }
    }
    let in_trace: Vec<Value> = spans.iter().filter(|s| s["trace_id"] == trace).cloned().collect();
    let mut out = String::new();
    children(&in_trace, CLIENT_SPAN, 0, &mut out);
    out
}

fn named<'a>(spans: &'a [Value], name: &str) -> Vec<&'a Value> {
    spans.iter().filter(|s| s["name"] == name).collect()
}

fn one<'a>(spans: &'a [Value], name: &str) -> &'a Value {
    let found = named(spans, name);
    assert_eq!(found.len(), 1, "one span {name:?} expected in {spans:#?}");
    found[0]
}

#[tokio::test]
async fn a_turn_is_one_trace_under_the_callers_span_with_genai_spans_and_no_content() {
    let receiver = Receiver::start();
    let mut mcp = McpPeer::new(TOKEN);
    mcp.start();
    let upstream =
        Upstream::start(vec![Reply::ToolCall("trace_context".into(), "{}".into()), Reply::Text("Use the VPN.".into())])
            .await;
    let agent = traced_agent(&upstream, &mcp, &receiver, &[]).await;
    let answer = ask(&agent).await;
    assert!(answer.contains("VPN"), "{answer}");

    let spans = receiver.spans_once("invoke_agent helper").await;
    eprintln!("the turn's trace:\n{}", tree(&spans, TRACE_ID));
    let turn: Vec<&Value> = spans.iter().filter(|s| s["trace_id"] == TRACE_ID).collect();
    let server = one(&spans, "POST /v1/chat/completions");
    assert_eq!(server["trace_id"], TRACE_ID);
    assert_eq!(server["parent_span_id"], CLIENT_SPAN, "the client's span is the request's parent");
    assert_eq!(server["kind"], 2, "SERVER");
    assert_eq!(server["resource"]["service.name"], "helpdesk", "OTEL_SERVICE_NAME names the service");
    assert_eq!(server["encoding"], "protobuf", "http/protobuf is the default");
    let invoke = one(&spans, "invoke_agent helper");
    assert_eq!(invoke["parent_span_id"], server["span_id"]);
    assert_eq!(invoke["attributes"]["gen_ai.operation.name"], "invoke_agent");
    assert_eq!(invoke["attributes"]["gen_ai.agent.name"], "helper");
    assert_eq!(invoke["attributes"]["gen_ai.conversation.id"], "s-1");
    assert_eq!(invoke["attributes"]["gen_ai.usage.input_tokens"], 14, "both model calls: {invoke:#}");
    assert_eq!(invoke["attributes"]["gen_ai.response.finish_reasons"], json!(["stop"]));
    let children = |name: &str| -> Vec<&Value> {
        named(&spans, name).into_iter().filter(|s| s["parent_span_id"] == invoke["span_id"]).collect()
    };
    for step in ["retrieval helpdesk-qa", "rerank mmr", "search_memory", "commit_session"] {
        assert_eq!(children(step).len(), 1, "{step} under invoke_agent: {spans:#?}");
    }
    let calls = children("chat scripted");
    assert_eq!(calls.len(), 2, "two model calls under invoke_agent");
    let first = calls.iter().find(|c| c["attributes"]["gen_ai.response.finish_reasons"] == json!(["tool_calls"]));
    let first = first.expect("the call that asked for the tool");
    assert_eq!(first["kind"], 3, "CLIENT");
    for (key, value) in [
        ("gen_ai.operation.name", json!("chat")),
        ("gen_ai.provider.name", json!("openai")),
        ("gen_ai.request.model", json!("scripted")),
        ("gen_ai.response.model", json!("scripted")),
        ("gen_ai.request.stream", json!(true)),
        ("server.address", json!("127.0.0.1")),
        ("gen_ai.usage.input_tokens", json!(7)),
        ("gen_ai.usage.output_tokens", json!(3)),
    ] {
        assert_eq!(first["attributes"][key], value, "{key} on {first:#}");
    }
    let tool = children("execute_tool trace_context");
    assert_eq!(tool.len(), 1, "{spans:#?}");
    assert_eq!(tool[0]["attributes"]["gen_ai.tool.name"], "trace_context");
    assert_eq!(tool[0]["attributes"]["gen_ai.tool.type"], "extension");
    assert_eq!(tool[0]["attributes"]["gen_ai.tool.call.id"], "call_a");
    assert!(turn.len() >= 9, "every span of the turn is in the client's trace: {turn:#?}");
    assert!(named(&spans, "GET /readyz").is_empty(), "probes are not traced (the test polled /readyz)");

    // The context reached the model (the chat span is its parent) and the MCP server (_meta).
    let sent = upstream.received();
    let traceparent = sent[0]["_headers"]["traceparent"].as_str().expect("the model was sent traceparent");
    let chat_ids: Vec<&str> = calls.iter().map(|c| c["span_id"].as_str().unwrap()).collect();
    let (trace, parent) = (&traceparent[3..35], &traceparent[36..52]);
    assert_eq!(trace, TRACE_ID);
    assert!(chat_ids.contains(&parent), "{traceparent} names a chat span {chat_ids:?}");
    let meta: Value = serde_json::from_str(&upstream.last_tool_result()).unwrap();
    let tool_parent = meta["traceparent"].as_str().expect("the MCP server was sent traceparent in _meta");
    assert_eq!(&tool_parent[3..35], TRACE_ID);
    assert_eq!(&tool_parent[36..52], tool[0]["span_id"].as_str().unwrap());

    // No content by default: neither the question nor the answer on any span.
    let exported = serde_json::to_string(&spans).unwrap();
    assert!(!exported.contains("intranet from home") && !exported.contains("Use the VPN"), "content leaked");
    assert!(!exported.contains("gen_ai.input.messages") && !exported.contains("gen_ai.tool.call.arguments"));
}

/// Also exports over OTLP/JSON.
#[tokio::test]
async fn content_is_recorded_only_when_the_option_asks_for_it() {
    let receiver = Receiver::start();
    let mut mcp = McpPeer::new(TOKEN);
    mcp.start();
    let upstream = Upstream::start(vec![Reply::Text("Use the VPN.".into())]).await;
    let capture = [
        ("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true".to_owned()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json".to_owned()),
    ];
    let agent = traced_agent(&upstream, &mcp, &receiver, &capture).await;
    ask(&agent).await;
    let spans = receiver.spans_once("invoke_agent helper").await;
    let invoke = one(&spans, "invoke_agent helper");
    assert_eq!(invoke["encoding"], "json", "OTEL_EXPORTER_OTLP_PROTOCOL=http/json");
    assert_eq!(invoke["trace_id"], TRACE_ID);
    let input = invoke["attributes"]["gen_ai.input.messages"].as_str().expect("input messages recorded");
    assert!(input.contains(QUESTION), "{input}");
    assert!(invoke["attributes"]["gen_ai.output.messages"].as_str().unwrap().contains("Use the VPN."));
    let retrieval = one(&spans, "retrieval helpdesk-qa");
    assert_eq!(retrieval["attributes"]["gen_ai.retrieval.query.text"], QUESTION);
}

/// An OTLP/gRPC receiver (the proto package's generated service): the names and trace ids of
/// the spans it was sent.
#[derive(Clone, Default)]
struct GrpcReceiver(std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>);

#[tonic::async_trait]
impl TraceService for GrpcReceiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans = request.into_inner().resource_spans.into_iter().flat_map(|r| r.scope_spans).flat_map(|s| s.spans);
        let hex = |bytes: &[u8]| bytes.iter().fold(String::new(), |hex, b| hex + &format!("{b:02x}"));
        let received = spans.map(|s| (s.name, hex(&s.trace_id)));
        self.0.lock().unwrap().extend(received);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tokio::test]
async fn traces_go_over_otlp_grpc_when_the_protocol_says_so() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let collector = GrpcReceiver::default();
    let server = tonic::transport::Server::builder()
        .add_service(TraceServiceServer::new(collector.clone()))
        .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener));
    tokio::spawn(server);
    let upstream = Upstream::start(vec![Reply::Text("hello".into())]).await;
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://127.0.0.1:{port}")),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".to_owned()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()),
    ];
    let agent = run_agent_env(&upstream, "traced-grpc", "", |_| {}, &[], &env).await;
    let response = agent
        .client
        .post(format!("{}/v1/chat/completions", agent.base))
        .header("traceparent", format!("00-{TRACE_ID}-{CLIENT_SPAN}-01"))
        .json(&json!({"messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let received = collector.0.lock().unwrap().clone();
        if received.iter().any(|(name, trace)| name == "invoke_agent helper" && trace == TRACE_ID) {
            assert!(received.iter().any(|(name, _)| name == "chat scripted"), "{received:?}");
            break;
        }
        assert!(Instant::now() < deadline, "no invoke_agent span over gRPC within 30 s: {received:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
