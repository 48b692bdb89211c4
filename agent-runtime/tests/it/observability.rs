//! The chart's Grafana dashboard (`charts/agent-operator/files/agents-dashboard.json`) and alert
//! rules (`files/agent-rules.yaml`, shipped as a PrometheusRule) query only metrics the runtime
//! really exports: the metric names of every PromQL expression are read with a small lexer
//! (brackets balanced, strings, label matchers, ranges and grouping clauses skipped; function and
//! aggregation names told apart by the `(` that follows them) and each is looked up in a live
//! `/metrics` scrape of a runtime that served a priced, budgeted turn with a tool call. The
//! served-model panels query the engines instead (`ENGINE_PREFIXES`).

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};

use crate::support::{Reply, Upstream, config, post, quick_options, send, state, temp_dir};

/// Words of PromQL that are not metric names when no `(` follows them.
const KEYWORDS: [&str; 11] =
    ["by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset"];

/// Metric prefixes of the engines served Models run: those panels query the engines, whose names
/// `tests/tests/served_model_metrics.rs` checks (llama.cpp against a live scrape).
const ENGINE_PREFIXES: [&str; 2] = ["vllm:", "llamacpp:"];

/// Prefix of the operator's metrics (the controller's alerts), checked against the operator's
/// own scrape in `operator/tests/http_endpoints.rs`.
const OPERATOR_PREFIX: &str = "agent_operator_";

/// Words opening a label list in parentheses.
const GROUPING: [&str; 6] = ["by", "without", "on", "ignoring", "group_left", "group_right"];

/// The metric names `query` selects; an error when its brackets or quotes do not balance.
fn metric_names(query: &str) -> Result<BTreeSet<String>, String> {
    let chars: Vec<char> = query.chars().collect();
    let word_at = |i: usize| chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':';
    let mut names = BTreeSet::new();
    // What each open bracket closes with; `G` is a parenthesised label list (`by (...)`).
    let mut open: Vec<char> = Vec::new();
    let mut last_word = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' | '`' => {
                let end = (i + 1..chars.len()).find(|&j| chars[j] == c && chars[j - 1] != '\\');
                i = end.ok_or_else(|| format!("unclosed string at {i}"))?;
            }
            '{' => open.push('}'),
            '[' => open.push(']'),
            '(' => open.push(if GROUPING.contains(&last_word.as_str()) { 'G' } else { ')' }),
            '}' | ']' | ')' => {
                let closes = open.pop().map(|o| if o == 'G' { ')' } else { o });
                if closes != Some(c) {
                    return Err(format!("unbalanced {c} at {i}"));
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let start = i;
                while i + 1 < chars.len() && word_at(i + 1) {
                    i += 1;
                }
                let word: String = chars[start..=i].iter().collect();
                let rest: String = chars[i + 1..].iter().collect();
                let next = rest.trim_start();
                let in_selector_or_list = matches!(open.last(), Some('}' | ']' | 'G'));
                let called = next.starts_with('(') || GROUPING.iter().any(|k| next.starts_with(k));
                if !in_selector_or_list && !called && !KEYWORDS.contains(&word.as_str()) {
                    names.insert(word.clone());
                }
                last_word = word;
                i += 1;
                continue;
            }
            _ => {}
        }
        if !c.is_whitespace() {
            last_word.clear();
        }
        i += 1;
    }
    if open.is_empty() { Ok(names) } else { Err(format!("unclosed {open:?}")) }
}

/// The series names a scrape offers, from its `# TYPE` lines (a counter `x` is `x_total`, a
/// histogram `x` is `x_bucket`, `x_sum` and `x_count`).
fn exported(scrape: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in scrape.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else { continue };
        let mut parts = rest.split_whitespace();
        let (Some(name), Some(kind)) = (parts.next(), parts.next()) else { continue };
        match kind {
            "counter" => {
                names.insert(format!("{name}_total"));
            }
            "histogram" => names.extend(["_bucket", "_sum", "_count"].map(|s| format!("{name}{s}"))),
            _ => {
                names.insert(name.to_owned());
            }
        }
    }
    names
}

fn chart_file(path: &str) -> String {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts/agent-operator").join(path);
    std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

#[tokio::test]
async fn every_dashboard_and_alert_query_names_a_metric_the_runtime_exports() {
    let upstream =
        Upstream::start(vec![Reply::ToolCall("current_time".into(), "{}".into()), Reply::Text("late".into())]).await;
    let dir = temp_dir("observability");
    let spec = "  tools: [{name: clock, builtin: {kind: currentTime}}]\n  limits: {tokensPerDay: 1000}\n";
    let mut config = config(&upstream.base_url(), spec, &dir, "Chat");
    config.model.pricing = Some(agent_crds::model::Pricing {
        input_per_million_tokens: "1".into(),
        output_per_million_tokens: "2".into(),
        currency: "USD".into(),
    });
    let agent = state(config, &quick_options());
    agent.agent.check_model().await.unwrap();
    let chat = json!({"model": "helper", "messages": [{"role": "user", "content": "time?"}], "stream": true});
    assert_eq!(send(&agent, post("/v1/chat/completions", &chat)).await.0, StatusCode::OK);
    let (_, scrape) = send(&agent, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    let exported = exported(&scrape);

    let dashboard: Value =
        serde_json::from_str(&chart_file("files/agents-dashboard.json")).expect("the dashboard is JSON");
    let mut queries: Vec<(String, String)> = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        if panel["type"] == "row" {
            continue;
        }
        let targets = panel["targets"].as_array().expect("every panel has targets");
        assert!(!targets.is_empty(), "panel {} has no query", panel["title"]);
        for target in targets {
            queries.push((format!("panel {}", panel["title"]), target["expr"].as_str().unwrap().to_owned()));
        }
    }
    let rules: Value = serde_yaml::from_str(&chart_file("files/agent-rules.yaml")).expect("the rules are YAML");
    for group in rules["groups"].as_array().expect("rule groups") {
        for rule in group["rules"].as_array().expect("rules") {
            let alert = rule["alert"].as_str().expect("every rule is an alert");
            assert!(rule["labels"]["severity"].is_string() && rule["annotations"]["summary"].is_string(), "{alert}");
            queries.push((format!("alert {alert}"), rule["expr"].as_str().unwrap().to_owned()));
        }
    }
    assert!(queries.len() >= 15, "{} queries", queries.len());
    for (place, query) in &queries {
        let names = metric_names(query).unwrap_or_else(|e| panic!("{place}: {query:?}: {e}"));
        assert!(!names.is_empty(), "{place}: {query:?} names no metric");
        let elsewhere = |n: &String| ENGINE_PREFIXES.iter().any(|p| n.starts_with(p)) || n.starts_with(OPERATOR_PREFIX);
        for name in names.into_iter().filter(|n| !elsewhere(n)) {
            assert!(
                exported.contains(&name),
                "{place}: {name} is not exported by the runtime; it exports {exported:?}"
            );
        }
    }
}

#[test]
fn the_lexer_finds_metric_names_and_only_them() {
    let query = r#"histogram_quantile(0.95, sum by (namespace, le) (rate(agent_x_bucket{pod=~"a(b", le!="1"}[5m]))) > 5 and on (pod) agent_y == 0"#;
    assert_eq!(metric_names(query).unwrap(), BTreeSet::from(["agent_x_bucket".to_owned(), "agent_y".to_owned()]));
    assert!(metric_names("rate(agent_x[5m]").is_err(), "an unclosed bracket is an error");
}
