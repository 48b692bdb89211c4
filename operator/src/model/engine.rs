//! What differs between serving engines: pinned images, command lines, health and metrics paths,
//! and how long loading weights may take. One `match` per question, so adding an engine is a
//! compile error everywhere it matters. Pure.

use agent_crds::model::{Engine, SERVED_MODEL_PORT};

/// What the engine's command line is built from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineInput<'a> {
    /// Name the model is served under.
    pub served_name: &'a str,
    /// Path of the weights (file or directory) in the container.
    pub model_path: &'a str,
    /// Accelerators per replica; 0 on CPU.
    pub devices: i64,
    /// Context length to serve, when the Model declares one.
    pub context_length: Option<i64>,
    /// Whether the Model declares tool calling.
    pub tools: bool,
    /// vLLM's tool-call parser.
    pub tool_call_parser: Option<&'a str>,
}

/// How the engine container is started.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Launch {
    /// Replaces the image's entrypoint when set.
    pub command: Option<Vec<String>>,
    /// Arguments (the Model's extra `args` are appended by the caller).
    pub args: Vec<String>,
    /// Environment variables.
    pub env: Vec<(String, String)>,
}

/// Where the engine publishes Prometheus metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricsEndpoint {
    /// Container port.
    pub port: u16,
    /// HTTP path.
    pub path: &'static str,
}

/// Pinned default image of `engine`; `None` for engines whose images are per model (NIM) or
/// that use the operator's runtime image.
pub fn default_image(engine: Engine, accelerated: bool) -> Option<&'static str> {
    match (engine, accelerated) {
        (Engine::Vllm, _) => Some("docker.io/vllm/vllm-openai:v0.11.0"),
        (Engine::Llamacpp, false) => Some("ghcr.io/ggml-org/llama.cpp:server-b6715"),
        (Engine::Llamacpp, true) => Some("ghcr.io/ggml-org/llama.cpp:server-cuda-b6715"),
        (Engine::Ollama, _) => Some("docker.io/ollama/ollama:0.12.6"),
        (Engine::Tgi, _) => Some("ghcr.io/huggingface/text-generation-inference:3.3.6"),
        (Engine::Tei, false) => Some("ghcr.io/huggingface/text-embeddings-inference:cpu-1.8"),
        (Engine::Tei, true) => Some("ghcr.io/huggingface/text-embeddings-inference:1.8"),
        (Engine::Nim | Engine::Runtime, _) => None,
    }
}

/// Command line and environment of the engine.
pub fn launch(engine: Engine, input: &EngineInput<'_>) -> Launch {
    let port = SERVED_MODEL_PORT.to_string();
    let owned = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    match engine {
        Engine::Vllm => {
            // `python3 -m ...api_server` accepts `--model`; the image's `vllm serve` entrypoint does not.
            let mut args = owned(&["--model", input.model_path, "--served-model-name", input.served_name]);
            args.extend(owned(&["--host", "0.0.0.0", "--port", &port]));
            if input.devices > 0 {
                args.extend(["--tensor-parallel-size".to_owned(), input.devices.to_string()]);
            }
            if let Some(length) = input.context_length {
                args.extend(["--max-model-len".to_owned(), length.to_string()]);
            }
            if let Some(parser) = input.tool_call_parser {
                args.extend(owned(&["--enable-auto-tool-choice", "--tool-call-parser", parser]));
            }
            Launch {
                command: Some(owned(&["python3", "-m", "vllm.entrypoints.openai.api_server"])),
                args,
                env: vec![("HF_HUB_OFFLINE".to_owned(), "1".to_owned())],
            }
        }
        Engine::Llamacpp => {
            let mut args = owned(&["-m", input.model_path, "--host", "0.0.0.0", "--port", &port]);
            args.extend(owned(&["--alias", input.served_name, "--metrics"]));
            if input.devices > 0 {
                args.extend(owned(&["--n-gpu-layers", "999"]));
            }
            if let Some(length) = input.context_length {
                args.extend(["--ctx-size".to_owned(), length.to_string()]);
            }
            if input.tools {
                // Tool calls need the model's own chat template.
                args.push("--jinja".to_owned());
            }
            Launch { command: None, args, env: Vec::new() }
        }
        Engine::Ollama => Launch {
            // Ollama serves from its own store; the weights are imported under the served name once
            // (the store lives on the cache volume, so restarts reuse it).
            command: Some(owned(&["/bin/sh", "-c", OLLAMA_SCRIPT])),
            args: Vec::new(),
            env: vec![
                ("OLLAMA_HOST".to_owned(), format!("0.0.0.0:{port}")),
                ("OLLAMA_MODELS".to_owned(), format!("{}/ollama", super::source::MODELS_DIR)),
                ("OLLAMA_KEEP_ALIVE".to_owned(), "-1".to_owned()),
                ("MODEL_PATH".to_owned(), input.model_path.to_owned()),
                ("SERVED_NAME".to_owned(), input.served_name.to_owned()),
            ],
        },
        Engine::Tgi => {
            let mut args = owned(&["--model-id", input.model_path, "--served-model-name", input.served_name]);
            args.extend(owned(&["--hostname", "0.0.0.0", "--port", &port]));
            if input.devices > 1 {
                args.extend(["--num-shard".to_owned(), input.devices.to_string()]);
            }
            if let Some(length) = input.context_length {
                args.extend(["--max-total-tokens".to_owned(), length.to_string()]);
            }
            Launch { command: None, args, env: vec![("HF_HUB_OFFLINE".to_owned(), "1".to_owned())] }
        }
        Engine::Tei => {
            let mut args = owned(&["--model-id", input.model_path, "--served-model-name", input.served_name]);
            args.extend(owned(&["--hostname", "0.0.0.0", "--port", &port]));
            Launch { command: None, args, env: vec![("HF_HUB_OFFLINE".to_owned(), "1".to_owned())] }
        }
        Engine::Nim => {
            let mut env = vec![
                ("NIM_MODEL_NAME".to_owned(), input.model_path.to_owned()),
                ("NIM_SERVED_MODEL_NAME".to_owned(), input.served_name.to_owned()),
                ("NIM_SERVER_PORT".to_owned(), port),
                ("NIM_CACHE_PATH".to_owned(), "/tmp/nim-cache".to_owned()),
            ];
            if input.devices > 0 {
                env.push(("NIM_TENSOR_PARALLEL_SIZE".to_owned(), input.devices.to_string()));
            }
            Launch { command: None, args: Vec::new(), env }
        }
        Engine::Runtime => {
            // The runtime image carries the built-in embedding model (served on /v1/embeddings);
            // threads follow the container's CPU limit (the runtime reads its cgroup quota).
            let mut args =
                owned(&["serve-model", "--model", input.model_path, "--served-model-name", input.served_name]);
            args.extend(owned(&["--port", &port, "--embedding-model-dir", RUNTIME_EMBEDDING_MODEL_DIR]));
            if let Some(length) = input.context_length {
                args.extend(["--context-length".to_owned(), length.to_string()]);
            }
            Launch { command: None, args, env: vec![("RUST_LOG".to_owned(), "info".to_owned())] }
        }
    }
}

/// Where the runtime image keeps the built-in embedding model (all-MiniLM-L6-v2).
pub const RUNTIME_EMBEDDING_MODEL_DIR: &str = "/models/all-MiniLM-L6-v2";

/// Port of Ray's head on a multi-node group's leader.
pub const RAY_PORT: u16 = 6379;

/// Which pod of a multi-node group (a LeaderWorkerSet group) a launch is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupRole {
    /// Index 0: runs Ray's head and the API server.
    Leader,
    /// Indexes 1 and up: join the leader's Ray cluster and run the model's shards.
    Worker,
}

/// The launch of one pod of a group of `nodes` pods, from the engine's single-node `launch`
/// (whose args, and the Model's extra args the caller appends to the leader's, go to the API
/// server as `"$@"`, so they need no shell quoting). vLLM over Ray, as LWS's vLLM example runs it: the leader starts Ray's head,
/// waits until every pod of the group (`LWS_GROUP_SIZE`, set by LWS) has joined, then serves
/// with tensor parallelism over its pod's devices (already in `launch`) and pipeline parallelism
/// over the pods; the workers join the leader (`LWS_LEADER_ADDRESS`) and block. `None` for
/// engines without multi-node serving (validation refuses them).
pub fn group_launch(engine: Engine, launch: Launch, role: GroupRole, nodes: i32) -> Option<Launch> {
    let owned = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    match engine {
        Engine::Vllm => Some(match role {
            GroupRole::Leader => {
                let mut args = launch.args;
                args.extend(["--pipeline-parallel-size".to_owned(), nodes.to_string()]);
                args.extend(owned(&["--distributed-executor-backend", "ray"]));
                Launch {
                    command: Some(owned(&["/bin/sh", "-c", VLLM_LEADER_SCRIPT, "vllm-leader"])),
                    args,
                    env: launch.env,
                }
            }
            GroupRole::Worker => Launch {
                command: Some(owned(&["/bin/sh", "-c", VLLM_WORKER_SCRIPT])),
                args: Vec::new(),
                env: launch.env,
            },
        }),
        Engine::Llamacpp | Engine::Ollama | Engine::Tgi | Engine::Tei | Engine::Nim | Engine::Runtime => None,
    }
}

/// The leader of a vLLM group: Ray's head, a wait for the group's pods, then the API server.
const VLLM_LEADER_SCRIPT: &str = r#"ray start --head --port=6379 --disable-usage-stats || exit 1
until [ "$(python3 -c 'import ray; ray.init(address="auto", logging_level="ERROR"); print(sum(1 for n in ray.nodes() if n["Alive"]))' 2>/dev/null)" = "$LWS_GROUP_SIZE" ]; do
  echo "waiting for the $LWS_GROUP_SIZE pods of the group to join Ray"; sleep 5
done
exec python3 -m vllm.entrypoints.openai.api_server "$@""#;

/// A worker of a vLLM group: joins the leader's Ray cluster and stays in the foreground.
const VLLM_WORKER_SCRIPT: &str = r#"exec ray start --address="$LWS_LEADER_ADDRESS:6379" --block --disable-usage-stats"#;

/// Starts `ollama serve`, imports the weights under the served name once the server answers,
/// then waits on the server so its exit ends the container.
const OLLAMA_SCRIPT: &str = r#"ollama serve &
server=$!
until ollama list >/dev/null 2>&1; do sleep 1; done
printf 'FROM %s\n' "$MODEL_PATH" > /tmp/Modelfile
ollama create "$SERVED_NAME" -f /tmp/Modelfile || exit 1
wait "$server""#;

/// Path the engine answers with 200 once it can serve.
pub fn health_path(engine: Engine) -> &'static str {
    match engine {
        Engine::Vllm | Engine::Llamacpp | Engine::Tgi | Engine::Tei => "/health",
        Engine::Ollama => "/api/tags",
        Engine::Nim => "/v1/health/ready",
        Engine::Runtime => "/readyz",
    }
}

/// Where the engine publishes metrics; `None` when it publishes none.
pub fn metrics(engine: Engine) -> Option<MetricsEndpoint> {
    match engine {
        Engine::Vllm | Engine::Llamacpp | Engine::Tgi | Engine::Runtime => {
            Some(MetricsEndpoint { port: SERVED_MODEL_PORT, path: "/metrics" })
        }
        // TEI serves Prometheus on its own port.
        Engine::Tei => Some(MetricsEndpoint { port: 9000, path: "/metrics" }),
        Engine::Nim => Some(MetricsEndpoint { port: SERVED_MODEL_PORT, path: "/v1/metrics" }),
        Engine::Ollama => None,
    }
}

/// How long the startup probe waits for the engine to load its weights, in seconds. GPU engines
/// load tens of gigabytes (and NIM may build engines first); CPU engines serve small models.
pub fn startup_budget_seconds(engine: Engine, accelerated: bool) -> i32 {
    match (engine, accelerated) {
        (Engine::Nim, _) => 3600,
        (Engine::Vllm | Engine::Tgi | Engine::Llamacpp | Engine::Ollama, true) => 1800,
        (Engine::Vllm | Engine::Tgi, false) => 1200,
        (Engine::Llamacpp | Engine::Ollama | Engine::Tei | Engine::Runtime, false)
        | (Engine::Tei | Engine::Runtime, true) => 600,
    }
}

/// Whether the engine needs a large `/dev/shm` (tensor-parallel NCCL and PyTorch workers).
pub fn needs_shared_memory(engine: Engine) -> bool {
    matches!(engine, Engine::Vllm | Engine::Tgi | Engine::Nim)
}

/// Whether the engine writes into the model volume (Ollama keeps its store there).
pub fn writes_model_volume(engine: Engine) -> bool {
    matches!(engine, Engine::Ollama)
}

/// Whether the engine's image is built to run as a non-root user with a read-only root (our
/// runtime image, user 65532). The others' images default to root; their pods run as 65532 too
/// (the restricted Pod Security Standard) with `HOME` and caches on the pod's scratch space.
pub fn image_is_non_root(engine: Engine) -> bool {
    matches!(engine, Engine::Runtime)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(devices: i64) -> EngineInput<'static> {
        EngineInput {
            served_name: "llama",
            model_path: "/models/hf/org/name/main",
            devices,
            context_length: Some(8192),
            tools: true,
            tool_call_parser: Some("llama3_json"),
        }
    }

    fn value_after<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
        args.iter().position(|a| a == flag).map(|i| args[i + 1].as_str())
    }

    #[test]
    fn vllm_gets_tensor_parallelism_from_the_device_count_and_the_tool_parser() {
        let launch = launch(Engine::Vllm, &input(4));
        assert_eq!(value_after(&launch.args, "--model"), Some("/models/hf/org/name/main"));
        assert_eq!(value_after(&launch.args, "--served-model-name"), Some("llama"));
        assert_eq!(value_after(&launch.args, "--tensor-parallel-size"), Some("4"));
        assert_eq!(value_after(&launch.args, "--port"), Some("8000"));
        assert_eq!(value_after(&launch.args, "--tool-call-parser"), Some("llama3_json"));
        assert!(launch.args.contains(&"--enable-auto-tool-choice".to_owned()));
        let cpu = super::launch(Engine::Vllm, &input(0));
        assert_eq!(value_after(&cpu.args, "--tensor-parallel-size"), None);
    }

    #[test]
    fn a_vllm_group_leader_serves_pipeline_parallel_over_ray_and_its_workers_join_the_leader() {
        let single = launch(Engine::Vllm, &input(4));
        let leader = group_launch(Engine::Vllm, single.clone(), GroupRole::Leader, 3).unwrap();
        let command = leader.command.clone().unwrap();
        assert_eq!(command[..2], ["/bin/sh", "-c"]);
        assert!(command[2].starts_with("ray start --head --port=6379"), "{}", command[2]);
        assert!(command[2].contains(r#"= "$LWS_GROUP_SIZE" ]"#), "waits for the whole group: {}", command[2]);
        assert!(command[2].ends_with(r#"exec python3 -m vllm.entrypoints.openai.api_server "$@""#), "{}", command[2]);
        assert_eq!(value_after(&leader.args, "--tensor-parallel-size"), Some("4"), "devices of one pod");
        assert_eq!(value_after(&leader.args, "--pipeline-parallel-size"), Some("3"), "pods of one group");
        assert_eq!(value_after(&leader.args, "--distributed-executor-backend"), Some("ray"));
        assert_eq!(leader.args[..single.args.len()], single.args[..], "the single-node arguments come first");
        let worker = group_launch(Engine::Vllm, single.clone(), GroupRole::Worker, 3).unwrap();
        assert!(worker.args.is_empty(), "{worker:?}");
        assert!(worker.command.unwrap()[2].contains(r#"--address="$LWS_LEADER_ADDRESS:6379" --block"#));
        assert_eq!(worker.env, single.env, "workers run the engine's code with its environment");
        assert_eq!(group_launch(Engine::Tgi, launch(Engine::Tgi, &input(2)), GroupRole::Leader, 2), None);
    }

    #[test]
    fn llama_server_listens_on_all_interfaces_under_the_served_alias() {
        let launch = launch(Engine::Llamacpp, &input(0));
        assert_eq!(value_after(&launch.args, "-m"), Some("/models/hf/org/name/main"));
        assert_eq!(value_after(&launch.args, "--host"), Some("0.0.0.0"));
        assert_eq!(value_after(&launch.args, "--alias"), Some("llama"));
        assert_eq!(value_after(&launch.args, "--n-gpu-layers"), None);
        assert_eq!(value_after(&super::launch(Engine::Llamacpp, &input(1)).args, "--n-gpu-layers"), Some("999"));
    }

    #[test]
    fn hugging_face_engines_take_the_model_id_and_every_engine_has_a_health_path() {
        for engine in [Engine::Tgi, Engine::Tei] {
            assert_eq!(value_after(&launch(engine, &input(2)).args, "--model-id"), Some("/models/hf/org/name/main"));
        }
        assert_eq!(value_after(&launch(Engine::Tgi, &input(2)).args, "--num-shard"), Some("2"));
        assert_eq!(health_path(Engine::Ollama), "/api/tags");
        assert_eq!(health_path(Engine::Vllm), "/health");
        assert!(default_image(Engine::Nim, true).is_none());
        for engine in [Engine::Vllm, Engine::Llamacpp, Engine::Ollama, Engine::Tgi, Engine::Tei] {
            let image = default_image(engine, false).unwrap();
            let tag = image.rsplit_once(':').unwrap().1;
            assert!(tag != "latest" && tag.chars().any(|c| c.is_ascii_digit()), "{image} is not pinned");
        }
    }
}
