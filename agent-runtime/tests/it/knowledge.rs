//! Knowledge with the real parts: all-MiniLM-L6-v2 embeddings (candle), the embedded Qdrant Edge
//! store and its BM25 embedder. Retrieval quality is measured on the labelled corpus in
//! `tests/data/knowledge` (64 short documents, 42 queries), and the HTTP API's ingest, list,
//! search and delete are exercised with their error cases.

use std::sync::{Arc, OnceLock};

use crate::support::{Upstream, config, post, quick_options, send, temp_dir};
use agent_runtime::embeddings::Embedder;
use agent_runtime::knowledge::Knowledge;
use agent_runtime::knowledge::chunk::{ChunkSize, EstimatedTokens};
use agent_runtime::vector::VectorStore;
use agent_runtime::vector::edge::EdgeStore;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};

fn corpus_file(name: &str) -> Vec<Value> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/knowledge/").to_owned() + name;
    std::fs::read_to_string(&path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn embedder() -> Arc<dyn Embedder> {
    static EMBEDDER: OnceLock<Arc<dyn Embedder>> = OnceLock::new();
    EMBEDDER
        .get_or_init(|| {
            let config = agent_crds::runtime_config::EmbeddingConfig::Builtin { model: "all-MiniLM-L6-v2".into() };
            agent_runtime::embeddings::from_config(&config, 384, Some(&crate::support::minilm_dir()), None).unwrap()
        })
        .clone()
}

/// Recall@5 of each search mode on the labelled corpus.
///
/// Thresholds: the queries are a third paraphrases (few shared words: BM25 alone misses most),
/// a third rare-token lookups (error codes, names: dense alone misses some), a third mixed.
/// Measured here: dense 42/42, BM25 33/42 (it misses paraphrases, as expected), hybrid 42/42.
/// The bounds allow four misses (dense, hybrid) or three (BM25) beyond that, so a different
/// float path does not fail the test, while a real regression (broken pooling or
/// normalisation, a lost IDF modifier, fusion dropping one side) falls well below them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dense_sparse_and_hybrid_search_find_the_labelled_documents() {
    let dir = temp_dir("recall");
    let store = Arc::new(EdgeStore::open(&dir, 384, agent_crds::runtime_config::Distance::Cosine).unwrap());
    let knowledge = Knowledge::new(store, embedder(), Arc::new(EstimatedTokens), ChunkSize { size: 256, overlap: 32 });
    for document in corpus_file("corpus.jsonl") {
        let text = format!("{}\n\n{}", document["title"].as_str().unwrap(), document["text"].as_str().unwrap());
        let name = format!("{}.txt", document["id"].as_str().unwrap());
        knowledge.ingest(&name, Some("text/plain"), text.as_bytes()).await.unwrap();
    }
    let queries = corpus_file("queries.jsonl");
    // Hits at ranks 1, 3 and 5 for each mode (recall@1 and @3 are printed for comparison).
    let (mut dense, mut sparse, mut hybrid) = ([0u32; 3], [0u32; 3], [0u32; 3]);
    for query in &queries {
        let text = query["query"].as_str().unwrap();
        let expected = format!("{}.txt", query["expected"].as_str().unwrap());
        let count = |hits: &mut [u32; 3], passages: Vec<agent_runtime::knowledge::Passage>| {
            let rank = passages.iter().position(|p| p.document_name == expected);
            for (slot, k) in [1, 3, 5].into_iter().enumerate() {
                hits[slot] += u32::from(rank.is_some_and(|r| r < k));
            }
        };
        count(&mut dense, knowledge.search(text, 5, false, Vec::new()).await.unwrap());
        count(&mut sparse, knowledge.search_sparse(text, 5).await.unwrap());
        count(&mut hybrid, knowledge.search(text, 5, true, Vec::new()).await.unwrap());
    }
    let n = f64::from(u32::try_from(queries.len()).unwrap());
    let recall = |hits: [u32; 3]| hits.map(|h| f64::from(h) / n);
    for (mode, hits) in [("dense", dense), ("sparse (BM25)", sparse), ("hybrid (RRF)", hybrid)] {
        let [at1, at3, at5] = recall(hits);
        println!("{mode}: recall@1 {at1:.3}, @3 {at3:.3}, @5 {at5:.3} over {n} queries");
    }
    let (dense, sparse, hybrid) = (recall(dense)[2], recall(sparse)[2], recall(hybrid)[2]);
    assert!(dense >= DENSE_MIN, "dense recall@5 {dense:.3} < {DENSE_MIN}");
    assert!(sparse >= SPARSE_MIN, "sparse recall@5 {sparse:.3} < {SPARSE_MIN}");
    assert!(hybrid >= HYBRID_MIN, "hybrid recall@5 {hybrid:.3} < {HYBRID_MIN}");
}

const DENSE_MIN: f64 = 0.90;
const SPARSE_MIN: f64 = 0.70;
const HYBRID_MIN: f64 = 0.90;

fn knowledge_state(name: &str, upstream: &Upstream) -> agent_runtime::http::AppState {
    let dir = temp_dir(name);
    let mut options = quick_options();
    options.embedding_model_dir = Some(crate::support::minilm_dir());
    options.limits.max_document_bytes = 256 * 1024;
    crate::support::state(config(&upstream.base_url(), "", &dir, "Chat"), &options)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_are_ingested_once_listed_searched_and_deleted_over_http() {
    let upstream = Upstream::start(vec![]).await;
    let agent = knowledge_state("http", &upstream);
    let body = json!({"documents": [
        {"name": "vpn.md", "content": "# VPN\n\nConnect to NorthGate 5.2 with your YubiKey before opening the intranet."},
        {"name": "lunch.html", "content": "<h1>Canteen</h1><p>The canteen serves lunch from noon to two.</p>", "contentType": "text/html"}
    ]});
    let (status, text) = send(&agent, post("/v1/knowledge/documents", &body)).await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    let ingested: Value = serde_json::from_str(&text).unwrap();
    let vpn_id = ingested["documents"][0]["document"]["id"].as_str().unwrap().to_owned();

    let (status, again) =
        send(&agent, post("/v1/knowledge/documents", &json!({"documents": [body["documents"][0]]}))).await;
    assert_eq!(status, StatusCode::OK, "the same content is stored once: {again}");
    assert_eq!(serde_json::from_str::<Value>(&again).unwrap()["documents"][0]["created"], false);

    let boundary = "XyZ";
    let multipart = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"garden.txt\"\r\nContent-Type: text/plain\r\n\r\nTomatoes need six hours of sun.\r\n--{boundary}--\r\n"
    );
    let upload = Request::post("/v1/knowledge/documents")
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .body(Body::from(multipart))
        .unwrap();
    assert_eq!(send(&agent, upload).await.0, StatusCode::CREATED);

    let (_, listed) = send(&agent, Request::get("/v1/knowledge/documents").body(Body::empty()).unwrap()).await;
    let names: Vec<String> = serde_json::from_str::<Value>(&listed).unwrap()["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");

    let (status, found) =
        send(&agent, post("/v1/knowledge/search", &json!({"query": "how do I connect to the VPN", "topK": 2}))).await;
    assert_eq!(status, StatusCode::OK, "{found}");
    let results = serde_json::from_str::<Value>(&found).unwrap()["results"].clone();
    assert_eq!(results[0]["documentName"], "vpn.md", "{results}");
    assert!(results[0]["score"].as_f64().unwrap() > 0.0);
    let (_, filtered) =
        send(&agent, post("/v1/knowledge/search", &json!({"query": "lunch", "filter": {"documentId": vpn_id}}))).await;
    let filtered = serde_json::from_str::<Value>(&filtered).unwrap()["results"].clone();
    assert!(
        filtered.as_array().unwrap().iter().all(|r| r["documentName"] == "vpn.md"),
        "the filter restricts: {filtered}"
    );

    let delete = || Request::delete(format!("/v1/knowledge/documents/{vpn_id}")).body(Body::empty()).unwrap();
    assert_eq!(send(&agent, delete()).await.0, StatusCode::NO_CONTENT);
    assert_eq!(send(&agent, delete()).await.0, StatusCode::NOT_FOUND);
    let (_, after) =
        send(&agent, post("/v1/knowledge/search", &json!({"query": "NorthGate YubiKey VPN", "topK": 5}))).await;
    assert!(!after.contains("vpn.md"), "a deleted document is not found: {after}");

    let (_, metrics) = send(&agent, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    for series in [
        r#"agent_vector_operation_seconds_count{operation="search",outcome="ok"}"#,
        r#"agent_vector_operation_seconds_count{operation="upsert",outcome="ok"}"#,
        r#"agent_embedding_seconds_count{operation="embed",outcome="ok"}"#,
        "agent_embedded_texts_total",
    ] {
        assert!(metrics.contains(series), "{series} in /metrics:\n{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_empty_and_huge_documents_get_clear_errors() {
    let upstream = Upstream::start(vec![]).await;
    let agent = knowledge_state("bad-docs", &upstream);
    let cases = [
        (
            json!({"documents": [{"name": "scan.png", "content": "x", "contentType": "image/png"}]}),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported content type",
        ),
        (json!({"documents": [{"name": "blank.txt", "content": "  \n "}]}), StatusCode::BAD_REQUEST, "no text"),
        (json!({"documents": []}), StatusCode::BAD_REQUEST, "no documents given"),
        (
            json!({"documents": [{"name": "big.txt", "content": "word ".repeat(60_000)}]}),
            StatusCode::PAYLOAD_TOO_LARGE,
            "exceeds",
        ),
    ];
    for (body, status, message) in cases {
        let (got, text) = send(&agent, post("/v1/knowledge/documents", &body)).await;
        assert_eq!(got, status, "{text}");
        assert!(text.contains(message), "{message:?} in {text}");
    }
    let (status, text) = send(&agent, post("/v1/knowledge/search", &json!({"query": " "}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fact_the_model_remembers_is_recalled_in_a_later_conversation() {
    let fact = "Ada's favourite colour is teal.";
    let script = vec![
        crate::support::Reply::ToolCall("remember".into(), json!({"fact": fact}).to_string()),
        crate::support::Reply::Text("Noted.".into()),
        crate::support::Reply::Text("Teal.".into()),
    ];
    let upstream = Upstream::start(script).await;
    let dir = temp_dir("memory");
    let mut options = quick_options();
    options.embedding_model_dir = Some(crate::support::minilm_dir());
    let spec = "  tools: [{name: memory, builtin: {kind: remember}}]\n";
    let agent = crate::support::state(config(&upstream.base_url(), spec, &dir, "Chat"), &options);
    let turn = |session: &str, content: &str| {
        Request::post("/v1/chat/completions")
            .header("content-type", "application/json")
            .header("x-session-id", session)
            .body(Body::from(json!({"messages": [{"role": "user", "content": content}]}).to_string()))
            .unwrap()
    };
    assert_eq!(send(&agent, turn("first", "Please remember that Ada likes teal.")).await.0, StatusCode::OK);
    let first_call = upstream.received()[0].clone();
    let offered: Vec<&str> =
        first_call["tools"].as_array().unwrap().iter().map(|t| t["function"]["name"].as_str().unwrap()).collect();
    assert!(offered.contains(&"remember") && offered.contains(&"recall"), "{offered:?}");

    assert_eq!(send(&agent, turn("second", "What colour does Ada like?")).await.0, StatusCode::OK);
    let system = upstream.received()[2]["messages"][0]["content"].as_str().unwrap().to_owned();
    assert!(
        system.contains("Relevant memories:") && system.contains(fact),
        "a new session recalls the agent-wide fact: {system}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memories_past_their_retention_are_neither_recalled_nor_kept() {
    let dir = temp_dir("retention");
    let store = Arc::new(EdgeStore::open(&dir, 384, agent_crds::runtime_config::Distance::Cosine).unwrap());
    let memory = agent_runtime::memory::Memory::new(store.clone(), embedder(), Some(std::time::Duration::from_secs(1)));
    memory.remember("The build server is called Hopper.", &agent_runtime::memory::Scope::Agent).await.unwrap();
    let now = memory.recall("What is the build server called?", None, 5, 300).await.unwrap();
    assert_eq!(now, ["The build server is called Hopper."]);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert!(
        memory.recall("What is the build server called?", None, 5, 300).await.unwrap().is_empty(),
        "expired memories are not recalled"
    );
    memory.forget_expired().await.unwrap();
    assert_eq!(store.count(None).await.unwrap(), 0, "expired memories are deleted");
}

/// `agent-runtime ingest` against the runtime served on a real socket: a folder with Markdown,
/// HTML, a PDF, an empty file and a picture; then the same folder again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ingest_command_sends_a_folder_and_reports_each_file() {
    use agent_runtime::ingest::{IngestOptions, Outcome, collect_sources, ingest};
    let upstream = Upstream::start(vec![]).await;
    let agent = knowledge_state("ingest-cli", &upstream);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(axum::serve(listener, agent_runtime::http::router(agent.clone())).into_future());

    let folder = temp_dir("ingest-cli-docs");
    std::fs::write(folder.join("vpn.md"), "# VPN\n\nConnect to NorthGate 5.2 with your YubiKey.").unwrap();
    std::fs::create_dir(folder.join("handbook")).unwrap();
    std::fs::write(folder.join("handbook/lunch.html"), "<p>The canteen serves lunch from noon.</p>").unwrap();
    let pdf = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/documents/orbital-greenhouse.pdf");
    std::fs::copy(pdf, folder.join("handbook/greenhouse.pdf")).unwrap();
    std::fs::write(folder.join("empty.txt"), " \n").unwrap();
    std::fs::write(folder.join("photo.png"), [0x89, b'P', b'N', b'G']).unwrap();

    let options = IngestOptions {
        agent: url.clone(),
        api_key: None,
        concurrency: 2,
        timeout: std::time::Duration::from_secs(120),
        progress: false,
    };
    let (sources, skipped) = collect_sources(&[folder.display().to_string()]).unwrap();
    let summary = ingest(sources.clone(), skipped.clone(), &options).await.unwrap();
    assert_eq!(summary.count(|o| *o == Outcome::Created), 3, "{summary}");
    let failed: Vec<_> = summary.results.iter().filter(|(_, o)| matches!(o, Outcome::Failed(_))).collect();
    assert_eq!(failed.len(), 1, "{summary}");
    assert!(failed[0].0.to_string().ends_with("empty.txt"));
    assert_eq!(failed[0].1, Outcome::Failed("400: the document has no text".into()));
    assert_eq!(summary.skipped, [folder.join("photo.png")]);
    assert!(!summary.all_ingested());
    assert!(
        summary
            .to_string()
            .ends_with("3 new, 0 already present, 1 failed, 1 skipped (not txt/text/md/markdown/html/htm/pdf)")
    );

    let again = ingest(sources, skipped, &options).await.unwrap();
    assert_eq!(again.count(|o| *o == Outcome::AlreadyPresent), 3, "{again}");

    let (status, found) = send(
        &agent,
        post("/v1/knowledge/search", &json!({"query": "How often are the strawberries pollinated?", "topK": 1})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    let top = &serde_json::from_str::<Value>(&found).unwrap()["results"][0];
    assert_eq!(top["documentName"], "greenhouse.pdf", "{found}");
    assert!(top["text"].as_str().unwrap().contains("every Tuesday"), "{found}");

    let unreachable = IngestOptions { agent: "http://127.0.0.1:9".into(), ..options };
    let (sources, _) = collect_sources(&[folder.join("vpn.md").display().to_string()]).unwrap();
    let down = ingest(sources, Vec::new(), &unreachable).await.unwrap();
    let Outcome::Failed(why) = &down.results[0].1 else { panic!("{down}") };
    assert!(why.starts_with("cannot reach the agent at http://127.0.0.1:9/v1/knowledge/documents"), "{why}");
}

/// Documents by URL from a real local web server: an HTML page and a PDF are fetched and read;
/// a body past the document limit (sent without a length), a 404 and a loopback host the agent
/// does not allow are refused clearly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_given_by_url_are_fetched_and_oversized_missing_or_internal_ones_refused() {
    use axum::response::IntoResponse;
    let pdf =
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/documents/orbital-greenhouse.pdf")).unwrap();
    let site = axum::Router::new()
        .route(
            "/guide.html",
            axum::routing::get(|| async {
                ([("content-type", "text/html")], "<h1>Badges</h1><p>Lost badges are replaced at desk 4.</p>")
            }),
        )
        .route(
            "/manual",
            axum::routing::get(move || {
                let pdf = pdf.clone();
                async move { ([("content-type", "application/pdf")], pdf).into_response() }
            }),
        )
        .route(
            "/endless.txt",
            axum::routing::get(|| async {
                let chunks = futures::stream::iter((0..64).map(|_| Ok::<_, std::io::Error>("word ".repeat(2048))));
                ([("content-type", "text/plain")], Body::from_stream(chunks))
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let site_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(axum::serve(listener, site).into_future());
    let upstream = Upstream::start(vec![]).await;
    let dir = temp_dir("urls");
    let mut options = quick_options();
    options.embedding_model_dir = Some(crate::support::minilm_dir());
    options.limits.max_document_bytes = 256 * 1024;
    let allowed = format!("  api: {{fetchAllowedUrls: [\"{site_url}/\"]}}\n");
    let agent = crate::support::state(config(&upstream.base_url(), &allowed, &dir, "Chat"), &options);
    let refused = json!({"urls": [format!("http://localhost:{}/guide.html", site_url.rsplit(':').next().unwrap())]});
    let (status, text) = send(&agent, post("/v1/knowledge/documents", &refused)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a loopback host the agent does not allow: {text}");
    assert!(text.contains("internal address"), "{text}");

    let urls = json!({"urls": [format!("{site_url}/guide.html"), format!("{site_url}/manual")]});
    let (status, text) = send(&agent, post("/v1/knowledge/documents", &urls)).await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["documents"][1]["document"]["name"], format!("{site_url}/manual"));
    assert!(body["documents"][1]["document"]["chunks"].as_u64().unwrap() >= 1);

    let (status, text) =
        send(&agent, post("/v1/knowledge/documents", &json!({"urls": [format!("{site_url}/endless.txt")]}))).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{text}");
    assert!(text.contains("the limit is 262144"), "{text}");
    let (status, text) =
        send(&agent, post("/v1/knowledge/documents", &json!({"urls": [format!("{site_url}/missing")]}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    assert!(text.contains("answered 404"), "{text}");
}
