//! Human approval of tool calls. A call to a tool that needs one stops the tool loop; the turn
//! is kept on the agent's volume as an [`Approval`] (so it survives `kill -9` and restarts), its
//! client is told, and the turn resumes once someone decides ([`Agent::decide`]) or is denied
//! when nobody does in time. Each decision is recorded in the session and counted.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::mpsc;
use tracing::Instrument as _;

use super::session_lock::SessionGuard;
use super::tool_loop::{LoopState, Stopped};
use super::{Agent, Event, Pending, TurnError};
use crate::openai::{Citation, Role};
use crate::sessions::{APPROVALS, DecisionRecord, Session};

/// Who decides when nobody did in time.
pub const TIMEOUT_DECIDER: &str = "timeout";

/// A human decision on one tool call.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    /// Whether the call may run.
    pub approved: bool,
    /// Who decided.
    pub by: String,
    /// Why, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When (RFC 3339).
    pub at: String,
}

impl Decision {
    /// A decision made now.
    pub fn now(approved: bool, by: &str, reason: Option<String>) -> Self {
        Self { approved, by: by.to_owned(), reason, at: jiff::Timestamp::now().to_string() }
    }

    /// What the model reads in place of a denied call's result.
    pub fn refusal(&self) -> String {
        let reason = self.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default();
        format!("error: the call was denied by {}{reason}; do not retry it, tell the user instead", self.by)
    }
}

/// Where an approval is.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum ApprovalState {
    /// Waiting for a decision.
    Pending,
    /// The call was allowed.
    Approved,
    /// The call was refused (by a human, or by the timeout).
    Denied,
}

/// A turn paused before a tool call, as kept on the volume.
#[derive(Serialize, Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Approval {
    /// Its id (`appr-` and 16 hex digits).
    pub id: String,
    /// Where it is.
    pub state: ApprovalState,
    /// The tool the model wants to call.
    pub tool: String,
    /// The arguments, as the model wrote them (JSON text).
    pub arguments: String,
    /// The session of the turn, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// When the turn paused (RFC 3339).
    pub created: String,
    /// When an undecided call is denied (RFC 3339).
    pub deadline: String,
    /// The decision, once made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    /// The resumed turn's answer, once given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
    /// Why the resumed turn failed, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The approval the resumed turn paused on next, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// Everything needed to resume the turn.
    pub turn: PausedTurn,
}

/// The paused turn's loop state and what its model calls need.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
#[serde(rename_all = "camelCase")]
pub struct PausedTurn {
    /// The loop, with the waiting call first in `calls`.
    pub state: LoopState,
    /// How the loop calls the model.
    pub continuation: Continuation,
    /// Text appended to the answer (a recipe's sources).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appendix: Option<String>,
    /// The chunks the answer was given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub citations: Vec<Citation>,
}

/// How a turn's tool loop calls the model; kept to resume it the same way.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
#[serde(rename_all = "camelCase")]
pub struct Continuation {
    /// The generation parameters of the turn.
    pub parameters: Map<String, Value>,
    /// Whether tools are offered.
    pub offers_tools: bool,
    /// Whether the model is asked for whole answers.
    #[serde(default)]
    pub whole: bool,
}

/// What clients are shown of an approval.
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalView {
    /// Its id, for `POST /v1/approvals/{id}`.
    pub id: String,
    /// Where it is.
    pub state: ApprovalState,
    /// The tool.
    pub tool: String,
    /// The arguments (parsed when they are JSON).
    pub arguments: Value,
    /// The session, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// When the turn paused.
    pub created: String,
    /// When an undecided call is denied.
    pub deadline: String,
    /// The decision, once made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    /// The resumed turn's answer, once given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
    /// Why the resumed turn failed, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The approval the resumed turn paused on next.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

impl Approval {
    /// A new approval for the first waiting call of `turn`, denied after `timeout_seconds`.
    fn pending(turn: PausedTurn, session: Option<String>, timeout_seconds: u32) -> Self {
        let call = turn.state.calls.first().cloned().unwrap_or_default();
        let now = jiff::Timestamp::now();
        let timeout = jiff::SignedDuration::from_secs(i64::from(timeout_seconds));
        Self {
            id: format!("appr-{:016x}", rand::random::<u64>()),
            state: ApprovalState::Pending,
            tool: call.function.name,
            arguments: call.function.arguments,
            session,
            created: now.to_string(),
            deadline: now.saturating_add(timeout).unwrap_or(now).to_string(),
            decision: None,
            answer: None,
            error: None,
            next: None,
            turn,
        }
    }

    /// What clients are shown.
    pub fn view(&self) -> ApprovalView {
        ApprovalView {
            id: self.id.clone(),
            state: self.state,
            tool: self.tool.clone(),
            arguments: serde_json::from_str(&self.arguments).unwrap_or_else(|_| Value::String(self.arguments.clone())),
            session: self.session.clone(),
            created: self.created.clone(),
            deadline: self.deadline.clone(),
            decision: self.decision.clone(),
            answer: self.answer.clone(),
            error: self.error.clone(),
            next: self.next.clone(),
        }
    }

    /// How long until the deadline (zero once it passed).
    fn time_left(&self) -> Duration {
        let deadline: jiff::Timestamp = self.deadline.parse().unwrap_or_else(|_| jiff::Timestamp::now());
        let left = deadline.duration_since(jiff::Timestamp::now());
        Duration::try_from(left).unwrap_or(Duration::ZERO)
    }
}

impl Agent {
    /// Keeps the turn paused before `state.calls[0]`, tells the listener, and starts its timeout.
    pub(super) async fn pause(
        self: &Arc<Self>,
        state: LoopState,
        continuation: Continuation,
        pending: Pending,
        events: &mpsc::Sender<Event>,
    ) -> Option<String> {
        let session = pending.session.as_ref().map(|(session, ..)| session.id.clone());
        let turn = PausedTurn { state, continuation, appendix: pending.appendix, citations: pending.citations };
        let approval = Approval::pending(turn, session, self.config.approval.timeout_seconds);
        // The user's messages are kept now: the conversation is not lost while the call waits.
        if let Some((mut session, new_messages, _guard)) = pending.session {
            session
                .messages
                .extend(new_messages.into_iter().filter(|m| matches!(m.role, Role::User | Role::Assistant)));
            session.updated.clone_from(&approval.created);
            if let Err(error) = self.sessions.put(session).await {
                let _ = events.send(Event::Error(error.into())).await;
                return None;
            }
        }
        if let Err(error) = self.sessions.put_record(APPROVALS, &approval.id, &approval).await {
            let _ = events.send(Event::Error(error.into())).await;
            return None;
        }
        self.metrics.approval("requested");
        tracing::info!(approval = %approval.id, tool = %approval.tool, "tool call waits for an approval");
        tokio::spawn(self.clone().deny_when_due(approval.id.clone(), approval.time_left()));
        let note = format!(
            "The call to {} waits for a human approval (approval {}); its answer follows once someone decides.",
            approval.tool, approval.id
        );
        let _ = events.send(Event::Content(note)).await;
        let id = approval.id.clone();
        let done = Event::Done {
            finish_reason: "stop".into(),
            usage: approval.turn.state.usage,
            citations: Vec::new(),
            approval: Some(Box::new(approval.view())),
        };
        let _ = events.send(done).await;
        Some(id)
    }

    /// Records `decision` on approval `id` and resumes its turn, whose events arrive on the
    /// returned channel. A decided approval is not decided again.
    pub async fn decide(self: &Arc<Self>, id: &str, decision: Decision) -> Result<mpsc::Receiver<Event>, TurnError> {
        let mut approval = self.record_decision(id, &decision).await?;
        let session = self.session_with(&approval, &decision).await?;
        let turn = std::mem::take(&mut approval.turn);
        let pending =
            Pending { session, appendix: turn.appendix, citations: turn.citations, resumed: Some(approval.id.clone()) };
        let (events, receiver) = mpsc::channel(64);
        let agent = self.clone();
        let span = self.turn_span(approval.session.as_deref());
        let resumed = async move {
            let tool_loop = agent.tool_loop(&turn.continuation);
            let outcome = tool_loop.resume(turn.state, Some(decision), &events).await;
            // An answer is recorded on the approval by `commit`, before the listener hears the end.
            match agent.finish(outcome, turn.continuation, pending, &events).await {
                Ended::Answered => return,
                Ended::Paused(next) => approval.next = Some(next),
                Ended::Failed(error) => approval.error = Some(error),
            }
            if let Err(error) = agent.sessions.put_record(APPROVALS, &approval.id, &approval).await {
                tracing::error!(approval = %approval.id, %error, "recording how the resumed turn ended failed");
            }
        };
        tokio::spawn(resumed.instrument(span));
        Ok(receiver)
    }

    /// Keeps `decision` on the pending approval `id` (one decision at a time) and counts it.
    async fn record_decision(&self, id: &str, decision: &Decision) -> Result<Approval, TurnError> {
        let _one_decision = self.deciding.lock().await;
        let mut approval: Approval =
            self.sessions.record(APPROVALS, id).await?.ok_or_else(|| TurnError::ApprovalNotFound(id.to_owned()))?;
        if let Some(earlier) = approval.decision.as_ref().filter(|_| approval.state != ApprovalState::Pending) {
            let verb = if earlier.approved { "approved" } else { "denied" };
            return Err(TurnError::AlreadyDecided { id: id.to_owned(), state: format!("{verb} by {}", earlier.by) });
        }
        approval.state = if decision.approved { ApprovalState::Approved } else { ApprovalState::Denied };
        approval.decision = Some(decision.clone());
        self.sessions.put_record(APPROVALS, id, &approval).await?;
        let outcome = match (decision.approved, decision.by == TIMEOUT_DECIDER) {
            (true, _) => "approved",
            (false, false) => "denied",
            (false, true) => "expired",
        };
        self.metrics.approval(outcome);
        tracing::info!(approval = %id, outcome, by = %decision.by, "tool call decided");
        Ok(approval)
    }

    /// The approval's session, taken for the resumed turn, with the decision recorded in it.
    async fn session_with(
        &self,
        approval: &Approval,
        decision: &Decision,
    ) -> Result<Option<(Session, Vec<crate::openai::Message>, SessionGuard)>, TurnError> {
        let Some(id) = &approval.session else { return Ok(None) };
        let guard = self.locks.lock(id).await?;
        let mut session =
            self.sessions.get(id).await?.unwrap_or_else(|| Session { id: id.clone(), ..Session::default() });
        session.decisions.push(DecisionRecord {
            approval: approval.id.clone(),
            tool: approval.tool.clone(),
            arguments: approval.arguments.clone(),
            approved: decision.approved,
            by: decision.by.clone(),
            at: decision.at.clone(),
            reason: decision.reason.clone(),
        });
        Ok(Some((session, Vec::new(), guard)))
    }

    /// Gives approval `id` the answer of the turn it resumed.
    pub(super) async fn record_answer(&self, id: &str, answer: &str) -> Result<(), crate::sessions::StoreError> {
        let Some(mut approval) = self.sessions.record::<Approval>(APPROVALS, id).await? else { return Ok(()) };
        approval.answer = Some(answer.to_owned());
        self.sessions.put_record(APPROVALS, id, &approval).await
    }

    /// The approvals kept, newest first.
    pub async fn approvals(&self) -> Result<Vec<ApprovalView>, TurnError> {
        let mut approvals: Vec<Approval> = self.sessions.records(APPROVALS).await?;
        approvals.sort_by(|a, b| b.created.cmp(&a.created));
        Ok(approvals.iter().map(Approval::view).collect())
    }

    /// The approval `id`.
    pub async fn approval(&self, id: &str) -> Result<ApprovalView, TurnError> {
        let approval: Option<Approval> = self.sessions.record(APPROVALS, id).await?;
        approval.map(|a| a.view()).ok_or_else(|| TurnError::ApprovalNotFound(id.to_owned()))
    }

    /// Starts the timeouts of the approvals still pending (after a restart).
    pub async fn watch_approvals(self: &Arc<Self>) -> Result<usize, TurnError> {
        let approvals: Vec<Approval> = self.sessions.records(APPROVALS).await?;
        let pending: Vec<&Approval> = approvals.iter().filter(|a| a.state == ApprovalState::Pending).collect();
        for approval in &pending {
            tokio::spawn(self.clone().deny_when_due(approval.id.clone(), approval.time_left()));
        }
        Ok(pending.len())
    }

    /// Denies approval `id` after `wait` unless it was decided by then. Boxed: deciding resumes
    /// a turn that may pause again and start another of these.
    fn deny_when_due(self: Arc<Self>, id: String, wait: Duration) -> BoxFuture<'static, ()> {
        async move {
            tokio::time::sleep(wait).await;
            let seconds = self.config.approval.timeout_seconds;
            let reason = format!("nobody decided within {seconds} s");
            match self.decide(&id, Decision::now(false, TIMEOUT_DECIDER, Some(reason))).await {
                Ok(mut events) => while events.recv().await.is_some() {},
                Err(TurnError::AlreadyDecided { .. }) => {}
                Err(error) => tracing::warn!(approval = %id, %error, "denying an expired approval failed"),
            }
        }
        .boxed()
    }

    /// Settles a tool loop's outcome: commits the answer, pauses for an approval, or reports
    /// the failure to the listener.
    pub(super) async fn finish(
        self: &Arc<Self>,
        outcome: Result<super::tool_loop::Answer, Stopped>,
        continuation: Continuation,
        pending: Pending,
        events: &mpsc::Sender<Event>,
    ) -> Ended {
        match outcome {
            Ok(answer) => {
                self.model_reached.store(true, std::sync::atomic::Ordering::Relaxed);
                if self.commit(pending, answer, events).await {
                    Ended::Answered
                } else {
                    Ended::Failed("the answer could not be committed".into())
                }
            }
            Err(Stopped::Failed(error)) => {
                let message = error.to_string();
                crate::traces::record_error(&tracing::Span::current(), error.kind(), &message);
                let _ = events.send(Event::Error(error)).await;
                Ended::Failed(message)
            }
            Err(Stopped::Abandoned) => Ended::Failed("nobody listened to the turn any more".into()),
            Err(Stopped::AwaitingApproval(state)) => match self.pause(state, continuation, pending, events).await {
                Some(id) => Ended::Paused(id),
                None => Ended::Failed("the turn could not be paused".into()),
            },
        }
    }
}

/// How a turn ended.
pub(super) enum Ended {
    /// With an answer, committed.
    Answered,
    /// Paused on this approval.
    Paused(String),
    /// Failed, for this reason.
    Failed(String),
}
