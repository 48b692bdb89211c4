//! The Portkey AI gateway as a target: its Node command line and the headers that route each
//! request to the upstream (Portkey keeps no model list; every request names its provider and host).
//!
//! Measured as shipped: its stream reader waits 25 ms before passing on the first event of every
//! streamed answer (`readStream` in its `src/handlers/streamHandler.ts`), which shows in its
//! streamed rows and not in its whole ones.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use hyper::header::{HeaderName, HeaderValue};

/// The gateway's root answers 200 ("AI Gateway says hey!") once it listens; it has no readiness
/// endpoint of its own.
pub const READY_PATH: &str = "/";

/// The gateway's flags after `--port=<port>` (the only form of the port flag it reads).
/// `--headless` leaves out the web console and its live log stream, which a production gateway
/// does not serve either.
pub const FLAGS: &[&str] = &["--headless"];

/// The gateway's entry point inside its npm package.
const ENTRY: &str = "build/start-server.js";

/// The npm package directory of the gateway, as `scripts/bench-runtime.sh` installs it.
pub fn default_package() -> PathBuf {
    PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
        .join(".cache/agent-operator/bench-portkey/node_modules/@portkey-ai/gateway")
}

/// Whether `package` holds the gateway's entry point.
pub fn is_installed(package: &Path) -> bool {
    package.join(ENTRY).is_file()
}

/// `node <package>/build/start-server.js --port=<port>` with [`FLAGS`].
pub fn command(node: &Path, package: &Path, port: u16) -> Command {
    let mut command = Command::new(node);
    command.arg(package.join(ENTRY)).arg(format!("--port={port}")).args(FLAGS);
    command
}

/// The headers that send a request through Portkey's OpenAI provider to `upstream` instead of
/// OpenAI: the custom host is the upstream's API base, `/v1` included. Portkey lets loopback hosts
/// through its custom-host check by default (`TRUSTED_CUSTOM_HOSTS`).
pub fn headers(upstream: SocketAddr) -> Vec<(HeaderName, HeaderValue)> {
    let custom_host = HeaderValue::try_from(format!("http://{upstream}/v1")).expect("an address is a header value");
    vec![
        (HeaderName::from_static("x-portkey-provider"), HeaderValue::from_static("openai")),
        (HeaderName::from_static("x-portkey-custom-host"), custom_host),
    ]
}

/// The flags as the report lists them, with the routing headers the load generator sends.
pub fn reported_flags() -> Vec<String> {
    let mut flags: Vec<String> = FLAGS.iter().map(|f| (*f).to_owned()).collect();
    flags.push("(headers x-portkey-provider: openai, x-portkey-custom-host: http://<upstream>/v1)".to_owned());
    flags
}

/// The installed gateway's version, from its `package.json`.
pub fn version(package: &Path) -> Option<String> {
    let text = std::fs::read_to_string(package.join("package.json")).ok()?;
    let manifest: serde_json::Value = serde_json::from_str(&text).ok()?;
    manifest.get("version")?.as_str().map(str::to_owned)
}

/// The version of `node`, e.g. `v20.19.2`.
pub fn node_version(node: &Path) -> Option<String> {
    let output = Command::new(node).arg("--version").output().ok()?;
    output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}
