//! The LiteLLM proxy as the peer target: its config routing `bench-model` to the upstream, its
//! command line with telemetry and remote fetches off, and its version.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The readiness endpoint of the LiteLLM proxy.
pub const READY_PATH: &str = "/health/readiness";

/// Writes the proxy config routing `bench-model` to the OpenAI-compatible upstream into `dir`.
pub fn write_config(dir: &Path, upstream: SocketAddr) -> std::io::Result<PathBuf> {
    let path = dir.join("litellm.yaml");
    let config = format!(
        "\
model_list:
  - model_name: bench-model
    litellm_params:
      model: openai/bench-model
      api_base: http://{upstream}/v1
      api_key: dummy
litellm_settings:
  set_verbose: false
  telemetry: false
general_settings:
  disable_spend_logs: true
  disable_error_logs: true
"
    );
    std::fs::write(&path, config)?;
    std::fs::write(dir.join(LOG_CONFIG), LOG_CONFIG_JSON)?;
    Ok(path)
}

/// The uvicorn logging config file, next to the proxy config.
const LOG_CONFIG: &str = "litellm-log.json";

/// Warnings and errors only: uvicorn's access log writes a line per request otherwise.
const LOG_CONFIG_JSON: &str = r#"{
  "version": 1,
  "disable_existing_loggers": false,
  "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
  "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"}},
  "loggers": {
    "uvicorn": {"handlers": ["stderr"], "level": "WARNING", "propagate": false},
    "uvicorn.error": {"level": "WARNING"},
    "uvicorn.access": {"handlers": ["stderr"], "level": "WARNING", "propagate": false}
  }
}
"#;

/// The environment that keeps the proxy off the network and quiet; listed in the report.
pub const ENV: &[(&str, &str)] = &[
    // Without these, startup retries downloads from GitHub for seconds (there is no internet here,
    // and a benchmark should not depend on it anyway).
    ("LITELLM_LOCAL_MODEL_COST_MAP", "True"),
    ("LITELLM_LOCAL_BLOG_POSTS", "True"),
    ("LITELLM_LOCAL_POLICY_TEMPLATES", "True"),
    ("LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS", "True"),
    ("LITELLM_LOCAL_AUTOROUTER_PRESETS", "True"),
    ("LITELLM_LOG", "ERROR"),
    ("LITELLM_DONT_SHOW_FEEDBACK_BOX", "true"),
];

/// The proxy's command-line flags after `--config`, `--host` and `--port` (and before `--log_config`,
/// which silences the access log).
pub const FLAGS: &[&str] = &["--num_workers", "1", "--telemetry", "False"];

/// `litellm --config <config> --port <port>` with [`FLAGS`] and [`ENV`]; `config` is from [`write_config`].
pub fn command(binary: &Path, config: &Path, port: u16) -> Command {
    let mut command = Command::new(binary);
    command.arg("--config").arg(config).args(["--host", "127.0.0.1", "--port", &port.to_string()]).args(FLAGS);
    command.arg("--log_config").arg(config.with_file_name(LOG_CONFIG));
    command.envs(ENV.iter().copied());
    command
}

/// The flags as the report lists them, the log config by its role.
pub fn reported_flags() -> Vec<String> {
    let mut flags: Vec<String> = FLAGS.iter().map(|f| (*f).to_owned()).collect();
    flags.extend(["--log_config".to_owned(), format!("{LOG_CONFIG} (uvicorn access log off)")]);
    flags
}

/// The installed LiteLLM version, read by the venv's Python next to `binary`.
pub fn version(binary: &Path) -> Option<String> {
    let python = binary.with_file_name("python");
    let output = Command::new(python)
        .args(["-c", "import importlib.metadata as m; print(m.version('litellm'))"])
        .output()
        .ok()?;
    output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}
