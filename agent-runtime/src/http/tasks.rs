//! `/v1/tasks`: submit a task (answered at once with its id, or when `wait` is set, once it is
//! final or waits for an approval), read one or all, follow one as server-sent events, cancel
//! one. The same tasks as A2A's: an A2A client reads an API task by its id and the other way
//! round.

use std::convert::Infallible;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

use super::extract::ApiJson;
use super::{ApiError, AppState};
use crate::a2a::model::StreamEvent;
use crate::tasks::record::state_name;
use crate::tasks::{Follow, Origin, Submission, TaskError, TaskRecord};

/// Longest accepted task input.
const MAX_INPUT_CHARS: usize = 65_536;

impl From<TaskError> for ApiError {
    fn from(error: TaskError) -> Self {
        match error {
            TaskError::TaskNotFound(_) => Self::NotFound(error.to_string()),
            TaskError::NotCancelable { .. } | TaskError::NotAccepting { .. } => Self::Conflict(error.to_string()),
            TaskError::InvalidParams(_) => Self::BadRequest(error.to_string()),
            TaskError::Store(store) => store.into(),
        }
    }
}

/// `POST /v1/tasks`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SubmitRequest {
    /// What the agent is asked.
    input: String,
    /// A conversation to continue: tasks with the same context share a session.
    #[serde(default)]
    context_id: Option<String>,
    /// Answer once the task is final (or waits for an approval) instead of at once.
    #[serde(default)]
    wait: bool,
}

/// `POST /v1/tasks`: 202 with the queued task, or 200 with the finished one when `wait` is set.
pub async fn submit(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<SubmitRequest>,
) -> Result<Response, ApiError> {
    if request.input.trim().is_empty() {
        return Err(ApiError::BadRequest("input must not be empty".into()));
    }
    if request.input.chars().count() > MAX_INPUT_CHARS {
        return Err(ApiError::BadRequest(format!("input is longer than {MAX_INPUT_CHARS} characters")));
    }
    let submission = Submission {
        text: request.input,
        origin: Origin::Api,
        context_id: request.context_id,
        ..Submission::default()
    };
    let follow = if request.wait { Follow::Wait } else { Follow::Detach };
    let (record, _) = state.tasks.submit(submission, follow).await?;
    let status = if request.wait { StatusCode::OK } else { StatusCode::ACCEPTED };
    Ok((status, Json(record.view())).into_response())
}

/// `GET /v1/tasks` filters.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// Only tasks in this state (`queued`, `running`, `input-required`, `completed`, `failed`,
    /// `cancelled`).
    state: Option<String>,
    /// Only tasks started this way (`api`, `a2a`, `once`, `schedule`).
    origin: Option<Origin>,
    /// At most this many, newest first (default 100).
    limit: Option<usize>,
}

/// `GET /v1/tasks`: the tasks kept, newest first.
pub async fn list(State(state): State<AppState>, Query(query): Query<ListQuery>) -> Result<Json<Value>, ApiError> {
    let records = state.tasks.records().await?;
    let tasks: Vec<Value> = records
        .iter()
        .filter(|r| query.state.as_deref().is_none_or(|s| state_name(r.task.status.state) == s))
        .filter(|r| query.origin.is_none_or(|o| r.origin == o))
        .take(query.limit.unwrap_or(100))
        .map(TaskRecord::view)
        .collect();
    Ok(Json(json!({ "tasks": tasks })))
}

/// `GET /v1/tasks/{id}`.
pub async fn get(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    Ok(Json(state.tasks.get(&id, None).await?.view()))
}

/// `POST /v1/tasks/{id}/cancel`.
pub async fn cancel(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    Ok(Json(state.tasks.cancel(&id).await?.view()))
}

/// `GET /v1/tasks/{id}/events`: the task now (`task`), then as it runs its answer's pieces
/// (`content`) and state changes (`status`), and the task once more when it is final or waits
/// for an approval. A task that is not running gets its `task` event only.
pub async fn events(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let subscription = state.tasks.subscribe(&id);
    let record = state.tasks.get(&id, None).await?;
    let first = SseEvent::default().event("task").data(record.view().to_string());
    let Some(subscription) = subscription.filter(|_| !record.task.status.state.is_terminal()) else {
        let once = futures::stream::iter([Ok::<_, Infallible>(first)]);
        return Ok(Sse::new(once).into_response());
    };
    let tasks = state.tasks.clone();
    let follow = futures::stream::unfold(Some(subscription), move |subscription| {
        let tasks = tasks.clone();
        let id = id.clone();
        async move { next_event(subscription?, &tasks, &id).await }
    });
    let stream = futures::stream::iter([first]).chain(follow).map(Ok::<_, Infallible>);
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()).into_response())
}

/// The next SSE event of a followed task, and the subscription while more may come.
async fn next_event(
    mut subscription: broadcast::Receiver<StreamEvent>,
    tasks: &crate::tasks::Tasks,
    id: &str,
) -> Option<(SseEvent, Option<broadcast::Receiver<StreamEvent>>)> {
    loop {
        match subscription.recv().await {
            Ok(StreamEvent::ArtifactUpdate { artifact, .. }) => {
                let text: String = artifact.parts.iter().filter_map(|p| p.text.as_deref()).collect();
                if text.is_empty() {
                    continue;
                }
                let event = SseEvent::default().event("content").data(json!({ "text": text }).to_string());
                return Some((event, Some(subscription)));
            }
            Ok(StreamEvent::StatusUpdate { status, .. }) => {
                let settled = status.state.is_terminal() || status.state == crate::a2a::model::TaskState::InputRequired;
                if settled {
                    let record = tasks.get(id, None).await.ok()?;
                    return Some((SseEvent::default().event("task").data(record.view().to_string()), None));
                }
                let event =
                    SseEvent::default().event("status").data(json!({ "state": state_name(status.state) }).to_string());
                return Some((event, Some(subscription)));
            }
            Ok(StreamEvent::Task(_)) | Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => {
                let record = tasks.get(id, None).await.ok()?;
                return Some((SseEvent::default().event("task").data(record.view().to_string()), None));
            }
        }
    }
}
