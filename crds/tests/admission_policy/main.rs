//! The chart's ValidatingAdmissionPolicy for agents that create agents, as `helm template` renders
//! it: it applies only to agent runtimes (`<agent>-delegator` ServiceAccounts), admits a proper
//! child and a delete of an own child, and refuses every other write with a message naming the
//! rule. Expressions are evaluated with kube-cel (see `policy.rs` for what it does not cover).

#[path = "../common/mod.rs"]
mod common;
mod policy;

use kube::core::cel::{ScopeContext, Validator, WarningKind, analyze_rule, cel::Program, compile_schema};
use policy::{Outcome, Policy};
use serde_json::{Value, json};

const NAMESPACE: &str = "team-a";
const RUNTIME: &str = "system:serviceaccount:team-a:researcher-delegator";
/// JSON pointers of the child's parent and depth labels.
const PARENT: &str = "/metadata/labels/agent-operator.dev~1parent";
const DEPTH: &str = "/metadata/labels/agent-operator.dev~1delegation-depth";

fn shipped() -> Policy {
    Policy::from_rendered(&policy::rendered(&[]).0)
}

/// A child of the agent `researcher` as its runtime creates it: labelled, owned, no Secrets.
fn child() -> Value {
    json!({
        "apiVersion": "agent-operator.dev/v1alpha1",
        "kind": "Agent",
        "metadata": {
            "name": "researcher-web-1",
            "namespace": NAMESPACE,
            "labels": {"agent-operator.dev/parent": "researcher", "agent-operator.dev/delegation-depth": "1"},
            "ownerReferences": [{
                "apiVersion": "agent-operator.dev/v1alpha1",
                "kind": "Agent",
                "name": "researcher",
                "uid": "5f0c2b8e-3f4a-4d1e-9b7a-2c6d8e9f0a1b",
                "controller": true
            }]
        },
        "spec": {
            "model": {"modelRef": {"name": "small"}},
            "persona": {"systemPrompt": "You search the web and summarise what you find."},
            "task": {"mode": "Once", "input": "Find three recent papers on CEL cost estimation."},
            "tools": [{"name": "clock", "builtin": {"kind": "currentTime"}}]
        }
    })
}

/// The parent of the JSON pointer `pointer` and its last key, unescaped (`~1` is `/`).
fn split(pointer: &str) -> (&str, String) {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    (parent, key.replace("~1", "/").replace("~0", "~"))
}

/// `object` with the value at the JSON pointer `pointer` set (its parent must exist).
fn with(mut object: Value, pointer: &str, value: Value) -> Value {
    let (parent, key) = split(pointer);
    let slot = object.pointer_mut(parent).unwrap_or_else(|| panic!("no {parent}"));
    if let Some(list) = slot.as_array_mut() {
        list[key.parse::<usize>().unwrap()] = value;
    } else {
        slot[key.as_str()] = value;
    }
    object
}

/// `object` without the value at the JSON pointer `pointer`, which must exist.
fn without(mut object: Value, pointer: &str) -> Value {
    let (parent, key) = split(pointer);
    object.pointer_mut(parent).unwrap().as_object_mut().unwrap().remove(&key).unwrap_or_else(|| panic!("no {pointer}"));
    object
}

fn create(policy: &Policy, object: &Value) -> Outcome {
    policy.admit("CREATE", RUNTIME, NAMESPACE, Some(object), None)
}

fn assert_denied(outcome: Outcome, expected: &str, case: &str) {
    let Outcome::Denied(messages) = outcome else { panic!("{case}: admitted ({outcome:?}), should fail: {expected}") };
    assert_eq!(messages.len(), 1, "{case}: exactly one rule fails, got {messages:#?}");
    assert!(messages[0].contains(expected), "{case}: expected {expected:?}, got {:?}", messages[0]);
}

#[test]
fn the_test_child_is_a_valid_agent_for_the_crd_rules() {
    Validator::new().validate(&common::committed_schema("agents"), &child(), None).unwrap();
}

#[test]
fn a_runtime_may_create_a_labelled_owned_child_without_secrets() {
    let policy = shipped();
    assert_eq!(create(&policy, &child()), Outcome::Admitted);
    // Tools of every kind are fine as long as they name no Secret; empty lists and maps are unset.
    let tooled = with(
        with(child(), "/spec/api", json!({"fetchAllowedUrls": [], "allowedNamespaces": ["team-a"]})),
        "/spec/tools",
        json!([
            {"name": "clock", "builtin": {"kind": "currentTime"}},
            {"name": "tickets", "mcp": {"url": "http://tickets:8000/mcp", "headersFrom": []}},
            {"name": "peer", "agent": {"name": "planner"}},
            {"name": "weather", "http": {"description": "Weather by city", "url": "http://weather/api"}}
        ]),
    );
    let tooled = with(tooled, "/spec/runtime", json!({"nodeSelector": {}, "tolerations": []}));
    assert_eq!(create(&policy, &tooled), Outcome::Admitted);
}

#[test]
fn a_delegating_child_is_admitted_while_its_depth_budget_fits_the_chart_max_depth() {
    let policy = shipped();
    // Depth 1 plus maxDepth 2 reaches depth 3, the chart default.
    let delegating = with(child(), "/spec/delegation", json!({"enabled": true, "maxDepth": 2}));
    assert_eq!(create(&policy, &delegating), Outcome::Admitted);
    // Unset maxDepth counts as 1: depth 2 plus 1.
    let grandchild = with(with(child(), DEPTH, json!("2")), "/spec/delegation", json!({"enabled": true}));
    assert_eq!(create(&policy, &grandchild), Outcome::Admitted);
    // A disabled delegation block costs no depth.
    let disabled = with(child(), "/spec/delegation", json!({"enabled": false, "maxDepth": 5}));
    assert_eq!(create(&policy, &disabled), Outcome::Admitted);
}

/// Asserts each `(case, object, message)` is refused by exactly one rule, with that message.
fn assert_each_denied<const N: usize>(cases: [(&str, Value, &str); N]) {
    let policy = shipped();
    for (case, object, expected) in cases {
        assert_denied(create(&policy, &object), expected, case);
    }
}

#[test]
fn a_child_without_its_parent_label_depth_or_sole_controller_owner_is_refused_naming_the_rule() {
    let owner = "/metadata/ownerReferences/0";
    assert_each_denied([
        (
            "wrong parent label",
            with(child(), PARENT, json!("planner")),
            "agent-operator.dev/parent=researcher, not planner",
        ),
        ("no parent label", without(child(), PARENT), "agent-operator.dev/parent=researcher (it has none)"),
        ("depth 0", with(child(), DEPTH, json!("0")), "got \"0\""),
        ("depth beyond the chart's maxDepth", with(child(), DEPTH, json!("4")), "got \"4\""),
        ("depth not a number", with(child(), DEPTH, json!("one")), "got \"one\""),
        ("depth negative", with(child(), DEPTH, json!("-1")), "got \"-1\""),
        ("no depth label", without(child(), DEPTH), "got \"\""),
        ("no owner reference", without(child(), "/metadata/ownerReferences"), "(it has 0 owner reference(s))"),
        ("owned by another agent", with(child(), &format!("{owner}/name"), json!("planner")), ": Agent planner)"),
        (
            "owned by a Deployment",
            with(child(), &format!("{owner}/kind"), json!("Deployment")),
            ": Deployment researcher)",
        ),
        (
            "owner of another API group",
            with(child(), &format!("{owner}/apiVersion"), json!("apps/v1")),
            "owner reference",
        ),
        ("owner not the controller", with(child(), &format!("{owner}/controller"), json!(false)), "controller true"),
        ("owner without controller", without(child(), &format!("{owner}/controller")), "controller true"),
        (
            "a second owner",
            with(
                child(),
                "/metadata/ownerReferences",
                json!([child()["metadata"]["ownerReferences"][0], {"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "1"}]),
            ),
            "(it has 2 owner reference(s))",
        ),
    ]);
}

#[test]
fn a_child_referencing_a_secret_or_a_configmap_prompt_is_refused_naming_the_field() {
    let secret = json!({"name": "keys", "key": "token"});
    assert_each_denied([
        (
            "prompt from a ConfigMap",
            with(
                without(child(), "/spec/persona/systemPrompt"),
                "/spec/persona/systemPromptFrom",
                json!({"configMapKeyRef": secret}),
            ),
            "spec.persona.systemPromptFrom",
        ),
        (
            "prompt from a Secret",
            with(
                without(child(), "/spec/persona/systemPrompt"),
                "/spec/persona/systemPromptFrom",
                json!({"secretKeyRef": secret}),
            ),
            "spec.persona.systemPromptFrom",
        ),
        ("API key Secret", with(child(), "/spec/api", json!({"authSecretRef": secret})), "spec.api.authSecretRef"),
        (
            "Qdrant API key Secret",
            with(
                child(),
                "/spec/memory",
                json!({"backend": "Qdrant", "qdrant": {"url": "http://qdrant:6333", "apiKeySecretRef": secret}}),
            ),
            "spec.memory.qdrant.apiKeySecretRef",
        ),
        (
            "MCP bearer token Secret",
            with(
                child(),
                "/spec/tools/0",
                json!({"name": "tickets", "mcp": {"url": "http://tickets:8000/mcp", "authSecretRef": secret}}),
            ),
            "(mcp.authSecretRef, mcp.headersFrom): tool tickets",
        ),
        (
            "MCP header from a Secret",
            with(
                child(),
                "/spec/tools/0",
                json!({"name": "wiki", "mcp": {"url": "http://wiki:8000/mcp", "headersFrom": [{"name": "X-Api-Key", "secretKeyRef": secret}]}}),
            ),
            "(mcp.authSecretRef, mcp.headersFrom): tool wiki",
        ),
        (
            "A2A token Secret",
            with(
                child(),
                "/spec/tools/0",
                json!({"name": "peer", "agent": {"name": "planner", "tokenSecretRef": secret}}),
            ),
            "(agent.tokenSecretRef): tool peer",
        ),
    ]);
}

#[test]
fn a_child_with_pod_overrides_private_fetches_or_too_deep_delegation_is_refused_naming_the_rule() {
    assert_each_denied([
        (
            "runtime image",
            with(child(), "/spec/runtime", json!({"image": "evil.example/runtime:latest"})),
            "remove spec.runtime.image",
        ),
        (
            "resources and priority",
            with(
                child(),
                "/spec/runtime",
                json!({"resources": {"limits": {"cpu": "64"}}, "priorityClassName": "system-node-critical"}),
            ),
            "remove spec.runtime.resources, spec.runtime.priorityClassName",
        ),
        (
            "node selector",
            with(child(), "/spec/runtime", json!({"nodeSelector": {"gpu": "h100"}})),
            "spec.runtime.nodeSelector",
        ),
        (
            "tolerations",
            with(child(), "/spec/runtime", json!({"tolerations": [{"operator": "Exists"}]})),
            "spec.runtime.tolerations",
        ),
        ("Kueue queue", with(child(), "/spec/runtime", json!({"queueName": "urgent"})), "spec.runtime.queueName"),
        (
            "private fetches",
            with(child(), "/spec/api", json!({"fetchAllowedUrls": ["http://169.254.169.254/"]})),
            "spec.api.fetchAllowedUrls",
        ),
        (
            "egress opt-out",
            with(child(), "/spec/egress", json!({"policy": "Unrestricted"})),
            "a child Agent may not widen its egress",
        ),
        (
            "extra egress destination",
            with(child(), "/spec/egress", json!({"to": [{"cidr": "0.0.0.0/0"}]})),
            "a child Agent may not widen its egress",
        ),
        (
            "delegation too deep",
            with(child(), "/spec/delegation", json!({"enabled": true, "maxDepth": 3})),
            "at depth 1 with spec.delegation.maxDepth 3 would reach depth 4; the cluster allows at most 3",
        ),
        (
            "default delegation depth too deep",
            with(with(child(), DEPTH, json!("3")), "/spec/delegation", json!({"enabled": true})),
            "at depth 3 with spec.delegation.maxDepth 1 would reach depth 4",
        ),
    ]);
}

#[test]
fn a_depth_refusal_names_the_allowed_range() {
    let outcome = create(&shipped(), &with(child(), DEPTH, json!("9")));
    assert_denied(outcome, "must be a whole number from 1 to 3 (the chart value delegation.maxDepth)", "depth 9");
}

#[test]
fn a_runtime_may_not_write_agents_in_another_namespace() {
    let policy = shipped();
    let elsewhere = with(child(), "/metadata/namespace", json!("team-b"));
    let outcome = policy.admit("CREATE", RUNTIME, "team-b", Some(&elsewhere), None);
    assert_denied(outcome, "may only create and delete Agents in its own namespace, not in team-b", "create");
    let outcome = policy.admit("DELETE", RUNTIME, "team-b", None, Some(&elsewhere));
    assert_denied(outcome, "(namespace team-a) may only create and delete Agents", "delete");
}

#[test]
fn a_runtime_may_never_update_an_agent_even_its_own_child() {
    let old = child();
    let new = with(child(), "/spec/task/input", json!("Find ten papers instead."));
    let outcome = shipped().admit("UPDATE", RUNTIME, NAMESPACE, Some(&new), Some(&old));
    assert_denied(outcome, "agent runtime researcher may not update Agent researcher-web-1", "update");
}

#[test]
fn a_runtime_may_delete_its_own_child_only() {
    let policy = shipped();
    assert_eq!(policy.admit("DELETE", RUNTIME, NAMESPACE, None, Some(&child())), Outcome::Admitted);
    let foreign = with(child(), PARENT, json!("planner"));
    assert_denied(
        policy.admit("DELETE", RUNTIME, NAMESPACE, None, Some(&foreign)),
        "Agent researcher-web-1 is a child of planner",
        "another agent's child",
    );
    let top_level = without(child(), PARENT);
    assert_denied(
        policy.admit("DELETE", RUNTIME, NAMESPACE, None, Some(&top_level)),
        "may only delete its own children (label agent-operator.dev/parent=researcher); Agent researcher-web-1 is not a child of any agent",
        "a top-level agent",
    );
}

#[test]
fn requests_from_anyone_but_an_agent_runtime_are_not_matched() {
    let policy = shipped();
    let unbounded = with(child(), "/spec/runtime", json!({"image": "anything:latest"}));
    for user in [
        "alice",
        "system:serviceaccount:ci:deployer",
        "system:serviceaccount:agent-operator:agent-operator",
        "system:node:gpu-1-delegator",
        "system:serviceaccount:team-a:delegator",
        "system:serviceaccount:team-a:researcher-delegator:extra",
    ] {
        assert_eq!(policy.admit("CREATE", user, NAMESPACE, Some(&unbounded), None), Outcome::NotMatched, "{user}");
        assert_eq!(policy.admit("UPDATE", user, NAMESPACE, Some(&unbounded), Some(&child())), Outcome::NotMatched);
    }
    // The same object from the runtime is refused: the match, not a lax rule, lets it through.
    assert!(matches!(create(&policy, &unbounded), Outcome::Denied(_)));
}

#[test]
fn the_parent_is_the_service_account_name_without_its_delegator_suffix() {
    let policy = shipped();
    let user = "system:serviceaccount:team-a:web-delegator-delegator";
    let mut object = with(child(), PARENT, json!("web-delegator"));
    object = with(object, "/metadata/ownerReferences/0/name", json!("web-delegator"));
    assert_eq!(policy.admit("CREATE", user, NAMESPACE, Some(&object), None), Outcome::Admitted);
    assert!(matches!(create(&policy, &object), Outcome::Denied(_)), "researcher's runtime cannot create it");
}

#[test]
fn the_chart_value_delegation_max_depth_bounds_the_depth() {
    let deep = with(with(child(), DEPTH, json!("4")), "/spec/delegation", json!({"enabled": true}));
    assert!(matches!(create(&shipped(), &deep), Outcome::Denied(_)), "depth 4 is beyond the default 3");
    let five = Policy::from_rendered(&policy::rendered(&["delegation.maxDepth=5"]).0);
    assert_eq!(create(&five, &deep), Outcome::Admitted);
    let too_deep = with(deep, "/spec/delegation/maxDepth", json!(2));
    assert_denied(create(&five, &too_deep), "would reach depth 6; the cluster allows at most 5", "maxDepth=5");
}

#[test]
fn the_binding_denies_with_the_shipped_policy_and_both_can_be_turned_off() {
    let (policy, binding) = policy::rendered(&[]);
    assert_eq!(policy["apiVersion"], "admissionregistration.k8s.io/v1");
    assert_eq!(policy["spec"]["failurePolicy"], "Fail");
    assert_eq!(binding["spec"]["policyName"], policy["metadata"]["name"]);
    assert_eq!(binding["spec"]["validationActions"], json!(["Deny"]));
    let off = policy::render(None, &["delegation.admissionPolicy.enabled=false"]);
    assert!(off.iter().all(|d| !d["kind"].as_str().unwrap_or_default().starts_with("ValidatingAdmissionPolicy")));
    assert!(off.iter().any(|d| d["kind"] == "Deployment"), "the rest of the chart still renders");
}

/// The variables bound by comprehension macros (`list.all(t, ...)`): kube-cel's scope check
/// reports them as unknown variables, although CEL binds them.
fn macro_variables(expression: &str) -> Vec<String> {
    [".all(", ".exists(", ".exists_one(", ".map(", ".filter("]
        .iter()
        .flat_map(|call| expression.match_indices(call).map(move |(at, _)| &expression[at + call.len()..]))
        .filter_map(|rest| rest.split_once(',').map(|(name, _)| name.trim().to_owned()))
        .collect()
}

#[test]
fn every_policy_expression_compiles_and_stays_within_the_cost_budget() {
    let (rendered, _) = policy::rendered(&[]);
    let schema = compile_schema(&common::committed_schema("agents"));
    let expressions = policy::expressions(&rendered);
    assert!(expressions.len() >= 25, "expected the policy's expressions, found {}", expressions.len());
    for (place, expression) in expressions {
        Program::compile(&expression).unwrap_or_else(|e| panic!("{place}: `{expression}` does not compile: {e}"));
        let bound = macro_variables(&expression);
        let serious: Vec<_> = analyze_rule(&expression, &schema, ScopeContext::AdmissionPolicy)
            .into_iter()
            .filter(|w| matches!(w.kind, WarningKind::WrongScope | WarningKind::CostExceeded))
            .filter(|w| !bound.iter().any(|name| w.message.starts_with(&format!("variable '{name}' is not"))))
            .map(|w| w.message)
            .collect();
        assert!(serious.is_empty(), "{place}: `{expression}`: {serious:?}");
    }
}
