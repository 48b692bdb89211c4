//! A2A tasks on the agent's turn: a message starts a task (one turn on the session of its
//! context), which is kept in the session database and driven by the same turn as the chat API.
//! A turn that pauses for a human approval leaves its task `input-required`; a follow-up message
//! on the task (`approve`, or anything else to deny with that reason) decides it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value, json};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use super::model::{Artifact, Inbound, Message, Part, Role, StreamEvent, Task, TaskState, TaskStatus};
use crate::agent::approval::ApprovalState;
use crate::agent::{Agent, Decision, Event, TurnError, TurnInput};
use crate::openai;
use crate::sessions::{A2A_TASKS, StoreError, valid_session_id};

/// Who decides an approval through an A2A follow-up message.
const A2A_DECIDER: &str = "a2a-client";

/// Why an A2A request cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum A2aError {
    /// No task with this id.
    #[error("task {0} not found")]
    TaskNotFound(String),
    /// The task cannot be canceled any more.
    #[error("task {id} cannot be canceled: it is {state:?}")]
    NotCancelable {
        /// The task.
        id: String,
        /// Its state.
        state: TaskState,
    },
    /// The task takes no further messages.
    #[error("task {id} takes no message now: it is {state:?}")]
    NotAccepting {
        /// The task.
        id: String,
        /// Its state.
        state: TaskState,
    },
    /// The request's parameters are wrong.
    #[error("{0}")]
    InvalidParams(String),
    /// The task store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The agent's A2A tasks.
pub struct A2aTasks {
    agent: Arc<Agent>,
    running: Mutex<HashMap<String, AbortHandle>>,
}

fn new_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

fn now() -> String {
    jiff::Timestamp::now().to_string()
}

fn agent_message(task: &Task, text: String, metadata: Option<Map<String, Value>>) -> Message {
    Message {
        message_id: new_id(),
        context_id: Some(task.context_id.clone()),
        task_id: Some(task.id.clone()),
        role: Role::Agent,
        parts: vec![Part::text(text)],
        metadata,
    }
}

fn answer_artifact(text: String) -> Artifact {
    Artifact { artifact_id: "answer".into(), name: "answer".into(), parts: vec![Part::text(text)] }
}

/// The approval id an input-required task waits on.
fn waiting_on(task: &Task) -> Option<String> {
    task.metadata.as_ref()?.get("approval")?.get("id")?.as_str().map(str::to_owned)
}

impl A2aTasks {
    /// The tasks of `agent`.
    pub fn new(agent: Arc<Agent>) -> Self {
        Self { agent, running: Mutex::default() }
    }

    async fn load(&self, id: &str) -> Result<Task, A2aError> {
        self.agent.sessions().record(A2A_TASKS, id).await?.ok_or_else(|| A2aError::TaskNotFound(id.to_owned()))
    }

    async fn save(&self, task: &Task) -> Result<(), StoreError> {
        self.agent.sessions().put_record(A2A_TASKS, &task.id, task).await
    }

    /// Fails the tasks a previous run of the runtime left submitted or working: their turns
    /// died with it. Returns how many.
    pub async fn recover(&self) -> Result<usize, A2aError> {
        let tasks: Vec<Task> = self.agent.sessions().records(A2A_TASKS).await?;
        let mut failed = 0;
        for mut task in
            tasks.into_iter().filter(|t| matches!(t.status.state, TaskState::Submitted | TaskState::Working))
        {
            let why = "the agent restarted while the task ran; send the message again".to_owned();
            self.settle(&mut task, TaskState::Failed, why, None).await?;
            failed += 1;
        }
        Ok(failed)
    }

    /// The task `id`, with at most `history_length` of its newest messages.
    pub async fn get(&self, id: &str, history_length: Option<usize>) -> Result<Task, A2aError> {
        let mut task = self.refresh(self.load(id).await?).await?;
        if let Some(keep) = history_length {
            let drop = task.history.len().saturating_sub(keep);
            task.history.drain(..drop);
        }
        Ok(task)
    }

    /// An input-required task whose approval was decided elsewhere (the approvals API, the
    /// timeout) takes the resumed turn's outcome.
    async fn refresh(&self, mut task: Task) -> Result<Task, A2aError> {
        let Some(approval) = waiting_on(&task).filter(|_| task.status.state == TaskState::InputRequired) else {
            return Ok(task);
        };
        let Ok(view) = self.agent.approval(&approval).await else { return Ok(task) };
        if view.state == ApprovalState::Pending {
            return Ok(task);
        }
        let (state, text) = match (&view.answer, &view.error, &view.next) {
            (Some(answer), ..) => {
                task.artifacts = vec![answer_artifact(answer.clone())];
                (TaskState::Completed, answer.clone())
            }
            (None, Some(error), _) => (TaskState::Failed, error.clone()),
            (None, None, Some(next)) => match self.agent.approval(next).await {
                Ok(next) => {
                    task.metadata = Some(Map::from_iter([("approval".to_owned(), json!(next))]));
                    return Ok(task);
                }
                Err(_) => return Ok(task),
            },
            (None, None, None) => return Ok(task),
        };
        let message = agent_message(&task, text, None);
        task.history.push(message.clone());
        task.status = TaskStatus { state, message: Some(message), timestamp: now() };
        self.save(&task).await?;
        Ok(task)
    }

    /// Starts (or, with the message's task id, continues) a task. Its events go to `listener`
    /// as they happen. With `wait`, returns once the task is completed, failed, canceled or
    /// input-required; otherwise at once.
    pub async fn send(
        self: &Arc<Self>,
        inbound: Inbound,
        listener: Option<mpsc::Sender<StreamEvent>>,
        wait: bool,
    ) -> Result<Task, A2aError> {
        let (mut task, events) = match &inbound.task_id {
            Some(id) => self.continue_task(id, &inbound).await?,
            None => self.start_task(&inbound, listener.is_none()).await?,
        };
        if let Some(listener) = &listener {
            let _ = listener.send(StreamEvent::Task(task.clone())).await;
        }
        let events = match events {
            Ok(events) => events,
            Err(error) => {
                self.settle(&mut task, TaskState::Failed, error.to_string(), listener.as_ref()).await?;
                return Ok(task);
            }
        };
        let driver = tokio::spawn(self.clone().drive(task.clone(), events, listener));
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(task.id.clone(), driver.abort_handle());
        if !wait {
            return Ok(task);
        }
        match driver.await {
            Ok(task) => Ok(task),
            // Canceled meanwhile: the store has the canceled task.
            Err(_) => self.load(&task.id).await,
        }
    }

    async fn start_task(
        &self,
        inbound: &Inbound,
        whole: bool,
    ) -> Result<(Task, Result<mpsc::Receiver<Event>, TurnError>), A2aError> {
        let context_id = inbound.context_id.clone().unwrap_or_else(new_id);
        let session = format!("a2a:{context_id}");
        if !valid_session_id(&session) {
            return Err(A2aError::InvalidParams(format!(
                "contextId {context_id:?} must be 1-120 letters, digits or -_.:@"
            )));
        }
        let id = new_id();
        let task = Task {
            history: vec![inbound.message(&context_id, &id)],
            id,
            status: TaskStatus { state: TaskState::Submitted, message: None, timestamp: now() },
            context_id,
            artifacts: Vec::new(),
            metadata: None,
        };
        self.save(&task).await?;
        let input = TurnInput {
            messages: vec![openai::Message::text(openai::Role::User, inbound.text.clone())],
            parameters: Map::new(),
            session: Some(session),
            whole,
        };
        let events = self.agent.start_turn(input).await;
        Ok((task, events))
    }

    async fn continue_task(
        &self,
        id: &str,
        inbound: &Inbound,
    ) -> Result<(Task, Result<mpsc::Receiver<Event>, TurnError>), A2aError> {
        let mut task = self.refresh(self.load(id).await?).await?;
        let approval = waiting_on(&task).filter(|_| task.status.state == TaskState::InputRequired);
        let Some(approval) = approval else {
            return Err(A2aError::NotAccepting { id: id.to_owned(), state: task.status.state });
        };
        task.history.push(inbound.message(&task.context_id, &task.id));
        let answer = inbound.text.trim().to_lowercase();
        let approved = matches!(answer.as_str(), "approve" | "approved" | "yes" | "y" | "ok");
        let reason = (!approved).then(|| inbound.text.trim().to_owned());
        let events = self.agent.decide(&approval, Decision::now(approved, A2A_DECIDER, reason)).await;
        Ok((task, events))
    }

    /// Follows a turn to its end, keeping the task and telling the listener.
    async fn drive(
        self: Arc<Self>,
        mut task: Task,
        mut events: mpsc::Receiver<Event>,
        listener: Option<mpsc::Sender<StreamEvent>>,
    ) -> Task {
        let tell = |event: StreamEvent| {
            let listener = listener.clone();
            async move {
                if let Some(listener) = listener {
                    let _ = listener.send(event).await;
                }
            }
        };
        task.status = TaskStatus { state: TaskState::Working, message: None, timestamp: now() };
        if let Err(error) = self.save(&task).await {
            tracing::warn!(task = %task.id, %error, "keeping an A2A task failed");
        }
        tell(StreamEvent::StatusUpdate {
            task_id: task.id.clone(),
            context_id: task.context_id.clone(),
            status: task.status.clone(),
        })
        .await;
        let mut text = String::new();
        let (state, said) = loop {
            match events.recv().await {
                Some(Event::Content(piece)) => {
                    let append = !text.is_empty();
                    text.push_str(&piece);
                    tell(StreamEvent::ArtifactUpdate {
                        task_id: task.id.clone(),
                        context_id: task.context_id.clone(),
                        artifact: answer_artifact(piece),
                        append,
                        last_chunk: false,
                    })
                    .await;
                }
                Some(Event::Done { approval: Some(approval), .. }) => {
                    task.metadata = Some(Map::from_iter([("approval".to_owned(), json!(approval))]));
                    break (TaskState::InputRequired, text);
                }
                Some(Event::Done { .. }) => {
                    task.artifacts = vec![answer_artifact(text.clone())];
                    tell(StreamEvent::ArtifactUpdate {
                        task_id: task.id.clone(),
                        context_id: task.context_id.clone(),
                        artifact: answer_artifact(String::new()),
                        append: true,
                        last_chunk: true,
                    })
                    .await;
                    break (TaskState::Completed, text);
                }
                Some(Event::Error(error)) => break (TaskState::Failed, error.to_string()),
                None => break (TaskState::Failed, "the turn ended without an answer".to_owned()),
            }
        };
        if let Err(error) = self.settle(&mut task, state, said, listener.as_ref()).await {
            tracing::warn!(task = %task.id, %error, "keeping an A2A task failed");
        }
        self.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&task.id);
        task
    }

    /// Gives the task its final (or input-required) status with the agent's message, keeps it,
    /// and tells the listener.
    async fn settle(
        &self,
        task: &mut Task,
        state: TaskState,
        text: String,
        listener: Option<&mpsc::Sender<StreamEvent>>,
    ) -> Result<(), StoreError> {
        let metadata = if state == TaskState::InputRequired { task.metadata.clone() } else { None };
        let message = agent_message(task, text, metadata);
        task.history.push(message.clone());
        task.status = TaskStatus { state, message: Some(message), timestamp: now() };
        self.save(task).await?;
        if let Some(listener) = listener {
            let status = task.status.clone();
            let event =
                StreamEvent::StatusUpdate { task_id: task.id.clone(), context_id: task.context_id.clone(), status };
            let _ = listener.send(event).await;
        }
        Ok(())
    }

    /// Cancels the task: its turn stops (a pending approval is denied) and it is kept canceled.
    pub async fn cancel(&self, id: &str) -> Result<Task, A2aError> {
        let mut task = self.refresh(self.load(id).await?).await?;
        if task.status.state.is_terminal() {
            return Err(A2aError::NotCancelable { id: id.to_owned(), state: task.status.state });
        }
        if let Some(running) = self.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(id) {
            running.abort();
        }
        if let Some(approval) = waiting_on(&task).filter(|_| task.status.state == TaskState::InputRequired) {
            let decision = Decision::now(false, A2A_DECIDER, Some("the A2A task was canceled".into()));
            if let Ok(mut events) = self.agent.decide(&approval, decision).await {
                tokio::spawn(async move { while events.recv().await.is_some() {} });
            }
        }
        self.settle(&mut task, TaskState::Canceled, "canceled".into(), None).await?;
        Ok(task)
    }
}
