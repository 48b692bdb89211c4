//! Health of the devices a served Model's pods hold. A device is unfit when its ResourceSlice
//! taints it (`NoSchedule` or `NoExecute`, DRA device taints), when its driver reports a
//! `Ready` or `Healthy` condition `False` on the claim (`status.devices`), or when the kubelet
//! reports it `Unhealthy` in a container's `allocatedResourcesStatus`. Pure: the reconcile reads
//! the objects, this says which devices are unfit, why, and which pods hold them.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::resource::v1::{ResourceClaim, ResourceSlice};
use kube::ResourceExt;

/// A device, as DRA names it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct DeviceRef {
    /// The DRA driver.
    pub driver: String,
    /// The pool (usually the node).
    pub pool: String,
    /// The device within the pool.
    pub device: String,
}

impl std::fmt::Display for DeviceRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.driver, self.pool, self.device)
    }
}

/// A device a pod of the Model holds that should not serve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnfitDevice {
    /// The device.
    pub device: DeviceRef,
    /// Why, as a sentence.
    pub why: String,
    /// Pods holding it (through their claims), by name.
    pub pods: BTreeSet<String>,
}

/// Taint effects that make a device unfit to serve on.
const UNFIT_EFFECTS: [&str; 2] = ["NoSchedule", "NoExecute"];

/// Driver conditions whose `False` means the device is unfit.
const HEALTH_CONDITIONS: [&str; 2] = ["Ready", "Healthy"];

/// The unfit devices among those `claims` allocate, with the pods holding them.
pub fn unfit_devices(pods: &[Pod], claims: &[ResourceClaim], slices: &[ResourceSlice]) -> Vec<UnfitDevice> {
    let mut unfit: BTreeMap<DeviceRef, (String, BTreeSet<String>)> = BTreeMap::new();
    let pod_names: BTreeSet<String> = pods.iter().map(ResourceExt::name_any).collect();
    for claim in claims {
        let holders: BTreeSet<String> = claim_holders(claim).into_iter().filter(|p| pod_names.contains(p)).collect();
        for device in allocated(claim) {
            let why = taint_of(&device, slices).or_else(|| driver_condition(&device, claim));
            if let Some(why) = why {
                unfit.entry(device).or_insert_with(|| (why, BTreeSet::new())).1.extend(holders.iter().cloned());
            }
        }
    }
    for pod in pods {
        for (device, why) in kubelet_unhealthy(pod) {
            unfit.entry(device).or_insert_with(|| (why, BTreeSet::new())).1.insert(pod.name_any());
        }
    }
    unfit.into_iter().map(|(device, (why, pods))| UnfitDevice { device, why, pods }).collect()
}

/// The devices a claim's allocation holds.
fn allocated(claim: &ResourceClaim) -> Vec<DeviceRef> {
    let results = claim.status.as_ref().and_then(|s| s.allocation.as_ref()).and_then(|a| a.devices.as_ref());
    results
        .and_then(|d| d.results.as_ref())
        .into_iter()
        .flatten()
        .map(|r| DeviceRef { driver: r.driver.clone(), pool: r.pool.clone(), device: r.device.clone() })
        .collect()
}

/// Pods a claim is reserved for (or, before that, the pod that owns it).
fn claim_holders(claim: &ResourceClaim) -> Vec<String> {
    let reserved = claim.status.as_ref().and_then(|s| s.reserved_for.as_ref());
    let mut holders: Vec<String> =
        reserved.into_iter().flatten().filter(|c| c.resource == "pods").map(|c| c.name.clone()).collect();
    if holders.is_empty() {
        holders = claim.owner_references().iter().filter(|o| o.kind == "Pod").map(|o| o.name.clone()).collect();
    }
    holders
}

/// The first unfit taint of `device` in its ResourceSlice, as a sentence.
fn taint_of(device: &DeviceRef, slices: &[ResourceSlice]) -> Option<String> {
    let in_pool = slices.iter().filter(|s| s.spec.driver == device.driver && s.spec.pool.name == device.pool);
    let found = in_pool.flat_map(|s| s.spec.devices.iter().flatten()).find(|d| d.name == device.device)?;
    let taint = found.taints.iter().flatten().find(|t| UNFIT_EFFECTS.contains(&t.effect.as_str()))?;
    let value = taint.value.as_deref().map(|v| format!("={v}")).unwrap_or_default();
    Some(format!("tainted {}{value}:{} in its ResourceSlice", taint.key, taint.effect))
}

/// A `Ready`/`Healthy` condition the driver set `False` for `device` on the claim.
fn driver_condition(device: &DeviceRef, claim: &ResourceClaim) -> Option<String> {
    let statuses = claim.status.as_ref().and_then(|s| s.devices.as_ref())?;
    let status =
        statuses.iter().find(|s| s.driver == device.driver && s.pool == device.pool && s.device == device.device)?;
    let condition = status
        .conditions
        .iter()
        .flatten()
        .find(|c| HEALTH_CONDITIONS.contains(&c.type_.as_str()) && c.status == "False")?;
    Some(format!("its driver reports {} False ({}: {})", condition.type_, condition.reason, condition.message))
}

/// Devices the kubelet reports `Unhealthy` for `pod` (`driver/pool/device` resource ids).
fn kubelet_unhealthy(pod: &Pod) -> Vec<(DeviceRef, String)> {
    let statuses = pod.status.as_ref().and_then(|s| s.container_statuses.as_ref());
    let resources = statuses
        .into_iter()
        .flatten()
        .flat_map(|c| c.allocated_resources_status.iter().flatten())
        .flat_map(|r| r.resources.iter().flatten());
    resources
        .filter(|r| r.health.as_deref() == Some("Unhealthy"))
        .filter_map(|r| {
            let mut parts = r.resource_id.splitn(3, '/');
            let (driver, pool, device) = (parts.next()?, parts.next()?, parts.next()?);
            let device = DeviceRef { driver: driver.to_owned(), pool: pool.to_owned(), device: device.to_owned() };
            Some((device, "the kubelet reports it Unhealthy".to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn claim(name: &str, pod: &str, device: &str, conditions: &serde_json::Value) -> ResourceClaim {
        serde_json::from_value(json!({
            "apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim",
            "metadata": {"name": name, "namespace": "ml"},
            "spec": {"devices": {"requests": [{"name": "gpu", "exactly": {"deviceClassName": "gpu.example.com"}}]}},
            "status": {
                "allocation": {"devices": {"results": [{"request": "gpu", "driver": "gpu.example.com", "pool": "node-1", "device": device}]}},
                "reservedFor": [{"resource": "pods", "name": pod, "uid": "u"}],
                "devices": [{"driver": "gpu.example.com", "pool": "node-1", "device": device, "conditions": conditions}]
            }
        }))
        .unwrap()
    }

    fn slice(taints: &serde_json::Value) -> ResourceSlice {
        serde_json::from_value(json!({
            "apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice", "metadata": {"name": "node-1-gpu"},
            "spec": {"driver": "gpu.example.com", "pool": {"name": "node-1", "generation": 1, "resourceSliceCount": 1},
                     "nodeName": "node-1",
                     "devices": [{"name": "gpu-0"}, {"name": "gpu-1", "taints": taints}]}
        }))
        .unwrap()
    }

    fn pod(name: &str, health: Option<(&str, &str)>) -> Pod {
        let statuses = health.map_or_else(Vec::new, |(id, health)| {
            vec![json!({"name": "engine", "image": "i", "imageID": "", "ready": true, "restartCount": 0,
                        "allocatedResourcesStatus": [{"name": "claim:gpu", "resources": [{"resourceID": id, "health": health}]}]})]
        });
        serde_json::from_value(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "ml"},
                                      "status": {"containerStatuses": statuses}}))
        .unwrap()
    }

    #[test]
    fn healthy_devices_are_not_reported() {
        let claims = [claim("c0", "p0", "gpu-0", &json!([])), claim("c1", "p1", "gpu-1", &json!([]))];
        let found = unfit_devices(&[pod("p0", None), pod("p1", None)], &claims, &[slice(&json!([]))]);
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn a_tainted_device_names_its_taint_and_the_pod_holding_it() {
        let taints = json!([{"key": "gpu.example.com/ecc", "value": "uncorrectable", "effect": "NoSchedule"}]);
        let claims = [claim("c0", "p0", "gpu-0", &json!([])), claim("c1", "p1", "gpu-1", &json!([]))];
        let found = unfit_devices(&[pod("p0", None), pod("p1", None)], &claims, &[slice(&taints)]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].device.to_string(), "gpu.example.com/node-1/gpu-1");
        assert_eq!(found[0].why, "tainted gpu.example.com/ecc=uncorrectable:NoSchedule in its ResourceSlice");
        assert_eq!(found[0].pods, BTreeSet::from(["p1".to_owned()]));
    }

    #[test]
    fn a_driver_condition_or_the_kubelet_can_report_a_device_unhealthy() {
        let down = json!([{"type": "Ready", "status": "False", "reason": "XidError", "message": "Xid 79",
                           "lastTransitionTime": "2026-11-29T00:00:00Z"}]);
        let claims = [claim("c0", "p0", "gpu-0", &down)];
        let found = unfit_devices(&[pod("p0", None)], &claims, &[slice(&json!([]))]);
        assert_eq!(found[0].why, "its driver reports Ready False (XidError: Xid 79)");
        let sick = pod("p1", Some(("gpu.example.com/node-1/gpu-1", "Unhealthy")));
        let found = unfit_devices(&[sick], &[], &[]);
        assert_eq!(found[0].device.device, "gpu-1");
        assert_eq!(found[0].pods, BTreeSet::from(["p1".to_owned()]));
    }

    #[test]
    fn a_device_held_by_a_pod_that_is_not_the_models_names_no_pod() {
        let claims = [claim("c1", "someone-else", "gpu-1", &json!([]))];
        let taints = json!([{"key": "gpu.example.com/ecc", "effect": "NoSchedule"}]);
        let found = unfit_devices(&[pod("p1", None)], &claims, &[slice(&taints)]);
        assert_eq!(found.len(), 1);
        assert!(found[0].pods.is_empty(), "the claim's pod is not the Model's");
    }
}
