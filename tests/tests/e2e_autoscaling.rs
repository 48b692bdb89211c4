//! End to end against the cluster in `KUBECONFIG`: an autoscaled served Model, with the Model
//! controller in-process. The operator builds an HPA for the engine Deployment; the cluster's
//! HPA controller raises the Deployment to `minReplicas` (it clamps to the bounds before it reads
//! any metric, so no metrics adapter is needed), and the operator then leaves that count alone;
//! the Model's `/scale` subresource reports the replicas and selector; turning autoscaling off
//! deletes the HPA and applies `serve.replicas` again. Skipped, with a printed reason, when
//! `KUBECONFIG` is not set.

mod cluster;

use agent_crds::model::Model;
use cluster::wait_until_true as wait_for;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams};
use serde_json::json;

const NAMESPACE: &str = "agent-operator-e2e-autoscaling";
const NAME: &str = "autoscaled";

/// llama.cpp on CPU from an existing claim (no download Job), 2 to 3 replicas on requests in
/// flight; `autoscaling: false` leaves it at `serve.replicas: 1`.
fn model(autoscaling: bool) -> serde_json::Value {
    let mut model = json!({
        "apiVersion": "agent-operator.dev/v1alpha1", "kind": "Model",
        "metadata": {"name": NAME, "namespace": NAMESPACE},
        "spec": {
            "serve": {
                "engine": "llamacpp",
                "uri": "pvc://weights/gemma-3-270m-Q8_0.gguf",
                "replicas": 1,
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}
            },
            "promptFormat": "Completion"
        }
    });
    if autoscaling {
        model["spec"]["serve"]["autoscaling"] =
            json!({"minReplicas": 2, "maxReplicas": 3, "metric": "RunningRequests", "target": "2"});
    }
    model
}

fn replicas_owned_by_operator(deployment: &Deployment) -> bool {
    deployment.metadata.managed_fields.iter().flatten().any(|entry| {
        entry.manager.as_deref() == Some("agent-operator")
            && entry.operation.as_deref() == Some("Apply")
            && entry.fields_v1.as_ref().is_some_and(|f| !f.0["f:spec"]["f:replicas"].is_null())
    })
}

#[tokio::test]
async fn an_autoscaled_model_is_scaled_by_its_hpa_and_the_operator_leaves_the_count_alone() {
    let Some(client) = cluster::client_or_skip("").await else { return };
    cluster::install_crds(&client).await;
    cluster::apply_namespace(&client, NAMESPACE, "agent-operator-e2e").await;
    let apply = PatchParams::apply("agent-operator-e2e").force();
    let models: Api<Model> = Api::namespaced(client.clone(), NAMESPACE);
    models.patch(NAME, &apply, &Patch::Apply(&model(true))).await.expect("the autoscaled Model is admitted");

    let controller = cluster::ModelController::start(&client, NAMESPACE);

    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), NAMESPACE);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);
    wait_for(|| {
        let hpas = hpas.clone();
        async move { hpas.get_opt(NAME).await.ok().flatten().is_some() }
    })
    .await;
    let hpa = hpas.get(NAME).await.unwrap().spec.unwrap();
    assert_eq!((hpa.scale_target_ref.kind.as_str(), hpa.scale_target_ref.name.as_str()), ("Deployment", NAME));
    assert_eq!((hpa.min_replicas, hpa.max_replicas), (Some(2), 3));

    // The cluster's HPA controller raises the Deployment to minReplicas.
    wait_for(|| {
        let deployments = deployments.clone();
        async move { deployments.get_opt(NAME).await.ok().flatten().and_then(|d| d.spec?.replicas) == Some(2) }
    })
    .await;
    // Later reconciles (the Deployment's status changes trigger them) leave the count alone.
    tokio::time::sleep(std::time::Duration::from_secs(10)).await;
    let deployment = deployments.get(NAME).await.unwrap();
    assert_eq!(deployment.spec.as_ref().and_then(|s| s.replicas), Some(2));
    assert!(!replicas_owned_by_operator(&deployment), "{:?}", deployment.metadata.managed_fields);

    // The Model's /scale subresource reads status.replicas and status.selector.
    wait_for(|| {
        let models = models.clone();
        async move {
            models.get_scale(NAME).await.ok().and_then(|s| s.status).is_some_and(|s| {
                s.replicas == 2
                    && s.selector.as_deref()
                        == Some("app.kubernetes.io/instance=autoscaled,app.kubernetes.io/name=model-server")
            })
        }
    })
    .await;
    let status = models.get(NAME).await.unwrap().status.unwrap();
    assert_eq!(status.autoscaler.as_deref(), Some("HorizontalPodAutoscaler/autoscaled"));

    // Autoscaling off: the HPA goes, serve.replicas is applied again.
    models.patch(NAME, &apply, &Patch::Apply(&model(false))).await.unwrap();
    wait_for(|| {
        let (hpas, deployments) = (hpas.clone(), deployments.clone());
        async move {
            hpas.get_opt(NAME).await.ok().flatten().is_none()
                && deployments.get_opt(NAME).await.ok().flatten().and_then(|d| d.spec?.replicas) == Some(1)
        }
    })
    .await;

    controller.stop().await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces.delete(NAMESPACE, &DeleteParams::default()).await.unwrap();
}
