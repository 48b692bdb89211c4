#!/usr/bin/env bash
# Installs the real protocol peers the tests talk to into their own venvs, so they never clash
# with the packages of the python on PATH: tests/python/peers-requirements.txt (the official MCP
# Python SDK, the official a2a-sdk 1.x) and tests/python/peers03-requirements.txt (a2a-sdk 0.3,
# the line kagent speaks). Cached and idempotent: a venv is rebuilt only when its requirements
# file changes. Prints nothing on success.
#
#   venvs: ${AGENT_TOOLS_DIR:-$HOME/.cache/agent-operator/tools}/peers and .../peers03
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS_DIR="${AGENT_TOOLS_DIR:-${HOME:-/tmp}/.cache/agent-operator/tools}"

# install_venv NAME REQUIREMENTS IMPORTS
install_venv() {
  local venv="$TOOLS_DIR/$1" requirements="$ROOT/tests/python/$2" imports="$3"
  local stamp
  stamp="$venv/.requirements-$(sha256sum "$requirements" | cut -c1-16)"
  [[ -f "$stamp" ]] && return 0
  mkdir -p "$TOOLS_DIR"
  exec 9>"$TOOLS_DIR/.peers.lock"
  command -v flock >/dev/null 2>&1 && flock 9
  [[ -f "$stamp" ]] && return 0
  rm -rf "$venv"
  "${PYTHON:-python3}" -m venv "$venv" || {
    echo "install-peers: python3 -m venv failed (on Debian: apt-get install python3-venv)" >&2
    exit 1
  }
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-input -r "$requirements" >&2
  "$venv/bin/python" -c "import $imports" || { echo "install-peers: $imports not importable in $venv" >&2; exit 1; }
  touch "$stamp"
}

install_venv peers peers-requirements.txt "mcp, a2a, uvicorn, opentelemetry.proto.collector.trace.v1.trace_service_pb2"
install_venv peers03 peers03-requirements.txt "a2a"
