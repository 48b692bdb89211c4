//! The agent's API Service and the headless Service that names its StatefulSet pod.

use agent_crds::Agent;
use agent_crds::runtime_config::RUNTIME_PORT;
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

use super::labels::{child_meta, headless_service_name, selector_labels};

fn http_port() -> ServicePort {
    ServicePort {
        name: Some("http".to_owned()),
        port: i32::from(RUNTIME_PORT),
        target_port: Some(IntOrString::String("http".to_owned())),
        protocol: Some("TCP".to_owned()),
        app_protocol: Some("http".to_owned()),
        ..ServicePort::default()
    }
}

/// Builds the ClusterIP Service other workloads call the agent through.
pub fn build_service(agent: &Agent) -> Service {
    Service {
        metadata: child_meta(agent, agent.name_any()),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".to_owned()),
            selector: Some(selector_labels(agent)),
            ports: Some(vec![http_port()]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// Builds the headless Service that gives the pod a stable DNS name, published before it is ready.
pub fn build_headless_service(agent: &Agent) -> Service {
    Service {
        metadata: child_meta(agent, headless_service_name(agent)),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".to_owned()),
            selector: Some(selector_labels(agent)),
            ports: Some(vec![http_port()]),
            publish_not_ready_addresses: Some(true),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}
