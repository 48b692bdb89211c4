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

/// The children of an agent in `demo` whose operator exports traces as `traces` says.
fn built_with_traces(traces: agent_crds::runtime_config::TracesConfig) -> crate::agent::build::Children {
    let agent = "apiVersion: agent-operator.dev/v1alpha1\nkind: Agent\nmetadata: {name: helper, namespace: demo}\nspec:\n  \
                 model: {modelRef: {name: gpt}}\n";
    let manifests = Manifests::parse(&format!("{MODEL}---\n{agent}")).unwrap();
    let agent = manifests.agents[0].clone();
    let observed = observe(&manifests, &agent);
    let mut config = render_runtime_config(&agent, &observed.references, &PodPaths::default()).unwrap();
    config.traces = Some(traces);
    let input = crate::agent::build::BuildInput {
        agent: &agent,
        config: &config,
        paths: &PodPaths::default(),
        default_image: "runtime:test",
        secret_keys: &observed.secret_keys,
        existing_claim_size: None,
        existing_claim_request: None,
        api_server: &found_api_server(),
    };
    crate::agent::build::build(&input).unwrap()
}

#[test]
fn an_agent_exports_traces_where_the_operator_does_and_its_egress_admits_the_collector() {
    let traces = crate::telemetry::agent_traces(|name| match name {
        "OTEL_EXPORTER_OTLP_ENDPOINT" => Some("http://otel-collector.observability.svc:4317".to_owned()),
        "OTEL_EXPORTER_OTLP_PROTOCOL" => Some("grpc".to_owned()),
        "OTEL_TRACES_SAMPLER" => Some("parentbased_traceidratio".to_owned()),
        "OTEL_TRACES_SAMPLER_ARG" => Some("0.25".to_owned()),
        _ => None,
    })
    .expect("an endpoint exports");
    let children = built_with_traces(traces);
    let pod = children.stateful_set.spec.unwrap().template.spec.unwrap();
    let env: Vec<(String, Option<String>)> =
        pod.containers[0].env.clone().unwrap().into_iter().map(|e| (e.name, e.value)).collect();
    for (name, value) in [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel-collector.observability.svc:4317"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
        ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
        ("OTEL_SERVICE_NAME", "helper"),
        ("OTEL_RESOURCE_ATTRIBUTES", "k8s.namespace.name=demo,k8s.pod.name=$(POD_NAME),service.namespace=demo"),
    ] {
        assert!(env.contains(&(name.to_owned(), Some(value.to_owned()))), "{name}={value} in {env:?}");
    }
    let names: Vec<&str> = env.iter().map(|(n, _)| n.as_str()).collect();
    let pod_name = names.iter().position(|n| *n == "POD_NAME").expect("POD_NAME from the downward API");
    let attributes = names.iter().position(|n| *n == "OTEL_RESOURCE_ATTRIBUTES").unwrap();
    assert!(pod_name < attributes, "$(POD_NAME) expands only from a variable defined before it");
    assert!(!names.contains(&"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"), "no content by default");
    let policy = serde_json::to_value(children.network_policy).unwrap();
    let egress = policy["spec"]["egress"].as_array().unwrap();
    assert!(egress.iter().any(|r| r["to"] == json!([namespace("observability")])), "collector admitted: {egress:#?}");
}

#[test]
fn without_an_otlp_endpoint_agents_export_nothing() {
    assert_eq!(crate::telemetry::agent_traces(|_| None), None);
    let disabled = |name: &str| match name {
        "OTEL_EXPORTER_OTLP_ENDPOINT" => Some("http://collector:4318".to_owned()),
        "OTEL_SDK_DISABLED" => Some("true".to_owned()),
        _ => None,
    };
    assert_eq!(crate::telemetry::agent_traces(disabled), None);
    let children = built_with_traces(agent_crds::runtime_config::TracesConfig::default());
    let pod = children.stateful_set.spec.unwrap().template.spec.unwrap();
    let env = pod.containers[0].env.clone().unwrap();
    assert!(env.iter().all(|e| !e.name.starts_with("OTEL_EXPORTER")), "{env:?}");
}
