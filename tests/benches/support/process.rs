//! Child processes under test: spawned in their own process group with output to a log file, polled
//! until ready, measured (resident memory of the whole process tree) and stopped with the group.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use hyper::StatusCode;

use super::load::{HttpClient, get_status};

/// How often readiness is polled; small, since start-to-ready is measured with it.
const READY_POLL: Duration = Duration::from_millis(5);
/// How long a stopped process gets to exit after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Why a service did not become ready.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The program could not be started.
    #[error("cannot start {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The program exited before it was ready.
    #[error("exited with {status} before it was ready; end of {log}:\n{tail}")]
    Exited {
        /// Its exit status.
        status: ExitStatus,
        /// Its log file.
        log: String,
        /// The log's last lines.
        tail: String,
    },
    /// The readiness endpoint did not answer 200 in time.
    #[error("not ready within {timeout:?} (last readiness answer: {last}); end of {log}:\n{tail}")]
    Timeout {
        /// The time allowed.
        timeout: Duration,
        /// The last readiness status, or "no connection".
        last: String,
        /// Its log file.
        log: String,
        /// The log's last lines.
        tail: String,
    },
}

/// A running child process, stopped (with its whole process group) when dropped.
pub struct Service {
    child: Child,
    log: PathBuf,
}

impl Service {
    /// Spawns `command` in a new process group, its stdout and stderr going to `log`.
    pub fn spawn(mut command: Command, log: &Path) -> Result<Self, StartError> {
        let program = command.get_program().to_string_lossy().into_owned();
        let spawn_error = |source| StartError::Spawn { program: program.clone(), source };
        let out = File::create(log).map_err(spawn_error)?;
        let err = out.try_clone().map_err(spawn_error)?;
        let child =
            command.stdin(Stdio::null()).stdout(out).stderr(err).process_group(0).spawn().map_err(spawn_error)?;
        Ok(Self { child, log: log.to_owned() })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Polls `url` until it answers 200; returns the time since `since`.
    pub async fn wait_ready(
        &mut self,
        client: &HttpClient,
        url: &str,
        since: Instant,
        timeout: Duration,
    ) -> Result<Duration, StartError> {
        let mut last = None;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(StartError::Exited { status, log: self.log.display().to_string(), tail: self.log_tail() });
            }
            last = get_status(client, url).await.or(last);
            if last == Some(StatusCode::OK) {
                return Ok(since.elapsed());
            }
            if since.elapsed() > timeout {
                return Err(StartError::Timeout {
                    timeout,
                    last: last.map_or_else(|| "no connection".to_owned(), |s| s.to_string()),
                    log: self.log.display().to_string(),
                    tail: self.log_tail(),
                });
            }
            tokio::time::sleep(READY_POLL).await;
        }
    }

    /// Resident memory of the process and all its descendants, in bytes.
    pub fn tree_rss_bytes(&self) -> Option<u64> {
        let pids = descendants(self.pid());
        let total = pids.iter().filter_map(|pid| rss_bytes(*pid)).sum();
        (total > 0).then_some(total)
    }

    /// The last lines of the log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Stops the process group: SIGTERM, then SIGKILL after [`STOP_GRACE`].
    pub fn stop(mut self) {
        self.stop_group();
    }

    fn stop_group(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        signal_group(self.pid(), "TERM");
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                // Workers of the group may outlive their parent.
                signal_group(self.pid(), "KILL");
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        signal_group(self.pid(), "KILL");
        let _ = self.child.wait();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop_group();
    }
}

/// Sends `signal` to the process group led by `pid` (the crate forbids the `unsafe` a direct
/// `kill(2)` would need, so this runs `kill`).
fn signal_group(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{signal}"), "--", &format!("-{pid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// `pid` and every process below it.
fn descendants(pid: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|child| Some((child, parent_of(child)?)))
        .collect();
    let mut tree = vec![pid];
    let mut index = 0;
    while index < tree.len() {
        let parent = tree[index];
        tree.extend(parents.iter().filter(|(_, p)| *p == parent).map(|(c, _)| *c));
        index += 1;
    }
    tree
}

fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: fields restart after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// `VmRSS` of one process, in bytes.
fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// A free TCP port on the loopback interface (free when asked; the OS does not hand it out again soon).
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
