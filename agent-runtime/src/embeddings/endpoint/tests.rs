//! Tests of the endpoint embedder against a small scripted embeddings server on loopback.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use agent_crds::runtime_config::EmbeddingConfig;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};

use super::*;
use crate::embeddings::from_config;

/// How the test server answers.
#[derive(Clone, Copy)]
enum Mode {
    /// Embeds each text as `[its length, 1, 0, 0]`, listing the results in reverse order.
    Reversed,
    /// Answers 500 with an OpenAI error body.
    Fails,
}

/// What the server saw: per request, the Authorization header and the number of inputs.
type Seen = Arc<Mutex<Vec<(Option<String>, usize)>>>;

async fn embeddings(State((mode, seen)): State<(Mode, Seen)>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    let inputs: Vec<String> = serde_json::from_value(body["input"].clone()).unwrap_or_default();
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
    seen.lock().expect("lock").push((auth, inputs.len()));
    match mode {
        Mode::Fails => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": {"message": "model is overloaded", "type": "server_error"}})),
        )
            .into_response(),
        Mode::Reversed => {
            let mut data: Vec<Value> = inputs
                .iter()
                .enumerate()
                .map(|(index, text)| json!({"object": "embedding", "index": index, "embedding": [text.len(), 1.0, 0.0, 0.0]}))
                .collect();
            data.reverse();
            let tokens: usize = inputs.iter().map(String::len).sum();
            let usage = json!({"prompt_tokens": tokens, "total_tokens": tokens});
            Json(json!({"object": "list", "data": data, "model": body["model"], "usage": usage})).into_response()
        }
    }
}

/// Starts a server; returns its `/v1` base URL and what it sees.
async fn server(mode: Mode) -> (String, Seen) {
    let seen = Seen::default();
    let app = Router::new().route("/v1/embeddings", post(embeddings)).with_state((mode, seen.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let addr = listener.local_addr().expect("has an address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/v1"), seen)
}

fn texts(count: usize) -> Vec<String> {
    (0..count).map(|i| "x".repeat(i + 1)).collect()
}

#[tokio::test]
async fn results_listed_out_of_order_are_put_back_in_input_order_and_normalised() {
    let (url, seen) = server(Mode::Reversed).await;
    let embedder = EndpointEmbedder::new(&url, "m", 4, Some("secret".into())).expect("builds");
    let inputs = texts(150);
    let vectors = embedder.embed(inputs.clone()).await.expect("embeds");
    assert_eq!(vectors.len(), inputs.len());
    for (text, vector) in inputs.iter().zip(&vectors) {
        let mut want = vec![f32::from(u16::try_from(text.len()).expect("short")), 1.0, 0.0, 0.0];
        l2_normalize(&mut want);
        assert!(vector.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-6), "{text}: {vector:?} != {want:?}");
    }
    let seen = seen.lock().expect("lock").clone();
    let batches: Vec<usize> = seen.iter().map(|(_, n)| *n).collect();
    assert_eq!(batches, vec![64, 64, 22]);
    assert!(seen.iter().all(|(auth, _)| auth.as_deref() == Some("Bearer secret")));
}

#[tokio::test]
async fn a_server_error_is_reported_with_its_status_and_message() {
    let (url, _) = server(Mode::Fails).await;
    let embedder = EndpointEmbedder::new(&url, "m", 4, None).expect("builds");
    let error = embedder.embed(texts(2)).await.expect_err("fails");
    assert!(matches!(error, EmbedError::Status { status: 500, .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("HTTP 500") && message.contains("model is overloaded"), "{message}");
}

#[tokio::test]
async fn vectors_of_the_wrong_dimension_are_refused_naming_both_dimensions() {
    let (url, _) = server(Mode::Reversed).await;
    let embedder = EndpointEmbedder::new(&url, "m", 8, None).expect("builds");
    let error = embedder.embed(texts(3)).await.expect_err("fails");
    assert!(matches!(error, EmbedError::Dimension { expected: 8, got: 4, .. }), "{error:?}");
    assert!(error.to_string().contains("returns 4-dimensional vectors") && error.to_string().contains("for 8"));
}

#[tokio::test]
async fn a_refused_connection_is_reported_as_unreachable() {
    // A port that was just free: nobody listens on it.
    let addr: SocketAddr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
        listener.local_addr().expect("has an address")
    };
    let embedder = EndpointEmbedder::new(&format!("http://{addr}/v1"), "m", 4, None).expect("builds");
    let error = embedder.embed(texts(1)).await.expect_err("fails");
    let message = error.to_string();
    assert!(matches!(error, EmbedError::Unreachable { .. }), "{error:?}");
    assert!(message.contains(&addr.to_string()) && message.to_lowercase().contains("refused"), "{message}");
}

#[tokio::test]
async fn the_config_reads_the_api_key_file_before_the_fallback() {
    let (url, seen) = server(Mode::Reversed).await;
    let key_file = std::env::temp_dir().join(format!("embedding-key-{}", std::process::id()));
    std::fs::write(&key_file, "from-file\n").expect("writes the key");
    let config = EmbeddingConfig::Endpoint {
        base_url: url.clone(),
        model: "m".into(),
        api_key_file: Some(key_file.to_string_lossy().into_owned()),
        pricing: None,
    };
    let embedder = from_config(&config, 4, None, Some("fallback")).expect("builds");
    embedder.embed(texts(1)).await.expect("embeds");
    let _ = std::fs::remove_file(&key_file);
    let config = EmbeddingConfig::Endpoint { base_url: url, model: "m".into(), api_key_file: None, pricing: None };
    from_config(&config, 4, None, Some("fallback")).expect("builds").embed(texts(1)).await.expect("embeds");
    let auths: Vec<Option<String>> = seen.lock().expect("lock").iter().map(|(auth, _)| auth.clone()).collect();
    assert_eq!(auths, vec![Some("Bearer from-file".into()), Some("Bearer fallback".into())]);
}

#[test]
fn results_are_ordered_by_index_and_a_missing_or_repeated_index_is_refused() {
    let item = |index, value| EmbeddingItem { index, embedding: vec![value] };
    assert_eq!(in_input_order(vec![item(Some(1), 1.0), item(Some(0), 0.0)], 2), Ok(vec![vec![0.0], vec![1.0]]));
    assert_eq!(in_input_order(vec![item(None, 0.0), item(None, 1.0)], 2), Ok(vec![vec![0.0], vec![1.0]]));
    assert!(in_input_order(vec![item(Some(0), 0.0), item(Some(0), 1.0)], 2).is_err());
    assert!(in_input_order(vec![item(Some(5), 0.0)], 1).is_err());
    assert!(in_input_order(vec![item(Some(0), 0.0)], 2).is_err());
}

#[test]
fn error_messages_are_taken_from_openai_style_bodies_or_quoted() {
    assert_eq!(error_message(r#"{"error":{"message":"bad key"}}"#), "bad key");
    assert_eq!(error_message(r#"{"error":"not found"}"#), "not found");
    assert_eq!(error_message("upstream timed out"), "upstream timed out");
    assert_eq!(error_message(""), "(empty body)");
    assert_eq!(error_message(&"y".repeat(500)).len(), QUOTED_BODY_CHARS);
}

#[tokio::test]
async fn an_embeddings_call_counts_its_prompt_tokens_in_the_ledger() {
    let (url, _seen) = server(Mode::Reversed).await;
    let ledger = Arc::new(Ledger::new(std::collections::BTreeMap::new(), Arc::new(crate::metrics::Metrics::default())));
    let embedder = EndpointEmbedder::new(&url, "minilm", 4, None).expect("builds").counted_in(Some(ledger.clone()));
    embedder.embed(vec!["abc".into(), "de".into()]).await.expect("embeds");
    let counted = &ledger.counts()["minilm"];
    assert_eq!((counted.input, counted.output, counted.calls), (5, 0, 1), "the server's usage.prompt_tokens");
}
