//! The Recipe controller against kube-rs's mocked API: a Recipe object gets `Accepted` from its
//! own check (True for a built-in recipe applied as an object, False naming the problem for a
//! template using a variable the runtime does not give), an up-to-date status is not written
//! again, and a reconcile that writes is traced.

mod support;

use std::sync::Arc;
use std::time::Duration;

use agent_crds::catalogue;
use agent_crds::recipe::Recipe;
use agent_operator::context::Context;
use agent_operator::metrics::Metrics;
use agent_operator::recipe::{INVALID_RECIPE, reconcile};
use kube::runtime::controller::Action;
use serde_json::{Value, json};
use support::{Call, Cluster};

fn recipe_object(template: Option<&str>) -> Value {
    let mut recipe = serde_json::to_value(catalogue::builtin("chatqna").expect("built in")).unwrap();
    recipe["metadata"] = json!({"name": "chatqna", "namespace": "team-a", "uid": "4e0c1f3a-1111-2222-3333-444455556666", "generation": 2});
    if let Some(template) = template {
        recipe["spec"]["generate"]["promptTemplate"] = json!(template);
    }
    recipe
}

async fn run(recipe: &Value) -> (Action, Vec<Call>) {
    let cluster = Cluster::default();
    cluster.put(recipe.clone());
    let (client, calls) = cluster.client();
    let ctx = Arc::new(Context::new(client, Arc::new(Metrics::default()), "runtime:test".into(), None));
    let recipe: Recipe = serde_json::from_value(recipe.clone()).unwrap();
    let action = reconcile(Arc::new(recipe), ctx.clone()).await.expect("reconcile");
    drop(ctx);
    let calls = tokio::time::timeout(Duration::from_secs(5), calls).await.unwrap().unwrap();
    (action, calls)
}

fn status_writes(calls: &[Call]) -> Vec<&Call> {
    calls.iter().filter(|c| c.is_write()).collect()
}

fn accepted(call: &Call) -> Value {
    call.body.as_ref().unwrap()["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Accepted")
        .cloned()
        .expect("an Accepted condition")
}

#[tokio::test]
async fn a_valid_recipe_object_is_accepted_and_not_written_again() {
    let recipe = recipe_object(None);
    let (action, calls) = run(&recipe).await;
    assert_eq!(action, Action::await_change());
    let writes = status_writes(&calls);
    assert_eq!(writes.len(), 1, "{calls:?}");
    assert_eq!(writes[0].path, "/apis/agent-operator.dev/v1alpha1/namespaces/team-a/recipes/chatqna/status");
    assert!(writes[0].query.contains("fieldManager=agent-operator") && writes[0].query.contains("force=true"));
    let condition = accepted(writes[0]);
    assert_eq!((condition["status"].as_str(), condition["reason"].as_str()), (Some("True"), Some("Valid")));
    assert_eq!(writes[0].body.as_ref().unwrap()["status"]["observedGeneration"], 2);

    let mut current = recipe;
    current["status"] = writes[0].body.as_ref().unwrap()["status"].clone();
    let (_, again) = run(&current).await;
    assert!(status_writes(&again).is_empty(), "an unchanged status is not written: {again:?}");
}

#[tokio::test]
async fn a_recipe_whose_template_uses_an_unknown_variable_is_not_accepted() {
    let (_, calls) = run(&recipe_object(Some("{{question}} in {{params.dialect}}"))).await;
    let writes = status_writes(&calls);
    assert_eq!(writes.len(), 1, "{calls:?}");
    let condition = accepted(writes[0]);
    assert_eq!(condition["status"], "False");
    assert_eq!(condition["reason"], INVALID_RECIPE);
    let message = condition["message"].as_str().unwrap();
    assert!(message.contains("generate.promptTemplate") && message.contains("dialect"), "{message}");
}

#[tokio::test]
async fn a_reconcile_that_writes_is_one_span_naming_the_object() {
    use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
    use tracing_subscriber::layer::SubscriberExt as _;

    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
    let layer = agent_telemetry::otel_layer(&provider, "agent-operator", &["agent_operator"]);
    // A current-thread runtime: every task of the reconcile runs on this thread's subscriber.
    let _traced = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));
    run(&recipe_object(None)).await;
    provider.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    let span = spans.iter().find(|s| s.name == "reconcile Recipe").expect("a reconcile span");
    let attribute = |key: &str| span.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| kv.value.to_string());
    assert_eq!(attribute("k8s.namespace.name").as_deref(), Some("team-a"));
    assert_eq!(attribute("k8s.object.name").as_deref(), Some("chatqna"));
    assert_eq!(attribute("k8s.object.generation").as_deref(), Some("2"));
    assert_eq!(span.parent_span_id, opentelemetry::trace::SpanId::INVALID, "a reconcile is its own trace");
}
