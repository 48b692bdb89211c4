//! Validate: the rules the CRD schema cannot express, checked before anything is built. Pure.

use agent_crds::model::{CacheAccessMode, Engine, Model, ModelAutoscaling, ModelServe};
use kube::ResourceExt;

use super::autoscaling::{canonical_quantity, unsupported};
use super::source::Source;
use crate::quantity::parse_bytes;

/// Longest name of a served Model: its download Job (`<name>-download-<8 hex>`) must be a
/// 63-character label, as Job names are copied into the `job-name` pod label.
pub const MAX_SERVED_MODEL_NAME: usize = 45;

/// Checks the Model; returns the parsed source of a served Model, or every problem in one message.
pub fn validate(model: &Model) -> Result<Option<Source>, String> {
    let mut problems = Vec::new();
    if let Some(endpoint) = &model.spec.endpoint
        && !(endpoint.base_url.starts_with("http://") || endpoint.base_url.starts_with("https://"))
    {
        problems.push(format!("endpoint.baseUrl {:?} must start with http:// or https://", endpoint.base_url));
    }
    let source = model.spec.serve.as_ref().and_then(|serve| check_serve(model, serve, &mut problems));
    if problems.is_empty() { Ok(source) } else { Err(problems.join("; ")) }
}

fn check_serve(model: &Model, serve: &ModelServe, problems: &mut Vec<String>) -> Option<Source> {
    let name = model.name_any();
    if name.len() > MAX_SERVED_MODEL_NAME {
        problems.push(format!("a served Model's name may have at most {MAX_SERVED_MODEL_NAME} characters"));
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) || name.contains('.') {
        problems.push(format!("name {name:?} must start with a letter and hold no dots (it names a Service)"));
    }
    if serve.image.as_deref().is_some_and(|image| image.trim().is_empty() || image.contains(char::is_whitespace)) {
        problems.push("serve.image must be an image reference without spaces".to_owned());
    }
    if serve.engine == Engine::Nim && serve.image.is_none() {
        problems.push("engine nim needs serve.image (NIM images are per model)".to_owned());
    }
    if let Some(cache) = &serve.cache
        && parse_bytes(&cache.size).is_none_or(|bytes| bytes == 0)
    {
        problems.push(format!("serve.cache.size {:?} is not a positive quantity", cache.size));
    }
    if let Some(accelerator) = &serve.accelerator
        && accelerator.count < 1
    {
        problems.push("serve.accelerator.count must be at least 1".to_owned());
    }
    if let Some(autoscaling) = &serve.autoscaling {
        check_autoscaling(serve, autoscaling, problems);
    }
    if serve.nodes > 1 {
        check_nodes(serve, problems);
    }
    if serve.workload_priority_class_name.is_some() && serve.queue_name.is_none() {
        problems.push("serve.workloadPriorityClassName needs serve.queueName (it is a Kueue priority)".to_owned());
    }
    let source = match Source::parse(&serve.uri) {
        Ok(source) => source,
        Err(error) => {
            problems.push(error.to_string());
            return None;
        }
    };
    let single_file = matches!(&source, Source::HuggingFace { file: Some(_), .. } | Source::Https { .. });
    if serve.engine == Engine::Runtime {
        check_runtime_engine(model, serve, problems);
    }
    match serve.engine {
        Engine::Llamacpp | Engine::Ollama | Engine::Runtime if matches!(&source, Source::Oci { .. }) => {
            problems.push(format!(
                "engine {:?} loads one GGUF file, but an oci:// image is mounted as a directory: use \
                 hf://org/name/model.gguf, https://.../model.gguf or pvc://claim/path/model.gguf",
                serve.engine
            ));
        }
        Engine::Llamacpp | Engine::Ollama | Engine::Runtime
            if matches!(&source, Source::HuggingFace { file: None, .. }) =>
        {
            problems.push(format!(
                "engine {:?} loads one GGUF file: name it in the uri, e.g. hf://org/name/model-Q4_K_M.gguf",
                serve.engine
            ));
        }
        Engine::Tgi | Engine::Tei if single_file => {
            problems.push(format!("engine {:?} loads a model directory, not a single file", serve.engine));
        }
        _ => {}
    }
    Some(source)
}

/// `agent-runtime serve-model` runs llama.cpp on CPU with its built-in chat templates: no GPU,
/// no tool-call format.
fn check_runtime_engine(model: &Model, serve: &ModelServe, problems: &mut Vec<String>) {
    if serve.accelerator.is_some() {
        problems.push(
            "engine runtime serves on CPU: remove serve.accelerator, or serve the model on GPUs with engine \
             llamacpp or vllm"
                .to_owned(),
        );
    }
    if model.spec.capabilities.tools {
        problems.push(
            "engine runtime cannot call tools (llama.cpp's built-in chat templates have no tool format): set \
             capabilities.tools to false, or serve the model with engine llamacpp or vllm"
                .to_owned(),
        );
    }
}

/// The CRD's rules for `serve.nodes` above 1, for API servers that did not check them.
fn check_nodes(serve: &ModelServe, problems: &mut Vec<String>) {
    if serve.engine != Engine::Vllm {
        problems.push("serve.nodes > 1 needs engine vllm (multi-node serving runs vLLM over Ray)".to_owned());
    }
    if serve.autoscaling.is_some() {
        problems.push("serve.autoscaling cannot be combined with serve.nodes > 1 yet".to_owned());
    }
    if serve.queue_name.is_some() {
        problems.push("serve.queueName cannot be combined with serve.nodes > 1 yet".to_owned());
    }
    if serve.accelerator.as_ref().is_some_and(|a| a.shared_claim_name.is_some()) {
        problems.push(
            "serve.accelerator.sharedClaimName cannot be combined with serve.nodes > 1 (each pod of a group claims \
             its own devices)"
                .to_owned(),
        );
    }
    let downloaded = !(serve.uri.starts_with("pvc://") || serve.uri.starts_with("oci://"));
    if downloaded && serve.cache.as_ref().is_none_or(|c| c.access_mode != CacheAccessMode::ReadWriteMany) {
        problems.push(
            "serve.nodes > 1 with downloaded weights needs serve.cache.accessMode ReadWriteMany (every pod of a group \
             mounts the cache, each on its own node)"
                .to_owned(),
        );
    }
}

fn check_autoscaling(serve: &ModelServe, autoscaling: &ModelAutoscaling, problems: &mut Vec<String>) {
    for (field, value) in
        [("scaleToZeroAfter", &autoscaling.scale_to_zero_after), ("wakeTimeout", &autoscaling.wake_timeout)]
    {
        let Some(value) = value else { continue };
        if !autoscaling.scales_to_zero() {
            problems.push(format!("serve.autoscaling.{field} needs minReplicas 0"));
        }
        if agent_crds::render::parse_duration_seconds(value).is_err() {
            problems.push(format!("serve.autoscaling.{field} {value:?} must be a duration such as 10m or 1h30m"));
        }
    }
    if autoscaling.min_replicas > autoscaling.max_replicas {
        problems.push("serve.autoscaling.minReplicas must not exceed maxReplicas".to_owned());
    }
    if canonical_quantity(&autoscaling.target).is_none() {
        problems.push(format!(
            "serve.autoscaling.target {:?} must be a positive decimal quantity of at least 1m, such as 4, 1.5 or 500m",
            autoscaling.target
        ));
    }
    if let Some(address) = &autoscaling.prometheus_address
        && !(address.starts_with("http://") || address.starts_with("https://"))
    {
        problems.push(format!("serve.autoscaling.prometheusAddress {address:?} must start with http:// or https://"));
    }
    if let Some(why) = unsupported(serve.engine, autoscaling.metric, serve.accelerator.is_some()) {
        problems.push(why);
    }
}

#[cfg(test)]
mod tests {
    use agent_crds::model::{Accelerator, ModelCache, ModelSpec};

    use super::*;

    fn served(name: &str, serve: ModelServe) -> Model {
        Model::new(name, ModelSpec { serve: Some(serve), ..ModelSpec::default() })
    }

    #[test]
    fn a_well_formed_served_model_yields_its_source() {
        let model = served(
            "llama",
            ModelServe { uri: "hf://meta-llama/Llama-3.1-8B-Instruct".into(), replicas: 1, ..ModelServe::default() },
        );
        assert!(matches!(validate(&model), Ok(Some(Source::HuggingFace { .. }))));
    }

    #[test]
    fn engine_and_source_mismatches_and_bad_sizes_are_reported_together() {
        let model = served(
            "gemma",
            ModelServe {
                engine: Engine::Llamacpp,
                uri: "hf://ggml-org/gemma-3-270m-GGUF".into(),
                cache: Some(ModelCache {
                    size: "lots".into(),
                    storage_class_name: None,
                    access_mode: agent_crds::model::CacheAccessMode::ReadWriteOnce,
                    hf_token_secret_ref: None,
                }),
                accelerator: Some(Accelerator { count: 0, ..Accelerator::default() }),
                ..ModelServe::default()
            },
        );
        let problems = validate(&model).unwrap_err();
        assert!(problems.contains("loads one GGUF file"), "{problems}");
        assert!(problems.contains("cache.size \"lots\""), "{problems}");
        assert!(problems.contains("count must be at least 1"), "{problems}");
        let tei = served(
            "embed",
            ModelServe { engine: Engine::Tei, uri: "https://example.com/m/model.onnx".into(), ..ModelServe::default() },
        );
        assert!(validate(&tei).unwrap_err().contains("model directory"));
    }

    #[test]
    fn served_model_names_must_fit_the_names_of_their_children() {
        let long = served(&"m".repeat(46), ModelServe { uri: "oci://r/m:1".into(), ..ModelServe::default() });
        assert!(validate(&long).unwrap_err().contains("at most 45"));
        let dotted = served("llama.3", ModelServe { uri: "oci://r/m:1".into(), ..ModelServe::default() });
        assert!(validate(&dotted).unwrap_err().contains("no dots"));
        let nim = served("nim", ModelServe { engine: Engine::Nim, uri: "oci://r/m:1".into(), ..ModelServe::default() });
        assert!(validate(&nim).unwrap_err().contains("engine nim needs serve.image"));
    }

    #[test]
    fn the_runtime_engine_serves_one_gguf_on_cpu_without_tools() {
        let runtime = |uri: &str| {
            served("tiny", ModelServe { engine: Engine::Runtime, uri: uri.into(), ..ModelServe::default() })
        };
        assert!(matches!(validate(&runtime("hf://org/m/model.gguf")), Ok(Some(Source::HuggingFace { .. }))));
        assert!(validate(&runtime("hf://org/m")).unwrap_err().contains("loads one GGUF file"));
        let mut on_gpu = runtime("hf://org/m/model.gguf");
        on_gpu.spec.serve.as_mut().unwrap().accelerator = Some(Accelerator { count: 1, ..Accelerator::default() });
        on_gpu.spec.capabilities.tools = true;
        let problems = validate(&on_gpu).unwrap_err();
        assert!(problems.contains("engine runtime serves on CPU"), "{problems}");
        assert!(problems.contains("engine runtime cannot call tools"), "{problems}");
    }

    #[test]
    fn gguf_engines_on_image_volumes_are_refused_with_what_to_use() {
        let image =
            served("tiny", ModelServe { engine: Engine::Llamacpp, uri: "oci://r/m:1".into(), ..ModelServe::default() });
        assert!(validate(&image).unwrap_err().contains("an oci:// image is mounted as a directory"));
    }

    #[test]
    fn several_nodes_need_vllm_a_shared_cache_and_no_autoscaler_queue_or_shared_claim() {
        let multi = |engine, uri: &str, access_mode| {
            served(
                "big",
                ModelServe {
                    engine,
                    uri: uri.into(),
                    nodes: 2,
                    cache: Some(ModelCache {
                        size: "500Gi".into(),
                        storage_class_name: None,
                        access_mode,
                        hf_token_secret_ref: None,
                    }),
                    ..ModelServe::default()
                },
            )
        };
        assert!(validate(&multi(Engine::Vllm, "hf://org/m", CacheAccessMode::ReadWriteMany)).is_ok());
        let problems = validate(&multi(Engine::Tgi, "hf://org/m", CacheAccessMode::ReadWriteOnce)).unwrap_err();
        assert!(problems.contains("needs engine vllm"), "{problems}");
        assert!(problems.contains("accessMode ReadWriteMany"), "{problems}");
        let mut shared = multi(Engine::Vllm, "pvc://weights/m", CacheAccessMode::ReadWriteOnce);
        let serve = shared.spec.serve.as_mut().unwrap();
        serve.cache = None;
        serve.queue_name = Some("gpu".into());
        serve.accelerator =
            Some(Accelerator { count: 8, shared_claim_name: Some("c".into()), ..Accelerator::default() });
        let problems = validate(&shared).unwrap_err();
        assert!(problems.contains("queueName cannot be combined"), "{problems}");
        assert!(problems.contains("sharedClaimName cannot be combined"), "{problems}");
        assert!(!problems.contains("ReadWriteMany"), "a pvc:// source is not downloaded: {problems}");
    }

    #[test]
    fn autoscaling_needs_a_signal_the_engine_exports_and_sane_bounds() {
        let autoscaled = |engine, min_replicas, target: &str| {
            served(
                "llama",
                ModelServe {
                    engine,
                    uri: "hf://org/m".into(),
                    autoscaling: Some(ModelAutoscaling {
                        min_replicas,
                        max_replicas: 2,
                        metric: agent_crds::model::AutoscalingMetric::QueueDepth,
                        target: target.into(),
                        prometheus_address: None,
                        scale_to_zero_after: (min_replicas == 1).then(|| "soon".to_owned()),
                        wake_timeout: None,
                    }),
                    ..ModelServe::default()
                },
            )
        };
        assert!(validate(&autoscaled(Engine::Vllm, 0, "4")).is_ok(), "scale to zero");
        let idle_without_zero = validate(&autoscaled(Engine::Vllm, 1, "4")).unwrap_err();
        assert!(idle_without_zero.contains("scaleToZeroAfter needs minReplicas 0"), "{idle_without_zero}");
        assert!(idle_without_zero.contains("\"soon\" must be a duration"), "{idle_without_zero}");
        let problems = validate(&autoscaled(Engine::Tgi, 0, "1Gi")).unwrap_err();
        assert!(problems.contains("positive decimal quantity"), "{problems}");
        assert!(problems.contains("needs engine vllm or llamacpp"), "{problems}");
        assert!(validate(&autoscaled(Engine::Vllm, 3, "4")).unwrap_err().contains("must not exceed maxReplicas"));
    }
}
