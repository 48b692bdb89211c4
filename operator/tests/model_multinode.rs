//! The objects built for a multi-node served Model (examples/multinode-model.yaml): a
//! LeaderWorkerSet whose leader runs Ray's head and vLLM's API server and whose workers join it,
//! a DRA claim per pod, a Service in front of the leaders only; snapshots, and validation against
//! the Kubernetes 1.34 schemas and LWS's own CRD (scripts/schemas).

mod support;

use agent_crds::model::Model;
use agent_operator::model::build::Workload;
use serde_json::{Value, json};
use support::{build_children, example_model, pod_security_violations, temp_dir, validate_manifests};

const FILE: &str = "examples/multinode-model.yaml";

fn children(model: &Model, cache_ready: bool) -> Vec<Value> {
    build_children(model, "runtime:test", cache_ready).to_values()
}

fn kinds(children: &[Value]) -> Vec<&str> {
    children.iter().map(|c| c["kind"].as_str().unwrap()).collect()
}

fn find<'a>(children: &'a [Value], kind: &str) -> &'a Value {
    children.iter().find(|c| c["kind"] == kind).unwrap_or_else(|| panic!("no {kind}"))
}

fn template<'a>(set: &'a Value, which: &str) -> &'a Value {
    &set["spec"]["leaderWorkerTemplate"][which]
}

fn args(container: &Value) -> Vec<&str> {
    container["args"].as_array().into_iter().flatten().map(|a| a.as_str().unwrap()).collect()
}

#[test]
fn a_multinode_model_is_a_leader_worker_set_of_its_node_count_and_no_deployment() {
    let built = children(&example_model(FILE, "llama-405b"), true);
    insta::assert_yaml_snapshot!("llama-405b_multinode", built);
    assert_eq!(
        kinds(&built),
        ["ResourceClaimTemplate", "PersistentVolumeClaim", "Job", "LeaderWorkerSet", "Service"],
        "no Deployment beside the LeaderWorkerSet"
    );
    let set = find(&built, "LeaderWorkerSet");
    assert_eq!(set["apiVersion"], "leaderworkerset.x-k8s.io/v1");
    assert_eq!(set["metadata"]["name"], "llama-405b");
    assert_eq!(set["metadata"]["ownerReferences"][0]["kind"], "Model");
    assert_eq!(set["spec"]["replicas"], 1);
    assert_eq!(set["spec"]["leaderWorkerTemplate"]["size"], 2);
    assert_eq!(set["spec"]["leaderWorkerTemplate"]["restartPolicy"], "RecreateGroupOnPodRestart");
    let waiting = children(&example_model(FILE, "llama-405b"), false);
    assert_eq!(find(&waiting, "LeaderWorkerSet")["spec"]["replicas"], 0, "no GPU is held while the weights download");
}

#[test]
fn the_leader_serves_vllm_over_ray_with_pipeline_parallelism_and_the_workers_join_it() {
    let built = children(&example_model(FILE, "llama-405b"), true);
    let set = find(&built, "LeaderWorkerSet");
    let leader = &template(set, "leaderTemplate")["spec"]["containers"][0];
    let command: Vec<&str> = leader["command"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    assert_eq!(command[..2], ["/bin/sh", "-c"]);
    assert!(command[2].starts_with("ray start --head --port=6379"), "{}", command[2]);
    assert!(command[2].contains("exec python3 -m vllm.entrypoints.openai.api_server \"$@\""), "{}", command[2]);
    let leader_args = args(leader);
    let after = |flag: &str| leader_args.iter().position(|a| *a == flag).map(|i| leader_args[i + 1]);
    assert_eq!(after("--tensor-parallel-size"), Some("8"), "the devices of one pod: {leader_args:?}");
    assert_eq!(after("--pipeline-parallel-size"), Some("2"), "the pods of one group: {leader_args:?}");
    assert_eq!(after("--distributed-executor-backend"), Some("ray"));
    assert_eq!(after("--served-model-name"), Some("llama-3.1-405b"));
    let mut extra = example_model(FILE, "llama-405b");
    extra.spec.serve.as_mut().unwrap().args = vec!["--pipeline-parallel-size".into(), "4".into()];
    let extra = children(&extra, true);
    let extra_set = find(&extra, "LeaderWorkerSet");
    let extra_args = args(&template(extra_set, "leaderTemplate")["spec"]["containers"][0]);
    assert_eq!(extra_args[extra_args.len() - 2..], ["--pipeline-parallel-size", "4"], "the Model's args come last");
    assert!(template(extra_set, "workerTemplate")["spec"]["containers"][0].get("args").is_none());
    assert!(leader["readinessProbe"]["httpGet"]["path"] == "/health" && leader["startupProbe"].is_object());
    let ports: Vec<&str> = leader["ports"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(ports, ["http", "ray"]);

    let worker = &template(set, "workerTemplate")["spec"]["containers"][0];
    assert!(worker["command"][2].as_str().unwrap().contains("--address=\"$LWS_LEADER_ADDRESS:6379\" --block"));
    assert!(worker.get("args").is_none(), "workers run no API server: {worker}");
    for probe in ["readinessProbe", "livenessProbe", "startupProbe", "ports"] {
        assert!(worker.get(probe).is_none(), "a worker serves no HTTP, so it has no {probe}");
    }
    assert_eq!(worker["image"], leader["image"]);
    assert_eq!(worker["volumeMounts"], leader["volumeMounts"], "every pod reads the weights");
    assert!(template(set, "workerTemplate")["metadata"].get("annotations").is_none(), "only the leader is scraped");
}

#[test]
fn every_pod_of_a_group_claims_its_own_devices_from_the_models_claim_template() {
    let built = children(&example_model(FILE, "llama-405b"), true);
    let claim_template = find(&built, "ResourceClaimTemplate");
    let name = claim_template["metadata"]["name"].as_str().unwrap();
    assert_eq!(claim_template["spec"]["spec"]["devices"]["requests"][0]["exactly"]["count"], 8, "devices per pod");
    let set = find(&built, "LeaderWorkerSet");
    for which in ["leaderTemplate", "workerTemplate"] {
        let pod = &template(set, which)["spec"];
        assert_eq!(
            pod["resourceClaims"],
            json!([{"name": "accelerator", "resourceClaimTemplateName": name}]),
            "{which}"
        );
        assert_eq!(pod["containers"][0]["resources"]["claims"], json!([{"name": "accelerator"}]), "{which}");
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{which}");
        assert_eq!(pod_security_violations(template(set, which), true), Vec::<String>::new(), "{which}");
    }
}

#[test]
fn the_service_selects_only_the_leaders_which_serve_the_api() {
    let built = children(&example_model(FILE, "llama-405b"), true);
    let selector = &find(&built, "Service")["spec"]["selector"];
    assert_eq!(selector["leaderworkerset.sigs.k8s.io/worker-index"], "0");
    let leader_labels = &template(find(&built, "LeaderWorkerSet"), "leaderTemplate")["metadata"]["labels"];
    for (key, value) in selector.as_object().unwrap() {
        if key != "leaderworkerset.sigs.k8s.io/worker-index" {
            assert_eq!(&leader_labels[key], value, "the leader carries {key}; LWS adds the worker index");
        }
    }
    let single = children(&example_model("examples/served-model.yaml", "llama-8b"), true);
    assert!(
        find(&single, "Service")["spec"]["selector"].get("leaderworkerset.sigs.k8s.io/worker-index").is_none(),
        "a one-node Model's Service is unchanged"
    );
}

#[test]
fn the_leader_worker_set_validates_against_lws_crd_and_the_rest_against_kubernetes_1_34() {
    let dir = temp_dir("multinode");
    let mut documents = children(&example_model(FILE, "llama-405b"), true);
    let mut on_image = example_model(FILE, "llama-405b");
    on_image.spec.serve.as_mut().unwrap().uri = "oci://registry.example.com/models/llama-405b:1".into();
    on_image.spec.serve.as_mut().unwrap().cache = None;
    documents.extend(children(&on_image, false));
    let text = documents.iter().map(|d| serde_yaml::to_string(d).unwrap()).collect::<Vec<_>>().join("---\n");
    std::fs::write(dir.join("multinode.yaml"), text).unwrap();
    let (ok, report) = validate_manifests(&[&dir]);
    assert!(ok, "{report}");
    assert!(report.contains(&format!("{} ok", documents.len())), "{report}");
    assert_eq!(documents.iter().filter(|d| d["kind"] == "LeaderWorkerSet").count(), 2);

    // The LeaderWorkerSet really meets LWS's schema: a field it lacks, or a wrong value, fails.
    let mut wrong = find(&documents, "LeaderWorkerSet").clone();
    wrong["spec"]["leaderWorkerTemplate"]["restartPolicy"] = json!("Always");
    wrong["spec"]["leaderWorkerTemplate"]["groupSize"] = json!(2);
    std::fs::write(dir.join("multinode.yaml"), serde_yaml::to_string(&wrong).unwrap()).unwrap();
    let (ok, report) = validate_manifests(&[&dir]);
    std::fs::remove_dir_all(&dir).ok();
    assert!(!ok && report.contains("FAIL") && report.contains("LeaderWorkerSet"), "{report}");
}

#[test]
fn a_single_node_model_still_builds_a_deployment() {
    let model = example_model("examples/served-model.yaml", "llama-8b");
    assert!(matches!(build_children(&model, "runtime:test", true).workload, Workload::Deployment(_)));
}
