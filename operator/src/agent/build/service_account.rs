//! The agent pod's ServiceAccount. Its token is not mounted: no built-in tool calls the
//! Kubernetes API, so the pod gets no credentials it does not use.

use agent_crds::Agent;
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::ResourceExt;

use super::labels::child_meta;

/// Builds the agent's ServiceAccount, named like the agent.
pub fn build_service_account(agent: &Agent) -> ServiceAccount {
    ServiceAccount {
        metadata: child_meta(agent, agent.name_any()),
        automount_service_account_token: Some(false),
        ..ServiceAccount::default()
    }
}
