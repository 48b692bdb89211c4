//! Sessions: each conversation kept on the agent's volume in an embedded `redb` database. A
//! turn is committed (durably, fsynced) before the client sees the end of the answer, so an
//! acknowledged turn survives `kill -9`.

use std::path::Path;
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::openai::Message;

const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("sessions");

/// A table of JSON records kept beside the sessions, in the same durable database.
pub type RecordTable = TableDefinition<'static, &'static str, &'static [u8]>;

/// Turns paused for a human decision ([`crate::agent::approval::Approval`]).
pub const APPROVALS: RecordTable = TableDefinition::new("approvals");

/// The agent's tasks ([`crate::tasks::TaskRecord`]), whichever API started them.
pub const TASKS: RecordTable = TableDefinition::new("tasks");

/// Child agents a local agent created ([`agent_crds::Agent`]), restarted with it.
pub const CHILDREN: RecordTable = TableDefinition::new("children");

/// What the task runner remembers: the task each `Once` generation ran as, the last scheduled
/// time a `Schedule` run started for, and the agent's token usage.
pub const RUNNER: RecordTable = TableDefinition::new("runner");
/// Longest accepted session id.
pub const MAX_SESSION_ID: usize = 128;

/// One conversation.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct Session {
    /// The id clients send.
    pub id: String,
    /// Summary of turns folded out of `messages` to stay within the context budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Turns kept verbatim, oldest first.
    pub messages: Vec<Message>,
    /// Turns completed since the session began.
    pub turns: u64,
    /// When the session was last written (RFC 3339).
    pub updated: String,
    /// Human decisions on its tool calls, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub decisions: Vec<DecisionRecord>,
}

/// A human decision on a tool call, as the session keeps it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct DecisionRecord {
    /// The approval it answered.
    pub approval: String,
    /// The tool.
    pub tool: String,
    /// The call's arguments (JSON text, as the model wrote them).
    pub arguments: String,
    /// Whether the call was allowed to run.
    pub approved: bool,
    /// Who decided (`timeout` when nobody did in time).
    pub by: String,
    /// When (RFC 3339).
    pub at: String,
    /// Why, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("session store: {0}")]
    Database(String),
    /// A stored session does not decode.
    #[error("session {0} is corrupt: {1}")]
    Corrupt(String, serde_json::Error),
}

fn db_error(error: impl std::fmt::Display) -> StoreError {
    StoreError::Database(error.to_string())
}

/// The session database.
#[derive(Clone)]
pub struct SessionStore {
    db: Arc<Database>,
}

impl SessionStore {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(db_error)?;
        let db = Database::create(dir.join("sessions.redb")).map_err(db_error)?;
        let write = db.begin_write().map_err(db_error)?;
        write.open_table(SESSIONS).map_err(db_error)?;
        write.open_table(APPROVALS).map_err(db_error)?;
        write.open_table(TASKS).map_err(db_error)?;
        write.open_table(RUNNER).map_err(db_error)?;
        write.open_table(CHILDREN).map_err(db_error)?;
        write.commit().map_err(db_error)?;
        Ok(Self { db: Arc::new(db) })
    }

    /// The session `id`, if it exists.
    pub async fn get(&self, id: &str) -> Result<Option<Session>, StoreError> {
        let db = self.db.clone();
        let id = id.to_owned();
        blocking(move || {
            let read = db.begin_read().map_err(db_error)?;
            let table = read.open_table(SESSIONS).map_err(db_error)?;
            let Some(bytes) = table.get(id.as_str()).map_err(db_error)? else { return Ok(None) };
            serde_json::from_slice(bytes.value()).map(Some).map_err(|e| StoreError::Corrupt(id.clone(), e))
        })
        .await
    }

    /// Writes `session`; returns once it is durable.
    pub async fn put(&self, session: Session) -> Result<(), StoreError> {
        let db = self.db.clone();
        blocking(move || {
            let bytes = serde_json::to_vec(&session).map_err(db_error)?;
            let write = db.begin_write().map_err(db_error)?;
            {
                let mut table = write.open_table(SESSIONS).map_err(db_error)?;
                table.insert(session.id.as_str(), bytes.as_slice()).map_err(db_error)?;
            }
            write.commit().map_err(db_error)
        })
        .await
    }

    /// Deletes the session `id`; returns whether it existed.
    pub async fn delete(&self, id: &str) -> Result<bool, StoreError> {
        let db = self.db.clone();
        let id = id.to_owned();
        blocking(move || {
            let write = db.begin_write().map_err(db_error)?;
            let existed = {
                let mut table = write.open_table(SESSIONS).map_err(db_error)?;
                table.remove(id.as_str()).map_err(db_error)?.is_some()
            };
            write.commit().map_err(db_error)?;
            Ok(existed)
        })
        .await
    }

    /// The record `key` of `table`, if it exists.
    pub async fn record<T: DeserializeOwned + Send + 'static>(
        &self,
        table: RecordTable,
        key: &str,
    ) -> Result<Option<T>, StoreError> {
        let db = self.db.clone();
        let key = key.to_owned();
        blocking(move || {
            let read = db.begin_read().map_err(db_error)?;
            let table = read.open_table(table).map_err(db_error)?;
            let Some(bytes) = table.get(key.as_str()).map_err(db_error)? else { return Ok(None) };
            serde_json::from_slice(bytes.value()).map(Some).map_err(|e| StoreError::Corrupt(key.clone(), e))
        })
        .await
    }

    /// Writes the record `key` of `table`; returns once it is durable.
    pub async fn put_record<T: Serialize>(&self, table: RecordTable, key: &str, record: &T) -> Result<(), StoreError> {
        let db = self.db.clone();
        let key = key.to_owned();
        let bytes = serde_json::to_vec(record).map_err(db_error)?;
        blocking(move || {
            let write = db.begin_write().map_err(db_error)?;
            {
                let mut table = write.open_table(table).map_err(db_error)?;
                table.insert(key.as_str(), bytes.as_slice()).map_err(db_error)?;
            }
            write.commit().map_err(db_error)
        })
        .await
    }

    /// Deletes the record `key` of `table`; returns whether it existed.
    pub async fn delete_record(&self, table: RecordTable, key: &str) -> Result<bool, StoreError> {
        let db = self.db.clone();
        let key = key.to_owned();
        blocking(move || {
            let write = db.begin_write().map_err(db_error)?;
            let existed = {
                let mut table = write.open_table(table).map_err(db_error)?;
                table.remove(key.as_str()).map_err(db_error)?.is_some()
            };
            write.commit().map_err(db_error)?;
            Ok(existed)
        })
        .await
    }

    /// Every record of `table`, by key.
    pub async fn records<T: DeserializeOwned + Send + 'static>(
        &self,
        table: RecordTable,
    ) -> Result<Vec<T>, StoreError> {
        let db = self.db.clone();
        blocking(move || {
            let read = db.begin_read().map_err(db_error)?;
            let table = read.open_table(table).map_err(db_error)?;
            let mut records = Vec::new();
            for entry in table.iter().map_err(db_error)? {
                let (key, bytes) = entry.map_err(db_error)?;
                let record = serde_json::from_slice(bytes.value())
                    .map_err(|e| StoreError::Corrupt(key.value().to_owned(), e))?;
                records.push(record);
            }
            Ok(records)
        })
        .await
    }

    /// Number of sessions.
    pub async fn count(&self) -> Result<u64, StoreError> {
        let db = self.db.clone();
        blocking(move || {
            let read = db.begin_read().map_err(db_error)?;
            read.open_table(SESSIONS).map_err(db_error)?.len().map_err(db_error)
        })
        .await
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work).await.map_err(db_error)?
}

/// Checks a client-chosen session id: 1 to 128 characters of letters, digits and `-_.:@`.
pub fn valid_session_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_SESSION_ID
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '@'))
}
