//! Benchmark: the latency and throughput the agent runtime adds over calling its upstream directly,
//! beside the LiteLLM proxy in front of the same upstream in the same run, plus the runtime's
//! start-to-ready time and idle memory. `scripts/bench-runtime.sh` installs LiteLLM and runs it.
//!
//! Every (concurrency, target) batch runs once per round, targets in a rotating order, so that the
//! noise of a shared machine falls on all of them; the report gives medians over rounds and compares
//! targets within a round. Nothing here asserts a timing.

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Parser;

use support::load::{self, HttpClient, Target};
use support::process::{Service, StartError, free_port};
use support::report::{Comparison, DIRECT, Report, RoundStats, Series, Setup, Startup, Summary, median};
use support::{litellm, runtime, upstream};

const RUNTIME: &str = "agent-runtime";
const LITELLM: &str = "litellm";
/// How long the runtime may take to become ready.
const RUNTIME_READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long LiteLLM may take to become ready (it imports a lot of Python).
const LITELLM_READY_TIMEOUT: Duration = Duration::from_secs(180);
/// How long a ready process idles before its memory is read.
const IDLE_SETTLE: Duration = Duration::from_secs(1);

/// Options; every one has a default, so `cargo bench --bench runtime_overhead` works as is.
#[derive(Parser, Debug)]
#[command(about = "Latency the agent runtime adds over its upstream, beside LiteLLM")]
struct Args {
    /// Content tokens in every answer.
    #[arg(long, env = "BENCH_TOKENS", default_value_t = 64)]
    tokens: usize,
    /// Rounds; the report gives medians over them.
    #[arg(long, env = "BENCH_ROUNDS", default_value_t = 5)]
    rounds: usize,
    /// Concurrent streams, one batch per value.
    #[arg(long, env = "BENCH_CONCURRENCY", value_delimiter = ',', default_value = "1,64")]
    concurrency: Vec<usize>,
    /// Requests per batch, one per `--concurrency` value; LiteLLM's throughput (tens of requests/s
    /// here) sets how long a round takes.
    #[arg(long, env = "BENCH_REQUESTS", value_delimiter = ',', default_value = "200,640")]
    requests: Vec<usize>,
    /// Starts of each process target for the start-to-ready median.
    #[arg(long, env = "BENCH_STARTS", default_value_t = 5)]
    starts: usize,
    /// The agent-runtime binary [default: `agent-runtime` in this bench's profile directory].
    #[arg(long, env = "BENCH_RUNTIME_BIN")]
    runtime_bin: Option<PathBuf>,
    /// Report the runtime as unavailable for this reason instead of starting it.
    #[arg(long, env = "BENCH_RUNTIME_UNAVAILABLE")]
    runtime_unavailable: Option<String>,
    /// The `litellm` executable of the bench venv [default: `$HOME/.cache/agent-operator/bench-venv/bin/litellm`].
    #[arg(long, env = "BENCH_LITELLM")]
    litellm: Option<PathBuf>,
    /// Fail instead of reporting LiteLLM as unavailable.
    #[arg(long)]
    require_litellm: bool,
    /// Where the JSON report goes [default: `<target dir>/bench/runtime_overhead.json`].
    #[arg(long, env = "BENCH_OUT")]
    out: Option<PathBuf>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.concurrency.len() != args.requests.len() {
        bail!("--requests needs one value per --concurrency value");
    }
    // The bench binary is `<target>/<profile>/deps/<name>`; `cargo build --release` puts the runtime in
    // `<target>/<profile>`.
    let exe = std::env::current_exe()?;
    let profile_dir = exe.parent().and_then(Path::parent).context("the bench binary is in <target>/<profile>/deps")?;
    let runtime_bin = args.runtime_bin.clone().unwrap_or_else(|| profile_dir.join("agent-runtime"));
    let litellm_bin = args.litellm.clone().unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/agent-operator/bench-venv/bin/litellm")
    });
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| profile_dir.parent().unwrap_or(profile_dir).join("bench/runtime_overhead.json"));
    let work = out.with_extension("d");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;

    // The upstream gets threads of its own, so the load generator's work does not queue behind it.
    let upstream_runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).thread_name("upstream").enable_all().build()?;
    let upstream = upstream_runtime.block_on(upstream::start(args.tokens))?;
    let load_runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).thread_name("load").enable_all().build()?;
    let plan = Plan { args, runtime_bin, litellm_bin, work: work.clone(), upstream };
    let report = load_runtime.block_on(plan.run())?;

    println!("{}", report.markdown());
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&out, serde_json::to_string_pretty(&report)?)?;
    eprintln!("JSON report: {}; logs and configs: {}", out.display(), work.display());
    Ok(())
}

/// What to run, resolved from the arguments.
struct Plan {
    args: Args,
    runtime_bin: PathBuf,
    litellm_bin: PathBuf,
    work: PathBuf,
    upstream: SocketAddr,
}

/// A target being measured; `service` keeps its process alive.
struct Running {
    target: Target,
    client: HttpClient,
    service: Option<Service>,
}

impl Plan {
    async fn run(&self) -> anyhow::Result<Report> {
        let args = &self.args;
        let (targets, startup, unavailable) = self.start_targets().await?;
        for running in &targets {
            eprintln!("warming up {}", running.target.name);
            load::run_batch(&running.client, &running.target, 8, 100, args.tokens)
                .await
                .with_context(|| format!("warm-up of {}", running.target.name))?;
        }
        let mut series = self.measure_rounds(&targets).await?;
        for running in targets {
            if let Some(service) = running.service {
                service.stop();
            }
        }
        let comparisons = summarize(&mut series);
        Ok(Report {
            setup: Setup {
                tokens: args.tokens,
                rounds: args.rounds,
                requests: args.concurrency.iter().copied().zip(args.requests.iter().copied()).collect(),
                cores: std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
                litellm_version: litellm::version(&self.litellm_bin),
                litellm_flags: litellm::reported_flags(),
                litellm_env: litellm::ENV.iter().map(|(k, v)| format!("{k}={v}")).collect(),
            },
            unavailable,
            startup,
            series,
            comparisons,
        })
    }

    /// The direct upstream, then the runtime and LiteLLM if they start and answer correctly.
    async fn start_targets(&self) -> anyhow::Result<(Vec<Running>, Vec<Startup>, BTreeMap<String, String>)> {
        let mut unavailable = BTreeMap::new();
        let mut startup = Vec::new();
        let direct = Running {
            target: Target {
                name: DIRECT,
                base_url: format!("http://{}", self.upstream),
                model: upstream::MODEL.to_owned(),
            },
            client: load::client(),
            service: None,
        };
        preflight(&direct, self.args.tokens).await.context("the direct upstream fails its own check")?;
        let mut targets = vec![direct];
        for (name, started) in [(RUNTIME, self.start_runtime().await), (LITELLM, self.start_litellm().await)] {
            match started {
                Ok((running, measured)) => {
                    startup.push(measured);
                    targets.push(running);
                }
                Err(reason) if name == LITELLM && self.args.require_litellm => bail!("{LITELLM}: {reason}"),
                Err(reason) => {
                    eprintln!("{name}: unavailable ({reason})");
                    unavailable.insert(name.to_owned(), reason);
                }
            }
        }
        Ok((targets, startup, unavailable))
    }

    /// Every round runs one batch per concurrency and target, the targets' order rotating by round.
    async fn measure_rounds(&self, targets: &[Running]) -> anyhow::Result<Vec<Series>> {
        let args = &self.args;
        let mut series: Vec<Series> = args
            .concurrency
            .iter()
            .flat_map(|&concurrency| {
                targets.iter().map(move |running| Series {
                    target: running.target.name.to_owned(),
                    concurrency,
                    rounds: Vec::new(),
                    median: Summary::default(),
                })
            })
            .collect();
        for round in 0..args.rounds {
            for (&concurrency, &requests) in args.concurrency.iter().zip(&args.requests) {
                for offset in 0..targets.len() {
                    let running = &targets[(round + offset) % targets.len()];
                    let stats = measure(running, concurrency, requests, args.tokens).await?;
                    eprintln!(
                        "round {}/{} streams {concurrency:>3} {:<14} TTFT p50 {:8.3} ms  total p50 {:8.3} p99 {:8.3} ms  {:8.1} req/s",
                        round + 1,
                        args.rounds,
                        running.target.name,
                        stats.ttft_p50_ms,
                        stats.total_p50_ms,
                        stats.total_p99_ms,
                        stats.requests_per_second,
                    );
                    let entry = series
                        .iter_mut()
                        .find(|s| s.target == running.target.name && s.concurrency == concurrency)
                        .expect("a series per target and concurrency");
                    entry.rounds.push(stats);
                }
            }
        }
        Ok(series)
    }

    /// Starts the runtime `--starts` times, keeping the last; `Err` is the reason it is unavailable.
    async fn start_runtime(&self) -> Result<(Running, Startup), String> {
        if let Some(reason) = &self.args.runtime_unavailable {
            return Err(reason.clone());
        }
        if !self.runtime_bin.is_file() {
            return Err(format!(
                "no binary at {}; build it with cargo build --release -p agent-runtime",
                self.runtime_bin.display()
            ));
        }
        let dir = self.work.join(RUNTIME);
        let config = runtime::write_config(&dir_created(&dir)?, self.upstream).map_err(|e| e.to_string())?;
        let bin = &self.runtime_bin;
        let spawn = |port| runtime::command(bin, &config, port);
        let started = self.start_repeatedly(RUNTIME, &dir, spawn, "/readyz", RUNTIME_READY_TIMEOUT).await?;
        let running = Running {
            target: Target { name: RUNTIME, base_url: started.base_url, model: runtime::AGENT.to_owned() },
            client: started.client,
            service: Some(started.service),
        };
        preflight(&running, self.args.tokens).await.map_err(|e| format!("POST /v1/chat/completions: {e}"))?;
        Ok((running, started.startup))
    }

    /// Starts LiteLLM `--starts` times, keeping the last; `Err` is the reason it is unavailable.
    async fn start_litellm(&self) -> Result<(Running, Startup), String> {
        if !self.litellm_bin.is_file() {
            return Err(format!("no litellm at {}; scripts/bench-runtime.sh installs it", self.litellm_bin.display()));
        }
        let dir = self.work.join(LITELLM);
        let config = litellm::write_config(&dir_created(&dir)?, self.upstream).map_err(|e| e.to_string())?;
        let bin = &self.litellm_bin;
        let spawn = |port| litellm::command(bin, &config, port);
        let started = self.start_repeatedly(LITELLM, &dir, spawn, litellm::READY_PATH, LITELLM_READY_TIMEOUT).await?;
        let running = Running {
            target: Target { name: LITELLM, base_url: started.base_url, model: upstream::MODEL.to_owned() },
            client: started.client,
            service: Some(started.service),
        };
        preflight(&running, self.args.tokens).await.map_err(|e| format!("POST /v1/chat/completions: {e}"))?;
        Ok((running, started.startup))
    }

    /// Starts a process target `--starts` times, timing spawn-to-ready; keeps the last one running
    /// and reads its idle memory.
    async fn start_repeatedly(
        &self,
        name: &str,
        dir: &Path,
        command: impl Fn(u16) -> Command,
        ready_path: &str,
        timeout: Duration,
    ) -> Result<Started, String> {
        let client = load::client();
        let mut times = Vec::new();
        for start in 0..self.args.starts.max(1) {
            let port = free_port().map_err(|e| format!("no free port: {e}"))?;
            let base_url = format!("http://127.0.0.1:{port}");
            let log = dir.join(format!("start-{start}.log"));
            let since = Instant::now();
            let mut service = Service::spawn(command(port), &log).map_err(|e| e.to_string())?;
            let ready = service.wait_ready(&client, &format!("{base_url}{ready_path}"), since, timeout).await;
            let elapsed = ready.map_err(|e: StartError| e.to_string())?;
            eprintln!(
                "{name}: ready in {:.1} ms (start {}/{})",
                elapsed.as_secs_f64() * 1000.0,
                start + 1,
                self.args.starts.max(1)
            );
            times.push(elapsed.as_secs_f64() * 1000.0);
            if start + 1 < self.args.starts.max(1) {
                service.stop();
                continue;
            }
            tokio::time::sleep(IDLE_SETTLE).await;
            #[allow(clippy::cast_precision_loss, reason = "a process's byte count is far below 2^52")]
            let idle_rss_mib = service.tree_rss_bytes().map(|b| b as f64 / (1024.0 * 1024.0));
            let startup = Startup {
                target: name.to_owned(),
                start_to_ready_median_ms: median(&times),
                start_to_ready_ms: times,
                idle_rss_mib,
            };
            return Ok(Started { base_url, client, service, startup });
        }
        unreachable!("the loop returns on its last start")
    }
}

/// A process target that became ready.
struct Started {
    base_url: String,
    client: HttpClient,
    service: Service,
    startup: Startup,
}

fn dir_created(dir: &Path) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    Ok(dir.to_owned())
}

/// One checked request, so a target that answers wrongly is reported before it is measured.
async fn preflight(running: &Running, tokens: usize) -> Result<(), load::RequestError> {
    let url = format!("{}/v1/chat/completions", running.target.base_url);
    let body = load::request_body(&running.target.model).into();
    load::one_request(&running.client, &url, body, tokens, &upstream::answer(tokens)).await.map(|_| ())
}

/// One round's batch at `concurrency`, after opening that many connections.
async fn measure(running: &Running, concurrency: usize, requests: usize, tokens: usize) -> anyhow::Result<RoundStats> {
    let name = running.target.name;
    load::run_batch(&running.client, &running.target, concurrency, concurrency, tokens)
        .await
        .with_context(|| format!("{name} at {concurrency} streams (warm-up)"))?;
    let batch = load::run_batch(&running.client, &running.target, concurrency, requests, tokens)
        .await
        .with_context(|| format!("{name} at {concurrency} streams: a broken target must not look fast"))?;
    Ok(RoundStats::of(&batch))
}

/// Fills in every series' medians against `direct` and compares the runtime with LiteLLM.
fn summarize(series: &mut [Series]) -> Vec<Comparison> {
    let directs: Vec<Series> = series.iter().filter(|s| s.target == DIRECT).cloned().collect();
    for s in series.iter_mut() {
        s.summarize(directs.iter().find(|d| d.concurrency == s.concurrency));
    }
    directs
        .iter()
        .filter_map(|direct| {
            let find = |name: &str| series.iter().find(|s| s.target == name && s.concurrency == direct.concurrency);
            Some(Comparison::of(find(RUNTIME)?, find(LITELLM)?, direct))
        })
        .collect()
}
