//! Leader election against the mocked API server: one holder at a time, expired leases are taken over.

mod support;

use std::time::Duration;

use agent_operator::leader::LeaderElector;
use http::Method;
use serde_json::json;
use support::Cluster;

const LEASE: &str = "/apis/coordination.k8s.io/v1/namespaces/ops/leases/agent-operator";

fn lease(holder: &str, renewed: &str) -> serde_json::Value {
    json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "agent-operator", "namespace": "ops", "resourceVersion": "5"},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15, "renewTime": renewed, "leaseTransitions": 3}
    })
}

async fn attempt(cluster: &Cluster, now: &str) -> (bool, Vec<support::Call>) {
    let (client, calls) = cluster.client();
    let elector = LeaderElector::new(client, "ops", "agent-operator", "pod-b", Duration::from_secs(15));
    let held = elector.try_acquire_or_renew(now.parse().unwrap()).await.unwrap();
    drop(elector);
    (held, calls.await.unwrap())
}

#[tokio::test]
async fn a_fresh_lease_of_another_replica_is_respected() {
    let cluster = Cluster::default();
    cluster.put(lease("pod-a", "2026-01-01T00:00:00.000000Z"));
    let (held, calls) = attempt(&cluster, "2026-01-01T00:00:10Z").await;
    assert!(!held);
    assert!(calls.iter().all(|c| c.method == Method::GET), "{calls:?}");
}

#[tokio::test]
async fn an_expired_lease_is_taken_over_with_optimistic_concurrency() {
    let cluster = Cluster::default();
    cluster.put(lease("pod-a", "2026-01-01T00:00:00.000000Z"));
    let (held, calls) = attempt(&cluster, "2026-01-01T00:00:20Z").await;
    assert!(held);
    let update = calls.iter().find(|c| c.method == Method::PUT).expect("an update");
    assert_eq!(update.path, LEASE);
    let body = update.body.as_ref().unwrap();
    assert_eq!(body["metadata"]["resourceVersion"], "5", "the update is conditional on the version read");
    assert_eq!(body["spec"]["holderIdentity"], "pod-b");
    assert_eq!(body["spec"]["leaseTransitions"], 4);
}

#[tokio::test]
async fn a_missing_lease_is_created() {
    let cluster = Cluster::default();
    let (held, calls) = attempt(&cluster, "2026-01-01T00:00:00Z").await;
    assert!(held);
    let create = calls.iter().find(|c| c.method == Method::POST).expect("a create");
    assert_eq!(create.path, "/apis/coordination.k8s.io/v1/namespaces/ops/leases");
    assert_eq!(create.body.as_ref().unwrap()["spec"]["holderIdentity"], "pod-b");
}
