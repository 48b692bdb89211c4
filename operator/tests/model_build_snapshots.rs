//! Snapshots of every object built for a served Model of each engine, with accelerators claimed
//! through DRA and without accelerators, so any change to what the operator applies shows up in review.

mod support;

use agent_crds::model::{Accelerator, Model};
use agent_operator::model::build::{BuildInput, build};
use agent_operator::model::validate::validate;
use serde_json::{Value, json};
use support::{build_children, example_model, pod_security_violations};

const FILE: &str = "examples/served-model.yaml";

/// The children of `model` as the controller builds them once the cache is ready.
fn children(model: &Model) -> Vec<Value> {
    build_children(model, "ghcr.io/agent-operator/agent-runtime:0.1.0", true).to_values()
}

fn with_accelerator(mut model: Model, accelerator: Option<Accelerator>) -> Model {
    model.spec.serve.as_mut().unwrap().accelerator = accelerator;
    model
}

/// The example with its own DRA accelerator, or one GPU of the default class when it has none or
/// an extended resource; and the same Model on CPU.
fn snapshot_engine(name: &str) {
    let model = example_model(FILE, name);
    let dra = match &model.spec.serve.as_ref().unwrap().accelerator {
        Some(accelerator) if accelerator.extended_resource.is_none() => model.clone(),
        _ => with_accelerator(model.clone(), Some(Accelerator { count: 1, ..Accelerator::default() })),
    };
    let cpu = with_accelerator(model, None);
    insta::assert_yaml_snapshot!(format!("{name}_with_dra"), children(&dra));
    insta::assert_yaml_snapshot!(format!("{name}_without_accelerator"), children(&cpu));
}

#[test]
fn vllm_children() {
    snapshot_engine("llama-8b");
}

#[test]
fn llamacpp_children() {
    snapshot_engine("gemma-small");
}

#[test]
fn runtime_children() {
    let cpu = example_model(FILE, "gemma-runtime");
    let built = children(&cpu);
    insta::assert_yaml_snapshot!("gemma-runtime_without_accelerator", built);
    let container = &pod(&built)["containers"][0];
    assert_eq!(container["image"], "ghcr.io/agent-operator/agent-runtime:0.1.0", "the runtime's own image");
    let args: Vec<&str> = container["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    assert_eq!(&args[..1], ["serve-model"]);
    assert!(args.windows(2).any(|w| w == ["--context-length", "4096"]), "{args:?}");
    assert!(args.windows(2).any(|w| w == ["--embedding-model-dir", "/models/all-MiniLM-L6-v2"]), "{args:?}");
}

#[test]
fn ollama_children() {
    snapshot_engine("qwen-small");
    insta::assert_yaml_snapshot!("qwen-small_with_extended_resource", children(&example_model(FILE, "qwen-small")));
}

#[test]
fn tgi_children() {
    snapshot_engine("mistral-tgi");
}

#[test]
fn tei_children() {
    snapshot_engine("minilm");
}

#[test]
fn nim_children() {
    snapshot_engine("llama-nim");
}

fn kinds(children: &[Value]) -> Vec<&str> {
    children.iter().map(|c| c["kind"].as_str().unwrap()).collect()
}

fn pod(children: &[Value]) -> &Value {
    &children.iter().find(|c| c["kind"] == "Deployment").unwrap()["spec"]["template"]["spec"]
}

#[test]
fn a_dra_model_claims_its_devices_per_replica_from_its_template() {
    let built = children(&example_model(FILE, "llama-8b"));
    assert_eq!(kinds(&built), ["ResourceClaimTemplate", "PersistentVolumeClaim", "Job", "Deployment", "Service"]);
    let pod = pod(&built);
    let template = built[0]["metadata"]["name"].as_str().unwrap();
    assert!(template.starts_with("llama-8b-accelerator-"), "{template}");
    assert_eq!(pod["resourceClaims"], json!([{"name": "accelerator", "resourceClaimTemplateName": template}]));
    assert_eq!(pod["containers"][0]["resources"]["claims"], json!([{"name": "accelerator"}]));
    assert!(pod["containers"][0]["resources"]["limits"].get("nvidia.com/gpu").is_none());
    let args: Vec<&str> =
        pod["containers"][0]["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    let tp = args.iter().position(|a| *a == "--tensor-parallel-size").unwrap();
    assert_eq!(args[tp + 1], "2", "tensor parallelism follows the device count: {args:?}");
    let deployment = &built[3];
    assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate", "no surge replica waiting for GPUs");
    assert_eq!(deployment["metadata"]["labels"]["kueue.x-k8s.io/queue-name"], "gpu-queue");
    assert_eq!(deployment["spec"]["template"]["metadata"]["labels"]["kueue.x-k8s.io/queue-name"], "gpu-queue");
    assert_eq!(pod["priorityClassName"], "model-serving");
    let annotations = &deployment["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(
        (&annotations["prometheus.io/scrape"], &annotations["prometheus.io/port"], &annotations["prometheus.io/path"]),
        (&json!("true"), &json!("8000"), &json!("/metrics"))
    );
}

#[test]
fn a_cluster_without_dra_gets_the_extended_resource_and_no_claim_template() {
    let built = children(&example_model(FILE, "qwen-small"));
    assert_eq!(kinds(&built), ["PersistentVolumeClaim", "Job", "Deployment", "Service"]);
    let pod = pod(&built);
    assert_eq!(pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"], "1");
    assert!(pod["resourceClaims"].is_null());
    assert_eq!(pod["tolerations"][0]["key"], "nvidia.com/gpu", "GPU nodes' taint is tolerated by default");
}

#[test]
fn pvc_and_oci_sources_mount_the_weights_without_a_cache_or_download() {
    let pvc = children(&example_model(FILE, "mistral-tgi"));
    assert_eq!(kinds(&pvc), ["ResourceClaimTemplate", "Deployment", "Service"]);
    let volume = &pod(&pvc)["volumes"][0];
    assert_eq!(volume["persistentVolumeClaim"], json!({"claimName": "shared-weights", "readOnly": true}));
    let oci = children(&example_model(FILE, "minilm-image"));
    assert_eq!(kinds(&oci), ["Deployment", "Service"]);
    assert_eq!(pod(&oci)["volumes"][0]["image"]["reference"], "ghcr.io/agent-operator/models/all-minilm-l6-v2:1");
}

#[test]
fn serving_waits_with_no_replicas_until_the_cache_is_filled() {
    let model = example_model(FILE, "gemma-small");
    let source = validate(&model).unwrap().unwrap();
    let serve = model.spec.serve.as_ref().unwrap();
    let input = BuildInput {
        model: &model,
        serve,
        source: &source,
        runtime_image: "runtime:test",
        cache_ready: false,
        cache_recorded: false,
    };
    let waiting = build(&input);
    assert_eq!(waiting.workload.deployment().unwrap().spec.as_ref().unwrap().replicas, Some(0));
    let job = waiting.download_job.unwrap();
    let env = job.spec.unwrap().template.spec.unwrap().containers[0].env.clone().unwrap();
    let value = |name: &str| env.iter().find(|e| e.name == name).and_then(|e| e.value.clone());
    assert_eq!(value("HF_REPO").as_deref(), Some("ggml-org/gemma-3-270m-GGUF"));
    assert_eq!(value("HF_FILE").as_deref(), Some("gemma-3-270m-Q8_0.gguf"));
    assert!(waiting.cache_claim.unwrap().metadata.annotations.is_none(), "nothing is recorded before the download");
    let ready = build(&BuildInput { cache_ready: true, ..input.clone() });
    assert_eq!(ready.workload.deployment().unwrap().spec.clone().unwrap().replicas, Some(1));
    let annotations = ready.cache_claim.unwrap().metadata.annotations.unwrap();
    assert_eq!(annotations["agent-operator.dev/cached-source"], source.digest(), "the claim records its weights");
    let recorded = build(&BuildInput { cache_ready: true, cache_recorded: true, ..input });
    assert!(recorded.download_job.is_none(), "a recorded cache is never downloaded again");
}

#[test]
fn a_gated_hugging_face_model_reads_its_token_from_the_secret_never_inline() {
    let built = children(&example_model(FILE, "llama-8b"));
    let env = &built[2]["spec"]["template"]["spec"]["containers"][0]["env"];
    let token = env.as_array().unwrap().iter().find(|e| e["name"] == "HF_TOKEN").unwrap();
    assert_eq!(token["valueFrom"]["secretKeyRef"], json!({"name": "hf-token", "key": "token", "optional": false}));
    assert!(token.get("value").is_none());
}

#[test]
fn every_model_pod_meets_the_restricted_pod_security_standard() {
    // Engine images (vLLM, llama.cpp server, Ollama, TGI, TEI, NIM) default to root; their pods
    // still run as the non-root user 65532 with HOME on scratch space, like the download Job.
    // The one exception is a choice of the Model: weights from an OCI image volume, a volume
    // type the restricted standard does not list (baseline admits it).
    let mut checked = 0;
    for name in ["llama-8b", "gemma-small", "gemma-runtime", "qwen-small", "mistral-tgi", "minilm", "llama-nim"] {
        let built = children(&with_accelerator(example_model(FILE, name), None));
        for object in &built {
            let pod = &object["spec"]["template"];
            match object["kind"].as_str() {
                Some("Deployment") => {
                    let image_volume =
                        pod["spec"]["volumes"].as_array().unwrap().iter().any(|v| v.get("image").is_some());
                    let expected: Vec<String> = if image_volume {
                        vec!["volume \"models\" has a type restricted does not allow: [\"image\"]".to_owned()]
                    } else {
                        Vec::new()
                    };
                    assert_eq!(pod_security_violations(pod, true), expected, "{name} engine (restricted)");
                    assert_eq!(pod_security_violations(pod, false), Vec::<String>::new(), "{name} engine (baseline)");
                    checked += 1;
                }
                Some("Job") => {
                    assert_eq!(
                        pod_security_violations(pod, true),
                        Vec::<String>::new(),
                        "{name} download (restricted)"
                    );
                }
                _ => {}
            }
        }
    }
    assert_eq!(checked, 7, "every engine's pod was checked");
}
