//! The operator at scale: N Agents on one endpoint Model, reconciled by the real Agent
//! controller (its watches, stores, concurrency) against an in-memory API server in a child
//! process ([`fake_api`]), which also plays the StatefulSet controller so every pod becomes
//! ready a second after its StatefulSet is applied. Reports, per size and as medians over
//! rounds: requests per agent by verb, reconciles per agent, time until every agent is Ready,
//! requests during a quiet window after that, the operator's RSS (peak and at rest) and CPU time.
//!
//! `cargo bench -p agent-operator --bench scale`; `AGENT_SCALE_SIZES` (default `1000,10000`),
//! `AGENT_SCALE_ROUNDS` (default 3), `AGENT_SCALE_QUIET_SECONDS` (default 60).

#![allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "request counts and reconciles are far below 2^52; reported as f64 medians"
)]

mod fake_api;
#[path = "../../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use agent_operator::context::Context;
use agent_operator::metrics::Metrics;
use serde_json::{Value, json};

const NAMESPACES: usize = 10;

/// The operator binary's allocator, so its memory is what is measured.
#[global_allocator]
static ALLOCATOR: agent_operator::Allocator = mimalloc::MiMalloc;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    if std::env::var_os("AGENT_SCALE_FAKE_API").is_some() {
        return serve_fake_api();
    }
    if let Some(n) = std::env::var("AGENT_SCALE_ROUND").ok().and_then(|n| n.parse().ok()) {
        return operator_round(n, Duration::from_secs(env_or("AGENT_SCALE_QUIET_SECONDS", 60)));
    }
    let sizes: Vec<usize> = std::env::var("AGENT_SCALE_SIZES")
        .unwrap_or_else(|_| "1000,10000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let rounds: usize = env_or("AGENT_SCALE_ROUNDS", 3);
    let quiet = Duration::from_secs(env_or("AGENT_SCALE_QUIET_SECONDS", 60));
    for n in sizes {
        let mut runs = Vec::new();
        for round in 0..rounds {
            // Each round in a fresh process, so RSS is this size's alone.
            let run = run_round(n, quiet);
            eprintln!("n={n} round {}: {run:?}", round + 1);
            runs.push(run);
        }
        report(n, &runs);
    }
}

/// One round, measured in a child process of this benchmark (the operator side), which starts
/// its own fake API server process.
fn run_round(n: usize, quiet: Duration) -> Round {
    let output = Command::new(std::env::current_exe().unwrap())
        .env("AGENT_SCALE_ROUND", n.to_string())
        .env("AGENT_SCALE_QUIET_SECONDS", quiet.as_secs().to_string())
        .stderr(Stdio::inherit())
        .output()
        .expect("the round runs");
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text.lines().rev().find(|l| l.starts_with('{')).unwrap_or_else(|| panic!("no result: {text}"));
    serde_json::from_str(line).unwrap()
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Round {
    converged_seconds: f64,
    requests: BTreeMap<String, u64>,
    quiet_requests: BTreeMap<String, u64>,
    reconciles: u64,
    peak_rss_mib: f64,
    rest_rss_mib: f64,
    cpu_seconds: f64,
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn report(n: usize, runs: &[Round]) {
    let per_agent = |pick: &dyn Fn(&Round) -> f64| median(runs.iter().map(pick).collect()) / n as f64;
    let verbs = ["LIST", "WATCH", "GET", "PATCH", "POST", "DELETE"];
    println!("\n## {n} agents ({} rounds, medians)", runs.len());
    println!("| measure | value |\n|---|---|");
    for verb in verbs {
        let count =
            |r: &Round| r.requests.iter().filter(|(k, _)| k.starts_with(verb)).map(|(_, v)| *v as f64).sum::<f64>();
        println!("| {verb} per agent | {:.3} |", per_agent(&count).abs());
    }
    let total = |r: &Round| r.requests.values().map(|v| *v as f64).sum::<f64>();
    println!("| requests per agent, all | {:.2} |", per_agent(&total));
    println!("| reconciles per agent | {:.2} |", per_agent(&|r: &Round| r.reconciles as f64));
    println!(
        "| seconds until every agent is Ready | {:.1} |",
        median(runs.iter().map(|r| r.converged_seconds).collect())
    );
    let quiet_writes = |r: &Round| {
        r.quiet_requests
            .iter()
            .filter(|(k, _)| !k.starts_with("GET") && !k.starts_with("LIST") && !k.starts_with("WATCH"))
            .map(|(_, v)| *v as f64)
            .sum::<f64>()
    };
    let quiet_reads =
        |r: &Round| r.quiet_requests.iter().filter(|(k, _)| k.starts_with("GET")).map(|(_, v)| *v as f64).sum::<f64>();
    println!("| writes in the quiet window | {} |", median(runs.iter().map(quiet_writes).collect()).abs());
    println!("| GETs in the quiet window | {} |", median(runs.iter().map(quiet_reads).collect()).abs());
    println!("| peak RSS (MiB) | {:.1} |", median(runs.iter().map(|r| r.peak_rss_mib).collect()));
    println!("| RSS at rest (MiB) | {:.1} |", median(runs.iter().map(|r| r.rest_rss_mib).collect()));
    println!("| operator CPU seconds | {:.1} |", median(runs.iter().map(|r| r.cpu_seconds).collect()));
    let mut kinds: BTreeMap<&str, f64> = BTreeMap::new();
    for key in runs[0].requests.keys() {
        kinds.insert(key, median(runs.iter().map(|r| *r.requests.get(key).unwrap_or(&0) as f64).collect()));
    }
    println!("requests by verb and resource (median): {kinds:?}");
}

fn serve_fake_api() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let api = fake_api::FakeApi::new();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("listening {}", listener.local_addr().unwrap().port());
        let seeds = std::env::var("AGENT_SCALE_SEED").unwrap_or_default();
        for object in seed_objects(seeds.parse().unwrap_or(0)) {
            api.seed(object);
        }
        println!("seeded");
        let app = axum::Router::new().fallback(fake_api::serve).with_state(api);
        axum::serve(listener, app).await.unwrap();
    });
}

/// One ready endpoint Model and its key Secret per namespace, and `n` Agents spread over the
/// namespaces.
fn seed_objects(n: usize) -> Vec<Value> {
    let mut objects = Vec::new();
    for ns in 0..NAMESPACES {
        let namespace = format!("team-{ns}");
        objects.push(json!({
            "apiVersion": "agent-operator.dev/v1alpha1", "kind": "Model",
            "metadata": {"name": "gpt-small", "namespace": namespace},
            "spec": {"endpoint": {"baseUrl": "https://api.example.com/v1", "model": "gpt-4o-mini"}, "capabilities": {"chat": true, "tools": true}},
            "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "EndpointReachable", "message": "", "lastTransitionTime": "2026-11-29T00:00:00Z"}]}
        }));
    }
    for i in 0..n {
        objects.push(json!({
            "apiVersion": "agent-operator.dev/v1alpha1", "kind": "Agent",
            "metadata": {"name": format!("agent-{i}"), "namespace": format!("team-{}", i % NAMESPACES)},
            "spec": {
                "persona": {"systemPrompt": "You help."},
                "model": {"modelRef": {"name": "gpt-small"}},
                "tools": [{"name": "clock", "builtin": {"kind": "currentTime"}}]
            }
        }));
    }
    objects
}

/// VmRSS and VmHWM of this process, in MiB.
fn memory() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
            .map_or(0.0, |kib| kib / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// User plus system CPU seconds of this process.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of /proc/<pid>/stat; here indices 11 and 12.
    (ticks(11) + ticks(12)) / 100.0
}

/// A child process killed when its owner goes, panics included.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_fake_api(n: usize) -> (Child, u16) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env("AGENT_SCALE_FAKE_API", "1")
        .env("AGENT_SCALE_SEED", n.to_string())
        .env_remove("AGENT_SCALE_ROUND")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let port = lines.next().unwrap().unwrap().trim_start_matches("listening ").parse().unwrap();
    assert_eq!(lines.next().unwrap().unwrap(), "seeded");
    (child, port)
}

async fn counts(http: &reqwest::Client, port: u16) -> BTreeMap<String, u64> {
    http.get(format!("http://127.0.0.1:{port}/stats")).send().await.unwrap().json().await.unwrap()
}

fn difference(after: &BTreeMap<String, u64>, before: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after.iter().map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0))).filter(|(_, v)| *v > 0).collect()
}

fn reconciles(metrics: &Metrics) -> u64 {
    metrics
        .encode()
        .lines()
        .filter(|l| l.contains("reconciles_total") && l.contains("Agent") && !l.starts_with('#'))
        .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// Whether an Agent reports Ready.
fn is_ready(agent: &agent_crds::Agent) -> bool {
    agent.status.as_ref().is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The operator side of one round: its own fake API server, the Agent controller, the
/// measurements; prints the round as one JSON line.
fn operator_round(n: usize, quiet: Duration) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let (fake, port) = start_fake_api(n);
        let fake = KillOnDrop(fake);
        let http = reqwest::Client::new();
        let config = kube::Config::new(format!("http://127.0.0.1:{port}").parse().unwrap());
        let client = kube::Client::try_from(config).unwrap();
        let metrics = Arc::new(Metrics::default());
        // The operator's own defaults (flags and environment apply, as in the Deployment).
        let operator = <agent_operator::Config as clap::Parser>::parse_from(["agent-operator"]);
        let mut ctx = Context::new(client, metrics.clone(), "runtime:bench".into(), None);
        ctx.namespace_share = agent_operator::fair_share::NamespaceShare::new(operator.namespace_share());
        let ctx = Arc::new(ctx);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let cpu_before = cpu_seconds();
        let started = Instant::now();
        let controller = operator.controller();
        tokio::spawn(agent_operator::agent::run(ctx.clone(), None, controller, async move {
            let _ = stopped.await;
        }));
        loop {
            let ready = ctx.caches.stores.agents.state().iter().filter(|a| is_ready(a)).count();
            if ready == n {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(3600), "only {ready} of {n} agents Ready after an hour");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let converged_seconds = started.elapsed().as_secs_f64();
        let at_convergence = counts(&http, port).await;
        tokio::time::sleep(quiet).await;
        let after_quiet = counts(&http, port).await;
        let (rest_rss_mib, peak_rss_mib) = memory();
        let round = Round {
            converged_seconds,
            quiet_requests: difference(&after_quiet, &at_convergence),
            requests: at_convergence,
            reconciles: reconciles(&metrics),
            peak_rss_mib,
            rest_rss_mib,
            cpu_seconds: cpu_seconds() - cpu_before,
        };
        println!("{}", serde_json::to_string(&round).unwrap());
        let _ = stop.send(());
        drop(fake);
        std::process::exit(0);
    });
}
