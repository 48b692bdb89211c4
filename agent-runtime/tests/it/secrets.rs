//! Values from mounted Secret files follow the files while the agent runs: the API key clients
//! must present, the model API key, the system prompt. Files are changed the way Kubernetes
//! does (a new `..<timestamp>` directory and a swap of the `..data` symlink) and by a plain
//! rewrite (local mode); a file that disappears keeps its last value.

use std::path::{Path, PathBuf};
use std::time::Duration;

use agent_crds::runtime_config::TextSource;
use agent_runtime::ServeOptions;
use agent_runtime::http::AppState;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::json;

use crate::support::{Upstream, config, post, quick_options, send, state, temp_dir};

/// How often the tests' agents check their Secret files.
const CHECK_EVERY: Duration = Duration::from_millis(200);

/// Longer than a check interval: a file changed before this wait is read at the next use.
const PAST_A_CHECK: Duration = Duration::from_millis(300);

fn options() -> ServeOptions {
    ServeOptions { secret_check_every: CHECK_EVERY, ..quick_options() }
}

/// A Secret volume as the kubelet writes it: `<key>` -> `..data/<key>`, `..data` -> a
/// timestamped directory holding the files.
struct SecretVolume {
    dir: PathBuf,
    version: u32,
}

impl SecretVolume {
    /// A volume in `dir` holding `key` = `value`.
    fn new(dir: &Path, key: &str, value: &str) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let mut volume = Self { dir: dir.to_owned(), version: 0 };
        volume.update(key, value);
        std::os::unix::fs::symlink(format!("..data/{key}"), dir.join(key)).unwrap();
        volume
    }

    /// Writes a new timestamped directory, swaps `..data` to it atomically and removes the old one.
    fn update(&mut self, key: &str, value: &str) {
        self.version += 1;
        let data = format!("..2026_01_01_00_00_0{}.{}", self.version, std::process::id());
        std::fs::create_dir(self.dir.join(&data)).unwrap();
        std::fs::write(self.dir.join(&data).join(key), value).unwrap();
        std::os::unix::fs::symlink(&data, self.dir.join("..data_tmp")).unwrap();
        let old = std::fs::read_link(self.dir.join("..data")).ok();
        std::fs::rename(self.dir.join("..data_tmp"), self.dir.join("..data")).unwrap();
        if let Some(old) = old {
            std::fs::remove_dir_all(self.dir.join(old)).unwrap();
        }
    }
}

/// An agent on `upstream` whose API key is the Secret `helper-api`, key `token`, under `dir`.
fn agent_with_api_key(upstream: &Upstream, dir: &Path) -> AppState {
    let spec = "  api: {authSecretRef: {name: helper-api, key: token}}\n";
    state(config(&upstream.base_url(), spec, dir, "Chat"), &options())
}

/// The status of `GET /v1/models` presenting `key` (none when `None`).
async fn models_with(agent: &AppState, key: Option<&str>) -> StatusCode {
    let mut request = Request::get("/v1/models");
    if let Some(key) = key {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    send(agent, request.body(Body::empty()).unwrap()).await.0
}

async fn metrics(agent: &AppState) -> String {
    send(agent, Request::get("/metrics").body(Body::empty()).unwrap()).await.1
}

#[tokio::test]
async fn a_rotated_api_key_is_required_from_the_next_check_on_with_the_kubelets_symlink_swap() {
    let upstream = Upstream::start(vec![]).await;
    let dir = temp_dir("secret-api-key-swap");
    let mut volume = SecretVolume::new(&dir.join("secrets/helper-api"), "token", "first\n");
    let agent = agent_with_api_key(&upstream, &dir);
    assert_eq!(models_with(&agent, Some("first")).await, StatusCode::OK);

    volume.update("token", "second\n");
    tokio::time::sleep(PAST_A_CHECK).await;
    assert_eq!(models_with(&agent, Some("second")).await, StatusCode::OK, "the new key is accepted");
    assert_eq!(models_with(&agent, Some("first")).await, StatusCode::UNAUTHORIZED, "the old key is refused");
    assert_eq!(models_with(&agent, None).await, StatusCode::UNAUTHORIZED);
    let text = metrics(&agent).await;
    assert!(text.contains("agent_secret_reloads_total{file=\"server.apiKeyFile\"} 1"), "{text}");
}

#[tokio::test]
async fn a_rewritten_api_key_file_is_required_from_the_next_check_on() {
    let upstream = Upstream::start(vec![]).await;
    let dir = temp_dir("secret-api-key-rewrite");
    let file = dir.join("secrets/helper-api/token");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, "first").unwrap();
    let agent = agent_with_api_key(&upstream, &dir);
    assert_eq!(models_with(&agent, Some("first")).await, StatusCode::OK);
    std::fs::write(&file, "second").unwrap();
    tokio::time::sleep(PAST_A_CHECK).await;
    assert_eq!(models_with(&agent, Some("first")).await, StatusCode::UNAUTHORIZED);
    assert_eq!(models_with(&agent, Some("second")).await, StatusCode::OK);
}

#[tokio::test]
async fn a_deleted_api_key_file_keeps_the_last_key() {
    let upstream = Upstream::start(vec![]).await;
    let dir = temp_dir("secret-api-key-deleted");
    let file = dir.join("secrets/helper-api/token");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, "kept").unwrap();
    let agent = agent_with_api_key(&upstream, &dir);
    std::fs::remove_file(&file).unwrap();
    tokio::time::sleep(PAST_A_CHECK).await;
    assert_eq!(models_with(&agent, None).await, StatusCode::UNAUTHORIZED, "no key is not the key");
    assert_eq!(models_with(&agent, Some("")).await, StatusCode::UNAUTHORIZED, "nor is an empty one");
    assert_eq!(models_with(&agent, Some("kept")).await, StatusCode::OK);
    tokio::time::sleep(PAST_A_CHECK).await;
    assert_eq!(models_with(&agent, Some("kept")).await, StatusCode::OK);
    assert!(!metrics(&agent).await.contains("agent_secret_reloads_total{"), "nothing was reloaded");
}

#[tokio::test]
async fn a_rotated_model_api_key_is_sent_upstream_from_the_next_check_on() {
    let upstream = Upstream::start(vec![]).await;
    let dir = temp_dir("secret-model-key");
    let mut volume = SecretVolume::new(&dir.join("secrets/llm"), "key", "sk-first\n");
    let mut config = config(&upstream.base_url(), "", &dir, "Chat");
    config.model.api_key_file = Some(dir.join("secrets/llm/key").display().to_string());
    let agent = state(config, &options());
    let chat = json!({"messages": [{"role": "user", "content": "hi"}], "stream": false});
    assert_eq!(send(&agent, post("/v1/chat/completions", &chat)).await.0, StatusCode::OK);
    volume.update("key", "sk-second\n");
    tokio::time::sleep(PAST_A_CHECK).await;
    assert_eq!(send(&agent, post("/v1/chat/completions", &chat)).await.0, StatusCode::OK);
    let sent: Vec<String> = upstream
        .received()
        .iter()
        .map(|body| body["_headers"]["authorization"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(sent, ["Bearer sk-first", "Bearer sk-second"]);
}

#[tokio::test]
async fn a_changed_system_prompt_is_used_for_new_turns() {
    let upstream = Upstream::start(vec![]).await;
    let dir = temp_dir("secret-prompt");
    let mut volume = SecretVolume::new(&dir.join("secrets/persona"), "prompt", "You are terse.\n");
    let mut config = config(&upstream.base_url(), "", &dir, "Chat");
    config.persona.system_prompt = Some(TextSource::File(dir.join("secrets/persona/prompt").display().to_string()));
    let agent = state(config, &options());
    let chat = json!({"messages": [{"role": "user", "content": "hi"}], "stream": false});
    assert_eq!(send(&agent, post("/v1/chat/completions", &chat)).await.0, StatusCode::OK);
    volume.update("prompt", "You are verbose.\n");
    tokio::time::sleep(PAST_A_CHECK).await;
    assert_eq!(send(&agent, post("/v1/chat/completions", &chat)).await.0, StatusCode::OK);
    let systems: Vec<String> = upstream
        .received()
        .iter()
        .map(|body| body["messages"][0]["content"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(systems[0].starts_with("You are terse."), "{systems:?}");
    assert!(systems[1].starts_with("You are verbose."), "{systems:?}");
}

#[tokio::test]
async fn a_secret_file_missing_at_start_is_a_start_error_naming_it() {
    let upstream = Upstream::start(vec![]).await;
    let dir = temp_dir("secret-missing");
    let spec = "  api: {authSecretRef: {name: helper-api, key: token}}\n";
    let config = config(&upstream.base_url(), spec, &dir, "Chat");
    let error = agent_runtime::build_state(config, &options()).err().expect("no key file, no start").to_string();
    assert!(error.contains("secrets/helper-api/token") && error.contains("server.apiKeyFile"), "{error}");
}
