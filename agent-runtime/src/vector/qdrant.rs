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
//!
//! An API key from a Secret file follows the file: each call takes the client built with the
//! key the file holds now, building a new one when the key changed (cheap: the client's
//! channels connect on first use). Calls already under way finish on the client they started
//! with. A key the client cannot send keeps the previous client, and says so once.

mod requests;

use std::collections::HashMap;
use std::error::Error as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use agent_crds::runtime_config::{Distance, MemoryConfig};
use futures::future::BoxFuture;
use qdrant_client::qdrant::{CollectionInfo, PointsOperationResponse, UpdateStatus};
use qdrant_client::{Qdrant, QdrantError};
use tonic::Code;

use super::{Hit, PayloadFilter, Point, SearchRequest, VectorError, VectorStore};
use crate::secret_file::{SecretFiles, SecretValue};

/// Time a request may take. Writes wait for the server to apply them, so this is generous.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Time to open a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Points sent per upsert request, to stay well below gRPC message size limits
/// (a 384-d point with a chunk of text is a few kilobytes).
const UPSERT_BATCH: usize = 256;
/// The config field of the API key file: its name in logs and its reload metric label.
const API_KEY_FIELD: &str = "memory.store.qdrant.apiKeyFile";

/// Where the store lives and what it holds. Collection, dimension and distance come from the
/// RuntimeConfig only.
#[derive(Clone)]
pub struct QdrantSettings {
    /// gRPC URL of the server, `http://` or `https://` (e.g. `http://qdrant:6334`).
    pub url: String,
    /// API key sent with every request, if the server wants one: fixed, or from a Secret file,
    /// whose value at each call is sent.
    pub api_key: Option<SecretValue>,
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
    /// Settings for the server at `url` from the memory config, with the API key read from
    /// `api_key_file` (surrounding whitespace trimmed), opened by `secrets` so it is read again
    /// when the file changes. A key file that cannot be read, or whose key cannot be sent, is an
    /// error naming the file.
    pub fn from_config(
        url: &str,
        api_key_file: Option<&Path>,
        memory: &MemoryConfig,
        secrets: &SecretFiles,
    ) -> Result<Self, VectorError> {
        let api_key = api_key_file.map(|path| open_api_key(path, secrets)).transpose()?;
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

/// Opens an API key file; a key that cannot be sent as a header is refused without showing it.
fn open_api_key(path: &Path, secrets: &SecretFiles) -> Result<SecretValue, VectorError> {
    let refuse = |reason: String| VectorError::ApiKeyFile { path: path.to_owned(), reason };
    let file = secrets.open(API_KEY_FIELD, path).map_err(|e| refuse(e.to_string()))?;
    check_key(&file.current()).map_err(|reason| refuse(reason.to_owned()))?;
    Ok(SecretValue::File(file))
}

/// Why `key` cannot be sent as the `api-key` header, if it cannot (the reason never shows it:
/// the client's own error would).
fn check_key(key: &str) -> Result<(), &'static str> {
    if key.is_empty() {
        Err("the file is empty")
    } else if !key.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        Err("the key holds characters an HTTP header cannot carry")
    } else {
        Ok(())
    }
}

/// A client for `url` sending `api_key`. Nothing is sent yet.
fn build_client(
    url: &str,
    api_key: Option<&str>,
    timeout: Duration,
    connect_timeout: Duration,
) -> Result<Qdrant, QdrantError> {
    let mut config = Qdrant::from_url(url).timeout(timeout).connect_timeout(connect_timeout);
    config.api_key = api_key.map(str::to_owned);
    // The check would block here on a health call and print to stdout.
    config.check_compatibility = false;
    config.build()
}

/// The client in use, and the key it was built for.
struct Client {
    /// The key last acted on: the one the client sends, or a later one that was refused (so a
    /// refused key is reported once, not at every call).
    key: Option<Arc<str>>,
    qdrant: Arc<Qdrant>,
}

/// A [`VectorStore`] in a collection of a Qdrant server.
pub struct QdrantStore {
    client: Mutex<Client>,
    api_key: Option<SecretValue>,
    url: String,
    timeout: Duration,
    connect_timeout: Duration,
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
        let key = api_key.as_ref().map(SecretValue::current);
        let qdrant =
            build_client(&url, key.as_deref(), timeout, connect_timeout).map_err(|e| invalid(&e.to_string()))?;
        Ok(Self {
            client: Mutex::new(Client { key, qdrant: Arc::new(qdrant) }),
            api_key,
            url,
            timeout,
            connect_timeout,
            collection,
            dimension,
            distance,
            prepared: AtomicBool::new(false),
        })
    }

    /// The client for a call: built with the API key its file holds now. A key that changed
    /// gets a new client; one that cannot be used keeps the previous client, logged once.
    fn client(&self) -> Arc<Qdrant> {
        let key = self.api_key.as_ref().map(SecretValue::current);
        let mut client = self.client.lock().unwrap_or_else(PoisonError::into_inner);
        if client.key != key {
            let built = key.as_deref().map_or(Ok(()), check_key).map_err(str::to_owned).and_then(|()| {
                build_client(&self.url, key.as_deref(), self.timeout, self.connect_timeout).map_err(|e| e.to_string())
            });
            match built {
                Ok(qdrant) => {
                    client.qdrant = Arc::new(qdrant);
                    tracing::info!(url = %self.url, "the Qdrant client now sends the reloaded API key");
                }
                Err(reason) => tracing::warn!(
                    url = %self.url,
                    field = API_KEY_FIELD,
                    %reason,
                    "cannot use the reloaded Qdrant API key; keeping the previous one"
                ),
            }
            client.key = key;
        }
        client.qdrant.clone()
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
        let client = self.client();
        if !client.collection_exists(name).await.map_err(|e| self.error(context, e))? {
            let request = requests::create_collection(name, self.dimension, self.distance);
            match client.create_collection(request).await {
                Ok(_) => tracing::info!(url = %self.url, collection = name, "created the Qdrant collection"),
                // Another process created it meanwhile: its settings are checked below.
                Err(QdrantError::ResponseError { status }) if status.code() == Code::AlreadyExists => {}
                Err(error) => return Err(self.error(context, error)),
            }
        }
        let info = client.collection_info(name).await.map_err(|e| self.error(context, e))?.result;
        let info = info.unwrap_or_else(CollectionInfo::default);
        self.check_settings(&info)?;
        for request in requests::missing_indexes(name, &info.payload_schema) {
            client.create_field_index(request).await.map_err(|e| self.error(context, e))?;
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
            let client = self.client();
            for batch in request.points.chunks(UPSERT_BATCH) {
                let batch = qdrant_client::qdrant::UpsertPoints { points: batch.to_vec(), ..request.clone() };
                let answer = client.upsert_points(batch).await.map_err(|e| self.error(context, e))?;
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
            let answer = self.client().delete_points(request).await.map_err(|e| self.error(context, e))?;
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
            let answer = self.client().query(query).await.map_err(|e| self.error("searching Qdrant", e))?;
            answer.result.into_iter().map(|p| requests::hit(p.id, p.score, p.payload)).collect()
        })
    }

    fn count(&self, filter: Option<PayloadFilter>) -> BoxFuture<'_, Result<u64, VectorError>> {
        Box::pin(async move {
            let request = requests::count_points(&self.collection, filter.as_ref())?;
            self.ready().await?;
            let answer = self.client().count(request).await.map_err(|e| self.error("counting points in Qdrant", e))?;
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
                self.client().get_points(request).await.map_err(|e| self.error("reading vectors from Qdrant", e))?;
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
            let answer = self.client().scroll(request).await.map_err(|e| self.error("listing points in Qdrant", e))?;
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
