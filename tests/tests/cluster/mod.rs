//! What the e2e suites do alike on the cluster in `KUBECONFIG`.

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};

/// Applies `namespace` and the Secrets `examples/chat-agent.yaml` names, under `field_manager`.
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
