//! A mocked Kubernetes API server (kube-rs over `tower-test`) that answers from a set of stored
//! objects and records every call, so tests can assert the exact requests a reconcile makes.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use http::{Method, Request, Response, StatusCode};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};

/// One request the operator made.
#[derive(Clone, Debug)]
pub struct Call {
    /// HTTP method.
    pub method: Method,
    /// Path without query.
    pub path: String,
    /// Query string.
    pub query: String,
    /// JSON body, if any.
    pub body: Option<Value>,
}

impl Call {
    /// Whether the call changes state.
    pub fn is_write(&self) -> bool {
        self.method != Method::GET
    }
}

/// Stored objects by API path; what the mock server returns for GET and LIST.
#[derive(Clone, Default)]
pub struct Cluster {
    objects: Arc<Mutex<BTreeMap<String, Value>>>,
    /// Paths whose PATCH answers 500.
    failing: Arc<Mutex<Vec<String>>>,
    /// Path prefixes every request to which answers 403, as RBAC does for what a role lacks.
    forbidden: Arc<Mutex<Vec<String>>>,
}

impl Cluster {
    /// Stores `object` at its canonical path.
    pub fn put(&self, object: Value) -> &Self {
        self.objects.lock().unwrap().insert(path_of(&object), object);
        self
    }

    /// Makes writes to `path` fail with a 500.
    pub fn fail_writes_to(&self, path: &str) -> &Self {
        self.failing.lock().unwrap().push(path.to_owned());
        self
    }

    /// Answers 403 to every request under `prefix`, as the API server does for a resource the
    /// operator's role does not grant.
    pub fn forbid(&self, prefix: &str) -> &Self {
        self.forbidden.lock().unwrap().push(prefix.to_owned());
        self
    }

    /// A client talking to this cluster, and the task recording its calls. The task ends (and
    /// yields the calls) when every clone of the client is dropped.
    pub fn client(&self) -> (Client, tokio::task::JoinHandle<Vec<Call>>) {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let cluster = self.clone();
        let task = tokio::spawn(async move {
            let mut calls = Vec::new();
            while let Some((request, send)) = handle.next_request().await {
                let (parts, body) = request.into_parts();
                let bytes = body.collect_bytes().await.unwrap();
                let call = Call {
                    method: parts.method.clone(),
                    path: parts.uri.path().to_owned(),
                    query: parts.uri.query().unwrap_or_default().to_owned(),
                    body: serde_json::from_slice(&bytes).ok(),
                };
                let (status, answer) = cluster.answer(&call);
                calls.push(call);
                send.send_response(
                    Response::builder().status(status).body(Body::from(serde_json::to_vec(&answer).unwrap())).unwrap(),
                );
            }
            calls
        });
        (Client::new(service, "default"), task)
    }

    fn answer(&self, call: &Call) -> (StatusCode, Value) {
        let mut objects = self.objects.lock().unwrap();
        if self.forbidden.lock().unwrap().iter().any(|prefix| call.path.starts_with(prefix)) {
            return (StatusCode::FORBIDDEN, status(403, "Forbidden", &format!("{} is forbidden", call.path)));
        }
        if self.failing.lock().unwrap().contains(&call.path) && call.is_write() {
            return (StatusCode::INTERNAL_SERVER_ERROR, status(500, "InternalError", "injected failure"));
        }
        match call.method {
            Method::GET => {
                if let Some(object) = objects.get(&call.path) {
                    return (StatusCode::OK, object.clone());
                }
                let prefix = format!("{}/", call.path);
                let items: Vec<Value> = objects
                    .iter()
                    .filter(|(path, _)| path.starts_with(&prefix) && !path[prefix.len()..].contains('/'))
                    .map(|(_, object)| object.clone())
                    .collect();
                if is_collection(&call.path) {
                    (
                        StatusCode::OK,
                        json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "1"}, "items": items}),
                    )
                } else {
                    (StatusCode::NOT_FOUND, status(404, "NotFound", &format!("{} not found", call.path)))
                }
            }
            Method::PATCH => {
                let target = call.path.strip_suffix("/status").unwrap_or(&call.path).to_owned();
                let body = call.body.clone().unwrap_or_else(|| json!({}));
                let mut object = objects.get(&target).cloned().unwrap_or_else(|| json!({}));
                merge(&mut object, body);
                if object["metadata"]["uid"].is_null() {
                    object["metadata"]["uid"] = json!("00000000-0000-0000-0000-000000000001");
                }
                // Every write moves the object's resourceVersion, as in the API server.
                let version = object["metadata"]["resourceVersion"].as_str().and_then(|v| v.parse::<u64>().ok());
                object["metadata"]["resourceVersion"] = json!(version.unwrap_or(0).saturating_add(1).to_string());
                objects.insert(target, object.clone());
                (StatusCode::OK, object)
            }
            Method::DELETE => match objects.remove(&call.path) {
                Some(object) => (StatusCode::OK, object),
                None => (StatusCode::NOT_FOUND, status(404, "NotFound", &format!("{} not found", call.path))),
            },
            _ => (StatusCode::CREATED, call.body.clone().unwrap_or_else(|| json!({}))),
        }
    }

    /// Deletes the stored object at `path`, as a garbage collector or a user would.
    pub fn remove(&self, path: &str) -> Option<Value> {
        self.objects.lock().unwrap().remove(path)
    }

    /// Every stored object, as the operator's watches would list them.
    pub fn objects(&self) -> Vec<Value> {
        self.objects.lock().unwrap().values().cloned().collect()
    }

    /// The stored object at `path`.
    pub fn get(&self, path: &str) -> Option<Value> {
        self.objects.lock().unwrap().get(path).cloned()
    }
}

/// Merges `patch` into `target` the way an apply of owned fields does for these tests: objects
/// merge key by key, everything else is replaced.
pub fn merge(target: &mut Value, patch: Value) {
    match (target, patch) {
        (Value::Object(target), Value::Object(patch)) => {
            for (key, value) in patch {
                merge(target.entry(key).or_insert(Value::Null), value);
            }
        }
        (target, patch) => *target = patch,
    }
}

fn is_collection(path: &str) -> bool {
    // .../namespaces/<ns>/<plural> has an even number of segments after the group/version prefix.
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let after_version = if segments[0] == "api" { &segments[2..] } else { &segments[3..] };
    after_version.len() % 2 == 1
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Status", "status": "Failure", "code": code, "reason": reason, "message": message, "metadata": {}})
}

/// The API path of an object.
pub fn path_of(object: &Value) -> String {
    let api_version = object["apiVersion"].as_str().unwrap();
    let kind = object["kind"].as_str().unwrap();
    if kind == "ResourceSlice" {
        return format!("/apis/{api_version}/resourceslices/{}", object["metadata"]["name"].as_str().unwrap());
    }
    if kind == "CustomResourceDefinition" {
        return format!(
            "/apis/{api_version}/customresourcedefinitions/{}",
            object["metadata"]["name"].as_str().unwrap()
        );
    }
    let plural = match kind {
        "Agent" => "agents",
        "Model" => "models",
        "Recipe" => "recipes",
        "ConfigMap" => "configmaps",
        "Secret" => "secrets",
        "Service" => "services",
        "ServiceAccount" => "serviceaccounts",
        "NetworkPolicy" => "networkpolicies",
        "StatefulSet" => "statefulsets",
        "PersistentVolumeClaim" => "persistentvolumeclaims",
        "Deployment" => "deployments",
        "Job" => "jobs",
        "Pod" => "pods",
        "ResourceClaimTemplate" => "resourceclaimtemplates",
        "ResourceClaim" => "resourceclaims",
        "Lease" => "leases",
        "Role" => "roles",
        "RoleBinding" => "rolebindings",
        "EndpointSlice" => "endpointslices",
        "HorizontalPodAutoscaler" => "horizontalpodautoscalers",
        "ScaledObject" => "scaledobjects",
        "LeaderWorkerSet" => "leaderworkersets",
        other => panic!("no plural for {other}"),
    };
    let prefix = if api_version.contains('/') { format!("/apis/{api_version}") } else { format!("/api/{api_version}") };
    let namespace = object["metadata"]["namespace"].as_str().unwrap_or("default");
    format!("{prefix}/namespaces/{namespace}/{plural}/{}", object["metadata"]["name"].as_str().unwrap())
}

/// Root of the repository.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The documents of an example file.
pub fn example_documents(file: &str) -> Vec<Value> {
    use serde::Deserialize;
    let text = std::fs::read_to_string(repo_root().join(file)).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap())
        .filter(|doc| !doc.is_null())
        .collect()
}

/// The document of `kind` named `name` in an example file.
pub fn example(file: &str, kind: &str, name: &str) -> Value {
    example_documents(file)
        .into_iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("{file} has no {kind} {name}"))
}

/// A Secret holding `keys`.
pub fn secret(namespace: &str, name: &str, keys: &[&str]) -> Value {
    let data: serde_json::Map<String, Value> = keys.iter().map(|k| ((*k).to_owned(), json!("c2VjcmV0"))).collect();
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace, "resourceVersion": "7"}, "data": data})
}

/// Marks a Model ready, as its controller would.
pub fn ready(mut model: Value) -> Value {
    model["status"] = json!({"conditions": [{
        "type": "Ready", "status": "True", "reason": "EndpointReachable", "message": "",
        "lastTransitionTime": "2026-01-01T00:00:00Z"
    }]});
    model
}

/// How a pod template breaks the Pod Security Standards (Kubernetes 1.30+ rules), as sentences;
/// `restricted` adds its rules to baseline's.
pub fn pod_security_violations(pod: &Value, restricted: bool) -> Vec<String> {
    let spec = &pod["spec"];
    let mut found = Vec::new();
    for field in ["hostNetwork", "hostPID", "hostIPC"] {
        if spec[field] == true {
            found.push(format!("{field} is set"));
        }
    }
    let allowed_volumes =
        ["configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"];
    for volume in spec["volumes"].as_array().into_iter().flatten() {
        if volume.get("hostPath").is_some() {
            found.push(format!("volume {} is a hostPath", volume["name"]));
        }
        let kinds: Vec<&String> =
            volume.as_object().into_iter().flatten().map(|(k, _)| k).filter(|k| *k != "name").collect();
        if restricted && !kinds.iter().all(|k| allowed_volumes.contains(&k.as_str())) {
            found.push(format!("volume {} has a type restricted does not allow: {kinds:?}", volume["name"]));
        }
    }
    let pod_context = &spec["securityContext"];
    let containers = spec["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(spec["initContainers"].as_array().into_iter().flatten());
    for container in containers {
        let name = container["name"].as_str().unwrap_or_default();
        let context = &container["securityContext"];
        if context["privileged"] == true {
            found.push(format!("container {name} is privileged"));
        }
        for port in container["ports"].as_array().into_iter().flatten() {
            if port.get("hostPort").is_some_and(|p| p != 0) {
                found.push(format!("container {name} uses a hostPort"));
            }
        }
        let seccomp =
            context["seccompProfile"]["type"].as_str().or_else(|| pod_context["seccompProfile"]["type"].as_str());
        if seccomp == Some("Unconfined") {
            found.push(format!("container {name} runs seccomp Unconfined"));
        }
        let added: Vec<&str> =
            context["capabilities"]["add"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        if !restricted {
            continue;
        }
        if context["allowPrivilegeEscalation"] != false {
            found.push(format!("container {name} does not set allowPrivilegeEscalation: false"));
        }
        if context["runAsNonRoot"] != true && pod_context["runAsNonRoot"] != true {
            found.push(format!("container {name} does not set runAsNonRoot: true"));
        }
        if context["runAsUser"] == 0 || pod_context["runAsUser"] == 0 {
            found.push(format!("container {name} runs as user 0"));
        }
        if !matches!(seccomp, Some("RuntimeDefault" | "Localhost")) {
            found.push(format!("container {name} has no RuntimeDefault or Localhost seccomp profile"));
        }
        let dropped: Vec<&str> =
            context["capabilities"]["drop"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        if !dropped.contains(&"ALL") {
            found.push(format!("container {name} does not drop ALL capabilities"));
        }
        if added.iter().any(|c| *c != "NET_BIND_SERVICE") {
            found.push(format!("container {name} adds capabilities {added:?}"));
        }
    }
    found
}

/// The Model named `name` in the example file `file`, with a uid so its children carry owner
/// references.
pub fn example_model(file: &str, name: &str) -> agent_crds::model::Model {
    let mut document = example(file, "Model", name);
    document["metadata"]["uid"] = json!("0b7a6c1e-2222-4333-8444-555566667777");
    serde_json::from_value(document).unwrap()
}

/// The children the Model controller builds for the served `model` (validated first; panics
/// with the problems when it is invalid), with `runtime_image` for the runtime engine.
#[allow(dead_code)] // Each test binary compiles this module; not all build Models.
pub fn build_children(
    model: &agent_crds::model::Model,
    runtime_image: &str,
    cache_ready: bool,
) -> agent_operator::model::build::ModelChildren {
    let source =
        agent_operator::model::validate::validate(model).unwrap_or_else(|e| panic!("{e}")).expect("a served Model");
    let input = agent_operator::model::build::BuildInput {
        model,
        serve: model.spec.serve.as_ref().expect("a served Model"),
        source: &source,
        runtime_image,
        cache_ready,
        cache_recorded: false,
    };
    agent_operator::model::build::build(&input)
}

/// Runs the repository's validator (Kubernetes 1.34 schemas, the CRDs) on `paths`; returns its
/// exit success and report.
pub fn validate_manifests(paths: &[&std::path::Path]) -> (bool, String) {
    let mut command = std::process::Command::new("python3");
    command.arg("scripts/validate_manifests.py").arg("-k").arg("1.34.0").arg("--require-docs");
    command.args(paths).current_dir(repo_root());
    let output = command.output().expect("python3 runs (scripts/install-tools.sh installs kubernetes-validate)");
    let report = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(!report.contains("missing python package"), "{report}");
    (output.status.success(), report)
}

/// A directory for this test process's files named `name`.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("agent-operator-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
