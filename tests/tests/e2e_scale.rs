//! End to end at scale, against the cluster in `KUBECONFIG`: `AGENT_E2E_SCALE_AGENTS` Agents
//! (default 20) on one endpoint Model, applied at once, reconciled by the Agent controller
//! running in this process with the operator's default settings (concurrency, debounce,
//! namespace share) and a client that counts every request it sends. Reports the requests per
//! agent by verb and resource, the time until every agent is Accepted with its StatefulSet, and
//! the requests in a quiet window after that (`AGENT_E2E_SCALE_QUIET_SECONDS`, default 20).
//! Checks what holds on any cluster: no GET at all (reads come from the caches), and at most the
//! ten writes an agent's children and status take from cold plus one status write per pod
//! readiness flip. Skipped, with a printed reason, without `KUBECONFIG`.
//!
//! It is run outside CI against a real Kubernetes 1.36 control plane at N = 1,000 and more.

mod cluster;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use agent_crds::Agent;
use agent_operator::context::Context;
use agent_operator::fair_share::NamespaceShare;
use agent_operator::metrics::Metrics;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::client::ClientBuilder;
use kube::{Api, Client};

const NAMESPACE: &str = "agent-operator-e2e-scale";
const FIELD_MANAGER: &str = "agent-operator-e2e-scale";

/// Requests by `VERB resource`, as the operator's client sent them.
#[derive(Clone, Default)]
struct Counts(Arc<Mutex<BTreeMap<String, u64>>>);

impl Counts {
    fn record(&self, method: &http::Method, path: &str, query: &str) {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        // .../namespaces/<ns>/<resource>[/<name>[/status]] or .../<resource>
        let resource = match segments.iter().position(|s| *s == "namespaces") {
            Some(i) if segments.len() > i + 2 => segments[i + 2],
            _ => segments.last().copied().unwrap_or_default(),
        };
        let named = segments.iter().position(|s| *s == "namespaces").is_some_and(|i| segments.len() > i + 3);
        let verb = match *method {
            http::Method::GET if query.contains("watch=true") => "WATCH",
            http::Method::GET if named => "GET",
            http::Method::GET => "LIST",
            ref other => other.as_str(),
        };
        *self.0.lock().unwrap_or_else(PoisonError::into_inner).entry(format!("{verb} {resource}")).or_default() += 1;
    }

    fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

fn difference(after: &BTreeMap<String, u64>, before: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after.iter().map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0))).filter(|(_, v)| *v > 0).collect()
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A client for the cluster in `KUBECONFIG` that counts each request in `counts`.
async fn counting_client(counts: &Counts) -> Client {
    let config = kube::Config::infer().await.expect("a kubeconfig");
    let counts = counts.clone();
    let layer = tower::util::MapRequestLayer::new(move |request: http::Request<kube::client::Body>| {
        counts.record(request.method(), request.uri().path(), request.uri().query().unwrap_or_default());
        request
    });
    ClientBuilder::try_from(config).expect("a client stack").with_layer(&layer).build()
}

fn agent(i: u64) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "agent-operator.dev/v1alpha1", "kind": "Agent",
        "metadata": {"name": format!("scale-{i}"), "namespace": NAMESPACE},
        "spec": {"persona": {"systemPrompt": "You answer briefly."}, "model": {"modelRef": {"name": "gpt-small"}}}
    })
}

fn accepted(agent: &Agent) -> bool {
    agent.status.as_ref().is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Accepted" && c.status == "True"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_agents_converge_from_the_caches_and_rest_without_requests_on_a_real_cluster() {
    if std::env::var_os("KUBECONFIG").is_none() {
        eprintln!("SKIPPED e2e scale: KUBECONFIG is not set, so there is no cluster to run against");
        return;
    }
    let n = env_or("AGENT_E2E_SCALE_AGENTS", 20);
    let quiet = Duration::from_secs(env_or("AGENT_E2E_SCALE_QUIET_SECONDS", 20));
    let admin = Client::try_default().await.expect("a client for the cluster in KUBECONFIG");
    cluster::install_crds(&admin).await;
    cluster::apply_namespace(&admin, NAMESPACE, FIELD_MANAGER).await;
    cluster::enforce_restricted(&admin, NAMESPACE, FIELD_MANAGER).await;
    let apply = PatchParams::apply(FIELD_MANAGER).force();
    let models: Api<agent_crds::Model> = Api::namespaced(admin.clone(), NAMESPACE);
    let model = serde_json::json!({
        "apiVersion": "agent-operator.dev/v1alpha1", "kind": "Model",
        "metadata": {"name": "gpt-small", "namespace": NAMESPACE},
        "spec": {"endpoint": {"baseUrl": "https://api.openai.com/v1", "model": "gpt-4o-mini"}, "capabilities": {"chat": true}}
    });
    models.patch("gpt-small", &apply, &Patch::Apply(&model)).await.expect("the Model");
    let agents: Api<Agent> = Api::namespaced(admin.clone(), NAMESPACE);
    for i in 0..n {
        agents.patch(&format!("scale-{i}"), &apply, &Patch::Apply(&agent(i))).await.expect("an Agent");
    }

    let counts = Counts::default();
    let client = counting_client(&counts).await;
    let operator = <agent_operator::Config as clap::Parser>::parse_from(["agent-operator"]);
    let mut ctx =
        Context::new(client, Arc::new(Metrics::default()), "ghcr.io/agent-operator/agent-runtime:0.1.0".into(), None);
    ctx.namespace_share = NamespaceShare::new(operator.namespace_share());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let started = Instant::now();
    let controller =
        tokio::spawn(agent_operator::agent::run(Arc::new(ctx), Some(NAMESPACE), operator.controller(), async move {
            let _ = stopped.await;
        }));

    let statefulsets: Api<StatefulSet> = Api::namespaced(admin.clone(), NAMESPACE);
    let deadline = Duration::from_secs(120 + n / 5);
    loop {
        let accepted_count =
            agents.list(&ListParams::default()).await.unwrap().items.iter().filter(|a| accepted(a)).count();
        let workloads = statefulsets.list(&ListParams::default()).await.unwrap().items.len();
        if accepted_count as u64 == n && workloads as u64 == n {
            break;
        }
        assert!(
            started.elapsed() < deadline,
            "after {:?}: {accepted_count} of {n} Agents Accepted, {workloads} StatefulSets",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let converged = started.elapsed();
    let at_convergence = counts.snapshot();
    tokio::time::sleep(quiet).await;
    let quiet_requests = difference(&counts.snapshot(), &at_convergence);
    let _ = stop.send(());
    controller.await.unwrap();

    let total = |verb: &str| at_convergence.iter().filter(|(k, _)| k.starts_with(verb)).map(|(_, v)| *v).sum::<u64>();
    #[allow(clippy::cast_precision_loss, reason = "request counts are far below 2^52")]
    let per_agent = |verb: &str| total(verb) as f64 / n as f64;
    eprintln!("e2e scale: {n} agents Accepted with their StatefulSets in {:.1} s", converged.as_secs_f64());
    for verb in ["GET", "LIST", "WATCH", "PATCH", "POST", "DELETE"] {
        eprintln!("e2e scale: {verb} per agent {:.3}", per_agent(verb));
    }
    eprintln!("e2e scale: requests by verb and resource {at_convergence:?}");
    eprintln!("e2e scale: requests in the {}-second quiet window {quiet_requests:?}", quiet.as_secs());

    assert_eq!(total("GET"), 0, "reads come from the caches: {at_convergence:?}");
    assert!(!quiet_requests.keys().any(|k| k.starts_with("GET")), "no GET at rest: {quiet_requests:?}");
    let writes = |counts: &BTreeMap<String, u64>| {
        counts.iter().filter(|(k, _)| k.starts_with("PATCH") || k.starts_with("POST")).map(|(_, v)| *v).sum::<u64>()
    };
    // Ten writes take an agent from nothing to Accepted (eight children, two status writes);
    // a pod that becomes ready (or fails) on this cluster flips the status once more.
    let total_writes = writes(&at_convergence) + writes(&quiet_requests);
    assert!(total_writes <= 11 * n, "{total_writes} writes for {n} agents: {at_convergence:?} then {quiet_requests:?}");

    let namespaces: Api<Namespace> = Api::all(admin.clone());
    namespaces.delete(NAMESPACE, &DeleteParams::default()).await.unwrap();
}
