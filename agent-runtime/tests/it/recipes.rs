//! Recipes run by the runtime, with real MiniLM embeddings and the embedded store, and a
//! scripted model (so what the model is sent can be checked exactly): retrieval, MMR and a
//! rerank API, templates, citations in the answer and the final SSE chunk, `Retrieve` without
//! a model call, `Summarize` by map-reduce, `Agent` with the `search_knowledge` tool.

use crate::support::{Reply, Upstream, config, post, quick_options, send, temp_dir};
use agent_crds::recipe::{PipelineMode, RecipeSpec, RerankStrategy, SummaryStrategy};
use agent_crds::runtime_config::RecipeConfig;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};

const DOCUMENTS: [(&str, &str); 4] = [
    ("vpn.md", "Connect to the NorthGate VPN with your YubiKey before opening the intranet."),
    ("vpn-copy.md", "Before opening the intranet, connect to the NorthGate VPN using your YubiKey token."),
    ("lunch.md", "The canteen serves lunch from noon to two o'clock every weekday."),
    ("parking.md", "Visitors park in lot C; employees use the garage under building 2."),
];

fn recipe(spec: RecipeSpec) -> RecipeConfig {
    RecipeConfig {
        name: "test-recipe".into(),
        parameters: [("tone".to_owned(), json!("brief"))].into(),
        spec,
        sources: Vec::new(),
    }
}

async fn agent_with(name: &str, upstream: &Upstream, spec: RecipeSpec) -> agent_runtime::http::AppState {
    let dir = temp_dir(name);
    let mut options = quick_options();
    options.embedding_model_dir = Some(crate::support::minilm_dir());
    let mut config = config(&upstream.base_url(), "", &dir, "Chat");
    config.recipe = Some(recipe(spec));
    let state = crate::support::state(config, &options);
    let documents: Vec<Value> = DOCUMENTS.iter().map(|(name, text)| json!({"name": name, "content": text})).collect();
    let (status, text) = send(&state, post("/v1/knowledge/documents", &json!({ "documents": documents }))).await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    state
}

fn ask(question: &str, stream: bool) -> Request<Body> {
    post("/v1/chat/completions", &json!({"messages": [{"role": "user", "content": question}], "stream": stream}))
}

fn answer_spec() -> RecipeSpec {
    let mut spec = RecipeSpec::default();
    spec.retrieve.top_k = 2;
    spec.retrieve.fetch_k = 4;
    spec.generate.system_template = Some("Be {{params.tone}}.".into());
    spec.generate.prompt_template =
        Some("{{#each chunks}}[{{index}}] {{documentName}}: {{text}}\n{{/each}}Q: {{question}}".into());
    spec.generate.sources_template = Some("\n\nSources:{{#each chunks}} [{{index}}] {{documentName}}{{/each}}".into());
    spec
}

fn names(citations: &Value) -> Vec<String> {
    citations.as_array().unwrap().iter().map(|c| c["documentName"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answer_recipes_send_the_rendered_prompt_and_cite_the_chunks_they_gave() {
    let upstream = Upstream::start(vec![Reply::Text("Use the VPN [1].".into())]).await;
    let agent = agent_with("answer", &upstream, answer_spec()).await;
    let (status, text) = send(&agent, ask("How do I connect to the VPN?", false)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    let sent = &upstream.received()[0]["messages"];
    assert!(sent[0]["content"].as_str().unwrap().ends_with("Be brief."), "system template: {sent}");
    let prompt = sent[1]["content"].as_str().unwrap();
    assert!(
        prompt.starts_with("[1] vpn")
            && prompt.contains("\n[2] vpn")
            && prompt.ends_with("Q: How do I connect to the VPN?"),
        "{prompt}"
    );
    let citations = &body["citations"];
    assert_eq!(citations.as_array().unwrap().len(), 2, "{body}");
    let mut cited = names(citations);
    cited.sort();
    assert_eq!(cited, ["vpn-copy.md", "vpn.md"]);
    assert_eq!(citations[0]["index"], 1);
    let content = body["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(content.starts_with("Use the VPN [1].\n\nSources: [1] vpn"), "{content}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_answers_carry_the_citations_in_the_final_chunk() {
    let upstream = Upstream::start(vec![Reply::Text("Lunch is at noon [1].".into())]).await;
    let agent = agent_with("stream", &upstream, answer_spec()).await;
    let (status, text) = send(&agent, ask("When is lunch served?", true)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let chunks: Vec<Value> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "stop", "{text}");
    assert_eq!(names(&last["citations"])[0], "lunch.md", "{last}");
    assert!(chunks[..chunks.len() - 1].iter().all(|c| c.get("citations").is_none()), "only the final chunk cites");
    let streamed: String = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert!(streamed.starts_with("Lunch is at noon [1].\n\nSources: [1] lunch.md [2] "), "{streamed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mmr_drops_the_near_duplicate_that_plain_retrieval_keeps() {
    let upstream = Upstream::start(vec![]).await;
    let mut spec = answer_spec();
    spec.rerank.strategy = RerankStrategy::Mmr;
    spec.rerank.mmr_lambda = 0.3;
    let agent = agent_with("mmr", &upstream, spec).await;
    let (_, text) = send(&agent, ask("How do I connect to the VPN with my YubiKey?", false)).await;
    let cited = names(&serde_json::from_str::<Value>(&text).unwrap()["citations"]);
    assert_eq!(cited.len(), 2, "{text}");
    assert!(cited[0].starts_with("vpn"), "the most relevant stays first: {cited:?}");
    assert!(!cited[1].starts_with("vpn"), "MMR picks a new passage over the paraphrase: {cited:?}");
}

/// A local rerank API in TEI's shape (`[{index, score}]`) or llama.cpp/Jina's
/// (`{"results": [{index, relevance_score}]}`) that ranks the parking passage first.
async fn rerank_api(jina_shape: bool) -> (String, std::sync::Arc<std::sync::Mutex<Vec<Value>>>) {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let recorded = seen.clone();
    let app = axum::Router::new().route(
        "/rerank",
        axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
            let recorded = recorded.clone();
            async move {
                recorded.lock().unwrap().push(body.clone());
                let scores: Vec<(usize, f32)> = body["documents"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .enumerate()
                    .map(|(i, d)| (i, if d.as_str().unwrap().contains("lot C") { 0.99 } else { 0.1 / (f32::from(u8::try_from(i).unwrap()) + 1.0) }))
                    .collect();
                if jina_shape {
                    axum::Json(json!({"results": scores.iter().map(|(i, s)| json!({"index": i, "relevance_score": s})).collect::<Vec<_>>()}))
                } else {
                    axum::Json(json!(scores.iter().map(|(i, s)| json!({"index": i, "score": s})).collect::<Vec<_>>()))
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/rerank", listener.local_addr().unwrap());
    tokio::spawn(axum::serve(listener, app).into_future());
    (url, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerank_api_in_either_common_shape_reorders_the_candidates() {
    for jina_shape in [false, true] {
        let (url, seen) = rerank_api(jina_shape).await;
        let upstream = Upstream::start(vec![]).await;
        let mut spec = answer_spec();
        spec.rerank.strategy = RerankStrategy::Endpoint;
        spec.rerank.endpoint = Some(url);
        spec.rerank.model = Some("bge-reranker".into());
        let agent = agent_with("rerank-api", &upstream, spec).await;
        let (status, text) = send(&agent, ask("How do I connect to the VPN?", false)).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        let body: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(names(&body["citations"])[0], "parking.md", "the API's order wins: {body}");
        assert!((body["citations"][0]["score"].as_f64().unwrap() - 0.99).abs() < 1e-6);
        let request = seen.lock().unwrap()[0].clone();
        assert_eq!(request["query"], "How do I connect to the VPN?");
        assert_eq!(request["documents"].as_array().unwrap().len(), 4, "fetchK candidates are sent");
        assert_eq!(request["model"], "bge-reranker");
        assert_eq!(request["top_n"], 2);
    }

    let upstream = Upstream::start(vec![]).await;
    let mut spec = answer_spec();
    spec.rerank.strategy = RerankStrategy::Endpoint;
    spec.rerank.endpoint = Some("http://127.0.0.1:9/rerank".into());
    let agent = agent_with("rerank-down", &upstream, spec).await;
    let (status, text) = send(&agent, ask("How do I connect to the VPN?", false)).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{text}");
    assert!(text.contains("reranking failed: rerank endpoint http://127.0.0.1:9/rerank"), "{text}");
    assert!(upstream.received().is_empty(), "no model call without the reranked chunks");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retrieve_recipes_answer_with_the_passages_and_never_call_the_model() {
    let upstream = Upstream::start(vec![]).await;
    let mut spec = answer_spec();
    spec.generate.mode = PipelineMode::Retrieve;
    spec.generate.prompt_template = Some("{{#each chunks}}[{{index}}] ({{documentName}}) {{text}}\n{{/each}}".into());
    spec.generate.sources_template = None;
    let agent = agent_with("retrieve", &upstream, spec).await;
    let (status, text) = send(&agent, ask("Where do visitors park?", false)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    let content = body["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(content.starts_with("[1] (parking.md) Visitors park in lot C"), "{content}");
    assert_eq!(names(&body["citations"])[0], "parking.md");
    assert_eq!(body["usage"]["total_tokens"], 0);
    assert!(upstream.received().is_empty(), "Retrieve makes no model call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summarize_by_map_reduce_summarizes_each_part_then_combines() {
    let upstream = Upstream::start(vec![
        Reply::Text("part one in brief".into()),
        Reply::Text("part two in brief".into()),
        Reply::Text("part three in brief".into()),
        Reply::Text("The whole text in brief.".into()),
    ])
    .await;
    let mut spec = RecipeSpec::default();
    spec.generate.mode = PipelineMode::Summarize;
    spec.generate.strategy = SummaryStrategy::MapReduce;
    spec.generate.map_template = Some("Summarize: {{text}}".into());
    spec.generate.combine_template = Some("Combine:{{#each summaries}}\n- {{this}}{{/each}}".into());
    let dir = temp_dir("summarize");
    let mut options = quick_options();
    options.embedding_model_dir = Some(crate::support::minilm_dir());
    // A 512-token budget makes parts of 256 tokens (~1000 characters).
    let mut config = config(&Upstream::base_url(&upstream), "", &dir, "Chat");
    config.model.parameters.context_budget = Some(512);
    config.recipe = Some(recipe(spec.clone()));
    let agent = crate::support::state(config, &options);
    let paragraph = "The harbour crane lifts containers from the ships onto the trucks all day. ".repeat(12);
    let long_text = [paragraph.as_str(); 3].join("\n\n");
    let (status, text) = send(&agent, ask(&long_text, false)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "The whole text in brief.");
    let received = upstream.received();
    assert_eq!(received.len(), 4, "three map calls and one combine call");
    for call in &received[..3] {
        let prompt = call["messages"].as_array().unwrap().last().unwrap()["content"].as_str().unwrap().to_owned();
        assert!(prompt.starts_with("Summarize: The harbour crane"), "{prompt}");
        assert!(call.get("tools").is_none_or(|t| t.as_array().is_none_or(Vec::is_empty)), "no tools in summaries");
    }
    let combine = received[3]["messages"].as_array().unwrap().last().unwrap()["content"].as_str().unwrap().to_owned();
    assert_eq!(combine, "Combine:\n- part one in brief\n- part two in brief\n- part three in brief");

    spec.generate.strategy = SummaryStrategy::Stuff;
    let dir = temp_dir("summarize-stuff");
    let mut config = crate::support::config(&upstream.base_url(), "", &dir, "Chat");
    config.model.parameters.context_budget = Some(512);
    config.recipe = Some(recipe(spec));
    let agent = crate::support::state(config, &options);
    let (status, text) = send(&agent, ask(&long_text, false)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    assert!(text.contains("the Stuff strategy takes at most 256"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_recipes_offer_search_knowledge_and_the_tool_returns_numbered_passages() {
    let upstream = Upstream::start(vec![
        Reply::ToolCall("search_knowledge".into(), json!({"query": "when is lunch"}).to_string()),
        Reply::Text("Lunch is at noon.".into()),
    ])
    .await;
    let mut spec = answer_spec();
    spec.generate.mode = PipelineMode::Agent;
    let agent = agent_with("react", &upstream, spec).await;
    let (status, text) = send(&agent, ask("When can I eat?", false)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let received = upstream.received();
    let offered: Vec<&str> =
        received[0]["tools"].as_array().unwrap().iter().map(|t| t["function"]["name"].as_str().unwrap()).collect();
    assert!(offered.contains(&"search_knowledge"), "{offered:?}");
    assert_eq!(received[0]["messages"][1]["content"], "When can I eat?", "Agent mode leaves the question as it is");
    let tool_result =
        received[1]["messages"].as_array().unwrap().last().unwrap()["content"].as_str().unwrap().to_owned();
    assert!(tool_result.starts_with("[1] (lunch.md) The canteen serves lunch"), "{tool_result}");
}

/// `knowledge.sources` are fetched and ingested when the agent starts serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recipe_sources_are_ingested_when_the_agent_starts() {
    let site = axum::Router::new().route(
        "/handbook.md",
        axum::routing::get(|| async { "# Fire drills\n\nFire drills happen on the first Monday of each quarter." }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let source = format!("http://{}/handbook.md", listener.local_addr().unwrap());
    tokio::spawn(axum::serve(listener, site).into_future());
    let upstream = Upstream::start(vec![]).await;
    let dir = temp_dir("sources");
    let mut options = quick_options();
    options.embedding_model_dir = Some(crate::support::minilm_dir());
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    options.addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut config = config(&upstream.base_url(), "", &dir, "Chat");
    let mut recipe = recipe(answer_spec());
    recipe.sources = vec![source.clone()];
    config.recipe = Some(recipe);
    tokio::spawn(agent_runtime::serve(config, options));
    let documents = format!("http://127.0.0.1:{port}/v1/knowledge/documents");
    let mut listed = Value::Null;
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        if let Ok(response) = reqwest::get(&documents).await {
            listed = response.json().await.unwrap_or(Value::Null);
            if listed["documents"].as_array().is_some_and(|d| !d.is_empty()) {
                break;
            }
        }
    }
    assert_eq!(listed["documents"][0]["name"], source, "{listed}");
}

/// A doc-retriever agent as another agent's tool: the asking agent's model calls the tool, the
/// question goes to the retriever's chat API on a real socket, and the passages come back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retrieve_agent_serves_as_a_search_tool_for_another_agent() {
    let unused = Upstream::start(vec![]).await;
    let mut spec = answer_spec();
    spec.generate.mode = PipelineMode::Retrieve;
    spec.generate.prompt_template = Some("{{#each chunks}}[{{index}}] ({{documentName}}) {{text}}\n{{/each}}".into());
    spec.generate.sources_template = None;
    let retriever = agent_with("retriever-tool", &unused, spec).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let retriever_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(axum::serve(listener, agent_runtime::http::router(retriever)).into_future());

    let upstream = Upstream::start(vec![
        Reply::ToolCall("handbook".into(), json!({"question": "Where do visitors park?"}).to_string()),
        Reply::Text("In lot C.".into()),
    ])
    .await;
    let dir = temp_dir("asking-agent");
    let mut config = config(&upstream.base_url(), "", &dir, "Chat");
    config.tools.push(agent_crds::runtime_config::ToolConfig {
        name: "handbook".into(),
        kind: agent_crds::runtime_config::ToolKind::Agent { url: retriever_url, remote: false, token_file: None },
    });
    let asking = crate::support::state(config, &quick_options());
    let (status, text) = send(&asking, ask("Where should my visitor park?", false)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let received = upstream.received();
    let tool_result =
        received[1]["messages"].as_array().unwrap().last().unwrap()["content"].as_str().unwrap().to_owned();
    assert!(tool_result.starts_with("[1] (parking.md) Visitors park in lot C"), "{tool_result}");
    assert!(unused.received().is_empty(), "the retriever made no model call");
}
