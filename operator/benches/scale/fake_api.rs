//! A small in-memory Kubernetes API server for the scale benchmark, run in its own process so
//! the operator's memory is measured alone. It serves what the Agent controller uses: GET,
//! LIST (label-selected) and WATCH (newline-delimited events from a resourceVersion, replayed
//! from history) of any namespaced kind, server-side apply as a merge (status subresource
//! included), create, delete; and it plays the StatefulSet controller (a second after a
//! StatefulSet is applied its pod is ready and its data claim exists). Like the API server it
//! answers a request that accepts `as=PartialObjectMetadata[List]` with the objects' metadata
//! only. It counts every request by verb and resource, and answers `GET /stats` with the counts.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header::ACCEPT;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::support::merge;

/// One change, as watchers receive it.
#[derive(Clone, Debug)]
struct Change {
    rv: u64,
    collection: String,
    namespace: String,
    kind: &'static str,
    object: Arc<Value>,
}

#[derive(Default)]
struct Inner {
    objects: BTreeMap<String, Value>,
    rv: u64,
    history: Vec<Change>,
    counts: BTreeMap<String, u64>,
}

/// The server's state.
#[derive(Clone)]
pub struct FakeApi {
    inner: Arc<Mutex<Inner>>,
    changes: broadcast::Sender<Change>,
}

/// Where a request goes.
#[derive(Debug)]
struct Target {
    /// `/api/v1` or `/apis/<group>/<version>`.
    prefix: String,
    namespace: Option<String>,
    plural: String,
    name: Option<String>,
    status: bool,
}

impl Target {
    fn parse(path: &str) -> Option<Self> {
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        let (prefix, rest) = match *parts.first()? {
            "api" => (format!("/api/{}", parts.get(1)?), &parts[2..]),
            "apis" => (format!("/apis/{}/{}", parts.get(1)?, parts.get(2)?), &parts[3..]),
            _ => return None,
        };
        let (namespace, rest) = match rest {
            ["namespaces", ns, rest @ ..] if !rest.is_empty() => (Some((*ns).to_owned()), rest),
            rest => (None, rest),
        };
        let (plural, name, status) = match rest {
            [plural] => (*plural, None, false),
            [plural, name] => (*plural, Some((*name).to_owned()), false),
            [plural, name, "status"] => (*plural, Some((*name).to_owned()), true),
            _ => return None,
        };
        Some(Self { prefix, namespace, plural: plural.to_owned(), name, status })
    }

    fn collection(&self) -> String {
        format!("{}/{}", self.prefix, self.plural)
    }

    fn object_key(&self) -> Option<String> {
        Some(format!("{}/namespaces/{}/{}/{}", self.prefix, self.namespace.as_ref()?, self.plural, self.name.as_ref()?))
    }
}

fn query_value<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query.split('&').find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
}

fn decode(text: &str) -> String {
    text.replace("%3D", "=").replace("%2F", "/").replace("%2C", ",").replace('+', " ")
}

/// Equality label selectors (`k=v,k2=v2`), all the operator uses.
fn matches(selector: Option<&str>, object: &Value) -> bool {
    let Some(selector) = selector.filter(|s| !s.is_empty()) else { return true };
    decode(selector).split(',').all(|term| match term.split_once('=') {
        Some((key, value)) => object["metadata"]["labels"][key].as_str() == Some(value),
        None => !object["metadata"]["labels"][term].is_null(),
    })
}

fn status(code: u16, reason: &str, message: &str) -> Response {
    let body = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code, "reason": reason, "message": message, "metadata": {}});
    (StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), axum::Json(body)).into_response()
}

impl FakeApi {
    /// An empty server.
    pub fn new() -> Self {
        Self { inner: Arc::default(), changes: broadcast::channel(1 << 16).0 }
    }

    /// Stores `object` as if a user had applied it (not counted).
    pub fn seed(&self, mut object: Value) {
        let kind = object["kind"].as_str().unwrap_or_default().to_owned();
        let plural = format!("{}s", kind.to_lowercase());
        let api_version = object["apiVersion"].as_str().unwrap_or("v1").to_owned();
        let prefix =
            if api_version.contains('/') { format!("/apis/{api_version}") } else { format!("/api/{api_version}") };
        let namespace = object["metadata"]["namespace"].as_str().unwrap_or("default").to_owned();
        let name = object["metadata"]["name"].as_str().unwrap_or_default().to_owned();
        let target = Target { prefix, namespace: Some(namespace), plural, name: Some(name), status: false };
        let mut inner = self.inner.lock().unwrap();
        inner.rv += 1;
        let rv = inner.rv;
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        object["metadata"]["uid"] = json!(format!("uid-{rv}"));
        object["metadata"]["generation"] = json!(1);
        object["metadata"]["creationTimestamp"] = json!("2026-11-29T00:00:00Z");
        self.record(&mut inner, &target, "ADDED", object);
    }

    fn record(&self, inner: &mut Inner, target: &Target, kind: &'static str, object: Value) {
        let key = target.object_key().unwrap_or_default();
        let change = Change {
            rv: inner.rv,
            collection: target.collection(),
            namespace: target.namespace.clone().unwrap_or_default(),
            kind,
            object: Arc::new(object.clone()),
        };
        if kind == "DELETED" {
            inner.objects.remove(&key);
        } else {
            inner.objects.insert(key, object);
        }
        inner.history.push(change.clone());
        let _ = self.changes.send(change);
    }

    fn count(&self, verb: &str, target: &Target) {
        let key = format!("{verb} {}", target.plural);
        *self.inner.lock().unwrap().counts.entry(key).or_default() += 1;
    }

    /// The request counts by `VERB resource`.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        self.inner.lock().unwrap().counts.clone()
    }

    fn apply(&self, target: &Target, body: &[u8]) -> Response {
        let Ok(patch) = serde_json::from_slice::<Value>(body) else {
            return status(400, "BadRequest", "the body is not JSON");
        };
        let key = target.object_key().unwrap_or_default();
        let mut inner = self.inner.lock().unwrap();
        let existing = inner.objects.get(&key).cloned();
        if target.status && existing.is_none() {
            return status(404, "NotFound", &format!("{key} not found"));
        }
        let mut object = existing.clone().unwrap_or_else(|| json!({}));
        let spec_before = object.get("spec").cloned();
        if target.status {
            merge(&mut object, json!({"status": patch.get("status").cloned().unwrap_or(Value::Null)}));
        } else {
            let mut patch = patch;
            if let Some(fields) = patch.as_object_mut() {
                fields.remove("status");
            }
            merge(&mut object, patch);
        }
        inner.rv += 1;
        let rv = inner.rv;
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        if object["metadata"]["uid"].is_null() {
            object["metadata"]["uid"] = json!(format!("uid-{rv}"));
            object["metadata"]["creationTimestamp"] = json!("2026-11-29T00:00:00Z");
        }
        let generation = object["metadata"]["generation"].as_i64().unwrap_or(0);
        if generation == 0 || (!target.status && object.get("spec").cloned() != spec_before) {
            object["metadata"]["generation"] = json!(generation + 1);
        }
        let kind = if existing.is_some() { "MODIFIED" } else { "ADDED" };
        let spec_changed = !target.status && object.get("spec").cloned() != spec_before;
        self.record(&mut inner, target, kind, object.clone());
        drop(inner);
        if target.plural == "statefulsets" && spec_changed {
            self.start_pod_later(target, &object);
        }
        (StatusCode::OK, axum::Json(object)).into_response()
    }

    /// Plays the StatefulSet controller and the kubelet: the pod is ready, the claim exists.
    fn start_pod_later(&self, target: &Target, stateful_set: &Value) {
        let api = self.clone();
        let key = target.object_key().unwrap_or_default();
        let (namespace, name) = (target.namespace.clone().unwrap_or_default(), target.name.clone().unwrap_or_default());
        let claim_labels = stateful_set["spec"]["volumeClaimTemplates"][0]["metadata"]["labels"].clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let mut inner = api.inner.lock().unwrap();
            let Some(mut object) = inner.objects.get(&key).cloned() else { return };
            let generation = object["metadata"]["generation"].clone();
            object["status"] =
                json!({"observedGeneration": generation, "replicas": 1, "readyReplicas": 1, "availableReplicas": 1});
            inner.rv += 1;
            object["metadata"]["resourceVersion"] = json!(inner.rv.to_string());
            let sts = Target {
                prefix: "/apis/apps/v1".into(),
                namespace: Some(namespace.clone()),
                plural: "statefulsets".into(),
                name: Some(name.clone()),
                status: true,
            };
            api.record(&mut inner, &sts, "MODIFIED", object);
            let claim_name = format!("data-{name}-0");
            let claim_target = Target {
                prefix: "/api/v1".into(),
                namespace: Some(namespace.clone()),
                plural: "persistentvolumeclaims".into(),
                name: Some(claim_name.clone()),
                status: false,
            };
            if inner.objects.contains_key(&claim_target.object_key().unwrap_or_default()) {
                return;
            }
            inner.rv += 1;
            let claim = json!({
                "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": claim_name, "namespace": namespace, "labels": claim_labels, "resourceVersion": inner.rv.to_string(), "uid": format!("uid-{}", inner.rv)},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
                "status": {"phase": "Bound"}
            });
            api.record(&mut inner, &claim_target, "ADDED", claim);
        });
    }

    fn list(&self, target: &Target, query: &str, metadata_only: bool) -> Response {
        let selector = query_value(query, "labelSelector");
        let inner = self.inner.lock().unwrap();
        let items: Vec<Value> = inner
            .objects
            .iter()
            .filter(|(key, _)| Target::parse(key).is_some_and(|found| target.holds(&found)))
            .map(|(_, object)| object)
            .filter(|object| matches(selector, object))
            .map(|object| shown(object, metadata_only))
            .collect();
        let body = json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": inner.rv.to_string()}, "items": items});
        (StatusCode::OK, axum::Json(body)).into_response()
    }

    /// Events after the asked resourceVersion: replayed from history, then live until the
    /// watch's timeout (a watcher that falls behind is ended; it watches again from its last
    /// resourceVersion and the rest is replayed).
    fn watch(&self, target: &Target, query: &str, metadata_only: bool) -> Response {
        let filter = Arc::new(WatchFilter {
            since: query_value(query, "resourceVersion").and_then(|rv| rv.parse().ok()).unwrap_or(0),
            collection: target.collection(),
            namespace: target.namespace.clone(),
            selector: query_value(query, "labelSelector").map(str::to_owned),
        });
        let timeout: u64 = query_value(query, "timeoutSeconds").and_then(|t| t.parse().ok()).unwrap_or(290).min(290);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
        let live = self.changes.subscribe();
        let replay: Vec<Change> =
            self.inner.lock().unwrap().history.iter().filter(|c| filter.wants(c)).cloned().collect();
        let last = replay.last().map_or(filter.since, |c| c.rv);
        let replayed = futures::stream::iter(
            replay.iter().map(|c| Ok::<_, Infallible>(line(c, metadata_only))).collect::<Vec<_>>(),
        );
        let follow = futures::stream::unfold((live, filter, last), move |(mut live, filter, last)| async move {
            loop {
                match tokio::time::timeout_at(deadline, live.recv()).await {
                    Ok(Ok(change)) if change.rv > last && filter.wants(&change) => {
                        let rv = change.rv;
                        return Some((Ok(line(&change, metadata_only)), (live, filter, rv)));
                    }
                    Ok(Ok(_)) => {}
                    Ok(Err(broadcast::error::RecvError::Lagged(_) | broadcast::error::RecvError::Closed)) | Err(_) => {
                        return None;
                    }
                }
            }
        });
        Response::builder().status(StatusCode::OK).body(Body::from_stream(replayed.chain(follow))).unwrap()
    }
}

/// What a watch wants.
struct WatchFilter {
    since: u64,
    collection: String,
    namespace: Option<String>,
    selector: Option<String>,
}

impl WatchFilter {
    fn wants(&self, change: &Change) -> bool {
        change.rv > self.since
            && change.collection == self.collection
            && self.namespace.as_ref().is_none_or(|ns| &change.namespace == ns)
            && matches(self.selector.as_deref(), &change.object)
    }
}

fn line(change: &Change, metadata_only: bool) -> Bytes {
    Bytes::from(format!("{}\n", json!({"type": change.kind, "object": shown(&change.object, metadata_only)})))
}

/// The object, or its metadata alone when the client asked for `PartialObjectMetadata`.
fn shown(object: &Value, metadata_only: bool) -> Value {
    if metadata_only {
        json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": object["metadata"]})
    } else {
        object.clone()
    }
}

impl Target {
    /// Whether the object at `found` belongs to this collection.
    fn holds(&self, found: &Target) -> bool {
        found.prefix == self.prefix
            && found.plural == self.plural
            && found.name.is_some()
            && self.namespace.as_ref().is_none_or(|ns| found.namespace.as_ref() == Some(ns))
    }
}

/// Serves one request.
pub async fn serve(State(api): State<FakeApi>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = uri.path();
    let metadata_only = headers
        .get(ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .is_some_and(|accept| accept.contains("as=PartialObjectMetadata"));
    let query = uri.query().unwrap_or_default().to_owned();
    if path == "/stats" {
        return axum::Json(api.counts()).into_response();
    }
    let Some(target) = Target::parse(path) else { return status(404, "NotFound", path) };
    match (method, &target.name) {
        (Method::GET, None) if query_value(&query, "watch") == Some("true") => {
            api.count("WATCH", &target);
            api.watch(&target, &query, metadata_only)
        }
        (Method::GET, None) => {
            api.count("LIST", &target);
            api.list(&target, &query, metadata_only)
        }
        (Method::GET, Some(_)) => {
            api.count("GET", &target);
            let key = target.object_key().unwrap_or_default();
            match api.inner.lock().unwrap().objects.get(&key) {
                Some(object) => (StatusCode::OK, axum::Json(object.clone())).into_response(),
                None => status(404, "NotFound", &format!("{key} not found")),
            }
        }
        (Method::PATCH, Some(_)) => {
            api.count("PATCH", &target);
            api.apply(&target, &body)
        }
        (Method::POST, _) => {
            api.count("POST", &target);
            (StatusCode::CREATED, body).into_response()
        }
        (Method::DELETE, Some(_)) => {
            api.count("DELETE", &target);
            let key = target.object_key().unwrap_or_default();
            let mut inner = api.inner.lock().unwrap();
            match inner.objects.get(&key).cloned() {
                Some(object) => {
                    inner.rv += 1;
                    api.record(&mut inner, &target, "DELETED", object.clone());
                    (StatusCode::OK, axum::Json(object)).into_response()
                }
                None => status(404, "NotFound", &format!("{key} not found")),
            }
        }
        (method, _) => status(405, "MethodNotAllowed", method.as_str()),
    }
}
