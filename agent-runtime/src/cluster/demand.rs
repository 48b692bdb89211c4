//! The agent's demand for a Model that scales to zero, on its own Agent's status
//! (`status.modelDemand`): when it last called the Model and when it found it asleep and asked
//! it to wake. The operator watches Agents, so this write wakes the Model at once. It is applied
//! under its own field manager ([`DEMAND_FIELD_MANAGER`]), so it neither removes nor is removed
//! by the runtime's other status reports. Also reads the Model's wake phase
//! (`status.coldStart`) for the answer a request gets when it waited too long.

use futures::future::BoxFuture;
use reqwest::Method;
use serde_json::{Value, json};

use super::{KubeApi, KubeError};
use crate::provider::wake::{Demand, DemandReport, WakePhase};

/// Field manager of `status.modelDemand`.
pub const DEMAND_FIELD_MANAGER: &str = "agent-runtime-model-demand";

impl KubeApi {
    /// Applies `status.modelDemand` of the Agent `name`.
    pub async fn apply_model_demand(&self, namespace: &str, name: &str, demand: &Value) -> Result<(), KubeError> {
        let body = json!({
            "apiVersion": "agent-operator.dev/v1alpha1",
            "kind": "Agent",
            "metadata": {"name": name, "namespace": namespace},
            "status": {"modelDemand": demand},
        });
        let path =
            format!("{}/{name}/status?fieldManager={DEMAND_FIELD_MANAGER}&force=true", super::agents_path(namespace));
        self.call(Method::PATCH, &path, Some(("application/apply-patch+yaml", &body))).await.map(drop)
    }

    /// The Model `name` of `namespace`.
    pub async fn get_model(&self, namespace: &str, name: &str) -> Result<Value, KubeError> {
        let path = format!("/apis/agent-operator.dev/v1alpha1/namespaces/{namespace}/models/{name}");
        self.call(Method::GET, &path, None).await
    }
}

/// The demand of one agent for its Model, written to the cluster.
pub struct ClusterDemand {
    api: KubeApi,
    namespace: String,
    agent: String,
    model: String,
}

impl ClusterDemand {
    /// Reports for Agent `agent` of `namespace`, whose Model is `model` (in the same namespace).
    pub fn new(api: KubeApi, namespace: String, agent: String, model: String) -> Self {
        Self { api, namespace, agent, model }
    }
}

impl Demand for ClusterDemand {
    fn report(&self, report: DemandReport) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            // Times not known yet are left out (not null): the schema's fields are not nullable.
            let mut demand = json!({"model": self.model});
            if let Some(at) = report.last_request_at {
                demand["lastRequestAt"] = json!(at.to_string());
            }
            if let Some(at) = report.wake_requested_at {
                demand["wakeRequestedAt"] = json!(at.to_string());
            }
            self.api.apply_model_demand(&self.namespace, &self.agent, &demand).await.map_err(|e| e.to_string())
        })
    }

    fn phase(&self) -> BoxFuture<'_, Option<WakePhase>> {
        Box::pin(async move {
            let model = self.api.get_model(&self.namespace, &self.model).await.ok()?;
            let cold_start = model.pointer("/status/coldStart")?;
            Some(WakePhase {
                phase: cold_start.get("phase")?.as_str()?.to_owned(),
                since: cold_start.get("requestedAt").and_then(Value::as_str).map(str::to_owned),
            })
        })
    }
}
