use serde_json::{Value, json};

use super::*;

fn agent(value: Value) -> Agent {
    serde_json::from_value(value).unwrap()
}

fn parent() -> Agent {
    agent(json!({
        "apiVersion": "agent-operator.dev/v1alpha1", "kind": "Agent",
        "metadata": {"name": "lead", "namespace": "demo", "uid": "p-uid"},
        "spec": {
            "model": {"modelRef": {"name": "gpt-small"}},
            "tools": [
                {"name": "clock", "builtin": {"kind": "currentTime"}},
                {"name": "web", "builtin": {"kind": "httpGet", "allowedUrls": ["https://docs.example.com/"]}}
            ],
            "delegation": {"enabled": true, "maxChildren": 2, "maxDepth": 2, "models": ["gpt-large"], "tools": ["web"]}
        }
    }))
}

fn child(name: &str, created: &str) -> Value {
    json!({
        "apiVersion": "agent-operator.dev/v1alpha1", "kind": "Agent",
        "metadata": {
            "name": name, "namespace": "demo", "uid": format!("{name}-uid"), "creationTimestamp": created,
            "labels": {PARENT_LABEL: "lead", DEPTH_LABEL: "1"},
            "ownerReferences": [{"apiVersion": "agent-operator.dev/v1alpha1", "kind": "Agent", "name": "lead", "uid": "p-uid", "controller": true}]
        },
        "spec": {"model": {"modelRef": {"name": "gpt-small"}}}
    })
}

fn family(siblings: &[Value]) -> Family {
    Family { parent: Some(parent()), siblings: siblings.iter().cloned().map(agent).collect() }
}

fn refused(child: Value, family: &Family) -> String {
    check(&agent(child), family).unwrap_err()
}

#[test]
fn a_child_inside_every_bound_is_accepted() {
    let mut ok = child("c1", "2026-01-01T00:00:00Z");
    ok["spec"]["tools"] =
        json!([{"name": "web", "builtin": {"kind": "httpGet", "allowedUrls": ["https://docs.example.com/"]}}]);
    ok["spec"]["model"]["modelRef"]["name"] = json!("gpt-large");
    ok["spec"]["delegation"] =
        json!({"enabled": true, "maxDepth": 1, "maxChildren": 2, "models": ["gpt-small"], "tools": ["web"]});
    assert_eq!(check(&agent(ok.clone()), &family(&[ok])), Ok(()));
}

#[test]
fn a_missing_or_non_delegating_parent_refuses_the_child() {
    let none = Family::default();
    assert_eq!(
        refused(child("c1", "2026-01-01T00:00:00Z"), &none),
        "parent Agent lead (label agent-operator.dev/parent) does not exist in this namespace"
    );
    let mut quiet = parent();
    quiet.spec.delegation = None;
    let family = Family { parent: Some(quiet), siblings: Vec::new() };
    assert_eq!(
        refused(child("c1", "2026-01-01T00:00:00Z"), &family),
        "parent Agent lead does not have spec.delegation.enabled"
    );
}

#[test]
fn ownership_and_depth_must_point_at_the_parent() {
    let mut stray = child("c1", "2026-01-01T00:00:00Z");
    stray["metadata"]["ownerReferences"][0]["uid"] = json!("someone-else");
    stray["metadata"]["labels"][DEPTH_LABEL] = json!("2");
    let message = refused(stray, &family(&[]));
    assert!(message.contains("no controller ownerReference to its parent Agent lead"), "{message}");
    assert!(message.contains("label agent-operator.dev/delegation-depth must be 1"), "{message}");
}

#[test]
fn children_past_max_children_are_refused_in_creation_order() {
    let siblings =
        [child("b", "2026-01-01T00:00:00Z"), child("a", "2026-01-01T00:00:00Z"), child("c", "2026-01-01T00:01:00Z")];
    let family = family(&siblings);
    assert_eq!(check(&agent(siblings[1].clone()), &family), Ok(()), "a is first: same time, name first");
    assert_eq!(check(&agent(siblings[0].clone()), &family), Ok(()));
    assert_eq!(
        refused(siblings[2].clone(), &family),
        "delegation refused: parent Agent lead already has 2 children (delegation.maxChildren is 2)"
    );
    let mut leaving = siblings[0].clone();
    leaving["metadata"]["deletionTimestamp"] = json!("2026-01-02T00:00:00Z");
    let family = super::tests::family(&[siblings[1].clone(), leaving, siblings[2].clone()]);
    assert_eq!(check(&agent(siblings[2].clone()), &family), Ok(()), "a child being deleted frees its place");
}

#[test]
fn models_tools_and_secrets_outside_the_bounds_are_named() {
    let mut greedy = child("c1", "2026-01-01T00:00:00Z");
    greedy["spec"]["model"]["modelRef"]["name"] = json!("gpt-huge");
    greedy["spec"]["tools"] = json!([
        {"name": "clock", "builtin": {"kind": "currentTime"}},
        {"name": "web", "builtin": {"kind": "httpGet", "allowedUrls": ["https://intranet/"]}},
        {"name": "tickets", "mcp": {"url": "http://tickets/mcp", "authSecretRef": {"name": "t", "key": "k"}}}
    ]);
    greedy["spec"]["api"] = json!({"authSecretRef": {"name": "api", "key": "token"}});
    greedy["spec"]["egress"] = json!({"policy": "Unrestricted"});
    let message = refused(greedy, &family(&[]));
    for expected in [
        "Model gpt-huge is not one the parent allows (delegation.models and its own: gpt-large, gpt-small)",
        "tool clock is not in the parent's delegation.tools",
        "tool web differs from the parent's tool entry of that name",
        "tool tickets is not in the parent's delegation.tools",
        "a child cannot reference Secrets (api.authSecretRef, tools[tickets].mcp.authSecretRef)",
        "a child cannot widen its egress",
    ] {
        assert!(message.contains(expected), "{expected:?} missing from {message}");
    }
    let mut selecting = child("c1", "2026-01-01T00:00:00Z");
    selecting["spec"]["model"] = json!({"selector": {"capabilities": ["chat"]}});
    assert!(refused(selecting, &family(&[])).contains("a child must name its Model with model.modelRef"));
}

#[test]
fn the_parents_bound_model_is_allowed_when_it_selects_one() {
    let mut selecting = parent();
    selecting.spec.model.model_ref = None;
    selecting.status = Some(agent_crds::AgentStatus { bound_model: Some("gpt-bound".into()), ..Default::default() });
    let mut young = child("c1", "2026-01-01T00:00:00Z");
    young["spec"]["model"]["modelRef"]["name"] = json!("gpt-bound");
    assert_eq!(check(&agent(young), &Family { parent: Some(selecting), siblings: Vec::new() }), Ok(()));
}

#[test]
fn a_delegating_child_gets_strictly_smaller_bounds() {
    let mut ambitious = child("c1", "2026-01-01T00:00:00Z");
    ambitious["spec"]["delegation"] =
        json!({"enabled": true, "maxDepth": 2, "maxChildren": 5, "models": ["gpt-huge"], "tools": ["clock"]});
    let message = refused(ambitious.clone(), &family(&[]));
    for expected in [
        "delegation.maxDepth 2 must be below the parent's 2",
        "delegation.maxChildren 5 exceeds the parent's 2",
        "delegation.models gpt-huge are not allowed by the parent",
        "delegation.tools clock are not in the parent's",
    ] {
        assert!(message.contains(expected), "{expected:?} missing from {message}");
    }
    let mut default_parent = parent();
    default_parent.spec.delegation.as_mut().unwrap().max_depth = None;
    ambitious["spec"]["delegation"] = json!({"enabled": true});
    let family = Family { parent: Some(default_parent), siblings: Vec::new() };
    assert!(refused(ambitious, &family).contains("delegation.maxDepth 1 must be below the parent's 1"));
}

fn finished(state: &str, at: &str) -> Agent {
    let mut value = child("c1", "2026-01-01T00:00:00Z");
    value["status"] = json!({"lastTask": {"id": "t1", "state": state, "origin": "parent", "finished": at}});
    agent(value)
}

#[test]
fn a_finished_child_expires_after_the_parents_ttl() {
    let mut lead = parent();
    let now: Timestamp = "2026-01-01T01:00:00Z".parse().unwrap();
    assert_eq!(expiry(&finished("completed", "2026-01-01T00:00:00Z"), &lead, now), Expiry::Keep, "no TTL");
    lead.spec.delegation.as_mut().unwrap().ttl_seconds_after_finished = Some(600);
    assert_eq!(expiry(&finished("completed", "2026-01-01T00:00:00Z"), &lead, now), Expiry::Due);
    assert_eq!(expiry(&finished("failed", "2026-01-01T00:50:00Z"), &lead, now), Expiry::Due);
    assert_eq!(
        expiry(&finished("cancelled", "2026-01-01T00:55:00Z"), &lead, now),
        Expiry::In(Duration::from_secs(300))
    );
    assert_eq!(expiry(&finished("running", "2026-01-01T00:00:00Z"), &lead, now), Expiry::Keep);
    assert_eq!(expiry(&finished("input-required", "2026-01-01T00:00:00Z"), &lead, now), Expiry::Keep);
}
