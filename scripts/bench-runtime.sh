#!/usr/bin/env bash
# Benchmark of the latency and throughput the agent runtime adds over its upstream, beside two
# gateways in front of the same upstream (the LiteLLM proxy and the Portkey AI gateway), answers
# streamed and whole, plus each process's start-to-ready time and idle memory
# (tests/benches/runtime_overhead.rs). Installs the pinned LiteLLM into a cached venv and the pinned
# Portkey into a cached npm folder (both idempotent), builds the release runtime, runs the bench,
# prints markdown tables on stdout and writes $CARGO_TARGET_DIR/bench/runtime_overhead.json.
# Extra arguments go to the bench (`--help` lists them), e.g.
#   bash scripts/bench-runtime.sh --rounds 3 --requests 100,320
#   bash scripts/bench-runtime.sh --tokens 16 --concurrency 1 --requests 200 --modes stream
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
PORTKEY_DIR="${BENCH_PORTKEY_DIR:-$HOME/.cache/agent-operator/bench-portkey}"
PORTKEY_PACKAGE="$PORTKEY_DIR/node_modules/@portkey-ai/gateway"
PORTKEY_VERSION=1.15.2
# The HTTP server under Portkey, held at the release Portkey's own repository builds with: from
# 1.14 on, a streamed answer fails with "TypeError: immutable" (Portkey-AI/gateway issue 1389),
# and Portkey's package accepts any ^1.3.3.
HONO_NODE_SERVER_VERSION=1.13.5

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

# The version in a package.json, or nothing.
npm_version() {
  node -p 'require(process.argv[1]).version' "$1/package.json" 2>/dev/null || true
}

# The version of @hono/node-server that Portkey loads (its own node_modules first), or nothing.
installed_node_server() {
  local dir
  for dir in "$PORTKEY_PACKAGE/node_modules/@hono/node-server" "$PORTKEY_DIR/node_modules/@hono/node-server"; do
    if [[ -f "$dir/package.json" ]]; then
      npm_version "$dir"
      return
    fi
  done
}

echo "== @portkey-ai/gateway $PORTKEY_VERSION in $PORTKEY_DIR" >&2
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "bench-runtime.sh: Portkey needs Node.js 20 or later with npm (apt-get install nodejs npm)" >&2
  exit 1
fi
if [[ "$(npm_version "$PORTKEY_PACKAGE")" != "$PORTKEY_VERSION" \
  || "$(installed_node_server)" != "$HONO_NODE_SERVER_VERSION" ]]; then
  # A fresh tree: an old lock file would keep what the override replaces.
  rm -rf "$PORTKEY_DIR/node_modules" "$PORTKEY_DIR/package-lock.json"
  mkdir -p "$PORTKEY_DIR"
  cat >"$PORTKEY_DIR/package.json" <<JSON
{
  "private": true,
  "dependencies": { "@portkey-ai/gateway": "$PORTKEY_VERSION" },
  "overrides": { "@hono/node-server": "$HONO_NODE_SERVER_VERSION" }
}
JSON
  # Portkey's one install script (patch-package) finds no patches in the published package.
  npm install --prefix "$PORTKEY_DIR" --ignore-scripts --no-audit --no-fund --loglevel=error >&2
fi

echo "== cargo build --release -p agent-runtime" >&2
runtime_args=()
if ! cargo build --release -p agent-runtime >&2; then
  # The bench still measures direct and the peers; the runtime row says why it is missing.
  runtime_args=(--runtime-unavailable "cargo build --release -p agent-runtime failed")
fi

echo "== cargo bench -p agent-tests --bench runtime_overhead" >&2
cargo bench -p agent-tests --bench runtime_overhead -- \
  --runtime-bin "$CARGO_TARGET_DIR/release/agent-runtime" \
  --litellm "$VENV/bin/litellm" \
  --require-litellm \
  --portkey "$PORTKEY_PACKAGE" \
  --require-portkey \
  "${runtime_args[@]}" "$@"
