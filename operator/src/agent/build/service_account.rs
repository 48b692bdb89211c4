//! The agent pod's ServiceAccount. Its token is mounted: the runtime reports its own status
//! (`status.tools`, `status.usage`, `status.lastTask`) and, when the agent delegates, creates
//! and deletes its child Agents. What the token may do is exactly what the agent's Role
//! ([`super::rbac`]) grants.

use agent_crds::Agent;
use k8s_openapi::api::core::v1::ServiceAccount;

use super::labels::{child_meta, service_account_name};

/// Builds the agent's ServiceAccount, named by [`service_account_name`].
pub fn build_service_account(agent: &Agent) -> ServiceAccount {
    ServiceAccount {
        metadata: child_meta(agent, service_account_name(agent)),
        automount_service_account_token: Some(true),
        ..ServiceAccount::default()
    }
}
