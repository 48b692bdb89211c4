//! The runtime binary as a process, for tests that kill and restart it.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use agent_crds::RuntimeConfig;

use super::peers::free_port;
use super::{Upstream, config, temp_dir};

/// Starts the runtime binary on `config_file`, listening on `port`, with `extra` arguments and
/// `env` variables.
fn start(config_file: &std::path::Path, port: u16, extra: &[String], env: &[(String, String)]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_agent-runtime"))
        .args(["serve", "--config", config_file.to_str().unwrap(), "--addr", &format!("127.0.0.1:{port}")])
        .arg("--embedding-model-dir")
        .arg(crate::support::minilm_dir())
        .args(extra)
        .env("RUST_LOG", "warn")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// A runtime process serving an agent on `upstream`, with its config file and base URL.
pub struct Running {
    /// The process.
    pub child: Child,
    config_file: std::path::PathBuf,
    port: u16,
    extra: Vec<String>,
    env: Vec<(String, String)>,
    /// Its base URL.
    pub base: String,
    /// A client for it.
    pub client: reqwest::Client,
}

pub async fn run_agent(upstream: &Upstream, name: &str) -> Running {
    run_agent_with(upstream, name, "", |_| {}).await
}

/// The same for the Agent spec snippet `spec`, with `adjust` applied to the rendered config.
pub async fn run_agent_with(
    upstream: &Upstream,
    name: &str,
    spec: &str,
    adjust: impl FnOnce(&mut RuntimeConfig),
) -> Running {
    run_agent_args(upstream, name, spec, adjust, &[]).await
}

/// The same, with extra command-line arguments.
pub async fn run_agent_args(
    upstream: &Upstream,
    name: &str,
    spec: &str,
    adjust: impl FnOnce(&mut RuntimeConfig),
    extra: &[&str],
) -> Running {
    run_agent_env(upstream, name, spec, adjust, extra, &[]).await
}

/// The same, with environment variables.
pub async fn run_agent_env(
    upstream: &Upstream,
    name: &str,
    spec: &str,
    adjust: impl FnOnce(&mut RuntimeConfig),
    extra: &[&str],
    env: &[(&str, String)],
) -> Running {
    let extra: Vec<String> = extra.iter().map(|a| (*a).to_owned()).collect();
    let env: Vec<(String, String)> = env.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
    let dir = temp_dir(name);
    let config_file = dir.join("runtime-config.json");
    let mut config = config(&upstream.base_url(), spec, &dir.join("data"), "Chat");
    adjust(&mut config);
    std::fs::write(&config_file, serde_json::to_string(&config).unwrap()).unwrap();
    let port = free_port();
    agent_runtime::install_crypto_provider();
    let running = Running {
        child: start(&config_file, port, &extra, &env),
        config_file,
        port,
        extra,
        env,
        base: format!("http://127.0.0.1:{port}"),
        client: reqwest::Client::new(),
    };
    wait_ready(&running.client, &running.base).await;
    running
}

impl Running {
    /// Kills it with SIGKILL.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Starts the runtime again on the same config and data.
    pub async fn restart(&mut self) {
        self.child = start(&self.config_file, self.port, &self.extra, &self.env);
        wait_ready(&self.client, &self.base).await;
    }

    /// Changes its config file (it takes effect at the next start).
    pub fn rewrite_config(&self, adjust: impl FnOnce(&mut RuntimeConfig)) {
        let mut config: RuntimeConfig = serde_json::from_slice(&std::fs::read(&self.config_file).unwrap()).unwrap();
        adjust(&mut config);
        std::fs::write(&self.config_file, serde_json::to_string(&config).unwrap()).unwrap();
    }

    /// POSTs `body` as JSON to `path` and reads the JSON answer.
    pub async fn post_json(&self, path: &str, body: &serde_json::Value) -> serde_json::Value {
        self.client.post(format!("{}{path}", self.base)).json(body).send().await.unwrap().json().await.unwrap()
    }

    /// GETs `path` and reads the JSON answer.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        self.client.get(format!("{}{path}", self.base)).send().await.unwrap().json().await.unwrap()
    }
}

/// A test that ends (or fails) stops its runtime: no process outlives its test.
impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn wait_ready(client: &reqwest::Client, base: &str) {
    for _ in 0..200 {
        if client.get(format!("{base}/readyz")).send().await.is_ok_and(|r| r.status().is_success()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the runtime did not become ready");
}
