//! End to end against the cluster in `KUBECONFIG`: a served Model that scales to zero, with the
//! Model controller in-process. Idle for its `scaleToZeroAfter` (1 minute, the least allowed)
//! its Deployment goes to zero replicas and the Model stays `Ready` as `Idle`; an agent's wake
//! request on its Agent's status (written as the runtime writes it: server-side apply of
//! `status.modelDemand` under the runtime's demand field manager) brings it back to one replica,
//! and `status.coldStart` records the wake's timeline from its pod (with a fake kubelet the pod
//! is marked running and ready, so every phase is reached). Skipped, with a printed reason, when
//! `KUBECONFIG` is not set.

mod cluster;

use agent_crds::model::{ColdStartPhase, Model};
use agent_crds::{Agent, conditions};
use cluster::wait_until_true as wait_for;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams};
use serde_json::json;

const NAMESPACE: &str = "agent-operator-e2e-scale-to-zero";
const NAME: &str = "sleepy";

/// llama.cpp on CPU from an existing claim (no download Job, as the other served-model cases),
/// 0 to 2 replicas, idle after one minute.
fn model() -> serde_json::Value {
    json!({
        "apiVersion": "agent-operator.dev/v1alpha1", "kind": "Model",
        "metadata": {"name": NAME, "namespace": NAMESPACE},
        "spec": {
            "serve": {
                "engine": "llamacpp",
                "uri": "pvc://weights/gemma-3-270m-Q8_0.gguf",
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                "autoscaling": {"minReplicas": 0, "maxReplicas": 2, "metric": "RunningRequests", "target": "2",
                                "scaleToZeroAfter": "1m", "wakeTimeout": "2m"}
            },
            "promptFormat": "Completion",
            "capabilities": {"chat": true}
        }
    })
}

fn replicas(deployment: Option<Deployment>) -> Option<i32> {
    deployment?.spec?.replicas
}

fn ready_reason(model: &Model) -> Option<String> {
    let status = model.status.as_ref()?;
    let ready = status.conditions.iter().find(|c| c.type_ == conditions::READY)?;
    (ready.status == "True").then(|| ready.reason.clone())
}

#[tokio::test]
async fn an_idle_model_goes_to_zero_and_an_agents_wake_request_brings_it_back_with_a_timeline() {
    let Some(client) = cluster::client_or_skip("").await else { return };
    cluster::install_crds(&client).await;
    cluster::apply_namespace(&client, NAMESPACE, "agent-operator-e2e").await;
    let apply = PatchParams::apply("agent-operator-e2e").force();
    let models: Api<Model> = Api::namespaced(client.clone(), NAMESPACE);
    models.patch(NAME, &apply, &Patch::Apply(&model())).await.expect("the scale-to-zero Model is admitted");
    let controller = cluster::ModelController::start(&client, NAMESPACE);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);

    // It starts with one replica, then, a minute without requests later, goes to zero.
    wait_for(|| {
        let deployments = deployments.clone();
        async move { replicas(deployments.get_opt(NAME).await.ok().flatten()) == Some(1) }
    })
    .await;
    wait_for(|| {
        let (deployments, models) = (deployments.clone(), models.clone());
        async move {
            replicas(deployments.get_opt(NAME).await.ok().flatten()) == Some(0)
                && models.get(NAME).await.ok().and_then(|m| ready_reason(&m)).as_deref() == Some("Idle")
        }
    })
    .await;

    // An agent asks for it, as its runtime does.
    let agents: Api<Agent> = Api::namespaced(client.clone(), NAMESPACE);
    let agent = json!({"apiVersion": "agent-operator.dev/v1alpha1", "kind": "Agent",
        "metadata": {"name": "night-owl", "namespace": NAMESPACE},
        "spec": {"model": {"modelRef": {"name": NAME}}}});
    agents.patch("night-owl", &apply, &Patch::Apply(&agent)).await.expect("the Agent is admitted");
    let now = jiff::Timestamp::now().to_string();
    let demand = json!({"apiVersion": "agent-operator.dev/v1alpha1", "kind": "Agent",
        "metadata": {"name": "night-owl", "namespace": NAMESPACE},
        "status": {"modelDemand": {"model": NAME, "lastRequestAt": now, "wakeRequestedAt": now}}});
    let runtime = PatchParams::apply("agent-runtime-model-demand").force();
    agents.patch_status("night-owl", &runtime, &Patch::Apply(&demand)).await.expect("the demand is written");

    wait_for(|| {
        let deployments = deployments.clone();
        async move { replicas(deployments.get_opt(NAME).await.ok().flatten()) == Some(1) }
    })
    .await;
    wait_for(|| {
        let models = models.clone();
        async move {
            let model = models.get(NAME).await.ok();
            model
                .and_then(|m| m.status?.cold_start)
                .is_some_and(|c| c.phase == ColdStartPhase::Ready && c.total_seconds.is_some())
        }
    })
    .await;
    let cold_start = models.get(NAME).await.unwrap().status.unwrap().cold_start.unwrap();
    assert!(cold_start.scheduled_at.is_some() && cold_start.ready_at.is_some(), "{cold_start:?}");
    assert!(cold_start.requested_at.parse::<jiff::Timestamp>().unwrap() >= now.parse().unwrap(), "{cold_start:?}");
    eprintln!("cold start: {cold_start:?}");

    controller.stop().await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces.delete(NAMESPACE, &DeleteParams::default()).await.unwrap();
}
