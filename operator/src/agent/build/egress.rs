//! The egress rules of an agent's NetworkPolicy, derived from its rendered RuntimeConfig (every
//! address the runtime will call is in it) plus the Agent's own `egress.to`:
//! - DNS (port 53, UDP and TCP) to any address: resolvers live in kube-system, on the node
//!   (NodeLocal DNSCache) or elsewhere, and differ between clusters;
//! - the Kubernetes API server, where the runtime reports its status and manages its children;
//! - each URL: an IP host admits that address on the URL's port; an in-cluster name admits its
//!   namespace on every port (a NetworkPolicy sees the pods' port, not the Service's, and the
//!   operator reads no Services to map one to the other); any other name admits public addresses
//!   on the URL's port (a NetworkPolicy cannot name a host, and the cluster's own ranges, the
//!   node's and the cloud's metadata endpoint stay closed);
//! - a delegating agent's own namespace on the runtime's port (it calls its children's API).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use agent_crds::agent::{EgressDestination, EgressPolicy};
use agent_crds::runtime_config::{EmbeddingConfig, RUNTIME_PORT, RuntimeConfig, ToolKind, VectorStoreConfig};
use agent_crds::{Agent, AgentSpec};
use k8s_openapi::api::networking::v1::{IPBlock, NetworkPolicyEgressRule, NetworkPolicyPeer, NetworkPolicyPort};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;
use reqwest::Url;

/// Ranges a public host name never resolves to for the agent's purposes: private (RFC 1918),
/// shared (RFC 6598, also used by some clusters), loopback, link-local (with the cloud metadata
/// endpoint 169.254.169.254) and "this network".
const NOT_PUBLIC_V4: [&str; 7] =
    ["0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.168.0.0/16"];
/// Unique-local, link-local and loopback IPv6 ranges.
const NOT_PUBLIC_V6: [&str; 3] = ["::1/128", "fc00::/7", "fe80::/10"];
/// Ports the API server is commonly reached on, admitted to any address when the operator could
/// not find out where it is.
const USUAL_API_SERVER_PORTS: [u16; 2] = [443, 6443];

/// Where pods reach the Kubernetes API server, as the operator found it at start: the
/// `kubernetes` Service's address and the endpoints behind it (CNIs match a NetworkPolicy either
/// before or after the Service's address translation, so both are admitted).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApiServer {
    /// Addresses, as CIDRs; empty when unknown (then [`USUAL_API_SERVER_PORTS`] are admitted to
    /// any address).
    pub cidrs: BTreeSet<String>,
    /// TCP ports.
    pub ports: BTreeSet<u16>,
}

/// A peer of an egress rule.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Peer {
    /// Every pod of a namespace.
    Namespace(String),
    /// An address range, with ranges inside it that stay closed.
    Block { cidr: String, except: Vec<String> },
    /// Every public address.
    Public,
}

/// TCP ports of a peer; `None` admits every port.
type Ports = Option<BTreeSet<u16>>;

/// The egress rules of `agent` running `config`; `None` when its policy is `Unrestricted`.
pub fn egress_rules(
    agent: &Agent,
    config: &RuntimeConfig,
    api_server: &ApiServer,
) -> Option<Vec<NetworkPolicyEgressRule>> {
    let spec: &AgentSpec = &agent.spec;
    if spec.egress.policy == EgressPolicy::Unrestricted {
        return None;
    }
    let namespace = agent.namespace().unwrap_or_default();
    let mut peers: BTreeMap<Peer, Ports> = BTreeMap::new();
    for url in urls(config) {
        if let Some((peer, port)) = classify(url, &namespace) {
            admit(&mut peers, peer, port.map(|p| BTreeSet::from([p])));
        }
    }
    for tool in &config.tools {
        if let ToolKind::Agent { url, remote: false, .. } = &tool.kind
            && let Some((peer @ Peer::Namespace(_), _)) = classify(url, &namespace)
        {
            // Already admitted on every port above; an Agent's pods listen on the runtime's port.
            admit(&mut peers, peer, Some(BTreeSet::from([RUNTIME_PORT])));
        }
    }
    if config.delegation.is_some() {
        admit(&mut peers, Peer::Namespace(namespace), Some(BTreeSet::from([RUNTIME_PORT])));
    }
    for destination in &spec.egress.to {
        let (peer, ports) = declared(destination);
        admit(&mut peers, peer, ports);
    }
    let mut rules = vec![dns_rule(), api_server_rule(api_server)];
    rules.extend(peers.into_iter().map(|(peer, ports)| rule(&peer, ports.as_ref())));
    Some(rules)
}

/// Every URL the runtime may call (prefix lists included: their host is what matters).
fn urls(config: &RuntimeConfig) -> Vec<&str> {
    let mut urls = vec![config.model.base_url.as_str()];
    if let EmbeddingConfig::Endpoint { base_url, .. } = &config.memory.embedding {
        urls.push(base_url);
    }
    if let VectorStoreConfig::Qdrant { url, .. } = &config.memory.store {
        urls.push(url);
    }
    for tool in &config.tools {
        match &tool.kind {
            ToolKind::Builtin { allowed_urls, .. } => urls.extend(allowed_urls.iter().map(String::as_str)),
            ToolKind::Mcp { url, .. } | ToolKind::Agent { url, .. } | ToolKind::Http { url, .. } => urls.push(url),
        }
    }
    if let Some(recipe) = &config.recipe {
        urls.extend(recipe.sources.iter().map(String::as_str));
    }
    urls.extend(config.server.fetch_allowed_urls.iter().map(String::as_str));
    if let Some(traces) = &config.traces {
        urls.extend(traces.urls());
    }
    urls
}

/// The peer and port a URL reaches; `None` for loopback and what does not parse (the runtime
/// refuses those itself).
fn classify(url: &str, namespace: &str) -> Option<(Peer, Option<u16>)> {
    let url = Url::parse(url).ok()?;
    let port = url.port_or_known_default();
    let host = url.host_str()?.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some((address_peer(ip)?, port));
    }
    let name = host.trim_end_matches('.').to_ascii_lowercase();
    let labels: Vec<&str> = name.split('.').collect();
    match labels.as_slice() {
        ["localhost"] => None,
        [_service] => Some((Peer::Namespace(namespace.to_owned()), None)),
        [_service, service_namespace, "svc", ..] => Some((Peer::Namespace((*service_namespace).to_owned()), None)),
        _ => Some((Peer::Public, port)),
    }
}

fn address_peer(ip: IpAddr) -> Option<Peer> {
    if ip.is_loopback() {
        return None;
    }
    let bits = if ip.is_ipv4() { 32 } else { 128 };
    Some(Peer::Block { cidr: format!("{ip}/{bits}"), except: Vec::new() })
}

fn declared(destination: &EgressDestination) -> (Peer, Ports) {
    let peer = match (&destination.cidr, &destination.namespace) {
        (Some(cidr), _) => Peer::Block { cidr: cidr.clone(), except: destination.except.clone() },
        (None, namespace) => Peer::Namespace(namespace.clone().unwrap_or_default()),
    };
    let ports = Some(destination.ports.iter().copied().collect::<BTreeSet<_>>()).filter(|p| !p.is_empty());
    (peer, ports)
}

/// Adds `ports` to what `peer` admits; every port wins over a list.
fn admit(peers: &mut BTreeMap<Peer, Ports>, peer: Peer, ports: Ports) {
    match (peers.get_mut(&peer), ports) {
        (None, ports) => {
            peers.insert(peer, ports);
        }
        (Some(admitted @ Some(_)), None) => *admitted = None,
        (Some(Some(admitted)), Some(more)) => admitted.extend(more),
        (Some(None), _) => {}
    }
}

fn rule(peer: &Peer, ports: Option<&BTreeSet<u16>>) -> NetworkPolicyEgressRule {
    let to = match peer {
        Peer::Namespace(name) => vec![namespace_peer(name)],
        Peer::Block { cidr, except } => vec![block(cidr, except.clone())],
        Peer::Public => vec![
            block("0.0.0.0/0", NOT_PUBLIC_V4.map(str::to_owned).to_vec()),
            block("::/0", NOT_PUBLIC_V6.map(str::to_owned).to_vec()),
        ],
    };
    NetworkPolicyEgressRule { to: Some(to), ports: ports.map(|ports| ports.iter().map(|p| tcp(*p)).collect()) }
}

fn dns_rule() -> NetworkPolicyEgressRule {
    let port = |protocol: &str| NetworkPolicyPort {
        port: Some(IntOrString::Int(53)),
        protocol: Some(protocol.to_owned()),
        ..NetworkPolicyPort::default()
    };
    NetworkPolicyEgressRule { to: None, ports: Some(vec![port("UDP"), port("TCP")]) }
}

fn api_server_rule(api_server: &ApiServer) -> NetworkPolicyEgressRule {
    if api_server.cidrs.is_empty() {
        return NetworkPolicyEgressRule { to: None, ports: Some(USUAL_API_SERVER_PORTS.map(tcp).to_vec()) };
    }
    NetworkPolicyEgressRule {
        to: Some(api_server.cidrs.iter().map(|cidr| block(cidr, Vec::new())).collect()),
        ports: Some(api_server.ports.iter().map(|p| tcp(*p)).collect()),
    }
}

fn namespace_peer(name: &str) -> NetworkPolicyPeer {
    NetworkPolicyPeer {
        namespace_selector: Some(LabelSelector {
            match_labels: Some(BTreeMap::from([("kubernetes.io/metadata.name".to_owned(), name.to_owned())])),
            ..LabelSelector::default()
        }),
        ..NetworkPolicyPeer::default()
    }
}

fn block(cidr: &str, except: Vec<String>) -> NetworkPolicyPeer {
    NetworkPolicyPeer {
        ip_block: Some(IPBlock { cidr: cidr.to_owned(), except: Some(except).filter(|e| !e.is_empty()) }),
        ..NetworkPolicyPeer::default()
    }
}

/// A TCP port of a NetworkPolicy rule.
pub(super) fn tcp(port: u16) -> NetworkPolicyPort {
    NetworkPolicyPort {
        port: Some(IntOrString::Int(i32::from(port))),
        protocol: Some("TCP".to_owned()),
        ..NetworkPolicyPort::default()
    }
}

#[cfg(test)]
mod tests;
