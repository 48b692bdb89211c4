//! The `Model` resource: an OpenAI-compatible model, either external (`endpoint`) or served in the
//! cluster (`serve`), with the capabilities the scheduler matches agents against.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ResourceRequirements, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::references::{ConfigMapKeyReference, SecretKeyReference};

pub mod autoscaling;
pub mod cold_start;

pub use self::autoscaling::{AutoscalingMetric, ModelAutoscaling};
pub use self::cold_start::{ColdStart, ColdStartPhase};

/// A model agents can use.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "agent-operator.dev",
    version = "v1alpha1",
    kind = "Model",
    doc = "A model agents can use: an external OpenAI-compatible endpoint or one served in the cluster.",
    namespaced,
    status = "ModelStatus",
    shortname = "mdl",
    category = "agent-operator",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Endpoint","type":"string","jsonPath":".status.endpoint"}"#,
    printcolumn = r#"{"name":"Engine","type":"string","jsonPath":".spec.serve.engine","priority":1}"#,
    printcolumn = r#"{"name":"Replicas","type":"integer","jsonPath":".status.replicas","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    scale(
        spec_replicas_path = ".spec.serve.replicas",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.selector"
    )
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "has(self.endpoint) != has(self.serve)",
    "message": "set exactly one of endpoint or serve"
}]))]
pub struct ModelSpec {
    /// An external OpenAI-compatible endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<ModelEndpoint>,
    /// A model served in the cluster by the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serve: Option<ModelServe>,
    /// How prompts are sent: `Chat` (chat template) or `Completion` (plain prompt, for base models).
    #[serde(default)]
    pub prompt_format: PromptFormat,
    /// What the model can do; the scheduler matches agent selectors against it.
    #[serde(default)]
    pub capabilities: ModelCapabilities,
    /// What its tokens cost; agents using it count the cost of their calls (status, metrics).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pricing: Option<Pricing>,
}

/// Prices of a model's tokens, per million, as decimal strings (`"0.15"`, up to 6 decimals:
/// Kubernetes objects avoid floating point).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Pricing {
    /// Price of a million prompt tokens.
    #[schemars(length(max = 24), regex(pattern = r"^[0-9]{1,12}(\.[0-9]{1,6})?$"))]
    pub input_per_million_tokens: String,
    /// Price of a million generated tokens.
    #[schemars(length(max = 24), regex(pattern = r"^[0-9]{1,12}(\.[0-9]{1,6})?$"))]
    pub output_per_million_tokens: String,
    /// ISO 4217 currency code of the prices.
    #[serde(default = "default_currency")]
    #[schemars(regex(pattern = r"^[A-Z]{3}$"))]
    pub currency: String,
}

fn default_currency() -> String {
    "USD".to_owned()
}

impl Pricing {
    /// A decimal price string as millionths of the currency (`"0.15"` is 150,000); `None` when
    /// it is not a decimal with at most 6 places.
    pub fn micros(price: &str) -> Option<u64> {
        let (whole, fraction) = price.split_once('.').unwrap_or((price, ""));
        if whole.is_empty()
            || fraction.len() > 6
            || !(whole.bytes().chain(fraction.bytes())).all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let whole: u64 = whole.parse().ok()?;
        let fraction: u64 = format!("{fraction:0<6}").parse().ok()?;
        whole.checked_mul(1_000_000)?.checked_add(fraction)
    }
}

/// An external OpenAI-compatible endpoint.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelEndpoint {
    /// Base URL including the version path, e.g. `https://api.openai.com/v1`.
    #[schemars(length(min = 1, max = 2048))]
    #[schemars(extend("x-kubernetes-validations" = [{ "rule": "isURL(self)", "message": "baseUrl must be an absolute URL" }]))]
    pub base_url: String,
    /// Model name sent in requests.
    #[schemars(length(min = 1, max = 253))]
    pub model: String,
    /// A Secret key holding the API key, sent as a bearer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_secret_ref: Option<SecretKeyReference>,
    /// Extra HTTP headers sent with every request.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// A ConfigMap key holding a PEM CA bundle to trust for this endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_config_map_ref: Option<ConfigMapKeyReference>,
}

/// A model served in the cluster.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    { "rule": "!has(self.toolCallParser) || self.engine == 'vllm'", "message": "toolCallParser is only used by engine vllm" },
    { "rule": "!has(self.cache) || !has(self.cache.hfTokenSecretRef) || self.uri.startsWith('hf://')", "message": "cache.hfTokenSecretRef needs an hf:// uri" },
    { "rule": "!has(self.cache) || !(self.uri.startsWith('pvc://') || self.uri.startsWith('oci://'))", "message": "cache is not used with pvc:// or oci:// uris (the weights are mounted as they are)" },
    { "rule": "self.engine != 'nim' || has(self.image)", "message": "engine nim needs an image (NIM images are per model)" },
    { "rule": "!has(self.workloadPriorityClassName) || has(self.queueName)", "message": "workloadPriorityClassName needs a queueName (it is a Kueue priority)" },
    { "rule": "!has(self.autoscaling) || !(self.autoscaling.metric in ['QueueDepth', 'RunningRequests']) || self.engine in ['vllm', 'llamacpp']", "message": "autoscaling on QueueDepth or RunningRequests needs engine vllm or llamacpp (the engines that export them)" },
    { "rule": "!has(self.autoscaling) || self.autoscaling.metric != 'TimeToFirstToken' || self.engine == 'vllm'", "message": "autoscaling on TimeToFirstToken needs engine vllm (the engine that exports it)" },
    { "rule": "!has(self.autoscaling) || self.autoscaling.metric != 'GpuUtilization' || has(self.accelerator)", "message": "autoscaling on GpuUtilization needs an accelerator" },
    { "rule": "!has(self.nodes) || self.nodes == 1 || self.engine == 'vllm'", "message": "nodes > 1 needs engine vllm (multi-node serving runs vLLM over Ray)" },
    { "rule": "!has(self.nodes) || self.nodes == 1 || !has(self.autoscaling)", "message": "autoscaling cannot be combined with nodes > 1 yet (the autoscalers scale a Deployment; a multi-node Model is a LeaderWorkerSet)" },
    { "rule": "!has(self.nodes) || self.nodes == 1 || !has(self.queueName)", "message": "queueName cannot be combined with nodes > 1 yet (Kueue would admit the pods of a group one by one)" },
    { "rule": "!has(self.nodes) || self.nodes == 1 || !has(self.accelerator) || !has(self.accelerator.sharedClaimName)", "message": "accelerator.sharedClaimName cannot be combined with nodes > 1 (each pod of a group claims its own devices on its own node)" },
    { "rule": "!has(self.nodes) || self.nodes == 1 || self.uri.startsWith('pvc://') || self.uri.startsWith('oci://') || (has(self.cache) && has(self.cache.accessMode) && self.cache.accessMode == 'ReadWriteMany')", "message": "nodes > 1 with downloaded weights needs cache.accessMode ReadWriteMany (every pod of a group mounts the cache, each on its own node)" }
]))]
pub struct ModelServe {
    /// The serving engine.
    pub engine: Engine,
    /// Where the weights come from: `hf://org/name[@rev]`, `https://...`, `pvc://claim/path`, `oci://image`.
    /// An `oci://` image is mounted as an image volume, a volume type the `restricted` Pod
    /// Security Standard does not list: its pods need a namespace that enforces `baseline`
    /// (every other pod the operator builds meets `restricted`).
    #[schemars(length(min = 1, max = 2048))]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "self.startsWith('hf://') || self.startsWith('https://') || self.startsWith('pvc://') || self.startsWith('oci://')",
        "message": "uri must start with hf://, https://, pvc:// or oci://"
    }]))]
    pub uri: String,
    /// Name the engine serves the model under; defaults to the Model's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub served_name: Option<String>,
    /// Extra engine arguments, appended after the operator's own (so they win where the engine
    /// takes the last value).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 128))]
    pub args: Vec<String>,
    /// vLLM tool-call parser (e.g. `hermes`, `llama3_json`, `mistral`); enables automatic tool
    /// choice so agents can call tools through this model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[a-z0-9_]+$"))]
    pub tool_call_parser: Option<String>,
    /// Engine image; defaults to the operator's pinned image for the engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub image: Option<String>,
    /// Number of serving replicas (the Model's `/scale` subresource: `kubectl scale model`). While
    /// `autoscaling` is set the autoscaler decides the count and this value is not applied; it
    /// is the count again once `autoscaling` is removed.
    #[serde(default = "one")]
    #[schemars(range(min = 0, max = 64))]
    pub replicas: i32,
    /// Pods per serving replica, for a model too large for one node. With more than 1, each
    /// replica is a group of `nodes` pods made by a LeaderWorkerSet (leaderworkerset.x-k8s.io/v1,
    /// which must be installed in the cluster): vLLM over Ray, tensor parallel over each pod's
    /// `accelerator.count` devices and pipeline parallel over the pods. Every pod of a group
    /// claims its own accelerators; only the group's leader serves the API.
    #[serde(default = "one")]
    #[schemars(range(min = 1, max = 64))]
    pub nodes: i32,
    /// Size and class of the model-cache volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<ModelCache>,
    /// Accelerators claimed per replica.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accelerator: Option<Accelerator>,
    /// CPU and memory of the engine container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Tolerations of the engine pods (e.g. GPU node taints).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// Kueue LocalQueue of the engine pods (label `kueue.x-k8s.io/queue-name` on the Deployment
    /// and its pods). With Kueue's pod integration each pod waits, gated, until Kueue admits it
    /// within the queue's quota; the Model's `Ready` condition says so meanwhile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub queue_name: Option<String>,
    /// Kueue WorkloadPriorityClass of the engine pods (label `kueue.x-k8s.io/priority-class`):
    /// their priority in the queue and for Kueue's preemption. Needs `queueName`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub workload_priority_class_name: Option<String>,
    /// Replicas decided by an autoscaler on one of the engine's signals instead of `replicas`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<ModelAutoscaling>,
    /// PriorityClass of the engine pods (the scheduler's pod priority and preemption).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub priority_class_name: Option<String>,
}

fn one() -> i32 {
    1
}

/// A model serving engine.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// vLLM's OpenAI-compatible server.
    #[default]
    Vllm,
    /// llama.cpp's `llama-server`.
    Llamacpp,
    /// Ollama.
    Ollama,
    /// Hugging Face Text Generation Inference.
    Tgi,
    /// Hugging Face Text Embeddings Inference (embeddings and rerank).
    Tei,
    /// NVIDIA NIM.
    Nim,
    /// The agent runtime's in-process small model on CPU.
    Runtime,
}

/// The model-cache volume, filled once by a download job.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    { "rule": "quantity(self.size).compareTo(quantity(oldSelf.size)) >= 0", "message": "cache.size may grow but never shrink" },
    { "rule": "!has(self.accessMode) || !has(oldSelf.accessMode) || self.accessMode == oldSelf.accessMode", "message": "cache.accessMode is immutable (it is the volume's)" },
    { "rule": "has(self.storageClassName) == has(oldSelf.storageClassName) && (!has(self.storageClassName) || self.storageClassName == oldSelf.storageClassName)", "message": "cache.storageClassName is immutable (it is the volume's)" }
]))]
pub struct ModelCache {
    /// Size of the cache volume.
    #[schemars(schema_with = "crate::schema::quantity_string")]
    pub size: String,
    /// Storage class; unset uses the cluster default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub storage_class_name: Option<String>,
    /// Access mode of the volume: `ReadWriteOnce` (default; replicas share a node) or
    /// `ReadWriteMany` (replicas spread over nodes; needs a storage class that supports it).
    #[serde(default)]
    pub access_mode: CacheAccessMode,
    /// A Secret key holding a Hugging Face token for gated models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hf_token_secret_ref: Option<SecretKeyReference>,
}

/// How the model-cache volume may be mounted.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum CacheAccessMode {
    /// One node mounts the volume read-write.
    #[default]
    ReadWriteOnce,
    /// Many nodes mount the volume.
    ReadWriteMany,
}

impl CacheAccessMode {
    /// The PersistentVolumeClaim access mode.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReadWriteOnce => "ReadWriteOnce",
            Self::ReadWriteMany => "ReadWriteMany",
        }
    }
}

/// Accelerators claimed per replica: through DRA (`deviceClassName`) or a classic extended resource.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    { "rule": "!has(self.selectors) || has(self.deviceClassName)", "message": "selectors need a deviceClassName" },
    { "rule": "!(has(self.extendedResource) && (has(self.deviceClassName) || has(self.selectors) || has(self.sharing)))", "message": "extendedResource cannot be combined with DRA fields (deviceClassName, selectors, sharing)" },
    { "rule": "!(has(self.extendedResource) && has(self.migProfile))", "message": "migProfile is a DRA field: it cannot be combined with extendedResource" },
    { "rule": "!(has(self.extendedResource) && has(self.sharedClaimName))", "message": "sharedClaimName is a DRA field: it cannot be combined with extendedResource" }
]))]
pub struct Accelerator {
    /// DRA DeviceClass to claim from, e.g. `gpu.nvidia.com` or `mig.nvidia.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub device_class_name: Option<String>,
    /// Number of devices per replica.
    #[serde(default = "one_i64")]
    #[schemars(range(min = 1, max = 64))]
    pub count: i64,
    /// CEL expressions a device must satisfy, e.g. `device.capacity['gpu.nvidia.com'].memory.compareTo(quantity('40Gi')) >= 0`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub selectors: Vec<String>,
    /// Sharing of one device between replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sharing: Option<Sharing>,
    /// A MIG profile by name, e.g. `1g.10gb` or `3g.40gb`: each replica gets a MIG device of
    /// that profile (hardware-isolated memory and compute on a shared GPU). Claims from
    /// `deviceClassName` (default `mig.nvidia.com` when this is set) with the selector
    /// `device.attributes['gpu.nvidia.com'].profile == '<profile>'` of NVIDIA's DRA driver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[1-7]g\.[0-9]+gb(\+me)?$"))]
    pub mig_profile: Option<String>,
    /// One ResourceClaim in the Model's namespace that every replica uses, instead of a claim per
    /// replica: the replicas (and every Model naming the same claim) share its devices. Pair it
    /// with `sharing` (time-slicing: no memory isolation; MPS: partial, per-client memory and
    /// compute limits) or with `migProfile` (hardware isolation, one MIG device shared). The
    /// operator creates the claim from this accelerator when it does not exist and never changes
    /// it (a claim's spec is immutable); it is not owned by the Model and outlives it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"))]
    pub shared_claim_name: Option<String>,
    /// A classic extended resource (e.g. `nvidia.com/gpu`) for clusters without DRA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub extended_resource: Option<String>,
}

fn one_i64() -> i64 {
    1
}

/// Device sharing through the driver's opaque configuration.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Sharing {
    /// `MPS` or `TimeSlicing`.
    pub strategy: SharingStrategy,
    /// Driver the opaque parameters are for; defaults to `gpu.nvidia.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub driver: Option<String>,
    /// Extra opaque driver parameters, passed through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::any_value")]
    pub parameters: Option<serde_json::Value>,
}

/// How one device is shared.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum SharingStrategy {
    /// NVIDIA Multi-Process Service.
    #[default]
    #[serde(rename = "MPS")]
    Mps,
    /// Time slicing.
    TimeSlicing,
}

/// How prompts are sent to the model.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum PromptFormat {
    /// `/v1/chat/completions` with the model's chat template.
    #[default]
    Chat,
    /// `/v1/completions` with a plain `Question:`/`Answer:` prompt, for base (not instruction-tuned) models.
    Completion,
}

/// What a model can do.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelCapabilities {
    /// Chat completions.
    #[serde(default = "yes")]
    pub chat: bool,
    /// Embeddings (`/v1/embeddings`).
    #[serde(default)]
    pub embeddings: bool,
    /// Function (tool) calling.
    #[serde(default)]
    pub tools: bool,
    /// Context length in tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub context_length: Option<i64>,
    /// Dimension of the embeddings it returns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65536))]
    pub embedding_dimension: Option<i64>,
    /// Concurrent requests the model serves well; the scheduler prefers models with spare capacity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_concurrency: Option<i64>,
}

impl Default for ModelCapabilities {
    fn default() -> Self {
        Self {
            chat: true,
            embeddings: false,
            tools: false,
            context_length: None,
            embedding_dimension: None,
            max_concurrency: None,
        }
    }
}

fn yes() -> bool {
    true
}

/// The observed state of a model.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelStatus {
    /// The `metadata.generation` this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `CacheReady`, `ClaimsAllocated`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::schema::conditions")]
    pub conditions: Vec<Condition>,
    /// Base URL agents use (the in-cluster Service for served models).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Model names the endpoint reported on `GET /v1/models`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub served_models: Vec<String>,
    /// Agents currently bound to this model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound_agents: Option<i64>,
    /// Serving replicas that exist (the engine Deployment's `status.replicas`, or the
    /// LeaderWorkerSet's groups with `serve.nodes` above 1); the `/scale` subresource reads it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Label selector of the serving pods (the groups' leaders with `serve.nodes` above 1), as
    /// text (the `/scale` subresource reads it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// The autoscaler the operator made for `serve.autoscaling`: `HorizontalPodAutoscaler/<name>`
    /// or `ScaledObject/<name>` (KEDA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaler: Option<String>,
    /// The latest wake of a scale-to-zero Model (`serve.autoscaling.minReplicas: 0`): when it
    /// was requested and when its first pod was scheduled, started and ready, so the minutes of
    /// a cold start can be told apart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cold_start: Option<ColdStart>,
}

/// The model-cache volume holds the weights (`True` also for `pvc://` and `oci://` sources).
pub const CACHE_READY: &str = "CacheReady";
/// Every DRA claim of the serving pods is allocated.
pub const CLAIMS_ALLOCATED: &str = "ClaimsAllocated";
/// No device the serving pods hold is tainted or reported unhealthy (DRA only).
pub const DEVICES_HEALTHY: &str = "DevicesHealthy";

/// Reasons of a Model's conditions; CamelCase, stable.
pub mod reason {
    /// The endpoint answered `GET /models` and lists the model.
    pub const ENDPOINT_REACHABLE: &str = "EndpointReachable";
    /// The endpoint could not be reached (DNS, connection, TLS or timeout).
    pub const UNREACHABLE: &str = "Unreachable";
    /// The endpoint refused the API key (HTTP 401 or 403).
    pub const UNAUTHORIZED: &str = "Unauthorized";
    /// The endpoint answers but wants an API key the operator may not read (it has no Secret
    /// access in the namespace); the agents, which mount the key, check it.
    pub const KEY_NOT_CHECKED: &str = "KeyNotChecked";
    /// The endpoint answered with an error status or a body that is not a model list.
    pub const BAD_RESPONSE: &str = "BadResponse";
    /// The endpoint answers but does not list the model.
    pub const MODEL_NOT_SERVED: &str = "ModelNotServed";
    /// A Secret or ConfigMap the Model references is missing.
    pub const REFERENCE_NOT_FOUND: &str = "ReferenceNotFound";
    /// The spec breaks a rule the schema cannot express.
    pub const INVALID_SPEC: &str = "InvalidSpec";
    /// At least one serving replica is ready.
    pub const SERVING: &str = "Serving";
    /// The serving replicas are starting (pulling the image, loading weights).
    pub const STARTING: &str = "Starting";
    /// `replicas` is 0.
    pub const SCALED_TO_ZERO: &str = "ScaledToZero";
    /// A scale-to-zero Model is at zero replicas after its idle period; the first agent request
    /// wakes it (`Ready` stays `True`: it serves on demand).
    pub const IDLE: &str = "Idle";
    /// A scale-to-zero Model is waking for an agent request (scheduling, pulling its image,
    /// loading the weights); requests wait for it.
    pub const WAKING: &str = "Waking";
    /// Serving waits for the model cache.
    pub const CACHE_NOT_READY: &str = "CacheNotReady";
    /// Serving pods cannot be scheduled (for instance no device satisfies the claim).
    pub const UNSCHEDULABLE: &str = "Unschedulable";
    /// The download Job finished.
    pub const DOWNLOADED: &str = "Downloaded";
    /// The download Job is running or waiting to run.
    pub const DOWNLOADING: &str = "Downloading";
    /// The download Job failed.
    pub const DOWNLOAD_FAILED: &str = "DownloadFailed";
    /// The weights come from an existing PersistentVolumeClaim.
    pub const EXISTING_CLAIM: &str = "ExistingClaim";
    /// The weights come from an OCI image mounted as a volume.
    pub const IMAGE_VOLUME: &str = "ImageVolume";
    /// Every claim is allocated.
    pub const ALLOCATED: &str = "Allocated";
    /// Some claims are not allocated yet.
    pub const PENDING: &str = "Pending";
    /// No serving pod exists yet, so nothing was claimed.
    pub const NO_CLAIMS: &str = "NoClaims";
    /// Serving pods wait for Kueue to admit them within their queue's quota.
    pub const QUEUED: &str = "Queued";
    /// Every allocated device is fit to serve.
    pub const HEALTHY: &str = "Healthy";
    /// A device is tainted or reported unhealthy; the pods holding it are being replaced.
    pub const DEVICE_UNFIT: &str = "DeviceUnfit";
    /// `serve.nodes` is above 1 but the LeaderWorkerSet CRD is not installed.
    pub const LEADER_WORKER_SET_MISSING: &str = "LeaderWorkerSetMissing";
}

/// Port the operator's served-model Services listen on.
pub const SERVED_MODEL_PORT: u16 = 8000;

/// Suffix of a served Model's Service name. An Agent's API Service is named after the Agent, so
/// without it an Agent and a Model of the same name in one namespace would share a Service.
pub const SERVED_MODEL_SERVICE_SUFFIX: &str = "-model";

/// How to reach a model over the OpenAI API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenAiEndpoint {
    /// Base URL including `/v1`.
    pub base_url: String,
    /// Model name sent in requests.
    pub model: String,
    /// Secret key holding the API key.
    pub api_key: Option<SecretKeyReference>,
    /// Extra headers.
    pub headers: BTreeMap<String, String>,
}

impl Model {
    /// Name of the Service in front of a served Model: `<name>-model`.
    pub fn service_name(&self) -> String {
        use kube::ResourceExt;
        format!("{}{SERVED_MODEL_SERVICE_SUFFIX}", self.name_any())
    }

    /// In-cluster base URL (with `/v1`) of a served Model's Service; `None` without a namespace.
    pub fn service_url(&self) -> Option<String> {
        use kube::ResourceExt;
        Some(format!("http://{}.{}.svc:{SERVED_MODEL_PORT}/v1", self.service_name(), self.namespace()?))
    }

    /// The OpenAI-compatible endpoint of this model: the external endpoint, or the in-cluster
    /// Service of a served model. `None` for a served model without a namespace.
    pub fn openai_endpoint(&self) -> Option<OpenAiEndpoint> {
        use kube::ResourceExt;
        if let Some(endpoint) = &self.spec.endpoint {
            return Some(OpenAiEndpoint {
                base_url: endpoint.base_url.trim_end_matches('/').to_owned(),
                model: endpoint.model.clone(),
                api_key: endpoint.api_key_secret_ref.clone(),
                headers: endpoint.headers.clone(),
            });
        }
        let serve = self.spec.serve.as_ref()?;
        let name = self.name_any();
        let base_url = match self.status.as_ref().and_then(|s| s.endpoint.clone()) {
            Some(url) => url,
            None => self.service_url()?,
        };
        Some(OpenAiEndpoint {
            base_url,
            model: serve.served_name.clone().unwrap_or(name),
            api_key: None,
            headers: BTreeMap::new(),
        })
    }
}
