//! The committed CRD YAML is exactly what the Rust types generate.

mod common;

use agent_crds::crd;

#[test]
fn committed_crds_match_the_rust_types() {
    for dir in ["crds/yaml", "charts/agent-operator/crds"] {
        for definition in crd::all() {
            let path = common::repo_root().join(dir).join(crd::file_name(&definition));
            let committed = std::fs::read_to_string(&path).unwrap_or_default();
            let generated = crd::to_yaml(&definition).unwrap();
            assert!(
                committed == generated,
                "{} drifted from the Rust types: run `cargo run -p agent-crds --bin crdgen` and commit",
                path.display()
            );
        }
    }
    let kustomization = std::fs::read_to_string(common::repo_root().join("crds/yaml/kustomization.yaml")).unwrap();
    assert_eq!(kustomization, crd::kustomization(), "crds/yaml/kustomization.yaml drifted: run crdgen");
}

#[test]
fn every_crd_has_status_subresource_printer_columns_and_keyed_conditions() {
    for definition in crd::all() {
        let name = definition.metadata.name.clone().unwrap();
        let version = &definition.spec.versions[0];
        assert!(
            version.subresources.as_ref().and_then(|s| s.status.as_ref()).is_some(),
            "{name}: no status subresource"
        );
        let columns: Vec<_> = version.additional_printer_columns.iter().flatten().map(|c| c.name.as_str()).collect();
        assert!(columns.contains(&"Age"), "{name}: no Age column in {columns:?}");
        let schema =
            serde_json::to_value(version.schema.as_ref().unwrap().open_api_v3_schema.as_ref().unwrap()).unwrap();
        let conditions = &schema["properties"]["status"]["properties"]["conditions"];
        assert_eq!(conditions["x-kubernetes-list-type"], "map", "{name}: conditions are not a list-map");
        assert_eq!(conditions["x-kubernetes-list-map-keys"], serde_json::json!(["type"]), "{name}");
        assert!(schema["properties"]["status"]["properties"]["observedGeneration"].is_object(), "{name}");
    }
    let agent = crd::all().remove(0);
    let columns: Vec<_> =
        agent.spec.versions[0].additional_printer_columns.iter().flatten().map(|c| c.name.clone()).collect();
    assert_eq!(&columns[..2], ["Ready", "Model"]);
}

#[test]
fn every_field_of_every_crd_is_documented() {
    fn walk(path: &str, node: &serde_json::Value, missing: &mut Vec<String>) {
        if let Some(properties) = node["properties"].as_object() {
            for (key, child) in properties {
                let child_path = format!("{path}.{key}");
                if child["description"].as_str().is_none_or(str::is_empty) && !path.is_empty() {
                    missing.push(child_path.clone());
                }
                walk(&child_path, child, missing);
            }
        }
        if node["items"].is_object() {
            walk(&format!("{path}[]"), &node["items"], missing);
        }
    }
    for plural in ["agents", "models", "recipes"] {
        let mut missing = Vec::new();
        let schema = common::committed_schema(plural);
        for part in ["spec", "status"] {
            walk(part, &schema["properties"][part], &mut missing);
        }
        assert!(
            missing.is_empty(),
            "{plural}: fields without description (kubectl explain shows nothing): {missing:#?}"
        );
    }
}
