//! Reconcile tests against kube-rs's mocked API server: the exact calls an Agent reconcile makes.

mod support;

use std::sync::Arc;
use std::time::Duration;

use agent_crds::Agent;
use agent_crds::schedule::task_generation;
use agent_operator::agent::{error_policy, reconcile};
use agent_operator::context::Context;
use agent_operator::fair_share::{DEFERRED_RETRY, NamespaceShare};
use agent_operator::metrics::Metrics;
use agent_operator::stores::WrittenVersions;
use kube::runtime::controller::Action;
use serde_json::{Value, json};
use support::{Call, Cluster, example, ready, secret};

const FILE: &str = "examples/chat-agent.yaml";
const AGENTS: &str = "/apis/agent-operator.dev/v1alpha1/namespaces/demo/agents";

fn helpdesk() -> Value {
    let mut agent = example(FILE, "Agent", "helpdesk");
    agent["metadata"]["uid"] = json!("5f0c4a2e-1111-2222-3333-444455556666");
    agent["metadata"]["generation"] = json!(1);
    agent
}

fn cluster_with_model_and_secrets() -> Cluster {
    let cluster = Cluster::default();
    cluster.put(ready(example(FILE, "Model", "gpt-small"))).put(secret("demo", "openai", &["api-key"])).put(secret(
        "demo",
        "helpdesk-api",
        &["token"],
    ));
    cluster
}

/// Runs one reconcile of `agent` against `cluster`; returns its result and every call made.
async fn run(cluster: &Cluster, agent: &Value) -> (Result<Action, String>, Vec<Call>, Arc<Metrics>) {
    run_remembering(cluster, agent, &Arc::default()).await
}

/// [`run`] with the versions earlier reconciles' writes left, as in one operator process.
async fn run_remembering(
    cluster: &Cluster,
    agent: &Value,
    written: &Arc<WrittenVersions>,
) -> (Result<Action, String>, Vec<Call>, Arc<Metrics>) {
    cluster.put(agent.clone());
    let (client, calls) = cluster.client();
    let metrics = Arc::new(Metrics::default());
    let mut ctx = Context::new(client, metrics.clone(), "runtime:test".to_owned(), Some("test".to_owned()));
    ctx.caches.written = written.clone();
    let ctx = Arc::new(ctx);
    // The stores hold what the watches would have listed.
    ctx.caches.observe(&cluster.objects());
    let agent: Agent = serde_json::from_value(agent.clone()).unwrap();
    let agent = Arc::new(agent);
    let result = reconcile(agent.clone(), ctx.clone()).await;
    let result = result.map_err(|error| {
        let action = error_policy(agent, &error, ctx.clone());
        assert!(action != Action::await_change(), "a transient error must be retried");
        error.to_string()
    });
    drop(ctx);
    let calls = tokio::time::timeout(Duration::from_secs(5), calls).await.unwrap().unwrap();
    (result, calls, metrics)
}

fn writes(calls: &[Call]) -> Vec<String> {
    calls.iter().filter(|c| c.is_write()).map(|c| format!("{} {}", c.method, c.path)).collect()
}

fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["conditions"].as_array().unwrap().iter().find(|c| c["type"] == type_).unwrap_or_else(|| panic!("no {type_}"))
}

fn status_patch(calls: &[Call]) -> &Value {
    let call = calls.iter().find(|c| c.path.ends_with("/status")).expect("a status patch");
    &call.body.as_ref().unwrap()["status"]
}

#[tokio::test]
async fn a_new_agent_applies_its_children_in_order_and_sets_status() {
    let cluster = cluster_with_model_and_secrets();
    let (result, calls, _) = run(&cluster, &helpdesk()).await;
    assert_eq!(result, Ok(Action::requeue(Duration::from_secs(600))));
    assert_eq!(
        writes(&calls),
        [
            "PATCH /api/v1/namespaces/demo/serviceaccounts/helpdesk",
            "PATCH /apis/rbac.authorization.k8s.io/v1/namespaces/demo/roles/helpdesk",
            "PATCH /apis/rbac.authorization.k8s.io/v1/namespaces/demo/rolebindings/helpdesk",
            "PATCH /api/v1/namespaces/demo/configmaps/helpdesk-runtime",
            "PATCH /api/v1/namespaces/demo/services/helpdesk-headless",
            "PATCH /api/v1/namespaces/demo/services/helpdesk",
            "PATCH /apis/networking.k8s.io/v1/namespaces/demo/networkpolicies/helpdesk",
            "PATCH /apis/apps/v1/namespaces/demo/statefulsets/helpdesk",
            "PATCH /apis/agent-operator.dev/v1alpha1/namespaces/demo/agents/helpdesk/status",
        ]
    );
    for call in calls.iter().filter(|c| c.is_write()) {
        assert!(call.query.contains("fieldManager=agent-operator") && call.query.contains("force=true"), "{call:?}");
        let body = call.body.as_ref().unwrap();
        if !call.path.ends_with("/status") {
            let owner = &body["metadata"]["ownerReferences"][0];
            assert_eq!(
                (owner["kind"].as_str(), owner["name"].as_str(), owner["controller"].as_bool()),
                (Some("Agent"), Some("helpdesk"), Some(true))
            );
        }
    }
    let status = status_patch(&calls);
    assert_eq!(condition(status, "Accepted")["status"], "True");
    assert_eq!(condition(status, "ModelReady")["status"], "True");
    assert_eq!(condition(status, "Ready")["reason"], "PodNotReady");
    assert_eq!(status["observedGeneration"], 1);
    assert_eq!(status["boundModel"], "gpt-small");
    assert_eq!(status["endpoint"], "http://helpdesk.demo.svc:8080");
}

/// The agent as the API server holds it after a reconcile (status included).
fn stored_agent(cluster: &Cluster) -> Value {
    cluster.get(&format!("{AGENTS}/helpdesk")).expect("the agent is stored")
}

#[tokio::test]
async fn an_unchanged_agent_causes_no_write() {
    let cluster = cluster_with_model_and_secrets();
    let written = Arc::default();
    assert!(run_remembering(&cluster, &helpdesk(), &written).await.0.is_ok());
    let (result, second, _) = run_remembering(&cluster, &stored_agent(&cluster), &written).await;
    assert_eq!(result, Ok(Action::requeue(Duration::from_secs(600))));
    assert_eq!(writes(&second), Vec::<String>::new(), "an unchanged agent must not write");
    assert!(second.is_empty(), "at rest a reconcile reads from the stores and sends nothing: {second:#?}");
}

#[tokio::test]
async fn a_child_someone_else_changed_is_reapplied_alone() {
    let cluster = cluster_with_model_and_secrets();
    let written = Arc::default();
    assert!(run_remembering(&cluster, &helpdesk(), &written).await.0.is_ok());
    // Someone edits the Service (the API server moves its resourceVersion) and the StatefulSet's
    // spec (its generation moves); the caches hold only digests and versions.
    let mut tampered = cluster.get("/api/v1/namespaces/demo/services/helpdesk").unwrap();
    tampered["spec"]["ports"][0]["port"] = json!(9999);
    tampered["metadata"]["resourceVersion"] = json!("900");
    cluster.put(tampered);
    let mut scaled = cluster.get("/apis/apps/v1/namespaces/demo/statefulsets/helpdesk").unwrap();
    scaled["spec"]["replicas"] = json!(3);
    scaled["metadata"]["generation"] = json!(7);
    scaled["metadata"]["resourceVersion"] = json!("901");
    cluster.put(scaled);

    let (_, second, _) = run_remembering(&cluster, &stored_agent(&cluster), &written).await;
    assert_eq!(
        writes(&second),
        [
            "PATCH /api/v1/namespaces/demo/services/helpdesk",
            "PATCH /apis/apps/v1/namespaces/demo/statefulsets/helpdesk"
        ]
    );
}

#[tokio::test]
async fn a_status_change_of_the_stateful_set_is_no_drift() {
    let cluster = cluster_with_model_and_secrets();
    let written = Arc::default();
    assert!(run_remembering(&cluster, &helpdesk(), &written).await.0.is_ok());
    let mut progressed = cluster.get("/apis/apps/v1/namespaces/demo/statefulsets/helpdesk").unwrap();
    progressed["status"] = json!({"replicas": 1, "readyReplicas": 1, "availableReplicas": 1});
    progressed["metadata"]["resourceVersion"] = json!("950");
    cluster.put(progressed);
    let (_, second, _) = run_remembering(&cluster, &stored_agent(&cluster), &written).await;
    let children: Vec<String> = writes(&second).into_iter().filter(|w| !w.ends_with("/status")).collect();
    assert_eq!(children, Vec::<String>::new(), "only the Agent's status may change when its pod is ready");
}

#[tokio::test]
async fn an_invalid_agent_gets_a_warning_event_and_no_children() {
    let cluster = cluster_with_model_and_secrets();
    let mut agent = helpdesk();
    agent["spec"]["task"] = json!({"mode": "Schedule", "schedule": "61 * * * *", "input": "report"});
    let (result, calls, _) = run(&cluster, &agent).await;
    assert_eq!(result, Ok(Action::await_change()), "an invalid spec waits for a change instead of retrying");
    assert_eq!(
        writes(&calls),
        [
            "POST /apis/events.k8s.io/v1/namespaces/demo/events",
            "PATCH /apis/agent-operator.dev/v1alpha1/namespaces/demo/agents/helpdesk/status",
        ]
    );
    let event = calls[calls.len() - 2].body.as_ref().unwrap();
    assert_eq!((event["type"].as_str(), event["reason"].as_str()), (Some("Warning"), Some("InvalidSpec")));
    assert!(event["note"].as_str().unwrap().contains("task.schedule"), "{event}");
    let accepted = condition(status_patch(&calls), "Accepted");
    assert_eq!((accepted["status"].as_str(), accepted["reason"].as_str()), (Some("False"), Some("InvalidSpec")));
    assert!(accepted["message"].as_str().unwrap().contains("61 * * * *"));

    let (_, again, _) = run(&cluster, &stored_agent(&cluster)).await;
    assert_eq!(writes(&again), Vec::<String>::new(), "no repeated event or status write while nothing changes");
}

#[tokio::test]
async fn once_and_schedule_agents_are_accepted_and_their_config_carries_the_task_generation_and_policies() {
    let cluster = cluster_with_model_and_secrets();
    let mut agent = helpdesk();
    let task = json!({"mode": "Once", "input": "summarise the open tickets", "completionPolicy": "Suspend"});
    agent["spec"]["task"] = task.clone();
    let (result, calls, _) = run(&cluster, &agent).await;
    assert_eq!(result, Ok(Action::requeue(Duration::from_secs(600))));
    assert_eq!(condition(status_patch(&calls), "Accepted")["status"], "True");
    let generation = task_generation(&serde_json::from_value(task).unwrap());
    let config = runtime_config(&calls);
    assert_eq!(config["task"]["mode"], "Once");
    assert_eq!(config["task"]["input"], "summarise the open tickets");
    assert_eq!(config["task"]["generation"], generation.as_str());
    let succeeded = condition(status_patch(&calls), "TaskSucceeded");
    assert_eq!((succeeded["status"].as_str(), succeeded["reason"].as_str()), (Some("Unknown"), Some("TaskPending")));

    let cluster = cluster_with_model_and_secrets();
    let mut scheduled = helpdesk();
    scheduled["spec"]["task"] = json!({
        "mode": "Schedule", "schedule": "0 2 * * *", "input": "report", "concurrencyPolicy": "Replace",
        "startingDeadlineSeconds": 300, "successfulRunsHistoryLimit": 5, "failedRunsHistoryLimit": 2
    });
    let (result, calls, _) = run(&cluster, &scheduled).await;
    assert_eq!(result, Ok(Action::requeue(Duration::from_secs(600))));
    let status = status_patch(&calls);
    assert_eq!(condition(status, "Accepted")["status"], "True");
    assert!(!status["conditions"].to_string().contains("TaskSucceeded"), "only Once agents have TaskSucceeded");
    let task = &runtime_config(&calls)["task"];
    assert_eq!(
        (task["schedule"].as_str(), task["concurrencyPolicy"].as_str(), task["startingDeadlineSeconds"].as_u64()),
        (Some("0 2 * * *"), Some("Replace"), Some(300))
    );
    assert_eq!(
        (task["successfulRunsHistoryLimit"].as_u64(), task["failedRunsHistoryLimit"].as_u64()),
        (Some(5), Some(2))
    );
    assert_eq!(task["generation"].as_str().map(str::len), Some(16));
}

#[tokio::test]
async fn a_missing_model_gives_model_ready_false_with_a_reason_and_no_children() {
    let cluster = Cluster::default();
    cluster.put(secret("demo", "helpdesk-api", &["token"]));
    let (result, calls, _) = run(&cluster, &helpdesk()).await;
    assert_eq!(result, Ok(Action::await_change()), "the Model watch wakes the agent when the Model appears");
    assert_eq!(writes(&calls), ["PATCH /apis/agent-operator.dev/v1alpha1/namespaces/demo/agents/helpdesk/status"]);
    let status = status_patch(&calls);
    let model_ready = condition(status, "ModelReady");
    assert_eq!(
        (model_ready["status"].as_str(), model_ready["reason"].as_str()),
        (Some("False"), Some("ModelNotFound"))
    );
    assert_eq!(model_ready["message"], "Model gpt-small not found in namespace demo");
    assert_eq!(condition(status, "Accepted")["status"], "True");
    assert_eq!(condition(status, "Ready")["reason"], "ModelNotFound");
}

#[tokio::test]
async fn secrets_are_mounted_by_name_and_never_read() {
    // No Secret exists at all: the operator does not read them (it holds no Secret access); the
    // pod mounts them by name and the runtime reloads rotated values itself.
    let cluster = Cluster::default();
    cluster.put(ready(example(FILE, "Model", "gpt-small")));
    let (result, calls, _) = run(&cluster, &helpdesk()).await;
    assert_eq!(result, Ok(Action::requeue(Duration::from_secs(600))));
    assert!(!calls.iter().any(|c| c.path.contains("/secrets")), "no Secret is read: {calls:#?}");
    let stateful_set =
        calls.iter().find(|c| c.path.ends_with("/statefulsets/helpdesk")).unwrap().body.as_ref().unwrap();
    let volumes: Vec<&str> = stateful_set["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["secret"]["secretName"].as_str())
        .collect();
    assert_eq!(volumes, ["helpdesk-api", "openai"], "whole-Secret volumes, so the kubelet updates them in place");
}

#[tokio::test]
async fn a_failed_apply_is_counted_reported_and_retried_with_backoff() {
    let cluster = cluster_with_model_and_secrets();
    cluster.fail_writes_to("/apis/apps/v1/namespaces/demo/statefulsets/helpdesk");
    let (result, calls, metrics) = run(&cluster, &helpdesk()).await;
    let error = result.unwrap_err();
    assert!(error.contains("applying StatefulSet helpdesk"), "{error}");
    assert!(!calls.iter().any(|c| c.path.ends_with("/status")), "no status write after a failed apply");
    let event = calls.iter().rev().find(|c| c.path.ends_with("/events")).unwrap().body.clone().unwrap();
    assert_eq!(event["reason"], "ReconcileFailed");
    let text = metrics.encode();
    assert!(text.contains(r#"agent_operator_reconcile_failures_total{kind="Agent",category="apply"} 1"#), "{text}");
}

#[tokio::test]
async fn a_suspended_agent_scales_to_zero_and_keeps_its_volume() {
    let cluster = cluster_with_model_and_secrets();
    let mut agent = helpdesk();
    agent["spec"]["operatingMode"] = json!("Suspended");
    let (_, calls, _) = run(&cluster, &agent).await;
    let sts = calls
        .iter()
        .find(|c| c.is_write() && c.path.ends_with("/statefulsets/helpdesk"))
        .unwrap()
        .body
        .clone()
        .unwrap();
    assert_eq!(sts["spec"]["replicas"], 0);
    assert_eq!(
        sts["spec"]["persistentVolumeClaimRetentionPolicy"],
        json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
    );
    assert_eq!(condition(status_patch(&calls), "Ready")["reason"], "Suspended");
}

#[tokio::test]
async fn a_grown_storage_request_resizes_the_existing_claim_not_the_immutable_template() {
    let cluster = cluster_with_model_and_secrets();
    assert!(run(&cluster, &helpdesk()).await.0.is_ok());
    let mut agent = stored_agent(&cluster);
    cluster.put(json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data-helpdesk-0", "namespace": "demo"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi"}}}
    }));
    agent["spec"]["memory"]["storage"]["size"] = json!("5Gi");
    agent["metadata"]["generation"] = json!(2);

    let (_, second, _) = run(&cluster, &agent).await;
    let written = writes(&second);
    assert!(
        written.contains(&"PATCH /api/v1/namespaces/demo/persistentvolumeclaims/data-helpdesk-0".to_owned()),
        "{written:?}"
    );
    let claim =
        second.iter().find(|c| c.is_write() && c.path.ends_with("data-helpdesk-0")).unwrap().body.clone().unwrap();
    assert_eq!(claim["spec"]["resources"]["requests"]["storage"], "5Gi");
    if let Some(sts) = second.iter().find(|c| c.is_write() && c.path.ends_with("/statefulsets/helpdesk")) {
        let template = &sts.body.as_ref().unwrap()["spec"]["volumeClaimTemplates"][0];
        assert_eq!(template["spec"]["resources"]["requests"]["storage"], "2Gi", "claim templates are immutable");
    }
}

// --- recipes: the Recipe in the agent's namespace, else the built-in catalogue ---

const RECIPES: &str = "/apis/agent-operator.dev/v1alpha1/namespaces/demo/recipes";

/// The helpdesk agent answering from its documents with `recipe` and `parameters`.
fn with_recipe(recipe: &str, parameters: &Value) -> Value {
    let mut agent = helpdesk();
    agent["spec"]["knowledge"] = json!({"recipe": recipe, "parameters": parameters});
    agent
}

/// The RuntimeConfig the reconcile wrote into the agent's ConfigMap.
fn runtime_config(calls: &[Call]) -> Value {
    let call = calls
        .iter()
        .find(|c| c.is_write() && c.path.ends_with("/configmaps/helpdesk-runtime"))
        .expect("the runtime ConfigMap is applied");
    let text = call.body.as_ref().unwrap()["data"]["runtime-config.json"].as_str().expect("the config key").to_owned();
    serde_json::from_str(&text).unwrap()
}

/// A Recipe object in namespace demo.
fn recipe_object(name: &str, prompt: &str) -> Value {
    json!({
        "apiVersion": "agent-operator.dev/v1alpha1", "kind": "Recipe",
        "metadata": {"name": name, "namespace": "demo"},
        "spec": {
            "description": "The team's own question answering.",
            "parameters": [{"name": "topK", "type": "integer", "default": 2}],
            "generate": {"mode": "Answer", "promptTemplate": prompt}
        }
    })
}

/// Asserts the reconcile refused the agent's recipe with `reason`: a Warning event and the
/// status, nothing built, no retry until something changes.
fn assert_recipe_refused(result: &Result<Action, String>, calls: &[Call], reason: &str) -> String {
    assert_eq!(result, &Ok(Action::await_change()), "a recipe problem waits for a change (Recipes are watched)");
    assert_eq!(
        writes(calls),
        [
            "POST /apis/events.k8s.io/v1/namespaces/demo/events",
            "PATCH /apis/agent-operator.dev/v1alpha1/namespaces/demo/agents/helpdesk/status",
        ],
        "no child is applied"
    );
    let event = calls[calls.len() - 2].body.as_ref().unwrap();
    assert_eq!((event["type"].as_str(), event["reason"].as_str()), (Some("Warning"), Some(reason)));
    let status = status_patch(calls);
    let accepted = condition(status, "Accepted");
    assert_eq!((accepted["status"].as_str(), accepted["reason"].as_str()), (Some("False"), Some(reason)));
    assert_eq!(condition(status, "Ready")["reason"], "NotAccepted");
    assert!(status["endpoint"].is_null());
    accepted["message"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_builtin_recipe_resolves_without_a_recipe_object() {
    let cluster = cluster_with_model_and_secrets();
    let (result, calls, _) = run(&cluster, &with_recipe("chatqna", &json!({"topK": 6}))).await;
    assert_eq!(result, Ok(Action::requeue(Duration::from_secs(600))));
    assert!(!calls.iter().any(|c| c.path.starts_with(RECIPES)), "Recipes come from the store: {calls:#?}");
    let recipe = &runtime_config(&calls)["recipe"];
    assert_eq!(recipe["name"], "chatqna");
    assert_eq!(recipe["parameters"]["topK"], 6);
    assert_eq!(recipe["parameters"]["answerStyle"], "concise", "defaults fill in");
    assert_eq!(recipe["spec"]["retrieve"]["topK"], 6, "the topK parameter overrides retrieve.topK");
    assert_eq!(recipe["spec"]["rerank"]["strategy"], "Mmr");
    let prompt = recipe["spec"]["generate"]["promptTemplate"].as_str().unwrap();
    assert!(prompt.starts_with("Passages:\n{{#each chunks}}"), "the built-in template is inlined: {prompt}");
    assert_eq!(condition(status_patch(&calls), "Accepted")["status"], "True");
}

#[tokio::test]
async fn a_recipe_object_overrides_the_builtin_of_the_same_name() {
    let cluster = cluster_with_model_and_secrets();
    cluster.put(recipe_object("chatqna", "Ours: {{question}} with {{params.topK}}"));
    let (result, calls, _) = run(&cluster, &with_recipe("chatqna", &json!({}))).await;
    assert_eq!(result, Ok(Action::requeue(Duration::from_secs(600))));
    let recipe = &runtime_config(&calls)["recipe"];
    assert_eq!(recipe["spec"]["generate"]["promptTemplate"], "Ours: {{question}} with {{params.topK}}");
    assert_eq!(recipe["spec"]["description"], "The team's own question answering.");
    assert_eq!(recipe["parameters"], json!({"topK": 2}), "the object's parameters, not the built-in's");
}

#[tokio::test]
async fn an_unknown_recipe_is_not_accepted_and_the_message_lists_the_available_ones() {
    let cluster = cluster_with_model_and_secrets();
    cluster.put(recipe_object("team-qna", "{{question}}"));
    let (result, calls, _) = run(&cluster, &with_recipe("chat-qna", &json!({}))).await;
    let message = assert_recipe_refused(&result, &calls, "RecipeNotFound");
    assert_eq!(
        message,
        "recipe chat-qna is neither a Recipe in namespace demo nor built in; available: chatqna, chatqna-norerank, \
         codegen, doc-retriever, docsum, faqgen, react-agent, team-qna"
    );
    assert!(!calls.iter().any(|c| c.path.starts_with(RECIPES)), "the namespace's Recipes come from the store");

    let (again, calls, _) = run(&cluster, &stored_agent(&cluster)).await;
    assert_eq!(again, Ok(Action::await_change()));
    assert_eq!(writes(&calls), Vec::<String>::new(), "no repeated event or status write while nothing changes");
}

#[tokio::test]
async fn an_unknown_parameter_is_not_accepted() {
    let cluster = cluster_with_model_and_secrets();
    let (result, calls, _) = run(&cluster, &with_recipe("chatqna", &json!({"topk": 3}))).await;
    let message = assert_recipe_refused(&result, &calls, "InvalidRecipeParameters");
    assert_eq!(
        message,
        "recipe chatqna has no parameter topk; it declares: topK, fetchK, mmrLambda, hybrid, answerStyle"
    );
}

#[tokio::test]
async fn a_parameter_of_the_wrong_type_or_outside_its_enum_is_not_accepted() {
    let cluster = cluster_with_model_and_secrets();
    let (result, calls, _) = run(&cluster, &with_recipe("chatqna", &json!({"topK": "six"}))).await;
    let message = assert_recipe_refused(&result, &calls, "InvalidRecipeParameters");
    assert_eq!(message, r#"parameter topK of recipe chatqna must be an integer, got "six""#);

    let cluster = cluster_with_model_and_secrets();
    let (result, calls, _) = run(&cluster, &with_recipe("docsum", &json!({"strategy": "Fast"}))).await;
    let message = assert_recipe_refused(&result, &calls, "InvalidRecipeParameters");
    assert_eq!(
        message,
        r#"parameter strategy of recipe docsum must be one of "Stuff", "MapReduce", "Refine"; got "Fast""#
    );
}

#[tokio::test]
async fn a_template_using_a_variable_the_runtime_does_not_give_is_not_accepted() {
    let cluster = cluster_with_model_and_secrets();
    cluster.put(recipe_object("team-qna", "{{question}} in {{params.language}}"));
    let (result, calls, _) = run(&cluster, &with_recipe("team-qna", &json!({}))).await;
    let message = assert_recipe_refused(&result, &calls, "InvalidRecipeTemplate");
    assert!(message.starts_with("recipe team-qna: generate.promptTemplate: "), "{message}");
    assert!(message.contains("params.language"), "the message names the missing variable: {message}");
}

#[tokio::test]
async fn a_recipe_problem_is_reported_even_while_the_model_is_missing() {
    let cluster = Cluster::default();
    cluster.put(secret("demo", "helpdesk-api", &["token"]));
    let (result, calls, _) = run(&cluster, &with_recipe("nope", &json!({}))).await;
    assert_recipe_refused(&result, &calls, "RecipeNotFound");
    assert_eq!(condition(status_patch(&calls), "ModelReady")["reason"], "ModelNotFound");
}

#[tokio::test]
async fn an_agent_calling_a_missing_agent_is_not_accepted_and_one_calling_an_existing_one_gets_its_key() {
    let cluster = cluster_with_model_and_secrets();
    let mut caller = helpdesk();
    caller["spec"]["tools"].as_array_mut().unwrap().push(json!({"name": "builds", "agent": {"name": "ci-bot"}}));
    let (_, calls, _) = run(&cluster, &caller).await;
    let accepted = condition(status_patch(&calls), "Accepted");
    assert_eq!((accepted["status"].as_str(), accepted["reason"].as_str()), (Some("False"), Some("ReferenceNotFound")));
    assert_eq!(accepted["message"], "Agent ci-bot (called as a tool) not found in namespace demo");

    let mut ci_bot = example(FILE, "Agent", "helpdesk");
    ci_bot["metadata"]["name"] = json!("ci-bot");
    ci_bot["spec"]["api"] = json!({"authSecretRef": {"name": "ci-bot-api", "key": "token"}});
    cluster.put(ci_bot).put(secret("demo", "ci-bot-api", &["token"]));
    let (result, calls, _) = run(&cluster, &caller).await;
    assert!(result.is_ok(), "{result:?}");
    let tool =
        runtime_config(&calls)["tools"].as_array().unwrap().iter().find(|t| t["name"] == "builds").unwrap().clone();
    assert_eq!(
        tool["kind"]["agent"],
        json!({"url": "http://ci-bot.demo.svc:8080", "remote": false, "tokenFile": "/var/run/agent-operator/secrets/ci-bot-api/token"}),
        "the callee's key is mounted and presented"
    );
    let workload = calls.iter().find(|c| c.is_write() && c.path.ends_with("/statefulsets/helpdesk")).unwrap();
    let pod = &workload.body.as_ref().unwrap()["spec"]["template"];
    assert_eq!(
        pod["metadata"]["labels"]["a2a.agent-operator.dev/ci-bot"], "demo",
        "the callee's NetworkPolicy admits it"
    );
    let volumes = pod["spec"]["volumes"].to_string();
    assert!(volumes.contains("ci-bot-api"), "{volumes}");
}

#[tokio::test]
async fn a_reconcile_beyond_its_namespaces_share_comes_back_later_without_a_request() {
    let cluster = cluster_with_model_and_secrets();
    cluster.put(helpdesk());
    let (client, calls) = cluster.client();
    let metrics = Arc::new(Metrics::default());
    let mut ctx = Context::new(client, metrics.clone(), "runtime:test".to_owned(), None);
    ctx.namespace_share = NamespaceShare::new(1);
    let ctx = Arc::new(ctx);
    ctx.caches.observe(&cluster.objects());
    let agent = Arc::new(serde_json::from_value::<Agent>(helpdesk()).unwrap());

    let busy = ctx.namespace_share.try_enter("demo").expect("a reconcile of another agent in demo");
    let deferred = reconcile(agent.clone(), ctx.clone()).await.unwrap();
    assert_eq!(deferred, Action::requeue(DEFERRED_RETRY));
    let other_namespace = ctx.namespace_share.try_enter("elsewhere");
    assert!(other_namespace.is_some(), "other namespaces are not held back");
    drop((busy, other_namespace));
    let done = reconcile(agent, ctx.clone()).await.unwrap();
    assert_eq!(done, Action::requeue(Duration::from_secs(600)));

    drop(ctx);
    let calls = tokio::time::timeout(Duration::from_secs(5), calls).await.unwrap().unwrap();
    assert_eq!(writes(&calls).len(), 9, "the deferred reconcile sent nothing; the second applied 8 children + status");
    let text = metrics.encode();
    assert!(text.contains(r#"agent_operator_reconciles_deferred_total{kind="Agent"} 1"#), "{text}");
    assert!(text.contains(r#"agent_operator_reconciles_total{kind="Agent"} 1"#), "{text}");
}
