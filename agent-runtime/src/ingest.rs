//! `agent-runtime ingest`: sends a folder of documents (or files, or URLs) to a running agent's
//! `POST /v1/knowledge/documents`, one document per request, with a progress bar and a summary.
//! One bad file does not stop the rest; the exit status says whether everything went in.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// File extensions the agent reads; other files in a folder are skipped.
pub const EXTENSIONS: &[&str] = &["txt", "text", "md", "markdown", "html", "htm", "pdf"];
/// Attempts per document when the agent is busy (429) or not ready (503).
const ATTEMPTS: u32 = 5;

/// What to ingest and where.
#[derive(Clone, Debug)]
pub struct IngestOptions {
    /// Base URL of the agent, e.g. `http://localhost:8080`.
    pub agent: String,
    /// Bearer token of the agent's API, if it has one.
    pub api_key: Option<String>,
    /// Documents sent at once.
    pub concurrency: usize,
    /// Longest one document may take (upload, parse, embed, store).
    pub timeout: Duration,
    /// Draw a progress bar on stderr (hidden anyway when stderr is not a terminal).
    pub progress: bool,
}

/// One thing to send: a local file or a URL the agent fetches itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A local file, uploaded.
    File(PathBuf),
    /// An `http(s)://` URL, fetched by the agent.
    Url(String),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(path) => write!(f, "{}", path.display()),
            Self::Url(url) => f.write_str(url),
        }
    }
}

/// The outcome of one source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Stored as a new document.
    Created,
    /// The same content was already stored.
    AlreadyPresent,
    /// Refused or failed, with the agent's (or the network's) reason.
    Failed(String),
}

/// What an ingest run did.
#[derive(Debug, Default)]
pub struct Summary {
    /// Each source sent and its outcome, in completion order.
    pub results: Vec<(Source, Outcome)>,
    /// Files skipped because of their extension.
    pub skipped: Vec<PathBuf>,
}

impl Summary {
    /// Sources with this outcome.
    pub fn count(&self, wanted: impl Fn(&Outcome) -> bool) -> usize {
        self.results.iter().filter(|(_, outcome)| wanted(outcome)).count()
    }

    /// Whether every source went in.
    pub fn all_ingested(&self) -> bool {
        self.count(|o| matches!(o, Outcome::Failed(_))) == 0
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (source, outcome) in &self.results {
            if let Outcome::Failed(why) = outcome {
                writeln!(f, "failed: {source}: {why}")?;
            }
        }
        write!(
            f,
            "{} new, {} already present, {} failed, {} skipped (not {})",
            self.count(|o| *o == Outcome::Created),
            self.count(|o| *o == Outcome::AlreadyPresent),
            self.count(|o| matches!(o, Outcome::Failed(_))),
            self.skipped.len(),
            EXTENSIONS.join("/"),
        )
    }
}

/// Why the run could not start.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// A path argument does not exist or cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The HTTP client could not be built.
    #[error("building the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

/// The sources under `inputs`: URLs as they are, files as they are, folders walked recursively
/// (hidden entries skipped) in name order. Files of other types are returned as skipped.
pub fn collect_sources(inputs: &[String]) -> Result<(Vec<Source>, Vec<PathBuf>), IngestError> {
    let (mut sources, mut skipped) = (Vec::new(), Vec::new());
    for input in inputs {
        if input.starts_with("http://") || input.starts_with("https://") {
            sources.push(Source::Url(input.clone()));
            continue;
        }
        let path = PathBuf::from(input);
        let metadata = std::fs::metadata(&path).map_err(|source| IngestError::Read { path: path.clone(), source })?;
        if metadata.is_dir() {
            walk(&path, &mut sources, &mut skipped)?;
        } else {
            // A file named explicitly is sent whatever its type: the agent says if it cannot read it.
            sources.push(Source::File(path));
        }
    }
    Ok((sources, skipped))
}

fn walk(dir: &Path, sources: &mut Vec<Source>, skipped: &mut Vec<PathBuf>) -> Result<(), IngestError> {
    let read = |source| IngestError::Read { path: dir.to_owned(), source };
    let mut entries = std::fs::read_dir(dir).map_err(read)?.collect::<Result<Vec<_>, _>>().map_err(read)?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if entry.file_type().map_err(read)?.is_dir() {
            walk(&path, sources, skipped)?;
        } else if has_supported_extension(&path) {
            sources.push(Source::File(path));
        } else {
            skipped.push(path);
        }
    }
    Ok(())
}

fn has_supported_extension(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Sends every source to the agent, `concurrency` at a time, and reports what happened to each.
pub async fn ingest(
    sources: Vec<Source>,
    skipped: Vec<PathBuf>,
    options: &IngestOptions,
) -> Result<Summary, IngestError> {
    crate::install_crypto_provider();
    let client = reqwest::Client::builder().timeout(options.timeout).build().map_err(IngestError::Client)?;
    let endpoint = format!("{}/v1/knowledge/documents", options.agent.trim_end_matches('/'));
    let bar = if options.progress { ProgressBar::new(sources.len() as u64) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} documents  {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut results = Vec::with_capacity(sources.len());
    let mut sends = futures::stream::iter(sources)
        .map(|source| {
            let (client, endpoint) = (&client, &endpoint);
            async move {
                let outcome = send_with_retries(client, endpoint, options.api_key.as_deref(), &source).await;
                (source, outcome)
            }
        })
        .buffer_unordered(options.concurrency.max(1));
    while let Some((source, outcome)) = sends.next().await {
        bar.set_message(source.to_string());
        if let Outcome::Failed(why) = &outcome {
            bar.println(format!("failed: {source}: {why}"));
        }
        bar.inc(1);
        results.push((source, outcome));
    }
    bar.finish_and_clear();
    Ok(Summary { results, skipped })
}

async fn send_with_retries(
    client: &reqwest::Client,
    endpoint: &str,
    api_key: Option<&str>,
    source: &Source,
) -> Outcome {
    let mut delay = Duration::from_millis(500);
    let mut attempt = 1;
    loop {
        match send(client, endpoint, api_key, source).await {
            Err(Retry::Busy(_)) if attempt < ATTEMPTS => {
                tokio::time::sleep(delay).await;
                delay *= 2;
                attempt += 1;
            }
            Err(Retry::Busy(why) | Retry::Final(why)) => return Outcome::Failed(why),
            Ok(outcome) => return outcome,
        }
    }
}

/// A failed send: worth retrying (the agent is busy or starting) or final.
enum Retry {
    Busy(String),
    Final(String),
}

async fn send(
    client: &reqwest::Client,
    endpoint: &str,
    api_key: Option<&str>,
    source: &Source,
) -> Result<Outcome, Retry> {
    let mut request = client.post(endpoint);
    if let Some(key) = api_key {
        request = request.bearer_auth(key);
    }
    let request = match source {
        Source::Url(url) => request.json(&json!({ "urls": [url] })),
        Source::File(path) => {
            let bytes = tokio::fs::read(path).await.map_err(|e| Retry::Final(format!("cannot read the file: {e}")))?;
            let name =
                path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
            let part = reqwest::multipart::Part::bytes(bytes).file_name(name);
            let part = match content_type(path) {
                Some(mime) => part.mime_str(mime).map_err(|e| Retry::Final(e.to_string()))?,
                None => part,
            };
            request.multipart(reqwest::multipart::Form::new().part("file", part))
        }
    };
    let response = request.send().await.map_err(|e| {
        Retry::Final(format!("cannot reach the agent at {endpoint}: {}", crate::error::error_chain(&e)))
    })?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    match status {
        StatusCode::CREATED => Ok(Outcome::Created),
        StatusCode::OK => {
            let created = body["documents"][0]["created"].as_bool().unwrap_or(false);
            Ok(if created { Outcome::Created } else { Outcome::AlreadyPresent })
        }
        _ => {
            let message = body["error"]["message"].as_str().map_or_else(|| status.to_string(), str::to_owned);
            let why = format!("{}: {message}", status.as_u16());
            if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
                Err(Retry::Busy(why))
            } else {
                Err(Retry::Final(why))
            }
        }
    }
}

/// The content type sent for a file, from its extension; the agent falls back to the file name.
fn content_type(path: &Path) -> Option<&'static str> {
    match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
        "txt" | "text" => Some("text/plain"),
        "md" | "markdown" => Some("text/markdown"),
        "html" | "htm" => Some("text/html"),
        "pdf" => Some("application/pdf"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_are_walked_in_name_order_skipping_hidden_entries_and_other_types() {
        let root = std::env::temp_dir().join(format!("agent-runtime-ingest-walk-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for file in ["b.md", "a.txt", "sub/c.PDF", "sub/photo.png", ".git/config.txt", "notes"] {
            let path = root.join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "x").unwrap();
        }
        let inputs = [root.display().to_string(), "https://example.com/guide.html".to_owned()];
        let (sources, skipped) = collect_sources(&inputs).unwrap();
        std::fs::remove_dir_all(&root).unwrap();
        assert_eq!(
            sources,
            [
                Source::File(root.join("a.txt")),
                Source::File(root.join("b.md")),
                Source::File(root.join("sub/c.PDF")),
                Source::Url("https://example.com/guide.html".into()),
            ]
        );
        assert_eq!(skipped, [root.join("notes"), root.join("sub/photo.png")]);
    }

    #[test]
    fn a_missing_path_is_an_error_naming_it() {
        let error = collect_sources(&["/no/such/folder".to_owned()]).unwrap_err();
        assert!(error.to_string().starts_with("cannot read /no/such/folder"), "{error}");
    }
}
