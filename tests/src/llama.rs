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
    /// When the install script fails, when the server exits before it is healthy (at once, with
    /// its stderr in the message: a build for the wrong CPU dies with SIGILL in its first second),
    /// or when it is not healthy within five minutes.
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// The same, with extra `llama-server` arguments (e.g. `--metrics`).
    ///
    /// # Panics
    /// As [`LlamaServer::start`].
    pub async fn start_with(args: &[&str]) -> Self {
        let install = Command::new("bash").arg(repo_root().join("scripts/install-llm.sh")).status().expect("bash runs");
        assert!(install.success(), "scripts/install-llm.sh failed");
        let port = free_port();
        let mut command = Command::new("bash");
        command.arg(repo_root().join("scripts/llama-server.sh")).args(["--port", &port.to_string()]).args(args);
        Self::launch(command, port).await
    }

    /// Runs `command` (a server that will listen on `port`) and waits until `/health` answers.
    async fn launch(mut command: Command, port: u16) -> Self {
        let stderr_path = std::env::temp_dir().join(format!("llama-server-{port}-{}.stderr", std::process::id()));
        let stderr = std::fs::File::create(&stderr_path).expect("create the server's stderr file");
        let child = command.stdout(Stdio::null()).stderr(stderr).spawn().expect("the llama-server command starts");
        let mut server = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(300);
        let url = format!("http://127.0.0.1:{port}/health");
        while Instant::now() < deadline {
            if http_status(&url).await == Some(200) {
                let _ = std::fs::remove_file(&stderr_path);
                return server;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                let output = std::fs::read_to_string(&stderr_path).unwrap_or_default();
                let _ = std::fs::remove_file(&stderr_path);
                panic!("llama-server exited before it was healthy ({status}); its stderr:\n{}", tail(&output, 40));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!(
            "llama-server did not become healthy on port {port} within 5 minutes; its stderr is in {}",
            stderr_path.display()
        );
    }

    /// The all-MiniLM-L6-v2 folder `scripts/install-llm.sh` installed beside the model.
    ///
    /// # Panics
    /// When the install script's env file is missing or names no `MINILM_DIR`.
    pub fn minilm_dir() -> std::path::PathBuf {
        installed("MINILM_DIR")
    }

    /// The Gemma 3 270M GGUF file `scripts/install-llm.sh` installed (llama-server serves it).
    ///
    /// # Panics
    /// When the install script fails or its env file names no `GEMMA_GGUF`.
    pub fn gemma_gguf() -> std::path::PathBuf {
        let install = Command::new("bash").arg(repo_root().join("scripts/install-llm.sh")).status().expect("bash runs");
        assert!(install.success(), "scripts/install-llm.sh failed");
        installed("GEMMA_GGUF")
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

/// A path the install script's env file names as `variable`.
fn installed(variable: &str) -> std::path::PathBuf {
    let llm_dir = std::env::var_os("AGENT_LLM_DIR").map_or_else(
        || std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/agent-operator/llm"),
        std::path::PathBuf::from,
    );
    let env = std::fs::read_to_string(llm_dir.join("env")).expect("scripts/install-llm.sh wrote its env file");
    let prefix = format!("{variable}=");
    let value = env
        .lines()
        .find_map(|line| line.trim().trim_start_matches("export ").strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("the env file names no {variable}"));
    std::path::PathBuf::from(value.trim().trim_matches(['"', '\'']))
}

/// The last `lines` lines of `text`.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    #[should_panic(expected = "invalid opcode in libggml-cpu")]
    async fn a_server_that_dies_at_start_fails_at_once_with_its_stderr() {
        let mut command = Command::new("bash");
        command.args(["-c", "echo 'invalid opcode in libggml-cpu' >&2; kill -ILL $$"]);
        let started = Instant::now();
        let outcome = tokio::spawn(LlamaServer::launch(command, free_port())).await;
        assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
        std::panic::resume_unwind(outcome.err().expect("launch panics").into_panic());
    }
}
