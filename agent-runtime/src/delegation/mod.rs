//! Agents that create agents: the tools a delegating agent's model is given (create a child,
//! give it a task and wait for the result or ask later, list and delete children), over the
//! children a [`Children`] keeps: real `Agent` objects through the Kubernetes API in a cluster
//! ([`cluster`]), in-process agents in local mode ([`local`]). The bounds are checked before
//! anything is created ([`child`]); the operator and the API server check them again.

pub mod child;
pub mod cluster;
pub mod local;

use std::sync::Arc;
use std::time::{Duration, Instant};

use agent_crds::Agent;
use agent_crds::runtime_config::{AgentIdentity, DelegationConfig};
use futures::FutureExt;
use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};

use self::child::{ChildRequest, child_agent, full_name};
use crate::openai::FunctionSpec;
use crate::tools::{Tool, ToolError};

/// A child as `list_agents` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ChildState {
    /// Its full name.
    pub name: String,
    /// Its Model.
    pub model: String,
    /// Its tool entries.
    pub tools: Vec<String>,
    /// Whether it serves, or why not.
    pub state: String,
}

/// Why a child operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ChildError {
    /// No such child.
    #[error("this agent has no child named {0}")]
    NotFound(String),
    /// The child does not serve yet.
    #[error("child {0} is not serving yet ({1}); try again shortly")]
    NotServing(String, String),
    /// The child failed.
    #[error("{0}")]
    Failed(String),
    /// The Kubernetes API that keeps children failed or refused.
    #[error(transparent)]
    Api(#[from] crate::cluster::KubeError),
}

/// Where a parent's children live.
pub trait Children: Send + Sync {
    /// The living children.
    fn list(&self) -> BoxFuture<'_, Result<Vec<ChildState>, ChildError>>;
    /// Creates `child` (already checked against the bounds).
    fn create(&self, child: Agent) -> BoxFuture<'_, Result<(), ChildError>>;
    /// Deletes the child `name`.
    fn delete<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), ChildError>>;
    /// Gives the child `name` a task; returns its id.
    fn submit<'a>(&'a self, name: &'a str, input: &'a str) -> BoxFuture<'a, Result<String, ChildError>>;
    /// The task `id` of the child `name`, as its task API shows it.
    fn task<'a>(&'a self, name: &'a str, id: &'a str) -> BoxFuture<'a, Result<Value, ChildError>>;
}

/// What the delegation tools share.
struct Delegator {
    parent: AgentIdentity,
    bounds: DelegationConfig,
    children: Arc<dyn Children>,
    /// Longest a tool may wait for a child's task (the tool timeout, less a margin).
    longest_wait: Duration,
}

fn failed(error: impl std::fmt::Display) -> ToolError {
    ToolError::Failed(error.to_string())
}

fn arguments<T: for<'de> Deserialize<'de>>(value: Value) -> Result<T, ToolError> {
    serde_json::from_value(value).map_err(|e| ToolError::BadArguments(e.to_string()))
}

impl Delegator {
    fn child_name(&self, name: &str) -> String {
        full_name(&self.parent.name, name)
    }

    async fn create(&self, request: ChildRequest) -> Result<String, ToolError> {
        let living: Vec<String> = self.children.list().await.map_err(failed)?.into_iter().map(|c| c.name).collect();
        let child = child_agent(&self.parent, &self.bounds, &living, &request)
            .map_err(|refusal| ToolError::Refused(refusal.to_string()))?;
        let name = child.metadata.name.clone().unwrap_or_default();
        let model = child.spec.model.model_ref.as_ref().map(|m| m.name.clone()).unwrap_or_default();
        self.children.create(child).await.map_err(failed)?;
        Ok(format!(
            "created child agent {name} (model {model}, tools: [{}]); give it work with delegate_task",
            request.tools.join(", ")
        ))
    }

    /// Waits for the child's task until it settles or the wait is over.
    async fn follow(&self, name: &str, id: &str, wait: Duration) -> Result<String, ToolError> {
        let deadline = Instant::now() + wait;
        loop {
            let task = self.children.task(name, id).await.map_err(failed)?;
            match task["state"].as_str().unwrap_or_default() {
                "completed" => return Ok(task["result"].as_str().unwrap_or_default().to_owned()),
                "failed" | "cancelled" => {
                    let why = task["error"].as_str().unwrap_or("no reason given");
                    return Err(ToolError::Reported(format!("{name}'s task {id} {}: {why}", task["state"])));
                }
                "input-required" => {
                    return Ok(format!(
                        "{name}'s task {id} waits for a human approval of a tool call; ask again later"
                    ));
                }
                _ if Instant::now() >= deadline => {
                    return Ok(format!(
                        "{name}'s task {id} is still running after {} s; ask for it later with get_task_result",
                        wait.as_secs()
                    ));
                }
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    fn wait(&self, asked: Option<u64>) -> Duration {
        asked.map_or(self.longest_wait, |s| Duration::from_secs(s).min(self.longest_wait))
    }
}

/// The delegation tools over `children`, for an agent with `bounds`.
pub fn tools(
    parent: AgentIdentity,
    bounds: DelegationConfig,
    children: Arc<dyn Children>,
    tool_timeout: Duration,
) -> Vec<Arc<dyn Tool>> {
    let longest_wait = tool_timeout.saturating_sub(Duration::from_secs(1)).max(Duration::from_millis(500));
    let delegator = Arc::new(Delegator { parent, bounds, children, longest_wait });
    [Operation::Create, Operation::Delegate, Operation::Result, Operation::List, Operation::Delete]
        .into_iter()
        .map(|operation| Arc::new(DelegationTool { delegator: delegator.clone(), operation }) as Arc<dyn Tool>)
        .collect()
}

#[derive(Clone, Copy)]
enum Operation {
    Create,
    Delegate,
    Result,
    List,
    Delete,
}

struct DelegationTool {
    delegator: Arc<Delegator>,
    operation: Operation,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DelegateArguments {
    agent: String,
    input: String,
    #[serde(default)]
    wait_seconds: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResultArguments {
    agent: String,
    task_id: String,
    #[serde(default)]
    wait_seconds: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentArgument {
    agent: String,
}

impl Tool for DelegationTool {
    fn spec(&self) -> FunctionSpec {
        let bounds = &self.delegator.bounds;
        let tool_names: Vec<&str> = bounds.tools.iter().map(|t| t.name.as_str()).collect();
        let (name, description, parameters) = match self.operation {
            Operation::Create => (
                "create_agent",
                format!(
                    "Create a child agent (at most {} at once) that you can give tasks. Models: {}. Tools you may give it: {}.",
                    bounds.max_children,
                    bounds.models.join(", "),
                    if tool_names.is_empty() { "none".to_owned() } else { tool_names.join(", ") }
                ),
                json!({"type": "object", "required": ["name", "system_prompt"], "properties": {
                    "name": {"type": "string", "description": "short lowercase name, e.g. researcher"},
                    "system_prompt": {"type": "string", "description": "who the child is and how it works"},
                    "description": {"type": "string"},
                    "instructions": {"type": "string", "description": "standing instructions for every task"},
                    "model": {"type": "string", "enum": bounds.models},
                    "tools": {"type": "array", "items": {"type": "string", "enum": tool_names}},
                    "can_delegate": {"type": "boolean", "description": "whether it may create children itself"}
                }}),
            ),
            Operation::Delegate => (
                "delegate_task",
                "Give one of your child agents a task and wait for its answer (or its task id if it takes longer)."
                    .into(),
                json!({"type": "object", "required": ["agent", "input"], "properties": {
                    "agent": {"type": "string"},
                    "input": {"type": "string", "description": "the task, self-contained"},
                    "wait_seconds": {"type": "integer", "minimum": 0}
                }}),
            ),
            Operation::Result => (
                "get_task_result",
                "The answer of a task you gave a child agent, waiting a little if it still runs.".into(),
                json!({"type": "object", "required": ["agent", "task_id"], "properties": {
                    "agent": {"type": "string"}, "task_id": {"type": "string"},
                    "wait_seconds": {"type": "integer", "minimum": 0}
                }}),
            ),
            Operation::List => (
                "list_agents",
                "Your child agents: name, model, tools and whether each serves.".into(),
                json!({"type": "object", "properties": {}}),
            ),
            Operation::Delete => (
                "delete_agent",
                "Delete one of your child agents once you no longer need it.".into(),
                json!({"type": "object", "required": ["agent"], "properties": {"agent": {"type": "string"}}}),
            ),
        };
        FunctionSpec { name: name.into(), description, parameters }
    }

    fn call(&self, arguments: Value) -> BoxFuture<'_, Result<String, ToolError>> {
        let delegator = &self.delegator;
        async move {
            match self.operation {
                Operation::Create => delegator.create(self::arguments(arguments)?).await,
                Operation::Delegate => {
                    let asked: DelegateArguments = self::arguments(arguments)?;
                    let name = delegator.child_name(&asked.agent);
                    let id = delegator.children.submit(&name, &asked.input).await.map_err(failed)?;
                    delegator.follow(&name, &id, delegator.wait(asked.wait_seconds)).await
                }
                Operation::Result => {
                    let asked: ResultArguments = self::arguments(arguments)?;
                    let name = delegator.child_name(&asked.agent);
                    delegator.follow(&name, &asked.task_id, delegator.wait(asked.wait_seconds)).await
                }
                Operation::List => {
                    let children = delegator.children.list().await.map_err(failed)?;
                    let listed: Vec<Value> = children
                        .iter()
                        .map(|c| json!({"name": c.name, "model": c.model, "tools": c.tools, "state": c.state}))
                        .collect();
                    Ok(Value::Array(listed).to_string())
                }
                Operation::Delete => {
                    let asked: AgentArgument = self::arguments(arguments)?;
                    let name = delegator.child_name(&asked.agent);
                    delegator.children.delete(&name).await.map_err(failed)?;
                    Ok(format!("deleted child agent {name}"))
                }
            }
        }
        .boxed()
    }
}
