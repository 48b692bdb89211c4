//! Children in a cluster: `Agent` objects created through the Kubernetes API with the pod's
//! ServiceAccount (a `<agent>-delegator` one, whose Role allows creating, listing and deleting
//! Agents in its namespace, and whose requests the chart's admission policy bounds), given
//! tasks over their task API at their in-cluster Service.

use agent_crds::Agent;
use agent_crds::render::{PARENT_LABEL, agent_service_url};
use agent_crds::runtime_config::AgentIdentity;
use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::{ChildError, ChildState, Children};
use crate::cluster::KubeApi;

/// Children kept as Agents in the parent's namespace.
pub struct ClusterChildren {
    api: KubeApi,
    parent: AgentIdentity,
    http: reqwest::Client,
}

impl ClusterChildren {
    /// The children of `parent`, through `api`.
    pub fn new(api: KubeApi, parent: AgentIdentity) -> Self {
        Self { api, parent, http: reqwest::Client::new() }
    }

    async fn own_child(&self, name: &str) -> Result<(), ChildError> {
        let children = self.list_children().await?;
        if children.iter().any(|c| c.name == name) { Ok(()) } else { Err(ChildError::NotFound(name.to_owned())) }
    }

    async fn list_children(&self) -> Result<Vec<ChildState>, ChildError> {
        let items = self
            .api
            .list_agents(&self.parent.namespace, PARENT_LABEL, &self.parent.name)
            .await
            .map_err(ChildError::from)?;
        Ok(items.iter().map(child_state).collect())
    }

    fn url(&self, name: &str, path: &str) -> String {
        format!("{}{path}", agent_service_url(name, &self.parent.namespace))
    }

    async fn child_call(&self, name: &str, request: reqwest::RequestBuilder) -> Result<Value, ChildError> {
        let response =
            request.send().await.map_err(|e| ChildError::NotServing(name.to_owned(), format!("unreachable: {e}")))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(body);
        }
        let message = body["error"]["message"].as_str().unwrap_or("no message").to_owned();
        Err(ChildError::Failed(format!("child {name} answered {status}: {message}")))
    }
}

/// A child Agent as `list_agents` shows it: ready, refused by the operator (with its reason),
/// or starting.
fn child_state(item: &Value) -> ChildState {
    let condition = |kind: &str| {
        item["status"]["conditions"].as_array().and_then(|all| all.iter().find(|c| c["type"] == kind)).cloned()
    };
    let state = match (condition("Accepted"), condition("Ready")) {
        (Some(accepted), _) if accepted["status"] == "False" => {
            format!("refused: {}", accepted["message"].as_str().unwrap_or_default())
        }
        (_, Some(ready)) if ready["status"] == "True" => "ready".to_owned(),
        (_, Some(ready)) => format!("starting: {}", ready["message"].as_str().unwrap_or_default()),
        _ => "starting".to_owned(),
    };
    ChildState {
        name: item["metadata"]["name"].as_str().unwrap_or_default().to_owned(),
        model: item["spec"]["model"]["modelRef"]["name"].as_str().unwrap_or_default().to_owned(),
        tools: item["spec"]["tools"]
            .as_array()
            .map(|tools| tools.iter().filter_map(|t| t["name"].as_str().map(str::to_owned)).collect())
            .unwrap_or_default(),
        state,
    }
}

impl Children for ClusterChildren {
    fn list(&self) -> BoxFuture<'_, Result<Vec<ChildState>, ChildError>> {
        self.list_children().boxed()
    }

    fn create(&self, child: Agent) -> BoxFuture<'_, Result<(), ChildError>> {
        async move {
            let mut object = serde_json::to_value(&child).map_err(|e| ChildError::Failed(e.to_string()))?;
            object["apiVersion"] = json!("agent-operator.dev/v1alpha1");
            object["kind"] = json!("Agent");
            self.api.create_agent(&self.parent.namespace, &object).await.map(drop).map_err(ChildError::from)
        }
        .boxed()
    }

    fn delete<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), ChildError>> {
        async move {
            self.own_child(name).await?;
            self.api.delete_agent(&self.parent.namespace, name).await.map_err(ChildError::from)
        }
        .boxed()
    }

    fn submit<'a>(&'a self, name: &'a str, input: &'a str) -> BoxFuture<'a, Result<String, ChildError>> {
        async move {
            self.own_child(name).await?;
            let request = self.http.post(self.url(name, "/v1/tasks")).json(&json!({ "input": input }));
            let task = self.child_call(name, request).await?;
            Ok(task["id"].as_str().unwrap_or_default().to_owned())
        }
        .boxed()
    }

    fn task<'a>(&'a self, name: &'a str, id: &'a str) -> BoxFuture<'a, Result<Value, ChildError>> {
        async move {
            let request = self.http.get(self.url(name, &format!("/v1/tasks/{id}")));
            self.child_call(name, request).await
        }
        .boxed()
    }
}
