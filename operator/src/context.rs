//! What every reconcile shares: the client, the event recorder, metrics, backoff and settings.

use std::sync::Arc;

use agent_crds::runtime_config::PodPaths;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource, ResourceExt};

use crate::agent::build::egress::ApiServer;
use crate::backoff::Backoff;
use crate::fair_share::NamespaceShare;
use crate::metrics::Metrics;
use crate::stores::Caches;

/// Shared state of the controllers.
pub struct Context {
    /// The Kubernetes client.
    pub client: Client,
    /// Publishes events on transitions and errors.
    pub recorder: Recorder,
    /// Controller metrics.
    pub metrics: Arc<Metrics>,
    /// Per-object backoff of transient failures.
    pub backoff: Backoff,
    /// Runtime image for agents that do not set one.
    pub runtime_image: String,
    /// Where agent pods mount their volume and Secrets.
    pub paths: PodPaths,
    /// What reconciles read instead of GETting it.
    pub caches: Caches,
    /// Where pods reach the Kubernetes API server, for agents' egress policies.
    pub api_server: ApiServer,
    /// How many Agent reconciles one namespace may hold at once (no limit by default).
    pub namespace_share: NamespaceShare,
    /// Where agent pods export traces (the operator's own OTLP settings); `None`: nowhere.
    pub traces: Option<agent_crds::runtime_config::TracesConfig>,
}

impl Context {
    /// A context reporting events as `agent-operator` from `instance`.
    pub fn new(client: Client, metrics: Arc<Metrics>, runtime_image: String, instance: Option<String>) -> Self {
        let reporter = Reporter { controller: "agent-operator".to_owned(), instance };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            metrics,
            backoff: Backoff::default(),
            runtime_image,
            paths: PodPaths::default(),
            caches: Caches::default(),
            api_server: ApiServer::default(),
            namespace_share: NamespaceShare::default(),
            traces: None,
        }
    }
}

impl Context {
    /// Publishes an event about `object` (the note cut to the API's 1,000 characters); a
    /// failure to publish is logged, never fatal.
    pub async fn publish<K: Resource<DynamicType = ()>>(
        &self,
        object: &K,
        type_: EventType,
        reason: &str,
        note: String,
    ) {
        let event = Event {
            type_,
            reason: reason.to_owned(),
            note: Some(note.chars().take(1000).collect()),
            action: "Reconcile".to_owned(),
            secondary: None,
        };
        if let Err(error) = self.recorder.publish(&event, &object.object_ref(&())).await {
            let object = format!("{}/{}/{}", K::kind(&()), object.namespace().unwrap_or_default(), object.name_any());
            tracing::warn!(%object, %error, "could not publish event");
        }
    }
}
