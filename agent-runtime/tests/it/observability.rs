//! The chart's Grafana dashboard (`charts/agent-operator/files/agents-dashboard.json`) and alert
//! rules (`files/agent-rules.yaml`, shipped as a PrometheusRule) query only metrics the runtime
//! really exports: every PromQL expression is parsed (`promql-parser`) and each metric it names
//! is looked up in a live `/metrics` scrape of a runtime that served a priced, budgeted turn with
//! a tool call.

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use promql_parser::parser::{self, Expr};
use serde_json::{Value, json};

use crate::support::{Reply, Upstream, config, post, quick_options, send, state, temp_dir};

/// The metric names `expr` selects.
fn metric_names(expr: &Expr, found: &mut BTreeSet<String>) {
    match expr {
        Expr::Aggregate(e) => {
            metric_names(&e.expr, found);
            if let Some(param) = &e.param {
                metric_names(param, found);
            }
        }
        Expr::Unary(e) => metric_names(&e.expr, found),
        Expr::Binary(e) => {
            metric_names(&e.lhs, found);
            metric_names(&e.rhs, found);
        }
        Expr::Paren(e) => metric_names(&e.expr, found),
        Expr::Subquery(e) => metric_names(&e.expr, found),
        Expr::VectorSelector(vs) => found.extend(vs.name.clone()),
        Expr::MatrixSelector(ms) => found.extend(ms.vs.name.clone()),
        Expr::Call(call) => call.args.args.iter().for_each(|arg| metric_names(arg, found)),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
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
        let expr = parser::parse(query).unwrap_or_else(|e| panic!("{place}: {query:?} does not parse: {e}"));
        let mut names = BTreeSet::new();
        metric_names(&expr, &mut names);
        assert!(!names.is_empty(), "{place}: {query:?} names no metric");
        for name in names {
            assert!(
                exported.contains(&name),
                "{place}: {name} is not exported by the runtime; it exports {exported:?}"
            );
        }
    }
}
