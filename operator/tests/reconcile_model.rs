//! Reconcile tests of the Model controller against kube-rs's mocked API server, with a real
//! local HTTP responder standing in for an external OpenAI-compatible endpoint.

mod support;

use std::sync::Arc;
use std::time::Duration;

use agent_crds::model::Model;
use agent_operator::context::Context;
use agent_operator::metrics::Metrics;
use agent_operator::model::{ModelContext, error_policy, reconcile};
use axum::Json;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use http::Method;
use kube::runtime::controller::Action;
use serde_json::{Value, json};
use support::{Call, Cluster, example, secret};

const SERVED: &str = "examples/served-model.yaml";
const MODELS: &str = "/apis/agent-operator.dev/v1alpha1/namespaces/models/models";

fn with_identity(mut model: Value) -> Value {
    model["metadata"]["uid"] = json!("7c1d2e3f-1111-2222-3333-444455556666");
    model["metadata"]["generation"] = json!(1);
    model
}

fn llama() -> Value {
    with_identity(example(SERVED, "Model", "llama-8b"))
}

/// An endpoint Model pointing at `base_url`, its key in Secret `openai` (value `secret`).
fn endpoint_model(base_url: &str) -> Value {
    let mut model = with_identity(example("examples/chat-agent.yaml", "Model", "gpt-small"));
    model["spec"]["endpoint"]["baseUrl"] = json!(base_url);
    model
}

/// Runs reconciles of `model` (as stored in `cluster` before each) with one context; returns
/// each result and every call made.
async fn run_times(cluster: &Cluster, model: &Value, times: usize) -> (Vec<Result<Action, String>>, Vec<Call>) {
    let (results, calls, _) = run_measured(cluster, model, times).await;
    (results, calls)
}

/// As [`run_times`], with the metrics the reconciles recorded.
async fn run_measured(
    cluster: &Cluster,
    model: &Value,
    times: usize,
) -> (Vec<Result<Action, String>>, Vec<Call>, Arc<Metrics>) {
    cluster.put(model.clone());
    let path = support::path_of(model);
    let (client, calls) = cluster.client();
    let metrics = Arc::new(Metrics::default());
    let base = Arc::new(Context::new(client, metrics.clone(), "runtime:test".into(), Some("test".into())));
    let ctx = Arc::new(ModelContext::new(base));
    let mut results = Vec::new();
    for _ in 0..times {
        let stored: Model = serde_json::from_value(cluster.get(&path).unwrap()).unwrap();
        let stored = Arc::new(stored);
        let result = reconcile(stored.clone(), ctx.clone()).await.map_err(|error| {
            let action = error_policy(stored, &error, ctx.clone());
            assert!(action != Action::await_change(), "a transient error must be retried");
            error.to_string()
        });
        results.push(result);
    }
    drop(ctx);
    let calls = tokio::time::timeout(Duration::from_secs(5), calls).await.unwrap().unwrap();
    (results, calls, metrics)
}

async fn run(cluster: &Cluster, model: &Value) -> (Result<Action, String>, Vec<Call>) {
    let (mut results, calls) = run_times(cluster, model, 1).await;
    (results.remove(0), calls)
}

fn writes(calls: &[Call]) -> Vec<String> {
    calls.iter().filter(|c| c.is_write()).map(|c| format!("{} {}", c.method, c.path)).collect()
}

fn status_patch(calls: &[Call]) -> &Value {
    let call = calls.iter().rev().find(|c| c.path.ends_with("/status")).expect("a status patch");
    &call.body.as_ref().unwrap()["status"]
}

fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["conditions"].as_array().unwrap().iter().find(|c| c["type"] == type_).unwrap_or_else(|| panic!("no {type_}"))
}

fn reason(status: &Value, type_: &str) -> (String, String) {
    let c = condition(status, type_);
    (c["status"].as_str().unwrap().to_owned(), c["reason"].as_str().unwrap().to_owned())
}

fn events(calls: &[Call]) -> Vec<(String, String)> {
    calls
        .iter()
        .filter(|c| c.method == Method::POST && c.path.ends_with("/events"))
        .map(|c| {
            let body = c.body.as_ref().unwrap();
            (body["type"].as_str().unwrap().to_owned(), body["reason"].as_str().unwrap().to_owned())
        })
        .collect()
}

/// The delay of a requeue action (its field is private; its Debug output is not).
fn requeue_after(action: &Action) -> Duration {
    let text = format!("{action:?}");
    let inner = text.split("Some(").nth(1).and_then(|rest| rest.split(')').next()).expect(&text);
    let (number, unit) = inner.split_at(inner.find(|c: char| c.is_alphabetic() || c == 'µ').unwrap());
    let value: f64 = number.parse().unwrap();
    match unit {
        "s" => Duration::from_secs_f64(value),
        "ms" => Duration::from_secs_f64(value / 1e3),
        "µs" => Duration::from_secs_f64(value / 1e6),
        "ns" => Duration::from_secs_f64(value / 1e9),
        other => panic!("unit {other} in {text}"),
    }
}

// ---------------------------------------------------------------- served Models

#[tokio::test]
async fn a_served_model_with_dra_applies_claim_template_cache_job_deployment_and_service_in_order() {
    let cluster = Cluster::default();
    cluster.put(secret("models", "hf-token", &["token"]));
    let (result, calls) = run(&cluster, &llama()).await;
    assert_eq!(result, Ok(Action::requeue(Duration::from_secs(30))), "progress is polled until Ready");
    let job = calls.iter().find(|c| c.path.contains("/jobs/")).unwrap().path.rsplit('/').next().unwrap().to_owned();
    let named = |kind: &str| {
        let call = calls.iter().find(|c| c.path.contains(kind)).unwrap_or_else(|| panic!("no {kind} call"));
        call.path.rsplit('/').next().unwrap().to_owned()
    };
    let template = named("/resourceclaimtemplates/");
    assert_eq!(
        writes(&calls),
        [
            format!("PATCH /apis/resource.k8s.io/v1/namespaces/models/resourceclaimtemplates/{template}"),
            "PATCH /api/v1/namespaces/models/persistentvolumeclaims/llama-8b-cache".to_owned(),
            format!("PATCH /apis/batch/v1/namespaces/models/jobs/{job}"),
            "PATCH /apis/apps/v1/namespaces/models/deployments/llama-8b".to_owned(),
            "PATCH /api/v1/namespaces/models/services/llama-8b-model".to_owned(),
            format!("PATCH {MODELS}/llama-8b/status"),
        ]
    );
    assert!(job.starts_with("llama-8b-download-"), "{job}");
    assert!(template.starts_with("llama-8b-accelerator-"), "{template}");
    for call in calls.iter().filter(|c| c.is_write()) {
        assert!(call.query.contains("fieldManager=agent-operator") && call.query.contains("force=true"), "{call:?}");
        if !call.path.ends_with("/status") {
            let owner = &call.body.as_ref().unwrap()["metadata"]["ownerReferences"][0];
            assert_eq!((owner["kind"].as_str(), owner["name"].as_str()), (Some("Model"), Some("llama-8b")));
        }
    }
    let deployment = calls.iter().find(|c| c.is_write() && c.path.ends_with("/deployments/llama-8b")).unwrap();
    assert_eq!(deployment.body.as_ref().unwrap()["spec"]["replicas"], 0, "no GPU is held while weights download");
    let status = status_patch(&calls);
    assert_eq!(reason(status, "CacheReady"), ("False".into(), "Downloading".into()));
    assert_eq!(reason(status, "ClaimsAllocated"), ("Unknown".into(), "NoClaims".into()));
    assert_eq!(reason(status, "Ready"), ("False".into(), "CacheNotReady".into()));
    assert_eq!(status["endpoint"], "http://llama-8b-model.models.svc:8000/v1");
    assert_eq!(status["boundAgents"], 0);
    assert_eq!(events(&calls), Vec::<(String, String)>::new(), "progress is not an event");
}

#[tokio::test]
async fn a_runtime_served_model_runs_the_runtime_image_on_cpu_from_its_cache() {
    let cluster = Cluster::default();
    let model = with_identity(example(SERVED, "Model", "gemma-runtime"));
    let (result, calls) = run(&cluster, &model).await;
    assert_eq!(result, Ok(Action::requeue(Duration::from_secs(30))));
    let job = calls.iter().find(|c| c.path.contains("/jobs/")).unwrap().path.rsplit('/').next().unwrap().to_owned();
    assert_eq!(
        writes(&calls),
        [
            "PATCH /api/v1/namespaces/models/persistentvolumeclaims/gemma-runtime-cache".to_owned(),
            format!("PATCH /apis/batch/v1/namespaces/models/jobs/{job}"),
            "PATCH /apis/apps/v1/namespaces/models/deployments/gemma-runtime".to_owned(),
            "PATCH /api/v1/namespaces/models/services/gemma-runtime-model".to_owned(),
            format!("PATCH {MODELS}/gemma-runtime/status"),
        ],
        "no claim template: the runtime serves on CPU"
    );
    let deployment = calls.iter().find(|c| c.is_write() && c.path.ends_with("/deployments/gemma-runtime")).unwrap();
    let pod = &deployment.body.as_ref().unwrap()["spec"]["template"]["spec"];
    let server = &pod["containers"][0];
    assert_eq!(server["image"], "runtime:test", "the operator's runtime image");
    assert_eq!(server["args"][0], "serve-model");
    assert_eq!(server["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert!(server["resources"]["limits"].get("nvidia.com/gpu").is_none() && pod.get("resourceClaims").is_none());
    let status = status_patch(&calls);
    assert_eq!(reason(status, "Ready"), ("False".into(), "CacheNotReady".into()));
    assert_eq!(status["endpoint"], "http://gemma-runtime-model.models.svc:8000/v1");
}

fn job_path() -> String {
    let model: Model = serde_json::from_value(llama()).unwrap();
    let source = agent_operator::model::validate::validate(&model).unwrap().unwrap();
    format!("/apis/batch/v1/namespaces/models/jobs/llama-8b-download-{}", source.digest())
}

/// Marks the stored download Job succeeded, as the Job controller would.
fn finish_download(cluster: &Cluster) {
    let mut job = cluster.get(&job_path()).expect("the Job was applied");
    job["status"] = json!({"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]});
    cluster.put(job);
}

fn set_deployment_ready(cluster: &Cluster, ready: i64) {
    let path = "/apis/apps/v1/namespaces/models/deployments/llama-8b";
    let mut deployment = cluster.get(path).unwrap();
    deployment["status"] = json!({"observedGeneration": 1, "replicas": 1, "readyReplicas": ready});
    cluster.put(deployment);
}

fn claim(name: &str, allocated: bool) -> Value {
    let mut claim = json!({
        "apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim",
        "metadata": {"name": name, "namespace": "models", "labels": {"agent-operator.dev/model": "llama-8b"}},
        "spec": {"devices": {"requests": [{"name": "gpu", "exactly": {"deviceClassName": "gpu.nvidia.com", "count": 2}}]}}
    });
    if allocated {
        claim["status"] = json!({"allocation": {"devices": {"results": [
            {"request": "gpu", "driver": "gpu.nvidia.com", "pool": "node-a", "device": "gpu-0"},
            {"request": "gpu", "driver": "gpu.nvidia.com", "pool": "node-a", "device": "gpu-1"}
        ]}}});
    }
    claim
}

fn pod(scheduled: Option<&str>) -> Value {
    let condition = match scheduled {
        None => json!({"type": "PodScheduled", "status": "True"}),
        Some(message) => {
            json!({"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message})
        }
    };
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "llama-8b-5d8f9c-x2x7q", "namespace": "models",
                     "labels": {"app.kubernetes.io/name": "model-server", "app.kubernetes.io/instance": "llama-8b"}},
        "spec": {"containers": [{"name": "server", "image": "vllm"}]},
        "status": {"phase": "Pending", "conditions": [condition]}
    })
}

#[tokio::test]
async fn a_filled_cache_scales_the_engine_up_and_ready_follows_its_pods_and_claims() {
    let cluster = Cluster::default();
    cluster.put(secret("models", "hf-token", &["token"]));
    assert!(run(&cluster, &llama()).await.0.is_ok());
    finish_download(&cluster);
    let stored = cluster.get(&format!("{MODELS}/llama-8b")).unwrap();

    cluster.put(pod(Some("0/3 nodes are available: 3 cannot allocate all claims. still not schedulable")));
    cluster.put(claim("llama-8b-5d8f9c-x2x7q-accelerator-abcde", false));
    let (_, calls) = run(&cluster, &stored).await;
    assert_eq!(
        writes(&calls),
        [
            "PATCH /api/v1/namespaces/models/persistentvolumeclaims/llama-8b-cache".to_owned(),
            "PATCH /apis/apps/v1/namespaces/models/deployments/llama-8b".to_owned(),
            "POST /apis/events.k8s.io/v1/namespaces/models/events".to_owned(),
            format!("PATCH {MODELS}/llama-8b/status"),
        ],
        "the claim records its weights, the Deployment scales up, and the pending pod is a Warning"
    );
    let deployment = &calls.iter().find(|c| c.is_write() && c.path.ends_with("/deployments/llama-8b")).unwrap().body;
    assert_eq!(deployment.as_ref().unwrap()["spec"]["replicas"], 1);
    let status = status_patch(&calls);
    assert_eq!(reason(status, "CacheReady"), ("True".into(), "Downloaded".into()));
    let claims = condition(status, "ClaimsAllocated");
    assert_eq!((claims["status"].as_str(), claims["reason"].as_str()), (Some("False"), Some("Pending")));
    assert_eq!(
        claims["message"],
        "0 of 1 claims allocated: pod llama-8b-5d8f9c-x2x7q cannot be scheduled: 0/3 nodes are available: 3 cannot allocate all claims. still not schedulable"
    );
    assert_eq!(reason(status, "Ready"), ("False".into(), "Unschedulable".into()));
    assert_eq!(events(&calls), [("Warning".to_owned(), "Unschedulable".to_owned())]);

    cluster.put(pod(None));
    cluster.put(claim("llama-8b-5d8f9c-x2x7q-accelerator-abcde", true));
    set_deployment_ready(&cluster, 1);
    let stored = cluster.get(&format!("{MODELS}/llama-8b")).unwrap();
    let (result, calls) = run(&cluster, &stored).await;
    assert_eq!(result, Ok(Action::requeue(Duration::from_secs(600))));
    let status = status_patch(&calls);
    let claims = condition(status, "ClaimsAllocated");
    assert_eq!(claims["message"], "1 of 1 claims allocated (node-a/gpu-0, node-a/gpu-1)");
    assert_eq!(reason(status, "Ready"), ("True".into(), "Serving".into()));
    assert_eq!(status["servedModels"], json!(["llama-3.1-8b"]));
    assert_eq!(events(&calls), [("Normal".to_owned(), "Serving".to_owned())]);
}

#[tokio::test]
async fn a_cache_recorded_on_its_claim_survives_the_deletion_of_its_job() {
    let cluster = Cluster::default();
    cluster.put(secret("models", "hf-token", &["token"]));
    assert!(run(&cluster, &llama()).await.0.is_ok());
    finish_download(&cluster);
    assert!(run(&cluster, &cluster.get(&format!("{MODELS}/llama-8b")).unwrap()).await.0.is_ok());
    let claim = cluster.get("/api/v1/namespaces/models/persistentvolumeclaims/llama-8b-cache").unwrap();
    assert!(claim["metadata"]["annotations"]["agent-operator.dev/cached-source"].is_string(), "{claim}");

    cluster.remove(&job_path()).expect("the Job existed");
    let (_, calls) = run(&cluster, &cluster.get(&format!("{MODELS}/llama-8b")).unwrap()).await;
    assert_eq!(writes(&calls), Vec::<String>::new(), "no new download and no scale-down: {calls:#?}");
    let stored = cluster.get(&format!("{MODELS}/llama-8b")).unwrap();
    assert_eq!(reason(&stored["status"], "CacheReady"), ("True".into(), "Downloaded".into()));
}

#[tokio::test]
async fn an_unchanged_served_model_causes_no_write() {
    let cluster = Cluster::default();
    cluster.put(secret("models", "hf-token", &["token"]));
    assert!(run(&cluster, &llama()).await.0.is_ok());
    // The second pass sees the Job it created and reports its progress.
    let (_, second) = run(&cluster, &cluster.get(&format!("{MODELS}/llama-8b")).unwrap()).await;
    assert_eq!(writes(&second), [format!("PATCH {MODELS}/llama-8b/status")]);
    let (result, third) = run(&cluster, &cluster.get(&format!("{MODELS}/llama-8b")).unwrap()).await;
    assert_eq!(result, Ok(Action::requeue(Duration::from_secs(30))));
    assert_eq!(writes(&third), Vec::<String>::new(), "{third:#?}");
}

#[tokio::test]
async fn a_missing_token_secret_is_reported_and_nothing_is_applied() {
    let cluster = Cluster::default();
    let (result, calls) = run(&cluster, &llama()).await;
    assert_eq!(result, Ok(Action::requeue(Duration::from_secs(60))));
    assert_eq!(
        writes(&calls),
        ["POST /apis/events.k8s.io/v1/namespaces/models/events".to_owned(), format!("PATCH {MODELS}/llama-8b/status")]
    );
    let ready = condition(status_patch(&calls), "Ready");
    assert_eq!(
        (ready["reason"].as_str(), ready["message"].as_str()),
        (Some("ReferenceNotFound"), Some("Secret hf-token not found"))
    );
}

#[tokio::test]
async fn an_invalid_served_model_waits_for_a_change_with_the_reason_in_status() {
    let cluster = Cluster::default();
    let mut model = with_identity(example(SERVED, "Model", "gemma-small"));
    model["spec"]["serve"]["uri"] = json!("hf://ggml-org/gemma-3-270m-GGUF");
    let (result, calls) = run(&cluster, &model).await;
    assert_eq!(result, Ok(Action::await_change()));
    let ready = condition(status_patch(&calls), "Ready");
    assert_eq!(ready["reason"], "InvalidSpec");
    assert!(ready["message"].as_str().unwrap().contains("loads one GGUF file"), "{ready}");
    assert!(!calls.iter().any(|c| c.path.contains("/deployments")), "nothing is read or built for an invalid spec");
}

#[tokio::test]
async fn a_failed_apply_is_retried_with_backoff_and_counted() {
    let cluster = Cluster::default();
    cluster.put(secret("models", "hf-token", &["token"]));
    cluster.fail_writes_to("/apis/apps/v1/namespaces/models/deployments/llama-8b");
    let (result, calls) = run(&cluster, &llama()).await;
    let error = result.unwrap_err();
    assert!(error.contains("applying Deployment llama-8b"), "{error}");
    assert!(!calls.iter().any(|c| c.path.ends_with("/status")), "no status write after a failed apply");
    assert!(
        !calls.iter().any(|c| c.is_write() && c.path.ends_with("/services/llama-8b-model")),
        "apply stops at the failure"
    );
}

#[tokio::test]
async fn bound_agents_are_counted_from_the_agents_status() {
    let cluster = Cluster::default();
    cluster.put(secret("models", "hf-token", &["token"]));
    for (name, bound) in [("a", "llama-8b"), ("b", "llama-8b"), ("c", "other")] {
        cluster.put(json!({
            "apiVersion": "agent-operator.dev/v1alpha1", "kind": "Agent",
            "metadata": {"name": name, "namespace": "models"},
            "spec": {"model": {"selector": {"capabilities": ["chat"]}}},
            "status": {"boundModel": bound}
        }));
    }
    let (_, calls) = run(&cluster, &llama()).await;
    assert_eq!(status_patch(&calls)["boundAgents"], 2);
}

// ---------------------------------------------------------------- endpoint Models

/// A local OpenAI-compatible `/v1/models` that wants `Bearer <key>` and lists `models`.
async fn models_endpoint(key: &'static str, models: &'static [&'static str]) -> String {
    let app = axum::Router::new().route(
        "/v1/models",
        get(move |headers: HeaderMap| async move {
            let wanted = format!("Bearer {key}");
            if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(wanted.as_str()) {
                return (StatusCode::UNAUTHORIZED, Json(json!({"error": {"message": "invalid api key"}})));
            }
            let data: Vec<Value> = models.iter().map(|id| json!({"id": id, "object": "model"})).collect();
            (StatusCode::OK, Json(json!({"object": "list", "data": data})))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}/v1")
}

fn cluster_with_key() -> Cluster {
    let cluster = Cluster::default();
    cluster.put(secret("demo", "openai", &["api-key"]));
    cluster
}

#[tokio::test]
async fn an_endpoint_model_is_ready_when_its_endpoint_lists_the_model_for_the_key() {
    let base_url = models_endpoint("secret", &["text-embedding-3-small", "gpt-4o-mini"]).await;
    let cluster = cluster_with_key();
    let (result, calls) = run(&cluster, &endpoint_model(&base_url)).await;
    assert_eq!(result, Ok(Action::requeue(Duration::from_secs(300))), "a reachable endpoint is rechecked later");
    let status = status_patch(&calls);
    assert_eq!(reason(status, "Ready"), ("True".into(), "EndpointReachable".into()));
    assert_eq!(status["servedModels"], json!(["gpt-4o-mini", "text-embedding-3-small"]));
    assert_eq!(status["endpoint"], base_url);
    assert_eq!(events(&calls), [("Normal".to_owned(), "EndpointReachable".to_owned())]);
    assert!(writes(&calls).iter().all(|w| w.ends_with("/events") || w.ends_with("/status")), "nothing is built");
}

#[tokio::test]
async fn a_refused_key_and_an_unlisted_model_get_their_own_reasons() {
    let wrong_key = models_endpoint("another-key", &["gpt-4o-mini"]).await;
    let (_, calls) = run(&cluster_with_key(), &endpoint_model(&wrong_key)).await;
    let ready = condition(status_patch(&calls), "Ready");
    assert_eq!(
        (ready["reason"].as_str(), ready["message"].as_str()),
        (Some("Unauthorized"), Some("the endpoint refused the API key (HTTP 401)"))
    );

    let other_models = models_endpoint("secret", &["llama-3.1-8b"]).await;
    let (_, calls) = run(&cluster_with_key(), &endpoint_model(&other_models)).await;
    let status = status_patch(&calls);
    assert_eq!(reason(status, "Ready"), ("False".into(), "ModelNotServed".into()));
    assert_eq!(
        condition(status, "Ready")["message"],
        "the endpoint does not list model \"gpt-4o-mini\"; it serves llama-3.1-8b"
    );
    assert_eq!(status["servedModels"], json!(["llama-3.1-8b"]));
}

#[tokio::test]
async fn without_secret_access_the_probe_goes_without_the_key_and_an_answering_endpoint_is_ready_unchecked() {
    let base_url = models_endpoint("secret", &["gpt-4o-mini"]).await;
    let cluster = cluster_with_key();
    cluster.forbid("/api/v1/namespaces/demo/secrets");
    let (result, calls) = run(&cluster, &endpoint_model(&base_url)).await;
    assert_eq!(result, Ok(Action::requeue(Duration::from_secs(300))), "rechecked later, like a reachable endpoint");
    let ready = condition(status_patch(&calls), "Ready");
    assert_eq!((ready["status"].as_str(), ready["reason"].as_str()), (Some("True"), Some("KeyNotChecked")));
    let message = ready["message"].as_str().unwrap();
    assert!(message.contains("HTTP 401 without a key") && message.contains("Secret openai"), "{message}");

    let unreachable = endpoint_model("http://127.0.0.1:9/v1");
    let (_, calls) = run(&cluster, &unreachable).await;
    assert_eq!(
        reason(status_patch(&calls), "Ready").1,
        "Unreachable",
        "an endpoint that does not answer is still not ready"
    );
}

#[tokio::test]
async fn an_unreachable_endpoint_is_not_ready_and_probed_again_with_growing_delays() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let cluster = cluster_with_key();
    let (results, calls, metrics) = run_measured(&cluster, &endpoint_model(&format!("http://{closed}/v1")), 3).await;
    let text = metrics.encode();
    assert!(text.contains(r#"agent_operator_model_endpoint_probes_total{result="Unreachable"} 3"#), "{text}");
    let delays: Vec<Duration> = results.iter().map(|r| requeue_after(r.as_ref().unwrap())).collect();
    assert!(delays[0] <= Duration::from_secs(5), "{delays:?}");
    assert!(delays[1] >= Duration::from_secs(5) && delays[2] >= Duration::from_secs(10), "backoff grows: {delays:?}");
    let ready = condition(status_patch(&calls), "Ready");
    assert_eq!(ready["reason"], "Unreachable");
    assert!(ready["message"].as_str().unwrap().contains(&closed.to_string()), "{ready}");
    assert_eq!(events(&calls), [("Warning".to_owned(), "Unreachable".to_owned())], "one event per transition");
    let status_writes = calls.iter().filter(|c| c.path.ends_with("/status")).count();
    assert_eq!(status_writes, 1, "an unchanged failure writes no status");
}

/// The ResourceSlice of node-a's GPUs, `gpu-1` carrying `taints`.
fn node_a_slice(taints: &Value) -> Value {
    json!({
        "apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice", "metadata": {"name": "node-a-gpu.nvidia.com"},
        "spec": {"driver": "gpu.nvidia.com", "nodeName": "node-a",
                 "pool": {"name": "node-a", "generation": 1, "resourceSliceCount": 1},
                 "devices": [{"name": "gpu-0"}, {"name": "gpu-1", "taints": taints}]}
    })
}

#[tokio::test]
async fn a_pod_on_a_tainted_device_is_evicted_and_the_model_says_which_device_and_why() {
    let cluster = Cluster::default();
    cluster.put(secret("models", "hf-token", &["token"]));
    assert!(run(&cluster, &llama()).await.0.is_ok());
    finish_download(&cluster);
    let pod_name = "llama-8b-5d8f9c-x2x7q";
    cluster.put(pod(None));
    let mut held = claim("llama-8b-5d8f9c-x2x7q-accelerator-abcde", true);
    held["status"]["reservedFor"] = json!([{"resource": "pods", "name": pod_name, "uid": "p-1"}]);
    cluster.put(held);
    set_deployment_ready(&cluster, 1);
    let taint = json!([{"key": "gpu.nvidia.com/xid", "value": "79", "effect": "NoSchedule"}]);
    cluster.put(node_a_slice(&taint));

    let (result, calls) = run(&cluster, &cluster.get(&format!("{MODELS}/llama-8b")).unwrap()).await;
    assert_eq!(result, Ok(Action::requeue(Duration::from_secs(30))), "looks again while a pod is replaced");
    let evictions: Vec<&str> =
        calls.iter().filter(|c| c.path.ends_with("/eviction")).map(|c| c.path.as_str()).collect();
    assert_eq!(evictions, [format!("/api/v1/namespaces/models/pods/{pod_name}/eviction")]);
    let devices = condition(status_patch(&calls), "DevicesHealthy");
    assert_eq!((devices["status"].as_str(), devices["reason"].as_str()), (Some("False"), Some("DeviceUnfit")));
    assert_eq!(
        devices["message"],
        format!(
            "device gpu.nvidia.com/node-a/gpu-1 is tainted gpu.nvidia.com/xid=79:NoSchedule in its ResourceSlice; \
             replacing pod {pod_name}"
        )
    );
    assert!(events(&calls).contains(&("Warning".to_owned(), "DeviceUnfit".to_owned())), "{:?}", events(&calls));

    // Taint gone (the driver recovered the device, or the pod moved): healthy, nothing evicted.
    cluster.put(node_a_slice(&json!([])));
    let (_, calls) = run(&cluster, &cluster.get(&format!("{MODELS}/llama-8b")).unwrap()).await;
    assert!(calls.iter().all(|c| !c.path.ends_with("/eviction")));
    assert_eq!(reason(status_patch(&calls), "DevicesHealthy"), ("True".into(), "Healthy".into()));
}

#[tokio::test]
async fn replicas_sharing_one_claim_use_the_claim_the_operator_creates_once_and_never_changes() {
    let cluster = Cluster::default();
    cluster.put(secret("models", "hf-token", &["token"]));
    let mut model = llama();
    model["spec"]["serve"]["accelerator"]["sharedClaimName"] = json!("gpus-shared");
    assert!(run(&cluster, &model).await.0.is_ok());
    finish_download(&cluster);
    let (_, calls) = run(&cluster, &cluster.get(&format!("{MODELS}/llama-8b")).unwrap()).await;
    let created: Vec<&Call> =
        calls.iter().filter(|c| c.method == http::Method::POST && c.path.ends_with("/resourceclaims")).collect();
    assert_eq!(created.len(), 1, "{:#?}", writes(&calls));
    let claim = created[0].body.as_ref().unwrap();
    assert_eq!(claim["metadata"]["name"], "gpus-shared");
    assert_eq!(claim["metadata"]["labels"]["agent-operator.dev/shared-claim"], "true");
    assert!(claim["metadata"]["ownerReferences"].is_null(), "shared by Models, owned by none");
    assert_eq!(claim["spec"]["devices"]["requests"][0]["exactly"]["deviceClassName"], "gpu.nvidia.com");
    assert!(writes(&calls).iter().all(|w| !w.contains("resourceclaimtemplates")), "no template: {:?}", writes(&calls));
    let deployment = &calls.iter().find(|c| c.is_write() && c.path.ends_with("/deployments/llama-8b")).unwrap().body;
    let pod_claims = &deployment.as_ref().unwrap()["spec"]["template"]["spec"]["resourceClaims"];
    assert_eq!(pod_claims, &json!([{"name": "accelerator", "resourceClaimName": "gpus-shared"}]));

    // The claim exists (made by this Model or another): it is used as it is.
    let mut stored = claim.clone();
    stored["status"] = json!({"allocation": {"devices": {"results": [
        {"request": "gpu", "driver": "gpu.nvidia.com", "pool": "node-a", "device": "gpu-0"}]}}});
    cluster.put(stored);
    cluster.put(pod(None));
    let (_, calls) = run(&cluster, &cluster.get(&format!("{MODELS}/llama-8b")).unwrap()).await;
    assert!(calls.iter().all(|c| !(c.method == http::Method::POST && c.path.ends_with("/resourceclaims"))));
    let claims = condition(status_patch(&calls), "ClaimsAllocated");
    assert_eq!(claims["status"], "True", "{claims}");
}
