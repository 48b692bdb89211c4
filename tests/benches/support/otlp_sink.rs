//! A minimal OTLP/HTTP receiver for the traced runtime: it accepts every `POST /v1/traces`
//! (answering with an empty `ExportTraceServiceResponse`, which encodes to no bytes) and counts
//! the exports and their bytes, so a run whose traces never left the runtime is seen.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::post;

/// What the sink received.
#[derive(Default)]
pub struct Received {
    exports: AtomicU64,
    bytes: AtomicU64,
}

impl Received {
    /// Export requests so far.
    pub fn exports(&self) -> u64 {
        self.exports.load(Ordering::Relaxed)
    }

    /// Bytes of their bodies.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

/// Starts the sink on a free loopback port (on the calling Tokio runtime).
pub async fn start() -> std::io::Result<(SocketAddr, Arc<Received>)> {
    let received = Arc::new(Received::default());
    let app = Router::new().route("/v1/traces", post(export)).with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((addr, received))
}

async fn export(State(received): State<Arc<Received>>, body: Bytes) -> impl IntoResponse {
    received.exports.fetch_add(1, Ordering::Relaxed);
    received.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
    ([(header::CONTENT_TYPE, "application/x-protobuf")], Bytes::new())
}
