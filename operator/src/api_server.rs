//! Where agent pods reach the Kubernetes API server, found once at start: the `kubernetes`
//! Service's address (the `KUBERNETES_SERVICE_*` variables every pod gets) and its endpoints
//! (the EndpointSlice `default/kubernetes` the API server maintains). Agents' egress policies
//! admit both, as CNIs match either before or after the Service's address translation.

use std::net::IpAddr;

use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::{Api, Client};

use crate::agent::build::egress::ApiServer;

/// Namespace and name of the API server's own EndpointSlice.
const SLICE: (&str, &str) = ("default", "kubernetes");

/// The API server's addresses and ports; unknown (empty) when its EndpointSlice cannot be read,
/// which is logged: agents' egress then admits the usual API server ports to any address.
pub async fn discover(client: &Client, service_host: Option<&str>, service_port: Option<&str>) -> ApiServer {
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), SLICE.0);
    let slice = match slices.get(SLICE.1).await {
        Ok(slice) => slice,
        Err(error) => {
            tracing::warn!(
                %error,
                "cannot read EndpointSlice default/kubernetes; agents' egress admits ports 443 and 6443 to any \
                 address for the Kubernetes API"
            );
            return ApiServer::default();
        }
    };
    let mut found = ApiServer::default();
    for endpoint in &slice.endpoints {
        found.cidrs.extend(endpoint.addresses.iter().filter_map(|address| host_cidr(address)));
    }
    found.ports.extend(slice.ports.iter().flatten().filter_map(|port| u16::try_from(port.port?).ok()));
    if let (Some(host), Some(port)) = (service_host.and_then(host_cidr), service_port.and_then(|p| p.parse().ok())) {
        found.cidrs.insert(host);
        found.ports.insert(port);
    }
    if found.cidrs.is_empty() || found.ports.is_empty() {
        tracing::warn!("EndpointSlice default/kubernetes names no address or port; admitting the usual ports");
        return ApiServer::default();
    }
    tracing::info!(addresses = ?found.cidrs, ports = ?found.ports, "found the Kubernetes API server");
    found
}

/// `address` as a one-address CIDR, if it is an IP address.
fn host_cidr(address: &str) -> Option<String> {
    let ip: IpAddr = address.parse().ok()?;
    Some(format!("{ip}/{}", if ip.is_ipv4() { 32 } else { 128 }))
}
