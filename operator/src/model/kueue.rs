//! Kueue's hold on a served Model's pods: with Kueue's pod integration each serving pod is one
//! workload, held at the scheduling gate `kueue.x-k8s.io/admission` until its queue has quota.
//! Pure; the status step reports it.

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;

use super::build::labels::KUEUE_ADMISSION_GATE;

/// How many serving pods Kueue holds at its admission gate, as a sentence; `None` when none is.
/// Kueue admits each pod of a Deployment as its own workload once its queue has quota, then
/// removes the gate and the scheduler places the pod.
pub fn queued_message(pods: &[Pod], queue: Option<&str>) -> Option<String> {
    let gated: Vec<String> = pods.iter().filter(|pod| kueue_gated(pod)).map(ResourceExt::name_any).collect();
    if gated.is_empty() {
        return None;
    }
    let queue = queue.map_or_else(String::new, |q| format!(" in LocalQueue {q}"));
    Some(format!(
        "{} pod(s) wait for Kueue to admit them{queue} (no quota yet; `kubectl get workloads` shows their place): {}",
        gated.len(),
        gated.join(", ")
    ))
}

/// Whether Kueue holds `pod` at its admission gate.
pub fn kueue_gated(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.scheduling_gates.as_ref())
        .is_some_and(|gates| gates.iter().any(|g| g.name == KUEUE_ADMISSION_GATE))
}
