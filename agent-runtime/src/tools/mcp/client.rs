//! Connecting to one MCP server: our own HTTP client (bearer token and extra headers from
//! mounted Secret files as they are at each connection, extra trusted CAs), either transport,
//! and a handler that hears `notifications/tools/list_changed`.

use std::collections::BTreeMap;
use std::sync::Arc;
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
use crate::secret_file::{SecretFile, SecretFiles};

/// A live connection to a server.
pub type Connection = RunningService<RoleClient, Handler>;

/// How to reach one server. Its Secret files are read at start (a missing one is an error);
/// each connection is made with the values they hold then, and [`Endpoint::credentials`] tells
/// the watcher when they changed, so it reconnects with the new ones.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// The URL (streamable HTTP endpoint, or the SSE stream).
    pub url: String,
    /// Which transport.
    pub transport: McpTransport,
    headers: Vec<(HeaderName, SecretFile)>,
    token: Option<SecretFile>,
    ca_pem: Option<String>,
}

/// The Secret files of one MCP tool entry.
pub struct EndpointFiles<'a> {
    /// The tool entry (names the files in logs and metrics).
    pub entry: &'a str,
    /// The bearer token's file.
    pub token_file: Option<&'a str>,
    /// Extra headers, each from a file.
    pub header_files: &'a BTreeMap<String, String>,
}

/// The values of an endpoint's Secret files that a connection was made with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials(Vec<Arc<str>>);

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
    /// Opens the token and header files and checks that a client can be built from them.
    pub fn new(
        url: &str,
        transport: McpTransport,
        files: &EndpointFiles<'_>,
        secrets: &SecretFiles,
        ca_pem: Option<&str>,
    ) -> Result<Self, EndpointError> {
        let open = |field: String, path: &str| {
            secrets.open(field, path).map_err(|source| EndpointError::File { path: path.to_owned(), source })
        };
        let mut headers = Vec::new();
        for (name, path) in files.header_files {
            let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| EndpointError::Header(name.clone()))?;
            headers.push((header, open(format!("tools[{}].headerFiles[{name}]", files.entry), path)?));
        }
        let token = files.token_file.map(|path| open(format!("tools[{}].tokenFile", files.entry), path)).transpose()?;
        let endpoint = Self { url: url.to_owned(), transport, headers, token, ca_pem: ca_pem.map(str::to_owned) };
        endpoint.client(&endpoint.credentials())?;
        Ok(endpoint)
    }

    /// The values its Secret files hold now (each read again when its check is due).
    pub fn credentials(&self) -> Credentials {
        Credentials(self.headers.iter().map(|(_, file)| file).chain(&self.token).map(SecretFile::current).collect())
    }

    /// A client sending `credentials` (what [`Endpoint::credentials`] gave) and trusting the CAs.
    fn client(&self, credentials: &Credentials) -> Result<reqwest::Client, EndpointError> {
        let mut values = credentials.0.iter();
        let mut headers = HeaderMap::new();
        for ((name, _), value) in self.headers.iter().zip(&mut values) {
            headers.insert(name.clone(), sensitive(value).map_err(|_| EndpointError::Header(name.to_string()))?);
        }
        if let Some(token) = values.next() {
            let value =
                sensitive(&format!("Bearer {token}")).map_err(|_| EndpointError::Header("Authorization".into()))?;
            headers.insert(http::header::AUTHORIZATION, value);
        }
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            // Idle pooled connections meet delayed ACKs (~40 ms a call); redirects would turn a
            // POST into a GET without a body. No overall timeout: it would cut the event stream.
            .pool_max_idle_per_host(0)
            .redirect(reqwest::redirect::Policy::none())
            .default_headers(headers);
        if let Some(pem) = &self.ca_pem {
            for certificate in reqwest::Certificate::from_pem_bundle(pem.as_bytes())? {
                builder = builder.add_root_certificate(certificate);
            }
        }
        Ok(builder.build()?)
    }

    /// Connects with the credentials the Secret files hold now and initializes;
    /// `tools_changed` is bumped on every `tools/list_changed`. Returns the connection and the
    /// credentials it was made with.
    pub async fn connect(&self, tools_changed: watch::Sender<u64>) -> Result<(Connection, Credentials), String> {
        let credentials = self.credentials();
        let http = self.client(&credentials).map_err(|e| e.to_string())?;
        let handler = Handler::new(tools_changed);
        let connection = match self.transport {
            McpTransport::StreamableHttp => {
                let config = StreamableHttpClientTransportConfig::with_uri(self.url.as_str());
                let transport = StreamableHttpClientTransport::with_client(http, config);
                handler.serve(transport).await.map_err(|e| e.to_string())?
            }
            McpTransport::Sse => {
                let transport = LegacySseTransport::connect(http, &self.url).await.map_err(|e| e.to_string())?;
                handler.serve(transport).await.map_err(|e| e.to_string())?
            }
        };
        Ok((connection, credentials))
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
