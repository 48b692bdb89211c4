#!/usr/bin/env bash
# Installs the system packages the other install scripts assume, only when one is missing:
# a C/C++ toolchain, cmake and libclang (llama.cpp is built from source, for llama-server and
# inside the runtime, whose binding generates its FFI with bindgen; some crates compile C), Python's venv
# module (the LLM and benchmark venvs), curl (scripts/run-local.sh waits on llama-server with
# it), flock, the openssl CLI (the MCP TLS test makes a throwaway CA with it), and Chromium (the
# web chat page's browser test drives it headless). On a machine that has them this does
# nothing and needs no network or root.
set -euo pipefail

missing=()
command -v cc >/dev/null 2>&1 && command -v c++ >/dev/null 2>&1 && command -v make >/dev/null 2>&1 \
  || missing+=(build-essential)
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
compgen -G '/usr/lib/llvm-*/lib/libclang*.so*' >/dev/null || compgen -G '/usr/lib/*/libclang*.so*' >/dev/null \
  || missing+=(libclang-dev)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v flock >/dev/null 2>&1 || missing+=(util-linux)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
[[ ${#missing[@]} -eq 0 ]] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-system.sh: missing ${missing[*]}, and there is no apt-get here: install them first" >&2
  exit 1
fi
SUDO=()
[[ "$(id -u)" -eq 0 ]] || SUDO=(sudo)
echo "== installing system packages: ${missing[*]}"
"${SUDO[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
