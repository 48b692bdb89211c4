//! The `http_get` tool: fetches a URL for the model through the runtime's safe fetcher. Only
//! URLs under the configured prefixes when there are any; private, loopback and link-local
//! addresses only when a prefix names them.

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::{Tool, ToolError};
use crate::fetch::{FetchError, Fetcher};
use crate::openai::FunctionSpec;

/// Largest body returned to the model.
const MAX_BODY: usize = 64 * 1024;

/// Fetches URLs from an allowlist.
pub struct HttpGet {
    allowed: Vec<String>,
    fetcher: Fetcher,
}

impl HttpGet {
    /// A tool limited to `allowed` URL prefixes (any public URL when empty), fetching with
    /// `fetcher` (whose policy says the same).
    pub fn new(allowed: Vec<String>, fetcher: Fetcher) -> Self {
        Self { allowed, fetcher }
    }

    async fn fetch(&self, url: &str) -> Result<String, ToolError> {
        let fetched = self.fetcher.get(url, MAX_BODY).await.map_err(|error| match error {
            FetchError::InvalidUrl { .. } => ToolError::BadArguments(error.to_string()),
            FetchError::Refused(why) => ToolError::Refused(why),
            other => ToolError::Failed(other.to_string()),
        })?;
        let mut text = String::from_utf8_lossy(&fetched.bytes).into_owned();
        if fetched.truncated {
            text.push_str("\n[truncated]");
        }
        Ok(format!("HTTP {}\n{text}", fetched.status))
    }
}

impl Tool for HttpGet {
    fn spec(&self) -> FunctionSpec {
        let scope = if self.allowed.is_empty() { "any public URL".to_owned() } else { self.allowed.join(", ") };
        FunctionSpec {
            name: "http_get".into(),
            description: format!("Fetch a web page or API response by URL (allowed: {scope})."),
            parameters: json!({"type": "object", "properties": {"url": {"type": "string", "description": "Absolute http(s) URL"}}, "required": ["url"]}),
        }
    }

    fn call(&self, arguments: Value) -> BoxFuture<'_, Result<String, ToolError>> {
        async move {
            let url = arguments
                .get("url")
                .and_then(Value::as_str)
                .ok_or_else(|| ToolError::BadArguments("needs a url string".into()))?;
            self.fetch(url).await
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::fetch::FetchPolicy;

    fn tool(allowed: &[&str]) -> HttpGet {
        let allowed: Vec<String> = allowed.iter().map(|s| (*s).to_owned()).collect();
        HttpGet::new(allowed.clone(), Fetcher::new(FetchPolicy::only(allowed), Duration::from_secs(2)).unwrap())
    }

    #[tokio::test]
    async fn loopback_is_refused_unless_listed_and_unlisted_prefixes_are_refused() {
        let error = tool(&[]).fetch("http://127.0.0.1:9/").await.unwrap_err();
        assert!(matches!(error, ToolError::Refused(ref why) if why.contains("internal address")), "{error}");
        let listed = tool(&["https://docs.example.com/"]);
        let error = listed.fetch("https://evil.example.com/").await.unwrap_err();
        assert!(matches!(error, ToolError::Refused(ref why) if why.contains("not under an allowed prefix")), "{error}");
        let error = listed.fetch("file:///etc/passwd").await.unwrap_err();
        assert!(matches!(error, ToolError::Refused(_)), "{error}");
    }
}
