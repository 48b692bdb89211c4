//! A real llama.cpp `llama-server` serving Gemma 3 270M on a free loopback port, installed by
//! `scripts/install-llm.sh` (cached) and started with `scripts/llama-server.sh`.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::repo_root;

/// A running llama-server; killed on drop.
pub struct LlamaServer {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl LlamaServer {
    /// Installs (if needed) and starts the server, and waits until `/health` answers.
    ///
    /// # Panics
    /// When the install script fails or the server is not healthy within five minutes.
    pub async fn start() -> Self {
        let install = Command::new("bash").arg(repo_root().join("scripts/install-llm.sh")).status().expect("bash runs");
        assert!(install.success(), "scripts/install-llm.sh failed");
        let port = free_port();
        let child = Command::new("bash")
            .arg(repo_root().join("scripts/llama-server.sh"))
            .args(["--port", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("llama-server.sh starts");
        let server = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(300);
        let url = format!("http://127.0.0.1:{port}/health");
        while Instant::now() < deadline {
            if http_status(&url).await == Some(200) {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!("llama-server did not become healthy on port {port}");
    }

    /// The all-MiniLM-L6-v2 folder `scripts/install-llm.sh` installed beside the model.
    ///
    /// # Panics
    /// When the install script's env file is missing or names no `MINILM_DIR`.
    pub fn minilm_dir() -> std::path::PathBuf {
        let llm_dir = std::env::var_os("AGENT_LLM_DIR").map_or_else(
            || std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/agent-operator/llm"),
            std::path::PathBuf::from,
        );
        let env = std::fs::read_to_string(llm_dir.join("env")).expect("scripts/install-llm.sh wrote its env file");
        let dir = env
            .lines()
            .find_map(|line| line.trim().trim_start_matches("export ").strip_prefix("MINILM_DIR="))
            .expect("the env file names MINILM_DIR");
        std::path::PathBuf::from(dir.trim().trim_matches(['"', '\'']))
    }

    /// Its OpenAI base URL.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nobody listens on right now.
///
/// # Panics
/// When no loopback port can be bound.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback").local_addr().expect("local address").port()
}

async fn http_status(url: &str) -> Option<u16> {
    let (host, path) = url.strip_prefix("http://")?.split_once('/')?;
    let mut stream = tokio::net::TcpStream::connect(host).await.ok()?;
    let request = format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    tokio::io::AsyncWriteExt::write_all(&mut stream, request.as_bytes()).await.ok()?;
    let mut response = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut response).await.ok()?;
    String::from_utf8_lossy(&response).split_whitespace().nth(1)?.parse().ok()
}
