//! Connecting to one MCP server: our own HTTP client (bearer token and extra headers from
//! mounted Secret files, extra trusted CAs), either transport, and a handler that hears
//! `notifications/tools/list_changed`.

use std::collections::BTreeMap;
use std::time::Duration;

use agent_crds::agent::McpTransport;
use http::{HeaderMap, HeaderName, HeaderValue};
use rmcp::model::{ClientCapabilities, ClientConfig, Implementation, ProtocolVersion};
use rmcp::service::{NotificationContext, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use tokio::sync::watch;

use super::legacy_sse::LegacySseTransport;

/// A live connection to a server.
pub type Connection = RunningService<RoleClient, Handler>;

/// How to reach one server, read and checked once at start.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// The URL (streamable HTTP endpoint, or the SSE stream).
    pub url: String,
    /// Which transport.
    pub transport: McpTransport,
    /// The client carrying the headers and CAs.
    pub http: reqwest::Client,
}

/// Why an endpoint cannot be set up from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// A Secret file cannot be read.
    #[error("cannot read {path}: {source}")]
    File {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A header name or value is not valid HTTP.
    #[error("header {0} is not a valid HTTP header (name, or the value in its Secret)")]
    Header(String),
    /// The CA bundle or the client cannot be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

impl Endpoint {
    /// Reads the token and header files and builds the client.
    pub fn new(
        url: &str,
        transport: McpTransport,
        token_file: Option<&str>,
        header_files: &BTreeMap<String, String>,
        ca_pem: Option<&str>,
    ) -> Result<Self, EndpointError> {
        let read = |path: &str| {
            std::fs::read_to_string(path)
                .map(|value| value.trim().to_owned())
                .map_err(|source| EndpointError::File { path: path.to_owned(), source })
        };
        let mut headers = HeaderMap::new();
        for (name, path) in header_files {
            let value = read(path)?;
            let invalid = || EndpointError::Header(name.clone());
            let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid())?;
            headers.insert(header, sensitive(&value).map_err(|_| invalid())?);
        }
        if let Some(path) = token_file {
            let value = sensitive(&format!("Bearer {}", read(path)?))
                .map_err(|_| EndpointError::Header("Authorization".into()))?;
            headers.insert(http::header::AUTHORIZATION, value);
        }
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            // Idle pooled connections meet delayed ACKs (~40 ms a call); redirects would turn a
            // POST into a GET without a body. No overall timeout: it would cut the event stream.
            .pool_max_idle_per_host(0)
            .redirect(reqwest::redirect::Policy::none())
            .default_headers(headers);
        if let Some(pem) = ca_pem {
            for certificate in reqwest::Certificate::from_pem_bundle(pem.as_bytes())? {
                builder = builder.add_root_certificate(certificate);
            }
        }
        Ok(Self { url: url.to_owned(), transport, http: builder.build()? })
    }

    /// Connects and initializes; `tools_changed` is bumped on every `tools/list_changed`.
    pub async fn connect(&self, tools_changed: watch::Sender<u64>) -> Result<Connection, String> {
        let handler = Handler::new(tools_changed);
        match self.transport {
            McpTransport::StreamableHttp => {
                let config = StreamableHttpClientTransportConfig::with_uri(self.url.as_str());
                let transport = StreamableHttpClientTransport::with_client(self.http.clone(), config);
                handler.serve(transport).await.map_err(|e| e.to_string())
            }
            McpTransport::Sse => {
                let transport =
                    LegacySseTransport::connect(self.http.clone(), &self.url).await.map_err(|e| e.to_string())?;
                handler.serve(transport).await.map_err(|e| e.to_string())
            }
        }
    }
}

fn sensitive(value: &str) -> Result<HeaderValue, http::header::InvalidHeaderValue> {
    let mut value = HeaderValue::from_str(value)?;
    value.set_sensitive(true);
    Ok(value)
}

/// Hears the server's notifications.
#[derive(Clone)]
pub struct Handler {
    info: ClientConfig,
    tools_changed: watch::Sender<u64>,
}

impl Handler {
    fn new(tools_changed: watch::Sender<u64>) -> Self {
        // The newest protocol version with an `initialize` handshake, where list_changed comes
        // as a notification; servers that speak an older one answer with theirs.
        let info = ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("agent-runtime", env!("CARGO_PKG_VERSION")),
        )
        .with_protocol_version(ProtocolVersion::LATEST_WITH_INITIALIZE);
        Self { info, tools_changed }
    }
}

impl ClientHandler for Handler {
    fn get_info(&self) -> ClientConfig {
        self.info.clone()
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.tools_changed.send_modify(|n| *n += 1);
    }
}
