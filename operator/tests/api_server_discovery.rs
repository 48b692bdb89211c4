//! The operator finds where agent pods reach the API server (for their egress policies) from the
//! `kubernetes` Service's variables and the API server's EndpointSlice, against the mocked API.

mod support;

use agent_operator::api_server::discover;
use serde_json::json;
use support::Cluster;

#[tokio::test]
async fn the_service_address_and_the_endpoints_are_both_admitted() {
    let cluster = Cluster::default();
    cluster.put(json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "kubernetes", "namespace": "default"},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["172.18.0.2"]}, {"addresses": ["172.18.0.3"]}],
        "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}]
    }));
    let (client, calls) = cluster.client();
    let found = discover(&client, Some("10.96.0.1"), Some("443")).await;
    drop(client);
    assert_eq!(
        found.cidrs.iter().map(String::as_str).collect::<Vec<_>>(),
        ["10.96.0.1/32", "172.18.0.2/32", "172.18.0.3/32"]
    );
    assert_eq!(found.ports.iter().copied().collect::<Vec<_>>(), [443, 6443]);
    let calls = calls.await.unwrap();
    assert_eq!(calls.len(), 1, "one GET at start");
    assert_eq!(calls[0].path, "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/kubernetes");
}

#[tokio::test]
async fn an_unreadable_endpoint_slice_leaves_the_api_server_unknown() {
    let (client, _calls) = Cluster::default().client();
    let found = discover(&client, Some("10.96.0.1"), Some("443")).await;
    assert!(found.cidrs.is_empty() && found.ports.is_empty(), "{found:?}");
}
