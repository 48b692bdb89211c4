//! Helpers shared by this crate's integration tests: the repository's files and example objects.

#![allow(dead_code)]

use std::path::PathBuf;

/// Root of the repository.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every YAML document of a file in the repository, as JSON.
pub fn documents(relative: &str) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(repo_root().join(relative)).unwrap_or_else(|e| panic!("read {relative}: {e}"));
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| serde_json::Value::deserialize(doc).expect("valid YAML"))
        .filter(|doc| !doc.is_null())
        .collect()
}

/// The first document of `kind` named `name` in an example file.
pub fn example(relative: &str, kind: &str, name: &str) -> serde_json::Value {
    documents(relative)
        .into_iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("{relative} has no {kind} {name}"))
}

/// The openAPIV3Schema of the committed CRD of `plural`.
pub fn committed_schema(plural: &str) -> serde_json::Value {
    let crd = documents(&format!("crds/yaml/{plural}.agent-operator.dev.yaml")).remove(0);
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

use serde::Deserialize;
