//! `status.coldStart`: the timeline of a scale-to-zero Model's latest wake, from the request to
//! a ready replica, read from its first pod's conditions. Each phase is where different minutes
//! go: scheduling (a free node or device), the image (pull and container start), the weights
//! (the engine loading them until its readiness probe passes).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The latest wake of a scale-to-zero Model. Timestamps are RFC 3339; seconds are whole.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ColdStart {
    /// When the operator scaled the Model from zero to one replica for an agent request.
    pub requested_at: String,
    /// Where the wake is now.
    pub phase: ColdStartPhase,
    /// The pod the timeline is read from (the first one made for this wake).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// When the scheduler placed the pod (its `PodScheduled` condition).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_at: Option<String>,
    /// When the engine container started: its image was pulled (the container's `startedAt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// When the pod became ready: the engine loaded the weights and its readiness probe passed
    /// (the pod's `Ready` condition).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_at: Option<String>,
    /// Seconds from the request to the pod being scheduled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduling_seconds: Option<i64>,
    /// Seconds from scheduling to the container's start (image pull, volume mounts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_seconds: Option<i64>,
    /// Seconds from the container's start to ready (loading the weights).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights_seconds: Option<i64>,
    /// Seconds from the request to ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_seconds: Option<i64>,
}

/// Where a wake is.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ColdStartPhase {
    /// Waiting for the pod to be made and placed on a node.
    #[default]
    Scheduling,
    /// The pod is placed; its image is being pulled and its container started.
    PullingImage,
    /// The engine runs and loads the weights; its readiness probe has not passed yet.
    LoadingWeights,
    /// A replica is ready.
    Ready,
}

impl ColdStartPhase {
    /// The name as written in the status.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduling => "Scheduling",
            Self::PullingImage => "PullingImage",
            Self::LoadingWeights => "LoadingWeights",
            Self::Ready => "Ready",
        }
    }
}
