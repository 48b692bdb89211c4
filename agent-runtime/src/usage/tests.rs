use std::sync::Mutex;

use super::*;

fn priced() -> BTreeMap<String, Price> {
    let pricing = Pricing {
        input_per_million_tokens: "0.15".into(),
        output_per_million_tokens: "0.6".into(),
        currency: "USD".into(),
    };
    BTreeMap::from([("gpt".to_owned(), Price::of(&pricing).unwrap())])
}

fn store(name: &str) -> SessionStore {
    let dir = std::env::temp_dir().join(format!("usage-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    SessionStore::open(&dir).unwrap()
}

#[test]
fn a_call_is_priced_exactly_per_token_and_shown_with_six_places() {
    let ledger = Ledger::new(priced(), Arc::new(Metrics::default()));
    ledger.record("gpt", 1_000, 500);
    ledger.record("minilm", 40, 0);
    let counts = ledger.counts();
    let gpt = &counts["gpt"];
    // 1,000 × 0.15 / 1M + 500 × 0.60 / 1M = 0.00015 + 0.0003
    assert_eq!((gpt.input, gpt.output, gpt.calls, decimal(gpt.cost_units)), (1_000, 500, 1, "0.000450".to_owned()));
    assert_eq!(gpt.currency.as_deref(), Some("USD"));
    assert_eq!((counts["minilm"].cost_units, counts["minilm"].currency.as_deref()), (0, None), "no price, no cost");
    assert_eq!(decimal(2_500_000 * UNITS_PER_CURRENCY / 1_000_000), "2.500000");
}

#[test]
fn the_metrics_carry_tokens_and_cost_per_model() {
    let metrics = Arc::new(Metrics::default());
    let ledger = Ledger::new(priced(), metrics.clone());
    ledger.record("gpt", 1_000_000, 0);
    let text = metrics.encode();
    assert!(text.contains(r#"agent_model_tokens_total{model="gpt",direction="in"} 1000000"#), "{text}");
    assert!(text.contains(r#"agent_model_cost_total{model="gpt",currency="USD"} 0.15"#), "{text}");
}

#[tokio::test]
async fn the_counts_survive_a_restart_and_an_older_versions_totals_are_kept() {
    let sessions = store("restart");
    let before = Ledger::new(priced(), Arc::new(Metrics::default()));
    before.record("gpt", 100, 10);
    before.flush(&sessions).await.unwrap();
    before.flush(&sessions).await.unwrap();
    drop(before);
    let after = Ledger::new(priced(), Arc::new(Metrics::default()));
    after.load(&sessions, "gpt").await.unwrap();
    after.record("gpt", 1, 1);
    assert_eq!((after.counts()["gpt"].input, after.counts()["gpt"].calls), (101, 2));

    let old = store("old");
    old.put_record(RUNNER, OLD_USAGE_KEY, &serde_json::json!({"input": 7, "output": 3})).await.unwrap();
    let migrated = Ledger::new(priced(), Arc::new(Metrics::default()));
    migrated.load(&old, "gpt").await.unwrap();
    assert_eq!((migrated.counts()["gpt"].input, migrated.counts()["gpt"].output), (7, 3));
}

fn at(time: &str) -> Timestamp {
    time.parse().unwrap()
}

/// A clock the test moves.
fn moving_clock(start: &str) -> (Clock, Arc<Mutex<Timestamp>>) {
    let now = Arc::new(Mutex::new(at(start)));
    let read = now.clone();
    (Clock::new(move || *read.lock().unwrap()), now)
}

fn limits(yaml: &str) -> Limits {
    serde_yaml::from_str(yaml).unwrap()
}

#[test]
fn a_daily_token_budget_refuses_once_used_up_and_admits_again_the_next_utc_day() {
    let (clock, now) = moving_clock("2026-11-29T22:00:00Z");
    let ledger =
        Ledger::new(priced(), Arc::new(Metrics::default())).with_limits(Some(limits("tokensPerDay: 100")), clock);
    assert!(ledger.has_budgets());
    ledger.record("gpt", 60, 30);
    assert_eq!(ledger.admit(), Ok(()), "90 of 100 used");
    ledger.record("gpt", 5, 5);
    let exhausted = ledger.admit().unwrap_err();
    assert_eq!((exhausted.budget, exhausted.reason(), exhausted.period), ("tokensPerDay", "TokensPerDay", "day"));
    assert_eq!(exhausted.resets_at, at("2026-11-30T00:00:00Z"));
    assert_eq!(exhausted.retry_after(ledger.now()), 7_200);
    assert_eq!(
        exhausted.to_string(),
        "the agent's budget spec.limits.tokensPerDay (100) is used up (100 tokens this day); it resets at \
         2026-11-30T00:00:00Z"
    );
    *now.lock().unwrap() = at("2026-11-30T00:00:01Z");
    assert_eq!(ledger.admit(), Ok(()), "a new day");
}

#[test]
fn cost_and_monthly_budgets_count_every_model_and_reset_with_the_month() {
    let (clock, now) = moving_clock("2026-11-30T12:00:00Z");
    let yaml = "costPerMonth: \"0.0003\"\ntokensPerMonth: 1000000";
    let ledger = Ledger::new(priced(), Arc::new(Metrics::default())).with_limits(Some(limits(yaml)), clock);
    ledger.record("gpt", 1_000, 0); // 0.00015
    ledger.record("minilm", 500, 0); // no price: tokens only
    assert_eq!(ledger.admit(), Ok(()));
    ledger.record("gpt", 1_000, 0); // 0.00030 in all
    let exhausted = ledger.admit().unwrap_err();
    assert_eq!(
        (exhausted.budget, exhausted.limit.as_str(), exhausted.used.as_str()),
        ("costPerMonth", "0.000300", "0.000300")
    );
    assert_eq!(exhausted.resets_at, at("2026-12-01T00:00:00Z"));
    *now.lock().unwrap() = at("2026-12-01T00:00:00Z");
    assert_eq!(ledger.admit(), Ok(()), "a new month");
}

#[tokio::test]
async fn the_windows_survive_a_restart_within_their_day() {
    let sessions = store("windows");
    let (clock, _now) = moving_clock("2026-11-29T10:00:00Z");
    let before = Ledger::new(priced(), Arc::new(Metrics::default()))
        .with_limits(Some(limits("tokensPerDay: 50")), clock.clone());
    before.record("gpt", 40, 20);
    before.flush(&sessions).await.unwrap();
    let after =
        Ledger::new(priced(), Arc::new(Metrics::default())).with_limits(Some(limits("tokensPerDay: 50")), clock);
    after.load(&sessions, "gpt").await.unwrap();
    assert_eq!(after.admit().map_err(|e| e.budget), Err("tokensPerDay"), "the day's 60 tokens were kept");
}

#[test]
fn without_budgets_nothing_is_refused() {
    let ledger = Ledger::new(priced(), Arc::new(Metrics::default()))
        .with_limits(Some(limits("maxToolCallsPerTurn: 2")), Clock::default());
    ledger.record("gpt", u64::from(u32::MAX), 0);
    assert!(!ledger.has_budgets());
    assert_eq!(ledger.admit(), Ok(()));
}
