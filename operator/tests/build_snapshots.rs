//! Snapshots of every object built for the example agents, so any change to what the operator
//! applies shows up in review.

mod support;

use agent_crds::manifests::Manifests;
use agent_operator::offline::{children, children_as_values};
use support::{pod_security_violations, repo_root};

fn children_of(file: &str, agent: &str) -> Vec<serde_json::Value> {
    let manifests = Manifests::parse(&std::fs::read_to_string(repo_root().join(file)).unwrap()).unwrap();
    let agent = manifests.agents.iter().find(|a| a.metadata.name.as_deref() == Some(agent)).unwrap();
    children_as_values(&children(&manifests, agent, "ghcr.io/agent-operator/agent-runtime:0.1.0").unwrap())
}

/// The built object of `kind` (the first, for kinds built more than once).
fn of_kind<'a>(children: &'a [serde_json::Value], kind: &str) -> &'a serde_json::Value {
    children.iter().find(|c| c["kind"] == kind).unwrap_or_else(|| panic!("no {kind} built"))
}

#[test]
fn chat_agent_children() {
    insta::assert_yaml_snapshot!(children_of("examples/chat-agent.yaml", "helpdesk"));
}

#[test]
fn rag_agent_children() {
    insta::assert_yaml_snapshot!(children_of("examples/rag-agent.yaml", "researcher"));
}

#[test]
fn suspended_agent_children() {
    insta::assert_yaml_snapshot!(children_of("examples/suspended-agent.yaml", "incident-report"));
}

#[test]
fn secrets_are_mounted_as_files_and_never_copied_into_the_config_map() {
    let children = children_of("examples/chat-agent.yaml", "helpdesk");
    let config = of_kind(&children, "ConfigMap")["data"]["runtime-config.json"].as_str().unwrap();
    let config: serde_json::Value = serde_json::from_str(config).unwrap();
    assert_eq!(config["model"]["apiKeyFile"], "/var/run/agent-operator/secrets/openai/api-key");
    assert_eq!(config["server"]["apiKeyFile"], "/var/run/agent-operator/secrets/helpdesk-api/token");
    let pod = &of_kind(&children, "StatefulSet")["spec"]["template"]["spec"];
    let mounts: Vec<&str> = pod["containers"][0]["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["mountPath"].as_str().unwrap())
        .collect();
    assert!(mounts.contains(&"/var/run/agent-operator/secrets/openai"), "{mounts:?}");
    assert!(mounts.contains(&"/var/run/agent-operator/secrets/helpdesk-api"), "{mounts:?}");
}

#[test]
fn the_pod_is_hardened_and_probed() {
    let children = children_of("examples/chat-agent.yaml", "helpdesk");
    let pod = &of_kind(&children, "StatefulSet")["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(container["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(container["securityContext"]["capabilities"]["drop"], serde_json::json!(["ALL"]));
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
}

#[test]
fn a_config_change_rolls_the_pod_through_the_config_hash() {
    let text = std::fs::read_to_string(repo_root().join("examples/chat-agent.yaml")).unwrap();
    let hash = |text: &str| {
        let manifests = Manifests::parse(text).unwrap();
        let built = children(&manifests, &manifests.agents[0], "runtime:test").unwrap();
        built.stateful_set.spec.unwrap().template.metadata.unwrap().annotations.unwrap()["agent-operator.dev/config-hash"].clone()
    };
    let changed = text.replace("temperature: 0.2", "temperature: 0.7");
    assert_ne!(hash(&text), hash(&changed));
    assert_eq!(hash(&text), hash(&text));
}

#[test]
fn the_runtime_reaches_the_api_with_its_mounted_token_bound_to_its_own_role() {
    let children = children_of("examples/chat-agent.yaml", "helpdesk");
    let config = of_kind(&children, "ConfigMap")["data"]["runtime-config.json"].as_str().unwrap();
    let config: serde_json::Value = serde_json::from_str(config).unwrap();
    assert_eq!(
        config["cluster"],
        serde_json::json!({
            "apiUrl": "https://kubernetes.default.svc",
            "tokenFile": "/var/run/secrets/kubernetes.io/serviceaccount/token",
            "caFile": "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
        })
    );
    assert_eq!(of_kind(&children, "ServiceAccount")["automountServiceAccountToken"], true);
    let pod = &of_kind(&children, "StatefulSet")["spec"]["template"]["spec"];
    assert_eq!(
        (pod["serviceAccountName"].as_str(), pod["automountServiceAccountToken"].as_bool()),
        (Some("helpdesk"), Some(true))
    );
    let binding = of_kind(&children, "RoleBinding");
    assert_eq!(binding["roleRef"]["name"], of_kind(&children, "Role")["metadata"]["name"]);
    assert_eq!(binding["subjects"][0]["name"], "helpdesk");
    let kinds: Vec<&str> = children.iter().map(|c| c["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds[..3], ["ServiceAccount", "Role", "RoleBinding"], "identity and rights come before the pod");
}

#[test]
fn every_agent_pod_meets_the_restricted_pod_security_standard() {
    for (file, agent) in [
        ("examples/chat-agent.yaml", "helpdesk"),
        ("examples/rag-agent.yaml", "researcher"),
        ("examples/suspended-agent.yaml", "incident-report"),
    ] {
        let children = children_of(file, agent);
        let pod = &of_kind(&children, "StatefulSet")["spec"]["template"];
        assert_eq!(pod_security_violations(pod, true), Vec::<String>::new(), "{file} {agent}");
    }
    // The checker sees what restricted forbids.
    let children = children_of("examples/chat-agent.yaml", "helpdesk");
    let mut pod = of_kind(&children, "StatefulSet")["spec"]["template"].clone();
    pod["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = serde_json::json!(true);
    pod["spec"]["volumes"][0] = serde_json::json!({"name": "host", "hostPath": {"path": "/"}});
    let violations = pod_security_violations(&pod, true);
    assert_eq!(violations.len(), 3, "{violations:?}");
}
