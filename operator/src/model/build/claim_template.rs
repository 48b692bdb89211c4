//! The DRA `ResourceClaimTemplate` (`resource.k8s.io/v1`) of a served Model: every replica gets
//! its own claim made from it, for `count` devices of the DeviceClass that pass the CEL
//! selectors, with the driver's opaque sharing configuration (MPS or time slicing).

use agent_crds::model::{Accelerator, Model, Sharing, SharingStrategy};
use k8s_openapi::api::resource::v1::{
    CELDeviceSelector, DeviceClaim, DeviceClaimConfiguration, DeviceRequest, DeviceSelector, ExactDeviceRequest,
    OpaqueDeviceConfiguration, ResourceClaim, ResourceClaimSpec, ResourceClaimTemplate, ResourceClaimTemplateSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use serde_json::{Value, json};

use super::labels::{child_meta, claim_template_name, labels};
use crate::agent::build::labels::{MANAGED_BY, MANAGED_BY_LABEL};
use crate::model::source::short_hash;

/// DeviceClass claimed from when the Model names none.
pub const DEFAULT_DEVICE_CLASS: &str = "gpu.nvidia.com";
/// DeviceClass claimed from when the Model names a MIG profile and no class.
pub const DEFAULT_MIG_DEVICE_CLASS: &str = "mig.nvidia.com";
/// Driver the sharing parameters are for when the Model names none.
pub const DEFAULT_SHARING_DRIVER: &str = "gpu.nvidia.com";
/// Name of the one device request in the claim.
pub const REQUEST_NAME: &str = "gpu";

/// The DeviceClass an accelerator claims from.
pub fn device_class(accelerator: &Accelerator) -> &str {
    let default = if accelerator.mig_profile.is_some() { DEFAULT_MIG_DEVICE_CLASS } else { DEFAULT_DEVICE_CLASS };
    accelerator.device_class_name.as_deref().unwrap_or(default)
}

/// The CEL expressions a device must pass: the Model's own, and its MIG profile's.
fn selector_expressions(accelerator: &Accelerator) -> Vec<String> {
    let profile =
        accelerator.mig_profile.as_ref().map(|p| format!("device.attributes['gpu.nvidia.com'].profile == '{p}'"));
    accelerator.selectors.iter().cloned().chain(profile).collect()
}

/// Builds the claim template; the claims made from it carry the Model's labels so the status
/// step can find them.
pub fn build_claim_template(model: &Model, accelerator: &Accelerator) -> ResourceClaimTemplate {
    let class = device_class(accelerator);
    let selectors: Vec<DeviceSelector> = selector_expressions(accelerator)
        .into_iter()
        .map(|expression| DeviceSelector { cel: Some(CELDeviceSelector { expression }) })
        .collect();
    let request = DeviceRequest {
        name: REQUEST_NAME.to_owned(),
        exactly: Some(ExactDeviceRequest {
            device_class_name: class.to_owned(),
            allocation_mode: Some("ExactCount".to_owned()),
            count: Some(accelerator.count),
            selectors: Some(selectors).filter(|s| !s.is_empty()),
            ..ExactDeviceRequest::default()
        }),
        ..DeviceRequest::default()
    };
    let config = accelerator.sharing.as_ref().map(|sharing| {
        vec![DeviceClaimConfiguration {
            requests: Some(vec![REQUEST_NAME.to_owned()]),
            opaque: Some(OpaqueDeviceConfiguration {
                driver: sharing.driver.clone().unwrap_or_else(|| DEFAULT_SHARING_DRIVER.to_owned()),
                parameters: RawExtension(sharing_parameters(class, sharing)),
            }),
        }]
    });
    let spec = ResourceClaimTemplateSpec {
        metadata: Some(ObjectMeta { labels: Some(labels(model)), ..ObjectMeta::default() }),
        spec: ResourceClaimSpec {
            devices: Some(DeviceClaim { requests: Some(vec![request]), config, ..DeviceClaim::default() }),
        },
    };
    // Keys sorted, so the digest does not depend on serde_json's `preserve_order`.
    let canonical = agent_crds::crd::canonical(serde_json::to_value(&spec).unwrap_or_default());
    let digest = short_hash(&canonical.to_string());
    ResourceClaimTemplate { metadata: child_meta(model, claim_template_name(model, &digest)), spec }
}

/// The one ResourceClaim every replica shares when the accelerator names `sharedClaimName`: the
/// claim template's claim spec under that name, labelled as shared (not as the Model's, since
/// several Models may use it), and not owned by the Model.
pub fn build_shared_claim(model: &Model, accelerator: &Accelerator, name: &str) -> ResourceClaim {
    let template = build_claim_template(model, accelerator);
    let labels =
        [(MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned()), (SHARED_CLAIM_LABEL.to_owned(), "true".to_owned())];
    ResourceClaim {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: model.metadata.namespace.clone(),
            labels: Some(labels.into()),
            ..ObjectMeta::default()
        },
        spec: template.spec.spec,
        status: None,
    }
}

/// Label on claims the operator created for `sharedClaimName`.
pub const SHARED_CLAIM_LABEL: &str = "agent-operator.dev/shared-claim";

/// Name of the claim template `build_claim_template` makes for `accelerator`.
pub fn template_name(model: &Model, accelerator: &Accelerator) -> String {
    build_claim_template(model, accelerator).metadata.name.unwrap_or_default()
}

/// The NVIDIA DRA driver's `GpuConfig` (`MigDeviceConfig` for MIG classes) with the sharing
/// strategy, overlaid with the Model's own parameters (theirs win, key by key).
fn sharing_parameters(class: &str, sharing: &Sharing) -> Value {
    let kind = if class.starts_with("mig.") { "MigDeviceConfig" } else { "GpuConfig" };
    let strategy = match sharing.strategy {
        SharingStrategy::Mps => "MPS",
        SharingStrategy::TimeSlicing => "TimeSlicing",
    };
    let mut parameters = json!({
        "apiVersion": "resource.nvidia.com/v1beta1",
        "kind": kind,
        "sharing": {"strategy": strategy},
    });
    if let Some(extra) = &sharing.parameters {
        overlay(&mut parameters, extra);
    }
    parameters
}

fn overlay(base: &mut Value, extra: &Value) {
    match (base, extra) {
        (Value::Object(base), Value::Object(extra)) => {
            for (key, value) in extra {
                overlay(base.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
        (base, extra) => *base = extra.clone(),
    }
}

#[cfg(test)]
mod tests {
    use agent_crds::model::ModelSpec;

    use super::*;

    fn template(accelerator: &Accelerator) -> Value {
        let mut model = Model::new("llama", ModelSpec::default());
        model.metadata.namespace = Some("ml".into());
        serde_json::to_value(build_claim_template(&model, accelerator)).unwrap()
    }

    #[test]
    fn a_claim_asks_for_exactly_count_devices_of_the_class_matching_every_selector() {
        let value = template(&Accelerator {
            count: 2,
            selectors: vec!["device.attributes['gpu.nvidia.com'].productName == 'NVIDIA H100'".into()],
            ..Accelerator::default()
        });
        let request = &value["spec"]["spec"]["devices"]["requests"][0];
        assert_eq!(request["name"], REQUEST_NAME);
        assert_eq!(request["exactly"]["deviceClassName"], DEFAULT_DEVICE_CLASS);
        assert_eq!(request["exactly"]["allocationMode"], "ExactCount");
        assert_eq!(request["exactly"]["count"], 2);
        assert_eq!(
            request["exactly"]["selectors"][0]["cel"]["expression"],
            "device.attributes['gpu.nvidia.com'].productName == 'NVIDIA H100'"
        );
        assert_eq!(value["spec"]["metadata"]["labels"]["agent-operator.dev/model"], "llama");
        assert!(value["spec"]["spec"]["devices"]["config"].is_null(), "no sharing, no opaque config");
    }

    #[test]
    fn a_mig_profile_by_name_claims_from_the_mig_class_with_the_drivers_profile_attribute() {
        let value = template(&Accelerator { count: 1, mig_profile: Some("1g.10gb".into()), ..Accelerator::default() });
        let request = &value["spec"]["spec"]["devices"]["requests"][0]["exactly"];
        assert_eq!(request["deviceClassName"], DEFAULT_MIG_DEVICE_CLASS);
        assert_eq!(
            request["selectors"][0]["cel"]["expression"],
            "device.attributes['gpu.nvidia.com'].profile == '1g.10gb'"
        );
        let own_class = template(&Accelerator {
            device_class_name: Some("mig.example.com".into()),
            selectors: vec!["device.driver == 'gpu.nvidia.com'".into()],
            mig_profile: Some("3g.40gb".into()),
            ..Accelerator::default()
        });
        let request = &own_class["spec"]["spec"]["devices"]["requests"][0]["exactly"];
        assert_eq!(request["deviceClassName"], "mig.example.com");
        assert_eq!(
            request["selectors"][1]["cel"]["expression"],
            "device.attributes['gpu.nvidia.com'].profile == '3g.40gb'"
        );
    }

    #[test]
    fn another_request_gets_another_template_because_a_templates_spec_is_immutable() {
        let one = template(&Accelerator { count: 1, ..Accelerator::default() });
        let two = template(&Accelerator { count: 2, ..Accelerator::default() });
        let again = template(&Accelerator { count: 1, ..Accelerator::default() });
        assert_ne!(one["metadata"]["name"], two["metadata"]["name"]);
        assert_eq!(one["metadata"]["name"], again["metadata"]["name"]);
        assert!(one["metadata"]["name"].as_str().unwrap().starts_with("llama-accelerator-"));
    }

    #[test]
    fn sharing_becomes_the_drivers_opaque_config_with_the_models_parameters_on_top() {
        let value = template(&Accelerator {
            device_class_name: Some("mig.nvidia.com".into()),
            count: 1,
            sharing: Some(Sharing {
                strategy: SharingStrategy::TimeSlicing,
                driver: None,
                parameters: Some(json!({"sharing": {"timeSlicingConfig": {"interval": "Long"}}})),
            }),
            ..Accelerator::default()
        });
        let config = &value["spec"]["spec"]["devices"]["config"][0];
        assert_eq!(config["requests"], json!([REQUEST_NAME]));
        assert_eq!(config["opaque"]["driver"], "gpu.nvidia.com");
        assert_eq!(
            config["opaque"]["parameters"],
            json!({
                "apiVersion": "resource.nvidia.com/v1beta1",
                "kind": "MigDeviceConfig",
                "sharing": {"strategy": "TimeSlicing", "timeSlicingConfig": {"interval": "Long"}}
            })
        );
    }
}
