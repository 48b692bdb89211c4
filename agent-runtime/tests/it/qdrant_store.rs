//! The Qdrant server backend against real network peers. No Qdrant server can run here, so
//! Qdrant is played by a gRPC server built from tonic and qdrant-client's own message types:
//! it records every request as it arrives on the wire and answers as a Qdrant server would
//! (or with the error a test asks for). Beside it: a closed port, a peer speaking HTTP/1, a
//! peer that hangs up and one that never answers.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::ready;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use agent_crds::runtime_config::{Distance, EmbeddingConfig, MemoryConfig, VectorStoreConfig};
use agent_runtime::metrics::Metrics;
use agent_runtime::secret_file::{SecretFiles, SecretValue};
use agent_runtime::vector::{
    Match, PayloadFilter, Point, QdrantSettings, QdrantStore, SearchRequest, SparseVector, VectorError, VectorStore,
};
use futures::future::BoxFuture;
use qdrant_client::Payload;
use qdrant_client::qdrant::{
    CollectionConfig, CollectionExists, CollectionExistsRequest, CollectionExistsResponse, CollectionInfo,
    CollectionOperationResponse, CollectionParams, CountPoints, CountResponse, CountResult, CreateCollection,
    CreateFieldIndexCollection, DeletePoints, Distance as QdrantDistance, GetCollectionInfoRequest,
    GetCollectionInfoResponse, GetPoints, GetResponse, Modifier, PayloadSchemaInfo, PointsOperationResponse,
    QueryPoints, QueryResponse, RetrievedPoint, ScoredPoint, ScrollPoints, ScrollResponse, SparseVectorConfig,
    SparseVectorParams, UpdateResult, UpdateStatus, UpsertPoints, VectorParams, VectorParamsMap, VectorsConfig,
    query::Variant as QueryVariant, vectors_config,
};
use serde_json::{Map, Value, json};
use tonic::body::Body;
use tonic::codegen::http;
use tonic::server::{Grpc, NamedService};
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};
use tonic_prost::ProstCodec;

const COLLECTION: &str = "agent-test";
const DIMENSION: usize = 4;
const API_KEY: &str = "test-key-0123";

/// A request as the stand-in server received it.
#[derive(Clone, Debug, PartialEq)]
enum Call {
    Exists(String),
    Create(CreateCollection),
    Info(String),
    Index(CreateFieldIndexCollection),
    Upsert(UpsertPoints),
    Delete(DeletePoints),
    Query(QueryPoints),
    Count(CountPoints),
    Scroll(ScrollPoints),
    GetPoints(GetPoints),
}

/// What the stand-in server holds and answers.
#[derive(Default)]
struct Fake {
    /// The collection, once it exists.
    collection: Mutex<Option<CollectionInfo>>,
    /// When set, every request is answered with this status instead.
    fail: Mutex<Option<Status>>,
    calls: Mutex<Vec<Call>>,
    /// The `api-key` header of every request.
    api_keys: Mutex<Vec<Option<String>>>,
    hits: Mutex<Vec<ScoredPoint>>,
    records: Mutex<Vec<RetrievedPoint>>,
    /// What `Points/Get` answers.
    vectors: Mutex<Vec<RetrievedPoint>>,
    count: Mutex<u64>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().expect("fake server state")
}

impl Fake {
    fn calls(&self) -> Vec<Call> {
        lock(&self.calls).clone()
    }

    fn record(&self, call: Call) {
        lock(&self.calls).push(call);
    }

    /// Answers one gRPC request of the Collections or Points service.
    async fn answer(self: Arc<Self>, request: http::Request<Body>) -> http::Response<Body> {
        let key = request.headers().get("api-key").and_then(|v| v.to_str().ok()).map(str::to_owned);
        lock(&self.api_keys).push(key);
        if let Some(status) = lock(&self.fail).clone() {
            return status.into_http();
        }
        let path = request.uri().path().to_owned();
        let method = path.rsplit('/').next().unwrap_or_default().to_owned();
        let fake = self;
        if path == "/qdrant.Points/Get" {
            return unary(request, move |r: GetPoints| Ok(fake.get_points(r))).await;
        }
        match method.as_str() {
            "CollectionExists" => unary(request, move |r: CollectionExistsRequest| Ok(fake.exists(r))).await,
            "Create" => unary(request, move |r: CreateCollection| Ok(fake.create(r))).await,
            "Get" => unary(request, move |r: GetCollectionInfoRequest| fake.info(r)).await,
            "CreateFieldIndex" => unary(request, move |r: CreateFieldIndexCollection| Ok(fake.index(r))).await,
            "Upsert" => unary(request, move |r: UpsertPoints| Ok(fake.write(Call::Upsert(r)))).await,
            "Delete" => unary(request, move |r: DeletePoints| Ok(fake.write(Call::Delete(r)))).await,
            "Query" => unary(request, move |r: QueryPoints| Ok(fake.query(r))).await,
            "Count" => unary(request, move |r: CountPoints| Ok(fake.count(r))).await,
            "Scroll" => unary(request, move |r: ScrollPoints| Ok(fake.scroll(r))).await,
            other => Status::unimplemented(format!("the stand-in does not serve {other}")).into_http(),
        }
    }

    fn exists(&self, request: CollectionExistsRequest) -> CollectionExistsResponse {
        let exists = lock(&self.collection).is_some();
        self.record(Call::Exists(request.collection_name));
        CollectionExistsResponse { result: Some(CollectionExists { exists }), time: 0.0 }
    }

    fn create(&self, request: CreateCollection) -> CollectionOperationResponse {
        *lock(&self.collection) = Some(collection_info(CollectionParams {
            vectors_config: request.vectors_config.clone(),
            sparse_vectors_config: request.sparse_vectors_config.clone(),
            ..CollectionParams::default()
        }));
        self.record(Call::Create(request));
        CollectionOperationResponse { result: true, time: 0.0 }
    }

    fn info(&self, request: GetCollectionInfoRequest) -> Result<GetCollectionInfoResponse, Status> {
        let info = lock(&self.collection).clone();
        let missing = Status::not_found(format!("Collection `{}` doesn't exist!", request.collection_name));
        self.record(Call::Info(request.collection_name));
        Ok(GetCollectionInfoResponse { result: Some(info.ok_or(missing)?), time: 0.0 })
    }

    fn index(&self, request: CreateFieldIndexCollection) -> PointsOperationResponse {
        if let Some(info) = lock(&self.collection).as_mut() {
            info.payload_schema.insert(request.field_name.clone(), PayloadSchemaInfo::default());
        }
        self.record(Call::Index(request));
        completed()
    }

    fn write(&self, call: Call) -> PointsOperationResponse {
        self.record(call);
        completed()
    }

    fn query(&self, request: QueryPoints) -> QueryResponse {
        self.record(Call::Query(request));
        QueryResponse { result: lock(&self.hits).clone(), ..QueryResponse::default() }
    }

    fn count(&self, request: CountPoints) -> CountResponse {
        self.record(Call::Count(request));
        CountResponse { result: Some(CountResult { count: *lock(&self.count) }), ..CountResponse::default() }
    }

    fn get_points(&self, request: GetPoints) -> GetResponse {
        self.record(Call::GetPoints(request));
        GetResponse { result: lock(&self.vectors).clone(), ..GetResponse::default() }
    }

    fn scroll(&self, request: ScrollPoints) -> ScrollResponse {
        self.record(Call::Scroll(request));
        ScrollResponse { result: lock(&self.records).clone(), ..ScrollResponse::default() }
    }
}

fn completed() -> PointsOperationResponse {
    PointsOperationResponse {
        result: Some(UpdateResult { operation_id: Some(1), status: UpdateStatus::Completed.into() }),
        ..PointsOperationResponse::default()
    }
}

fn collection_info(params: CollectionParams) -> CollectionInfo {
    CollectionInfo {
        config: Some(CollectionConfig { params: Some(params), ..CollectionConfig::default() }),
        ..CollectionInfo::default()
    }
}

/// Decodes one request message, lets `handler` answer it, and encodes the answer or status.
async fn unary<Req, Resp>(
    request: http::Request<Body>,
    mut handler: impl FnMut(Req) -> Result<Resp, Status> + Send + 'static,
) -> http::Response<Body>
where
    Req: prost::Message + Default + Send + 'static,
    Resp: prost::Message + Send + 'static,
{
    let service = tower::service_fn(move |r: Request<Req>| ready(handler(r.into_inner()).map(Response::new)));
    Grpc::new(ProstCodec::<Resp, Req>::default()).unary(service, request).await
}

/// One of the two gRPC services the store uses, served by the same [`Fake`].
#[derive(Clone)]
struct Service<const POINTS: bool>(Arc<Fake>);

impl NamedService for Service<false> {
    const NAME: &'static str = "qdrant.Collections";
}

impl NamedService for Service<true> {
    const NAME: &'static str = "qdrant.Points";
}

impl<const POINTS: bool> tower::Service<http::Request<Body>> for Service<POINTS> {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let fake = Arc::clone(&self.0);
        Box::pin(async move { Ok(fake.answer(request).await) })
    }
}

/// Starts the stand-in server on a free port; returns its state and URL.
async fn serve(fake: Fake) -> (Arc<Fake>, String) {
    serve_on(fake, tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind"))
}

/// Starts the stand-in server on `listener`; returns its state and URL.
fn serve_on(fake: Fake, listener: tokio::net::TcpListener) -> (Arc<Fake>, String) {
    let fake = Arc::new(fake);
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let router = Server::builder()
        .add_service(Service::<false>(Arc::clone(&fake)))
        .add_service(Service::<true>(Arc::clone(&fake)));
    tokio::spawn(router.serve_with_incoming(TcpIncoming::from(listener)));
    (fake, url)
}

fn settings(url: &str) -> QdrantSettings {
    QdrantSettings {
        url: url.to_owned(),
        api_key: Some(API_KEY.into()),
        collection: COLLECTION.to_owned(),
        dimension: DIMENSION,
        distance: Distance::Cosine,
        timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(2),
    }
}

fn store(url: &str) -> QdrantStore {
    QdrantStore::connect(settings(url)).expect("valid settings")
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn point(id: u64, dense: Vec<f32>) -> Point {
    Point {
        id,
        dense,
        sparse: Some(SparseVector { indices: vec![11, 12], values: vec![1.0, 0.5] }),
        payload: object(json!({"kind": "knowledge", "documentId": "doc-1", "chunk": id})),
    }
}

/// The collection as this store creates it, already holding every payload index.
fn ready_collection() -> CollectionInfo {
    let dense =
        VectorParams { size: DIMENSION as u64, distance: QdrantDistance::Cosine.into(), ..VectorParams::default() };
    let bm25 = SparseVectorParams { modifier: Some(Modifier::Idf.into()), index: None };
    let mut info = collection_info(CollectionParams {
        vectors_config: Some(VectorsConfig {
            config: Some(vectors_config::Config::ParamsMap(VectorParamsMap {
                map: HashMap::from([("dense".to_owned(), dense)]),
            })),
        }),
        sparse_vectors_config: Some(SparseVectorConfig { map: HashMap::from([("bm25".to_owned(), bm25)]) }),
        ..CollectionParams::default()
    });
    for field in ["kind", "documentId", "chunk", "scope", "session", "createdUnix"] {
        info.payload_schema.insert(field.to_owned(), PayloadSchemaInfo::default());
    }
    info
}

fn fake_with(collection: Option<CollectionInfo>) -> Fake {
    Fake { collection: Mutex::new(collection), ..Fake::default() }
}

#[tokio::test]
async fn qdrant_store_creates_a_missing_collection_with_indexes_and_writes_with_wait() {
    let (fake, url) = serve(Fake::default()).await;
    let store = store(&url);
    store.upsert(vec![point(1, vec![0.1, 0.2, 0.3, 0.4]), point(2, vec![0.4, 0.3, 0.2, 0.1])]).await.expect("upsert");
    store.upsert(vec![point(3, vec![0.0, 0.0, 1.0, 0.0])]).await.expect("second upsert");

    let calls = fake.calls();
    assert_eq!(calls[0], Call::Exists(COLLECTION.to_owned()));
    let Call::Create(create) = &calls[1] else { panic!("create expected, got {:?}", calls[1]) };
    assert_eq!(create.collection_name, COLLECTION);
    let info = lock(&fake.collection).clone().expect("created");
    let expected = ready_collection();
    assert_eq!(info.config, expected.config, "the collection holds the configured dense size, distance and BM25");
    assert_eq!(calls[2], Call::Info(COLLECTION.to_owned()));
    let indexes: Vec<_> = calls[3..9]
        .iter()
        .map(|call| match call {
            Call::Index(index) if index.wait == Some(true) => index.field_name.as_str(),
            other => panic!("a waited-for index creation expected, got {other:?}"),
        })
        .collect();
    assert_eq!(indexes, ["kind", "documentId", "chunk", "scope", "session", "createdUnix"]);
    let upserts: Vec<_> = calls[9..]
        .iter()
        .map(|call| match call {
            Call::Upsert(upsert) if upsert.wait == Some(true) && upsert.collection_name == COLLECTION => {
                upsert.points.len()
            }
            other => panic!("a waited-for upsert expected, got {other:?}"),
        })
        .collect();
    assert_eq!(upserts, [2, 1], "the collection is prepared once, then only written to");
    let keys = lock(&fake.api_keys).clone();
    assert!(keys.iter().all(|key| key.as_deref() == Some(API_KEY)), "every request carries the API key: {keys:?}");
}

#[tokio::test]
async fn qdrant_store_refuses_a_collection_created_with_another_dimension() {
    let mut other = ready_collection();
    if let Some(vectors_config::Config::ParamsMap(map)) = other
        .config
        .as_mut()
        .and_then(|c| c.params.as_mut())
        .and_then(|p| p.vectors_config.as_mut())
        .and_then(|v| v.config.as_mut())
    {
        map.map.get_mut("dense").expect("dense").size = 768;
    }
    let (fake, url) = serve(fake_with(Some(other))).await;
    let error = store(&url).count(None).await.expect_err("incompatible");
    let VectorError::IncompatibleCollection { url: named, collection, stored, configured } = &error else {
        panic!("incompatible collection expected, got {error}");
    };
    assert_eq!((named.as_str(), collection.as_str()), (url.as_str(), COLLECTION));
    assert_eq!(stored, "768-dimensional Cosine + BM25");
    assert_eq!(configured, "4-dimensional Cosine + BM25");
    assert_eq!(
        fake.calls(),
        [Call::Exists(COLLECTION.to_owned()), Call::Info(COLLECTION.to_owned())],
        "nothing changed"
    );
}

#[tokio::test]
async fn qdrant_store_returns_the_servers_hits_counts_and_payloads() {
    let payload = |value: Value| Payload::from(object(value)).into();
    let fake = fake_with(Some(ready_collection()));
    *lock(&fake.hits) = vec![
        ScoredPoint {
            id: Some(7.into()),
            score: 0.5,
            payload: payload(json!({"text": "seven", "chunk": 1})),
            ..ScoredPoint::default()
        },
        ScoredPoint {
            id: Some(3.into()),
            score: 0.25,
            payload: payload(json!({"text": "three"})),
            ..ScoredPoint::default()
        },
    ];
    *lock(&fake.records) = vec![RetrievedPoint {
        id: Some(9.into()),
        payload: payload(json!({"documentId": "d"})),
        ..RetrievedPoint::default()
    }];
    *lock(&fake.count) = 3;
    let (fake, url) = serve(fake).await;
    let store = store(&url);

    let request = SearchRequest {
        dense: Some(vec![1.0, 0.0, 0.0, 0.0]),
        sparse: Some(SparseVector { indices: vec![11], values: vec![1.0] }),
        limit: 2,
        filter: Some(PayloadFilter::new("kind", Match::Keyword("knowledge".into()))),
        score_threshold: Some(0.2),
    };
    let hits = store.search(request).await.expect("search");
    let found: Vec<_> = hits.iter().map(|h| (h.id, h.score, Value::Object(h.payload.clone()))).collect();
    assert_eq!(found, [(7, 0.5, json!({"text": "seven", "chunk": 1})), (3, 0.25, json!({"text": "three"}))]);
    assert_eq!(store.count(Some(PayloadFilter::new("kind", Match::Keyword("memory".into())))).await.expect("count"), 3);
    let listed = store.scroll(None, 10).await.expect("scroll");
    assert_eq!((listed[0].id, Value::Object(listed[0].payload.clone())), (9, json!({"documentId": "d"})));
    store.delete(PayloadFilter::new("documentId", Match::Keyword("d".into()))).await.expect("delete");

    let calls = fake.calls();
    assert_eq!(
        calls[..2],
        [Call::Exists(COLLECTION.to_owned()), Call::Info(COLLECTION.to_owned())],
        "no index was missing"
    );
    let Call::Query(query) = &calls[2] else { panic!("query expected, got {:?}", calls[2]) };
    assert_eq!(query.prefetch.len(), 2);
    let weighted = QueryVariant::Rrf(qdrant_client::qdrant::Rrf { k: Some(2), weights: vec![1.0, 0.5] });
    assert_eq!(query.query.as_ref().and_then(|q| q.variant.clone()), Some(weighted), "weighted RRF");
    assert!(matches!(&calls[3], Call::Count(count) if count.exact == Some(true) && count.filter.is_some()));
    assert!(matches!(&calls[4], Call::Scroll(scroll) if scroll.limit == Some(10)));
    assert!(matches!(&calls[5], Call::Delete(delete) if delete.wait == Some(true)));
}

#[tokio::test]
async fn qdrant_store_refuses_a_wrong_sized_vector_before_any_request() {
    let (fake, url) = serve(Fake::default()).await;
    let store = store(&url);
    let error = store.upsert(vec![point(1, vec![0.0; 4]), point(2, vec![0.0; 3])]).await.expect_err("wrong size");
    assert!(matches!(error, VectorError::WrongDimension { id: Some(2), expected: 4, got: 3 }), "{error}");
    let query = SearchRequest { dense: Some(vec![0.0; 5]), limit: 1, ..SearchRequest::default() };
    assert!(matches!(store.search(query).await, Err(VectorError::WrongDimension { id: None, .. })));
    assert!(fake.calls().is_empty() && lock(&fake.api_keys).is_empty(), "nothing reached the server");
}

async fn answered_with(status: Status) -> (VectorError, String) {
    let fake = Fake { fail: Mutex::new(Some(status)), ..Fake::default() };
    let (_fake, url) = serve(fake).await;
    (store(&url).count(None).await.expect_err("the server refused"), url)
}

#[tokio::test]
async fn qdrant_unauthenticated_answer_is_an_unauthorized_error_naming_the_server() {
    let (error, url) = answered_with(Status::unauthenticated("Invalid api-key")).await;
    assert!(
        matches!(&error, VectorError::Unauthorized { url: named, reason } if *named == url && reason == "Invalid api-key"),
        "{error}"
    );
    assert_eq!(error.to_string(), format!("the Qdrant server at {url} refused the API key: Invalid api-key"));
    let (error, _) = answered_with(Status::permission_denied("read-only key")).await;
    assert!(matches!(error, VectorError::Unauthorized { .. }), "{error}");
}

#[tokio::test]
async fn qdrant_unavailable_answer_is_an_unreachable_error() {
    let (error, url) = answered_with(Status::unavailable("shutting down")).await;
    assert!(matches!(&error, VectorError::Unreachable { url: named, .. } if *named == url), "{error}");
    assert!(error.to_string().contains("shutting down"), "{error}");
}

#[tokio::test]
async fn qdrant_other_server_errors_say_what_was_done_and_what_the_server_said() {
    let (error, url) = answered_with(Status::invalid_argument("Wrong input: Not existing vector name: bm25")).await;
    assert!(matches!(error, VectorError::Storage { .. }), "{error}");
    assert_eq!(
        error.to_string(),
        format!(
            "preparing the Qdrant collection: Qdrant at {url} answered InvalidArgument: \
             Wrong input: Not existing vector name: bm25"
        )
    );
}

#[tokio::test]
async fn qdrant_closed_port_is_an_unreachable_error_naming_the_url() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    drop(listener);
    let error = store(&url).count(None).await.expect_err("nobody listens");
    assert!(matches!(&error, VectorError::Unreachable { url: named, .. } if *named == url), "{error}");
    let text = error.to_string().to_lowercase();
    assert!(text.starts_with(&format!("cannot reach the qdrant server at {url}")), "{error}");
    assert!(text.ends_with("connection refused"), "the cause is named, plainly: {error}");
}

/// A TCP peer that answers every connection with `behave`.
async fn peer<F, Fut>(behave: F) -> String
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(behave(stream));
        }
    });
    url
}

#[tokio::test]
async fn qdrant_peer_speaking_http1_is_an_unreachable_error() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let url = peer(|mut stream| async move {
        let mut buffer = [0; 1024];
        let _ = stream.read(&mut buffer).await;
        let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").await;
    })
    .await;
    let error = store(&url).count(None).await.expect_err("not gRPC");
    assert!(matches!(&error, VectorError::Unreachable { url: named, .. } if *named == url), "{error}");
}

#[tokio::test]
async fn qdrant_peer_closing_the_connection_is_an_unreachable_error() {
    let url = peer(|stream| async move { drop(stream) }).await;
    let error = store(&url).count(None).await.expect_err("hung up");
    assert!(matches!(&error, VectorError::Unreachable { url: named, .. } if *named == url), "{error}");
}

#[tokio::test]
async fn qdrant_silent_peer_times_out_as_an_unreachable_error() {
    let url = peer(|stream| async move {
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(stream);
    })
    .await;
    let store = QdrantStore::connect(QdrantSettings {
        timeout: Duration::from_millis(300),
        connect_timeout: Duration::from_millis(300),
        ..settings(&url)
    })
    .expect("valid settings");
    let started = Instant::now();
    let error = store.count(None).await.expect_err("no answer");
    assert!(matches!(&error, VectorError::Unreachable { url: named, .. } if *named == url), "{error}");
    assert!(started.elapsed() < Duration::from_secs(5), "gave up after {:?}", started.elapsed());
}

fn memory_config(store: VectorStoreConfig) -> MemoryConfig {
    MemoryConfig {
        store,
        collection: "from-config".to_owned(),
        vector_dimension: 384,
        distance: Distance::Dot,
        embedding: EmbeddingConfig::Builtin { model: "all-MiniLM-L6-v2".to_owned() },
        retention_seconds: None,
    }
}

fn key_file(dir: &Path, contents: &[u8]) -> std::path::PathBuf {
    let path = dir.join("api-key");
    std::fs::write(&path, contents).expect("write key file");
    path
}

#[test]
fn qdrant_settings_come_from_the_runtime_config_with_the_key_from_its_file() {
    let dir = std::env::temp_dir().join(format!("qdrant-settings-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let url = "http://qdrant:6334";
    let config = memory_config(VectorStoreConfig::Qdrant { url: url.to_owned(), api_key_file: None });
    let secrets = SecretFiles::default();
    let path = key_file(&dir, b"  secret-key\n");
    let settings = QdrantSettings::from_config(url, Some(&path), &config, &secrets).expect("readable key");
    assert_eq!(settings.api_key.as_ref().map(SecretValue::current).as_deref(), Some("secret-key"));
    assert_eq!(
        (settings.collection.as_str(), settings.dimension, settings.distance),
        ("from-config", 384, Distance::Dot)
    );
    assert!(!format!("{settings:?}").contains("secret-key"), "Debug hides the key");

    let unsendable = key_file(&dir, b"secret\x07key");
    let error = QdrantSettings::from_config(url, Some(&unsendable), &config, &secrets).expect_err("not a header value");
    assert!(matches!(error, VectorError::ApiKeyFile { .. }) && !error.to_string().contains("secret"), "{error}");
    let empty = key_file(&dir, b"\n");
    assert!(matches!(
        QdrantSettings::from_config(url, Some(&empty), &config, &secrets),
        Err(VectorError::ApiKeyFile { .. })
    ));
    let missing = dir.join("missing");
    let error = QdrantSettings::from_config(url, Some(&missing), &config, &secrets).expect_err("no file");
    assert!(error.to_string().contains(&missing.display().to_string()), "{error}");
    std::fs::remove_dir_all(&dir).ok();
}

/// The kubelet rewrites a mounted Secret in place; the next call after the check sends the new
/// key on a client built for it, without a restart. A key that cannot be sent keeps the last
/// one, as does a file that disappears.
#[tokio::test]
async fn qdrant_store_sends_a_rotated_api_key_from_the_next_check_on() {
    let dir = std::env::temp_dir().join(format!("qdrant-rotated-key-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (fake, url) = serve(Fake::default()).await;
    let config = memory_config(VectorStoreConfig::Qdrant { url: url.clone(), api_key_file: None });
    let path = key_file(&dir, b"first-key\n");
    // Checked at every use, so the test need not wait for an interval.
    let secrets = SecretFiles::new(Duration::ZERO, Arc::new(Metrics::default()));
    let settings = QdrantSettings::from_config(&url, Some(&path), &config, &secrets).expect("readable key");
    let store = QdrantStore::connect(settings).expect("valid settings");
    let last_key = |fake: &Fake| lock(&fake.api_keys).last().cloned().flatten();

    store.count(None).await.expect("count with the first key");
    assert_eq!(last_key(&fake).as_deref(), Some("first-key"));
    key_file(&dir, b"second-key\n");
    store.count(None).await.expect("count with the rotated key");
    assert_eq!(last_key(&fake).as_deref(), Some("second-key"), "the rotated key is sent");
    let keys = lock(&fake.api_keys).clone();
    let first = keys.iter().filter(|key| key.as_deref() == Some("first-key")).count();
    assert_eq!(keys.len() - first, 1, "only the call after the rotation sends the new key: {keys:?}");

    key_file(&dir, b"third\x07key");
    store.count(None).await.expect("count with the last usable key");
    assert_eq!(last_key(&fake).as_deref(), Some("second-key"), "a key that cannot be sent is not used");
    std::fs::remove_file(&path).expect("delete the key file");
    store.count(None).await.expect("count with the last key");
    assert_eq!(last_key(&fake).as_deref(), Some("second-key"), "a deleted file keeps the last key");
    let text = secrets.metrics().encode();
    assert!(text.contains(r#"agent_secret_reloads_total{file="memory.store.qdrant.apiKeyFile"} 2"#), "{text}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn qdrant_url_without_a_scheme_or_zero_dimension_is_refused_at_connect() {
    let error = QdrantStore::connect(settings("qdrant:6334")).expect_err("no scheme");
    assert!(matches!(&error, VectorError::InvalidUrl { url, .. } if url == "qdrant:6334"), "{error}");
    let zero = QdrantSettings { dimension: 0, ..settings("http://qdrant:6334") };
    assert!(matches!(QdrantStore::connect(zero), Err(VectorError::ZeroDimension)));
}

/// Stored dense vectors come back in the order asked, read with one `Points/Get` that asks for
/// the `dense` vector only and no payload; ids the server does not return are `None`.
#[tokio::test]
async fn qdrant_store_reads_stored_dense_vectors_for_rerankers() {
    use qdrant_client::qdrant::{NamedVectorsOutput, VectorOutput, VectorsOutput, vector_output, vectors_output};
    let fake = fake_with(Some(ready_collection()));
    let dense = |data: Vec<f32>| VectorOutput {
        vector: Some(vector_output::Vector::Dense(qdrant_client::qdrant::DenseVector { data })),
        ..VectorOutput::default()
    };
    *lock(&fake.vectors) = vec![RetrievedPoint {
        id: Some(7.into()),
        vectors: Some(VectorsOutput {
            vectors_options: Some(vectors_output::VectorsOptions::Vectors(NamedVectorsOutput {
                vectors: HashMap::from([("dense".to_owned(), dense(vec![0.6, 0.8, 0.0, 0.0]))]),
            })),
        }),
        ..RetrievedPoint::default()
    }];
    let (fake, url) = serve(fake).await;
    let store = store(&url);
    let vectors = store.dense_vectors(vec![3, 7]).await.expect("vectors");
    assert_eq!(vectors, [None, Some(vec![0.6, 0.8, 0.0, 0.0])]);
    let calls = fake.calls();
    let Some(Call::GetPoints(get)) = calls.last() else { panic!("a Get call expected, got {calls:?}") };
    assert_eq!(get.ids, [3.into(), 7.into()]);
    let selector = get.with_vectors.clone().and_then(|w| w.selector_options);
    assert_eq!(
        selector,
        Some(qdrant_client::qdrant::with_vectors_selector::SelectorOptions::Include(
            qdrant_client::qdrant::VectorsSelector { names: vec!["dense".to_owned()] }
        ))
    );
}

#[tokio::test]
async fn a_qdrant_server_that_is_down_keeps_knowledge_not_ready_until_it_answers() {
    use agent_runtime::readiness::Readiness;
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("address").port();
    let url = format!("http://127.0.0.1:{port}");
    let readiness = Arc::new(Readiness::default());
    let metrics = Arc::new(agent_runtime::metrics::Metrics::default());
    let watched: Arc<dyn VectorStore> = Arc::new(store(&url));
    tokio::spawn(agent_runtime::serve::watch_store(watched, readiness.clone(), metrics.clone()));
    let knowledge = |readiness: &Readiness| {
        serde_json::to_value(readiness.report([])).expect("json")["components"]["knowledge"].clone()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while knowledge(&readiness).is_null() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let down = knowledge(&readiness);
    assert_eq!(down["state"], "notReady", "{down}");
    assert!(
        down["reason"].as_str().expect("reason").contains(&format!("cannot reach the Qdrant server at {url}")),
        "{down}"
    );
    assert!(!readiness.report([]).ready);
    assert!(metrics.encode().contains(r#"agent_component_ready{component="knowledge"} 0"#));

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("bind the same port");
    serve_on(Fake::default(), listener);
    let deadline = Instant::now() + Duration::from_secs(20);
    while knowledge(&readiness)["state"] != "ready" && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(readiness.report([]).ready, "{}", knowledge(&readiness));
    assert!(metrics.encode().contains(r#"agent_component_ready{component="knowledge"} 1"#));
}
