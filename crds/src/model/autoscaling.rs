//! `serve.autoscaling`: how many replicas a served Model runs, decided by an autoscaler on one of
//! the engine's signals. The operator builds the autoscaler (an `autoscaling/v2`
//! HorizontalPodAutoscaler, or a KEDA ScaledObject where KEDA is installed) and hands the
//! Deployment's replica count over to it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Autoscaling of a served Model between `minReplicas` and `maxReplicas` on one signal.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    { "rule": "!has(self.minReplicas) || self.minReplicas >= 1", "message": "minReplicas must be at least 1: scale to zero is not supported yet" },
    { "rule": "!has(self.minReplicas) || self.minReplicas <= self.maxReplicas", "message": "minReplicas must not exceed maxReplicas" },
    { "rule": "!isQuantity(self.target) || quantity(self.target).isGreaterThan(quantity('0'))", "message": "target must be greater than zero" },
    { "rule": "self.metric != 'GpuUtilization' || !isQuantity(self.target) || quantity(self.target).compareTo(quantity('100')) <= 0", "message": "a GpuUtilization target is a percentage, at most 100" }
]))]
pub struct ModelAutoscaling {
    /// Fewest replicas. At least 1: scale to zero is not supported yet.
    #[serde(default = "one")]
    #[schemars(range(max = 64))]
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
