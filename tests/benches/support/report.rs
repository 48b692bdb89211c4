//! Statistics and the report: per-round percentiles, medians over rounds, latency added over the
//! direct upstream and ratios against each peer in the same round, as markdown tables and JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use super::load::{Batch, Mode};

/// The name of the upstream-itself target, the baseline of "added latency".
pub const DIRECT: &str = "direct";

/// One batch reduced to the numbers the report shows, in milliseconds.
#[derive(Clone, Debug, Serialize)]
pub struct RoundStats {
    /// Requests in the batch.
    pub requests: usize,
    /// Time to first token, median.
    pub ttft_p50_ms: f64,
    /// Time to first token, 99th percentile.
    pub ttft_p99_ms: f64,
    /// Time to the end of the answer (`[DONE]`, or the whole body), median.
    pub total_p50_ms: f64,
    /// Time to the end of the answer, 99th percentile.
    pub total_p99_ms: f64,
    /// Requests divided by the batch's wall time.
    pub requests_per_second: f64,
}

impl RoundStats {
    /// The statistics of `batch`.
    pub fn of(batch: &Batch) -> Self {
        let mut ttft: Vec<Duration> = batch.samples.iter().map(|s| s.ttft).collect();
        let mut total: Vec<Duration> = batch.samples.iter().map(|s| s.total).collect();
        ttft.sort_unstable();
        total.sort_unstable();
        Self {
            requests: batch.samples.len(),
            ttft_p50_ms: millis(percentile(&ttft, 50)),
            ttft_p99_ms: millis(percentile(&ttft, 99)),
            total_p50_ms: millis(percentile(&total, 50)),
            total_p99_ms: millis(percentile(&total, 99)),
            requests_per_second: batch.requests_per_second(),
        }
    }
}

/// Nearest-rank percentile of sorted, non-empty `values`.
fn percentile(sorted: &[Duration], percent: usize) -> Duration {
    let rank = (sorted.len() * percent).div_ceil(100).max(1);
    sorted[rank - 1]
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Median of `values`; `None` when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some(f64::midpoint(sorted[n / 2 - 1], sorted[n / 2])),
    }
}

/// One target in one mode at one concurrency over all rounds.
#[derive(Clone, Debug, Serialize)]
pub struct Series {
    /// The target's name.
    pub target: String,
    /// Streamed or whole answers.
    pub mode: Mode,
    /// Concurrent clients.
    pub concurrency: usize,
    /// Each round's statistics, in round order.
    pub rounds: Vec<RoundStats>,
    /// Medians over rounds; the `added_*` fields compare with `direct` round by round.
    pub median: Summary,
}

/// Medians over rounds of the per-round numbers.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    /// Time to first token, median of per-round medians.
    pub ttft_p50_ms: f64,
    /// Time to first token, median of per-round 99th percentiles.
    pub ttft_p99_ms: f64,
    /// Time to the end of the answer, median of per-round medians.
    pub total_p50_ms: f64,
    /// Time to the end of the answer, median of per-round 99th percentiles.
    pub total_p99_ms: f64,
    /// Median of per-round throughputs.
    pub requests_per_second: f64,
    /// Median over rounds of (this total p50 − direct total p50 in the same round).
    pub added_total_p50_ms: Option<f64>,
    /// Median over rounds of (this total p99 − direct total p99 in the same round).
    pub added_total_p99_ms: Option<f64>,
    /// Median over rounds of (this TTFT p50 − direct TTFT p50 in the same round).
    pub added_ttft_p50_ms: Option<f64>,
}

impl Series {
    /// Fills in the medians, comparing with `direct` (the same mode and concurrency) round by round.
    pub fn summarize(&mut self, direct: Option<&Series>) {
        let of = |field: fn(&RoundStats) -> f64| median(&self.rounds.iter().map(field).collect::<Vec<_>>());
        let added = |field: fn(&RoundStats) -> f64| {
            let direct = direct.filter(|d| d.target != self.target)?;
            median(&self.rounds.iter().zip(&direct.rounds).map(|(t, d)| field(t) - field(d)).collect::<Vec<_>>())
        };
        self.median = Summary {
            ttft_p50_ms: of(|r| r.ttft_p50_ms).unwrap_or(f64::NAN),
            ttft_p99_ms: of(|r| r.ttft_p99_ms).unwrap_or(f64::NAN),
            total_p50_ms: of(|r| r.total_p50_ms).unwrap_or(f64::NAN),
            total_p99_ms: of(|r| r.total_p99_ms).unwrap_or(f64::NAN),
            requests_per_second: of(|r| r.requests_per_second).unwrap_or(f64::NAN),
            added_total_p50_ms: added(|r| r.total_p50_ms),
            added_total_p99_ms: added(|r| r.total_p99_ms),
            added_ttft_p50_ms: added(|r| r.ttft_p50_ms),
        };
    }
}

/// The runtime against one peer in one mode at one concurrency: medians of per-round ratios.
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    /// Streamed or whole answers.
    pub mode: Mode,
    /// Concurrent clients.
    pub concurrency: usize,
    /// The target compared.
    pub target: String,
    /// The peer it is compared with.
    pub peer: String,
    /// Median over rounds of (target added total p50 / peer added total p50).
    pub added_total_p50_ratio: Option<f64>,
    /// Median over rounds of (target total p50 / peer total p50), upstream time included.
    pub total_p50_ratio: Option<f64>,
    /// Median over rounds of (target requests/s / peer requests/s).
    pub requests_per_second_ratio: Option<f64>,
}

impl Comparison {
    /// Compares `target` with `peer`, both in the same mode and at the same concurrency as `direct`.
    pub fn of(target: &Series, peer: &Series, direct: &Series) -> Self {
        let rounds = target.rounds.iter().zip(&peer.rounds).zip(&direct.rounds);
        let added: Vec<f64> = rounds
            .clone()
            .map(|((t, p), d)| (t.total_p50_ms - d.total_p50_ms) / (p.total_p50_ms - d.total_p50_ms))
            .collect();
        let total: Vec<f64> = rounds.clone().map(|((t, p), _)| t.total_p50_ms / p.total_p50_ms).collect();
        let rps: Vec<f64> = rounds.map(|((t, p), _)| t.requests_per_second / p.requests_per_second).collect();
        Self {
            mode: target.mode,
            concurrency: target.concurrency,
            target: target.target.clone(),
            peer: peer.target.clone(),
            added_total_p50_ratio: median(&added),
            total_p50_ratio: median(&total),
            requests_per_second_ratio: median(&rps),
        }
    }
}

/// Start-up cost of a target run as a process.
#[derive(Clone, Debug, Serialize)]
pub struct Startup {
    /// The target's name.
    pub target: String,
    /// Spawn to first 200 from the readiness endpoint, each start, in milliseconds.
    pub start_to_ready_ms: Vec<f64>,
    /// Median of `start_to_ready_ms`.
    pub start_to_ready_median_ms: Option<f64>,
    /// `VmRSS` of its process tree once ready and idle, in MiB.
    pub idle_rss_mib: Option<f64>,
}

/// Everything the run measured.
#[derive(Debug, Serialize)]
pub struct Report {
    /// How the run was set up.
    pub setup: Setup,
    /// Targets that could not be measured, with the reason.
    pub unavailable: BTreeMap<String, String>,
    /// Start-up cost per process target.
    pub startup: Vec<Startup>,
    /// Latency and throughput per target, mode and concurrency.
    pub series: Vec<Series>,
    /// The runtime against each peer, and traced against untraced, per mode and concurrency.
    pub comparisons: Vec<Comparison>,
}

/// How the run was set up.
#[derive(Debug, Serialize)]
pub struct Setup {
    /// Content tokens per answer.
    pub tokens: usize,
    /// Rounds of every (concurrency, mode, target) batch.
    pub rounds: usize,
    /// The answer modes measured.
    pub modes: Vec<Mode>,
    /// Requests per batch, by concurrency.
    pub requests: BTreeMap<usize, usize>,
    /// Cores available to the run (shared by the load generator, the upstream and the targets).
    pub cores: usize,
    /// The LiteLLM version measured.
    pub litellm_version: Option<String>,
    /// Its command line after `--config` and `--port`.
    pub litellm_flags: Vec<String>,
    /// Its environment settings.
    pub litellm_env: Vec<String>,
    /// The Portkey gateway version measured.
    pub portkey_version: Option<String>,
    /// Its command line after `--port`, and the routing headers it gets.
    pub portkey_flags: Vec<String>,
    /// The Node.js version it runs on.
    pub node_version: Option<String>,
}

impl Report {
    /// The report as markdown tables.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        self.latency_table(&mut out);
        self.comparison_table(&mut out);
        self.startup_table(&mut out);
        let setup = &self.setup;
        let _ = writeln!(
            out,
            "\nlitellm {} with {} and {}",
            setup.litellm_version.as_deref().unwrap_or("(not installed)"),
            setup.litellm_flags.join(" "),
            setup.litellm_env.join(" "),
        );
        let _ = writeln!(
            out,
            "portkey {} on node {} with {}",
            setup.portkey_version.as_deref().unwrap_or("(not installed)"),
            setup.node_version.as_deref().unwrap_or("(not found)"),
            setup.portkey_flags.join(" "),
        );
        out
    }

    fn latency_table(&self, out: &mut String) {
        let setup = &self.setup;
        let _ = writeln!(
            out,
            "### Chat completions: {} tokens per answer, median of {} rounds, {} cores shared\n",
            setup.tokens, setup.rounds, setup.cores
        );
        out.push_str("| target | mode | clients | requests/round | TTFT p50 | TTFT p99 | total p50 | total p99 | req/s | added p50 | added p99 |\n");
        out.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        let mut concurrencies: Vec<usize> = self.series.iter().map(|s| s.concurrency).collect();
        concurrencies.dedup();
        for concurrency in concurrencies {
            for &mode in &setup.modes {
                for series in self.series.iter().filter(|s| s.concurrency == concurrency && s.mode == mode) {
                    let m = &series.median;
                    let _ = writeln!(
                        out,
                        "| {} | {} | {} | {} | {} | {} | {} | {} | {:.0} | {} | {} |",
                        series.target,
                        mode.as_str(),
                        concurrency,
                        setup.requests.get(&concurrency).copied().unwrap_or_default(),
                        ms(m.ttft_p50_ms),
                        ms(m.ttft_p99_ms),
                        ms(m.total_p50_ms),
                        ms(m.total_p99_ms),
                        m.requests_per_second,
                        m.added_total_p50_ms.map_or_else(|| "—".to_owned(), signed_ms),
                        m.added_total_p99_ms.map_or_else(|| "—".to_owned(), signed_ms),
                    );
                }
            }
            for (target, reason) in &self.unavailable {
                let _ =
                    writeln!(out, "| {target} | | {concurrency} | unavailable ({}) | | | | | | | |", one_line(reason));
            }
        }
        out.push_str(
            "\n\"total\" = request sent to the end of the answer (`[DONE]`, or the whole body, where TTFT is the \
             same); \"added\" = total minus direct's, in the same round.\n",
        );
    }

    fn comparison_table(&self, out: &mut String) {
        if self.comparisons.is_empty() {
            return;
        }
        out.push_str("\n### Targets against each other, same run\n\n");
        out.push_str("| target | peer | mode | clients | added p50, target/peer | total p50, target/peer | req/s, target/peer |\n");
        out.push_str("|---|---|---|---:|---:|---:|---:|\n");
        for c in &self.comparisons {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                c.target,
                c.peer,
                c.mode.as_str(),
                c.concurrency,
                c.added_total_p50_ratio.map_or_else(|| "—".to_owned(), |r| format!("{r:.3}")),
                c.total_p50_ratio.map_or_else(|| "—".to_owned(), |r| format!("{r:.3}")),
                c.requests_per_second_ratio.map_or_else(|| "—".to_owned(), |r| format!("{r:.2}")),
            );
        }
    }

    fn startup_table(&self, out: &mut String) {
        out.push_str("\n### Start-up and memory\n\n");
        out.push_str("| target | start-to-ready (median) | starts | idle RSS |\n|---|---:|---:|---:|\n");
        for s in &self.startup {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                s.target,
                s.start_to_ready_median_ms.map_or_else(|| "—".to_owned(), ms),
                s.start_to_ready_ms.len(),
                s.idle_rss_mib.map_or_else(|| "—".to_owned(), |m| format!("{m:.1} MiB")),
            );
        }
        for (target, reason) in &self.unavailable {
            let _ = writeln!(out, "| {target} | unavailable ({}) | | |", one_line(reason));
        }
    }
}

fn ms(value: f64) -> String {
    if value >= 100.0 { format!("{value:.0} ms") } else { format!("{value:.2} ms") }
}

fn signed_ms(value: f64) -> String {
    format!("{value:+.2} ms")
}

/// The first line of a reason, with table separators escaped.
fn one_line(reason: &str) -> String {
    reason.lines().next().unwrap_or_default().replace('|', "\\|")
}
