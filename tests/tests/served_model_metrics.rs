//! The chart dashboard's served-model panels query metrics the engines really export: every
//! `llamacpp:` name is looked up in a live `/metrics` scrape of the llama.cpp server the Model
//! controller runs (started as it starts it, with `--metrics`, after answering a completion).
//! vLLM needs a GPU, so its names are checked against the list vLLM documents for its V1 engine
//! (docs/design/metrics.md, "v1 Metrics") instead.

use std::collections::BTreeSet;

use agent_tests::llama::LlamaServer;
use agent_tests::repo_root;

/// vLLM's Prometheus metrics the dashboard may use, as vLLM documents them (V1 engine).
const VLLM_METRICS: [&str; 8] = [
    "vllm:num_requests_running",
    "vllm:num_requests_waiting",
    "vllm:prompt_tokens_total",
    "vllm:generation_tokens_total",
    "vllm:time_to_first_token_seconds_bucket",
    "vllm:inter_token_latency_seconds_bucket",
    "vllm:e2e_request_latency_seconds_bucket",
    "vllm:kv_cache_usage_perc",
];

/// Every metric name with `prefix` in `text` (names are `[A-Za-z0-9_:]`).
fn names_with(text: &str, prefix: &str) -> BTreeSet<String> {
    text.match_indices(prefix)
        .map(|(at, _)| {
            text[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':').collect::<String>()
        })
        .filter(|name| name.len() > prefix.len())
        .collect()
}

fn dashboard() -> String {
    std::fs::read_to_string(repo_root().join("charts/agent-operator/files/agents-dashboard.json")).unwrap()
}

#[tokio::test]
async fn the_llama_cpp_panels_query_metrics_llama_server_exports() {
    let wanted = names_with(&dashboard(), "llamacpp:");
    assert!(wanted.len() >= 4, "the dashboard has llama.cpp panels: {wanted:?}");
    let server = LlamaServer::start_with(&["--metrics"]).await;
    agent_runtime::install_crypto_provider();
    let client = reqwest::Client::new();
    let completion = serde_json::json!({"prompt": "The capital of France is", "max_tokens": 8});
    let answered = client.post(format!("{}/completions", server.base_url())).json(&completion).send().await.unwrap();
    assert!(answered.status().is_success(), "{}", answered.text().await.unwrap_or_default());
    let scrape =
        client.get(format!("http://127.0.0.1:{}/metrics", server.port)).send().await.unwrap().text().await.unwrap();
    let exported = names_with(&scrape, "llamacpp:");
    for name in &wanted {
        assert!(exported.contains(name), "{name} is not exported by llama-server; it exports {exported:?}");
    }
}

#[test]
fn the_vllm_panels_query_metrics_vllm_documents() {
    let wanted = names_with(&dashboard(), "vllm:");
    assert!(wanted.len() >= 4, "the dashboard has vLLM panels: {wanted:?}");
    for name in &wanted {
        assert!(VLLM_METRICS.contains(&name.as_str()), "{name} is not one of vLLM's documented metrics");
    }
}
