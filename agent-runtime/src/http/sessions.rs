//! `GET` and `DELETE /v1/sessions/{id}`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::ApiError;
use super::AppState;
use crate::sessions::{Session, valid_session_id};

fn checked(id: &str) -> Result<(), ApiError> {
    if valid_session_id(id) { Ok(()) } else { Err(ApiError::BadRequest(format!("invalid session id {id:?}"))) }
}

/// The stored session.
pub async fn get_session(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Session>, ApiError> {
    checked(&id)?;
    state.agent.sessions().get(&id).await?.map(Json).ok_or_else(|| ApiError::NotFound(format!("no session {id}")))
}

/// Forgets the session.
pub async fn delete_session(State(state): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    checked(&id)?;
    if state.agent.sessions().delete(&id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("no session {id}")))
    }
}
