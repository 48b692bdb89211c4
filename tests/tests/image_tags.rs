//! The images an install pulls follow the crate version (the workspace `version`, which
//! `scripts/build-images.sh` and the release workflow tag the images with): the chart's
//! appVersion and rendered Deployment, its runtime image value, the kustomize manifests, and the
//! runtime image the operator puts in StatefulSets when an Agent names none. A version bump that
//! misses one of them fails here instead of shipping pods that pull a tag nobody built.

use agent_operator::Config;
use agent_tests::{repo_root, run_checked};
use clap::CommandFactory;
use serde_yaml::Value;

const VERSION: &str = env!("CARGO_PKG_VERSION");
const OPERATOR_REPOSITORY: &str = "ghcr.io/agent-operator/agent-operator";
const RUNTIME_REPOSITORY: &str = "ghcr.io/agent-operator/agent-runtime";

fn yaml(path: &str) -> Value {
    let text = std::fs::read_to_string(repo_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn documents(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text).map(|d| serde::Deserialize::deserialize(d).unwrap()).collect()
}

/// The operator container of the Deployment among `objects`.
fn operator_container(objects: &[Value], source: &str) -> Value {
    let deployment =
        objects.iter().find(|o| o["kind"] == "Deployment").unwrap_or_else(|| panic!("{source} has no Deployment"));
    deployment["spec"]["template"]["spec"]["containers"][0].clone()
}

fn env_value<'a>(container: &'a Value, name: &str) -> Option<&'a str> {
    container["env"].as_sequence()?.iter().find(|e| e["name"] == name)?["value"].as_str()
}

fn default_runtime_image() -> String {
    let command = Config::command();
    let argument = command
        .get_arguments()
        .find(|a| a.get_id() == "runtime_image")
        .expect("the operator has a runtime_image flag (AGENT_RUNTIME_IMAGE)");
    let defaults = argument.get_default_values();
    assert_eq!(defaults.len(), 1, "one default runtime image");
    defaults[0].to_str().unwrap().to_owned()
}

#[test]
fn the_chart_app_version_is_the_crate_version() {
    let chart = yaml("charts/agent-operator/Chart.yaml");
    assert_eq!(chart["appVersion"].as_str(), Some(VERSION), "Chart.yaml appVersion must be the workspace version");
}

#[test]
fn the_chart_values_pull_the_images_of_the_crate_version() {
    let values = yaml("charts/agent-operator/values.yaml");
    assert_eq!(values["image"]["repository"].as_str(), Some(OPERATOR_REPOSITORY));
    let tag = values["image"]["tag"].as_str().unwrap_or_default();
    assert!(tag.is_empty() || tag == VERSION, "image.tag is {tag:?}: leave it empty (appVersion) or {VERSION}");
    assert_eq!(
        values["agentRuntimeImage"].as_str(),
        Some(format!("{RUNTIME_REPOSITORY}:{VERSION}").as_str()),
        "agentRuntimeImage must be the runtime image of the workspace version"
    );
}

#[test]
fn the_operator_default_runtime_image_is_the_crate_version_and_the_charts_value() {
    let image = default_runtime_image();
    assert_eq!(image, format!("{RUNTIME_REPOSITORY}:{VERSION}"), "operator/src/config.rs AGENT_RUNTIME_IMAGE default");
    let values = yaml("charts/agent-operator/values.yaml");
    assert_eq!(values["agentRuntimeImage"].as_str(), Some(image.as_str()), "the chart and the operator agree");
}

#[test]
fn the_rendered_chart_runs_the_operator_and_runtime_images_of_the_crate_version() {
    let rendered =
        run_checked("helm", &["template", "agent-operator", "charts/agent-operator", "-n", "agent-operator"]);
    let container = operator_container(&documents(&rendered), "helm template");
    assert_eq!(container["image"].as_str(), Some(format!("{OPERATOR_REPOSITORY}:{VERSION}").as_str()));
    assert_eq!(env_value(&container, "AGENT_RUNTIME_IMAGE"), Some(format!("{RUNTIME_REPOSITORY}:{VERSION}").as_str()));
}

#[test]
fn the_kustomize_deployment_runs_the_images_of_the_crate_version() {
    let path = "charts/kustomize/deployment.yaml";
    let text = std::fs::read_to_string(repo_root().join(path)).unwrap();
    let container = operator_container(&documents(&text), path);
    assert_eq!(container["image"].as_str(), Some(format!("{OPERATOR_REPOSITORY}:{VERSION}").as_str()), "{path}");
    assert_eq!(
        env_value(&container, "AGENT_RUNTIME_IMAGE"),
        Some(format!("{RUNTIME_REPOSITORY}:{VERSION}").as_str()),
        "{path}"
    );
}
