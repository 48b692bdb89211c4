#!/usr/bin/env bash
# Benchmark of the agent's memory (agent-runtime/benches/vector_search.rs): search latency
# p50/p99, recall@10 and load time of the embedded vector store beside Chroma loaded with the
# same vectors in the same run (10k and 100k 384-d vectors), start-to-ready of the store on disk,
# and ingest throughput through Knowledge::ingest against the embedding model alone.
# Installs the pinned chromadb into the cached bench venv (idempotent), makes sure the embedding
# model is installed (scripts/install-llm.sh), runs the bench, prints markdown tables on stdout
# and writes $CARGO_TARGET_DIR/bench/vector_search.json. Extra arguments go to the bench, e.g.
#   bash scripts/bench-memory.sh --sizes 10000 --rounds 3
# Timings depend on the machine and on whatever else runs on it: compare rows of one run, not runs.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/target-dir.sh
source "$ROOT/scripts/target-dir.sh"
VENV="${BENCH_VENV:-$HOME/.cache/agent-operator/bench-venv}"
CHROMA_VERSION=1.5.9
# chromadb pulls in python-dateutil 4, which breaks botocore (a LiteLLM dependency in the same
# venv, used by scripts/bench-runtime.sh); the last 2.x satisfies both.
DATEUTIL_VERSION=2.9.0.post0

installed() {
  "$VENV/bin/python" -c "import importlib.metadata as m; print(m.version('$1'))" 2>/dev/null || true
}

echo "== chromadb $CHROMA_VERSION in $VENV" >&2
if [[ ! -x "$VENV/bin/python" ]]; then
  python3 -m venv "$VENV"
fi
if [[ "$(installed chromadb)" != "$CHROMA_VERSION" || "$(installed python-dateutil)" != "$DATEUTIL_VERSION" ]]; then
  "$VENV/bin/pip" install --quiet --disable-pip-version-check \
    "chromadb==$CHROMA_VERSION" "python-dateutil==$DATEUTIL_VERSION" >&2
fi

echo "== embedding model (scripts/install-llm.sh)" >&2
bash scripts/install-llm.sh
# shellcheck source=/dev/null
source "${AGENT_LLM_DIR:-$HOME/.cache/agent-operator/llm}/env"
export MINILM_DIR

echo "== cargo bench -p agent-runtime --bench vector_search" >&2
cargo bench -p agent-runtime --bench vector_search -- --python "$VENV/bin/python" "$@"
