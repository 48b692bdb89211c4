//! Knowledge endpoints: ingest documents (JSON with inline content or URLs, or a multipart
//! upload), list and delete them, and search.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{StatusCode, header};
use serde::Deserialize;
use serde_json::{Value, json};

use super::extract::ApiJson;
use super::{ApiError, AppState};
use crate::knowledge::{Ingested, Knowledge};
use crate::vector::Match;

/// A document given inline.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InlineDocument {
    /// Name (a file name, its extension tells the type when `contentType` is missing).
    pub name: String,
    /// The text.
    pub content: String,
    /// `text/plain`, `text/markdown` or `text/html`.
    #[serde(default)]
    pub content_type: Option<String>,
}

/// `POST /v1/knowledge/documents` JSON body.
#[derive(Deserialize, Default)]
pub struct IngestRequest {
    /// Documents given inline.
    #[serde(default)]
    pub documents: Vec<InlineDocument>,
    /// Documents to fetch.
    #[serde(default)]
    pub urls: Vec<String>,
}

/// `POST /v1/knowledge/search` body.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchBody {
    /// What to look for.
    pub query: String,
    /// Results wanted.
    #[serde(default = "default_top_k")]
    pub top_k: usize,
    /// Dense + BM25 fused by rank (default), or dense only.
    #[serde(default = "yes")]
    pub hybrid: bool,
    /// Payload filter: field -> exact value (e.g. `{"documentId": "..."}`).
    #[serde(default)]
    pub filter: BTreeMap<String, Value>,
}

fn default_top_k() -> usize {
    5
}

fn yes() -> bool {
    true
}

fn knowledge(state: &AppState) -> Result<Arc<Knowledge>, ApiError> {
    state.knowledge.clone().ok_or_else(|| {
        let why = state.knowledge_off.as_deref().unwrap_or("no embedding model");
        ApiError::Unavailable(format!("knowledge is off: {why}"))
    })
}

/// Ingests documents from a JSON body or a multipart upload.
pub async fn ingest(State(state): State<AppState>, request: Request) -> Result<(StatusCode, Json<Value>), ApiError> {
    let knowledge = knowledge(&state)?;
    let is_multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("multipart/form-data"));
    let mut results: Vec<Ingested> = Vec::new();
    if is_multipart {
        let mut multipart =
            Multipart::from_request(request, &state).await.map_err(|e| ApiError::BadRequest(e.body_text()))?;
        while let Some(field) = multipart.next_field().await.map_err(|e| ApiError::BadRequest(e.body_text()))? {
            let name = field.file_name().or(field.name()).unwrap_or("upload").to_owned();
            let content_type = field.content_type().map(str::to_owned);
            let bytes = field.bytes().await.map_err(|e| ApiError::BadRequest(e.body_text()))?;
            results.push(knowledge.ingest(&name, content_type.as_deref(), &bytes).await?);
        }
    } else {
        let ApiJson(body) = ApiJson::<IngestRequest>::from_request(request, &state).await?;
        for document in body.documents {
            results.push(
                knowledge.ingest(&document.name, document.content_type.as_deref(), document.content.as_bytes()).await?,
            );
        }
        for url in body.urls {
            let fetched = state.fetcher.document(&url, state.limits.max_document_bytes).await?;
            results.push(knowledge.ingest(&url, fetched.content_type.as_deref(), &fetched.bytes).await?);
        }
    }
    if results.is_empty() {
        return Err(ApiError::BadRequest("no documents given: send `documents`, `urls`, or a multipart upload".into()));
    }
    let status = if results.iter().any(|r| r.created) { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(json!({"documents": results}))))
}

/// Lists stored documents.
pub async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let documents = knowledge(&state)?.documents().await?;
    Ok(Json(json!({"documents": documents})))
}

/// Deletes a document and its chunks.
pub async fn delete(State(state): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    if knowledge(&state)?.delete(&id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("no document {id}")))
    }
}

/// Searches the stored documents.
pub async fn search(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<SearchBody>,
) -> Result<Json<Value>, ApiError> {
    if body.query.trim().is_empty() {
        return Err(ApiError::BadRequest("query must not be empty".into()));
    }
    let mut filter = Vec::new();
    for (key, value) in body.filter {
        let condition = match value {
            Value::String(text) => Match::Keyword(text),
            Value::Number(n) if n.is_i64() => Match::Integer(n.as_i64().unwrap_or_default()),
            other => {
                return Err(ApiError::BadRequest(format!(
                    "filter {key}: only strings and integers match exactly, got {other}"
                )));
            }
        };
        filter.push((key, condition));
    }
    let results = knowledge(&state)?.search(&body.query, body.top_k.min(100), body.hybrid, filter).await?;
    Ok(Json(json!({"results": results})))
}
