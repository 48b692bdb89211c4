//! End to end against the cluster in `KUBECONFIG` (with a DRA driver publishing at least two
//! devices in one pool, and a DeviceClass selecting its driver): a served Model's pod holds a
//! device; the test taints that device `NoSchedule` in its ResourceSlice, as an operator of the
//! cluster would for a failing GPU; the Model controller (in-process) reports `DevicesHealthy=False`
//! naming the device and evicts the pod, and its replacement's claim is allocated another device.
//! A second case: two Models naming one `sharedClaimName` run on the one claim the operator
//! created. Skipped, with a printed reason, without `KUBECONFIG`, without such a driver, or (the
//! taint step) when the API server drops device taints (the `DRADeviceTaints` feature gate is off).

mod cluster;

use agent_crds::model::Model;
use cluster::wait_until_true as wait_for;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::resource::v1::{ResourceClaim, ResourceSlice};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

const NAMESPACE: &str = "agent-operator-e2e-devices";
const NAME: &str = "device-health";
const TAINT_KEY: &str = "agent-operator.dev/e2e-unhealthy";

/// A client for the cluster in `KUBECONFIG` and the DeviceClass of a driver with two devices in
/// a pool; `None` (the `case` skipped, saying why) without either.
async fn dra_cluster(case: &str) -> Option<(Client, String)> {
    let client = cluster::client_or_skip(case).await?;
    let Some((driver, class)) = cluster::two_device_class(&client).await else {
        eprintln!("SKIPPED e2e {case}: no DRA driver publishes two devices in a pool with a DeviceClass naming it");
        return None;
    };
    eprintln!("e2e {case} on driver {driver}, DeviceClass {class}");
    Some((client, class))
}

/// A vLLM Model `name` on one device of `class`, with the `accelerator` fields of `extra` added.
fn gpu_model(name: &str, namespace: &str, class: &str, extra: &serde_json::Value) -> serde_json::Value {
    let mut model = json!({
        "apiVersion": "agent-operator.dev/v1alpha1", "kind": "Model",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"serve": {"engine": "vllm", "uri": "pvc://weights/model", "replicas": 1,
                           "accelerator": {"deviceClassName": class, "count": 1}},
                 "capabilities": {"chat": true}}
    });
    for (key, value) in extra.as_object().into_iter().flatten() {
        model["spec"]["serve"]["accelerator"][key] = value.clone();
    }
    model
}

/// The device the Model's pod `pod` holds: (slice name, device name).
async fn held_device(client: &Client, pod: &str) -> Option<(String, String)> {
    let claims: Api<ResourceClaim> = Api::namespaced(client.clone(), NAMESPACE);
    let claim = claims.list(&ListParams::default()).await.ok()?.items.into_iter().find(|c| {
        c.status.as_ref().and_then(|s| s.reserved_for.as_ref()).is_some_and(|r| r.iter().any(|c| c.name == pod))
    })?;
    let result = claim.status?.allocation?.devices?.results?.into_iter().next()?;
    let slices: Api<ResourceSlice> = Api::all(client.clone());
    let slice = slices.list(&ListParams::default()).await.ok()?.items.into_iter().find(|s| {
        s.spec.driver == result.driver
            && s.spec.pool.name == result.pool
            && s.spec.devices.iter().flatten().any(|d| d.name == result.device)
    })?;
    Some((slice.name_any(), result.device))
}

/// The Model's one running pod.
async fn serving_pod(pods: &Api<Pod>) -> Option<String> {
    let list = pods.list(&ListParams::default().labels(&format!("app.kubernetes.io/instance={NAME}"))).await.ok()?;
    list.items
        .into_iter()
        .find(|p| {
            p.metadata.deletion_timestamp.is_none()
                && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
        })
        .map(|p| p.name_any())
}

/// Sets (or, with `None`, clears) the e2e taint on `device` of slice `slice`.
async fn taint(client: &Client, slice: &str, device: &str, effect: Option<&str>) -> bool {
    let slices: Api<ResourceSlice> = Api::all(client.clone());
    let Ok(mut current) = slices.get(slice).await else { return false };
    for d in current.spec.devices.iter_mut().flatten().filter(|d| d.name == device) {
        let mut taints: Vec<_> =
            d.taints.take().unwrap_or_default().into_iter().filter(|t| t.key != TAINT_KEY).collect();
        if let Some(effect) = effect {
            taints.push(
                serde_json::from_value(json!({"key": TAINT_KEY, "value": "gpu-fault", "effect": effect})).unwrap(),
            );
        }
        d.taints = Some(taints);
    }
    current.metadata.managed_fields = None;
    slices.replace(slice, &PostParams::default(), &current).await.is_ok_and(|stored| {
        let kept = stored.spec.devices.iter().flatten().find(|d| d.name == device).and_then(|d| d.taints.clone());
        kept.unwrap_or_default().iter().any(|t| t.key == TAINT_KEY) == effect.is_some()
    })
}

#[tokio::test]
async fn a_pod_on_a_tainted_device_moves_to_a_healthy_one_and_the_model_says_why() {
    let Some((client, class)) = dra_cluster("device health").await else { return };
    cluster::install_crds(&client).await;
    cluster::apply_namespace(&client, NAMESPACE, "agent-operator-e2e").await;
    let apply = PatchParams::apply("agent-operator-e2e").force();
    let model = gpu_model(NAME, NAMESPACE, &class, &json!({}));
    let models: Api<Model> = Api::namespaced(client.clone(), NAMESPACE);
    models.patch(NAME, &apply, &Patch::Apply(&model)).await.expect("the Model is admitted");
    let controller = cluster::ModelController::start(&client, NAMESPACE);

    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    wait_for(|| {
        let pods = pods.clone();
        async move { serving_pod(&pods).await.is_some() }
    })
    .await;
    let first = serving_pod(&pods).await.unwrap();
    let (slice, device) = held_device(&client, &first).await.expect("the serving pod's claim is allocated");
    if taint(&client, &slice, &device, Some("NoSchedule")).await {
        wait_for(|| {
            let models = models.clone();
            let device = device.clone();
            async move {
                let status = models.get(NAME).await.ok().and_then(|m| m.status);
                let conditions = status.map(|s| s.conditions).unwrap_or_default();
                conditions
                    .iter()
                    .any(|c| c.type_ == "DevicesHealthy" && c.status == "False" && c.message.contains(&device))
            }
        })
        .await;
        wait_for(|| {
            let (pods, client, first, device) = (pods.clone(), client.clone(), first.clone(), device.clone());
            async move {
                let Some(next) = serving_pod(&pods).await.filter(|p| *p != first) else { return false };
                held_device(&client, &next).await.is_some_and(|(_, held)| held != device)
            }
        })
        .await;
        assert!(taint(&client, &slice, &device, None).await, "the e2e taint is removed");
    } else {
        eprintln!("SKIPPED the taint step: the API server did not keep spec.devices[].taints (DRADeviceTaints off?)");
    }

    controller.stop().await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces.delete(NAMESPACE, &DeleteParams::default()).await.unwrap();
}

#[tokio::test]
async fn two_models_naming_one_shared_claim_run_on_the_same_devices() {
    let Some((client, class)) = dra_cluster("shared-claim").await else { return };
    let namespace = "agent-operator-e2e-shared";
    cluster::install_crds(&client).await;
    cluster::apply_namespace(&client, namespace, "agent-operator-e2e").await;
    let apply = PatchParams::apply("agent-operator-e2e").force();
    let models: Api<Model> = Api::namespaced(client.clone(), namespace);
    for name in ["shared-a", "shared-b"] {
        let shared = json!({"sharedClaimName": "one-gpu", "sharing": {"strategy": "TimeSlicing"}});
        let model = gpu_model(name, namespace, &class, &shared);
        models.patch(name, &apply, &Patch::Apply(&model)).await.expect("the Model is admitted");
    }
    let controller = cluster::ModelController::start(&client, namespace);
    let claims: Api<ResourceClaim> = Api::namespaced(client.clone(), namespace);
    // The one claim is allocated and reserved for a pod of each Model.
    wait_for(|| {
        let claims = claims.clone();
        async move {
            let Ok(Some(claim)) = claims.get_opt("one-gpu").await else { return false };
            let status = claim.status.unwrap_or_default();
            let holders: Vec<String> = status.reserved_for.unwrap_or_default().into_iter().map(|r| r.name).collect();
            status.allocation.is_some()
                && holders.iter().any(|p| p.starts_with("shared-a-"))
                && holders.iter().any(|p| p.starts_with("shared-b-"))
        }
    })
    .await;
    controller.stop().await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces.delete(namespace, &DeleteParams::default()).await.unwrap();
    // The shared claim is not owned by the Models: it goes with its namespace here.
}
