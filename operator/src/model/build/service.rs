//! The Service agents reach a served Model through, on [`SERVED_MODEL_PORT`]. It is named
//! `<name>-model` ([`Model::service_name`]), so it never collides with the API Service of an Agent
//! of the same name.

use agent_crds::model::{Model, SERVED_MODEL_PORT};
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::labels::{child_meta, serving_selector};

/// Builds the ClusterIP Service of the Model; its URL ([`Model::service_url`]) is the Model's
/// `status.endpoint`. With `serve.nodes` above 1 it selects only the groups' leaders, the pods
/// that serve the API.
pub fn build_service(model: &Model) -> Service {
    Service {
        metadata: child_meta(model, model.service_name()),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".to_owned()),
            selector: Some(serving_selector(model)),
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
