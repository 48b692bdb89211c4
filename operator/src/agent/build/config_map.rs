//! The ConfigMap holding the agent's RuntimeConfig as JSON.

use std::collections::BTreeMap;

use agent_crds::Agent;
use agent_crds::runtime_config::RuntimeConfig;
use k8s_openapi::api::core::v1::ConfigMap;

use super::labels::{RUNTIME_CONFIG_KEY, child_meta, config_map_name};

/// Builds the ConfigMap the runtime reads with `serve --config`.
pub fn build_config_map(agent: &Agent, config: &RuntimeConfig) -> Result<ConfigMap, serde_json::Error> {
    Ok(ConfigMap {
        metadata: child_meta(agent, config_map_name(agent)),
        data: Some(BTreeMap::from([(RUNTIME_CONFIG_KEY.to_owned(), serde_json::to_string_pretty(config)?)])),
        ..ConfigMap::default()
    })
}
