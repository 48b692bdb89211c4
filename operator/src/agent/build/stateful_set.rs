//! The agent's StatefulSet: one hardened pod running `agent-runtime serve`, with a data volume
//! from a claim template that outlives suspension (scale to 0) and deletion of the Agent.

use std::collections::BTreeMap;

use agent_crds::agent::OperatingMode;
use agent_crds::runtime_config::{METRICS_PORT, RUNTIME_PORT};
use k8s_openapi::api::apps::v1::{
    StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec, StatefulSetUpdateStrategy,
};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, EnvVarSource,
    HTTPGetAction, KeyToPath, ObjectFieldSelector, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile, SecretVolumeSource,
    SecurityContext, Volume, VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

use super::BuildInput;
use super::labels::{
    CONFIG_DIR, CONFIG_HASH_ANNOTATION, DATA_VOLUME, RUNTIME_CONFIG_KEY, child_meta, config_map_name, data_claim_name,
    headless_service_name, selector_labels, service_account_name, workload_labels,
};
use crate::agent::task::suspended_after_task;
use crate::quantity::parse_bytes;

/// UID and GID the runtime runs as (the distroless `nonroot` user).
const RUNTIME_UID: i64 = 65532;

/// Builds the agent's StatefulSet; `config_hash` goes on the pod template so a new RuntimeConfig rolls the pod.
pub fn build_stateful_set(input: &BuildInput<'_>, config_hash: &str) -> StatefulSet {
    let agent = input.agent;
    // A `Once` agent whose task finished under `completionPolicy: Suspend` stops like a
    // suspended one: no pod, the volume (memory, sessions, the task's result) kept.
    let replicas = match agent.spec.operating_mode {
        OperatingMode::Running if !suspended_after_task(agent) => 1,
        OperatingMode::Running | OperatingMode::Suspended => 0,
    };
    let mut pod_labels = workload_labels(agent);
    pod_labels.retain(|key, _| key != super::labels::MANAGED_BY_LABEL);
    let mut metadata = child_meta(agent, agent.name_any());
    metadata.labels = Some(workload_labels(agent));
    StatefulSet {
        metadata,
        spec: Some(StatefulSetSpec {
            replicas: Some(replicas),
            service_name: Some(headless_service_name(agent)),
            selector: LabelSelector { match_labels: Some(selector_labels(agent)), ..LabelSelector::default() },
            update_strategy: Some(StatefulSetUpdateStrategy {
                type_: Some("RollingUpdate".to_owned()),
                ..StatefulSetUpdateStrategy::default()
            }),
            // Memory and sessions are the agent: they survive suspension and deletion of the Agent.
            persistent_volume_claim_retention_policy: Some(StatefulSetPersistentVolumeClaimRetentionPolicy {
                when_deleted: Some("Retain".to_owned()),
                when_scaled: Some("Retain".to_owned()),
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    annotations: Some(pod_annotations(config_hash)),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod_spec(input)),
            },
            volume_claim_templates: Some(vec![data_claim_template(input)]),
            ..StatefulSetSpec::default()
        }),
        status: None,
    }
}

/// The config digest (a changed config rolls the pod) and the conventional Prometheus scrape
/// annotations, pointing at the runtime's metrics port.
fn pod_annotations(config_hash: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (CONFIG_HASH_ANNOTATION.to_owned(), config_hash.to_owned()),
        ("prometheus.io/scrape".to_owned(), "true".to_owned()),
        ("prometheus.io/port".to_owned(), METRICS_PORT.to_string()),
        ("prometheus.io/path".to_owned(), "/metrics".to_owned()),
    ])
}

fn pod_spec(input: &BuildInput<'_>) -> PodSpec {
    let agent = input.agent;
    let runtime = &agent.spec.runtime;
    let (secret_volumes, secret_mounts) = secret_volumes(input);
    let mut volumes = vec![
        Volume {
            name: "config".to_owned(),
            config_map: Some(ConfigMapVolumeSource {
                name: config_map_name(agent),
                items: Some(vec![KeyToPath {
                    key: RUNTIME_CONFIG_KEY.to_owned(),
                    path: RUNTIME_CONFIG_KEY.to_owned(),
                    ..KeyToPath::default()
                }]),
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        },
        Volume { name: "tmp".to_owned(), empty_dir: Some(EmptyDirVolumeSource::default()), ..Volume::default() },
    ];
    volumes.extend(secret_volumes);
    let mut mounts = vec![
        VolumeMount {
            name: "config".to_owned(),
            mount_path: CONFIG_DIR.to_owned(),
            read_only: Some(true),
            ..VolumeMount::default()
        },
        VolumeMount {
            name: DATA_VOLUME.to_owned(),
            mount_path: input.paths.data_dir.clone(),
            ..VolumeMount::default()
        },
        VolumeMount { name: "tmp".to_owned(), mount_path: "/tmp".to_owned(), ..VolumeMount::default() },
    ];
    mounts.extend(secret_mounts);
    PodSpec {
        service_account_name: Some(service_account_name(agent)),
        // The runtime reports its status (and, delegating, manages its children) with this
        // token; the agent's Role bounds what it may do.
        automount_service_account_token: Some(true),
        enable_service_links: Some(false),
        termination_grace_period_seconds: Some(30),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(RUNTIME_UID),
            run_as_group: Some(RUNTIME_UID),
            fs_group: Some(RUNTIME_UID),
            fs_group_change_policy: Some("OnRootMismatch".to_owned()),
            seccomp_profile: Some(SeccompProfile { type_: "RuntimeDefault".to_owned(), ..SeccompProfile::default() }),
            ..PodSecurityContext::default()
        }),
        containers: vec![Container {
            name: "agent".to_owned(),
            image: Some(runtime.image.clone().unwrap_or_else(|| input.default_image.to_owned())),
            args: Some(vec![
                "serve".to_owned(),
                "--config".to_owned(),
                format!("{CONFIG_DIR}/{RUNTIME_CONFIG_KEY}"),
                "--metrics-addr".to_owned(),
                format!("0.0.0.0:{METRICS_PORT}"),
            ]),
            env: Some(runtime_env(input)),
            ports: Some(container_ports()),
            // Liveness only asks "is the process alive"; readiness asks "can it serve" (model reached).
            liveness_probe: Some(http_probe("/healthz", 10, 3)),
            readiness_probe: Some(http_probe("/readyz", 5, 3)),
            // Opening the vector store and loading the embedding model can take a while on first start.
            startup_probe: Some(http_probe("/healthz", 2, 60)),
            resources: Some(runtime.resources.clone().unwrap_or_else(default_resources)),
            security_context: Some(SecurityContext {
                allow_privilege_escalation: Some(false),
                read_only_root_filesystem: Some(true),
                run_as_non_root: Some(true),
                capabilities: Some(Capabilities { drop: Some(vec!["ALL".to_owned()]), ..Capabilities::default() }),
                seccomp_profile: Some(SeccompProfile {
                    type_: "RuntimeDefault".to_owned(),
                    ..SeccompProfile::default()
                }),
                ..SecurityContext::default()
            }),
            volume_mounts: Some(mounts),
            ..Container::default()
        }],
        volumes: Some(volumes),
        node_selector: Some(runtime.node_selector.clone()).filter(|s| !s.is_empty()),
        tolerations: Some(runtime.tolerations.clone()).filter(|t| !t.is_empty()),
        priority_class_name: runtime.priority_class_name.clone(),
        ..PodSpec::default()
    }
}

/// The API port (`http`) and the metrics port (`metrics`).
/// The runtime's environment: its log level and, when the operator exports traces, the standard
/// OpenTelemetry variables naming the collector, the sampler and this agent as the service.
fn runtime_env(input: &BuildInput<'_>) -> Vec<EnvVar> {
    let value = |name: &str, value: String| EnvVar { name: name.to_owned(), value: Some(value), ..EnvVar::default() };
    let mut env = vec![value("RUST_LOG", "info".to_owned())];
    let Some(traces) = &input.config.traces else { return env };
    env.push(EnvVar {
        name: "POD_NAME".to_owned(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: "metadata.name".to_owned(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    });
    env.extend(traces.variables().into_iter().map(|(name, v)| value(name, v)));
    let namespace = input.agent.namespace().unwrap_or_default();
    env.push(value("OTEL_SERVICE_NAME", input.agent.name_any()));
    env.push(value(
        "OTEL_RESOURCE_ATTRIBUTES",
        format!("k8s.namespace.name={namespace},k8s.pod.name=$(POD_NAME),service.namespace={namespace}"),
    ));
    env
}

fn container_ports() -> Vec<ContainerPort> {
    let port = |name: &str, number: u16| ContainerPort {
        name: Some(name.to_owned()),
        container_port: i32::from(number),
        protocol: Some("TCP".to_owned()),
        ..ContainerPort::default()
    };
    vec![port("http", RUNTIME_PORT), port("metrics", METRICS_PORT)]
}

fn http_probe(path: &str, period_seconds: i32, failure_threshold: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::String("http".to_owned()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period_seconds),
        failure_threshold: Some(failure_threshold),
        timeout_seconds: Some(2),
        ..Probe::default()
    }
}

fn default_resources() -> ResourceRequirements {
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_owned(), Quantity("100m".to_owned())),
            ("memory".to_owned(), Quantity("256Mi".to_owned())),
        ])),
        limits: Some(BTreeMap::from([("memory".to_owned(), Quantity("1Gi".to_owned()))])),
        ..ResourceRequirements::default()
    }
}

/// One read-only volume per referenced Secret, holding only the keys the agent uses.
fn secret_volumes(input: &BuildInput<'_>) -> (Vec<Volume>, Vec<VolumeMount>) {
    input
        .secret_keys
        .iter()
        .enumerate()
        .map(|(index, (secret, keys))| {
            let name = format!("secret-{index}");
            let volume = Volume {
                name: name.clone(),
                secret: Some(SecretVolumeSource {
                    secret_name: Some(secret.clone()),
                    items: Some(
                        keys.iter()
                            .map(|key| KeyToPath { key: key.clone(), path: key.clone(), ..KeyToPath::default() })
                            .collect(),
                    ),
                    default_mode: Some(0o440),
                    ..SecretVolumeSource::default()
                }),
                ..Volume::default()
            };
            let mount = VolumeMount {
                name,
                mount_path: format!("{}/{secret}", input.paths.secrets_dir),
                read_only: Some(true),
                ..VolumeMount::default()
            };
            (volume, mount)
        })
        .unzip()
}

/// The claim template. Its size is immutable once the StatefulSet exists, so the existing size is
/// kept there and growth goes through [`build_grown_claim`] instead.
fn data_claim_template(input: &BuildInput<'_>) -> PersistentVolumeClaim {
    let storage = &input.agent.spec.memory.storage;
    let size = input.existing_claim_size.unwrap_or(&storage.size);
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(DATA_VOLUME.to_owned()),
            labels: Some(selector_labels(input.agent)),
            ..ObjectMeta::default()
        },
        spec: Some(claim_spec(size, storage.storage_class_name.clone())),
        status: None,
    }
}

fn claim_spec(size: &str, storage_class_name: Option<String>) -> PersistentVolumeClaimSpec {
    PersistentVolumeClaimSpec {
        access_modes: Some(vec!["ReadWriteOnce".to_owned()]),
        storage_class_name,
        resources: Some(VolumeResourceRequirements {
            requests: Some(BTreeMap::from([("storage".to_owned(), Quantity(size.to_owned()))])),
            ..VolumeResourceRequirements::default()
        }),
        ..PersistentVolumeClaimSpec::default()
    }
}

/// A patch raising the existing data claim's request when `memory.storage.size` grew beyond it.
/// Only the request is applied: the rest of the claim belongs to the StatefulSet controller.
pub fn build_grown_claim(input: &BuildInput<'_>) -> Option<PersistentVolumeClaim> {
    let current = parse_bytes(input.existing_claim_request?)?;
    let wanted = &input.agent.spec.memory.storage.size;
    if parse_bytes(wanted)? <= current {
        return None;
    }
    Some(PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(data_claim_name(input.agent)),
            namespace: input.agent.namespace(),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([("storage".to_owned(), Quantity(wanted.clone()))])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        status: None,
    })
}
