//! The one way the runtime fetches a URL on a user's or a model's behalf (document ingestion,
//! recipe sources, `http_get`, HTTP and agent tools): http(s) only, no loopback, private,
//! link-local or metadata addresses unless an allowed prefix names the host, redirects checked
//! hop by hop, bodies read up to a limit. The check is in the DNS resolver the client connects
//! through, so a name that resolves to a public address at check time cannot connect to an
//! internal one (DNS rebinding), and IP literals are checked before the request.

use std::collections::HashSet;
use std::error::Error as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::{Url, header};

use crate::error::error_chain;

/// Redirects followed before giving up.
const MAX_REDIRECTS: usize = 5;

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The text is not an absolute http(s) URL.
    #[error("{url:?} is not an http(s) URL: {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The URL is not allowed (internal address, outside the allowed prefixes).
    #[error("refused: {0}")]
    Refused(String),
    /// The server could not be reached or the transfer failed.
    #[error("cannot fetch {url}: {reason}")]
    Failed {
        /// The URL.
        url: String,
        /// What went wrong, with its causes.
        reason: String,
    },
    /// The server answered with an error status.
    #[error("fetching {url} answered {status}")]
    Status {
        /// The URL.
        url: String,
        /// The HTTP status.
        status: u16,
    },
    /// The body is larger than the limit.
    #[error("{url} has {bytes} bytes or more; the limit is {limit}")]
    TooLarge {
        /// The URL.
        url: String,
        /// Bytes announced or read so far.
        bytes: u64,
        /// The limit.
        limit: usize,
    },
    /// The HTTP client could not be built (TLS setup).
    #[error("cannot build an HTTP client: {0}")]
    Client(String),
}

/// A fetched response.
#[derive(Debug)]
pub struct Fetched {
    /// HTTP status.
    pub status: u16,
    /// Its `Content-Type`.
    pub content_type: Option<String>,
    /// The body, up to the limit.
    pub bytes: Vec<u8>,
    /// Whether the body was longer than the limit (and cut).
    pub truncated: bool,
}

/// Which URLs a fetcher may reach.
#[derive(Clone, Debug, Default)]
pub struct FetchPolicy {
    /// URL prefixes allowed even when their host is internal.
    pub allowed: Vec<String>,
    /// Only URLs under `allowed` (when it is not empty); otherwise any public URL as well.
    pub only_allowed: bool,
}

impl FetchPolicy {
    /// Any public URL, plus the internal hosts of `allowed`.
    pub fn public_and(allowed: Vec<String>) -> Self {
        Self { allowed, only_allowed: false }
    }

    /// Only the URLs under `allowed` (any public URL when it is empty).
    pub fn only(allowed: Vec<String>) -> Self {
        Self { allowed, only_allowed: true }
    }

    fn listed(&self, url: &str) -> bool {
        self.allowed.iter().any(|prefix| url.starts_with(prefix.as_str()))
    }

    /// Checks what can be checked without resolving: scheme, prefixes, internal IP literals.
    fn check(&self, url: &Url) -> Result<(), FetchError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(FetchError::Refused(format!("only http and https URLs, not {}", url.scheme())));
        }
        let listed = self.listed(url.as_str());
        if self.only_allowed && !self.allowed.is_empty() && !listed {
            return Err(FetchError::Refused(format!(
                "{url} is not under an allowed prefix: {}",
                self.allowed.join(", ")
            )));
        }
        let literal = url.host_str().and_then(|host| host.trim_matches(['[', ']']).parse::<IpAddr>().ok());
        if let Some(ip) = literal.filter(|ip| is_internal(*ip))
            && !listed
        {
            return Err(FetchError::Refused(format!("{url} is the internal address {ip}")));
        }
        Ok(())
    }
}

/// Fetches URLs under a [`FetchPolicy`].
#[derive(Clone)]
pub struct Fetcher {
    policy: Arc<FetchPolicy>,
    client: reqwest::Client,
}

impl Fetcher {
    /// A fetcher following `policy`, each request bounded by `timeout`.
    pub fn new(policy: FetchPolicy, timeout: Duration) -> Result<Self, FetchError> {
        crate::install_crypto_provider();
        let policy = Arc::new(policy);
        let internal_hosts: HashSet<String> = policy
            .allowed
            .iter()
            .filter_map(|prefix| Url::parse(prefix).ok()?.host_str().map(|h| h.trim_matches(['[', ']']).to_owned()))
            .collect();
        let checked = policy.clone();
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
            }
            match checked.check(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(error) => attempt.error(error.to_string()),
            }
        });
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(redirects)
            .dns_resolver(GuardedResolver { internal_hosts: Arc::new(internal_hosts) })
            .build()
            .map_err(|e| FetchError::Client(error_chain(&e)))?;
        Ok(Self { policy, client })
    }

    /// GETs `url`, reading at most `limit` bytes of its body.
    pub async fn get(&self, url: &str, limit: usize) -> Result<Fetched, FetchError> {
        let parsed = self.parse(url)?;
        self.send(url, self.client.get(parsed), limit).await
    }

    /// POSTs `body` as JSON to `url`, reading at most `limit` bytes of the answer.
    pub async fn post_json(&self, url: &str, body: &serde_json::Value, limit: usize) -> Result<Fetched, FetchError> {
        self.post_json_with(url, body, &[], limit).await
    }

    /// The same with extra request headers (a bearer token, a protocol version).
    pub async fn post_json_with(
        &self,
        url: &str,
        body: &serde_json::Value,
        headers: &[(&str, String)],
        limit: usize,
    ) -> Result<Fetched, FetchError> {
        let parsed = self.parse(url)?;
        let mut request = self.client.post(parsed).json(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        self.send(url, request, limit).await
    }

    fn parse(&self, url: &str) -> Result<Url, FetchError> {
        let parsed =
            Url::parse(url).map_err(|e| FetchError::InvalidUrl { url: url.to_owned(), reason: e.to_string() })?;
        self.policy.check(&parsed)?;
        if parsed.host_str().is_none() {
            return Err(FetchError::InvalidUrl { url: url.to_owned(), reason: "no host".into() });
        }
        Ok(parsed)
    }

    async fn send(&self, url: &str, request: reqwest::RequestBuilder, limit: usize) -> Result<Fetched, FetchError> {
        let failed = |error: reqwest::Error| classify(url, &error);
        let (client, request) = request.build_split();
        let mut request = request.map_err(failed)?;
        agent_telemetry::propagation::inject_current(request.headers_mut());
        let mut response = client.execute(request).await.map_err(failed)?;
        let status = response.status().as_u16();
        let content_type =
            response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let mut bytes = Vec::new();
        let mut truncated = false;
        // Read in chunks and stop at the limit: a server may send more than it announced.
        while let Some(chunk) = response.chunk().await.map_err(failed)? {
            let room = limit - bytes.len();
            if chunk.len() > room {
                bytes.extend_from_slice(&chunk[..room]);
                truncated = true;
                break;
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(Fetched { status, content_type, bytes, truncated })
    }

    /// GETs a whole document: an error status or a body over `limit` is an error.
    pub async fn document(&self, url: &str, limit: usize) -> Result<Fetched, FetchError> {
        let fetched = self.get(url, limit).await?;
        if !(200..300).contains(&fetched.status) {
            return Err(FetchError::Status { url: url.to_owned(), status: fetched.status });
        }
        if fetched.truncated {
            return Err(FetchError::TooLarge { url: url.to_owned(), bytes: limit as u64 + 1, limit });
        }
        Ok(fetched)
    }
}

/// A refusal by the resolver, recognised again in the client's error chain.
#[derive(Debug, thiserror::Error)]
#[error("{host} resolves to the internal address {ip}")]
struct InternalAddress {
    host: String,
    ip: IpAddr,
}

fn classify(url: &str, error: &reqwest::Error) -> FetchError {
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(internal) = cause.downcast_ref::<InternalAddress>() {
            return FetchError::Refused(internal.to_string());
        }
        source = cause.source();
    }
    if error.is_redirect() {
        return FetchError::Refused(error_chain(error));
    }
    FetchError::Failed { url: url.to_owned(), reason: error_chain(error) }
}

/// Resolves names, refusing internal addresses for hosts not named by an allowed prefix.
struct GuardedResolver {
    internal_hosts: Arc<HashSet<String>>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let hosts = self.internal_hosts.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if !hosts.contains(&host)
                && let Some(internal) = addresses.iter().find(|a| is_internal(a.ip()))
            {
                return Err(Box::new(InternalAddress { host, ip: internal.ip() }) as Box<_>);
            }
            Ok(Box::new(addresses.into_iter()) as Addrs)
        })
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

#[cfg(test)]
mod tests;
