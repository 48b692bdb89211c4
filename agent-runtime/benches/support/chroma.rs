//! The Chroma peer: `tests/python/chroma_bench.py` run in the bench venv, loaded with the same
//! vectors as the embedded store, then asked for one round of queries at a time, so that its
//! rounds interleave with the embedded store's.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

/// What the script reports once the vectors are loaded.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Ready {
    /// `chromadb.__version__`.
    pub version: String,
    /// Points in the collection after loading.
    pub count: u64,
    /// Time of all `add` calls.
    pub load_seconds: f64,
    /// The HNSW parameters of the collection, as Chroma reports them.
    pub hnsw: serde_json::Value,
}

/// One round: every query once.
#[derive(Debug, Deserialize)]
pub struct Round {
    /// Latency of each query, in query order.
    pub latencies_ms: Vec<f64>,
    /// Ids of each query's hits, best first.
    pub ids: Vec<Vec<u64>>,
}

/// How to start the script.
pub struct Launch<'a> {
    /// The venv's python.
    pub python: &'a Path,
    /// `chroma_bench.py`.
    pub script: &'a Path,
    /// File of the points (little-endian f32 rows).
    pub vectors: &'a Path,
    /// File of the queries (little-endian f32 rows).
    pub queries: &'a Path,
    /// Length of a row.
    pub dimension: usize,
    /// Hits per query.
    pub k: usize,
    /// Points per `add` call.
    pub batch: usize,
    /// Empty directory for Chroma's files.
    pub dir: PathBuf,
}

/// A running, loaded Chroma script; dropping it ends the script.
pub struct Chroma {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    /// What the script reported once loaded.
    pub ready: Ready,
}

impl Chroma {
    /// Starts the script and waits until it has loaded every point.
    pub fn start(launch: &Launch<'_>) -> anyhow::Result<Self> {
        let mut child = Command::new(launch.python)
            .arg(launch.script)
            .arg("--vectors")
            .arg(launch.vectors)
            .arg("--queries")
            .arg(launch.queries)
            .args(["--dimension", &launch.dimension.to_string()])
            .args(["--k", &launch.k.to_string()])
            .args(["--batch", &launch.batch.to_string()])
            .arg("--dir")
            .arg(&launch.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {} {}", launch.python.display(), launch.script.display()))?;
        let stdin = child.stdin.take();
        let mut stdout = BufReader::new(child.stdout.take().context("the script's stdout is piped")?);
        match read_line(&mut stdout).context("loading the vectors into Chroma") {
            Ok(ready) => Ok(Self { child, stdin, stdout, ready }),
            Err(error) => {
                drop(stdin);
                let _ = child.wait();
                Err(error)
            }
        }
    }

    /// Runs every query once and returns the latencies and hits.
    pub fn round(&mut self) -> anyhow::Result<Round> {
        let stdin = self.stdin.as_mut().context("the script's stdin is closed")?;
        stdin.write_all(b"round\n")?;
        stdin.flush()?;
        read_line(&mut self.stdout).context("a round of Chroma queries")
    }
}

/// The script's next JSON line.
fn read_line<T: for<'de> Deserialize<'de>>(stdout: &mut BufReader<ChildStdout>) -> anyhow::Result<T> {
    let mut line = String::new();
    if stdout.read_line(&mut line)? == 0 {
        bail!("the Chroma script exited without answering; its error is above");
    }
    serde_json::from_str(&line).with_context(|| format!("parsing the Chroma script's line {line:?}"))
}

impl Drop for Chroma {
    fn drop(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.write_all(b"quit\n");
        }
        // Closing stdin ends the script; wait so its files are closed before they are removed.
        let _ = self.child.wait();
    }
}
