//! The agent runtime as a target: its RuntimeConfig rendered by the project's own renderer from an
//! Agent and a Model pointing at the upstream, and its `serve` command line.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use agent_crds::render::{ResolvedReferences, render_runtime_config};
use agent_crds::runtime_config::PodPaths;
use agent_crds::{Agent, Model};
use serde::Deserialize as _;

/// The agent's name, which is also the `model` clients ask the runtime for.
pub const AGENT: &str = "bench-agent";

/// The Agent and Model the runtime serves; `{upstream}` is the upstream's address.
const MANIFESTS: &str = r"
apiVersion: agent-operator.dev/v1alpha1
kind: Model
metadata:
  name: bench-model
  namespace: bench
spec:
  endpoint:
    baseUrl: http://{upstream}/v1
    model: bench-model
---
apiVersion: agent-operator.dev/v1alpha1
kind: Agent
metadata:
  name: bench-agent
  namespace: bench
spec:
  model:
    modelRef:
      name: bench-model
";

/// Why the config could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The manifests do not parse.
    #[error("the bench's Agent/Model YAML does not parse: {0}")]
    Yaml(#[from] serde_yaml::Error),
    /// The renderer refused them.
    #[error("render_runtime_config failed: {0}")]
    Render(#[from] agent_crds::RenderError),
    /// The file could not be written.
    #[error("cannot write the RuntimeConfig: {0}")]
    Io(#[from] std::io::Error),
}

/// Renders the RuntimeConfig for an agent on `upstream` into `dir` (also its data and secrets dir).
pub fn write_config(dir: &Path, upstream: SocketAddr) -> Result<PathBuf, ConfigError> {
    let manifests = MANIFESTS.replace("{upstream}", &upstream.to_string());
    let mut documents = serde_yaml::Deserializer::from_str(&manifests);
    let model = Model::deserialize(documents.next().expect("the manifests hold a Model"))?;
    let agent = Agent::deserialize(documents.next().expect("the manifests hold an Agent"))?;
    let data_dir = dir.join("data");
    std::fs::create_dir_all(&data_dir)?;
    let paths =
        PodPaths { data_dir: data_dir.display().to_string(), secrets_dir: dir.join("secrets").display().to_string() };
    let refs = ResolvedReferences { model: Some(model), ..Default::default() };
    let config = render_runtime_config(&agent, &refs, &paths)?;
    let path = dir.join("runtime-config.json");
    std::fs::write(&path, serde_json::to_string(&config).expect("a RuntimeConfig serializes"))?;
    Ok(path)
}

/// `agent-runtime serve` on `port` with `config`.
pub fn command(binary: &Path, config: &Path, port: u16) -> Command {
    let mut command = Command::new(binary);
    command.arg("serve").arg("--config").arg(config).arg("--addr").arg(format!("127.0.0.1:{port}"));
    // The chat path alone, as the proxies it is compared with have no memory to recall from.
    command.arg("--without-knowledge");
    // Request logs at info would measure the terminal, not the runtime.
    command.env("RUST_LOG", "warn");
    command
}
