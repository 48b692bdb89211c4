//! MCP servers as sources of tools (client side, with rmcp). Each configured server is watched
//! by its own task: connect, list the tools (again on `tools/list_changed`), ping while idle,
//! and on any failure drop the connection and reconnect with backoff; also reconnect when its
//! token or header Secret files change. While a server is down
//! the agent serves without its tools and `/readyz` shows it as degraded.

pub mod client;
mod legacy_sse;
pub mod offer;
mod render;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use rmcp::model::{CallToolRequestParams, ClientRequest, PingRequest, RequestParamsMeta as _};
use rmcp::{Peer, RoleClient, ServiceError};
use serde_json::Value;
use tokio::sync::{Notify, watch};

use self::client::{Connection, Credentials, Endpoint};
use self::offer::{OfferedTool, SkippedTool};
use super::ToolError;
use crate::metrics::Metrics;
use crate::readiness::{ComponentState, Readiness};

/// Longest wait for a lost connection to close before reconnecting.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// How servers are watched and reconnected.
#[derive(Clone, Copy, Debug)]
pub struct McpTiming {
    /// Ping an idle server this often, to notice it went away.
    pub ping_every: Duration,
    /// Longest wait for the handshake, a tool list or a ping.
    pub answer_timeout: Duration,
    /// First wait before reconnecting; doubles up to `backoff_max`.
    pub backoff_min: Duration,
    /// Longest wait before reconnecting.
    pub backoff_max: Duration,
}

impl Default for McpTiming {
    fn default() -> Self {
        Self {
            ping_every: Duration::from_secs(15),
            answer_timeout: Duration::from_secs(10),
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
        }
    }
}

/// One configured MCP server and what it offers now.
pub struct McpServer {
    entry: String,
    endpoint: Endpoint,
    allow: Vec<String>,
    require_approval: Vec<String>,
    timeout: Option<Duration>,
    current: RwLock<Arc<Offering>>,
    check_now: Notify,
}

/// What a server offers while connected; nothing while it is not.
#[derive(Default)]
struct Offering {
    peer: Option<Peer<RoleClient>>,
    tools: Vec<OfferedTool>,
    skipped: Vec<SkippedTool>,
}

impl McpServer {
    /// The server of tool entry `entry`; `allow` filters its tools, calls to those matching
    /// `require_approval` wait for a human, `timeout` bounds each call (`None`: the runtime's
    /// tool timeout).
    pub fn new(
        entry: &str,
        endpoint: Endpoint,
        allow: Vec<String>,
        require_approval: Vec<String>,
        timeout: Option<Duration>,
    ) -> Self {
        Self {
            entry: entry.to_owned(),
            endpoint,
            allow,
            require_approval,
            timeout,
            current: RwLock::new(Arc::default()),
            check_now: Notify::new(),
        }
    }

    /// The tool entry's name.
    pub fn entry(&self) -> &str {
        &self.entry
    }

    /// Its readiness component and tool source: `mcp/<entry>`.
    pub fn component(&self) -> String {
        format!("mcp/{}", self.entry)
    }

    /// Longest a call may take, when the server sets its own.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// The tools offered now (none while disconnected).
    pub fn tools(&self) -> Vec<OfferedTool> {
        self.offering().tools.clone()
    }

    /// The allowed tools not offered, with the reason.
    pub fn skipped(&self) -> Vec<SkippedTool> {
        self.offering().skipped.clone()
    }

    /// Whether calls to its tool `name` wait for a human decision.
    pub fn requires_approval(&self, name: &str) -> bool {
        offer::any_matches(&self.require_approval, name)
    }

    /// Whether the server offers `name` now.
    pub fn offers(&self, name: &str) -> bool {
        self.offering().tools.iter().any(|t| t.name == name)
    }

    fn offering(&self) -> Arc<Offering> {
        self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    fn set_offering(&self, offering: Offering) {
        *self.current.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(offering);
    }

    /// Calls tool `name`. A result the server flags `isError` is [`ToolError::Reported`], for the
    /// model to read; dropping the future (timeout, abandoned turn) sends `notifications/cancelled`.
    pub async fn call(&self, name: &str, arguments: Value) -> Result<String, ToolError> {
        let Value::Object(arguments) = arguments else {
            return Err(ToolError::BadArguments("the arguments must be a JSON object".into()));
        };
        let peer = self.offering().peer.clone().ok_or_else(|| self.unreachable("is not connected"))?;
        let mut request = CallToolRequestParams::new(name.to_owned()).with_arguments(arguments);
        // The trace context travels in `_meta` (SEP-414): the HTTP request is sent by the
        // transport's own task, outside the turn's span.
        for (field, value) in agent_telemetry::propagation::current_fields() {
            request.meta_or_default().0.0.insert(field, Value::String(value));
        }
        match peer.call_tool(request).await {
            Ok(result) => {
                let (text, is_error) = render::render(&result);
                if is_error { Err(ToolError::Reported(text)) } else { Ok(text) }
            }
            Err(ServiceError::McpError(error)) => {
                Err(ToolError::Failed(format!("the MCP server refused the call: {}", error.message)))
            }
            Err(error) => {
                self.check_now.notify_one();
                Err(self.unreachable(&format!("failed: {error}")))
            }
        }
    }

    fn unreachable(&self, what: &str) -> ToolError {
        ToolError::Failed(format!("the MCP server {} {what}; its tools are back once it answers again", self.entry))
    }

    /// Watches the server for as long as the runtime runs: connects, keeps its tool list
    /// current, and reconnects with backoff whenever it fails. Its state is readiness
    /// component `mcp/<entry>`: ready while connected, degraded while not.
    pub async fn watch(self: Arc<Self>, readiness: Arc<Readiness>, metrics: Arc<Metrics>, timing: McpTiming) {
        let component = self.component();
        let mut delay = timing.backoff_min;
        loop {
            let (changed, listen) = watch::channel(0);
            let reason = match tokio::time::timeout(timing.answer_timeout, self.endpoint.connect(changed)).await {
                Err(_) => format!("no answer to initialize within {} s", timing.answer_timeout.as_secs_f32()),
                Ok(Err(error)) => format!("cannot connect to {}: {error}", self.endpoint.url),
                Ok(Ok((connection, credentials))) => {
                    let reason = self.serve(&connection, &credentials, listen, &timing, || {
                        delay = timing.backoff_min;
                        readiness.set(&component, ComponentState::Ready, &metrics);
                    });
                    let reason = reason.await;
                    self.set_offering(Offering::default());
                    // Closing says goodbye (a DELETE of the session); a server that went away
                    // must not hold the reconnect up for long.
                    let _ = tokio::time::timeout(CLOSE_TIMEOUT.min(timing.answer_timeout), connection.cancel()).await;
                    format!("lost the connection: {reason}")
                }
            };
            let state = ComponentState::Degraded(format!("{reason}; reconnecting in {} s", delay.as_secs_f32()));
            readiness.set(&component, state, &metrics);
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(timing.backoff_max);
        }
    }

    /// Uses a connection until it fails, or until the Secret files it was made with change
    /// (checked at each ping); returns why.
    async fn serve(
        &self,
        connection: &Connection,
        credentials: &Credentials,
        mut changed: watch::Receiver<u64>,
        timing: &McpTiming,
        on_listed: impl FnOnce(),
    ) -> String {
        let peer = connection.peer().clone();
        if let Err(reason) = self.list(&peer, timing).await {
            return reason;
        }
        on_listed();
        loop {
            let outcome = tokio::select! {
                seen = changed.changed() => match seen {
                    Ok(()) => self.list(&peer, timing).await,
                    Err(_) => Err("the client stopped".into()),
                },
                () = tokio::time::sleep(timing.ping_every) => {
                    if self.endpoint.credentials() != *credentials {
                        tracing::info!(server = %self.entry, "reconnecting with the changed Secret files");
                        return "its token or headers changed in their Secret files".into();
                    }
                    ping(&peer, timing).await
                }
                () = self.check_now.notified() => ping(&peer, timing).await,
            };
            if let Err(reason) = outcome {
                return reason;
            }
        }
    }

    /// Lists the server's tools and offers the allowed ones that fit a model API.
    async fn list(&self, peer: &Peer<RoleClient>, timing: &McpTiming) -> Result<(), String> {
        let listed = tokio::time::timeout(timing.answer_timeout, peer.list_all_tools())
            .await
            .map_err(|_| format!("no answer to tools/list within {} s", timing.answer_timeout.as_secs_f32()))?
            .map_err(|error| format!("tools/list failed: {error}"))?;
        let (tools, skipped) = offer::offer(listed, &self.allow);
        for tool in &skipped {
            tracing::warn!(server = %self.entry, tool = %tool.name, reason = %tool.reason, "MCP tool not offered");
        }
        tracing::info!(server = %self.entry, offered = tools.len(), "MCP tools listed");
        self.set_offering(Offering { peer: Some(peer.clone()), tools, skipped });
        Ok(())
    }
}

async fn ping(peer: &Peer<RoleClient>, timing: &McpTiming) -> Result<(), String> {
    let request = ClientRequest::PingRequest(PingRequest::default());
    match tokio::time::timeout(timing.answer_timeout, peer.send_request(request)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) => Err(format!("ping failed: {error}")),
        Err(_) => Err(format!("no answer to ping within {} s", timing.answer_timeout.as_secs_f32())),
    }
}
