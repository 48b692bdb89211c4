//! The agent's tasks: a unit of work with an id, an input, a state, a result, token usage and
//! timestamps, kept in the session database and run on the same turn as the chat API. The task
//! API (`/v1/tasks`), A2A messages and the Agent's own `Once` and `Schedule` modes ([`runner`])
//! all start the same tasks. A turn that pauses for a human approval leaves its task
//! `input-required`; a follow-up A2A message (`approve`, or anything else to deny with that
//! reason) or the approvals API decides it.
//!
//! A restart cuts off the turns that were running: [`Tasks::recover`] marks their tasks failed
//! and `interrupted` (a turn commits nothing before its end, so no half-done work is kept), and
//! the runner retries an interrupted `Once` task once, as a new attempt that names the old one.

pub mod record;
pub mod runner;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::{Map, Value, json};
use tokio::sync::{broadcast, watch};
use tokio::task::AbortHandle;

pub use self::record::{Origin, TaskRecord, TaskUsage};
use crate::a2a::model::{Artifact, Inbound, Message, Part, Role, StreamEvent, Task, TaskState, TaskStatus};
use crate::agent::approval::ApprovalState;
use crate::agent::{Agent, Decision, Event, TurnError, TurnInput};
use crate::openai;
use crate::sessions::{StoreError, TASKS, valid_session_id};

/// Who decides an approval through an A2A follow-up message.
const A2A_DECIDER: &str = "a2a-client";

/// Events a running task keeps for a slow subscriber before it skips some.
const EVENT_BUFFER: usize = 1024;

/// Why a task request cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// No task with this id.
    #[error("task {0} not found")]
    TaskNotFound(String),
    /// The task cannot be canceled any more.
    #[error("task {id} cannot be canceled: it is {}", record::state_name(*.state))]
    NotCancelable {
        /// The task.
        id: String,
        /// Its state.
        state: TaskState,
    },
    /// The task takes no further messages.
    #[error("task {id} takes no message now: it is {}", record::state_name(*.state))]
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

/// What a new task is asked, and why it runs.
#[derive(Clone, Debug, Default)]
pub struct Submission {
    /// The input.
    pub text: String,
    /// What started it.
    pub origin: Origin,
    /// The conversation it belongs to; a new one when `None`.
    pub context_id: Option<String>,
    /// The client's id for the message (A2A).
    pub message_id: Option<String>,
    /// The Agent's task generation (`Once`, `Schedule`).
    pub generation: Option<String>,
    /// The scheduled time (`Schedule`).
    pub scheduled_for: Option<String>,
    /// The run a restart cut off that this one retries.
    pub retry_of: Option<String>,
}

/// How the caller follows a task it submits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Follow {
    /// Returns at once.
    Detach,
    /// Returns once the task is final or waits for input.
    Wait,
    /// Returns at once with a subscription to its events.
    Stream,
}

/// A task whose turn runs.
struct Running {
    abort: AbortHandle,
    events: broadcast::Sender<StreamEvent>,
}

/// The agent's tasks.
pub struct Tasks {
    agent: Arc<Agent>,
    running: Mutex<HashMap<String, Running>>,
    latest: watch::Sender<Latest>,
}

/// The newest task, and the newest one the Agent's own task mode (`Once`, `Schedule`) started.
#[derive(Clone, Debug, Default)]
pub struct Latest {
    /// The newest task, whatever started it.
    pub any: Option<TaskRecord>,
    /// The newest `Once` or `Schedule` task.
    pub own: Option<TaskRecord>,
}

impl Latest {
    /// Takes `record` where it is the newest (or a newer state of the one held); returns
    /// whether anything changed.
    fn offer(&mut self, record: &TaskRecord) -> bool {
        let take = |held: &mut Option<TaskRecord>| {
            let newer = held.as_ref().is_none_or(|h| h.created <= record.created);
            if newer {
                *held = Some(record.clone());
            }
            newer
        };
        let own = matches!(record.origin, Origin::Once | Origin::Schedule) && take(&mut self.own);
        take(&mut self.any) || own
    }
}

fn new_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// Now, in RFC 3339 with microseconds always written, so timestamps sort as text.
fn now() -> String {
    format!("{:.6}", jiff::Timestamp::now())
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

/// The approval an input-required task waits on.
fn waiting_on(task: &Task) -> Option<String> {
    if task.status.state != TaskState::InputRequired {
        return None;
    }
    task.metadata.as_ref()?.get("approval")?.get("id")?.as_str().map(str::to_owned)
}

/// The session a task's turns are kept in.
fn session_of(origin: Origin, context_id: &str) -> String {
    match origin {
        Origin::A2a => format!("a2a:{context_id}"),
        _ => format!("task:{context_id}"),
    }
}

impl Tasks {
    /// The tasks of `agent`.
    pub fn new(agent: Arc<Agent>) -> Self {
        Self { agent, running: Mutex::default(), latest: watch::Sender::new(Latest::default()) }
    }

    /// The agent the tasks run on.
    pub fn agent(&self) -> &Arc<Agent> {
        &self.agent
    }

    /// The newest tasks, as they change.
    pub fn latest(&self) -> watch::Receiver<Latest> {
        self.latest.subscribe()
    }

    async fn load(&self, id: &str) -> Result<TaskRecord, TaskError> {
        self.agent.sessions().record(TASKS, id).await?.ok_or_else(|| TaskError::TaskNotFound(id.to_owned()))
    }

    async fn save(&self, record: &TaskRecord) -> Result<(), StoreError> {
        self.agent.sessions().put_record(TASKS, &record.task.id, record).await?;
        self.latest.send_if_modified(|latest| latest.offer(record));
        Ok(())
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<String, Running>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks failed, and `interrupted`, the tasks a previous run of the runtime left queued or
    /// running: their turns died with it. Returns them.
    pub async fn recover(&self) -> Result<Vec<TaskRecord>, TaskError> {
        let mut interrupted = Vec::new();
        for mut record in self.records().await? {
            if matches!(record.task.status.state, TaskState::Submitted | TaskState::Working) {
                record.interrupted = true;
                let why = "interrupted: the agent restarted while the task ran";
                self.settle(&mut record, TaskState::Failed, why.to_owned()).await?;
                interrupted.push(record);
            } else {
                self.latest.send_if_modified(|latest| latest.offer(&record));
            }
        }
        Ok(interrupted)
    }

    /// Every task, newest first.
    pub async fn records(&self) -> Result<Vec<TaskRecord>, TaskError> {
        let mut records: Vec<TaskRecord> = self.agent.sessions().records(TASKS).await?;
        records.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| b.task.id.cmp(&a.task.id)));
        Ok(records)
    }

    /// The task `id`, with at most `history_length` of its newest messages.
    pub async fn get(&self, id: &str, history_length: Option<usize>) -> Result<TaskRecord, TaskError> {
        let mut record = self.refresh(self.load(id).await?).await?;
        if let Some(keep) = history_length {
            let drop = record.task.history.len().saturating_sub(keep);
            record.task.history.drain(..drop);
        }
        Ok(record)
    }

    /// Deletes a finished task and its session; returns whether it existed.
    pub async fn delete(&self, record: &TaskRecord) -> Result<bool, TaskError> {
        if record.origin != Origin::A2a {
            self.agent.sessions().delete(&session_of(record.origin, &record.task.context_id)).await?;
        }
        Ok(self.agent.sessions().delete_record(TASKS, &record.task.id).await?)
    }

    /// The events of a running task from now on; `None` when it does not run.
    pub fn subscribe(&self, id: &str) -> Option<broadcast::Receiver<StreamEvent>> {
        self.running().get(id).map(|running| running.events.subscribe())
    }

    /// An input-required task whose approval was decided elsewhere (the approvals API, the
    /// timeout) takes the resumed turn's outcome.
    async fn refresh(&self, mut record: TaskRecord) -> Result<TaskRecord, TaskError> {
        let Some(approval) = waiting_on(&record.task) else { return Ok(record) };
        let Ok(view) = self.agent.approval(&approval).await else { return Ok(record) };
        if view.state == ApprovalState::Pending {
            return Ok(record);
        }
        let (state, text) = match (&view.answer, &view.error, &view.next) {
            (Some(answer), ..) => {
                record.task.artifacts = vec![answer_artifact(answer.clone())];
                (TaskState::Completed, answer.clone())
            }
            (None, Some(error), _) => (TaskState::Failed, error.clone()),
            (None, None, Some(next)) => match self.agent.approval(next).await {
                Ok(next) => {
                    record.task.metadata = Some(Map::from_iter([("approval".to_owned(), json!(next))]));
                    return Ok(record);
                }
                Err(_) => return Ok(record),
            },
            (None, None, None) => return Ok(record),
        };
        self.settle(&mut record, state, text).await?;
        Ok(record)
    }

    /// Starts a task. Its events go to subscribers as they happen.
    pub async fn submit(
        self: &Arc<Self>,
        submission: Submission,
        follow: Follow,
    ) -> Result<(TaskRecord, Option<broadcast::Receiver<StreamEvent>>), TaskError> {
        let context_id = submission.context_id.clone().unwrap_or_else(new_id);
        let session = session_of(submission.origin, &context_id);
        if !valid_session_id(&session) {
            return Err(TaskError::InvalidParams(format!(
                "contextId {context_id:?} must be 1-120 letters, digits or -_.:@"
            )));
        }
        let id = new_id();
        let inbound = Inbound {
            message_id: submission.message_id.clone().unwrap_or_else(new_id),
            context_id: Some(context_id.clone()),
            task_id: None,
            text: submission.text.clone(),
        };
        let record = TaskRecord {
            task: Task {
                history: vec![inbound.message(&context_id, &id)],
                id,
                status: TaskStatus { state: TaskState::Submitted, message: None, timestamp: now() },
                context_id,
                artifacts: Vec::new(),
                metadata: None,
            },
            origin: submission.origin,
            input: submission.text.clone(),
            created: now(),
            started: None,
            finished: None,
            usage: TaskUsage::default(),
            generation: submission.generation,
            scheduled_for: submission.scheduled_for,
            attempt: if submission.retry_of.is_some() { 2 } else { 1 },
            retry_of: submission.retry_of,
            interrupted: false,
        };
        self.save(&record).await?;
        let input = TurnInput {
            messages: vec![openai::Message::text(openai::Role::User, submission.text)],
            parameters: Map::new(),
            session: Some(session),
            whole: follow != Follow::Stream,
        };
        let events = self.agent.start_turn(input).await;
        self.run(record, events, follow).await
    }

    /// Continues an input-required task with a message that decides its pending approval
    /// (`approve`, `yes`, `ok`; anything else denies, with the message as the reason).
    pub async fn answer(
        self: &Arc<Self>,
        id: &str,
        inbound: &Inbound,
        follow: Follow,
    ) -> Result<(TaskRecord, Option<broadcast::Receiver<StreamEvent>>), TaskError> {
        let mut record = self.refresh(self.load(id).await?).await?;
        let Some(approval) = waiting_on(&record.task) else {
            return Err(TaskError::NotAccepting { id: id.to_owned(), state: record.task.status.state });
        };
        record.task.history.push(inbound.message(&record.task.context_id, &record.task.id));
        let answer = inbound.text.trim().to_lowercase();
        let approved = matches!(answer.as_str(), "approve" | "approved" | "yes" | "y" | "ok");
        let reason = (!approved).then(|| inbound.text.trim().to_owned());
        let events = self.agent.decide(&approval, Decision::now(approved, A2A_DECIDER, reason)).await;
        self.run(record, events, follow).await
    }

    /// Follows a started turn as `follow` says.
    async fn run(
        self: &Arc<Self>,
        mut record: TaskRecord,
        events: Result<tokio::sync::mpsc::Receiver<Event>, TurnError>,
        follow: Follow,
    ) -> Result<(TaskRecord, Option<broadcast::Receiver<StreamEvent>>), TaskError> {
        let events = match events {
            Ok(events) => events,
            Err(error) => {
                self.settle(&mut record, TaskState::Failed, error.to_string()).await?;
                return Ok((record, None));
            }
        };
        let (sender, subscription) = broadcast::channel(EVENT_BUFFER);
        let subscription = (follow == Follow::Stream).then_some(subscription);
        let id = record.task.id.clone();
        let driver = {
            // Registered before the driver can finish and remove it.
            let mut running = self.running();
            let driver = tokio::spawn(self.clone().drive(record.clone(), events, sender.clone()));
            running.insert(id.clone(), Running { abort: driver.abort_handle(), events: sender });
            driver
        };
        if follow != Follow::Wait {
            return Ok((record, subscription));
        }
        match driver.await {
            Ok(record) => Ok((record, None)),
            // Canceled meanwhile: the store has the canceled task.
            Err(_) => Ok((self.load(&id).await?, None)),
        }
    }

    /// Follows a turn to its end, keeping the task and telling subscribers.
    async fn drive(
        self: Arc<Self>,
        mut record: TaskRecord,
        mut events: tokio::sync::mpsc::Receiver<Event>,
        tell: broadcast::Sender<StreamEvent>,
    ) -> TaskRecord {
        let (id, context_id) = (record.task.id.clone(), record.task.context_id.clone());
        record.task.status = TaskStatus { state: TaskState::Working, message: None, timestamp: now() };
        record.started.get_or_insert_with(now);
        if let Err(error) = self.save(&record).await {
            tracing::warn!(task = %id, %error, "keeping a task failed");
        }
        let status = record.task.status.clone();
        let _ = tell.send(StreamEvent::StatusUpdate { task_id: id.clone(), context_id: context_id.clone(), status });
        let mut text = String::new();
        let (state, said) = loop {
            match events.recv().await {
                Some(Event::Content(piece)) => {
                    let append = !text.is_empty();
                    text.push_str(&piece);
                    let artifact = answer_artifact(piece);
                    let (task_id, context_id) = (id.clone(), context_id.clone());
                    let _ = tell.send(StreamEvent::ArtifactUpdate {
                        task_id,
                        context_id,
                        artifact,
                        append,
                        last_chunk: false,
                    });
                }
                Some(Event::Done { approval: Some(approval), usage, .. }) => {
                    record.usage.input_tokens += usage.prompt_tokens;
                    record.usage.output_tokens += usage.completion_tokens;
                    record.task.metadata = Some(Map::from_iter([("approval".to_owned(), json!(approval))]));
                    break (TaskState::InputRequired, text);
                }
                Some(Event::Done { usage, .. }) => {
                    record.usage.input_tokens += usage.prompt_tokens;
                    record.usage.output_tokens += usage.completion_tokens;
                    record.task.artifacts = vec![answer_artifact(text.clone())];
                    let _ = tell.send(StreamEvent::ArtifactUpdate {
                        task_id: id.clone(),
                        context_id: context_id.clone(),
                        artifact: answer_artifact(String::new()),
                        append: true,
                        last_chunk: true,
                    });
                    break (TaskState::Completed, text);
                }
                Some(Event::Error(error)) => break (TaskState::Failed, error.to_string()),
                None => break (TaskState::Failed, "the turn ended without an answer".to_owned()),
            }
        };
        if let Err(error) = self.settle(&mut record, state, said).await {
            tracing::warn!(task = %id, %error, "keeping a task failed");
        }
        let status = record.task.status.clone();
        let _ = tell.send(StreamEvent::StatusUpdate { task_id: id.clone(), context_id, status });
        self.running().remove(&id);
        record
    }

    /// Gives the task its final (or input-required) status with the agent's message, and keeps
    /// it.
    async fn settle(&self, record: &mut TaskRecord, state: TaskState, text: String) -> Result<(), StoreError> {
        let metadata = if state == TaskState::InputRequired { record.task.metadata.clone() } else { None };
        let message = agent_message(&record.task, text, metadata);
        record.task.history.push(message.clone());
        record.task.status = TaskStatus { state, message: Some(message), timestamp: now() };
        if state.is_terminal() {
            record.finished = Some(now());
        }
        self.save(record).await
    }

    /// Cancels the task: its turn stops (a pending approval is denied) and it is kept canceled.
    pub async fn cancel(&self, id: &str) -> Result<TaskRecord, TaskError> {
        let mut record = self.refresh(self.load(id).await?).await?;
        if record.task.status.state.is_terminal() {
            return Err(TaskError::NotCancelable { id: id.to_owned(), state: record.task.status.state });
        }
        let running = self.running().remove(id);
        if let Some(running) = &running {
            running.abort.abort();
        }
        if let Some(approval) = waiting_on(&record.task) {
            let decision = Decision::now(false, A2A_DECIDER, Some("the task was canceled".into()));
            if let Ok(mut events) = self.agent.decide(&approval, decision).await {
                tokio::spawn(async move { while events.recv().await.is_some() {} });
            }
        }
        self.settle(&mut record, TaskState::Canceled, "canceled".into()).await?;
        if let Some(running) = running {
            let (task_id, context_id) = (record.task.id.clone(), record.task.context_id.clone());
            let status = record.task.status.clone();
            let _ = running.events.send(StreamEvent::StatusUpdate { task_id, context_id, status });
        }
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::now;

    #[test]
    fn timestamps_always_have_six_fraction_digits_so_they_sort_as_text() {
        let stamp = now();
        assert_eq!(stamp.len(), "2026-11-29T07:40:01.123456Z".len(), "{stamp}");
        assert!(stamp.parse::<jiff::Timestamp>().is_ok());
    }
}
