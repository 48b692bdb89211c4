#!/usr/bin/env bash
# The main job: an agent running locally on the embedded defaults (embedded memory on local
# disk, a small local model). Installs llama-server and Gemma 3 270M (cached), starts the model
# server, builds the runtime and serves the agent on http://127.0.0.1:8080 until Ctrl-C.
#
#   scripts/run-local.sh [AGENT_MANIFEST]   (default examples/local-agent.yaml)
#
# Then, from another shell:
#   curl -s localhost:8080/v1/chat/completions -H 'content-type: application/json' \
#     -H 'x-session-id: demo' -d '{"messages":[{"role":"user","content":"What is the capital of France?"}]}'
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
MANIFEST="${1:-examples/local-agent.yaml}"
MODEL_PORT="${LLAMA_PORT:-8091}"
# shellcheck source=scripts/target-dir.sh
source "$ROOT/scripts/target-dir.sh"

bash scripts/install-system.sh
echo "== installing llama-server and Gemma 3 270M (cached after the first run)"
bash scripts/install-llm.sh
echo "== building agent-runtime"
cargo build --release --locked -p agent-runtime

echo "== starting llama-server on 127.0.0.1:$MODEL_PORT"
bash scripts/llama-server.sh --port "$MODEL_PORT" >"${TMPDIR:-/tmp}/agent-llama-server.log" 2>&1 &
MODEL_PID=$!
trap 'kill "$MODEL_PID" 2>/dev/null || true' EXIT
for _ in $(seq 1 240); do
  curl -fs "http://127.0.0.1:$MODEL_PORT/health" >/dev/null 2>&1 && break
  kill -0 "$MODEL_PID" 2>/dev/null || { echo "llama-server exited; see ${TMPDIR:-/tmp}/agent-llama-server.log" >&2; exit 1; }
  sleep 0.5
done

# The built-in embedding model (all-MiniLM-L6-v2) comes with the LLM install; with it the agent's
# knowledge and long-term memory run in the embedded store under .agent-data/.
# shellcheck disable=SC1091
source "${AGENT_LLM_DIR:-${HOME:-/tmp}/.cache/agent-operator/llm}/env"
export AGENT_EMBEDDING_MODEL_DIR="${AGENT_EMBEDDING_MODEL_DIR:-$MINILM_DIR}"

echo "== serving $MANIFEST on http://127.0.0.1:8080 (data in .agent-data/)"
"$CARGO_TARGET_DIR/release/agent-runtime" run "$MANIFEST" --addr 127.0.0.1:8080
