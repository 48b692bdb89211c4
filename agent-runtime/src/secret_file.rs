//! Values read from mounted Secret files (API keys, bearer tokens, headers, a system prompt),
//! kept current so a rotated Secret takes effect without restarting the pod.
//!
//! Kubernetes updates a Secret volume in place (it writes a new `..<timestamp>` directory and
//! swaps the `..data` symlink), about a minute after the Secret changed. Each value is checked
//! when it is used, at most once per check interval: the file is read again (through the
//! symlinks) and compared with the value held. Reading on use rather than watching with inotify
//! needs no task to start or to forget (every way the runtime is built, tests and local children
//! included, reloads the same way), sees the `..data` swap and plain rewrites alike, and costs one
//! read of a small file per interval per value in use. Values only the MCP watcher holds (its
//! connection's headers) are checked at each of its pings instead.
//!
//! A file that disappears, cannot be read or turns empty keeps the last good value: a warning
//! is logged once, not on every use, and the agent never runs with an empty key.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use crate::metrics::Metrics;

/// How often a value in use is checked against its file by default. Kubernetes takes up to about
/// a minute to update the mounted file; this adds at most a few seconds to that.
pub const DEFAULT_CHECK_EVERY: Duration = Duration::from_secs(5);

/// Opens the Secret files of one runtime: how often they are checked, and where reloads are
/// counted (`agent_secret_reloads_total{file}`).
#[derive(Clone)]
pub struct SecretFiles {
    check_every: Duration,
    metrics: Arc<Metrics>,
}

impl Default for SecretFiles {
    /// Checked every [`DEFAULT_CHECK_EVERY`], reloads counted in metrics of their own (for
    /// callers outside a runtime: tools, benches, tests).
    fn default() -> Self {
        Self::new(DEFAULT_CHECK_EVERY, Arc::new(Metrics::default()))
    }
}

impl SecretFiles {
    /// Files checked every `check_every`, reloads counted in `metrics`.
    pub fn new(check_every: Duration, metrics: Arc<Metrics>) -> Self {
        Self { check_every, metrics }
    }

    /// The metrics reloads are counted in.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Reads the file `path` (surrounding whitespace trimmed) for the config field `field` (the
    /// metric label and the name in logs: bounded, and never the value). A file that cannot be
    /// read now is an error, so a runtime does not start without its Secrets.
    pub fn open(&self, field: impl Into<String>, path: impl Into<PathBuf>) -> std::io::Result<SecretFile> {
        let path = path.into();
        let value: Arc<str> = Arc::from(std::fs::read_to_string(&path)?.trim());
        Ok(SecretFile(Arc::new(Watched {
            field: field.into(),
            path,
            check_every: self.check_every,
            metrics: self.metrics.clone(),
            value: RwLock::new(value),
            check: Mutex::new(Check { due: Instant::now() + self.check_every, failing: false }),
        })))
    }
}

/// One Secret file's value, re-read when it is used and the last check is older than the check
/// interval. Clones share the value.
#[derive(Clone)]
pub struct SecretFile(Arc<Watched>);

struct Watched {
    field: String,
    path: PathBuf,
    check_every: Duration,
    metrics: Arc<Metrics>,
    value: RwLock<Arc<str>>,
    check: Mutex<Check>,
}

struct Check {
    /// When the file is read again.
    due: Instant,
    /// The last read failed (or found the file empty); warned once until it succeeds again.
    failing: bool,
}

impl std::fmt::Debug for SecretFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretFile").field("field", &self.0.field).field("path", &self.0.path).finish_non_exhaustive()
    }
}

impl SecretFile {
    /// The value now: the file is read again first when its check is due.
    pub fn current(&self) -> Arc<str> {
        // A use that finds another one checking takes the value held rather than waiting.
        if let Ok(mut check) = self.0.check.try_lock() {
            let now = Instant::now();
            if now >= check.due {
                check.due = now + self.0.check_every;
                self.reload(&mut check);
            }
        }
        self.held()
    }

    /// The file it reads.
    pub fn path(&self) -> &Path {
        &self.0.path
    }

    fn held(&self) -> Arc<str> {
        self.0.value.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn reload(&self, check: &mut Check) {
        let Watched { field, path, .. } = &*self.0;
        let read = std::fs::read_to_string(path).map_err(|e| e.to_string()).and_then(|text| {
            let value = text.trim();
            if value.is_empty() { Err("the file is empty".to_owned()) } else { Ok(Arc::<str>::from(value)) }
        });
        match read {
            Err(error) => {
                if !check.failing {
                    tracing::warn!(field, path = %path.display(), %error, "cannot reload a Secret file; keeping its last value");
                }
                check.failing = true;
            }
            Ok(value) => {
                if check.failing {
                    tracing::info!(field, path = %path.display(), "a Secret file is readable again");
                }
                check.failing = false;
                if value != self.held() {
                    *self.0.value.write().unwrap_or_else(PoisonError::into_inner) = value;
                    self.0.metrics.secret_reloaded(field);
                    tracing::info!(field, path = %path.display(), "reloaded a Secret file");
                }
            }
        }
    }
}

/// A value given once (inline in the config, or from the environment) or read from a Secret
/// file and kept current.
#[derive(Clone, Debug)]
pub enum SecretValue {
    /// Fixed for the life of the process.
    Fixed(Arc<str>),
    /// From a mounted Secret file.
    File(SecretFile),
}

impl SecretValue {
    /// The value now.
    pub fn current(&self) -> Arc<str> {
        match self {
            Self::Fixed(value) => value.clone(),
            Self::File(file) => file.current(),
        }
    }
}

impl From<&str> for SecretValue {
    fn from(value: &str) -> Self {
        Self::Fixed(Arc::from(value))
    }
}

impl From<String> for SecretValue {
    fn from(value: String) -> Self {
        Self::Fixed(Arc::from(value))
    }
}

impl From<SecretFile> for SecretValue {
    fn from(file: SecretFile) -> Self {
        Self::File(file)
    }
}

#[cfg(test)]
mod tests;
