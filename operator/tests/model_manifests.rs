//! Every object built for a served Model (the DRA ResourceClaimTemplate included) validates
//! against the Kubernetes 1.34 schemas (PyPI `kubernetes-validate`, strict: unknown fields are
//! errors), and the generated Model schema rejects what it must.

mod support;

use agent_crds::model::{Accelerator, Engine, Model, Sharing, SharingStrategy};
use agent_operator::model::build::{BuildInput, build};
use agent_operator::model::validate::validate;
use serde_json::json;
use support::{example_documents, repo_root, temp_dir, validate_manifests};

const FILE: &str = "examples/served-model.yaml";

/// Every example Model as written, plus each with DRA sharing and with an extended resource.
fn variants() -> Vec<Model> {
    let mut models = Vec::new();
    for document in example_documents(FILE).into_iter().filter(|d| d["kind"] == "Model") {
        let mut document = document;
        document["metadata"]["uid"] = json!("0b7a6c1e-2222-4333-8444-555566667777");
        let model: Model = serde_json::from_value(document).unwrap();
        if model.spec.serve.as_ref().is_some_and(|serve| serve.engine == Engine::Runtime) {
            // The runtime serves on CPU: accelerators are refused for it.
            models.push(model);
            continue;
        }
        let mut shared = model.clone();
        shared.spec.serve.as_mut().unwrap().accelerator = Some(Accelerator {
            device_class_name: Some("gpu.nvidia.com".into()),
            count: 1,
            selectors: vec!["device.attributes['gpu.nvidia.com'].productName.startsWith('NVIDIA A100')".into()],
            sharing: Some(Sharing { strategy: SharingStrategy::TimeSlicing, driver: None, parameters: None }),
            extended_resource: None,
            mig_profile: None,
            shared_claim_name: None,
        });
        let mut one_claim = shared.clone();
        one_claim.spec.serve.as_mut().unwrap().accelerator.as_mut().unwrap().shared_claim_name =
            Some("a100-time-sliced".into());
        let mut mig = model.clone();
        mig.spec.serve.as_mut().unwrap().accelerator =
            Some(Accelerator { count: 1, mig_profile: Some("1g.10gb".into()), ..Accelerator::default() });
        let mut extended = model.clone();
        extended.spec.serve.as_mut().unwrap().accelerator =
            Some(Accelerator { count: 2, extended_resource: Some("nvidia.com/gpu".into()), ..Accelerator::default() });
        models.extend([model, shared, one_claim, mig, extended]);
    }
    models
}

#[test]
fn every_object_built_for_a_served_model_validates_against_the_kubernetes_1_34_schemas() {
    let dir = temp_dir("model-children");
    let mut built = 0;
    let mut templates = 0;
    for (index, model) in variants().iter().enumerate() {
        let source = validate(model).unwrap_or_else(|e| panic!("{e}")).unwrap();
        let serve = model.spec.serve.as_ref().unwrap();
        for cache_ready in [false, true] {
            let input = BuildInput {
                model,
                serve,
                source: &source,
                runtime_image: "runtime:test",
                cache_ready,
                cache_recorded: false,
            };
            let values = build(&input).to_values();
            templates += values.iter().filter(|v| v["kind"] == "ResourceClaimTemplate").count();
            built += values.len();
            let documents: Vec<String> = values.iter().map(|v| serde_yaml::to_string(v).unwrap()).collect();
            std::fs::write(dir.join(format!("{index}-{cache_ready}.yaml")), documents.join("---\n")).unwrap();
        }
    }
    assert!(templates >= 14, "each Model with DRA sharing must build a claim template, built {templates}");
    let (ok, report) = validate_manifests(&[&dir]);
    std::fs::remove_dir_all(&dir).ok();
    assert!(ok, "{report}");
    assert!(report.contains(&format!("{built} ok")), "every built object must be checked ({built}): {report}");
}

#[test]
fn the_served_model_example_validates_against_the_generated_crds() {
    let (ok, report) = validate_manifests(&[&repo_root().join(FILE)]);
    assert!(ok, "{report}");
    assert!(report.contains("9 ok"), "eight Models and an Agent: {report}");
}

#[test]
fn the_schema_rejects_a_zero_device_count_and_an_unknown_engine() {
    let dir = temp_dir("bad-models");
    let mut zero = example_documents(FILE).into_iter().find(|d| d["metadata"]["name"] == "llama-8b").unwrap();
    zero["spec"]["serve"]["accelerator"]["count"] = json!(0);
    let mut engine = zero.clone();
    engine["metadata"]["name"] = json!("bad-engine");
    engine["spec"]["serve"]["accelerator"]["count"] = json!(1);
    engine["spec"]["serve"]["engine"] = json!("triton");
    let text = [zero, engine].iter().map(|d| serde_yaml::to_string(d).unwrap()).collect::<Vec<_>>().join("---\n");
    std::fs::write(dir.join("bad.yaml"), text).unwrap();
    let (ok, report) = validate_manifests(&[&dir]);
    std::fs::remove_dir_all(&dir).ok();
    assert!(!ok, "{report}");
    assert_eq!(report.matches("FAIL").count(), 2, "{report}");
    assert!(report.contains("count"), "{report}");
    assert!(report.contains("engine"), "{report}");
}
