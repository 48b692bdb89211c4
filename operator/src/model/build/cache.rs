//! The model cache: a PersistentVolumeClaim filled once by a download Job (Hugging Face or
//! HTTPS sources), so replicas and restarts never download again.

use std::collections::BTreeMap;

use agent_crds::model::{CacheAccessMode, Model, ModelCache};
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, EmptyDirVolumeSource, EnvVar, EnvVarSource, PersistentVolumeClaim,
    PersistentVolumeClaimSpec, PersistentVolumeClaimVolumeSource, PodSecurityContext, PodSpec, PodTemplateSpec,
    ResourceRequirements, SeccompProfile, SecretKeySelector, SecurityContext, Volume, VolumeMount,
    VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::labels::{MODEL_LABEL, cache_claim_name, child_meta, download_job_name};
use crate::model::source::{MODELS_DIR, Source};

/// Size of the cache volume when the Model sets no `cache`.
pub const DEFAULT_CACHE_SIZE: &str = "20Gi";
/// Image of Hugging Face downloads (the client is installed at start, pinned).
pub const HF_DOWNLOADER_IMAGE: &str = "docker.io/library/python:3.13-slim";
/// Version of `huggingface_hub` the download Job installs.
pub const HF_HUB_VERSION: &str = "0.35.3";
/// Image of HTTPS downloads.
pub const CURL_IMAGE: &str = "docker.io/curlimages/curl:8.16.0";
/// UID and GID the download runs as; the volume is group-owned by it.
const DOWNLOAD_UID: i64 = 65532;
/// Name of the cache volume in pods.
pub const CACHE_VOLUME: &str = "models";

/// Annotation of the cache claim naming the source digest whose weights it holds.
pub const CACHE_SOURCE_ANNOTATION: &str = "agent-operator.dev/cached-source";

/// The cache claim; `filled` is the digest of the source whose download finished, recorded on
/// the claim so the cache stays ready whatever happens to the Job.
pub fn build_cache_claim(model: &Model, cache: Option<&ModelCache>, filled: Option<&str>) -> PersistentVolumeClaim {
    let size = cache.map_or(DEFAULT_CACHE_SIZE, |c| c.size.as_str());
    let mode = cache.map_or(CacheAccessMode::ReadWriteOnce, |c| c.access_mode);
    let mut metadata = child_meta(model, cache_claim_name(model));
    metadata.annotations =
        filled.map(|digest| BTreeMap::from([(CACHE_SOURCE_ANNOTATION.to_owned(), digest.to_owned())]));
    PersistentVolumeClaim {
        metadata,
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec![mode.as_str().to_owned()]),
            storage_class_name: cache.and_then(|c| c.storage_class_name.clone()),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([("storage".to_owned(), Quantity(size.to_owned()))])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        status: None,
    }
}

/// The Job downloading `source` into the cache claim; `None` for sources that need no download.
pub fn build_download_job(model: &Model, source: &Source, cache: Option<&ModelCache>) -> Option<Job> {
    let target = source.cache_dir();
    let env =
        |name: &str, value: &str| EnvVar { name: name.to_owned(), value: Some(value.to_owned()), ..EnvVar::default() };
    let (image, script, mut vars) = match source {
        Source::HuggingFace { repo, file, revision } => {
            let mut vars =
                vec![env("HF_REPO", repo), env("HF_REVISION", revision), env("HF_FILE", file.as_deref().unwrap_or(""))];
            vars.push(env("HF_HUB_VERSION", HF_HUB_VERSION));
            if let Some(token) = cache.and_then(|c| c.hf_token_secret_ref.as_ref()) {
                vars.push(EnvVar {
                    name: "HF_TOKEN".to_owned(),
                    value_from: Some(EnvVarSource {
                        secret_key_ref: Some(SecretKeySelector {
                            name: token.name.clone(),
                            key: token.key.clone(),
                            optional: Some(false),
                        }),
                        ..EnvVarSource::default()
                    }),
                    ..EnvVar::default()
                });
            }
            (HF_DOWNLOADER_IMAGE, HF_SCRIPT, vars)
        }
        Source::Https { url, file } => (CURL_IMAGE, HTTPS_SCRIPT, vec![env("URL", url), env("FILE", file)]),
        Source::Pvc { .. } | Source::Oci { .. } => return None,
    };
    vars.extend([env("TARGET_DIR", &target), env("HOME", "/tmp")]);
    let pod_labels = BTreeMap::from([
        (MODEL_LABEL.to_owned(), model.metadata.name.clone().unwrap_or_default()),
        ("app.kubernetes.io/component".to_owned(), "model-download".to_owned()),
    ]);
    Some(Job {
        metadata: child_meta(model, download_job_name(model, &source.digest())),
        spec: Some(JobSpec {
            backoff_limit: Some(4),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta { labels: Some(pod_labels), ..ObjectMeta::default() }),
                spec: Some(PodSpec {
                    restart_policy: Some("Never".to_owned()),
                    automount_service_account_token: Some(false),
                    enable_service_links: Some(false),
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        run_as_user: Some(DOWNLOAD_UID),
                        run_as_group: Some(DOWNLOAD_UID),
                        fs_group: Some(DOWNLOAD_UID),
                        fs_group_change_policy: Some("OnRootMismatch".to_owned()),
                        seccomp_profile: Some(runtime_default()),
                        ..PodSecurityContext::default()
                    }),
                    containers: vec![download_container(image, script, vars)],
                    volumes: Some(download_volumes(model)),
                    ..PodSpec::default()
                }),
            },
            ..JobSpec::default()
        }),
        status: None,
    })
}

fn download_container(image: &str, script: &str, vars: Vec<EnvVar>) -> Container {
    Container {
        name: "download".to_owned(),
        image: Some(image.to_owned()),
        command: Some(vec!["/bin/sh".to_owned(), "-c".to_owned(), script.to_owned()]),
        env: Some(vars),
        resources: Some(ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".to_owned(), Quantity("250m".to_owned())),
                ("memory".to_owned(), Quantity("256Mi".to_owned())),
            ])),
            limits: Some(BTreeMap::from([("memory".to_owned(), Quantity("2Gi".to_owned()))])),
            ..ResourceRequirements::default()
        }),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            capabilities: Some(Capabilities { drop: Some(vec!["ALL".to_owned()]), ..Capabilities::default() }),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(vec![
            VolumeMount { name: CACHE_VOLUME.to_owned(), mount_path: MODELS_DIR.to_owned(), ..VolumeMount::default() },
            VolumeMount { name: "tmp".to_owned(), mount_path: "/tmp".to_owned(), ..VolumeMount::default() },
        ]),
        ..Container::default()
    }
}

fn download_volumes(model: &Model) -> Vec<Volume> {
    vec![
        Volume {
            name: CACHE_VOLUME.to_owned(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: cache_claim_name(model),
                read_only: Some(false),
            }),
            ..Volume::default()
        },
        Volume { name: "tmp".to_owned(), empty_dir: Some(EmptyDirVolumeSource::default()), ..Volume::default() },
    ]
}

fn runtime_default() -> SeccompProfile {
    SeccompProfile { type_: "RuntimeDefault".to_owned(), ..SeccompProfile::default() }
}

/// Installs the pinned Hugging Face client and downloads one file or the whole repository.
/// Values come from the environment, never from the script text, so a URI cannot inject shell.
const HF_SCRIPT: &str = r#"set -eu
pip install --quiet --no-cache-dir --target /tmp/pip "huggingface_hub==${HF_HUB_VERSION}"
PYTHONPATH=/tmp/pip python3 - <<'PY'
import os
from huggingface_hub import hf_hub_download, snapshot_download
repo, revision, target = os.environ["HF_REPO"], os.environ["HF_REVISION"], os.environ["TARGET_DIR"]
if os.environ.get("HF_FILE"):
    hf_hub_download(repo, os.environ["HF_FILE"], revision=revision, local_dir=target)
else:
    snapshot_download(repo, revision=revision, local_dir=target)
PY"#;

/// Downloads one file, resuming a partial download, and renames it only when complete.
const HTTPS_SCRIPT: &str = r#"set -eu
mkdir -p "$TARGET_DIR"
curl -fL --retry 5 --retry-delay 5 -C - -o "$TARGET_DIR/$FILE.partial" "$URL"
mv "$TARGET_DIR/$FILE.partial" "$TARGET_DIR/$FILE""#;
