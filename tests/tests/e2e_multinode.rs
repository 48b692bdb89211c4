//! End to end against the cluster in `KUBECONFIG` with LeaderWorkerSet installed: a served Model
//! with `serve.nodes: 2`, the Model controller in-process. The operator builds a LeaderWorkerSet
//! of groups of 2 pods (and no Deployment); LWS's controller makes the leader and the worker pod,
//! which the cluster runs (a fake kubelet marks them running); where a DRA driver publishes two
//! devices each pod claims one of its own; the Service selects the leader only; the Model reports
//! the group through `/scale`; going back to one node deletes the LeaderWorkerSet and builds a
//! Deployment. Skipped, with a printed reason, without `KUBECONFIG` or without LWS's CRD.

mod cluster;

use agent_crds::model::Model;
use cluster::wait_until_true as wait_for;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

const NAMESPACE: &str = "agent-operator-e2e-multinode";
const NAME: &str = "multinode";
const LWS_CRD: &str = "leaderworkersets.leaderworkerset.x-k8s.io";
const WORKER_INDEX: &str = "leaderworkerset.sigs.k8s.io/worker-index";

/// vLLM on weights from an existing claim (no download Job), one replica of `nodes` pods; with
/// `class`, one device of that DeviceClass per pod.
fn model(nodes: i32, class: Option<&str>) -> serde_json::Value {
    let mut model = json!({
        "apiVersion": "agent-operator.dev/v1alpha1", "kind": "Model",
        "metadata": {"name": NAME, "namespace": NAMESPACE},
        "spec": {
            "serve": {
                "engine": "vllm",
                "uri": "pvc://weights/model",
                "replicas": 1,
                "nodes": nodes,
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}
            },
            "capabilities": {"chat": true}
        }
    });
    if let Some(class) = class {
        model["spec"]["serve"]["accelerator"] = json!({"deviceClassName": class, "count": 1});
    }
    model
}

/// The LeaderWorkerSets of the namespace, read without a typed client (the test reads what the
/// cluster holds, not what the operator's types say).
fn leader_worker_sets(client: &Client) -> Api<DynamicObject> {
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("leaderworkerset.x-k8s.io", "v1", "LeaderWorkerSet"),
        "leaderworkersets",
    );
    Api::namespaced_with(client.clone(), NAMESPACE, &resource)
}

/// The Model's running pods, by name, with their claims (pod claim statuses' claim names).
async fn running_pods(pods: &Api<Pod>) -> Vec<(String, Vec<String>, Option<String>)> {
    let selector = format!("app.kubernetes.io/instance={NAME}");
    let Ok(list) = pods.list(&ListParams::default().labels(&selector)).await else { return Vec::new() };
    list.items
        .into_iter()
        .filter(|p| {
            p.metadata.deletion_timestamp.is_none()
                && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
        })
        .map(|p| {
            let claims = p
                .status
                .as_ref()
                .and_then(|s| s.resource_claim_statuses.clone())
                .unwrap_or_default()
                .into_iter()
                .filter_map(|c| c.resource_claim_name)
                .collect();
            let index = p.labels().get(WORKER_INDEX).cloned();
            (p.name_any(), claims, index)
        })
        .collect()
}

#[tokio::test]
async fn a_two_node_model_runs_as_a_leader_worker_set_whose_leader_alone_serves() {
    let Some(client) = cluster::client_or_skip("multinode").await else { return };
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    if crds.get_opt(LWS_CRD).await.ok().flatten().is_none() {
        eprintln!(
            "SKIPPED e2e multinode: LeaderWorkerSet is not installed (no CRD {LWS_CRD}); install it from \
             https://lws.sigs.k8s.io/docs/installation/"
        );
        return;
    }
    let class = cluster::two_device_class(&client).await.map(|(_, class)| class);
    match &class {
        Some(class) => eprintln!("e2e multinode: each pod claims one device of DeviceClass {class}"),
        None => eprintln!("e2e multinode: no DRA driver with two devices, so the pods run without accelerators"),
    }
    cluster::install_crds(&client).await;
    cluster::apply_namespace(&client, NAMESPACE, "agent-operator-e2e").await;
    let apply = PatchParams::apply("agent-operator-e2e").force();
    let models: Api<Model> = Api::namespaced(client.clone(), NAMESPACE);
    models.patch(NAME, &apply, &Patch::Apply(&model(2, class.as_deref()))).await.expect("the Model is admitted");

    let controller = cluster::ModelController::start(&client, NAMESPACE);

    let sets = leader_worker_sets(&client);
    wait_for(|| {
        let sets = sets.clone();
        async move { sets.get_opt(NAME).await.ok().flatten().is_some() }
    })
    .await;
    let set = sets.get(NAME).await.unwrap();
    assert_eq!(set.data["spec"]["leaderWorkerTemplate"]["size"], 2, "{:?}", set.data);
    assert_eq!(set.data["spec"]["replicas"], 1);
    assert_eq!(set.owner_references()[0].kind, "Model");
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);
    assert!(deployments.get_opt(NAME).await.unwrap().is_none(), "no Deployment beside the LeaderWorkerSet");

    // LWS's controller makes the group's leader and worker, and the cluster runs both.
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    wait_for(|| {
        let pods = pods.clone();
        async move { running_pods(&pods).await.len() == 2 }
    })
    .await;
    let running = running_pods(&pods).await;
    let mut indexes: Vec<Option<String>> = running.iter().map(|(_, _, index)| index.clone()).collect();
    indexes.sort();
    assert_eq!(indexes, [Some("0".to_owned()), Some("1".to_owned())], "{running:?}");
    if class.is_some() {
        let claims: Vec<&String> = running.iter().flat_map(|(_, claims, _)| claims).collect();
        assert_eq!(claims.len(), 2, "one claim per pod: {running:?}");
        assert_ne!(claims[0], claims[1], "each pod has its own claim: {running:?}");
    }

    let services: Api<Service> = Api::namespaced(client.clone(), NAMESPACE);
    let service = services.get(&format!("{NAME}-model")).await.unwrap();
    let selector = service.spec.unwrap().selector.unwrap();
    assert_eq!(selector.get(WORKER_INDEX).map(String::as_str), Some("0"), "only the leader serves: {selector:?}");

    // The Model's /scale subresource counts the group and selects its leader.
    wait_for(|| {
        let models = models.clone();
        async move {
            models.get_scale(NAME).await.ok().and_then(|s| s.status).is_some_and(|s| {
                s.replicas == 1 && s.selector.as_deref().is_some_and(|t| t.contains(&format!("{WORKER_INDEX}=0")))
            })
        }
    })
    .await;

    // Back to one node: the LeaderWorkerSet goes, a Deployment serves.
    models.patch(NAME, &apply, &Patch::Apply(&model(1, class.as_deref()))).await.unwrap();
    wait_for(|| {
        let (sets, deployments) = (sets.clone(), deployments.clone());
        async move {
            sets.get_opt(NAME).await.ok().flatten().is_none()
                && deployments.get_opt(NAME).await.ok().flatten().is_some()
        }
    })
    .await;

    controller.stop().await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces.delete(NAMESPACE, &DeleteParams::default()).await.unwrap();
}
