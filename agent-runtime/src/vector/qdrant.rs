//! The Qdrant server backend: a [`VectorStore`] kept in one collection of a Qdrant server,
//! reached over gRPC with `qdrant-client`, with the embedded store's layout (a named dense
//! vector `dense`, a named BM25 sparse vector `bm25` with server-side IDF) and semantics
//! (hybrid search by reciprocal rank fusion, numeric ids, JSON payloads).
//!
//! The collection is prepared on first use rather than at start, so an agent whose Qdrant is
//! not up yet still starts, and a later call succeeds once it is: created if missing with the
//! configured dimension and distance, refused if it exists with other settings, and given
//! indexes for the payload fields the runtime filters on. Every write waits until the server
//! has applied it (`wait`), which is the server's durability promise.

mod requests;

use std::collections::HashMap;
use std::error::Error as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use agent_crds::runtime_config::{Distance, MemoryConfig};
use futures::future::BoxFuture;
use qdrant_client::qdrant::{CollectionInfo, PointsOperationResponse, UpdateStatus};
use qdrant_client::{Qdrant, QdrantError};
use tonic::Code;

use super::{Hit, PayloadFilter, Point, SearchRequest, VectorError, VectorStore};

/// Time a request may take. Writes wait for the server to apply them, so this is generous.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Time to open a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Points sent per upsert request, to stay well below gRPC message size limits
/// (a 384-d point with a chunk of text is a few kilobytes).
const UPSERT_BATCH: usize = 256;

/// Where the store lives and what it holds. Collection, dimension and distance come from the
/// RuntimeConfig only.
#[derive(Clone)]
pub struct QdrantSettings {
    /// gRPC URL of the server, `http://` or `https://` (e.g. `http://qdrant:6334`).
    pub url: String,
    /// API key sent with every request, if the server wants one.
    pub api_key: Option<String>,
    /// Collection holding the agent's points.
    pub collection: String,
    /// Length of the dense vectors.
    pub dimension: usize,
    /// Distance of the dense vectors.
    pub distance: Distance,
    /// Time a request may take.
    pub timeout: Duration,
    /// Time to open a connection.
    pub connect_timeout: Duration,
}

impl std::fmt::Debug for QdrantSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QdrantSettings")
            .field("url", &self.url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("collection", &self.collection)
            .field("dimension", &self.dimension)
            .field("distance", &self.distance)
            .finish_non_exhaustive()
    }
}

impl QdrantSettings {
    /// Settings for the server at `url` from the memory config, reading the API key from
    /// `api_key_file` (surrounding whitespace trimmed).
    pub fn from_config(url: &str, api_key_file: Option<&Path>, memory: &MemoryConfig) -> Result<Self, VectorError> {
        let api_key = api_key_file.map(read_api_key).transpose()?;
        Ok(Self {
            url: url.to_owned(),
            api_key,
            collection: memory.collection.clone(),
            dimension: memory.vector_dimension as usize,
            distance: memory.distance,
            timeout: REQUEST_TIMEOUT,
            connect_timeout: CONNECT_TIMEOUT,
        })
    }
}

/// Reads an API key; a key that cannot be sent as a header is refused without showing it.
fn read_api_key(path: &Path) -> Result<String, VectorError> {
    let refuse = |reason: String| VectorError::ApiKeyFile { path: path.to_owned(), reason };
    let key = std::fs::read_to_string(path).map_err(|e| refuse(e.to_string()))?;
    let key = key.trim();
    if key.is_empty() {
        return Err(refuse("the file is empty".to_owned()));
    }
    if !key.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        return Err(refuse("the key holds characters an HTTP header cannot carry".to_owned()));
    }
    Ok(key.to_owned())
}

/// A [`VectorStore`] in a collection of a Qdrant server.
pub struct QdrantStore {
    client: Qdrant,
    url: String,
    collection: String,
    dimension: usize,
    distance: Distance,
    /// Set once the collection is known to exist with the right settings and indexes.
    prepared: AtomicBool,
}

impl std::fmt::Debug for QdrantStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QdrantStore")
            .field("url", &self.url)
            .field("collection", &self.collection)
            .field("dimension", &self.dimension)
            .finish_non_exhaustive()
    }
}

impl QdrantStore {
    /// A store for the collection the settings name. Nothing is sent yet: the connection is
    /// opened and the collection prepared on first use (or by [`QdrantStore::prepare`]).
    pub fn connect(settings: QdrantSettings) -> Result<Self, VectorError> {
        let QdrantSettings { url, api_key, collection, dimension, distance, timeout, connect_timeout } = settings;
        if dimension == 0 {
            return Err(VectorError::ZeroDimension);
        }
        let invalid = |reason: &str| VectorError::InvalidUrl { url: url.clone(), reason: reason.to_owned() };
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(invalid("expected http://host:port or https://host:port (Qdrant's gRPC port is 6334)"));
        }
        let mut config = Qdrant::from_url(&url).timeout(timeout).connect_timeout(connect_timeout);
        config.api_key = api_key;
        // The check would block here on a health call and print to stdout.
        config.check_compatibility = false;
        let client = config.build().map_err(|e| invalid(&e.to_string()))?;
        Ok(Self { client, url, collection, dimension, distance, prepared: AtomicBool::new(false) })
    }

    /// Length of the dense vectors this store holds.
    pub fn dimension(&self) -> usize {
        self.dimension
    }

    /// Makes sure the collection exists with the configured settings and payload indexes:
    /// creates what is missing, refuses a collection created with other vector settings.
    pub async fn prepare(&self) -> Result<(), VectorError> {
        let context = "preparing the Qdrant collection";
        let name = self.collection.as_str();
        if !self.client.collection_exists(name).await.map_err(|e| self.error(context, e))? {
            let request = requests::create_collection(name, self.dimension, self.distance);
            match self.client.create_collection(request).await {
                Ok(_) => tracing::info!(url = %self.url, collection = name, "created the Qdrant collection"),
                // Another process created it meanwhile: its settings are checked below.
                Err(QdrantError::ResponseError { status }) if status.code() == Code::AlreadyExists => {}
                Err(error) => return Err(self.error(context, error)),
            }
        }
        let info = self.client.collection_info(name).await.map_err(|e| self.error(context, e))?.result;
        let info = info.unwrap_or_else(CollectionInfo::default);
        self.check_settings(&info)?;
        for request in requests::missing_indexes(name, &info.payload_schema) {
            self.client.create_field_index(request).await.map_err(|e| self.error(context, e))?;
        }
        Ok(())
    }

    fn check_settings(&self, info: &CollectionInfo) -> Result<(), VectorError> {
        let stored = requests::describe(info.config.as_ref().and_then(|c| c.params.as_ref()));
        let configured = requests::describe_configured(self.dimension, self.distance);
        if stored == configured {
            Ok(())
        } else {
            Err(VectorError::IncompatibleCollection {
                url: self.url.clone(),
                collection: self.collection.clone(),
                stored,
                configured,
            })
        }
    }

    /// Prepares the collection once; a failed preparation is tried again on the next call.
    async fn ready(&self) -> Result<(), VectorError> {
        if !self.prepared.load(Ordering::Acquire) {
            self.prepare().await?;
            self.prepared.store(true, Ordering::Release);
        }
        Ok(())
    }

    fn error(&self, context: &'static str, error: QdrantError) -> VectorError {
        classify(&self.url, context, error)
    }
}

impl VectorStore for QdrantStore {
    fn upsert(&self, points: Vec<Point>) -> BoxFuture<'_, Result<(), VectorError>> {
        Box::pin(async move {
            let context = "writing points to Qdrant";
            let request = requests::upsert_points(&self.collection, points, self.dimension)?;
            if request.points.is_empty() {
                return Ok(());
            }
            self.ready().await?;
            for batch in request.points.chunks(UPSERT_BATCH) {
                let batch = qdrant_client::qdrant::UpsertPoints { points: batch.to_vec(), ..request.clone() };
                let answer = self.client.upsert_points(batch).await.map_err(|e| self.error(context, e))?;
                applied(context, &answer)?;
            }
            Ok(())
        })
    }

    fn delete(&self, filter: PayloadFilter) -> BoxFuture<'_, Result<(), VectorError>> {
        Box::pin(async move {
            let context = "deleting points from Qdrant";
            let request = requests::delete_points(&self.collection, &filter)?;
            self.ready().await?;
            let answer = self.client.delete_points(request).await.map_err(|e| self.error(context, e))?;
            applied(context, &answer)
        })
    }

    fn search(&self, request: SearchRequest) -> BoxFuture<'_, Result<Vec<Hit>, VectorError>> {
        Box::pin(async move {
            let query = requests::query_points(&self.collection, request, self.dimension)?;
            if query.limit == Some(0) {
                return Ok(Vec::new());
            }
            self.ready().await?;
            let answer = self.client.query(query).await.map_err(|e| self.error("searching Qdrant", e))?;
            answer.result.into_iter().map(|p| requests::hit(p.id, p.score, p.payload)).collect()
        })
    }

    fn count(&self, filter: Option<PayloadFilter>) -> BoxFuture<'_, Result<u64, VectorError>> {
        Box::pin(async move {
            let request = requests::count_points(&self.collection, filter.as_ref())?;
            self.ready().await?;
            let answer = self.client.count(request).await.map_err(|e| self.error("counting points in Qdrant", e))?;
            Ok(answer.result.map_or(0, |r| r.count))
        })
    }

    fn dense_vectors(&self, ids: Vec<u64>) -> BoxFuture<'_, Result<Vec<Option<Vec<f32>>>, VectorError>> {
        Box::pin(async move {
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            self.ready().await?;
            let request = requests::get_dense_vectors(&self.collection, &ids);
            let answer =
                self.client.get_points(request).await.map_err(|e| self.error("reading vectors from Qdrant", e))?;
            let mut found: HashMap<u64, Vec<f32>> = answer.result.into_iter().filter_map(requests::dense_of).collect();
            Ok(ids.iter().map(|id| found.remove(id)).collect())
        })
    }

    fn scroll(&self, filter: Option<PayloadFilter>, limit: usize) -> BoxFuture<'_, Result<Vec<Hit>, VectorError>> {
        Box::pin(async move {
            let request = requests::scroll_points(&self.collection, filter.as_ref(), limit)?;
            if limit == 0 {
                return Ok(Vec::new());
            }
            self.ready().await?;
            let answer = self.client.scroll(request).await.map_err(|e| self.error("listing points in Qdrant", e))?;
            answer.result.into_iter().map(|p| requests::hit(p.id, 0.0, p.payload)).collect()
        })
    }
}

/// A write the server answered without applying it (with `wait`, it should not) is an error.
fn applied(context: &'static str, answer: &PointsOperationResponse) -> Result<(), VectorError> {
    let status = answer.result.map(|r| r.status);
    if status == Some(UpdateStatus::Completed.into()) {
        return Ok(());
    }
    let status = status
        .and_then(|s| UpdateStatus::try_from(s).ok())
        .map_or_else(|| "no status".to_owned(), |s| s.as_str_name().to_owned());
    Err(VectorError::Storage { context, reason: format!("the Qdrant server did not complete the write ({status})") })
}

/// A client error as a store error: unreachable, unauthorized, or what the server said.
fn classify(url: &str, context: &'static str, error: QdrantError) -> VectorError {
    let status = match error {
        QdrantError::ResponseError { status } | QdrantError::ResourceExhaustedError { status, .. } => status,
        other => return VectorError::Storage { context, reason: format!("Qdrant at {url}: {other}") },
    };
    let reason = status_reason(&status);
    match status.code() {
        Code::Unauthenticated | Code::PermissionDenied => VectorError::Unauthorized { url: url.to_owned(), reason },
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => {
            VectorError::Unreachable { url: url.to_owned(), reason }
        }
        // How the client reports a connection it could not open.
        Code::Internal if status.message().starts_with("Failed to connect to") => {
            VectorError::Unreachable { url: url.to_owned(), reason: connect_failure(status.message()) }
        }
        // A status with a source was made by the client's own stack, not sent by a server: the
        // peer hung up or spoke something other than gRPC (HTTP/1, TLS on a plain port...).
        Code::Unknown | Code::Internal if status.source().is_some() => VectorError::Unreachable {
            url: url.to_owned(),
            reason: format!("{reason} (is this Qdrant's gRPC port, usually 6334?)"),
        },
        code => VectorError::Storage { context, reason: format!("Qdrant at {url} answered {code:?}: {reason}") },
    }
}

/// A status's message and the chain of errors under it, e.g. "transport error: connection refused".
fn status_reason(status: &tonic::Status) -> String {
    let mut reason = status.message().to_owned();
    let mut source = status.source();
    while let Some(error) = source {
        let text = error.to_string();
        if !reason.contains(&text) {
            reason = if reason.is_empty() { text } else { format!("{reason}: {text}") };
        }
        source = error.source();
    }
    if reason.is_empty() { format!("{:?}", status.code()) } else { reason }
}

/// The cause in the client's "Failed to connect to <url>: <Debug of the error>", e.g.
/// "tcp connect error: Connection refused": the quoted parts of the Debug text, in order.
fn connect_failure(message: &str) -> String {
    let quoted: Vec<&str> = message.split('"').skip(1).step_by(2).collect();
    if quoted.is_empty() { message.to_owned() } else { quoted.join(": ") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qdrant_connect_failure_keeps_the_cause_and_drops_the_debug_noise() {
        let message = "Failed to connect to http://127.0.0.1:1/: tonic::transport::Error(Transport, \
                       ConnectError(ConnectError(\"tcp connect error\", 127.0.0.1:1, Os { code: 111, \
                       kind: ConnectionRefused, message: \"Connection refused\" })))";
        assert_eq!(connect_failure(message), "tcp connect error: Connection refused");
        assert_eq!(connect_failure("Failed to connect to x: odd"), "Failed to connect to x: odd");
    }

    #[test]
    fn qdrant_statuses_sent_by_a_server_are_not_taken_for_transport_failures() {
        let error = classify("http://q:6334", "counting", QdrantError::from(tonic::Status::internal("disk full")));
        assert_eq!(error.to_string(), "counting: Qdrant at http://q:6334 answered Internal: disk full");
        let error = classify("http://q:6334", "counting", QdrantError::from(tonic::Status::deadline_exceeded("slow")));
        assert!(matches!(error, VectorError::Unreachable { .. }), "{error}");
    }
}
