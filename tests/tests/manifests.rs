//! Every object the operator builds, every example manifest, the CRDs, the Helm chart and the
//! kustomize manifests validate against the real Kubernetes 1.34 schemas (PyPI
//! `kubernetes-validate`, strict) and, for our own kinds, against the generated CRD schemas.

use agent_crds::manifests::Manifests;
use agent_operator::offline::{children, children_as_values};
use agent_tests::{repo_root, run_checked};

const EXAMPLES: [&str; 3] = ["examples/chat-agent.yaml", "examples/rag-agent.yaml", "examples/suspended-agent.yaml"];

#[test]
fn every_built_object_validates_against_the_kubernetes_1_34_schemas() {
    let dir = std::env::temp_dir().join(format!("agent-operator-built-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut built = 0;
    for file in EXAMPLES {
        let manifests = Manifests::parse(&std::fs::read_to_string(repo_root().join(file)).unwrap()).unwrap();
        for agent in &manifests.agents {
            let objects = children(&manifests, agent, "ghcr.io/agent-operator/agent-runtime:0.1.0").unwrap();
            let documents: Vec<String> =
                children_as_values(&objects).iter().map(|v| serde_yaml::to_string(v).unwrap()).collect();
            built += documents.len();
            let name = agent.metadata.name.clone().unwrap();
            std::fs::write(dir.join(format!("{name}.yaml")), documents.join("---\n")).unwrap();
        }
    }
    assert!(built >= 18, "expected at least six objects for each of three agents, built {built}");
    let report = run_checked("python3", &["scripts/validate_manifests.py", "--require-docs", dir.to_str().unwrap()]);
    std::fs::remove_dir_all(&dir).ok();
    assert!(report.contains(&format!("{built} ok")), "every built object must be checked: {report}");
}

#[test]
fn every_example_and_generated_crd_validates() {
    let report = run_checked("python3", &["scripts/validate_manifests.py", "--require-docs", "examples", "crds/yaml"]);
    assert!(!report.contains("FAIL"), "{report}");
}

/// The example `agent.yaml` of every recipe folder.
fn recipe_examples() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(repo_root().join("recipes"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|entry| entry.path().join("agent.yaml").is_file())
        .map(|entry| format!("recipes/{}/agent.yaml", entry.file_name().to_string_lossy()))
        .collect();
    files.sort();
    files
}

#[test]
fn every_recipe_example_and_the_catalogue_validate_against_the_crd_schemas() {
    let report = run_checked("python3", &["scripts/validate_manifests.py", "--require-docs", "recipes"]);
    assert!(!report.contains("FAIL"), "{report}");
    let recipes = agent_crds::catalogue::names().len();
    // recipe.yaml and catalogue.yaml hold each recipe once; each agent.yaml an Agent and a Model.
    assert!(report.contains(&format!("{} ok", 4 * recipes)), "every recipe document is checked: {report}");
}

#[test]
fn every_recipe_example_renders_and_builds_objects_valid_for_kubernetes_1_34() {
    let dir = std::env::temp_dir().join(format!("agent-operator-recipes-built-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let examples = recipe_examples();
    assert_eq!(examples.len(), agent_crds::catalogue::names().len(), "one example per built-in recipe");
    let mut built = 0;
    for file in &examples {
        let mut manifests = Manifests::parse(&std::fs::read_to_string(repo_root().join(file)).unwrap()).unwrap();
        for object in &mut manifests.agents {
            object.metadata.namespace.get_or_insert_with(|| "default".to_owned());
        }
        for object in &mut manifests.models {
            object.metadata.namespace.get_or_insert_with(|| "default".to_owned());
        }
        let [agent] = manifests.agents.as_slice() else { panic!("{file} holds one Agent") };
        let objects = children(&manifests, agent, "ghcr.io/agent-operator/agent-runtime:0.1.0")
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        let values = children_as_values(&objects);
        let config_map = values.iter().find(|v| v["kind"] == "ConfigMap").expect("a runtime ConfigMap");
        let config: agent_crds::RuntimeConfig =
            serde_json::from_str(config_map["data"]["runtime-config.json"].as_str().unwrap()).unwrap();
        let recipe = config.recipe.unwrap_or_else(|| panic!("{file}: the RuntimeConfig has no recipe"));
        assert_eq!(Some(&recipe.name), agent.spec.knowledge.as_ref().map(|k| &k.recipe));
        let documents: Vec<String> = values.iter().map(|v| serde_yaml::to_string(v).unwrap()).collect();
        built += documents.len();
        std::fs::write(dir.join(format!("{}.yaml", agent.metadata.name.clone().unwrap())), documents.join("---\n"))
            .unwrap();
    }
    let report = run_checked("python3", &["scripts/validate_manifests.py", "--require-docs", dir.to_str().unwrap()]);
    std::fs::remove_dir_all(&dir).ok();
    assert!(report.contains(&format!("{built} ok")), "every built object must be checked: {report}");
}

#[test]
fn the_validator_rejects_a_typo_field_and_a_violated_crd_schema() {
    let dir = std::env::temp_dir().join(format!("agent-operator-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = "apiVersion: v1\nkind: Service\nmetadata:\n  name: x\nspec:\n  portz: []\n---\napiVersion: agent-operator.dev/v1alpha1\nkind: Agent\nmetadata:\n  name: y\nspec:\n  model:\n    modelRef: {name: m}\n  operatingMode: Sleeping\n";
    std::fs::write(dir.join("bad.yaml"), bad).unwrap();
    let output = std::process::Command::new("python3")
        .args(["scripts/validate_manifests.py", dir.to_str().unwrap()])
        .current_dir(repo_root())
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).ok();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "a broken manifest must fail validation: {stdout}");
    assert_eq!(stdout.matches("FAIL").count(), 2, "both documents fail: {stdout}");
}

#[test]
fn the_helm_chart_and_kustomize_manifests_render_and_validate() {
    let report = run_checked("bash", &["scripts/check-deploy.sh"]);
    assert!(report.contains("all 8 steps OK"), "{report}");
}
