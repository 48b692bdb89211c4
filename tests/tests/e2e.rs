//! End to end against the cluster in `KUBECONFIG`: install the CRDs, run the Agent controller
//! in-process, apply an example Model and Agent, and wait for the StatefulSet and status; and
//! delegation bounded twice on a real API server: by the chart's ValidatingAdmissionPolicy for
//! requests made as an agent runtime (impersonating its `<agent>-delegator` ServiceAccount) and
//! by the operator for children outside their parent's bounds. Skipped, with a printed reason,
//! when `KUBECONFIG` is not set.

mod cluster;

use cluster::wait_until_true as wait_for;

use std::sync::Arc;
use std::time::Duration;

use agent_crds::Agent;
use agent_operator::context::Context;
use agent_operator::metrics::Metrics;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::core::{DynamicObject, GroupVersionKind};
use kube::discovery::ApiResource;
use kube::{Api, Client, ResourceExt};

const NAMESPACE: &str = "agent-operator-e2e";

#[tokio::test]
async fn an_applied_agent_gets_its_workload_and_status_on_a_real_cluster() {
    let Some(client) = cluster::client_or_skip("").await else { return };
    cluster::install_crds(&client).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    cluster::apply_namespace(&client, NAMESPACE, "agent-operator-e2e").await;
    // Agent pods must be admitted where the restricted Pod Security Standard is enforced.
    cluster::enforce_restricted(&client, NAMESPACE, "agent-operator-e2e").await;
    apply_example(&client, "examples/chat-agent.yaml", NAMESPACE, |_| true).await;

    let (stop, controller) = run_controller(&client, NAMESPACE);

    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), NAMESPACE);
    wait_for(|| {
        let statefulsets = statefulsets.clone();
        async move { statefulsets.get_opt("helpdesk").await.ok().flatten().is_some() }
    })
    .await;
    let agents: Api<Agent> = Api::namespaced(client.clone(), NAMESPACE);
    wait_for(|| {
        let agents = agents.clone();
        async move {
            agents
                .get("helpdesk")
                .await
                .ok()
                .and_then(|a| a.status)
                .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Accepted" && c.status == "True"))
        }
    })
    .await;
    // The StatefulSet controller's pod passes the namespace's restricted Pod Security admission.
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    wait_for(|| {
        let pods = pods.clone();
        async move { pods.get_opt("helpdesk-0").await.ok().flatten().is_some() }
    })
    .await;

    let _ = stop.send(());
    controller.await.unwrap();
    namespaces.delete(NAMESPACE, &DeleteParams::default()).await.unwrap();
}

/// Applies the objects of a repository YAML file (in `namespace` when namespaced) that `keep`
/// accepts.
async fn apply_example(client: &Client, file: &str, namespace: &str, keep: impl Fn(&serde_json::Value) -> bool) {
    let apply = PatchParams::apply("agent-operator-e2e").force();
    let text = std::fs::read_to_string(agent_tests::repo_root().join(file)).unwrap();
    for document in serde_yaml::Deserializer::from_str(&text) {
        let mut object: serde_json::Value = serde::Deserialize::deserialize(document).unwrap();
        if !keep(&object) {
            continue;
        }
        let (group, version) = object["apiVersion"].as_str().unwrap().split_once('/').unwrap();
        let gvk = GroupVersionKind::gvk(group, version, object["kind"].as_str().unwrap());
        let resource = ApiResource::from_gvk(&gvk);
        let name = object["metadata"]["name"].as_str().unwrap().to_owned();
        let api: Api<DynamicObject> =
            if object["kind"].as_str().is_some_and(|k| k.starts_with("ValidatingAdmissionPolicy")) {
                Api::all_with(client.clone(), &resource)
            } else {
                object["metadata"]["namespace"] = serde_json::json!(namespace);
                Api::namespaced_with(client.clone(), namespace, &resource)
            };
        api.patch(&name, &apply, &Patch::Apply(&object)).await.unwrap_or_else(|e| panic!("{file} {name}: {e}"));
    }
}

/// Runs the Agent controller in-process on `namespace` until the sender is used.
fn run_controller(
    client: &Client,
    namespace: &'static str,
) -> (tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let ctx = Arc::new(Context::new(
        client.clone(),
        Arc::new(Metrics::default()),
        "ghcr.io/agent-operator/agent-runtime:0.1.0".into(),
        None,
    ));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let config = kube::runtime::controller::Config::default();
    let controller = tokio::spawn(agent_operator::agent::run(ctx, Some(namespace), config, async move {
        let _ = stopped.await;
    }));
    (stop, controller)
}

const DELEGATION_NAMESPACE: &str = "agent-operator-e2e-delegation";

/// A child of `lead` as its runtime would create it, with `spec` merged in.
fn child(name: &str, lead_uid: &str, spec: &serde_json::Value) -> serde_json::Value {
    let mut child = serde_json::json!({
        "apiVersion": "agent-operator.dev/v1alpha1",
        "kind": "Agent",
        "metadata": {
            "name": name,
            "namespace": DELEGATION_NAMESPACE,
            "labels": {"agent-operator.dev/parent": "lead", "agent-operator.dev/delegation-depth": "1"},
            "ownerReferences": [{"apiVersion": "agent-operator.dev/v1alpha1", "kind": "Agent", "name": "lead", "uid": lead_uid, "controller": true}]
        },
        "spec": {"persona": {"systemPrompt": "You find facts."}, "model": {"modelRef": {"name": "gpt-small"}}}
    });
    if let (Some(base), Some(extra)) = (child["spec"].as_object_mut(), spec.as_object()) {
        base.extend(extra.clone());
    }
    child
}

fn accepted(agent: &Agent) -> Option<(String, String, String)> {
    let condition = agent.status.as_ref()?.conditions.iter().find(|c| c.type_ == "Accepted")?;
    Some((condition.status.clone(), condition.reason.clone(), condition.message.clone()))
}

#[tokio::test]
async fn delegation_is_bounded_by_the_api_server_and_by_the_operator_on_a_real_cluster() {
    let Some(client) = cluster::client_or_skip("").await else { return };
    cluster::install_crds(&client).await;
    cluster::apply_namespace(&client, DELEGATION_NAMESPACE, "agent-operator-e2e").await;
    apply_example(&client, "charts/kustomize/delegation-admission-policy.yaml", DELEGATION_NAMESPACE, |_| true).await;
    let is = |kind: &'static str, name: &'static str| {
        move |object: &serde_json::Value| object["kind"] == kind && object["metadata"]["name"] == name
    };
    apply_example(&client, "examples/chat-agent.yaml", DELEGATION_NAMESPACE, is("Model", "gpt-small")).await;
    let agents: Api<Agent> = Api::namespaced(client.clone(), DELEGATION_NAMESPACE);
    let apply = PatchParams::apply("agent-operator-e2e").force();
    let lead = serde_json::json!({
        "apiVersion": "agent-operator.dev/v1alpha1", "kind": "Agent",
        "metadata": {"name": "lead", "namespace": DELEGATION_NAMESPACE},
        "spec": {"model": {"modelRef": {"name": "gpt-small"}}, "delegation": {"enabled": true, "maxChildren": 1}}
    });
    let lead = agents.patch("lead", &apply, &Patch::Apply(&lead)).await.unwrap();
    let lead_uid = lead.metadata.uid.clone().unwrap();
    let (stop, controller) = run_controller(&client, DELEGATION_NAMESPACE);
    let bindings: Api<k8s_openapi::api::rbac::v1::RoleBinding> = Api::namespaced(client.clone(), DELEGATION_NAMESPACE);
    wait_for(|| {
        let bindings = bindings.clone();
        async move { bindings.get_opt("lead").await.ok().flatten().is_some() }
    })
    .await;

    // As the lead's runtime: the API server itself refuses an over-privileged child...
    let mut config = kube::Config::infer().await.unwrap();
    config.auth_info.impersonate = Some(format!("system:serviceaccount:{DELEGATION_NAMESPACE}:lead-delegator"));
    config.auth_info.impersonate_groups =
        Some(vec!["system:serviceaccounts".into(), format!("system:serviceaccounts:{DELEGATION_NAMESPACE}")]);
    let runtime = Client::try_from(config).unwrap();
    let as_runtime: Api<Agent> = Api::namespaced(runtime, DELEGATION_NAMESPACE);
    let create = PostParams::default();
    let secret_prompt = child(
        "lead-sneaky",
        &lead_uid,
        &serde_json::json!({"persona": {"systemPromptFrom": {"secretKeyRef": {"name": "openai", "key": "api-key"}}}}),
    );
    let secret_prompt: Agent = serde_json::from_value(secret_prompt).unwrap();
    let mut refusal = String::new();
    for _ in 0..30 {
        // The policy is compiled and bound asynchronously after it is applied.
        match as_runtime.create(&create, &secret_prompt).await {
            Err(kube::Error::Api(status)) if status.message.contains("systemPromptFrom") => {
                refusal = status.message;
                break;
            }
            Ok(created) => {
                as_runtime.delete(&created.name_any(), &DeleteParams::default()).await.unwrap();
            }
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert!(refusal.contains("ValidatingAdmissionPolicy"), "the API server's admission policy refused it: {refusal:?}");
    let mut unowned: Agent = serde_json::from_value(child("lead-orphan", &lead_uid, &serde_json::json!({}))).unwrap();
    unowned.metadata.owner_references = None;
    let error = as_runtime.create(&create, &unowned).await.expect_err("a child must be owned by its parent");
    assert!(error.to_string().contains("exactly one owner reference"), "{error}");

    // ...admits a bounded one, which the operator accepts...
    let researcher: Agent =
        serde_json::from_value(child("lead-researcher", &lead_uid, &serde_json::json!({}))).unwrap();
    as_runtime.create(&create, &researcher).await.expect("a bounded child is admitted");
    wait_for(|| {
        let agents = agents.clone();
        async move { agents.get("lead-researcher").await.ok().and_then(|a| accepted(&a)).is_some_and(|a| a.0 == "True") }
    })
    .await;

    // ...and a second child past maxChildren (made by someone the policy does not bind) is refused
    // by the operator and gets no workload.
    let second: Agent = serde_json::from_value(child("lead-writer", &lead_uid, &serde_json::json!({}))).unwrap();
    agents.create(&create, &second).await.unwrap();
    wait_for(|| {
        let agents = agents.clone();
        async move {
            agents.get("lead-writer").await.ok().and_then(|a| accepted(&a)).is_some_and(|a| a.1 == "DelegationRefused")
        }
    })
    .await;
    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), DELEGATION_NAMESPACE);
    assert!(statefulsets.get_opt("lead-writer").await.unwrap().is_none(), "a refused child gets no pod");
    // As the lead's runtime, deleting an Agent that is not its child is refused.
    let error = as_runtime.delete("lead", &DeleteParams::default()).await.expect_err("not its child");
    assert!(error.to_string().contains("own children"), "{error}");

    let _ = stop.send(());
    controller.await.unwrap();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces.delete(DELEGATION_NAMESPACE, &DeleteParams::default()).await.unwrap();
}
