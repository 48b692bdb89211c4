//! Benchmark: the latency and throughput the agent runtime adds over calling its upstream directly,
//! beside two gateways in front of the same upstream in the same run (the LiteLLM proxy and the
//! Portkey AI gateway), answers streamed and whole, plus each process's start-to-ready time and
//! idle memory. `scripts/bench-runtime.sh` installs LiteLLM and Portkey and runs it.
//!
//! Every (concurrency, mode, target) batch runs once per round, targets in a rotating order, so that
//! the noise of a shared machine falls on all of them; the report gives medians over rounds and
//! compares targets within a round. Nothing here asserts a timing.

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Parser;

use support::load::{self, Call, HttpClient, Mode, Target};
use support::process::{Service, StartError, free_port};
use support::report::{Comparison, DIRECT, Report, RoundStats, Series, Setup, Startup, Summary, median};
use support::{litellm, otlp_sink, portkey, runtime, upstream};

const RUNTIME: &str = "agent-runtime";
/// The runtime exporting a trace of every request (sampled 100%) to an OTLP/HTTP sink.
const TRACED: &str = "agent-runtime+traces";
const LITELLM: &str = "litellm";
const PORTKEY: &str = "portkey";
/// The gateways the runtime is compared with, in report order.
const PEERS: [&str; 2] = [LITELLM, PORTKEY];
/// How long the runtime may take to become ready.
const RUNTIME_READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long LiteLLM may take to become ready (it imports a lot of Python).
const LITELLM_READY_TIMEOUT: Duration = Duration::from_secs(180);
/// How long Portkey may take to become ready (one bundled script, its dependencies and Node).
const PORTKEY_READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Requests per target and mode that warm up every target before the first round.
const WARM_UP_REQUESTS: usize = 100;
/// How long a ready process idles before its memory is read.
const IDLE_SETTLE: Duration = Duration::from_secs(1);

/// Options; every one has a default, so `cargo bench --bench runtime_overhead` works as is.
#[derive(Parser, Debug)]
#[command(about = "Latency the agent runtime adds over its upstream, beside LiteLLM and Portkey")]
struct Args {
    /// Content tokens in every answer, e.g. `--tokens 16` for short answers.
    #[arg(long, env = "BENCH_TOKENS", default_value_t = 64)]
    tokens: usize,
    /// Rounds; the report gives medians over them.
    #[arg(long, env = "BENCH_ROUNDS", default_value_t = 5)]
    rounds: usize,
    /// Answer modes, one batch per value: `stream` (server-sent events) and `whole` (one JSON body).
    #[arg(long, env = "BENCH_MODES", value_enum, value_delimiter = ',', default_value = "stream,whole")]
    modes: Vec<Mode>,
    /// Concurrent clients, one batch per value.
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
    /// The `@portkey-ai/gateway` npm package directory [default:
    /// `$HOME/.cache/agent-operator/bench-portkey/node_modules/@portkey-ai/gateway`].
    #[arg(long, env = "BENCH_PORTKEY")]
    portkey: Option<PathBuf>,
    /// The Node.js that runs Portkey.
    #[arg(long, env = "BENCH_NODE", default_value = "node")]
    node: PathBuf,
    /// Fail instead of reporting Portkey as unavailable.
    #[arg(long)]
    require_portkey: bool,
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
    if args.modes.is_empty() {
        bail!("--modes needs at least one of stream, whole");
    }
    // The bench binary is `<target>/<profile>/deps/<name>`; `cargo build --release` puts the runtime in
    // `<target>/<profile>`.
    let exe = std::env::current_exe()?;
    let profile_dir = exe.parent().and_then(Path::parent).context("the bench binary is in <target>/<profile>/deps")?;
    let runtime_bin = args.runtime_bin.clone().unwrap_or_else(|| profile_dir.join("agent-runtime"));
    let litellm_bin = args.litellm.clone().unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/agent-operator/bench-venv/bin/litellm")
    });
    let portkey_package = args.portkey.clone().unwrap_or_else(portkey::default_package);
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
    let (collector, exported) = upstream_runtime.block_on(otlp_sink::start())?;
    let load_runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).thread_name("load").enable_all().build()?;
    let plan = Plan { args, runtime_bin, litellm_bin, portkey_package, work: work.clone(), upstream, collector };
    let report = load_runtime.block_on(plan.run())?;
    if report.series.iter().any(|s| s.target == TRACED) && exported.bytes() == 0 {
        bail!("{TRACED} was measured, but its OTLP sink received no spans: tracing was not on");
    }
    eprintln!("{TRACED} exported {} batches, {} bytes of spans", exported.exports(), exported.bytes());

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
    portkey_package: PathBuf,
    work: PathBuf,
    upstream: SocketAddr,
    /// Where the traced runtime exports its spans.
    collector: SocketAddr,
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
            for &mode in &args.modes {
                let call = Arc::new(Call::new(&running.target, mode, args.tokens));
                load::run_batch(&running.client, &call, 8, WARM_UP_REQUESTS)
                    .await
                    .with_context(|| format!("warm-up of {} ({})", running.target.name, mode.as_str()))?;
            }
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
                modes: args.modes.clone(),
                requests: args.concurrency.iter().copied().zip(args.requests.iter().copied()).collect(),
                cores: std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
                litellm_version: litellm::version(&self.litellm_bin),
                litellm_flags: litellm::reported_flags(),
                litellm_env: litellm::ENV.iter().map(|(k, v)| format!("{k}={v}")).collect(),
                portkey_version: portkey::version(&self.portkey_package),
                portkey_flags: portkey::reported_flags(),
                node_version: portkey::node_version(&args.node),
            },
            unavailable,
            startup,
            series,
            comparisons,
        })
    }

    /// The direct upstream, then the runtime and the peers if they start and answer correctly.
    async fn start_targets(&self) -> anyhow::Result<(Vec<Running>, Vec<Startup>, BTreeMap<String, String>)> {
        let mut unavailable = BTreeMap::new();
        let mut startup = Vec::new();
        let direct = Running {
            target: Target {
                name: DIRECT,
                base_url: format!("http://{}", self.upstream),
                model: upstream::MODEL.to_owned(),
                headers: Vec::new(),
            },
            client: load::client(),
            service: None,
        };
        self.preflight(&direct).await.map_err(|e| anyhow::anyhow!("the direct upstream fails its own check: {e}"))?;
        let mut targets = vec![direct];
        // One after the other: a start must not share the cores with another.
        let started = [
            (RUNTIME, self.start_runtime(RUNTIME, &[]).await),
            (TRACED, self.start_runtime(TRACED, &self.tracing_env()).await),
            (LITELLM, self.start_litellm().await),
            (PORTKEY, self.start_portkey().await),
        ];
        for (name, started) in started {
            let required = match name {
                LITELLM => self.args.require_litellm,
                PORTKEY => self.args.require_portkey,
                _ => false,
            };
            match started {
                Ok((running, measured)) => {
                    startup.push(measured);
                    targets.push(running);
                }
                Err(reason) if required => bail!("{name}: {reason}"),
                Err(reason) => {
                    eprintln!("{name}: unavailable ({reason})");
                    unavailable.insert(name.to_owned(), reason);
                }
            }
        }
        Ok((targets, startup, unavailable))
    }

    /// Every round runs one batch per concurrency, mode and target, the targets' order rotating by
    /// round.
    async fn measure_rounds(&self, targets: &[Running]) -> anyhow::Result<Vec<Series>> {
        let args = &self.args;
        let mut series: Vec<Series> = args
            .concurrency
            .iter()
            .flat_map(|&concurrency| args.modes.iter().map(move |&mode| (concurrency, mode)))
            .flat_map(|(concurrency, mode)| {
                targets.iter().map(move |running| Series {
                    target: running.target.name.to_owned(),
                    mode,
                    concurrency,
                    rounds: Vec::new(),
                    median: Summary::default(),
                })
            })
            .collect();
        let calls: Vec<Vec<Arc<Call>>> = targets
            .iter()
            .map(|running| {
                args.modes.iter().map(|&mode| Arc::new(Call::new(&running.target, mode, args.tokens))).collect()
            })
            .collect();
        for round in 0..args.rounds {
            for (&concurrency, &requests) in args.concurrency.iter().zip(&args.requests) {
                for (m, &mode) in args.modes.iter().enumerate() {
                    for offset in 0..targets.len() {
                        let index = (round + offset) % targets.len();
                        let running = &targets[index];
                        let stats = measure(running, &calls[index][m], concurrency, requests).await?;
                        eprintln!(
                            "round {}/{} {:<6} clients {concurrency:>3} {:<14} TTFT p50 {:8.3} ms  total p50 {:8.3} p99 {:8.3} ms  {:8.1} req/s",
                            round + 1,
                            args.rounds,
                            mode.as_str(),
                            running.target.name,
                            stats.ttft_p50_ms,
                            stats.total_p50_ms,
                            stats.total_p99_ms,
                            stats.requests_per_second,
                        );
                        let entry = series
                            .iter_mut()
                            .find(|s| s.target == running.target.name && s.concurrency == concurrency && s.mode == mode)
                            .expect("a series per target, mode and concurrency");
                        entry.rounds.push(stats);
                    }
                }
            }
        }
        Ok(series)
    }

    /// Starts the runtime `--starts` times, keeping the last; `Err` is the reason it is unavailable.
    /// The standard variables that make the runtime trace every request to the sink.
    fn tracing_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{}", self.collector)),
            ("OTEL_TRACES_SAMPLER", "always_on".to_owned()),
        ]
    }

    /// Starts the runtime as target `name` with `env` added.
    async fn start_runtime(
        &self,
        name: &'static str,
        env: &[(&'static str, String)],
    ) -> Result<(Running, Startup), String> {
        if let Some(reason) = &self.args.runtime_unavailable {
            return Err(reason.clone());
        }
        if !self.runtime_bin.is_file() {
            return Err(format!(
                "no binary at {}; build it with cargo build --release -p agent-runtime",
                self.runtime_bin.display()
            ));
        }
        let dir = self.work.join(name);
        let config = runtime::write_config(&dir_created(&dir)?, self.upstream).map_err(|e| e.to_string())?;
        let bin = &self.runtime_bin;
        let spawn = |port| {
            let mut command = runtime::command(bin, &config, port);
            command.envs(env.iter().map(|(k, v)| (k, v)));
            command
        };
        let started = self.start_repeatedly(name, &dir, spawn, "/readyz", RUNTIME_READY_TIMEOUT).await?;
        let running = Running {
            target: Target { name, base_url: started.base_url, model: runtime::AGENT.to_owned(), headers: Vec::new() },
            client: started.client,
            service: Some(started.service),
        };
        self.preflight(&running).await?;
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
            target: Target {
                name: LITELLM,
                base_url: started.base_url,
                model: upstream::MODEL.to_owned(),
                headers: Vec::new(),
            },
            client: started.client,
            service: Some(started.service),
        };
        self.preflight(&running).await?;
        Ok((running, started.startup))
    }

    /// Starts Portkey `--starts` times, keeping the last; `Err` is the reason it is unavailable.
    async fn start_portkey(&self) -> Result<(Running, Startup), String> {
        let package = &self.portkey_package;
        if !portkey::is_installed(package) {
            return Err(format!("no Portkey gateway in {}; scripts/bench-runtime.sh installs it", package.display()));
        }
        let dir = dir_created(&self.work.join(PORTKEY))?;
        let spawn = |port| portkey::command(&self.args.node, package, port);
        let started = self.start_repeatedly(PORTKEY, &dir, spawn, portkey::READY_PATH, PORTKEY_READY_TIMEOUT).await?;
        let running = Running {
            target: Target {
                name: PORTKEY,
                base_url: started.base_url,
                model: upstream::MODEL.to_owned(),
                headers: portkey::headers(self.upstream),
            },
            client: started.client,
            service: Some(started.service),
        };
        self.preflight(&running).await?;
        Ok((running, started.startup))
    }

    /// One checked request per mode, so a target that answers wrongly is reported before it is
    /// measured.
    async fn preflight(&self, running: &Running) -> Result<(), String> {
        for &mode in &self.args.modes {
            let call = Call::new(&running.target, mode, self.args.tokens);
            load::one_request(&running.client, &call)
                .await
                .map_err(|e| format!("POST /v1/chat/completions ({}): {e}", mode.as_str()))?;
        }
        Ok(())
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

/// One round's batch at `concurrency`, after opening that many connections.
async fn measure(
    running: &Running,
    call: &Arc<Call>,
    concurrency: usize,
    requests: usize,
) -> anyhow::Result<RoundStats> {
    let name = running.target.name;
    load::run_batch(&running.client, call, concurrency, concurrency)
        .await
        .with_context(|| format!("{name} at {concurrency} clients (warm-up)"))?;
    let batch = load::run_batch(&running.client, call, concurrency, requests)
        .await
        .with_context(|| format!("{name} at {concurrency} clients: a broken target must not look fast"))?;
    Ok(RoundStats::of(&batch))
}

/// Fills in every series' medians against `direct` and compares the runtime with each peer.
fn summarize(series: &mut [Series]) -> Vec<Comparison> {
    let directs: Vec<Series> = series.iter().filter(|s| s.target == DIRECT).cloned().collect();
    for s in series.iter_mut() {
        s.summarize(directs.iter().find(|d| d.concurrency == s.concurrency && d.mode == s.mode));
    }
    let find = |name: &str, direct: &Series| {
        series.iter().find(|s| s.target == name && s.concurrency == direct.concurrency && s.mode == direct.mode)
    };
    let against_peers = PEERS
        .iter()
        .flat_map(|peer| directs.iter().map(move |direct| (peer, direct)))
        .filter_map(|(peer, direct)| Some(Comparison::of(find(RUNTIME, direct)?, find(peer, direct)?, direct)));
    // Tracing on against off: the traced runtime as the target, the plain one as its peer.
    let tracing_cost =
        directs.iter().filter_map(|direct| Some(Comparison::of(find(TRACED, direct)?, find(RUNTIME, direct)?, direct)));
    against_peers.chain(tracing_cost).collect()
}
