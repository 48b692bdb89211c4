//! Built-in recipes end to end: a real llama.cpp server with Gemma 3 270M, real MiniLM
//! embeddings, the embedded Qdrant Edge store and the runtime's HTTP API on a socket. A small
//! labelled corpus is ingested, then chatqna, doc-retriever and docsum are asked. The model is a
//! small base model, so the checks are on what the recipe retrieved and cited (deterministic),
//! never on the model's wording.

use agent_crds::render::{ResolvedReferences, render_runtime_config};
use agent_crds::runtime_config::PodPaths;
use agent_crds::{Agent, Model, catalogue};
use agent_runtime::ServeOptions;
use agent_tests::llama::LlamaServer;
use agent_tests::repo_root;
use serde_json::{Value, json};

/// Documents d01..d12 of the labelled corpus, and its queries about them.
fn corpus() -> (Vec<Value>, Vec<(String, String)>) {
    let read = |file: &str| -> Vec<Value> {
        std::fs::read_to_string(repo_root().join("tests/data/knowledge").join(file))
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    };
    let documents: Vec<Value> = read("corpus.jsonl").into_iter().take(12).collect();
    let ids: Vec<&str> = documents.iter().map(|d| d["id"].as_str().unwrap()).collect();
    let queries = read("queries.jsonl")
        .into_iter()
        .filter(|q| q["kind"] == "paraphrase" && ids.contains(&q["expected"].as_str().unwrap()))
        .map(|q| (q["query"].as_str().unwrap().to_owned(), format!("{}.md", q["expected"].as_str().unwrap())))
        .collect();
    let documents = documents
        .iter()
        .map(|d| json!({"name": format!("{}.md", d["id"].as_str().unwrap()), "content": format!("# {}\n\n{}", d["title"].as_str().unwrap(), d["text"].as_str().unwrap())}))
        .collect();
    (documents, queries)
}

/// Serves an agent running the built-in `recipe` on `llama`; returns its base URL.
async fn serve(llama: &LlamaServer, recipe: &str, parameters: &str, budget: u32) -> String {
    let dir = std::env::temp_dir().join(format!("recipes-e2e-{recipe}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let model: Model = serde_yaml::from_str(&format!(
        "apiVersion: agent-operator.dev/v1alpha1\nkind: Model\nmetadata: {{name: gemma, namespace: local}}\nspec:\n  endpoint: {{baseUrl: \"{}\", model: gemma-3-270m}}\n  promptFormat: Completion\n",
        llama.base_url()
    ))
    .unwrap();
    let agent: Agent = serde_yaml::from_str(&format!(
        "apiVersion: agent-operator.dev/v1alpha1\nkind: Agent\nmetadata: {{name: {recipe}-e2e, namespace: local}}\nspec:\n  model: {{modelRef: {{name: gemma}}, parameters: {{temperature: 0, maxTokens: 24, contextBudget: {budget}}}}}\n  knowledge: {{recipe: {recipe}, parameters: {{{parameters}}}}}\n"
    ))
    .unwrap();
    let references = ResolvedReferences {
        model: Some(model),
        recipe: Some(catalogue::builtin(recipe).expect("a built-in recipe")),
        ..Default::default()
    };
    let paths =
        PodPaths { data_dir: dir.display().to_string(), secrets_dir: dir.join("secrets").display().to_string() };
    let config = render_runtime_config(&agent, &references, &paths).unwrap();
    let options = ServeOptions { embedding_model_dir: Some(LlamaServer::minilm_dir()), ..ServeOptions::default() };
    let state = agent_runtime::build_state(config, &options).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(axum::serve(listener, agent_runtime::http::router(state)).into_future());
    url
}

async fn post(url: &str, body: &Value) -> (u16, Value) {
    let response = reqwest::Client::new().post(url).json(body).send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or_else(|_| json!({ "raw": text })))
}

async fn ingest(agent: &str, documents: &[Value]) {
    let (status, body) = post(&format!("{agent}/v1/knowledge/documents"), &json!({ "documents": documents })).await;
    assert_eq!(status, 201, "{body}");
}

fn cited(body: &Value) -> Vec<String> {
    body["citations"].as_array().unwrap().iter().map(|c| c["documentName"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chatqna_doc_retriever_and_docsum_run_on_llama_server_with_real_embeddings() {
    agent_runtime::install_crypto_provider();
    let llama = LlamaServer::start().await;
    let (documents, queries) = corpus();
    assert!(queries.len() >= 3, "the corpus has paraphrase queries about d01..d12");

    // chatqna: the expected document is among the cited passages; the answer ends with the
    // rendered sources list naming the first cited document.
    let chatqna = serve(&llama, "chatqna", "topK: 3", 3072).await;
    ingest(&chatqna, &documents).await;
    let mut found = 0;
    for (query, expected) in &queries {
        let request = json!({"messages": [{"role": "user", "content": query}]});
        let (status, body) = post(&format!("{chatqna}/v1/chat/completions"), &request).await;
        assert_eq!(status, 200, "{body}");
        let names = cited(&body);
        assert_eq!(names.len(), 3, "topK passages are cited: {body}");
        assert_eq!(body["citations"][0]["index"], 1);
        let answer = body["choices"][0]["message"]["content"].as_str().unwrap();
        assert!(answer.contains(&format!("[1] {}", names[0])), "the sources list is appended: {answer}");
        found += usize::from(names.contains(expected));
    }
    println!("chatqna: the expected document was cited for {found} of {} queries", queries.len());
    assert!(found * 10 >= queries.len() * 8, "chatqna cited the expected document for {found}/{}", queries.len());

    // doc-retriever (hybrid by default): a keyword lookup; the answer is the passages
    // themselves, without a model call.
    let retriever = serve(&llama, "doc-retriever", "topK: 2", 3072).await;
    ingest(&retriever, &documents).await;
    let (query, expected) = ("what does ERR-4471 mean", &"d02.md".to_owned());
    let request = json!({"messages": [{"role": "user", "content": query}], "stream": false});
    let (status, body) = post(&format!("{retriever}/v1/chat/completions"), &request).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(&cited(&body)[0], expected, "{body}");
    assert_eq!(body["usage"]["total_tokens"], 0, "no model tokens: {body}");
    let answer = body["choices"][0]["message"]["content"].as_str().unwrap();
    let first = body["citations"][0]["text"].as_str().unwrap();
    assert!(answer.contains(first), "the answer carries the passage text: {answer}");

    // docsum: a text four times the part size is summarized by map-reduce; the same text with
    // the Stuff strategy is refused with the reason.
    let docsum = serve(&llama, "docsum", "", 512).await;
    let long_text: String =
        documents.iter().take(4).map(|d| d["content"].as_str().unwrap()).collect::<Vec<_>>().join("\n\n");
    let request = json!({"messages": [{"role": "user", "content": long_text}]});
    let (status, body) = post(&format!("{docsum}/v1/chat/completions"), &request).await;
    assert_eq!(status, 200, "{body}");
    assert!(!body["choices"][0]["message"]["content"].as_str().unwrap().trim().is_empty(), "{body}");
    let stuff = serve(&llama, "docsum", "strategy: Stuff", 512).await;
    let (status, body) = post(&format!("{stuff}/v1/chat/completions"), &request).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("Stuff strategy"), "{body}");
}
