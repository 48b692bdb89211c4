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
