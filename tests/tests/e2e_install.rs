//! End to end, the install a user does, against the cluster in `KUBECONFIG`: `helm install` of
//! the chart (CRDs included) into a fresh namespace, the operator Deployment available and its
//! leader Lease held, the example Model and Agent reconciled (Agent `Accepted=True`, its
//! StatefulSet, data claim and pod admitted under the `restricted` Pod Security Standard both
//! namespaces enforce, its egress NetworkPolicy), the operator's ServiceAccount unable to read
//! Secrets (asked of the API server's authorizer), `helm upgrade` with changed values taking effect, and
//! `helm uninstall` leaving what the chart's README promises: the CRDs, the Agents, their
//! workloads and their volumes. Skipped, with a printed reason, without `KUBECONFIG` or `helm`.
//!
//! The chart is installed with `watchNamespace` set to this test's agents namespace, so its
//! operator leaves alone the namespaces the other e2e tests (which may run at the same time)
//! reconcile themselves.
//!
//! On a cluster whose pods do not really run (a fake kubelet marks them Running and Ready), the
//! operator pods cannot take the Lease or reconcile. This is detected by asking an operator pod
//! for `/healthz` through the API server's pod proxy (or forced with `AGENT_E2E_PODS_RUN=true|
//! false`). The checks that need the pod itself (its Lease identity, a live leader after the
//! upgrade) are then skipped with the reason, and a stand-in takes the pod's place: the
//! `agent-operator` binary, started here with the Deployment's own environment and a token of the
//! chart's ServiceAccount, so the chart's RBAC and configuration are still what reconciles.
//!
//! Env: `AGENT_E2E_OPERATOR_IMAGE`, `AGENT_E2E_RUNTIME_IMAGE` (images to install instead of the
//! chart's defaults, e.g. ones loaded into the cluster from `scripts/build-images.sh`),
//! `AGENT_OPERATOR_BIN` (the stand-in binary; default: `agent-operator` built beside this test).

mod cluster;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use agent_crds::{Agent, Model};
use agent_tests::{repo_root, tools_bin};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Container, Namespace, PersistentVolumeClaim, Pod, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::core::{DynamicObject, GroupVersionKind};
use kube::discovery::ApiResource;
use kube::{Api, Client, ResourceExt};

const RELEASE: &str = "agent-operator-e2e-install";
const RELEASE_NAMESPACE: &str = "agent-operator-e2e-install";
const AGENTS_NAMESPACE: &str = "agent-operator-e2e-install-agents";
const CHART: &str = "charts/agent-operator";
const STAND_IN: &str = "e2e-install-stand-in";
const FIELD_MANAGER: &str = "agent-operator-e2e-install";
/// How long any one state may take to appear.
const WAIT: Duration = Duration::from_secs(180);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chart_installs_upgrades_and_uninstalls_on_a_real_cluster() {
    if std::env::var_os("KUBECONFIG").is_none() {
        eprintln!("SKIPPED e2e install: KUBECONFIG is not set, so there is no cluster to run against");
        return;
    }
    if let Err(why) = helm(&["version", "--short"]) {
        eprintln!("SKIPPED e2e install: no usable helm ({why}); scripts/install-tools.sh installs it");
        return;
    }
    let client = Client::try_default().await.expect("a client for the cluster in KUBECONFIG");
    remove_leftovers(&client).await;

    let installed = install(&client).await;
    let holder = wait_lease_holder(&client, &installed.lease_name, installed.pods_run.is_ok()).await;
    eprintln!("e2e install: Lease {RELEASE_NAMESPACE}/{} held by {holder}", installed.lease_name);
    let claims = reconcile_example(&client).await;
    upgrade(&client, &installed).await;
    uninstall(&client, installed, &claims).await;

    let namespaces: Api<Namespace> = Api::all(client.clone());
    for namespace in [AGENTS_NAMESPACE, RELEASE_NAMESPACE] {
        namespaces.delete(namespace, &DeleteParams::default()).await.unwrap();
    }
}

/// What the install left for the later steps.
struct Installed {
    lease_name: String,
    /// `Ok` when the operator pods really run, else why not.
    pods_run: Result<(), String>,
    /// The operator in place of pods that do not really run.
    stand_in: Option<StandIn>,
}

/// `helm install` into a fresh namespace; waits for the CRDs and the operator Deployment.
async fn install(client: &Client) -> Installed {
    cluster::apply_namespace(client, AGENTS_NAMESPACE, FIELD_MANAGER).await;
    // Both namespaces enforce the restricted Pod Security Standard, as the chart's README says
    // to label them: the operator's pods and the agent pods it builds must be admitted there.
    for namespace in [RELEASE_NAMESPACE, AGENTS_NAMESPACE] {
        cluster::enforce_restricted(client, namespace, FIELD_MANAGER).await;
    }
    let mut values = vec![format!("watchNamespace={AGENTS_NAMESPACE}")];
    values.extend(image_values());
    let mut install = vec!["install", RELEASE, CHART, "-n", RELEASE_NAMESPACE, "--create-namespace"];
    for value in &values {
        install.extend(["--set", value.as_str()]);
    }
    helm(&install).unwrap_or_else(|e| panic!("helm install: {e}"));
    wait_for_crds(client).await;
    let deployment = wait_available(client, RELEASE).await;
    let container = operator_container(&deployment);
    let env = plain_env(&container);
    assert_eq!(
        env.get("WATCH_NAMESPACE").map(String::as_str),
        Some(AGENTS_NAMESPACE),
        "the chart passes watchNamespace"
    );
    let lease_name = env.get("LEASE_NAME").cloned().expect("the chart sets LEASE_NAME");
    assert_no_secret_access(client).await;
    let pods_run = pods_really_run(client, &deployment, &container).await;
    let stand_in = match &pods_run {
        Ok(()) => None,
        Err(why) => {
            eprintln!(
                "NOTE e2e install: the operator pods do not really run ({why}); the checks that need the pod itself are SKIPPED and a stand-in runs the operator with the Deployment's environment as the chart's ServiceAccount"
            );
            Some(StandIn::start(client, &deployment, &container).await)
        }
    };
    Installed { lease_name, pods_run, stand_in }
}

/// Applies examples/chat-agent.yaml and waits for the installed operator to reconcile it: the
/// Agent Accepted, the Model's status for its generation, the StatefulSet and its data claims
/// (made by the StatefulSet controller, not the kubelet, so on any cluster). Returns the claims.
async fn reconcile_example(client: &Client) -> Vec<String> {
    apply_example_in(client, AGENTS_NAMESPACE).await;
    let agents: Api<Agent> = Api::namespaced(client.clone(), AGENTS_NAMESPACE);
    wait_until("the Agent helpdesk to be Accepted=True", || {
        let agents = agents.clone();
        async move {
            let agent = agents.get("helpdesk").await.map_err(|e| e.to_string())?;
            let accepted = agent.status.as_ref().and_then(|s| s.conditions.iter().find(|c| c.type_ == "Accepted"));
            match accepted {
                Some(c) if c.status == "True" => Ok(()),
                other => Err(format!("Accepted is {other:?}")),
            }
        }
    })
    .await;
    let models: Api<Model> = Api::namespaced(client.clone(), AGENTS_NAMESPACE);
    wait_until("the Model gpt-small to have a status for its generation", || {
        let models = models.clone();
        async move {
            let model = models.get("gpt-small").await.map_err(|e| e.to_string())?;
            let observed = model.status.as_ref().and_then(|s| s.observed_generation);
            if observed.is_some() && observed == model.metadata.generation {
                Ok(())
            } else {
                Err(format!("status {:?}, generation {:?}", model.status, model.metadata.generation))
            }
        }
    })
    .await;
    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), AGENTS_NAMESPACE);
    let statefulset = wait_until("the Agent's StatefulSet helpdesk", || {
        let statefulsets = statefulsets.clone();
        async move { statefulsets.get_opt("helpdesk").await.map_err(|e| e.to_string())?.ok_or_else(|| "absent".into()) }
    })
    .await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), AGENTS_NAMESPACE);
    wait_until("the agent pod helpdesk-0, admitted under the restricted Pod Security Standard", || {
        let pods = pods.clone();
        async move { pods.get_opt("helpdesk-0").await.map_err(|e| e.to_string())?.ok_or_else(|| "absent".into()) }
    })
    .await;
    let policies: Api<NetworkPolicy> = Api::namespaced(client.clone(), AGENTS_NAMESPACE);
    let policy = policies.get("helpdesk").await.expect("the agent's NetworkPolicy");
    let types = policy.spec.and_then(|s| s.policy_types).unwrap_or_default();
    assert_eq!(types, ["Ingress", "Egress"], "the agent's egress is restricted by default");
    let claims = data_claims(&statefulset);
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), AGENTS_NAMESPACE);
    for claim in &claims {
        wait_until(&format!("the data claim {claim}"), || {
            let pvcs = pvcs.clone();
            async move { pvcs.get_opt(claim).await.map_err(|e| e.to_string())?.map(|_| ()).ok_or_else(|| "absent".into()) }
        })
        .await;
    }
    claims
}

/// The chart's ServiceAccount may read no Secret, neither in the agents' namespace nor in its
/// own, asked of the API server's authorizer (a SubjectAccessReview).
async fn assert_no_secret_access(client: &Client) {
    let reviews: Api<SubjectAccessReview> = Api::all(client.clone());
    for namespace in [AGENTS_NAMESPACE, RELEASE_NAMESPACE] {
        for verb in ["get", "list", "watch"] {
            let review = SubjectAccessReview {
                spec: SubjectAccessReviewSpec {
                    user: Some(format!("system:serviceaccount:{RELEASE_NAMESPACE}:{RELEASE}")),
                    resource_attributes: Some(ResourceAttributes {
                        namespace: Some(namespace.to_owned()),
                        verb: Some(verb.to_owned()),
                        resource: Some("secrets".to_owned()),
                        ..ResourceAttributes::default()
                    }),
                    ..SubjectAccessReviewSpec::default()
                },
                ..SubjectAccessReview::default()
            };
            let answer = reviews.create(&PostParams::default(), &review).await.expect("a SubjectAccessReview");
            let allowed = answer.status.is_some_and(|s| s.allowed);
            assert!(!allowed, "the operator may {verb} Secrets in {namespace}");
        }
    }
}

/// `helm upgrade --reuse-values` with one replica and text logs; checks the Deployment rolled
/// out with both, and (when the pods really run) that a live pod leads again.
async fn upgrade(client: &Client, installed: &Installed) {
    let mut upgrade = vec!["upgrade", RELEASE, CHART, "-n", RELEASE_NAMESPACE, "--reuse-values"];
    upgrade.extend(["--set", "replicaCount=1", "--set", "logging.format=text"]);
    helm(&upgrade).unwrap_or_else(|e| panic!("helm upgrade: {e}"));
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), RELEASE_NAMESPACE);
    let upgraded = wait_until("the upgraded Deployment rolled out with 1 replica", || {
        let deployments = deployments.clone();
        async move {
            let deployment = deployments.get(RELEASE).await.map_err(|e| e.to_string())?;
            let (spec, status) = (deployment.spec.as_ref(), deployment.status.as_ref());
            let rolled_out = spec.and_then(|s| s.replicas) == Some(1)
                && status.and_then(|s| s.observed_generation) >= deployment.metadata.generation
                && status.and_then(|s| s.updated_replicas) == Some(1)
                && status.and_then(|s| s.replicas) == Some(1)
                && status.and_then(|s| s.available_replicas) == Some(1);
            if rolled_out {
                Ok(deployment)
            } else {
                Err(format!("spec.replicas {:?}, status {status:?}", spec.and_then(|s| s.replicas)))
            }
        }
    })
    .await;
    let env = plain_env(&operator_container(&upgraded));
    assert_eq!(env.get("LOG_FORMAT").map(String::as_str), Some("text"), "logging.format=text reached LOG_FORMAT");
    assert_eq!(env.get("WATCH_NAMESPACE").map(String::as_str), Some(AGENTS_NAMESPACE), "--reuse-values kept the rest");
    if installed.pods_run.is_ok() {
        let holder = wait_lease_holder(client, &installed.lease_name, true).await;
        eprintln!("e2e install: after the upgrade the Lease is held by {holder}");
    } else {
        eprintln!("SKIPPED e2e install: a live leader among the upgraded pods (the pods do not really run)");
    }
}

/// `helm uninstall`: the operator goes; what the chart's README promises stays. Helm never
/// deletes the CRDs of crds/, so the Agents stay, and with them their workloads and volumes
/// (owned by the Agent, not by the release).
async fn uninstall(client: &Client, installed: Installed, claims: &[String]) {
    helm(&["uninstall", RELEASE, "-n", RELEASE_NAMESPACE, "--wait", "--timeout", "180s"])
        .unwrap_or_else(|e| panic!("helm uninstall: {e}"));
    // Its ServiceAccount, and so its token, is gone with the release.
    drop(installed.stand_in);
    wait_until("the operator Deployment and ServiceAccount to be gone", || {
        let client = client.clone();
        async move {
            let deployment = Api::<Deployment>::namespaced(client.clone(), RELEASE_NAMESPACE).get_opt(RELEASE).await;
            let account = Api::<ServiceAccount>::namespaced(client, RELEASE_NAMESPACE).get_opt(RELEASE).await;
            match (deployment.map_err(|e| e.to_string())?, account.map_err(|e| e.to_string())?) {
                (None, None) => Ok(()),
                (Some(_), _) => Err("the Deployment is still there".into()),
                (None, Some(_)) => Err("the ServiceAccount is still there".into()),
            }
        }
    })
    .await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for name in agent_operator::crd_check::required_crds() {
        assert!(crds.get_opt(&name).await.unwrap().is_some(), "helm uninstall kept the CRD {name}");
    }
    let agents: Api<Agent> = Api::namespaced(client.clone(), AGENTS_NAMESPACE);
    assert!(agents.get_opt("helpdesk").await.unwrap().is_some(), "the Agent outlives the operator");
    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), AGENTS_NAMESPACE);
    assert!(statefulsets.get_opt("helpdesk").await.unwrap().is_some(), "the Agent's StatefulSet stays");
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), AGENTS_NAMESPACE);
    for claim in claims {
        assert!(pvcs.get_opt(claim).await.unwrap().is_some(), "the agent's volume {claim} stays after uninstall");
    }
}

/// Runs helm (from the tools folder or `PATH`) and returns its stdout, or why it failed.
fn helm(args: &[&str]) -> Result<String, String> {
    let path = format!("{}:{}", tools_bin().display(), std::env::var("PATH").unwrap_or_default());
    // helm talks to the cluster for seconds; the multi-threaded runtime keeps serving meanwhile.
    let output = tokio::task::block_in_place(|| {
        Command::new("helm").args(args).current_dir(repo_root()).env("PATH", path).output()
    })
    .map_err(|e| format!("cannot run helm: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!("helm {args:?} failed ({}): {}", output.status, String::from_utf8_lossy(&output.stderr)))
    }
}

/// `--set` values that replace the chart's images when the environment names others.
fn image_values() -> Vec<String> {
    let mut values = Vec::new();
    if let Ok(image) = std::env::var("AGENT_E2E_OPERATOR_IMAGE") {
        let (repository, tag) = split_image(&image);
        values.push(format!("image.repository={repository}"));
        values.push(format!("image.tag={tag}"));
    }
    if let Ok(image) = std::env::var("AGENT_E2E_RUNTIME_IMAGE") {
        values.push(format!("agentRuntimeImage={image}"));
    }
    values
}

/// `registry:5000/name:tag` -> (`registry:5000/name`, `tag`); no tag means `latest`.
fn split_image(image: &str) -> (&str, &str) {
    match image.rsplit_once(':') {
        Some((repository, tag)) if !tag.contains('/') => (repository, tag),
        _ => (image, "latest"),
    }
}

/// A release or namespaces left by an interrupted run would make the install fail or not fresh.
async fn remove_leftovers(client: &Client) {
    if helm(&["status", RELEASE, "-n", RELEASE_NAMESPACE]).is_ok() {
        helm(&["uninstall", RELEASE, "-n", RELEASE_NAMESPACE, "--wait", "--timeout", "180s"])
            .unwrap_or_else(|e| panic!("removing the release of an earlier run: {e}"));
    }
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for namespace in [AGENTS_NAMESPACE, RELEASE_NAMESPACE] {
        if namespaces.get_opt(namespace).await.unwrap().is_some() {
            let _ = namespaces.delete(namespace, &DeleteParams::default()).await;
        }
        wait_until(&format!("the namespace {namespace} of an earlier run to be deleted"), || {
            let namespaces = namespaces.clone();
            async move {
                match namespaces.get_opt(namespace).await.map_err(|e| e.to_string())? {
                    None => Ok(()),
                    Some(ns) => Err(format!("phase {:?}", ns.status.and_then(|s| s.phase))),
                }
            }
        })
        .await;
    }
}

async fn wait_for_crds(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for name in agent_operator::crd_check::required_crds() {
        wait_until(&format!("the CRD {name} installed by helm to be Established"), || {
            let crds = crds.clone();
            let name = name.clone();
            async move {
                let crd = crds.get_opt(&name).await.map_err(|e| e.to_string())?.ok_or("absent")?;
                let conditions = crd.status.and_then(|s| s.conditions).unwrap_or_default();
                if conditions.iter().any(|c| c.type_ == "Established" && c.status == "True") {
                    Ok(())
                } else {
                    Err(format!("conditions {conditions:?}"))
                }
            }
        })
        .await;
    }
}

/// Waits for the Deployment to be Available for its current generation; on timeout the panic
/// names the pods' waiting reasons (an image that cannot be pulled, for example).
async fn wait_available(client: &Client, name: &str) -> Deployment {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), RELEASE_NAMESPACE);
    let pods: Api<Pod> = Api::namespaced(client.clone(), RELEASE_NAMESPACE);
    wait_until(&format!("the operator Deployment {name} to be Available"), || {
        let (deployments, pods) = (deployments.clone(), pods.clone());
        async move {
            let deployment = deployments.get(name).await.map_err(|e| e.to_string())?;
            let status = deployment.status.clone().unwrap_or_default();
            let available = status.conditions.iter().flatten().any(|c| c.type_ == "Available" && c.status == "True");
            if available && status.observed_generation >= deployment.metadata.generation {
                return Ok(deployment);
            }
            let selector = selector(&deployment);
            let waiting: Vec<String> = pods
                .list(&ListParams::default().labels(&selector))
                .await
                .map_err(|e| e.to_string())?
                .items
                .iter()
                .flat_map(|pod| pod.status.iter().flat_map(|s| s.container_statuses.iter().flatten()))
                .filter_map(|c| c.state.as_ref()?.waiting.as_ref())
                .map(|w| format!("{}: {}", w.reason.as_deref().unwrap_or("?"), w.message.as_deref().unwrap_or("")))
                .collect();
            Err(format!(
                "Available={available}, pods waiting: {waiting:?} (images not in a registry the cluster can pull? \
                 set AGENT_E2E_OPERATOR_IMAGE and AGENT_E2E_RUNTIME_IMAGE)"
            ))
        }
    })
    .await
}

fn selector(deployment: &Deployment) -> String {
    let labels = deployment.spec.as_ref().and_then(|s| s.selector.match_labels.clone()).unwrap_or_default();
    labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}

fn operator_container(deployment: &Deployment) -> Container {
    let pod = deployment.spec.as_ref().and_then(|s| s.template.spec.as_ref()).expect("the Deployment has a pod spec");
    pod.containers.first().cloned().expect("the Deployment has a container")
}

/// The container's environment variables with literal values (not `valueFrom`).
fn plain_env(container: &Container) -> BTreeMap<String, String> {
    container.env.iter().flatten().filter_map(|e| Some((e.name.clone(), e.value.clone()?))).collect()
}

/// The operator's HTTP port (the container port named `http`).
fn http_port(container: &Container) -> i32 {
    container
        .ports
        .iter()
        .flatten()
        .find(|p| p.name.as_deref() == Some("http"))
        .map(|p| p.container_port)
        .expect("the operator container has a port named http")
}

/// Whether the operator pods really run: one answers `/healthz` through the API server's pod
/// proxy (a fake kubelet marks pods Ready without any process behind them).
async fn pods_really_run(client: &Client, deployment: &Deployment, container: &Container) -> Result<(), String> {
    match std::env::var("AGENT_E2E_PODS_RUN").as_deref() {
        Ok("true") => return Ok(()),
        Ok("false") => return Err("AGENT_E2E_PODS_RUN=false".into()),
        _ => {}
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), RELEASE_NAMESPACE);
    let port = http_port(container);
    let mut last = String::from("no operator pod");
    for _ in 0..5 {
        let listed =
            pods.list(&ListParams::default().labels(&selector(deployment))).await.map_err(|e| e.to_string())?;
        for pod in &listed.items {
            let path = format!("/api/v1/namespaces/{RELEASE_NAMESPACE}/pods/{}:{port}/proxy/healthz", pod.name_any());
            let request = hyper::Request::get(path).body(Vec::new()).expect("a valid proxy request");
            match tokio::time::timeout(Duration::from_secs(5), client.request_text(request)).await {
                Ok(Ok(body)) if body.trim() == "ok" => return Ok(()),
                Ok(Ok(body)) => last = format!("{} answered {body:?} on /healthz", pod.name_any()),
                Ok(Err(error)) => last = format!("{}'s /healthz through the pod proxy: {error}", pod.name_any()),
                Err(_) => last = format!("{}'s /healthz through the pod proxy: no answer in 5 s", pod.name_any()),
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    Err(last)
}

/// Waits for the Lease to have a holder and returns it. With `pods_run`, the holder must be one
/// of the operator's current pods (the chart sets `POD_NAME` from the pod's name); otherwise it
/// may be the stand-in.
async fn wait_lease_holder(client: &Client, lease_name: &str, pods_run: bool) -> String {
    let leases: Api<Lease> = Api::namespaced(client.clone(), RELEASE_NAMESPACE);
    let pods: Api<Pod> = Api::namespaced(client.clone(), RELEASE_NAMESPACE);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), RELEASE_NAMESPACE);
    wait_until(&format!("the Lease {lease_name} to be held by an operator replica"), || {
        let (leases, pods, deployments) = (leases.clone(), pods.clone(), deployments.clone());
        async move {
            let lease = leases.get_opt(lease_name).await.map_err(|e| e.to_string())?.ok_or("no Lease yet")?;
            let holder = lease.spec.and_then(|s| s.holder_identity).filter(|h| !h.is_empty()).ok_or("no holder")?;
            let deployment = deployments.get(RELEASE).await.map_err(|e| e.to_string())?;
            let live: Vec<String> = pods
                .list(&ListParams::default().labels(&selector(&deployment)))
                .await
                .map_err(|e| e.to_string())?
                .items
                .iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .map(ResourceExt::name_any)
                .collect();
            if live.contains(&holder) || (!pods_run && holder == STAND_IN) {
                Ok(holder)
            } else {
                Err(format!("held by {holder}, operator pods {live:?}"))
            }
        }
    })
    .await
}

/// Applies the objects of examples/chat-agent.yaml (a Model and an Agent) in `namespace`.
async fn apply_example_in(client: &Client, namespace: &str) {
    let apply = PatchParams::apply(FIELD_MANAGER).force();
    let text = std::fs::read_to_string(repo_root().join("examples/chat-agent.yaml")).unwrap();
    for document in serde_yaml::Deserializer::from_str(&text) {
        let mut object: serde_json::Value = serde::Deserialize::deserialize(document).unwrap();
        let (group, version) = object["apiVersion"].as_str().unwrap().split_once('/').unwrap();
        let gvk = GroupVersionKind::gvk(group, version, object["kind"].as_str().unwrap());
        let name = object["metadata"]["name"].as_str().unwrap().to_owned();
        object["metadata"]["namespace"] = serde_json::json!(namespace);
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &ApiResource::from_gvk(&gvk));
        api.patch(&name, &apply, &Patch::Apply(&object))
            .await
            .unwrap_or_else(|e| panic!("examples/chat-agent.yaml {name}: {e}"));
    }
}

/// The claims the StatefulSet controller makes for the first replica: `<template>-<set>-0`.
fn data_claims(statefulset: &StatefulSet) -> Vec<String> {
    let templates = statefulset.spec.as_ref().and_then(|s| s.volume_claim_templates.clone()).unwrap_or_default();
    templates.iter().map(|t| format!("{}-{}-0", t.name_any(), statefulset.name_any())).collect()
}

/// The `agent-operator` binary in place of an operator pod that does not really run: the
/// Deployment's literal environment, `POD_NAME`/`POD_NAMESPACE` as the downward API would set
/// them, a loopback `HTTP_ADDR`, and a kubeconfig holding a token of the chart's ServiceAccount.
/// Killed when dropped.
struct StandIn {
    child: Child,
    log: PathBuf,
}

impl StandIn {
    async fn start(client: &Client, deployment: &Deployment, container: &Container) -> Self {
        let binary = std::env::var_os("AGENT_OPERATOR_BIN").map_or_else(
            || {
                // deps/<this test> -> the profile folder, where cargo puts the workspace's binaries.
                let exe = std::env::current_exe().unwrap();
                exe.parent().and_then(|deps| deps.parent()).unwrap().join("agent-operator")
            },
            PathBuf::from,
        );
        assert!(
            binary.is_file(),
            "the pods do not really run, and the stand-in {} is missing: `cargo build -p agent-operator` or set AGENT_OPERATOR_BIN",
            binary.display()
        );
        let account = deployment
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .and_then(|p| p.service_account_name.clone())
            .expect("the chart's Deployment names its ServiceAccount");
        let dir = std::env::temp_dir().join(format!("{STAND_IN}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let kubeconfig = dir.join("kubeconfig");
        std::fs::write(&kubeconfig, service_account_kubeconfig(client, &account).await).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = dir.join("operator.log");
        let child = Command::new(&binary)
            .env_clear()
            .envs(plain_env(container))
            .env("POD_NAME", STAND_IN)
            .env("POD_NAMESPACE", RELEASE_NAMESPACE)
            .env("HTTP_ADDR", format!("127.0.0.1:{port}"))
            .env("KUBECONFIG", &kubeconfig)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let mut stand_in = Self { child, log };
        tokio::time::sleep(Duration::from_secs(2)).await;
        if let Some(status) = stand_in.child.try_wait().unwrap() {
            panic!("the stand-in operator exited at start ({status}):\n{}", stand_in.log_tail());
        }
        stand_in
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines().rev().take(30).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("the stand-in operator's log:\n{}", self.log_tail());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A kubeconfig for the cluster in `client`'s config that authenticates as the ServiceAccount
/// `RELEASE_NAMESPACE/account`, with a one-hour token from the TokenRequest API.
async fn service_account_kubeconfig(client: &Client, account: &str) -> String {
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), RELEASE_NAMESPACE);
    let request = TokenRequest {
        spec: TokenRequestSpec { audiences: Vec::new(), expiration_seconds: Some(3600), ..TokenRequestSpec::default() },
        ..TokenRequest::default()
    };
    let token: TokenRequest = accounts
        .create_subresource("token", account, &PostParams::default(), &request)
        .await
        .unwrap_or_else(|e| panic!("a token for the ServiceAccount {account}: {e}"));
    let token = token.status.expect("the TokenRequest has a status").token;
    let config = kube::Config::infer().await.expect("the KUBECONFIG cluster");
    let mut cluster = serde_json::json!({"server": config.cluster_url.to_string()});
    if let Some(certs) = &config.root_cert {
        let pem = certs
            .iter()
            .map(|der| {
                // PEM wraps the base64 body at 64 columns.
                let body = base64(der);
                let lines: Vec<&str> = body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
                format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", lines.join("\n"))
            })
            .collect::<Vec<_>>()
            .concat();
        cluster["certificate-authority-data"] = base64(pem.as_bytes()).into();
    }
    if config.accept_invalid_certs {
        cluster["insecure-skip-tls-verify"] = true.into();
    }
    if let Some(name) = &config.tls_server_name {
        cluster["tls-server-name"] = name.clone().into();
    }
    let kubeconfig = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "e2e", "cluster": cluster}],
        "users": [{"name": account, "user": {"token": token}}],
        "contexts": [{"name": "e2e", "context": {"cluster": "e2e", "user": account, "namespace": RELEASE_NAMESPACE}}],
        "current-context": "e2e",
    });
    serde_json::to_string(&kubeconfig).unwrap()
}

/// Standard base64, through `ByteString`'s serde form (which is exactly that).
fn base64(bytes: &[u8]) -> String {
    match serde_json::to_value(k8s_openapi::ByteString(bytes.to_vec())).unwrap() {
        serde_json::Value::String(text) => text,
        other => panic!("ByteString serialises as a string, not {other}"),
    }
}

/// Polls `check` every second until it returns `Ok`, for at most [`WAIT`]; then panics naming
/// what was awaited and the last state seen.
async fn wait_until<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let last = match check().await {
            Ok(value) => return value,
            Err(state) => state,
        };
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {} s waiting for {what}; last seen: {last}",
            WAIT.as_secs()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
