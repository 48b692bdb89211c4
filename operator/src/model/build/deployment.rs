//! The engine Deployment of a served Model: the pinned engine image with engine-correct
//! arguments, the weights mounted read-only, the accelerators claimed through DRA (or a classic
//! extended resource), probes sized for weight loading and Prometheus scrape annotations.

use std::collections::BTreeMap;

use agent_crds::model::{Engine, SERVED_MODEL_PORT};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, ExecAction, HTTPGetAction, ImageVolumeSource,
    PersistentVolumeClaimVolumeSource, PodResourceClaim, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    ResourceClaim, ResourceRequirements, SeccompProfile, SecurityContext, Toleration, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

use super::cache::CACHE_VOLUME;
use super::claim_template::template_name;
use super::labels::{CLAIM_NAME, cache_claim_name, child_meta, selector_labels, workload_labels};
use super::{BuildInput, Devices};
use crate::agent::build::labels::MANAGED_BY_LABEL;
use crate::model::engine::{self, EngineInput, GroupRole};
use crate::model::source::{MODELS_DIR, Source};

/// Prometheus scrape annotations on the serving pods.
pub const SCRAPE_ANNOTATION: &str = "prometheus.io/scrape";
/// Port of the scrape annotations.
pub const SCRAPE_PORT_ANNOTATION: &str = "prometheus.io/port";
/// Path of the scrape annotations.
pub const SCRAPE_PATH_ANNOTATION: &str = "prometheus.io/path";
/// Taint key GPU nodes usually carry; tolerated by accelerated pods that name no toleration.
pub const GPU_TAINT: &str = "nvidia.com/gpu";
/// UID our runtime image runs as.
const RUNTIME_UID: i64 = 65532;

/// Builds the Deployment. While the cache is not ready it has no replicas, so no accelerator is
/// held while weights download. Once it is ready, a Model with `serve.autoscaling` leaves
/// `replicas` out: the field belongs to its autoscaler (see `apply`'s hand-off).
pub fn build_deployment(input: &BuildInput<'_>) -> Deployment {
    let model = input.model;
    let serve = input.serve;
    let devices = Devices::of(serve);
    let replicas = match (input.cache_ready, &serve.autoscaling) {
        (false, _) => Some(0),
        (true, None) => Some(serve.replicas),
        (true, Some(_)) => None,
    };
    let mut metadata = child_meta(model, model.name_any());
    metadata.labels = Some(workload_labels(model));
    Deployment {
        metadata,
        spec: Some(DeploymentSpec {
            replicas,
            selector: LabelSelector { match_labels: Some(selector_labels(model)), ..LabelSelector::default() },
            // A surge replica would need accelerators the old one still holds.
            strategy: (devices != Devices::None)
                .then(|| DeploymentStrategy { type_: Some("Recreate".to_owned()), rolling_update: None }),
            template: pod_template(input, None),
            ..DeploymentSpec::default()
        }),
        status: None,
    }
}

/// The serving pod template: a Deployment's pods (`role` `None`), or the leader or the workers
/// of a LeaderWorkerSet group. Every pod gets the same security context, volumes and accelerator
/// claim; only pods that serve the API (not workers) get probes, the HTTP port and scrape
/// annotations.
pub fn pod_template(input: &BuildInput<'_>, role: Option<GroupRole>) -> PodTemplateSpec {
    let devices = Devices::of(input.serve);
    let mut pod_labels = workload_labels(input.model);
    pod_labels.retain(|key, _| key != MANAGED_BY_LABEL);
    let serves_api = role != Some(GroupRole::Worker);
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(pod_labels),
            annotations: Some(scrape_annotations(input.serve.engine)).filter(|a| serves_api && !a.is_empty()),
            ..ObjectMeta::default()
        }),
        spec: Some(pod_spec(input, &devices, role)),
    }
}

fn scrape_annotations(engine: Engine) -> BTreeMap<String, String> {
    engine::metrics(engine).map_or_else(BTreeMap::new, |metrics| {
        BTreeMap::from([
            (SCRAPE_ANNOTATION.to_owned(), "true".to_owned()),
            (SCRAPE_PORT_ANNOTATION.to_owned(), metrics.port.to_string()),
            (SCRAPE_PATH_ANNOTATION.to_owned(), metrics.path.to_owned()),
        ])
    })
}

fn pod_spec(input: &BuildInput<'_>, devices: &Devices<'_>, role: Option<GroupRole>) -> PodSpec {
    let serve = input.serve;
    let accelerated = *devices != Devices::None;
    let mut tolerations = serve.tolerations.clone();
    if accelerated && tolerations.is_empty() {
        tolerations.push(Toleration {
            key: Some(GPU_TAINT.to_owned()),
            operator: Some("Exists".to_owned()),
            effect: Some("NoSchedule".to_owned()),
            ..Toleration::default()
        });
    }
    PodSpec {
        automount_service_account_token: Some(false),
        // Service links would inject variables such as `VLLM_PORT`, which engines misread as settings.
        enable_service_links: Some(false),
        termination_grace_period_seconds: Some(60),
        // Every engine runs as a non-root user (the restricted Pod Security Standard), whatever
        // its image's default user; the cache volume is group-writable for it.
        security_context: Some(PodSecurityContext {
            seccomp_profile: Some(runtime_default()),
            run_as_non_root: Some(true),
            run_as_user: Some(RUNTIME_UID),
            run_as_group: Some(RUNTIME_UID),
            fs_group: Some(RUNTIME_UID),
            fs_group_change_policy: Some("OnRootMismatch".to_owned()),
            ..PodSecurityContext::default()
        }),
        containers: vec![container(input, devices, role)],
        volumes: Some(volumes(input)),
        resource_claims: match devices {
            Devices::Dra(accelerator) => Some(vec![match &accelerator.shared_claim_name {
                Some(shared) => PodResourceClaim {
                    name: CLAIM_NAME.to_owned(),
                    resource_claim_name: Some(shared.clone()),
                    ..PodResourceClaim::default()
                },
                None => PodResourceClaim {
                    name: CLAIM_NAME.to_owned(),
                    resource_claim_template_name: Some(template_name(input.model, accelerator)),
                    ..PodResourceClaim::default()
                },
            }]),
            Devices::None | Devices::Extended(..) => None,
        },
        tolerations: Some(tolerations).filter(|t| !t.is_empty()),
        priority_class_name: serve.priority_class_name.clone(),
        ..PodSpec::default()
    }
}

fn container(input: &BuildInput<'_>, devices: &Devices<'_>, role: Option<GroupRole>) -> Container {
    let serve = input.serve;
    let engine_kind = serve.engine;
    let accelerated = *devices != Devices::None;
    let served_name = input.served_name();
    let model_path = input.source.model_path();
    let mut launch = engine::launch(
        engine_kind,
        &EngineInput {
            served_name: &served_name,
            model_path: &model_path,
            devices: devices.count(),
            context_length: input.model.spec.capabilities.context_length,
            tools: input.model.spec.capabilities.tools,
            tool_call_parser: serve.tool_call_parser.as_deref(),
        },
    );
    if let Some(role) = role {
        launch = engine::group_launch(engine_kind, launch.clone(), role, serve.nodes).unwrap_or(launch);
    }
    // The Model's extra arguments go last (where the engine takes the last value, they win);
    // a worker runs no engine command line to give them to.
    if role != Some(GroupRole::Worker) {
        launch.args.extend(serve.args.iter().cloned());
    }
    let args = launch.args;
    let mut env: Vec<EnvVar> =
        launch.env.into_iter().map(|(name, value)| EnvVar { name, value: Some(value), ..EnvVar::default() }).collect();
    if !engine::image_is_non_root(engine_kind) {
        // Images made for root keep HOME (and the caches under it: Hugging Face, Triton, torch
        // compile, Ollama keys) at /root, which user 65532 cannot write; scratch space can.
        for (name, value) in [("HOME", "/tmp"), ("XDG_CACHE_HOME", "/tmp/.cache")] {
            if !env.iter().any(|v| v.name == name) {
                env.push(EnvVar { name: name.to_owned(), value: Some(value.to_owned()), ..EnvVar::default() });
            }
        }
    }
    if engine::writes_model_volume(engine_kind) && !input.source.needs_download() {
        // The weights are mounted read-only; the engine's own store goes to scratch space.
        for var in env.iter_mut().filter(|v| v.name == "OLLAMA_MODELS") {
            var.value = Some("/tmp/ollama".to_owned());
        }
    }
    let mut ports = vec![ContainerPort {
        name: Some("http".to_owned()),
        container_port: i32::from(SERVED_MODEL_PORT),
        protocol: Some("TCP".to_owned()),
        ..ContainerPort::default()
    }];
    if let Some(metrics) = engine::metrics(engine_kind).filter(|m| m.port != SERVED_MODEL_PORT) {
        ports.push(ContainerPort {
            name: Some("metrics".to_owned()),
            container_port: i32::from(metrics.port),
            protocol: Some("TCP".to_owned()),
            ..ContainerPort::default()
        });
    }
    if role == Some(GroupRole::Leader) {
        ports.push(ContainerPort {
            name: Some("ray".to_owned()),
            container_port: i32::from(engine::RAY_PORT),
            protocol: Some("TCP".to_owned()),
            ..ContainerPort::default()
        });
    }
    let serves_api = role != Some(GroupRole::Worker);
    let health = engine::health_path(engine_kind);
    let alive = liveness_path(engine_kind);
    let startup_budget = engine::startup_budget_seconds(engine_kind, accelerated);
    let readiness = if engine_kind == Engine::Ollama {
        // `/api/tags` answers before the model is imported; `ollama show` only after.
        exec_probe(vec!["ollama".to_owned(), "show".to_owned(), served_name.clone()], 10, 3)
    } else {
        http_probe(health, 10, 3)
    };
    Container {
        name: "server".to_owned(),
        image: Some(input.image()),
        command: launch.command,
        args: Some(args).filter(|a| !a.is_empty()),
        env: Some(env).filter(|e| !e.is_empty()),
        ports: Some(ports).filter(|_| serves_api),
        readiness_probe: Some(readiness).filter(|_| serves_api),
        liveness_probe: Some(http_probe(alive, 30, 5)).filter(|_| serves_api),
        startup_probe: Some(http_probe(alive, 10, startup_budget / 10)).filter(|_| serves_api),
        resources: Some(resources(input, devices)),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities { drop: Some(vec!["ALL".to_owned()]), ..Capabilities::default() }),
            read_only_root_filesystem: engine::image_is_non_root(engine_kind).then_some(true),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(mounts(input)),
        ..Container::default()
    }
}

fn liveness_path(engine_kind: Engine) -> &'static str {
    match engine_kind {
        Engine::Nim => "/v1/health/live",
        Engine::Runtime => "/healthz",
        other => engine::health_path(other),
    }
}

fn resources(input: &BuildInput<'_>, devices: &Devices<'_>) -> ResourceRequirements {
    let mut resources = input.serve.resources.clone().unwrap_or_else(|| ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_owned(), Quantity("1".to_owned())),
            ("memory".to_owned(), Quantity("2Gi".to_owned())),
        ])),
        ..ResourceRequirements::default()
    });
    match devices {
        Devices::None => {}
        Devices::Extended(name, count) => {
            let quantity = Quantity(count.to_string());
            resources.limits.get_or_insert_with(BTreeMap::new).insert((*name).to_owned(), quantity.clone());
            resources.requests.get_or_insert_with(BTreeMap::new).insert((*name).to_owned(), quantity);
        }
        Devices::Dra(_) => {
            resources.claims = Some(vec![ResourceClaim { name: CLAIM_NAME.to_owned(), request: None }]);
        }
    }
    resources
}

fn volumes(input: &BuildInput<'_>) -> Vec<Volume> {
    let model = match input.source {
        Source::Pvc { claim, .. } => Volume {
            name: CACHE_VOLUME.to_owned(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim.clone(),
                read_only: Some(true),
            }),
            ..Volume::default()
        },
        Source::Oci { image } => Volume {
            name: CACHE_VOLUME.to_owned(),
            image: Some(ImageVolumeSource {
                reference: Some(image.clone()),
                pull_policy: Some("IfNotPresent".to_owned()),
            }),
            ..Volume::default()
        },
        Source::HuggingFace { .. } | Source::Https { .. } => Volume {
            name: CACHE_VOLUME.to_owned(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: cache_claim_name(input.model),
                read_only: Some(!engine::writes_model_volume(input.serve.engine)),
            }),
            ..Volume::default()
        },
    };
    let mut volumes = vec![
        model,
        Volume { name: "tmp".to_owned(), empty_dir: Some(EmptyDirVolumeSource::default()), ..Volume::default() },
    ];
    if engine::needs_shared_memory(input.serve.engine) {
        volumes.push(Volume {
            name: "shm".to_owned(),
            empty_dir: Some(EmptyDirVolumeSource {
                medium: Some("Memory".to_owned()),
                size_limit: Some(Quantity("2Gi".to_owned())),
            }),
            ..Volume::default()
        });
    }
    volumes
}

fn mounts(input: &BuildInput<'_>) -> Vec<VolumeMount> {
    let writable = engine::writes_model_volume(input.serve.engine) && input.source.needs_download();
    let mut mounts = vec![
        VolumeMount {
            name: CACHE_VOLUME.to_owned(),
            mount_path: MODELS_DIR.to_owned(),
            read_only: Some(!writable),
            ..VolumeMount::default()
        },
        VolumeMount { name: "tmp".to_owned(), mount_path: "/tmp".to_owned(), ..VolumeMount::default() },
    ];
    if engine::needs_shared_memory(input.serve.engine) {
        mounts.push(VolumeMount {
            name: "shm".to_owned(),
            mount_path: "/dev/shm".to_owned(),
            ..VolumeMount::default()
        });
    }
    mounts
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
        timeout_seconds: Some(5),
        ..Probe::default()
    }
}

fn exec_probe(command: Vec<String>, period_seconds: i32, failure_threshold: i32) -> Probe {
    Probe {
        exec: Some(ExecAction { command: Some(command) }),
        period_seconds: Some(period_seconds),
        failure_threshold: Some(failure_threshold),
        timeout_seconds: Some(5),
        ..Probe::default()
    }
}

fn runtime_default() -> SeccompProfile {
    SeccompProfile { type_: "RuntimeDefault".to_owned(), ..SeccompProfile::default() }
}
