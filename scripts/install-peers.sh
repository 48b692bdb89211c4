#!/usr/bin/env bash
# Installs the real protocol peers the tests talk to (tests/python/peers-requirements.txt: the
# official MCP Python SDK, the official a2a-sdk) into their own venv, so they never clash with
# the packages of the python on PATH. Cached and idempotent: the venv is rebuilt only when the
# requirements file changes. Prints nothing on success.
#
#   venv: ${AGENT_TOOLS_DIR:-$HOME/.cache/agent-operator/tools}/peers   (tests read it there)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS_DIR="${AGENT_TOOLS_DIR:-${HOME:-/tmp}/.cache/agent-operator/tools}"
VENV="$TOOLS_DIR/peers"
REQUIREMENTS="$ROOT/tests/python/peers-requirements.txt"
STAMP="$VENV/.requirements-$(sha256sum "$REQUIREMENTS" | cut -c1-16)"

[[ -f "$STAMP" ]] && exit 0

mkdir -p "$TOOLS_DIR"
exec 9>"$TOOLS_DIR/.peers.lock"
command -v flock >/dev/null 2>&1 && flock 9
[[ -f "$STAMP" ]] && exit 0

rm -rf "$VENV"
"${PYTHON:-python3}" -m venv "$VENV" || {
  echo "install-peers: python3 -m venv failed (on Debian: apt-get install python3-venv)" >&2
  exit 1
}
"$VENV/bin/pip" install --quiet --disable-pip-version-check --no-input -r "$REQUIREMENTS" >&2
"$VENV/bin/python" -c 'import mcp, a2a, uvicorn' || { echo "install-peers: packages not importable" >&2; exit 1; }
touch "$STAMP"
