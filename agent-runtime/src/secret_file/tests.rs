use std::time::Duration;

use super::*;

/// A fresh folder for one test.
fn folder(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("agent-runtime-secret-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creates the folder");
    dir
}

/// Files checked on every use.
fn always_checked() -> SecretFiles {
    SecretFiles::new(Duration::ZERO, Arc::new(Metrics::default()))
}

#[test]
fn a_missing_file_at_open_is_an_error() {
    let error = always_checked().open("model.apiKeyFile", "/nonexistent/key").expect_err("no file");
    assert_eq!(error.kind(), std::io::ErrorKind::NotFound);
}

#[test]
fn a_changed_file_is_the_value_at_the_next_use_and_counted_once_by_its_field() {
    let dir = folder("changed");
    std::fs::write(dir.join("key"), "old\n").expect("writes");
    let files = always_checked();
    let key = files.open("server.apiKeyFile", dir.join("key")).expect("opens");
    assert_eq!(&*key.current(), "old", "trimmed");
    std::fs::write(dir.join("key"), "new\n").expect("rewrites");
    assert_eq!(&*key.current(), "new");
    assert_eq!(&*key.current(), "new");
    let text = files.metrics().encode();
    assert!(text.contains("agent_secret_reloads_total{file=\"server.apiKeyFile\"} 1"), "{text}");
    assert!(!text.contains(&dir.display().to_string()), "the path is not a label");
}

#[test]
fn a_value_is_not_read_again_before_its_check_is_due() {
    let dir = folder("not-due");
    std::fs::write(dir.join("key"), "old").expect("writes");
    let files = SecretFiles::new(Duration::from_secs(3600), Arc::new(Metrics::default()));
    let key = files.open("server.apiKeyFile", dir.join("key")).expect("opens");
    std::fs::write(dir.join("key"), "new").expect("rewrites");
    assert_eq!(&*key.current(), "old");
}

#[test]
fn a_deleted_or_emptied_file_keeps_the_last_good_value() {
    let dir = folder("deleted");
    std::fs::write(dir.join("key"), "kept").expect("writes");
    let files = always_checked();
    let key = files.open("model.apiKeyFile", dir.join("key")).expect("opens");
    std::fs::write(dir.join("key"), "  \n").expect("empties");
    assert_eq!(&*key.current(), "kept", "an empty file is not a key");
    std::fs::remove_file(dir.join("key")).expect("deletes");
    assert_eq!(&*key.current(), "kept");
    assert_eq!(&*key.current(), "kept");
    std::fs::write(dir.join("key"), "back").expect("writes again");
    assert_eq!(&*key.current(), "back", "a file that comes back is read again");
}

#[test]
fn clones_share_the_reloaded_value() {
    let dir = folder("clones");
    std::fs::write(dir.join("key"), "old").expect("writes");
    let key = always_checked().open("model.apiKeyFile", dir.join("key")).expect("opens");
    let value = SecretValue::from(key.clone());
    std::fs::write(dir.join("key"), "new").expect("rewrites");
    assert_eq!(&*key.current(), "new");
    assert_eq!(&*value.current(), "new");
    assert_eq!(&*SecretValue::from("fixed").current(), "fixed");
}
