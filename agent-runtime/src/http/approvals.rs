//! `/v1/approvals`: tool calls waiting for a human, and the decisions that resume their turns.
//! `POST /v1/approvals/{id}` answers with the resumed turn, whole or streamed, like a chat
//! completion; the answer is also kept in the session and on the approval.

use std::time::Instant;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Deserialize;

use super::chat::{Delivery, respond};
use super::extract::ApiJson;
use super::{ApiError, AppState};
use crate::agent::approval::ApprovalState;
use crate::agent::{ApprovalView, Decision};

/// Who decided, when the request does not say.
const ANONYMOUS_DECIDER: &str = "api-client";

/// `GET /v1/approvals` filters.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// Only approvals in this state (`pending`, `approved`, `denied`).
    state: Option<ApprovalState>,
}

/// A decision on a pending approval.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecideRequest {
    /// `approve` or `deny`.
    decision: Verdict,
    /// Why (kept in the session; a denial's reason is shown to the model).
    #[serde(default)]
    reason: Option<String>,
    /// Who decides (kept in the session).
    #[serde(default)]
    by: Option<String>,
    /// Stream the resumed turn's answer as server-sent events.
    #[serde(default)]
    stream: bool,
}

#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum Verdict {
    Approve,
    Deny,
}

/// The approvals kept, newest first.
pub async fn list(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let approvals: Vec<ApprovalView> = state
        .agent
        .approvals()
        .await?
        .into_iter()
        .filter(|a| query.state.is_none_or(|wanted| a.state == wanted))
        .collect();
    Ok(Json(serde_json::json!({ "approvals": approvals })))
}

/// One approval, with the resumed turn's answer once there is one.
pub async fn get(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<ApprovalView>, ApiError> {
    Ok(Json(state.agent.approval(&id).await?))
}

/// Decides a pending approval and answers with the resumed turn.
pub async fn decide(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<DecideRequest>,
) -> Result<Response, ApiError> {
    let permit =
        state.permits.clone().try_acquire_owned().map_err(|_| ApiError::Overloaded(state.limits.max_concurrency))?;
    let by = request.by.filter(|b| !b.trim().is_empty()).unwrap_or_else(|| ANONYMOUS_DECIDER.to_owned());
    let decision = Decision::now(matches!(request.decision, Verdict::Approve), &by, request.reason);
    let started = Instant::now();
    let events = state.agent.decide(&id, decision).await?;
    respond(state, events, Delivery { stream: request.stream, include_usage: false }, started, permit).await
}
