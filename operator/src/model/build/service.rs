//! The Service agents reach a served Model through, on [`SERVED_MODEL_PORT`].

use agent_crds::model::{Model, SERVED_MODEL_PORT};
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

use super::labels::{child_meta, selector_labels};

/// Builds the ClusterIP Service named after the Model; its URL is the Model's `status.endpoint`.
pub fn build_service(model: &Model) -> Service {
    Service {
        metadata: child_meta(model, model.name_any()),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".to_owned()),
            selector: Some(selector_labels(model)),
            ports: Some(vec![ServicePort {
                name: Some("http".to_owned()),
                port: i32::from(SERVED_MODEL_PORT),
                target_port: Some(IntOrString::String("http".to_owned())),
                protocol: Some("TCP".to_owned()),
                app_protocol: Some("http".to_owned()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// The in-cluster base URL (with `/v1`) of a served Model's Service.
pub fn service_url(model: &Model) -> String {
    format!("http://{}.{}.svc:{SERVED_MODEL_PORT}/v1", model.name_any(), model.namespace().unwrap_or_default())
}
