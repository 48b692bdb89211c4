//! What the e2e suites do alike on the cluster in `KUBECONFIG`.

// Each e2e test binary uses a part of this module.
#![allow(dead_code)]

use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::api::resource::v1::{DeviceClass, ResourceSlice};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};

/// Applies `namespace` and the Secrets `examples/chat-agent.yaml` names, under `field_manager`.
/// A client for the cluster in `KUBECONFIG`, or `None` after saying the `case` is skipped
/// because no cluster is configured.
pub async fn client_or_skip(case: &str) -> Option<Client> {
    if std::env::var_os("KUBECONFIG").is_none() {
        let case = if case.is_empty() { String::new() } else { format!(" {case}") };
        eprintln!("SKIPPED e2e{case}: KUBECONFIG is not set, so there is no cluster to run against");
        return None;
    }
    Some(Client::try_default().await.expect("a client for the cluster in KUBECONFIG"))
}

pub async fn apply_namespace(client: &Client, namespace: &str, field_manager: &str) {
    let apply = PatchParams::apply(field_manager).force();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let object = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}});
    namespaces.patch(namespace, &apply, &Patch::Apply(&object)).await.unwrap();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    for (name, key) in [("openai", "api-key"), ("helpdesk-api", "token")] {
        let secret = serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": {key: "e2e"}});
        secrets.patch(name, &apply, &Patch::Apply(&secret)).await.unwrap();
    }
}

/// Labels `namespace` to enforce the `restricted` Pod Security Standard (the API server's Pod
/// Security admission then refuses any pod that does not meet it), creating it if absent.
pub async fn enforce_restricted(client: &Client, namespace: &str, field_manager: &str) {
    let apply = PatchParams::apply(field_manager).force();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let object = serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": namespace, "labels": {
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/enforce-version": "latest"
        }}
    });
    namespaces.patch(namespace, &apply, &Patch::Apply(&object)).await.unwrap();
}

/// Applies the operator's CRDs and waits until each is Established.
pub async fn install_crds(client: &Client) {
    let apply = PatchParams::apply("agent-operator-e2e").force();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in agent_crds::crd::all() {
        crds.patch(&crd.name_any(), &apply, &Patch::Apply(&crd)).await.expect("the CRD is accepted by the API server");
    }
    for name in agent_operator::crd_check::required_crds() {
        wait_until_true(|| {
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
}

/// Polls `check` every second until it holds; panics after two minutes.
pub async fn wait_until_true<F, Fut>(mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..120 {
        if check().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    panic!("timed out after 120 s");
}

/// The Model controller, in-process, for `namespace`; stops (and is awaited) through
/// [`ModelController::stop`].
pub struct ModelController {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl ModelController {
    /// Starts it on `client`.
    pub fn start(client: &Client, namespace: &'static str) -> Self {
        use std::sync::Arc;
        let metrics = Arc::new(agent_operator::metrics::Metrics::default());
        let base = Arc::new(agent_operator::context::Context::new(client.clone(), metrics, "runtime:e2e".into(), None));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let context = Arc::new(agent_operator::model::ModelContext::new(base));
        let task = tokio::spawn(agent_operator::model::run(context, Some(namespace), async {
            let _ = stopped.await;
        }));
        Self { stop, task }
    }

    /// Stops it and waits until it has.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap();
    }
}

/// A driver with two or more devices in one pool, and a DeviceClass whose selector names it.
pub async fn two_device_class(client: &Client) -> Option<(String, String)> {
    let slices: Api<ResourceSlice> = Api::all(client.clone());
    let classes: Api<DeviceClass> = Api::all(client.clone());
    let slices = slices.list(&ListParams::default()).await.ok()?.items;
    let classes = classes.list(&ListParams::default()).await.ok()?.items;
    let drivers =
        slices.iter().filter(|s| s.spec.devices.as_ref().is_some_and(|d| d.len() >= 2)).map(|s| &s.spec.driver);
    for driver in drivers {
        let named = classes
            .iter()
            .find(|c| serde_json::to_string(&c.spec.selectors).unwrap_or_default().contains(driver.as_str()));
        if let Some(class) = named {
            return Some((driver.clone(), class.name_any()));
        }
    }
    None
}
