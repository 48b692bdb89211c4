//! The `http_get` tool: fetches a URL for the model. Only URLs under the configured prefixes
//! when there are any; private, loopback and link-local addresses only when explicitly listed.
//! The resolved address is pinned for the request, so DNS cannot swap in another one.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::{Tool, ToolError};
use crate::openai::FunctionSpec;

/// Largest body returned to the model.
const MAX_BODY: usize = 64 * 1024;

/// Fetches URLs from an allowlist.
pub struct HttpGet {
    allowed: Vec<String>,
    timeout: Duration,
}

impl HttpGet {
    /// A fetcher limited to `allowed` URL prefixes (any public URL when empty).
    pub fn new(allowed: Vec<String>, timeout: Duration) -> Self {
        Self { allowed, timeout }
    }

    fn explicitly_allowed(&self, url: &str) -> bool {
        self.allowed.iter().any(|prefix| url.starts_with(prefix.as_str()))
    }

    async fn fetch(&self, url: &str) -> Result<String, ToolError> {
        let parsed =
            reqwest::Url::parse(url).map_err(|e| ToolError::BadArguments(format!("{url:?} is not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ToolError::Refused(format!("only http and https URLs, not {}", parsed.scheme())));
        }
        let listed = self.explicitly_allowed(url);
        if !self.allowed.is_empty() && !listed {
            return Err(ToolError::Refused(format!(
                "{url} is not under an allowed prefix: {}",
                self.allowed.join(", ")
            )));
        }
        let host = parsed.host_str().ok_or_else(|| ToolError::BadArguments(format!("{url} has no host")))?.to_owned();
        let port = parsed.port_or_known_default().unwrap_or(80);
        let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host.trim_matches(['[', ']']), port))
            .await
            .map_err(|e| ToolError::Failed(format!("cannot resolve {host}: {e}")))?
            .collect();
        let address = *addresses.first().ok_or_else(|| ToolError::Failed(format!("{host} has no address")))?;
        if let Some(private) = addresses.iter().find(|a| is_internal(a.ip()))
            && !listed
        {
            return Err(ToolError::Refused(format!("{host} resolves to the internal address {}", private.ip())));
        }
        let client = reqwest::Client::builder()
            .resolve(&host, address)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(self.timeout)
            .build()
            .map_err(|e| ToolError::Failed(e.to_string()))?;
        let response = client.get(parsed).send().await.map_err(|e| ToolError::Failed(e.to_string()))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| ToolError::Failed(e.to_string()))?;
        let mut text = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_BODY)]).into_owned();
        if bytes.len() > MAX_BODY {
            text.push_str("\n[truncated]");
        }
        Ok(format!("HTTP {}\n{text}", status.as_u16()))
    }
}

/// Loopback, private (RFC 1918, unique-local), link-local, unspecified, CGNAT and metadata addresses.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || (v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64)
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
                || v6.to_ipv4_mapped().is_some_and(|v4| is_internal(IpAddr::V4(v4)))
        }
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
    use super::*;

    #[test]
    fn internal_addresses_are_recognised() {
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "172.16.5.4",
            "169.254.169.254",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "0.0.0.0",
        ] {
            assert!(is_internal(internal.parse().unwrap()), "{internal}");
        }
        for public in ["1.1.1.1", "8.8.8.8", "2606:4700::1111"] {
            assert!(!is_internal(public.parse().unwrap()), "{public}");
        }
    }

    #[tokio::test]
    async fn loopback_is_refused_unless_listed_and_unlisted_prefixes_are_refused() {
        let open = HttpGet::new(Vec::new(), Duration::from_secs(2));
        let error = open.fetch("http://127.0.0.1:9/").await.unwrap_err();
        assert!(matches!(error, ToolError::Refused(ref why) if why.contains("internal address")), "{error}");
        let listed = HttpGet::new(vec!["https://docs.example.com/".into()], Duration::from_secs(2));
        let error = listed.fetch("https://evil.example.com/").await.unwrap_err();
        assert!(matches!(error, ToolError::Refused(ref why) if why.contains("not under an allowed prefix")), "{error}");
        let error = listed.fetch("file:///etc/passwd").await.unwrap_err();
        assert!(matches!(error, ToolError::Refused(_)), "{error}");
    }
}
