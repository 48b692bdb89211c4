#!/usr/bin/env bash
# Benchmark of the latency and throughput the agent runtime adds over its upstream, beside the
# LiteLLM proxy in front of the same upstream, plus the runtime's start-to-ready time and idle memory
# (tests/benches/runtime_overhead.rs). Installs the pinned LiteLLM into a cached venv (idempotent),
# builds the release runtime, runs the bench, prints markdown tables on stdout and writes
# $CARGO_TARGET_DIR/bench/runtime_overhead.json. Extra arguments go to the bench, e.g.
#   bash scripts/bench-runtime.sh --rounds 3 --requests 100,320
# Timings depend on the machine and on whatever else runs on it: compare rows of one run, not runs.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/target-dir.sh
source "$ROOT/scripts/target-dir.sh"
VENV="${BENCH_VENV:-$HOME/.cache/agent-operator/bench-venv}"
# The newest release whose dependencies the package index here can satisfy (1.103 and later
# require a certifi release it does not have).
LITELLM_VERSION=1.102.4

installed_litellm() {
  "$VENV/bin/python" -c "import importlib.metadata as m; print(m.version('litellm'))" 2>/dev/null || true
}

echo "== litellm $LITELLM_VERSION in $VENV" >&2
if [[ ! -x "$VENV/bin/python" ]]; then
  python3 -m venv "$VENV"
fi
if [[ "$(installed_litellm)" != "$LITELLM_VERSION" ]]; then
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "litellm[proxy]==$LITELLM_VERSION" >&2
fi

echo "== cargo build --release -p agent-runtime" >&2
runtime_args=()
if ! cargo build --release -p agent-runtime >&2; then
  # The bench still measures direct and litellm; the runtime row says why it is missing.
  runtime_args=(--runtime-unavailable "cargo build --release -p agent-runtime failed")
fi

echo "== cargo bench -p agent-tests --bench runtime_overhead" >&2
cargo bench -p agent-tests --bench runtime_overhead -- \
  --runtime-bin "$CARGO_TARGET_DIR/release/agent-runtime" \
  --litellm "$VENV/bin/litellm" \
  --require-litellm \
  "${runtime_args[@]}" "$@"
