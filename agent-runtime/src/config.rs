//! Loading the RuntimeConfig file with errors that say which file and what is wrong.

use std::path::{Path, PathBuf};

use agent_crds::RuntimeConfig;
use agent_crds::runtime_config::RUNTIME_CONFIG_VERSION;

/// Why the config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a valid RuntimeConfig.
    #[error("{path} is not a valid RuntimeConfig: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The JSON error, with line and column.
        source: serde_json::Error,
    },
    /// The file was written for another runtime version.
    #[error("{path} has RuntimeConfig version {found}; this runtime reads version {RUNTIME_CONFIG_VERSION}")]
    Version {
        /// The file.
        path: PathBuf,
        /// The version found.
        found: u32,
    },
}

/// Reads and checks a RuntimeConfig JSON file.
pub fn load(path: &Path) -> Result<RuntimeConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
    let config: RuntimeConfig =
        serde_json::from_str(&text).map_err(|source| ConfigError::Parse { path: path.to_owned(), source })?;
    if config.version != RUNTIME_CONFIG_VERSION {
        return Err(ConfigError::Version { path: path.to_owned(), found: config.version });
    }
    Ok(config)
}
