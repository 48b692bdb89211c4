//! The engine thread: one llama.cpp context, several sequences, continuous batching.

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatTemplate, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use super::metrics::EngineMetrics;
use super::prompt::{Prompt, render};
use super::sampling::Sampling;
use super::text::TextAssembler;
use super::{EngineOptions, InferenceError};

/// Why a generation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finish {
    /// The model ended its answer, or a stop sequence was reached.
    Stop,
    /// `max_tokens` or the sequence's context was reached.
    Length,
}

impl Finish {
    /// OpenAI's `finish_reason`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::Length => "length",
        }
    }
}

/// What a running generation reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// More answer text.
    Text(String),
    /// The answer is complete.
    Finished {
        /// Why it ended.
        finish: Finish,
        /// Tokens generated.
        completion_tokens: u32,
    },
    /// The generation failed; nothing more comes.
    Failed(InferenceError),
}

/// A generation in progress: its events, in order. Dropping it cancels the generation.
#[derive(Debug)]
pub struct Generation {
    /// Tokens of the prompt.
    pub prompt_tokens: usize,
    /// Text, then `Finished` or `Failed`.
    pub events: UnboundedReceiver<Event>,
}

impl Generation {
    /// The events as a stream (ends after `Finished` or `Failed`).
    pub fn into_stream(self) -> impl futures::Stream<Item = Event> + Send + 'static {
        let mut events = self.events;
        futures::stream::poll_fn(move |cx| events.poll_recv(cx))
    }
}

/// A loaded model and the thread generating with it. Cheap to share behind an `Arc`.
pub struct Engine {
    model: Arc<LlamaModel>,
    template: Option<LlamaChatTemplate>,
    jobs: Sender<Job>,
    context_length: u32,
    sequences: u32,
}

struct Job {
    tokens: Vec<LlamaToken>,
    sampling: Sampling,
    arrived: Instant,
    events: UnboundedSender<Event>,
}

/// llama.cpp's process-wide state: initialised once, its log lines sent to `tracing`.
fn backend() -> Result<&'static LlamaBackend, InferenceError> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|reason| InferenceError::Load { path: String::new(), reason: reason.clone() })
}

impl Engine {
    /// Loads the model and starts the engine thread. Blocks while the weights load (seconds for
    /// a small model): call it from a blocking task.
    pub fn load(options: &EngineOptions, metrics: EngineMetrics) -> Result<Self, InferenceError> {
        let path = options.model_path.display().to_string();
        let load_error = |reason: String| InferenceError::Load { path: path.clone(), reason };
        if !options.model_path.is_file() {
            return Err(load_error("no such file".into()));
        }
        let backend = backend()?;
        let model = LlamaModel::load_from_file(backend, &options.model_path, &LlamaModelParams::default())
            .map_err(|e| load_error(format!("{e} (is it a GGUF file of an architecture this llama.cpp knows?)")))?;
        let model = Arc::new(model);
        let template = match &options.chat_template {
            Some(template) => Some(
                LlamaChatTemplate::new(template)
                    .map_err(|_| InferenceError::Template("the chat template contains a NUL byte".into()))?,
            ),
            None => model.chat_template(None).ok(),
        };
        let context_length = options.context_length.min(model.n_ctx_train()).max(64);
        let sequences = options.sequences.max(1);
        let (jobs, queue) = std::sync::mpsc::channel();
        let (started, start) = std::sync::mpsc::channel();
        let thread_model = model.clone();
        let settings = ThreadSettings {
            context_length,
            sequences,
            threads: i32::try_from(options.threads.max(1)).unwrap_or(1),
            batch_size: options.batch_size.max(32),
        };
        std::thread::Builder::new()
            .name("llama-engine".into())
            .spawn(move || run(&thread_model, backend, &settings, &queue, &started, &metrics))
            .map_err(|e| load_error(format!("cannot start the engine thread: {e}")))?;
        start.recv().unwrap_or(Err(InferenceError::Stopped)).map_err(|e| match e {
            InferenceError::Load { reason, .. } => load_error(reason),
            other => other,
        })?;
        Ok(Self { model, template, jobs, context_length, sequences })
    }

    /// [`Engine::load`] on a blocking thread, logging how long the load took and what was loaded.
    pub async fn start(options: EngineOptions, metrics: EngineMetrics) -> Result<Self, InferenceError> {
        let started = Instant::now();
        let path = options.model_path.display().to_string();
        let engine = tokio::task::spawn_blocking(move || Self::load(&options, metrics))
            .await
            .map_err(|e| InferenceError::Load { path, reason: e.to_string() })??;
        tracing::info!(
            seconds = started.elapsed().as_secs_f64(),
            context_length = engine.context_length,
            sequences = engine.sequences,
            chat_template = engine.template.is_some(),
            "model loaded"
        );
        Ok(engine)
    }

    /// Starts generating from `prompt`. Fails at once when the prompt cannot be rendered or
    /// leaves no room for an answer.
    pub fn generate(&self, prompt: &Prompt, sampling: Sampling) -> Result<Generation, InferenceError> {
        let (text, special) = render(&self.model, self.template.as_ref(), prompt)?;
        let vocab = self.model.vocab();
        let mut tokens = vocab.tokenize(text.as_bytes(), true, special);
        // A template that writes the BOS token itself, tokenized with BOS added: keep one.
        if tokens.len() >= 2 && tokens[0] == vocab.bos() && tokens[1] == vocab.bos() {
            tokens.remove(0);
        }
        if tokens.is_empty() {
            tokens.push(vocab.bos());
        }
        let limit = self.context_length as usize;
        if tokens.len() >= limit {
            return Err(InferenceError::PromptTooLong {
                prompt_tokens: tokens.len(),
                context_length: self.context_length,
            });
        }
        let (events, receiver) = unbounded_channel();
        let prompt_tokens = tokens.len();
        let job = Job { tokens, sampling, arrived: Instant::now(), events };
        self.jobs.send(job).map_err(|_| InferenceError::Stopped)?;
        Ok(Generation { prompt_tokens, events: receiver })
    }
}

struct ThreadSettings {
    context_length: u32,
    sequences: u32,
    threads: i32,
    batch_size: u32,
}

/// One sequence of the context: idle (holding the tokens its KV cache has, for reuse) or busy.
struct Sequence {
    id: i32,
    /// Tokens whose KV entries the context holds for this sequence.
    cached: Vec<LlamaToken>,
    running: Option<Running>,
}

struct Running {
    job: Job,
    sampler: LlamaSampler,
    text: TextAssembler,
    /// Prompt tokens not yet decoded (the cached prefix is skipped).
    pending: VecDeque<LlamaToken>,
    /// The token to decode next once the prompt is in.
    next: Option<LlamaToken>,
    generated: u32,
    last_token_at: Option<Instant>,
    /// Index in this step's batch whose logits are this sequence's.
    logits_at: Option<i32>,
}

fn run(
    model: &LlamaModel,
    backend: &LlamaBackend,
    settings: &ThreadSettings,
    jobs: &Receiver<Job>,
    started: &Sender<Result<(), InferenceError>>,
    metrics: &EngineMetrics,
) {
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(settings.context_length * settings.sequences))
        .with_n_seq_max(settings.sequences)
        .with_n_batch(settings.batch_size)
        .with_n_ubatch(settings.batch_size)
        .with_n_threads(settings.threads)
        .with_n_threads_batch(settings.threads);
    let mut context = match model.new_context(backend, params) {
        Ok(context) => context,
        Err(error) => {
            let reason = format!("cannot create the context ({error}): too little memory for the context length?");
            let _ = started.send(Err(InferenceError::Load { path: String::new(), reason }));
            return;
        }
    };
    let _ = started.send(Ok(()));
    let mut batch = LlamaBatch::new(settings.batch_size as usize, 1);
    let mut sequences: Vec<Sequence> = (0..settings.sequences)
        .map(|id| Sequence { id: i32::try_from(id).unwrap_or(0), cached: Vec::new(), running: None })
        .collect();
    let mut waiting: VecDeque<Job> = VecDeque::new();
    loop {
        let busy = sequences.iter().any(|s| s.running.is_some());
        if !busy && waiting.is_empty() {
            metrics.occupancy(0, 0);
            match jobs.recv() {
                Ok(job) => waiting.push_back(job),
                Err(_) => return,
            }
        }
        loop {
            match jobs.try_recv() {
                Ok(job) => waiting.push_back(job),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) if busy || !waiting.is_empty() => break,
                Err(TryRecvError::Disconnected) => return,
            }
        }
        admit(model, &mut context, &mut sequences, &mut waiting, metrics);
        let running = sequences.iter().filter(|s| s.running.is_some()).count();
        metrics.occupancy(waiting.len(), running);
        if running == 0 {
            continue;
        }
        fill(&mut batch, &mut sequences, settings.batch_size as usize);
        if let Err(error) = context.decode(&mut batch) {
            // The batch's tokens are not in the cache: every sequence in it is inconsistent.
            let error = InferenceError::Decode(error.to_string());
            for sequence in &mut sequences {
                end(&mut context, sequence, Err(error.clone()), metrics);
            }
            continue;
        }
        for sequence in &mut sequences {
            step(model, &mut context, sequence, settings.context_length, metrics);
        }
    }
}

/// Gives waiting jobs free sequences, preferring the idle sequence whose cache shares the
/// longest prefix with the prompt, and drops the cache beyond that prefix.
fn admit(
    model: &LlamaModel,
    context: &mut LlamaContext<'_>,
    sequences: &mut [Sequence],
    waiting: &mut VecDeque<Job>,
    metrics: &EngineMetrics,
) {
    while let Some(job) = waiting.front() {
        if job.events.is_closed() {
            waiting.pop_front();
            metrics.finished("cancelled");
            continue;
        }
        let Some(sequence) =
            sequences.iter_mut().filter(|s| s.running.is_none()).max_by_key(|s| common_prefix(&s.cached, &job.tokens))
        else {
            return;
        };
        let Some(job) = waiting.pop_front() else { return };
        // At least the last prompt token is decoded again: its logits start the answer.
        let mut reused = common_prefix(&sequence.cached, &job.tokens).min(job.tokens.len() - 1);
        let from = u32::try_from(reused).unwrap_or(u32::MAX);
        if context.kv_cache_seq_rm(sequence.id, Some(from), None).is_err() {
            // Some caches (sliding-window attention) cannot drop a suffix: start over.
            let _ = context.clear_kv_cache_seq(u32::try_from(sequence.id).ok(), None, None);
            reused = 0;
        }
        sequence.cached.truncate(reused);
        metrics.prompt(job.tokens.len() - reused);
        let sampler = sampler(model, &job.sampling);
        let mut stops = job.sampling.stop.clone();
        stops.dedup();
        sequence.running = Some(Running {
            pending: job.tokens[reused..].iter().copied().collect(),
            job,
            sampler,
            text: TextAssembler::new(stops),
            next: None,
            generated: 0,
            last_token_at: None,
            logits_at: None,
        });
    }
}

fn common_prefix(a: &[LlamaToken], b: &[LlamaToken]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// llama-server's sampler order: penalties, top-k, top-p, min-p, temperature, then a draw.
fn sampler(model: &LlamaModel, sampling: &Sampling) -> LlamaSampler {
    let mut chain = Vec::new();
    if sampling.has_penalties() {
        chain.push(LlamaSampler::penalties(
            model.n_vocab(),
            64,
            sampling.repeat_penalty,
            sampling.frequency_penalty,
            sampling.presence_penalty,
        ));
    }
    if sampling.is_greedy() {
        chain.push(LlamaSampler::greedy());
    } else {
        if sampling.top_k > 0 {
            chain.push(LlamaSampler::top_k(sampling.top_k));
        }
        chain.push(LlamaSampler::top_p(sampling.top_p, 1));
        chain.push(LlamaSampler::min_p(sampling.min_p, 1));
        chain.push(LlamaSampler::temp(sampling.temperature));
        chain.push(LlamaSampler::dist(sampling.seed.unwrap_or_else(rand::random)));
    }
    LlamaSampler::chain_simple(chain)
}

/// Puts this step's tokens in the batch: the next token of every generating sequence first,
/// then prompt chunks in the room left.
fn fill(batch: &mut LlamaBatch<'_>, sequences: &mut [Sequence], capacity: usize) {
    batch.clear();
    for sequence in sequences.iter_mut() {
        let position = position(sequence.cached.len());
        let Some(running) = sequence.running.as_mut() else { continue };
        running.logits_at = None;
        if let Some(token) = running.next.take() {
            if batch.add(token, position, &[sequence.id], true).is_ok() {
                running.logits_at = Some(batch.n_tokens() - 1);
                sequence.cached.push(token);
            } else {
                running.next = Some(token);
            }
        }
    }
    for sequence in sequences.iter_mut() {
        let Some(running) = sequence.running.as_mut() else { continue };
        while !running.pending.is_empty() && usize::try_from(batch.n_tokens()).is_ok_and(|n| n < capacity) {
            let Some(token) = running.pending.pop_front() else { break };
            let last = running.pending.is_empty();
            if batch.add(token, position(sequence.cached.len()), &[sequence.id], last).is_err() {
                running.pending.push_front(token);
                break;
            }
            sequence.cached.push(token);
            if last {
                running.logits_at = Some(batch.n_tokens() - 1);
            }
        }
    }
}

fn position(cached: usize) -> i32 {
    i32::try_from(cached).unwrap_or(i32::MAX)
}

/// Samples the sequence's next token if this step produced its logits, and sends its text.
fn step(
    model: &LlamaModel,
    context: &mut LlamaContext<'_>,
    sequence: &mut Sequence,
    context_length: u32,
    metrics: &EngineMetrics,
) {
    let Some(running) = sequence.running.as_mut() else { return };
    let Some(index) = running.logits_at.take() else { return };
    let token = running.sampler.sample(context, index);
    let now = Instant::now();
    match running.last_token_at {
        None => metrics.first_token(now - running.job.arrived),
        Some(previous) => metrics.next_token(now - previous),
    }
    running.last_token_at = Some(now);
    let vocab = model.vocab();
    if vocab.is_eog(token) {
        send_rest(running);
        end(context, sequence, Ok(Finish::Stop), metrics);
        return;
    }
    running.generated += 1;
    metrics.generated();
    let piece = running.text.push(&vocab.token_to_piece(token, false, None));
    if !piece.text.is_empty() && running.job.events.send(Event::Text(piece.text)).is_err() {
        end(context, sequence, Err(InferenceError::Stopped), metrics);
        return;
    }
    if piece.stopped {
        end(context, sequence, Ok(Finish::Stop), metrics);
        return;
    }
    let full = sequence.cached.len() + 1 >= context_length as usize;
    if full || running.job.sampling.max_tokens.is_some_and(|max| running.generated >= max) {
        send_rest(running);
        end(context, sequence, Ok(Finish::Length), metrics);
        return;
    }
    running.next = Some(token);
}

/// Sends the text held back as a possible stop sequence, at the end of a generation.
fn send_rest(running: &mut Running) {
    let rest = running.text.finish();
    if !rest.is_empty() {
        let _ = running.job.events.send(Event::Text(rest));
    }
}

/// Ends the sequence's generation and frees it; its cache stays for a prompt that shares it,
/// unless the generation failed.
fn end(
    context: &mut LlamaContext<'_>,
    sequence: &mut Sequence,
    outcome: Result<Finish, InferenceError>,
    metrics: &EngineMetrics,
) {
    let Some(running) = sequence.running.take() else { return };
    match outcome {
        Ok(finish) => {
            metrics.finished(finish.as_str());
            let _ = running.job.events.send(Event::Finished { finish, completion_tokens: running.generated });
        }
        Err(InferenceError::Stopped) => metrics.finished("cancelled"),
        Err(error) => {
            metrics.finished("error");
            let _ = context.clear_kv_cache_seq(u32::try_from(sequence.id).ok(), None, None);
            sequence.cached.clear();
            let _ = running.job.events.send(Event::Failed(error));
        }
    }
}
