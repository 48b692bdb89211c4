use agent_crds::manifests::Manifests;
use agent_crds::render::render_runtime_config;
use agent_crds::runtime_config::PodPaths;
use serde_json::{Value, json};

use super::*;
use crate::agent::build::network_policy::build_network_policy;
use crate::offline::observe;

const MODEL: &str = "
apiVersion: agent-operator.dev/v1alpha1
kind: Model
metadata: {name: gpt, namespace: demo}
spec:
  endpoint: {baseUrl: 'https://api.openai.com/v1', model: gpt-4o-mini}
  capabilities: {chat: true}
";

/// The NetworkPolicy of an agent in namespace `demo` with `spec`, as JSON.
fn policy(spec: &str, api_server: &ApiServer) -> Value {
    let agent = format!(
        "apiVersion: agent-operator.dev/v1alpha1\nkind: Agent\nmetadata: {{name: helper, namespace: demo}}\nspec:\n  \
         model: {{modelRef: {{name: gpt}}}}\n{spec}"
    );
    let manifests = Manifests::parse(&format!("{MODEL}---\n{agent}")).unwrap();
    let agent = manifests.agents[0].clone();
    let observed = observe(&manifests, &agent);
    let config = render_runtime_config(&agent, &observed.references, &PodPaths::default()).unwrap();
    serde_json::to_value(build_network_policy(&agent, &config, api_server)).unwrap()
}

fn found_api_server() -> ApiServer {
    ApiServer { cidrs: ["10.96.0.1/32".to_owned(), "172.18.0.2/32".to_owned()].into(), ports: [443, 6443].into() }
}

fn tcp_ports(ports: &[u16]) -> Value {
    Value::Array(ports.iter().map(|p| json!({"port": p, "protocol": "TCP"})).collect())
}

fn namespace(name: &str) -> Value {
    json!({"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}})
}

fn public() -> Value {
    json!([
        {"ipBlock": {"cidr": "0.0.0.0/0", "except": NOT_PUBLIC_V4}},
        {"ipBlock": {"cidr": "::/0", "except": NOT_PUBLIC_V6}}
    ])
}

#[test]
fn restricted_egress_admits_dns_the_api_server_and_each_destination_the_spec_names() {
    let spec = "  memory: {backend: Qdrant, qdrant: {url: 'http://10.1.2.3:6334'}}
  tools:
    - {name: tickets, mcp: {url: 'http://tickets:8000/mcp'}}
    - {name: search, mcp: {url: 'https://search.tools.svc.cluster.local/mcp'}}
    - {name: web, builtin: {kind: httpGet, allowedUrls: ['https://docs.example.com/']}}
    - {name: reviewer, agent: {name: reviewer, namespace: review}}
  egress:
    to:
      - {cidr: 192.168.10.0/24, except: [192.168.10.1/32], ports: [5432]}
      - {namespace: monitoring}
";
    let policy = policy(spec, &found_api_server());
    assert_eq!(policy["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
    let expected = json!([
        {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]},
        {"to": [{"ipBlock": {"cidr": "10.96.0.1/32"}}, {"ipBlock": {"cidr": "172.18.0.2/32"}}], "ports": tcp_ports(&[443, 6443])},
        // In-cluster names admit their namespace on every port (the Service's port is not the pod's).
        {"to": [namespace("demo")]},
        {"to": [namespace("monitoring")]},
        {"to": [namespace("review")]},
        {"to": [namespace("tools")]},
        {"to": [{"ipBlock": {"cidr": "10.1.2.3/32"}}], "ports": tcp_ports(&[6334])},
        {"to": [{"ipBlock": {"cidr": "192.168.10.0/24", "except": ["192.168.10.1/32"]}}], "ports": tcp_ports(&[5432])},
        // The model and docs.example.com: public addresses on HTTPS only.
        {"to": public(), "ports": tcp_ports(&[443])},
    ]);
    assert_eq!(policy["spec"]["egress"], expected, "{:#}", policy["spec"]["egress"]);
}

#[test]
fn a_delegating_agent_reaches_its_own_namespace_on_the_runtime_port() {
    let policy = policy("  delegation: {enabled: true}\n", &found_api_server());
    let egress = policy["spec"]["egress"].as_array().unwrap();
    let own = egress.iter().find(|rule| rule["to"] == json!([namespace("demo")])).expect("a rule for demo");
    assert_eq!(own["ports"], tcp_ports(&[RUNTIME_PORT]));
}

#[test]
fn an_unknown_api_server_admits_its_usual_ports_anywhere_and_loopback_urls_add_nothing() {
    let spec = "  tools:\n    - {name: local, mcp: {url: 'http://localhost:9000/mcp'}}\n    - {name: loop, http: {url: 'http://127.0.0.1:7000/', description: d}}\n";
    let policy = policy(spec, &ApiServer::default());
    let egress = policy["spec"]["egress"].as_array().unwrap();
    assert_eq!(egress[1], json!({"ports": tcp_ports(&[443, 6443])}));
    assert_eq!(egress.len(), 3, "DNS, the API server and the model only: {egress:#?}");
}

#[test]
fn unrestricted_egress_puts_no_egress_rules_on_the_pod() {
    let policy = policy("  egress: {policy: Unrestricted}\n", &found_api_server());
    assert_eq!(policy["spec"]["policyTypes"], json!(["Ingress"]));
    assert!(policy["spec"]["egress"].is_null());
}

#[test]
fn the_metrics_port_is_open_to_every_namespace_and_the_api_port_to_the_allowed_ones() {
    let policy = policy("  api: {allowedNamespaces: [frontend]}\n", &found_api_server());
    let ingress = policy["spec"]["ingress"].as_array().unwrap();
    assert_eq!(ingress[0]["ports"], tcp_ports(&[RUNTIME_PORT]));
    assert_eq!(
        ingress[0]["from"][0]["namespaceSelector"]["matchExpressions"][0]["values"],
        json!(["demo", "frontend"])
    );
    assert_eq!(ingress[1], json!({"from": [{"namespaceSelector": {}}], "ports": tcp_ports(&[9090])}));
}
