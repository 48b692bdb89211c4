#!/usr/bin/env bash
# The main job: an agent running locally on the embedded defaults, in one process: the agent
# runtime with its model in process (llama.cpp, Gemma 3 270M), embedded memory on local disk and
# the web chat page. Installs the model files (cached), builds the runtime and serves the agent
# on http://127.0.0.1:8080 until Ctrl-C. Open that address in a browser, or:
#
#   scripts/run-local.sh [AGENT_MANIFEST]   (default examples/local-agent.yaml)
#
#   curl -s localhost:8080/v1/chat/completions -H 'content-type: application/json' \
#     -H 'x-session-id: demo' -d '{"messages":[{"role":"user","content":"What is the capital of France?"}]}'
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
MANIFEST="${1:-examples/local-agent.yaml}"
# shellcheck source=scripts/target-dir.sh
source "$ROOT/scripts/target-dir.sh"

bash scripts/install-system.sh
echo "== installing Gemma 3 270M and the embedding model (cached after the first run)"
bash scripts/install-llm.sh --models-only
echo "== building agent-runtime (llama.cpp inside it is built for this CPU once, then cached)"
cargo build --release --locked -p agent-runtime

# The GGUF and the built-in embedding model (all-MiniLM-L6-v2) come with the LLM install; with
# the latter the agent's knowledge and long-term memory run in the embedded store under .agent-data/.
# shellcheck disable=SC1091
source "${AGENT_LLM_DIR:-${HOME:-/tmp}/.cache/agent-operator/llm}/models.env"
export AGENT_EMBEDDING_MODEL_DIR="${AGENT_EMBEDDING_MODEL_DIR:-$MINILM_DIR}"
export AGENT_MODEL_FILE="${AGENT_MODEL_FILE:-$GEMMA_GGUF}"

echo "== serving $MANIFEST on http://127.0.0.1:8080 (data in .agent-data/)"
exec "$CARGO_TARGET_DIR/release/agent-runtime" run "$MANIFEST" --addr 127.0.0.1:8080
