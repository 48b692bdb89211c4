#!/usr/bin/env bash
# Installs what the web chat page's browser test (tests/browser/chat_page.mjs) needs, cached,
# so a second run is a no-op:
#
#   * Chromium, the Debian package (through scripts/install-system.sh, which installs it only
#     when `chromium` is missing). Playwright's own browser download cannot work here (no
#     internet beyond package registries), so the test launches /usr/bin/chromium.
#   * Node.js and npm, the Debian packages, when missing.
#   * playwright-core (pinned) from npm into $AGENT_TOOLS_DIR/browser/node_modules.
#
# Prints the directory holding node_modules on stdout (the test puts it in NODE_PATH).
# Safe to run concurrently: a flock on the install dir serialises installs.
#
# Env:
#   AGENT_TOOLS_DIR   tools dir (default $HOME/.cache/agent-operator/tools)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS_DIR="${AGENT_TOOLS_DIR:-${HOME:-/tmp}/.cache/agent-operator/tools}"
BROWSER_DIR="$TOOLS_DIR/browser"
PLAYWRIGHT_CORE_VERSION="1.65.1"
STAMP="$BROWSER_DIR/.playwright-core-$PLAYWRIGHT_CORE_VERSION"

die() { echo "install-browser: error: $*" >&2; exit 1; }

# Status lines go to stderr: stdout carries only the directory.
bash "$ROOT/scripts/install-system.sh" >&2
command -v chromium >/dev/null 2>&1 || die "chromium is still missing after scripts/install-system.sh"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  command -v apt-get >/dev/null 2>&1 || die "node and npm are missing, and there is no apt-get here: install them first"
  SUDO=()
  [[ "$(id -u)" -eq 0 ]] || SUDO=(sudo)
  echo "== installing nodejs and npm" >&2
  "${SUDO[@]}" apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends nodejs npm >&2
fi

mkdir -p "$BROWSER_DIR"
exec 9>"$BROWSER_DIR/.lock"
flock 9
if [[ ! -f "$STAMP" || ! -f "$BROWSER_DIR/node_modules/playwright-core/package.json" ]]; then
  echo "== installing playwright-core $PLAYWRIGHT_CORE_VERSION into $BROWSER_DIR" >&2
  [[ -f "$BROWSER_DIR/package.json" ]] || echo '{"name": "agent-operator-browser-test", "private": true}' \
    >"$BROWSER_DIR/package.json"
  # Playwright's browser download must never run: the test brings its own Chromium.
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --prefix "$BROWSER_DIR" --no-audit --no-fund \
    --save-exact "playwright-core@$PLAYWRIGHT_CORE_VERSION" >&2
  rm -f "$BROWSER_DIR"/.playwright-core-*
  touch "$STAMP"
fi
echo "$BROWSER_DIR"
