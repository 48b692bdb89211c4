//! `serve.autoscaling`: how many replicas a served Model runs, decided by an autoscaler on one of
//! the engine's signals. The operator builds the autoscaler (an `autoscaling/v2`
//! HorizontalPodAutoscaler, or a KEDA ScaledObject where KEDA is installed) and hands the
//! Deployment's replica count over to it.
//!
//! With `minReplicas: 0` the Model scales to zero after `scaleToZeroAfter` without an agent
//! request, and the first agent request wakes it: the runtime records its demand on its own
//! Agent's status, the operator takes the Deployment from 0 to 1 replica (the autoscaler works
//! above 1), and the request waits up to `wakeTimeout`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Autoscaling of a served Model between `minReplicas` and `maxReplicas` on one signal.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    { "rule": "!has(self.scaleToZeroAfter) || (has(self.minReplicas) && self.minReplicas == 0)", "message": "scaleToZeroAfter needs minReplicas 0" },
    { "rule": "!has(self.wakeTimeout) || (has(self.minReplicas) && self.minReplicas == 0)", "message": "wakeTimeout needs minReplicas 0" },
    { "rule": "!has(self.minReplicas) || self.minReplicas <= self.maxReplicas", "message": "minReplicas must not exceed maxReplicas" },
    { "rule": "!isQuantity(self.target) || quantity(self.target).isGreaterThan(quantity('0'))", "message": "target must be greater than zero" },
    { "rule": "self.metric != 'GpuUtilization' || !isQuantity(self.target) || quantity(self.target).compareTo(quantity('100')) <= 0", "message": "a GpuUtilization target is a percentage, at most 100" }
]))]
pub struct ModelAutoscaling {
    /// Fewest replicas. 0 scales the Model to zero after `scaleToZeroAfter` without agent
    /// requests; the first agent request then wakes it (one replica) and waits for it.
    #[serde(default = "one")]
    #[schemars(range(min = 0, max = 64))]
    pub min_replicas: i32,
    /// Most replicas.
    #[schemars(range(min = 1, max = 64))]
    pub max_replicas: i32,
    /// The signal replicas are added or removed on.
    pub metric: AutoscalingMetric,
    /// Wanted value of the signal per replica, a quantity: requests for `QueueDepth` and
    /// `RunningRequests` (`"4"`), seconds for `TimeToFirstToken` (`"500m"` is half a second),
    /// percent for `GpuUtilization` (`"80"`). Replicas are added while the signal is above it.
    #[schemars(schema_with = "crate::schema::quantity_string")]
    pub target: String,
    /// Prometheus base URL KEDA queries (e.g. `http://prometheus.monitoring.svc:9090`). Used only
    /// where KEDA is installed: with it the operator builds a KEDA ScaledObject; without it, or
    /// without KEDA, a HorizontalPodAutoscaler reading the custom metrics API (served by e.g.
    /// prometheus-adapter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    #[schemars(extend("x-kubernetes-validations" = [{ "rule": "(self.startsWith('http://') || self.startsWith('https://')) && isURL(self)", "message": "prometheusAddress must be an http:// or https:// URL" }]))]
    pub prometheus_address: Option<String>,
    /// With `minReplicas: 0`: how long the Model keeps serving without an agent request before
    /// it goes to zero replicas, in hours, minutes and seconds (`10m`, `1h30m`); default `10m`,
    /// at least `1m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16), regex(pattern = r"^([0-9]+h)?([0-9]+m)?([0-9]+s)?$"))]
    #[schemars(extend("x-kubernetes-validations" = [{ "rule": "duration(self) >= duration('1m') && duration(self) <= duration('720h')", "message": "scaleToZeroAfter must be between 1m and 720h" }]))]
    pub scale_to_zero_after: Option<String>,
    /// With `minReplicas: 0`: how long an agent request waits for the Model to wake (schedule,
    /// pull its image, load the weights) before the agent answers 503 with `Retry-After`
    /// (`120s`, `5m`); default `120s`, between `5s` and `1h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16), regex(pattern = r"^([0-9]+h)?([0-9]+m)?([0-9]+s)?$"))]
    #[schemars(extend("x-kubernetes-validations" = [{ "rule": "duration(self) >= duration('5s') && duration(self) <= duration('1h')", "message": "wakeTimeout must be between 5s and 1h" }]))]
    pub wake_timeout: Option<String>,
}

/// Idle period of a scale-to-zero Model when `scaleToZeroAfter` is not set.
pub const DEFAULT_SCALE_TO_ZERO_AFTER_SECONDS: u64 = 600;
/// How long a request waits for a Model to wake when `wakeTimeout` is not set.
pub const DEFAULT_WAKE_TIMEOUT_SECONDS: u64 = 120;

impl ModelAutoscaling {
    /// Whether the Model goes to zero replicas when idle (`minReplicas: 0`).
    pub fn scales_to_zero(&self) -> bool {
        self.min_replicas == 0
    }

    /// Seconds without an agent request before a scale-to-zero Model goes to zero; `None` when
    /// it does not scale to zero.
    pub fn idle_seconds(&self) -> Option<u64> {
        self.scales_to_zero()
            .then(|| seconds(self.scale_to_zero_after.as_deref()).unwrap_or(DEFAULT_SCALE_TO_ZERO_AFTER_SECONDS))
    }

    /// Seconds a request waits for a scale-to-zero Model to wake; `None` when it does not scale
    /// to zero.
    pub fn wake_timeout_seconds(&self) -> Option<u64> {
        self.scales_to_zero().then(|| seconds(self.wake_timeout.as_deref()).unwrap_or(DEFAULT_WAKE_TIMEOUT_SECONDS))
    }
}

/// Seconds of a duration such as `1h30m` (the schema's pattern); `None` when unset or malformed.
fn seconds(text: Option<&str>) -> Option<u64> {
    crate::render::parse_duration_seconds(text?).ok()
}

fn one() -> i32 {
    1
}

/// A signal to autoscale on.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum AutoscalingMetric {
    /// Requests waiting for a slot per replica: vLLM `vllm:num_requests_waiting`, llama.cpp
    /// `llamacpp:requests_deferred`.
    QueueDepth,
    /// Requests being processed per replica: vLLM `vllm:num_requests_running`, llama.cpp
    /// `llamacpp:requests_processing`.
    RunningRequests,
    /// Mean time to first token in seconds over the last two minutes, from vLLM's
    /// `vllm:time_to_first_token_seconds` histogram (vLLM only).
    TimeToFirstToken,
    /// GPU utilisation in percent from the NVIDIA DCGM exporter (`DCGM_FI_DEV_GPU_UTIL`, with its
    /// `pod` and `namespace` labels); needs an accelerator.
    GpuUtilization,
}

impl AutoscalingMetric {
    /// The name as written in the spec.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::QueueDepth => "QueueDepth",
            Self::RunningRequests => "RunningRequests",
            Self::TimeToFirstToken => "TimeToFirstToken",
            Self::GpuUtilization => "GpuUtilization",
        }
    }
}
