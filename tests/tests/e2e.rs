//! End to end against the cluster in `KUBECONFIG`: install the CRDs, run the Agent controller
//! in-process, apply an example Model and Agent, and wait for the StatefulSet and status.
//! Skipped, with a printed reason, when `KUBECONFIG` is not set.

use std::sync::Arc;
use std::time::Duration;

use agent_crds::Agent;
use agent_operator::context::Context;
use agent_operator::metrics::Metrics;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::core::{DynamicObject, GroupVersionKind};
use kube::discovery::ApiResource;
use kube::{Api, Client, ResourceExt};

const NAMESPACE: &str = "agent-operator-e2e";

#[tokio::test]
async fn an_applied_agent_gets_its_workload_and_status_on_a_real_cluster() {
    if std::env::var_os("KUBECONFIG").is_none() {
        eprintln!("SKIPPED e2e: KUBECONFIG is not set, so there is no cluster to run against");
        return;
    }
    let client = Client::try_default().await.expect("a client for the cluster in KUBECONFIG");
    let apply = PatchParams::apply("agent-operator-e2e").force();

    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in agent_crds::crd::all() {
        crds.patch(&crd.name_any(), &apply, &Patch::Apply(&crd)).await.expect("the CRD is accepted by the API server");
    }
    for name in agent_operator::crd_check::required_crds() {
        wait_for(|| {
            let crds = crds.clone();
            let name = name.clone();
            async move {
                crds.get(&name).await.ok().and_then(|c| c.status).is_some_and(|s| {
                    s.conditions.unwrap_or_default().iter().any(|c| c.type_ == "Established" && c.status == "True")
                })
            }
        })
        .await;
    }

    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}});
    namespaces.patch(NAMESPACE, &apply, &Patch::Apply(&namespace)).await.unwrap();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NAMESPACE);
    for (name, key) in [("openai", "api-key"), ("helpdesk-api", "token")] {
        let secret = serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": {key: "e2e"}});
        secrets.patch(name, &apply, &Patch::Apply(&secret)).await.unwrap();
    }
    let text = std::fs::read_to_string(agent_tests::repo_root().join("examples/chat-agent.yaml")).unwrap();
    for document in serde_yaml::Deserializer::from_str(&text) {
        let mut object: serde_json::Value = serde::Deserialize::deserialize(document).unwrap();
        object["metadata"]["namespace"] = serde_json::json!(NAMESPACE);
        let (group, version) = object["apiVersion"].as_str().unwrap().split_once('/').unwrap();
        let gvk = GroupVersionKind::gvk(group, version, object["kind"].as_str().unwrap());
        let resource = ApiResource::from_gvk(&gvk);
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), NAMESPACE, &resource);
        let name = object["metadata"]["name"].as_str().unwrap().to_owned();
        api.patch(&name, &apply, &Patch::Apply(&object))
            .await
            .expect("the example passes the CRD schema and CEL rules");
    }

    let ctx = Arc::new(Context::new(
        client.clone(),
        Arc::new(Metrics::default()),
        "ghcr.io/agent-operator/agent-runtime:0.1.0".into(),
        None,
    ));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let controller = tokio::spawn(agent_operator::agent::run(ctx, Some(NAMESPACE), async move {
        let _ = stopped.await;
    }));

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

    let _ = stop.send(());
    controller.await.unwrap();
    namespaces.delete(NAMESPACE, &DeleteParams::default()).await.unwrap();
}

async fn wait_for<F, Fut>(mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    for _ in 0..120 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    panic!("timed out after 120 s");
}
