//! Children in local mode (`agent-runtime run`): each child is an agent in the same process,
//! on the parent's model, with its sessions and tasks under `<data>/children/<name>`, and its
//! Agent kept in the parent's database so it comes back after a restart. Local children have no
//! long-term memory (that would load another embedding model per child) and no HTTP API: the
//! parent reaches them directly.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use agent_crds::Agent;
use agent_crds::runtime_config::{
    AgentIdentity, DelegationConfig, PersonaConfig, RuntimeConfig, TaskConfig, TextSource, VectorStoreConfig,
};
use futures::FutureExt;
use futures::future::BoxFuture;
use kube::ResourceExt;
use serde_json::Value;
use tokio::sync::Mutex;

use super::{ChildError, ChildState, Children};
use crate::ServeOptions;
use crate::provider::ModelProvider;
use crate::runtime::Runtime;
use crate::sessions::{CHILDREN, SessionStore};
use crate::tasks::{Follow, Origin, Submission, Tasks};

/// A child running in this process.
struct LocalChild {
    agent: Agent,
    tasks: Arc<Tasks>,
}

/// The in-process children of a local agent.
pub struct LocalChildren {
    parent: RuntimeConfig,
    options: ServeOptions,
    provider: Arc<dyn ModelProvider>,
    kept: SessionStore,
    /// `None` until the children kept from an earlier run are started.
    living: Mutex<Option<BTreeMap<String, LocalChild>>>,
}

fn failed(error: impl std::fmt::Display) -> ChildError {
    ChildError::Failed(error.to_string())
}

/// A child's RuntimeConfig: the parent's model and settings, the child's persona, tools
/// (the parent's entries of those names) and bounds, its own data folder.
pub fn local_child_config(parent: &RuntimeConfig, child: &Agent) -> Result<RuntimeConfig, ChildError> {
    let name = child.name_any();
    let asked_model = child.spec.model.model_ref.as_ref().map(|m| m.name.as_str()).unwrap_or_default();
    if asked_model != parent.model.model_object {
        return Err(ChildError::Failed(format!(
            "in local mode a child uses its parent's model ({}), not {asked_model}",
            parent.model.model_object
        )));
    }
    let data_dir = Path::new(&parent.server.data_dir).join("children").join(&name);
    let mut config = parent.clone();
    config.agent = AgentIdentity {
        name: name.clone(),
        namespace: parent.agent.namespace.clone(),
        uid: None,
        depth: parent.agent.depth + 1,
    };
    config.persona = PersonaConfig {
        name: child.spec.persona.name.clone().unwrap_or_else(|| name.clone()),
        description: child.spec.persona.description.clone(),
        system_prompt: child.spec.persona.system_prompt.clone().map(TextSource::Inline),
    };
    config.task = TaskConfig {
        mode: agent_crds::agent::TaskMode::Chat,
        instructions: child.spec.task.instructions.clone(),
        schedule: None,
        input: None,
        generation: String::new(),
        concurrency_policy: agent_crds::agent::ConcurrencyPolicy::Forbid,
        starting_deadline_seconds: None,
        successful_runs_history_limit: 0,
        failed_runs_history_limit: 0,
    };
    let entries: Vec<&str> = child.spec.tools.iter().map(|t| t.name.as_str()).collect();
    config.tools.retain(|tool| entries.contains(&tool.name.as_str()));
    config.recipe = None;
    config.delegation = child.spec.delegation.as_ref().filter(|d| d.enabled).map(|d| DelegationConfig {
        max_children: d.max_children.unwrap_or(1),
        max_depth: d.max_depth.unwrap_or(1),
        models: vec![parent.model.model_object.clone()],
        tools: child.spec.tools.iter().filter(|t| d.tools.contains(&t.name)).cloned().collect(),
        ttl_seconds_after_finished: d.ttl_seconds_after_finished,
    });
    config.memory.store = VectorStoreConfig::Embedded { path: data_dir.join("vectors").display().to_string() };
    config.memory.collection = format!("{}-{name}", parent.agent.namespace);
    config.server.data_dir = data_dir.display().to_string();
    config.server.api_key_file = None;
    config.cluster = None;
    Ok(config)
}

impl LocalChildren {
    /// The children of the agent `parent`, kept in `kept`, run with `options` on `provider`.
    pub fn new(
        parent: RuntimeConfig,
        options: ServeOptions,
        provider: Arc<dyn ModelProvider>,
        kept: SessionStore,
    ) -> Self {
        let options = ServeOptions { without_knowledge: true, ..options };
        Self { parent, options, provider, kept, living: Mutex::new(None) }
    }

    fn start(&self, agent: Agent) -> Result<LocalChild, ChildError> {
        let config = local_child_config(&self.parent, &agent)?;
        let runtime = Runtime::build_with(config, &self.options, self.provider.clone()).map_err(failed)?;
        Ok(LocalChild { agent, tasks: runtime.state.tasks })
    }

    /// The living children, started from the kept ones on first use.
    async fn living(&self) -> Result<tokio::sync::MutexGuard<'_, Option<BTreeMap<String, LocalChild>>>, ChildError> {
        let mut living = self.living.lock().await;
        if living.is_none() {
            let kept: Vec<Agent> = self.kept.records(CHILDREN).await.map_err(failed)?;
            let mut started = BTreeMap::new();
            for agent in kept {
                let child = self.start(agent)?;
                child.tasks.recover().await.map_err(failed)?;
                started.insert(child.agent.name_any(), child);
            }
            *living = Some(started);
        }
        Ok(living)
    }

    async fn tasks_of(&self, name: &str) -> Result<Arc<Tasks>, ChildError> {
        let living = self.living().await?;
        living
            .as_ref()
            .and_then(|l| l.get(name))
            .map(|c| c.tasks.clone())
            .ok_or_else(|| ChildError::NotFound(name.into()))
    }
}

impl Children for LocalChildren {
    fn list(&self) -> BoxFuture<'_, Result<Vec<ChildState>, ChildError>> {
        async move {
            let living = self.living().await?;
            Ok(living
                .iter()
                .flat_map(|l| l.values())
                .map(|child| ChildState {
                    name: child.agent.name_any(),
                    model: self.parent.model.model_object.clone(),
                    tools: child.agent.spec.tools.iter().map(|t| t.name.clone()).collect(),
                    state: "ready".to_owned(),
                })
                .collect())
        }
        .boxed()
    }

    fn create(&self, agent: Agent) -> BoxFuture<'_, Result<(), ChildError>> {
        async move {
            let mut living = self.living().await?;
            let name = agent.name_any();
            let child = self.start(agent.clone())?;
            self.kept.put_record(CHILDREN, &name, &agent).await.map_err(failed)?;
            living.get_or_insert_with(BTreeMap::new).insert(name, child);
            Ok(())
        }
        .boxed()
    }

    fn delete<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), ChildError>> {
        async move {
            let mut living = self.living().await?;
            let child =
                living.as_mut().and_then(|l| l.remove(name)).ok_or_else(|| ChildError::NotFound(name.into()))?;
            self.kept.delete_record(CHILDREN, name).await.map_err(failed)?;
            let data_dir = local_child_config(&self.parent, &child.agent)?.server.data_dir;
            drop(child);
            if let Err(error) = std::fs::remove_dir_all(&data_dir) {
                tracing::warn!(child = name, %error, "deleting a child's data folder failed");
            }
            Ok(())
        }
        .boxed()
    }

    fn submit<'a>(&'a self, name: &'a str, input: &'a str) -> BoxFuture<'a, Result<String, ChildError>> {
        async move {
            let tasks = self.tasks_of(name).await?;
            let submission = Submission { text: input.to_owned(), origin: Origin::Api, ..Submission::default() };
            let (record, _) = tasks.submit(submission, Follow::Detach).await.map_err(failed)?;
            Ok(record.task.id)
        }
        .boxed()
    }

    fn task<'a>(&'a self, name: &'a str, id: &'a str) -> BoxFuture<'a, Result<Value, ChildError>> {
        async move {
            let tasks = self.tasks_of(name).await?;
            Ok(tasks.get(id, None).await.map_err(failed)?.view())
        }
        .boxed()
    }
}
