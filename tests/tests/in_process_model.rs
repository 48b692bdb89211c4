//! The runtime's in-process model (llama.cpp through llama-cpp-2) on the same Gemma 3 270M GGUF
//! that llama-server serves in the other tests: greedy answers equal llama-server's, concurrent
//! sequences are batched (all start before any ends) and each opens as its answer alone, stop
//! sequences, `max_tokens`, an over-long prompt and bad parameters fail clearly, a repeated
//! prompt reuses its cached prefix; and `agent-runtime serve-model` answers the official OpenAI
//! Python SDK (models, completions whole and streamed, embeddings, its error types).

use std::sync::Arc;

use agent_runtime::inference::metrics::EngineMetrics;
use agent_runtime::inference::{Engine, EngineOptions, Event, Finish, InferenceError, Prompt, Sampling};
use agent_runtime::model_server::{ModelServerOptions, serve_model};
use agent_tests::llama::{LlamaServer, free_port};
use agent_tests::{repo_root, run_checked};
use futures::StreamExt;
use prometheus_client::registry::Registry;
use serde_json::{Value, json};

const QUESTION: &str = "Question: What is the capital of France?\nAnswer:";

fn greedy(max_tokens: u32) -> Sampling {
    Sampling { temperature: 0.0, max_tokens: Some(max_tokens), ..Sampling::default() }
}

fn load(sequences: u32, context_length: u32, metrics: EngineMetrics) -> Engine {
    let mut options = EngineOptions::new(LlamaServer::gemma_gguf());
    options.sequences = sequences;
    options.context_length = context_length;
    options.threads = 2;
    Engine::load(&options, metrics).expect("the GGUF loads")
}

/// The whole text of a generation and how it ended, in event order.
async fn answer(engine: &Engine, prompt: &str, sampling: Sampling) -> (String, Finish, u32) {
    let generation = engine.generate(&Prompt::Text(prompt.to_owned()), sampling).expect("starts");
    let mut events = std::pin::pin!(generation.into_stream());
    let mut text = String::new();
    while let Some(event) = events.next().await {
        match event {
            Event::Text(piece) => text.push_str(&piece),
            Event::Finished { finish, completion_tokens } => return (text, finish, completion_tokens),
            Event::Failed(error) => panic!("generation failed: {error}"),
        }
    }
    panic!("the generation ended without Finished");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn greedy_answers_equal_llama_servers_on_the_same_gguf() {
    agent_runtime::install_crypto_provider();
    let llama = LlamaServer::start().await;
    let body = json!({"prompt": QUESTION, "max_tokens": 24, "temperature": 0, "cache_prompt": false});
    let theirs: Value = reqwest::Client::new()
        .post(format!("{}/completions", llama.base_url()))
        .json(&body)
        .send()
        .await
        .expect("llama-server answers")
        .json()
        .await
        .expect("JSON");
    drop(llama);
    let theirs = theirs["choices"][0]["text"].as_str().expect("text").to_owned();
    let engine = load(1, 2048, EngineMetrics::default());
    let (ours, finish, tokens) = answer(&engine, QUESTION, greedy(24)).await;
    assert_eq!(ours, theirs, "in-process and llama-server greedy answers differ");
    assert!(!ours.trim().is_empty());
    println!("both answered {ours:?} ({finish:?}, {tokens} tokens)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sequences_are_batched_and_each_equals_its_answer_alone() {
    let engine = Arc::new(load(4, 1024, EngineMetrics::default()));
    let prompts = [
        QUESTION.to_owned(),
        "Question: What is the largest planet?\nAnswer:".to_owned(),
        "The three primary colours are".to_owned(),
        "Once upon a time, in a small village,".to_owned(),
    ];
    let mut alone = Vec::new();
    for prompt in &prompts {
        alone.push(answer(&engine, prompt, greedy(20)).await.0);
    }
    // All four at once: each sequence's first text must come before any sequence finishes,
    // which only happens when they share decode steps.
    let (order_tx, mut order) = tokio::sync::mpsc::unbounded_channel();
    let generations: Vec<_> = prompts
        .iter()
        .map(|prompt| engine.generate(&Prompt::Text(prompt.clone()), greedy(20)).expect("starts"))
        .collect();
    let tasks: Vec<_> = generations
        .into_iter()
        .enumerate()
        .map(|(index, generation)| {
            let order_tx = order_tx.clone();
            tokio::spawn(async move {
                let mut text = String::new();
                let mut events = std::pin::pin!(generation.into_stream());
                while let Some(event) = events.next().await {
                    match event {
                        Event::Text(piece) if !piece.is_empty() => {
                            if text.is_empty() {
                                let _ = order_tx.send(("first", index));
                            }
                            text.push_str(&piece);
                        }
                        Event::Text(_) => {}
                        Event::Finished { .. } => {
                            let _ = order_tx.send(("finished", index));
                        }
                        Event::Failed(error) => panic!("sequence {index} failed: {error}"),
                    }
                }
                text
            })
        })
        .collect();
    drop(order_tx);
    let mut together = Vec::new();
    for task in tasks {
        together.push(task.await.expect("sequence task"));
    }
    let mut events = Vec::new();
    while let Some(event) = order.recv().await {
        events.push(event);
    }
    let first_finish = events.iter().position(|(kind, _)| *kind == "finished").expect("some finished");
    let started_before = events[..first_finish].iter().filter(|(kind, _)| *kind == "first").count();
    assert_eq!(started_before, 4, "all four sequences should produce text before any finishes: {events:?}");
    // Batched and alone are the same computation in other batch shapes: llama.cpp's kernels are
    // not batch-invariant, so greedy answers may part after a while (float sums in another
    // order). Sequences mixed up in the cache would differ from the first token.
    for (together, alone) in together.iter().zip(&alone) {
        let opening: String = alone.split_inclusive(' ').take(4).collect();
        assert!(
            together.starts_with(&opening),
            "a batched sequence answered {together:?}, alone it answered {alone:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stops_limits_and_bad_requests_end_clearly() {
    let metrics = EngineMetrics::default();
    let mut registry = Registry::with_prefix("agent");
    metrics.register(&mut registry);
    let engine = load(2, 256, metrics);

    let (full, _, _) = answer(&engine, QUESTION, greedy(24)).await;
    let cut_at = full.trim_start().chars().take(3).collect::<String>();
    let mut stopping = greedy(24);
    stopping.stop = vec![cut_at.clone()];
    let (stopped, finish, _) = answer(&engine, QUESTION, stopping).await;
    assert_eq!(finish, Finish::Stop);
    assert!(!stopped.contains(&cut_at), "{stopped:?} contains the stop sequence {cut_at:?}");
    assert!(full.starts_with(&stopped), "{stopped:?} is not the start of {full:?}");

    let (short, finish, tokens) = answer(&engine, QUESTION, greedy(3)).await;
    assert_eq!((finish, tokens), (Finish::Length, 3), "{short:?}");

    let long = "word ".repeat(400);
    match engine.generate(&Prompt::Text(long), greedy(8)) {
        Err(InferenceError::PromptTooLong { prompt_tokens, context_length: 256 }) => assert!(prompt_tokens > 256),
        other => panic!("expected PromptTooLong, got {other:?}"),
    }
    let bad = Sampling::from_request(json!({"temperature": 9}).as_object().expect("object")).unwrap_err();
    assert_eq!(bad.to_string(), "temperature: 9 is outside 0 to 2");

    // The same prompt again: its prefix is still cached, only the last prompt token is decoded.
    let before = prompt_tokens(&registry);
    let _ = answer(&engine, QUESTION, greedy(2)).await;
    assert_eq!(prompt_tokens(&registry) - before, 1, "a repeated prompt should reuse its cached prefix");
}

fn prompt_tokens(registry: &Registry) -> u64 {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry).expect("encode");
    text.lines()
        .find_map(|line| line.strip_prefix("agent_model_prompt_tokens_total "))
        .and_then(|value| value.trim().parse().ok())
        .expect("agent_model_prompt_tokens_total is exported")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_model_answers_the_official_openai_python_sdk() {
    agent_runtime::install_crypto_provider();
    let port = free_port();
    let mut engine = EngineOptions::new(LlamaServer::gemma_gguf());
    engine.threads = 2;
    engine.context_length = 2048;
    // The GGUF (a base model) has no chat template of its own: use llama.cpp's built-in Gemma one.
    engine.chat_template = Some("gemma".into());
    let options = ModelServerOptions {
        addr: ([127, 0, 0, 1], port).into(),
        engine,
        served_name: "gemma-3-270m".into(),
        embedding_model_dir: Some(LlamaServer::minilm_dir()),
    };
    tokio::spawn(async move { serve_model(options).await.expect("serve-model runs") });
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let status = client.get(format!("{base}/readyz")).send().await.map(|r| r.status().as_u16()).ok();
        if status == Some(200) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "serve-model not ready within 2 minutes: {status:?}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    let script = repo_root().join("tests/python/model_server_check.py");
    let report = tokio::task::spawn_blocking(move || {
        run_checked("python3", &[script.to_str().expect("utf-8 path"), &base, "gemma-3-270m"])
    })
    .await
    .expect("the check runs");
    let report: Value = serde_json::from_str(report.trim()).unwrap_or_else(|e| panic!("{e}: {report}"));
    println!("OpenAI SDK {} against serve-model: {report}", report["sdk"]);
    assert_eq!(report["embedding_dimension"], 384);

    let metrics = client.get(format!("http://127.0.0.1:{port}/metrics")).send().await.expect("metrics");
    let metrics = metrics.text().await.expect("text");
    for name in [
        "agent_model_requests_waiting",
        "agent_model_requests_running",
        "agent_model_time_to_first_token_seconds_bucket",
        "agent_model_inter_token_latency_seconds_bucket",
        "agent_model_generated_tokens_total",
        "agent_model_requests_finished_total{reason=\"length\"}",
    ] {
        assert!(metrics.contains(name), "/metrics lacks {name}:\n{metrics}");
    }
    assert!(metrics.contains("agent_model_requests_running 0\n"), "nothing runs once answered:\n{metrics}");
}
