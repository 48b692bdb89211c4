//! The older HTTP+SSE transport (MCP 2024-11-05), which rmcp dropped in 0.11: a GET opens an
//! event stream whose first `endpoint` event names the URL (same origin) every client message is
//! POSTed to; the server's messages arrive as `message` events on the stream. Plugged into rmcp
//! as a [`Transport`], so the rest of the client is the same as for streamable HTTP. When the
//! stream ends, rmcp's service ends too and the next ping fails, which starts a reconnect.

use std::{borrow::Cow, future::Future};

use futures::{StreamExt, stream::BoxStream};
use http::{HeaderValue, header::ACCEPT};
use rmcp::{
    RoleClient,
    model::{ClientJsonRpcMessage, ServerJsonRpcMessage},
    transport::Transport,
};
use sse_stream::{Sse, SseStream};

/// Why the SSE transport failed.
#[derive(Debug, thiserror::Error)]
pub enum LegacySseError {
    /// The HTTP request failed.
    #[error("{0}")]
    Http(#[from] reqwest::Error),
    /// A URL could not be parsed.
    #[error("bad URL: {0}")]
    Url(String),
    /// The event stream is not valid SSE.
    #[error("invalid event stream: {0}")]
    Sse(String),
    /// The stream ended before naming the POST endpoint.
    #[error("the event stream ended before its `endpoint` event")]
    NoEndpoint,
    /// The server named a POST endpoint on another origin.
    #[error("the server's endpoint {0} is not on the event stream's origin")]
    CrossOriginEndpoint(String),
}

/// A connected HTTP+SSE transport.
pub struct LegacySseTransport {
    http: reqwest::Client,
    post_url: reqwest::Url,
    events: BoxStream<'static, Result<Sse, sse_stream::Error>>,
}

impl LegacySseTransport {
    /// Opens the event stream at `sse_url` and waits for its endpoint; `http` carries the
    /// headers (bearer token, extra headers) and trusted CAs.
    pub async fn connect(http: reqwest::Client, sse_url: &str) -> Result<Self, LegacySseError> {
        let sse_url: reqwest::Url = sse_url.parse().map_err(|e| LegacySseError::Url(format!("{e}")))?;
        let response = http
            .get(sse_url.clone())
            .header(ACCEPT, HeaderValue::from_static("text/event-stream"))
            .send()
            .await?
            .error_for_status()?;
        let mut events = SseStream::from_bytes_stream(response.bytes_stream()).boxed();
        let post_url = loop {
            match events.next().await {
                Some(Ok(sse)) if sse.event.as_deref() == Some("endpoint") => {
                    let endpoint = sse.data.unwrap_or_default();
                    let url = sse_url.join(endpoint.trim()).map_err(|e| LegacySseError::Url(format!("{e}")))?;
                    if url.origin() != sse_url.origin() {
                        return Err(LegacySseError::CrossOriginEndpoint(url.to_string()));
                    }
                    break url;
                }
                Some(Ok(_)) => {} // comments / pings before the endpoint
                Some(Err(e)) => return Err(LegacySseError::Sse(e.to_string())),
                None => return Err(LegacySseError::NoEndpoint),
            }
        };
        Ok(Self { http, post_url, events })
    }
}

impl Transport<RoleClient> for LegacySseTransport {
    type Error = LegacySseError;

    fn name() -> Cow<'static, str> {
        "LegacySseTransport".into()
    }

    fn send(&mut self, item: ClientJsonRpcMessage) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        // Build the request now so the future is 'static (rmcp runs sends concurrently).
        let request = self.http.post(self.post_url.clone()).json(&item);
        async move {
            request.send().await?.error_for_status()?; // 202 Accepted
            Ok(())
        }
    }

    async fn receive(&mut self) -> Option<ServerJsonRpcMessage> {
        loop {
            match self.events.next().await? {
                Ok(sse) if matches!(sse.event.as_deref(), None | Some("message")) => {
                    let Some(data) = sse.data else { continue };
                    match serde_json::from_str::<ServerJsonRpcMessage>(&data) {
                        Ok(message) => return Some(message),
                        Err(error) => tracing::warn!(%error, "ignoring an unparsable SSE message"),
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    // None ends rmcp's service: the next ping fails and the server is reconnected.
                    tracing::warn!(%error, "the MCP event stream failed");
                    return None;
                }
            }
        }
    }

    fn close(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.events = futures::stream::empty().boxed(); // drops the GET connection
        async { Ok(()) }
    }
}
