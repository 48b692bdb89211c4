//! The runtime's own, narrow access to the Kubernetes API, with its pod's ServiceAccount token:
//! it applies its Agent's status ([`status`]) and, for a delegating agent, creates, lists and
//! deletes its child Agents. Only those calls, so a plain HTTP client is enough; the token file
//! is read on every call since the kubelet rotates it.

pub mod demand;
pub mod status;

use std::path::PathBuf;
use std::time::Duration;

use agent_crds::runtime_config::ClusterAccess;
use reqwest::Method;
use serde_json::Value;

/// Field manager of what the runtime writes (the operator writes under its own).
pub const FIELD_MANAGER: &str = "agent-runtime";

/// Longest one API call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// Path of the Agents of `namespace`.
fn agents_path(namespace: &str) -> String {
    format!("/apis/agent-operator.dev/v1alpha1/namespaces/{namespace}/agents")
}

/// Why an API call failed.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// The client cannot be built (the CA file does not parse).
    #[error("Kubernetes API client: {0}")]
    Setup(String),
    /// The token cannot be read.
    #[error("cannot read the ServiceAccount token {0}: {1}")]
    Token(String, std::io::Error),
    /// The API server cannot be reached.
    #[error("the Kubernetes API is unreachable: {0}")]
    Unreachable(String),
    /// The API server refused the call; its message says why (an admission policy's message
    /// names the rule).
    #[error("the Kubernetes API answered {code} {reason}: {message}")]
    Refused {
        /// HTTP status.
        code: u16,
        /// The Status reason (`Forbidden`, `Invalid`, `AlreadyExists`, `NotFound`).
        reason: String,
        /// The Status message.
        message: String,
    },
}

impl KubeError {
    /// Whether the object was not found.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Refused { code: 404, .. })
    }
}

/// A client of the Kubernetes API.
#[derive(Clone)]
pub struct KubeApi {
    http: reqwest::Client,
    base: String,
    token_file: PathBuf,
}

impl KubeApi {
    /// A client for `access`; trusts the CA file when the API is reached over HTTPS.
    pub fn new(access: &ClusterAccess) -> Result<Self, KubeError> {
        crate::install_crypto_provider();
        let mut builder = reqwest::Client::builder().timeout(CALL_TIMEOUT);
        if access.api_url.starts_with("https://") {
            let pem = std::fs::read(&access.ca_file)
                .map_err(|e| KubeError::Setup(format!("cannot read the CA {}: {e}", access.ca_file)))?;
            let certificates = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| KubeError::Setup(format!("the CA {} does not parse: {e}", access.ca_file)))?;
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let http = builder.build().map_err(|e| KubeError::Setup(e.to_string()))?;
        Ok(Self {
            http,
            base: access.api_url.trim_end_matches('/').to_owned(),
            token_file: access.token_file.clone().into(),
        })
    }

    async fn call(&self, method: Method, path: &str, body: Option<(&str, &Value)>) -> Result<Value, KubeError> {
        let token = std::fs::read_to_string(&self.token_file)
            .map_err(|e| KubeError::Token(self.token_file.display().to_string(), e))?;
        let mut request = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(token.trim());
        if let Some((content_type, body)) = body {
            request = request.header("content-type", content_type).body(body.to_string());
        }
        let response = request.send().await.map_err(|e| KubeError::Unreachable(e.to_string()))?;
        let code = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if (200..300).contains(&code) {
            return Ok(body);
        }
        let text = |key: &str| body.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
        Err(KubeError::Refused { code, reason: text("reason"), message: text("message") })
    }

    /// Applies `status` (server-side apply, field manager [`FIELD_MANAGER`]) to the Agent's
    /// status subresource: only the fields in it become the runtime's.
    pub async fn apply_agent_status(&self, namespace: &str, name: &str, status: &Value) -> Result<(), KubeError> {
        let body = serde_json::json!({
            "apiVersion": "agent-operator.dev/v1alpha1",
            "kind": "Agent",
            "metadata": {"name": name, "namespace": namespace},
            "status": status,
        });
        let path = format!("{}/{name}/status?fieldManager={FIELD_MANAGER}&force=true", agents_path(namespace));
        self.call(Method::PATCH, &path, Some(("application/apply-patch+yaml", &body))).await.map(drop)
    }

    /// Creates an Agent.
    pub async fn create_agent(&self, namespace: &str, agent: &Value) -> Result<Value, KubeError> {
        let path = format!("{}?fieldManager={FIELD_MANAGER}", agents_path(namespace));
        self.call(Method::POST, &path, Some(("application/json", agent))).await
    }

    /// The Agents of `namespace` carrying the label `key=value`.
    pub async fn list_agents(&self, namespace: &str, key: &str, value: &str) -> Result<Vec<Value>, KubeError> {
        let path = format!("{}?labelSelector={key}%3D{value}", agents_path(namespace));
        let list = self.call(Method::GET, &path, None).await?;
        Ok(list.get("items").and_then(Value::as_array).cloned().unwrap_or_default())
    }

    /// Deletes the Agent `name` (its owned objects go with it; its volume is the operator's to keep).
    pub async fn delete_agent(&self, namespace: &str, name: &str) -> Result<(), KubeError> {
        let path = format!("{}/{name}", agents_path(namespace));
        self.call(Method::DELETE, &path, None).await.map(drop)
    }
}
