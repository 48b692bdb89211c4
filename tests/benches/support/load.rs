//! The load generator: chat completions, streamed or whole, over kept-alive HTTP/1.1 connections,
//! `concurrency` at a time, timing each request's first content token and its end, and checking
//! every answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Request, StatusCode, header};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};

use super::upstream;

/// How long one request may take before the target counts as hung.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// A kept-alive HTTP/1.1 client with Nagle's algorithm off, as real OpenAI clients use.
pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// A new client with its own connection pool.
pub fn client() -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    // Idle connections are dropped before uvicorn's 5 s keep-alive can close them under a request.
    Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(2)).build(connector)
}

/// Where requests go and what they ask for.
#[derive(Clone, Debug)]
pub struct Target {
    /// Name in the report.
    pub name: &'static str,
    /// Base URL, e.g. `http://127.0.0.1:8080` (the API is under `/v1`).
    pub base_url: String,
    /// The `model` of each request.
    pub model: String,
    /// Headers this target alone gets on every request (a gateway's routing headers).
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

/// How the answer comes back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// `"stream": true`: server-sent events ending with `data: [DONE]`.
    Stream,
    /// `"stream": false`: one JSON chat completion.
    Whole,
}

impl Mode {
    /// The name in the report.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stream => "stream",
            Self::Whole => "whole",
        }
    }
}

/// One request to one target, prepared once and sent many times.
pub struct Call {
    url: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
    mode: Mode,
    tokens: usize,
    expected: String,
}

impl Call {
    /// The request `target` gets in `mode`, whose answer must be `tokens` tokens long.
    pub fn new(target: &Target, mode: Mode, tokens: usize) -> Self {
        Self {
            url: format!("{}/v1/chat/completions", target.base_url),
            headers: target.headers.clone(),
            body: Bytes::from(request_body(&target.model, mode)),
            mode,
            tokens,
            expected: upstream::answer(tokens),
        }
    }
}

/// Why a request did not produce a complete, correct answer.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The connection or the HTTP exchange failed.
    #[error("HTTP error: {0}")]
    Http(String),
    /// The target answered with another status than 200.
    #[error("HTTP {status}: {body}")]
    Status {
        /// The status.
        status: StatusCode,
        /// The start of the body.
        body: String,
    },
    /// The request took longer than [`REQUEST_TIMEOUT`].
    #[error("no complete answer within {REQUEST_TIMEOUT:?}")]
    Timeout,
    /// A `data:` event was not a chat completion chunk, or a whole answer not a chat completion.
    #[error("bad answer {event:?}: {reason}")]
    BadEvent {
        /// The event's data, or the start of the whole answer.
        event: String,
        /// The parse error or the error object.
        reason: String,
    },
    /// The stream ended or finished without the expected content.
    #[error("wrong answer: {0}")]
    WrongAnswer(String),
}

/// Timings of one correct request.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// From sending the request to the first non-empty content delta (a whole answer's end).
    pub ttft: Duration,
    /// From sending the request to `data: [DONE]`, or to the whole answer's last byte.
    pub total: Duration,
}

/// The samples of one batch of requests and its wall time.
#[derive(Debug)]
pub struct Batch {
    /// One per request.
    pub samples: Vec<Sample>,
    /// From the first request sent to the last answer's end.
    pub wall: Duration,
}

impl Batch {
    /// Requests per second over the batch.
    pub fn requests_per_second(&self) -> f64 {
        f64::from(u32::try_from(self.samples.len()).unwrap_or(u32::MAX)) / self.wall.as_secs_f64()
    }
}

/// Sends `requests` copies of `call`, `concurrency` in flight at a time; the first failure ends the
/// batch.
pub async fn run_batch(
    client: &HttpClient,
    call: &Arc<Call>,
    concurrency: usize,
    requests: usize,
) -> Result<Batch, RequestError> {
    let remaining = Arc::new(AtomicUsize::new(requests));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency.min(requests))
        .map(|_| {
            let (client, call, remaining) = (client.clone(), call.clone(), remaining.clone());
            tokio::spawn(async move {
                let mut samples = Vec::new();
                while take_ticket(&remaining) {
                    samples.push(one_request(&client, &call).await?);
                }
                Ok::<_, RequestError>(samples)
            })
        })
        .collect();
    let mut samples = Vec::with_capacity(requests);
    let mut failure = None;
    for worker in workers {
        match worker.await {
            Ok(Ok(done)) => samples.extend(done),
            Ok(Err(error)) => {
                // Stop the other workers from starting new requests; keep the first error.
                remaining.store(0, Ordering::Relaxed);
                failure.get_or_insert(error);
            }
            Err(join) => std::panic::resume_unwind(join.into_panic()),
        }
    }
    let wall = started.elapsed();
    match failure {
        Some(error) => Err(error),
        None => Ok(Batch { samples, wall }),
    }
}

fn take_ticket(remaining: &AtomicUsize) -> bool {
    remaining.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)).is_ok()
}

/// The request every target gets: a short user message, streamed or not.
fn request_body(model: &str, mode: Mode) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "model": model,
        "messages": [{"role": "user", "content": "Count for me, please."}],
        "stream": mode == Mode::Stream,
    }))
    .expect("a JSON value serializes")
}

/// One chat completion, timed and checked.
pub async fn one_request(client: &HttpClient, call: &Call) -> Result<Sample, RequestError> {
    tokio::time::timeout(REQUEST_TIMEOUT, timed_request(client, call)).await.unwrap_or(Err(RequestError::Timeout))
}

async fn timed_request(client: &HttpClient, call: &Call) -> Result<Sample, RequestError> {
    let accept = match call.mode {
        Mode::Stream => "text/event-stream",
        Mode::Whole => "application/json",
    };
    let mut request = Request::post(&call.url)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, accept)
        .header(header::AUTHORIZATION, "Bearer dummy");
    for (name, value) in &call.headers {
        request = request.header(name, value);
    }
    let request = request.body(Full::new(call.body.clone())).map_err(|e| RequestError::Http(e.to_string()))?;
    let started = Instant::now();
    let response = client.request(request).await.map_err(|e| RequestError::Http(format!("{e:?}")))?;
    let status = response.status();
    let mut body = response.into_body();
    if status != StatusCode::OK {
        let bytes = body.collect().await.map(http_body_util::Collected::to_bytes).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes).chars().take(300).collect();
        return Err(RequestError::Status { status, body: text });
    }
    if call.mode == Mode::Whole {
        let bytes = body.collect().await.map_err(|e| RequestError::Http(format!("reading the body: {e}")))?.to_bytes();
        // The first token arrives with the whole answer.
        let total = started.elapsed();
        check_whole(&bytes, &call.expected)?;
        return Ok(Sample { ttft: total, total });
    }
    let mut stream = StreamCheck::default();
    let mut lines = LineBuffer::default();
    let mut total = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| RequestError::Http(format!("reading the body: {e}")))?;
        let Ok(data) = frame.into_data() else { continue };
        lines.push(&data, |line| {
            if stream.on_line(line, started)? && total.is_none() {
                total = Some(started.elapsed());
            }
            Ok(())
        })?;
    }
    let total = total.ok_or_else(|| RequestError::WrongAnswer("the stream ended without data: [DONE]".into()))?;
    let ttft = stream.check(call.tokens, &call.expected)?;
    Ok(Sample { ttft, total })
}

#[derive(Deserialize)]
struct Completion {
    #[serde(default)]
    choices: Vec<CompletionChoice>,
}

#[derive(Deserialize)]
struct CompletionChoice {
    message: Option<CompletionMessage>,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct CompletionMessage {
    content: Option<String>,
}

/// Checks a whole chat completion: one choice with the expected text, finished by `stop`.
fn check_whole(body: &[u8], expected: &str) -> Result<(), RequestError> {
    let bad = |reason: String| RequestError::BadEvent {
        event: String::from_utf8_lossy(body).chars().take(300).collect(),
        reason,
    };
    let completion: Completion = serde_json::from_slice(body).map_err(|e| bad(e.to_string()))?;
    let [choice] = completion.choices.as_slice() else {
        return Err(bad(format!("{} choices, expected 1", completion.choices.len())));
    };
    let text = choice.message.as_ref().and_then(|m| m.content.as_deref()).unwrap_or_default();
    if text != expected {
        let shown: String = text.chars().take(120).collect();
        return Err(RequestError::WrongAnswer(format!("text starts {shown:?}, not the expected answer")));
    }
    if choice.finish_reason.as_deref() != Some("stop") {
        return Err(RequestError::WrongAnswer(format!("finish_reason {:?}, expected \"stop\"", choice.finish_reason)));
    }
    Ok(())
}

/// Splits a byte stream into lines, whatever the chunk boundaries.
#[derive(Default)]
struct LineBuffer {
    pending: Vec<u8>,
}

impl LineBuffer {
    /// Appends `data` and calls `on_line` with each completed line, without its line ending.
    fn push<E>(&mut self, data: &[u8], mut on_line: impl FnMut(&[u8]) -> Result<(), E>) -> Result<(), E> {
        self.pending.extend_from_slice(data);
        let mut start = 0;
        while let Some(length) = self.pending[start..].iter().position(|b| *b == b'\n') {
            let line = &self.pending[start..start + length];
            on_line(line.strip_suffix(b"\r").unwrap_or(line))?;
            start += length + 1;
        }
        self.pending.drain(..start);
        Ok(())
    }
}

/// What the stream has shown so far.
#[derive(Default)]
struct StreamCheck {
    ttft: Option<Duration>,
    content_deltas: usize,
    text: String,
    finish_reason: Option<String>,
    done: bool,
}

#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(default, borrow)]
    choices: Vec<Choice<'a>>,
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(borrow)]
    delta: Option<Delta<'a>>,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(borrow)]
    content: Option<std::borrow::Cow<'a, str>>,
}

impl StreamCheck {
    /// Reads one line of the event stream; true when it is `data: [DONE]`.
    fn on_line(&mut self, line: &[u8], started: Instant) -> Result<bool, RequestError> {
        let Some(data) = line.strip_prefix(b"data:") else { return Ok(false) };
        let data = data.strip_prefix(b" ").unwrap_or(data);
        if data == b"[DONE]" {
            self.done = true;
            return Ok(true);
        }
        let bad = |reason: String| RequestError::BadEvent { event: String::from_utf8_lossy(data).into_owned(), reason };
        if self.done {
            return Err(bad("event after [DONE]".into()));
        }
        let chunk: Chunk = serde_json::from_slice(data).map_err(|e| bad(e.to_string()))?;
        if let Some(error) = chunk.error {
            return Err(bad(error.to_string()));
        }
        for choice in chunk.choices {
            if let Some(content) = choice.delta.and_then(|d| d.content).filter(|c| !c.is_empty()) {
                self.ttft.get_or_insert_with(|| started.elapsed());
                self.content_deltas += 1;
                self.text.push_str(&content);
            }
            if choice.finish_reason.is_some() {
                self.finish_reason = choice.finish_reason;
            }
        }
        Ok(false)
    }

    /// Checks the finished stream; returns the time to the first token.
    fn check(&self, tokens: usize, expected: &str) -> Result<Duration, RequestError> {
        if self.content_deltas != tokens || self.text != expected {
            let shown: String = self.text.chars().take(120).collect();
            return Err(RequestError::WrongAnswer(format!(
                "{} content deltas, expected {tokens}; text starts {shown:?}",
                self.content_deltas
            )));
        }
        if self.finish_reason.as_deref() != Some("stop") {
            return Err(RequestError::WrongAnswer(format!(
                "finish_reason {:?}, expected \"stop\"",
                self.finish_reason
            )));
        }
        self.ttft.ok_or_else(|| RequestError::WrongAnswer("no content".into()))
    }
}

/// Sends a GET and returns its status, or `None` when the connection fails.
pub async fn get_status(client: &HttpClient, url: &str) -> Option<StatusCode> {
    let request = Request::get(url).body(Full::new(Bytes::new())).ok()?;
    let response = client.request(request).await.ok()?;
    let status = response.status();
    // Drain the body so the connection can be reused.
    let _ = response.into_body().collect().await;
    Some(status)
}
