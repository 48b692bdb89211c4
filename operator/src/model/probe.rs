//! Probe: asks an external OpenAI-compatible endpoint which models it serves (`GET {baseUrl}/models`
//! with the API key as a bearer token) and classifies the failure when it cannot tell.

use std::collections::BTreeMap;
use std::time::Duration;

use agent_crds::model::reason;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;

/// What the probe sends.
#[derive(Clone, Debug, Default)]
pub struct ProbeRequest {
    /// Base URL including the version path (`.../v1`).
    pub base_url: String,
    /// The model the Model names.
    pub model: String,
    /// API key, sent as a bearer token.
    pub api_key: Option<String>,
    /// Extra headers.
    pub headers: BTreeMap<String, String>,
    /// PEM CA bundle to trust besides the system roots.
    pub ca_pem: Option<String>,
    /// Limit of the whole request.
    pub timeout: Duration,
}

/// Why the endpoint is not usable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProbeFailure {
    /// No HTTP answer: DNS, connection, TLS or timeout.
    #[error("{0}")]
    Unreachable(String),
    /// HTTP 401 or 403.
    #[error("the endpoint refused the API key (HTTP {0})")]
    Unauthorized(u16),
    /// Another error status, or a body that is not a model list.
    #[error("{0}")]
    BadResponse(String),
    /// The list does not hold the model.
    #[error("the endpoint does not list model {model:?}; it serves {}", summary(.served))]
    ModelNotServed {
        /// The wanted model.
        model: String,
        /// What it serves.
        served: Vec<String>,
    },
}

impl ProbeFailure {
    /// The condition reason of the failure.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Unreachable(_) => reason::UNREACHABLE,
            Self::Unauthorized(_) => reason::UNAUTHORIZED,
            Self::BadResponse(_) => reason::BAD_RESPONSE,
            Self::ModelNotServed { .. } => reason::MODEL_NOT_SERVED,
        }
    }
}

fn summary(served: &[String]) -> String {
    if served.is_empty() {
        return "no models".to_owned();
    }
    let shown: Vec<&str> = served.iter().take(10).map(String::as_str).collect();
    let more = served.len().saturating_sub(shown.len());
    if more == 0 { shown.join(", ") } else { format!("{} and {more} more", shown.join(", ")) }
}

#[derive(Deserialize)]
struct ModelList {
    data: Vec<ModelEntry>,
}

#[derive(Deserialize)]
struct ModelEntry {
    id: String,
}

/// Lists the endpoint's models; `Ok` holds them sorted when the wanted model is among them.
pub async fn probe(request: &ProbeRequest) -> Result<Vec<String>, ProbeFailure> {
    // kube uses ring too; installing fails only when a provider is already installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = client(request)?;
    let url = format!("{}/models", request.base_url.trim_end_matches('/'));
    let response = client.get(&url).send().await.map_err(|e| ProbeFailure::Unreachable(error_chain(&e)))?;
    let status = response.status();
    if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
        return Err(ProbeFailure::Unauthorized(status.as_u16()));
    }
    if !status.is_success() {
        return Err(ProbeFailure::BadResponse(format!("GET {url} answered HTTP {}", status.as_u16())));
    }
    let body = response.bytes().await.map_err(|e| ProbeFailure::Unreachable(error_chain(&e)))?;
    let list: ModelList = serde_json::from_slice(&body)
        .map_err(|e| ProbeFailure::BadResponse(format!("GET {url} did not return a model list: {e}")))?;
    let mut served: Vec<String> = list.data.into_iter().map(|m| m.id).collect();
    served.sort();
    served.dedup();
    if served.contains(&request.model) {
        Ok(served)
    } else {
        Err(ProbeFailure::ModelNotServed { model: request.model.clone(), served })
    }
}

fn client(request: &ProbeRequest) -> Result<reqwest::Client, ProbeFailure> {
    let bad = |what: String| ProbeFailure::BadResponse(what);
    let mut headers = HeaderMap::new();
    for (name, value) in &request.headers {
        let name = HeaderName::try_from(name.as_str()).map_err(|_| bad(format!("header name {name:?} is invalid")))?;
        let value =
            HeaderValue::try_from(value.as_str()).map_err(|_| bad(format!("header {name} has an invalid value")))?;
        headers.insert(name, value);
    }
    if let Some(key) = &request.api_key {
        let mut value = HeaderValue::try_from(format!("Bearer {}", key.trim()))
            .map_err(|_| bad("the API key holds characters a header cannot carry".to_owned()))?;
        value.set_sensitive(true);
        headers.insert(AUTHORIZATION, value);
    }
    let mut builder = reqwest::Client::builder().timeout(request.timeout).default_headers(headers);
    if let Some(pem) = &request.ca_pem {
        for certificate in reqwest::Certificate::from_pem_bundle(pem.as_bytes())
            .map_err(|e| bad(format!("the CA bundle does not parse: {e}")))?
        {
            builder = builder.add_root_certificate(certificate);
        }
    }
    builder.build().map_err(|e| ProbeFailure::Unreachable(error_chain(&e)))
}

/// An error and its causes, joined: reqwest's own message alone says only "error sending request".
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
