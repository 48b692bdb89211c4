//! Benchmark: the runtime's in-process llama.cpp engine (`agent-runtime serve-model`) beside
//! llama.cpp's own `llama-server`, on the same GGUF with the same threads and four parallel
//! sequences, at 1 and at `--streams` concurrent streams: prompt tokens/s, generation tokens/s,
//! aggregate throughput and time to first token. Then the local main job (`agent-runtime run
//! examples/local-agent.yaml --model-file ...`), started afresh each round: start-to-ready with the
//! model loaded, time to first token of its first chat turn, and resident memory.
//! `scripts/bench-model.sh` installs the model and llama-server, builds the runtime and runs it.
//!
//! The two servers run side by side but are never loaded at once (a busy one would take the other's
//! cores); each batch runs on one, then the other, the order flipping every round, so drift on a
//! shared machine falls on both. Every prompt starts with a token the previous prompts did not,
//! so the in-process engine's prefix reuse finds nothing and llama-server gets `cache_prompt:
//! false`: both decode every prompt token. The report gives medians over rounds, and ratios taken
//! within a round. Any failed request, or an answer without tokens, ends the bench with an error.

#[allow(dead_code)]
#[path = "support/load.rs"]
mod load;
#[allow(dead_code)]
#[path = "support/process.rs"]
mod process;
#[allow(dead_code)]
#[path = "support/report.rs"]
mod report;
#[allow(dead_code)]
#[path = "support/upstream.rs"]
mod upstream;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode, header};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use serde_json::{Value, json};

use load::HttpClient;
use process::{Service, free_port};

const IN_PROCESS: &str = "in-process";
const LLAMA_SERVER: &str = "llama-server";
/// The name `serve-model` serves the GGUF under.
const SERVED_NAME: &str = "bench-gguf";
/// Sequences (llama-server: slots) of both servers; the issue asks for 4 concurrent streams.
const SEQUENCES: u32 = 4;
/// llama-server's context (`scripts/llama-server.sh -c 4096`), split between its slots; the
/// in-process engine gets the same tokens per sequence, so both hold the same KV cache.
const LLAMA_CONTEXT: u32 = 4096;
/// How long a server may take to load the model and answer its readiness check.
const READY_TIMEOUT: Duration = Duration::from_secs(300);
/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);
/// Requests per server before the first round (page faults, allocator, CPU caches).
const WARM_UP_REQUESTS: usize = 2;
/// How long a ready process idles before its memory is read.
const IDLE_SETTLE: Duration = Duration::from_millis(500);
/// The local main job's manifest, relative to the repository root.
const LOCAL_MANIFEST: &str = "examples/local-agent.yaml";

/// Options; every one has a default, so `cargo bench --bench model_serving` works as is.
#[derive(Parser, Debug)]
#[command(about = "The in-process llama.cpp engine beside llama-server, and the local main job")]
struct Args {
    /// Rounds; the report gives medians over them.
    #[arg(long, env = "BENCH_ROUNDS", default_value_t = 5)]
    rounds: usize,
    /// Most tokens generated per request.
    #[arg(long, env = "BENCH_MAX_TOKENS", default_value_t = 64)]
    max_tokens: u32,
    /// Prompt length aimed at, in tokens (calibrated on the first warm-up answer).
    #[arg(long, env = "BENCH_PROMPT_TOKENS", default_value_t = 300)]
    prompt_tokens: usize,
    /// Requests, one after the other, of the 1-stream batch of each server and round.
    #[arg(long, env = "BENCH_SINGLE_REQUESTS", default_value_t = 4)]
    single_requests: usize,
    /// Concurrent streams of the concurrent batch.
    #[arg(long, env = "BENCH_STREAMS", default_value_t = 4)]
    streams: usize,
    /// Requests each stream of the concurrent batch sends, one after the other.
    #[arg(long, env = "BENCH_STREAM_REQUESTS", default_value_t = 3)]
    stream_requests: usize,
    /// CPU threads of both servers and of the local job.
    #[arg(long, env = "BENCH_THREADS", default_value_t = 2)]
    threads: u32,
    /// The GGUF both serve [default: Gemma 3 270M from `scripts/install-llm.sh`].
    #[arg(long, env = "BENCH_GGUF")]
    gguf: Option<PathBuf>,
    /// The all-MiniLM-L6-v2 folder of the local job [default: the one `scripts/install-llm.sh` installed].
    #[arg(long, env = "BENCH_MINILM_DIR")]
    minilm_dir: Option<PathBuf>,
    /// The agent-runtime binary [default: `agent-runtime` in this bench's profile directory].
    #[arg(long, env = "BENCH_RUNTIME_BIN")]
    runtime_bin: Option<PathBuf>,
    /// Leave out the local main job.
    #[arg(long)]
    skip_local_job: bool,
    /// Where the JSON report goes [default: `<target dir>/bench/model_serving.json`].
    #[arg(long, env = "BENCH_OUT")]
    out: Option<PathBuf>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(args.rounds > 0 && args.single_requests > 0, "--rounds and --single-requests must be at least 1");
    ensure!(args.streams > 1 && args.stream_requests > 0, "--streams must be at least 2, --stream-requests 1");
    ensure!(args.max_tokens >= 2, "--max-tokens must be at least 2 (generation speed needs two tokens)");
    // The bench binary is `<target>/<profile>/deps/<name>`; `cargo build --release` puts the runtime in
    // `<target>/<profile>`.
    let exe = std::env::current_exe()?;
    let profile_dir = exe.parent().and_then(Path::parent).context("the bench binary is in <target>/<profile>/deps")?;
    let runtime_bin = args.runtime_bin.clone().unwrap_or_else(|| profile_dir.join("agent-runtime"));
    ensure!(
        runtime_bin.is_file(),
        "no runtime at {}: run `cargo build --release -p agent-runtime`",
        runtime_bin.display()
    );
    let gguf = args.gguf.clone().unwrap_or_else(agent_tests::llama::LlamaServer::gemma_gguf);
    let minilm_dir = args.minilm_dir.clone().unwrap_or_else(agent_tests::llama::LlamaServer::minilm_dir);
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| profile_dir.parent().unwrap_or(profile_dir).join("bench/model_serving.json"));
    let work = out.with_extension("d");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;

    // One thread for the load: the servers under test need both cores.
    let load_runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let plan = Plan { args, runtime_bin, gguf, minilm_dir, work: work.clone(), client: unpooled_client() };
    let report = load_runtime.block_on(plan.run())?;
    println!("{}", report.markdown());
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&out, serde_json::to_string_pretty(&report)?)?;
    eprintln!("JSON report: {}; logs: {}", out.display(), work.display());
    Ok(())
}

/// A client that opens a connection per request. llama-server closes kept-alive connections on
/// its own schedule, and a request sent on one it just closed fails with "connection closed
/// before message completed"; a loopback connect costs microseconds against answers of seconds.
fn unpooled_client() -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new()).pool_max_idle_per_host(0).build(connector)
}

/// What to run, resolved from the arguments.
struct Plan {
    args: Args,
    runtime_bin: PathBuf,
    gguf: PathBuf,
    minilm_dir: PathBuf,
    work: PathBuf,
    client: HttpClient,
}

/// A model server under test; `service` keeps its process alive.
struct Server {
    name: &'static str,
    completions_url: String,
    service: Service,
    /// Resident memory once loaded and warmed up.
    rss_bytes: Option<u64>,
}

impl Plan {
    async fn run(&self) -> anyhow::Result<Report> {
        let setup = Setup {
            gguf: self.gguf.display().to_string(),
            threads: self.args.threads,
            sequences: SEQUENCES,
            context_per_sequence: LLAMA_CONTEXT / SEQUENCES,
            max_tokens: self.args.max_tokens,
            streams: self.args.streams,
            cores: std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
            load_average_before: load_average(),
            load_average_after: String::new(),
            prompt_tokens: 0,
        };
        // One at a time: a start must not share the cores with the other's.
        let mut servers = vec![self.start_in_process().await?, self.start_llama_server().await?];
        let mut prompts = Prompts::new(self.args.prompt_tokens);
        for server in &mut servers {
            eprintln!("warming up {}", server.name);
            for _ in 0..WARM_UP_REQUESTS {
                let sample = self.complete(server, &prompts).await?;
                prompts.observe(sample.prompt_tokens);
            }
            tokio::time::sleep(IDLE_SETTLE).await;
            server.rss_bytes = server.service.tree_rss_bytes();
        }
        let mut rounds = Vec::new();
        for index in 0..self.args.rounds {
            // Flip the order every round so that drift hits both servers alike.
            let order: Vec<usize> = if index % 2 == 0 { vec![0, 1] } else { vec![1, 0] };
            let mut measured: [ServerRound; 2] = Default::default();
            for &i in &order {
                eprintln!("round {}: {} at 1 stream", index + 1, servers[i].name);
                let batch = self.batch(&servers[i], &prompts, 1, self.args.single_requests).await?;
                measured[i].single(&batch);
            }
            for &i in &order {
                eprintln!("round {}: {} at {} streams", index + 1, servers[i].name, self.args.streams);
                let batch = self.batch(&servers[i], &prompts, self.args.streams, self.args.stream_requests).await?;
                measured[i].concurrent(&batch);
            }
            let local = if self.args.skip_local_job {
                None
            } else {
                eprintln!("round {}: the local main job", index + 1);
                Some(self.local_job(index).await?)
            };
            let [in_process, llama_server] = measured;
            rounds.push(Round {
                number: index + 1,
                order: order.iter().map(|&i| servers[i].name).collect::<Vec<_>>().join(", "),
                in_process,
                llama_server,
                local,
            });
        }
        let rss_mib = |i: usize| servers[i].rss_bytes.map_or(f64::NAN, mib);
        let (in_process_rss_mib, llama_server_rss_mib) = (rss_mib(0), rss_mib(1));
        for server in servers {
            server.service.stop();
        }
        let setup = Setup { load_average_after: load_average(), prompt_tokens: prompts.measured, ..setup };
        Ok(Report { setup, in_process_rss_mib, llama_server_rss_mib, rounds })
    }

    async fn start_in_process(&self) -> anyhow::Result<Server> {
        let port = free_port()?;
        let mut command = Command::new(&self.runtime_bin);
        command
            .arg("serve-model")
            .arg("--model")
            .arg(&self.gguf)
            .args(["--served-model-name", SERVED_NAME, "--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--threads", &self.args.threads.to_string(), "--sequences", &SEQUENCES.to_string()])
            .args(["--context-length", &(LLAMA_CONTEXT / SEQUENCES).to_string()])
            // Request logs would measure the terminal, not the engine.
            .env("RUST_LOG", "warn");
        self.start(IN_PROCESS, command, port, "/readyz").await
    }

    async fn start_llama_server(&self) -> anyhow::Result<Server> {
        let port = free_port()?;
        let mut command = Command::new("bash");
        // The project's own llama-server command (-t 2 -c 4096 --jinja), with 4 slots; the
        // arguments after the script's own win.
        command
            .arg(agent_tests::repo_root().join("scripts/llama-server.sh"))
            .args(["--port", &port.to_string(), "-np", &SEQUENCES.to_string()])
            .args(["-t", &self.args.threads.to_string(), "-tb", &self.args.threads.to_string()])
            .arg("-m")
            .arg(&self.gguf);
        self.start(LLAMA_SERVER, command, port, "/health").await
    }

    async fn start(&self, name: &'static str, command: Command, port: u16, ready: &str) -> anyhow::Result<Server> {
        eprintln!("starting {name}");
        let started = Instant::now();
        let mut service = Service::spawn(command, &self.work.join(format!("{name}.log")))?;
        let url = format!("http://127.0.0.1:{port}{ready}");
        let took = service.wait_ready(&self.client, &url, started, READY_TIMEOUT).await.with_context(|| name)?;
        eprintln!("{name} ready in {:.2} s", took.as_secs_f64());
        Ok(Server {
            name,
            completions_url: format!("http://127.0.0.1:{port}/v1/completions"),
            service,
            rss_bytes: None,
        })
    }

    /// One streamed completion of a fresh prompt, checked.
    async fn complete(&self, server: &Server, prompts: &Prompts) -> anyhow::Result<Sample> {
        let body = json!({
            "model": SERVED_NAME,
            "prompt": prompts.next(),
            "max_tokens": self.args.max_tokens,
            "temperature": 0,
            "stream": true,
            "stream_options": {"include_usage": true},
            // llama-server's prompt cache; the in-process engine ignores the field (its prefix
            // reuse finds nothing, as every prompt starts with a new token).
            "cache_prompt": false,
        });
        let streamed = stream(&self.client, &server.completions_url, &[], &body).await.with_context(|| server.name)?;
        streamed.sample().with_context(|| format!("{}: {}", server.name, streamed.shown()))
    }

    /// `streams` clients, each sending `requests` completions one after the other.
    async fn batch(
        &self,
        server: &Server,
        prompts: &Prompts,
        streams: usize,
        requests: usize,
    ) -> anyhow::Result<Batch> {
        let started = Instant::now();
        let clients = (0..streams).map(|_| async {
            let mut samples = Vec::with_capacity(requests);
            for _ in 0..requests {
                samples.push(self.complete(server, prompts).await?);
            }
            anyhow::Ok(samples)
        });
        let samples: Vec<Sample> = futures::future::try_join_all(clients).await?.into_iter().flatten().collect();
        Ok(Batch { samples, wall: started.elapsed() })
    }

    /// Starts the local main job afresh, times it to ready and its first chat turn, reads its memory.
    async fn local_job(&self, round: usize) -> anyhow::Result<LocalRound> {
        let dir = self.work.join(format!("local-{round}"));
        std::fs::create_dir_all(&dir)?;
        let port = free_port()?;
        let mut command = Command::new(&self.runtime_bin);
        command
            .arg("run")
            .arg(agent_tests::repo_root().join(LOCAL_MANIFEST))
            .arg("--model-file")
            .arg(&self.gguf)
            .args(["--addr", &format!("127.0.0.1:{port}"), "--threads", &self.args.threads.to_string()])
            .arg("--data-dir")
            .arg(dir.join("data"))
            .arg("--secrets-dir")
            .arg(dir.join("secrets"))
            .arg("--embedding-model-dir")
            .arg(&self.minilm_dir)
            .current_dir(&dir)
            .env("RUST_LOG", "warn");
        let started = Instant::now();
        let mut service = Service::spawn(command, &dir.join("agent-runtime.log"))?;
        let base = format!("http://127.0.0.1:{port}");
        let ready = service
            .wait_ready(&self.client, &format!("{base}/readyz"), started, READY_TIMEOUT)
            .await
            .context("the local main job")?;
        let rss_ready = service.tree_rss_bytes().context("the local main job's memory")?;
        let body = json!({
            "messages": [{"role": "user", "content": format!("Question {round}: what is the capital of France?")}],
            "stream": true,
        });
        let session = format!("bench-{round}");
        let streamed =
            stream(&self.client, &format!("{base}/v1/chat/completions"), &[("x-session-id", &session)], &body)
                .await
                .context("the local main job's first chat turn")?;
        let ttft = streamed
            .first_token
            .with_context(|| format!("the local main job answered no text: {}", streamed.shown()))?;
        ensure!(streamed.done, "the local main job's answer did not end with [DONE]: {}", streamed.shown());
        // Memory the turn leaves behind (KV cache, the session, memory written after the turn).
        tokio::time::sleep(IDLE_SETTLE).await;
        let rss_after_turn = service.tree_rss_bytes().context("the local main job's memory")?;
        service.stop();
        Ok(LocalRound {
            start_to_ready_s: ready.as_secs_f64(),
            first_turn_ttft_s: ttft.as_secs_f64(),
            rss_ready_mib: mib(rss_ready),
            rss_after_turn_mib: mib(rss_after_turn),
        })
    }
}

/// Prompts of about the aimed length, each starting with a word the last few did not start with
/// and numbered, so none shares a prefix with a cached one.
struct Prompts {
    aimed: usize,
    sentences: usize,
    calibrated: bool,
    counter: AtomicU64,
    /// Prompt tokens the servers counted after the calibration.
    measured: usize,
}

/// Openings of the prompts: distinct first tokens, more of them than there are sequences.
const OPENINGS: [&str; 12] =
    ["Yesterday", "Long", "Every", "Before", "Under", "When", "Three", "Near", "Once", "After", "During", "Somewhere"];
/// The story the prompts are made of, rotated per prompt.
const SENTENCES: [&str; 8] = [
    "the keeper of the northern lighthouse climbed the spiral stairs to trim the wick and wipe the salt from the great lens.",
    "a fishing boat with a red sail rounded the headland, its crew hauling nets heavy with silver herring and tangled kelp.",
    "the village baker lit her ovens before dawn, and the smell of rye bread drifted down the narrow street to the harbour.",
    "storm clouds gathered over the western islands while gulls wheeled and cried above the grey and restless water below.",
    "the schoolteacher read aloud from an old atlas, tracing with one finger the routes of merchants who sailed to distant ports.",
    "an old sailor mended his coat by the fire and told the children about the winter the whole bay froze from shore to shore.",
    "the ferry from the mainland was late again, and the postmaster waited on the pier with a lantern and a sack of letters.",
    "wind rattled the shutters of the chapel on the hill, where the bell had not rung since the night of the great flood.",
];

impl Prompts {
    fn new(aimed: usize) -> Self {
        // Roughly 24 tokens a sentence, until the first answer says how many it was.
        Self { aimed, sentences: (aimed / 24).max(1), calibrated: false, counter: AtomicU64::new(0), measured: 0 }
    }

    fn next(&self) -> String {
        let n = usize::try_from(self.counter.fetch_add(1, Ordering::Relaxed)).unwrap_or(0);
        let mut prompt = format!("{}, in chapter {n},", OPENINGS[n % OPENINGS.len()]);
        for i in 0..self.sentences {
            prompt.push(' ');
            prompt.push_str(SENTENCES[(n + i) % SENTENCES.len()]);
        }
        // Mid-sentence, so that a base model goes on writing rather than stopping.
        prompt.push_str(" That evening, as the lamps were lit one by one along the quay,");
        prompt
    }

    /// The first answer scales the sentence count to the aimed length; later ones record it.
    fn observe(&mut self, prompt_tokens: usize) {
        if self.calibrated {
            self.measured = prompt_tokens;
        } else {
            self.sentences = ((self.sentences * self.aimed + prompt_tokens / 2) / prompt_tokens.max(1)).max(1);
            self.calibrated = true;
        }
    }
}

/// What one streamed answer showed.
#[derive(Default, Debug)]
struct Streamed {
    first_token: Option<Duration>,
    finished: Option<Duration>,
    finish_reason: Option<String>,
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    text: String,
    done: bool,
}

impl Streamed {
    /// Reads one server-sent event line.
    fn on_line(&mut self, line: &[u8], started: Instant) -> anyhow::Result<()> {
        let Some(data) = line.strip_prefix(b"data:") else { return Ok(()) };
        let data = data.strip_prefix(b" ").unwrap_or(data);
        if data == b"[DONE]" {
            self.done = true;
            return Ok(());
        }
        let chunk: Value = serde_json::from_slice(data)
            .with_context(|| format!("not a JSON chunk: {:?}", String::from_utf8_lossy(data)))?;
        if let Some(error) = chunk.get("error") {
            bail!("error event: {error}");
        }
        for choice in chunk.get("choices").and_then(Value::as_array).into_iter().flatten() {
            // `/v1/completions` streams `text`, `/v1/chat/completions` streams `delta.content`.
            let text = choice.get("text").or_else(|| choice.pointer("/delta/content")).and_then(Value::as_str);
            if let Some(text) = text.filter(|t| !t.is_empty()) {
                self.first_token.get_or_insert_with(|| started.elapsed());
                self.text.push_str(text);
            }
            if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
                self.finished.get_or_insert_with(|| started.elapsed());
                self.finish_reason = Some(reason.to_owned());
            }
        }
        if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
            self.prompt_tokens = usage.get("prompt_tokens").and_then(Value::as_u64);
            self.completion_tokens = usage.get("completion_tokens").and_then(Value::as_u64);
        }
        Ok(())
    }

    /// The timings of a complete answer with its usage, or why there are none.
    fn sample(&self) -> anyhow::Result<Sample> {
        ensure!(self.done, "the stream did not end with [DONE]");
        let first = self.first_token.context("no text in the answer")?;
        let finished = self.finished.context("no finish_reason in the answer")?;
        let (Some(prompt), Some(completion)) = (self.prompt_tokens, self.completion_tokens) else {
            bail!("no usage chunk (stream_options.include_usage)");
        };
        ensure!(prompt > 0 && completion > 0, "usage counts no tokens: {prompt} prompt, {completion} completion");
        Ok(Sample {
            prompt_tokens: usize::try_from(prompt)?,
            completion_tokens: usize::try_from(completion)?,
            ttft: first,
            generating: finished.saturating_sub(first),
        })
    }

    /// The answer, shortened, for error messages.
    fn shown(&self) -> String {
        let text: String = self.text.chars().take(120).collect();
        format!(
            "text {text:?}, finish_reason {:?}, usage {:?}/{:?}",
            self.finish_reason, self.prompt_tokens, self.completion_tokens
        )
    }
}

/// POSTs `body` and reads the server-sent events of the answer.
async fn stream(client: &HttpClient, url: &str, headers: &[(&str, &str)], body: &Value) -> anyhow::Result<Streamed> {
    tokio::time::timeout(REQUEST_TIMEOUT, stream_inner(client, url, headers, body))
        .await
        .unwrap_or_else(|_| bail!("no complete answer from {url} within {REQUEST_TIMEOUT:?}"))
}

async fn stream_inner(
    client: &HttpClient,
    url: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> anyhow::Result<Streamed> {
    let mut request =
        Request::post(url).header(header::CONTENT_TYPE, "application/json").header(header::ACCEPT, "text/event-stream");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Full::new(Bytes::from(serde_json::to_vec(body)?)))?;
    let started = Instant::now();
    let response = client.request(request).await.with_context(|| format!("POST {url}"))?;
    let status = response.status();
    let mut body = response.into_body();
    if status != StatusCode::OK {
        let bytes = body.collect().await.map(http_body_util::Collected::to_bytes).unwrap_or_default();
        bail!("POST {url}: HTTP {status}: {}", String::from_utf8_lossy(&bytes).chars().take(300).collect::<String>());
    }
    let mut streamed = Streamed::default();
    let mut pending = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.context("reading the answer")?.into_data() else { continue };
        pending.extend_from_slice(&data);
        let mut start = 0;
        while let Some(length) = pending[start..].iter().position(|b| *b == b'\n') {
            let line = &pending[start..start + length];
            streamed.on_line(line.strip_suffix(b"\r").unwrap_or(line), started)?;
            start += length + 1;
        }
        pending.drain(..start);
    }
    Ok(streamed)
}

/// One complete answer.
#[derive(Clone, Copy, Debug)]
struct Sample {
    prompt_tokens: usize,
    completion_tokens: usize,
    /// From sending the request to the first text.
    ttft: Duration,
    /// From the first text to the finish reason.
    generating: Duration,
}

impl Sample {
    /// Prompt tokens decoded per second before the first token (includes the HTTP round trip).
    fn prompt_rate(&self) -> f64 {
        float(self.prompt_tokens) / self.ttft.as_secs_f64()
    }

    /// Tokens generated per second after the first; `None` for an answer of one token.
    fn generation_rate(&self) -> Option<f64> {
        (self.completion_tokens > 1 && !self.generating.is_zero())
            .then(|| float(self.completion_tokens - 1) / self.generating.as_secs_f64())
    }
}

/// The answers of one batch and its wall time.
struct Batch {
    samples: Vec<Sample>,
    wall: Duration,
}

impl Batch {
    /// Generated tokens per second of wall time, all streams together.
    fn throughput(&self) -> f64 {
        float(self.samples.iter().map(|s| s.completion_tokens).sum()) / self.wall.as_secs_f64()
    }

    fn median_of(&self, value: impl Fn(&Sample) -> Option<f64>) -> f64 {
        median(self.samples.iter().filter_map(value).collect())
    }
}

/// One server's numbers in one round.
#[derive(Default, Serialize)]
struct ServerRound {
    /// Median prompt tokens/s over the 1-stream requests.
    prompt_tps: f64,
    /// Median generation tokens/s over the 1-stream requests.
    generation_tps: f64,
    /// Median time to first token at 1 stream, in seconds.
    ttft_1_s: f64,
    /// Generated tokens/s of wall time at 1 stream.
    throughput_1: f64,
    /// Generated tokens/s of wall time at `--streams` streams.
    throughput_n: f64,
    /// Median time to first token at `--streams` streams, in seconds.
    ttft_n_s: f64,
    /// Median generation tokens/s of one stream among `--streams`.
    generation_tps_n: f64,
    /// Median completion tokens per answer (below `--max-tokens` when the model stopped early).
    completion_tokens: f64,
}

impl ServerRound {
    fn single(&mut self, batch: &Batch) {
        self.prompt_tps = batch.median_of(|s| Some(s.prompt_rate()));
        self.generation_tps = batch.median_of(Sample::generation_rate);
        self.ttft_1_s = batch.median_of(|s| Some(s.ttft.as_secs_f64()));
        self.throughput_1 = batch.throughput();
        self.completion_tokens = batch.median_of(|s| Some(float(s.completion_tokens)));
    }

    fn concurrent(&mut self, batch: &Batch) {
        self.throughput_n = batch.throughput();
        self.ttft_n_s = batch.median_of(|s| Some(s.ttft.as_secs_f64()));
        self.generation_tps_n = batch.median_of(Sample::generation_rate);
    }
}

/// The local main job in one round.
#[derive(Serialize)]
struct LocalRound {
    start_to_ready_s: f64,
    first_turn_ttft_s: f64,
    rss_ready_mib: f64,
    rss_after_turn_mib: f64,
}

#[derive(Serialize)]
struct Round {
    #[serde(rename = "round")]
    number: usize,
    /// The servers in the order they ran in.
    order: String,
    in_process: ServerRound,
    llama_server: ServerRound,
    local: Option<LocalRound>,
}

impl Round {
    /// The in-process engine's numbers (0) or llama-server's (1).
    fn server(&self, index: usize) -> &ServerRound {
        if index == 0 { &self.in_process } else { &self.llama_server }
    }
}

#[derive(Serialize)]
struct Setup {
    gguf: String,
    threads: u32,
    sequences: u32,
    context_per_sequence: u32,
    max_tokens: u32,
    streams: usize,
    cores: usize,
    /// Prompt tokens as the servers counted them.
    prompt_tokens: usize,
    /// `/proc/loadavg` when the bench started and ended.
    load_average_before: String,
    load_average_after: String,
}

#[derive(Serialize)]
struct Report {
    setup: Setup,
    in_process_rss_mib: f64,
    llama_server_rss_mib: f64,
    rounds: Vec<Round>,
}

impl Report {
    fn markdown(&self) -> String {
        let s = &self.setup;
        let n = s.streams;
        let mut out = format!(
            "Model serving: {} threads, {} sequences of {} tokens, prompts of {} tokens, max_tokens {}, {} cores; \
             load average {} before, {} after.\n\n",
            s.threads,
            s.sequences,
            s.context_per_sequence,
            s.prompt_tokens,
            s.max_tokens,
            s.cores,
            s.load_average_before,
            s.load_average_after
        );
        let _ = writeln!(
            out,
            "| round | order | prompt tok/s in-proc | llama-server | ratio | gen tok/s 1 stream in-proc | llama-server \
             | ratio | aggregate tok/s {n} streams in-proc | llama-server | ratio | {n}/1 in-proc | {n}/1 llama-server |"
        );
        out.push_str("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
        let ratio = |a: f64, b: f64| a / b;
        let columns = |r: &Round| {
            let (a, b) = (&r.in_process, &r.llama_server);
            [
                a.prompt_tps,
                b.prompt_tps,
                ratio(a.prompt_tps, b.prompt_tps),
                a.generation_tps,
                b.generation_tps,
                ratio(a.generation_tps, b.generation_tps),
                a.throughput_n,
                b.throughput_n,
                ratio(a.throughput_n, b.throughput_n),
                ratio(a.throughput_n, a.throughput_1),
                ratio(b.throughput_n, b.throughput_1),
            ]
        };
        let rows: Vec<[f64; 11]> = self.rounds.iter().map(columns).collect();
        for (r, row) in self.rounds.iter().zip(&rows) {
            let _ = writeln!(out, "| {} | {} | {} |", r.number, r.order, cells(row));
        }
        let _ = write!(out, "| **median** | | {} |\n\n", cells(&column_medians(&rows)));

        let _ = writeln!(
            out,
            "| server | TTFT 1 stream (ms) | TTFT {n} streams (ms) | gen tok/s per stream at {n} | throughput 1 stream (tok/s) \
             | completion tokens | RSS loaded (MiB) |\n|---|--:|--:|--:|--:|--:|--:|"
        );
        for (name, server, rss) in
            [(IN_PROCESS, 0, self.in_process_rss_mib), (LLAMA_SERVER, 1, self.llama_server_rss_mib)]
        {
            let m = |f: fn(&ServerRound) -> f64| median(self.rounds.iter().map(|r| f(r.server(server))).collect());
            let _ = writeln!(
                out,
                "| {name} | {:.0} | {:.0} | {:.1} | {:.1} | {:.0} | {:.0} |",
                m(|s| s.ttft_1_s) * 1e3,
                m(|s| s.ttft_n_s) * 1e3,
                m(|s| s.generation_tps_n),
                m(|s| s.throughput_1),
                m(|s| s.completion_tokens),
                rss
            );
        }

        let local: Vec<&LocalRound> = self.rounds.iter().filter_map(|r| r.local.as_ref()).collect();
        if !local.is_empty() {
            out.push_str(
                "\nLocal main job (`agent-runtime run examples/local-agent.yaml --model-file ...`), started afresh each round:\n\n\
                 | round | start to ready (s) | first turn TTFT (ms) | RSS ready (MiB) | RSS after the turn (MiB) |\n\
                 |---|--:|--:|--:|--:|\n",
            );
            let rows: Vec<[f64; 4]> = local
                .iter()
                .map(|l| [l.start_to_ready_s, l.first_turn_ttft_s * 1e3, l.rss_ready_mib, l.rss_after_turn_mib])
                .collect();
            for (r, row) in self.rounds.iter().zip(&rows) {
                let _ = writeln!(out, "| {} | {} |", r.number, cells(row));
            }
            let _ = writeln!(out, "| **median** | {} |", cells(&column_medians(&rows)));
        }
        out
    }
}

fn cells(row: &[f64]) -> String {
    row.iter()
        .map(|v| match v.abs() {
            x if x < 10.0 => format!("{v:.2}"),
            x if x < 100.0 => format!("{v:.1}"),
            _ => format!("{v:.0}"),
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

fn column_medians<const N: usize>(rows: &[[f64; N]]) -> [f64; N] {
    std::array::from_fn(|i| median(rows.iter().map(|row| row[i]).collect()))
}

/// The median; NaN for no values.
fn median(mut values: Vec<f64>) -> f64 {
    values.retain(|v| !v.is_nan());
    report::median(&values).unwrap_or(f64::NAN)
}

fn mib(bytes: u64) -> f64 {
    float(usize::try_from(bytes / 1024).unwrap_or(usize::MAX)) / 1024.0
}

/// A count as a float (counts here are far below 2^32).
fn float(n: usize) -> f64 {
    f64::from(u32::try_from(n).unwrap_or(u32::MAX))
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}
