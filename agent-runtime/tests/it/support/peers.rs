//! Real protocol peers in the peers venv (scripts/install-peers.sh): an MCP server from the
//! official MCP Python SDK, started and killed by the tests.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The repository's root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The peers venv's python (MCP SDK, a2a-sdk 1.x); panics with the command that installs it.
pub fn peer_python() -> PathBuf {
    venv_python("peers")
}

/// The python of the venv with a2a-sdk 0.3.
pub fn peer03_python() -> PathBuf {
    venv_python("peers03")
}

fn venv_python(venv: &str) -> PathBuf {
    let tools = std::env::var_os("AGENT_TOOLS_DIR").map_or_else(
        || PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/agent-operator/tools"),
        PathBuf::from,
    );
    let python = tools.join(venv).join("bin/python");
    assert!(python.exists(), "no peers venv at {}: run `bash scripts/install-peers.sh` first", python.display());
    python
}

/// A free loopback port (bound then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The official SDK's MCP server (`tests/python/mcp_server.py`): streamable HTTP at
/// `http://127.0.0.1:{port}/mcp`, HTTP+SSE at `http://127.0.0.1:{sse_port}/sse`.
pub struct McpPeer {
    /// Streamable HTTP port.
    pub port: u16,
    /// HTTP+SSE port.
    pub sse_port: u16,
    token: String,
    tls: Option<(PathBuf, PathBuf)>,
    child: Option<Child>,
}

impl McpPeer {
    /// A server requiring bearer `token`, on free ports, not started yet.
    pub fn new(token: &str) -> Self {
        Self { port: free_port(), sse_port: free_port(), token: token.into(), tls: None, child: None }
    }

    /// The same, serving streamable HTTP over TLS with this certificate chain and key.
    pub fn with_tls(token: &str, certificate: PathBuf, key: PathBuf) -> Self {
        let mut peer = Self::new(token);
        peer.tls = Some((certificate, key));
        peer
    }

    /// Starts it and waits until both ports accept connections.
    pub fn start(&mut self) {
        let script = repo_root().join("tests/python/mcp_server.py");
        let mut command = Command::new(peer_python());
        command.arg(script).args([
            "--port",
            &self.port.to_string(),
            "--sse-port",
            &self.sse_port.to_string(),
            "--token",
            &self.token,
        ]);
        if let Some((certificate, key)) = &self.tls {
            command.arg("--certfile").arg(certificate).arg("--keyfile").arg(key);
        }
        let child = command.stdout(Stdio::null()).stderr(Stdio::inherit()).spawn().unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        for port in [self.port, self.sse_port] {
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                let exited = self.child.as_mut().unwrap().try_wait().unwrap();
                assert!(exited.is_none(), "the MCP server exited at start: {exited:?}");
                assert!(Instant::now() < deadline, "the MCP server did not listen on {port} within 30 s");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// Kills it (SIGKILL) and waits for it to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }

    /// The streamable HTTP endpoint.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.port)
    }

    /// The streamable HTTP endpoint over TLS.
    pub fn https_url(&self) -> String {
        format!("https://127.0.0.1:{}/mcp", self.port)
    }

    /// The HTTP+SSE event stream.
    pub fn sse_url(&self) -> String {
        format!("http://127.0.0.1:{}/sse", self.sse_port)
    }
}

impl Drop for McpPeer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `check` every 50 ms until it holds, failing after `seconds` with `what`.
pub async fn eventually<F, Fut>(seconds: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while !check().await {
        assert!(Instant::now() < deadline, "not within {seconds} s: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A throwaway CA and a certificate it signed for 127.0.0.1 (openssl): the CA's PEM, and the
/// server's certificate and key files.
pub fn test_ca(dir: &std::path::Path) -> (String, PathBuf, PathBuf) {
    let openssl = |args: &[&str]| {
        let output = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl runs");
        assert!(output.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    };
    let subject = |cn: &str| format!("/CN={cn}");
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "1",
        "-subj",
        &subject("test-ca"),
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        &subject("127.0.0.1"),
    ]);
    std::fs::write(dir.join("san.cnf"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "1",
        "-extfile",
        "san.cnf",
    ]);
    (std::fs::read_to_string(dir.join("ca.crt")).unwrap(), dir.join("server.crt"), dir.join("server.key"))
}
