//! The built-in recipe catalogue: `recipes/catalogue.yaml` is what the recipe folders generate,
//! and every built-in recipe satisfies the Recipe CRD's CEL rules and its own declarations.

mod common;

use agent_crds::Recipe;
use agent_crds::catalogue::{self, CATALOGUE_FILE};
use kube::ResourceExt;
use kube::core::cel::Validator;

#[test]
fn the_committed_catalogue_matches_the_recipe_folders() {
    let committed = std::fs::read_to_string(common::repo_root().join(CATALOGUE_FILE)).unwrap_or_default();
    assert!(
        committed == catalogue::catalogue_yaml(),
        "{CATALOGUE_FILE} drifted from recipes/*/: run `cargo run -p agent-crds --bin crdgen` and commit"
    );
    let applied: Vec<(String, _)> = common::documents(CATALOGUE_FILE)
        .into_iter()
        .map(|doc| serde_json::from_value::<Recipe>(doc).unwrap())
        .map(|r| (r.name_any(), r.spec))
        .collect();
    let builtin: Vec<(String, _)> = catalogue::builtins().into_iter().map(|r| (r.name_any(), r.spec)).collect();
    assert_eq!(applied, builtin, "applying the catalogue gives the built-in recipes, templates included");
}

#[test]
fn every_builtin_recipe_satisfies_the_crd_cel_rules() {
    let schema = common::committed_schema("recipes");
    for recipe in catalogue::builtins() {
        let object = serde_json::to_value(&recipe).unwrap();
        Validator::new().validate(&schema, &object, None).unwrap_or_else(|e| panic!("{}: {e}", recipe.name_any()));
    }
}

#[test]
fn every_builtin_folder_has_a_readme_and_an_example_agent_using_it() {
    for name in catalogue::names() {
        let folder = common::repo_root().join("recipes").join(&name);
        let readme = std::fs::read_to_string(folder.join("README.md")).unwrap_or_default();
        assert!(readme.starts_with(&format!("# {name}")), "recipes/{name}/README.md must open with `# {name}`");
        let agents: Vec<_> = common::documents(&format!("recipes/{name}/agent.yaml"))
            .into_iter()
            .filter(|doc| doc["kind"] == "Agent")
            .collect();
        assert_eq!(agents.len(), 1, "recipes/{name}/agent.yaml holds one Agent");
        assert_eq!(agents[0]["spec"]["knowledge"]["recipe"], name.as_str(), "recipes/{name}/agent.yaml uses {name}");
    }
}

#[test]
fn parameter_defaults_agree_with_the_settings_they_override() {
    for recipe in catalogue::builtins() {
        let spec = serde_json::to_value(&recipe.spec).unwrap();
        for parameter in &recipe.spec.parameters {
            let Some((_, field)) = agent_crds::recipe_params::OVERRIDES.iter().find(|(n, _)| *n == parameter.name)
            else {
                continue;
            };
            let pointer = format!("/{}", field.replace('.', "/"));
            let default = parameter.default.as_ref().unwrap();
            let setting = spec.pointer(&pointer).cloned().unwrap_or(serde_json::Value::Null);
            let same = match (default.as_f64(), setting.as_f64()) {
                (Some(a), Some(b)) => (a - b).abs() < f64::EPSILON,
                _ => *default == setting,
            };
            assert!(
                same || (field.ends_with("scoreThreshold") && setting.is_null() && default.as_f64() == Some(0.0)),
                "{}: parameter {} defaults to {default} but {field} is {setting}; keep them equal so recipe.yaml reads true",
                recipe.name_any(),
                parameter.name
            );
        }
    }
}

#[test]
fn every_readme_documents_each_parameter_of_its_recipe() {
    let index = std::fs::read_to_string(common::repo_root().join("recipes/README.md")).unwrap();
    for recipe in catalogue::builtins() {
        let name = recipe.name_any();
        let readme = std::fs::read_to_string(common::repo_root().join(format!("recipes/{name}/README.md"))).unwrap();
        assert!(index.contains(&format!("[{name}]({name}/README.md)")), "recipes/README.md does not list {name}");
        for parameter in &recipe.spec.parameters {
            assert!(
                readme.contains(&format!("| `{}` |", parameter.name)),
                "recipes/{name}/README.md has no table row for parameter {}",
                parameter.name
            );
        }
    }
}
