#!/usr/bin/env bash
# Benchmark of the runtime's in-process llama.cpp engine (`agent-runtime serve-model`) beside
# llama.cpp's llama-server on the same GGUF (Gemma 3 270M Q4_K_M) with the same threads and 4
# sequences, at 1 and 4 concurrent streams (prompt and generation tokens/s, aggregate throughput,
# time to first token), and of the local main job (start-to-ready with the model loaded, first
# turn's time to first token, resident memory) (tests/benches/model_serving.rs). Installs
# llama-server and the models (scripts/install-llm.sh, cached), builds the release runtime and the
# bench, runs it, prints markdown tables on stdout and writes
# $CARGO_TARGET_DIR/bench/model_serving.json. Extra arguments go to the bench (`--help` lists
# them), e.g.
#   bash scripts/bench-model.sh --rounds 3
#   bash scripts/bench-model.sh --rounds 7 --max-tokens 128 --skip-local-job
# Fails (non-zero) when a server does not start, a request fails or an answer has no tokens.
# Timings depend on the machine and on whatever else runs on it: compare rows of one run, not runs.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/target-dir.sh
source "$ROOT/scripts/target-dir.sh"

echo "== llama-server, Gemma 3 270M and the embedding model (scripts/install-llm.sh)" >&2
bash scripts/install-llm.sh >&2

echo "== cargo build --release -p agent-runtime" >&2
cargo build --release -p agent-runtime >&2

echo "== cargo bench -p agent-tests --bench model_serving" >&2
cargo bench -p agent-tests --bench model_serving --no-run >&2
cargo bench -p agent-tests --bench model_serving -- \
  --runtime-bin "$CARGO_TARGET_DIR/release/agent-runtime" "$@"
