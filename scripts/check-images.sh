#!/usr/bin/env bash
# Starts each image's binary inside its image and checks it serves /healthz on loopback, the way a
# kubelet's probe would (run by scripts/test.sh after scripts/build-images.sh).
#
#   * The image config first: entrypoint, numeric non-root user 65532, the OCI labels (source,
#     version = the workspace version, licenses Apache-2.0), no shell, and for the runtime the
#     MiniLM files at the path its --embedding-model-dir defaults to.
#   * Then the entrypoint runs in a working container (`buildah run --isolation chroot`: podman run
#     fails here), as the image's user, on a free loopback port; the check waits (bounded) for
#     /healthz from the host, and fails at once, with the log, if the process exits.
#       - operator: a kubeconfig naming an API server that is not there; it still serves /healthz
#         (its /readyz reports that it waits for the CRDs).
#       - runtime: `run` with an Agent and a Model at an unreachable address; it serves /healthz
#         and its /readyz must show knowledge ready, i.e. MiniLM loaded from inside the image.
#
# Env: OPERATOR_IMAGE, RUNTIME_IMAGE (defaults as in build-images.sh), BUILDAH_STORAGE_DRIVER,
# IMAGE_CHECK_TIMEOUT_SECONDS (default 60: how long each binary may take to serve).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VERSION="$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)"
OPERATOR_IMAGE="${OPERATOR_IMAGE:-ghcr.io/agent-operator/agent-operator:$VERSION}"
RUNTIME_IMAGE="${RUNTIME_IMAGE:-ghcr.io/agent-operator/agent-runtime:$VERSION}"
TIMEOUT="${IMAGE_CHECK_TIMEOUT_SECONDS:-60}"
BUILDAH=(buildah --storage-driver "${BUILDAH_STORAGE_DRIVER:-vfs}")

die() { echo "check-images.sh: FAILED: $*" >&2; exit 1; }

work="$(mktemp -d)"
containers=()
runner=""
cleanup() {
  if [[ -n "$runner" ]]; then kill -- "-$runner" 2>/dev/null || true; fi
  for container in "${containers[@]}"; do "${BUILDAH[@]}" rm "$container" >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# check_config IMAGE ENTRYPOINT: the image config a kubelet and a scanner rely on.
check_config() {
  "${BUILDAH[@]}" inspect --type image "$1" | python3 -c '
import json, sys
image, entrypoint, version = sys.argv[1:]
config = json.load(sys.stdin)["OCIv1"]["config"]
labels = config.get("Labels") or {}
problems = []
if config.get("Entrypoint") != [entrypoint]:
    problems.append("entrypoint %r, want [%r]" % (config.get("Entrypoint"), entrypoint))
if config.get("User") != "65532:65532":
    problems.append("user %r, want the numeric 65532:65532 (runAsNonRoot checks it)" % config.get("User"))
want = {"org.opencontainers.image.version": version, "org.opencontainers.image.licenses": "Apache-2.0"}
for key, value in want.items():
    if labels.get(key) != value:
        problems.append("label %s is %r, want %r" % (key, labels.get(key), value))
if not labels.get("org.opencontainers.image.source", "").startswith("https://"):
    problems.append("label org.opencontainers.image.source is missing")
if problems:
    sys.exit("%s: %s" % (image, "; ".join(problems)))
' "$1" "$2" "$VERSION" || die "image config of $1"
}

# start IMAGE LOG ENV ARGS...: a working container of IMAGE running ARGS (its entrypoint first)
# with the environment ENV (`-e K=V` words: buildah passes none of the host's), in the
# background, in its own process group so the check stops exactly it. The check's files are at
# /check, read-only.
start() {
  local image="$1" log="$2" env="$3"; shift 3
  container="$("${BUILDAH[@]}" from --pull-never --quiet "$image")"
  containers+=("$container")
  local mnt
  mnt="$("${BUILDAH[@]}" mount "$container")"
  for shell in bin/sh bin/bash bin/dash usr/bin/sh; do
    [[ ! -e "$mnt/$shell" ]] || die "$image has a shell at /$shell; the runtime base must not need one"
  done
  "${BUILDAH[@]}" umount "$container" >/dev/null
  # shellcheck disable=SC2086 # $env is `-e K=V` words on purpose
  setsid "${BUILDAH[@]}" run --isolation chroot --network host $env -v "$work:/check:ro" "$container" -- "$@" \
    >"$log" 2>&1 &
  runner=$!
}

# wait_healthy NAME PORT LOG: until /healthz answers `ok`, the process exits, or the timeout.
wait_healthy() {
  local name="$1" port="$2" log="$3" deadline=$((SECONDS + TIMEOUT))
  while ((SECONDS < deadline)); do
    if [[ "$(curl -fsS --max-time 2 "http://127.0.0.1:$port/healthz" 2>/dev/null)" == ok ]]; then
      return 0
    fi
    if ! kill -0 "$runner" 2>/dev/null; then
      cat "$log" >&2
      die "$name exited before serving /healthz (its log is above)"
    fi
    sleep 0.5
  done
  cat "$log" >&2
  die "$name did not serve /healthz on 127.0.0.1:$port within ${TIMEOUT}s (its log is above)"
}

# check_user NAME: the process serving runs as 65532, the image's user.
check_user() {
  local pids uid
  pids="$(pgrep -g "$runner" || true)"
  for pid in $pids; do
    uid="$(awk '/^Uid:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)"
    [[ "$uid" != 65532 ]] || return 0
  done
  die "$1: no process of the container runs as uid 65532"
}

stop() {
  kill -- "-$runner" 2>/dev/null || true
  wait "$runner" 2>/dev/null || true
  runner=""
}

# ---- operator -------------------------------------------------------------------------------------
check_config "$OPERATOR_IMAGE" /usr/local/bin/agent-operator
cat >"$work/kubeconfig" <<'EOF'
apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:9", insecure-skip-tls-verify: true}}]
users: [{name: none, user: {token: image-check}}]
contexts: [{name: none, context: {cluster: none, user: none, namespace: default}}]
current-context: none
EOF
chmod 0644 "$work/kubeconfig"
chmod 0755 "$work"
port="$(free_port)"
start "$OPERATOR_IMAGE" "$work/operator.log" "-e KUBECONFIG=/check/kubeconfig -e LOG_FORMAT=json" \
  /usr/local/bin/agent-operator --http-addr "127.0.0.1:$port" --leader-election false
wait_healthy operator "$port" "$work/operator.log"
check_user operator
readyz="$(curl -sS --max-time 2 "http://127.0.0.1:$port/readyz" || true)"
stop
echo "== operator image: /healthz ok as uid 65532 (/readyz without a cluster: ${readyz:0:120})"

# ---- runtime ----------------------------------------------------------------------------------------
check_config "$RUNTIME_IMAGE" /usr/local/bin/agent-runtime
cat >"$work/agent.yaml" <<'EOF'
apiVersion: agent-operator.dev/v1alpha1
kind: Model
metadata: {name: unreachable}
spec:
  endpoint: {baseUrl: "http://127.0.0.1:9/v1", model: none}
---
apiVersion: agent-operator.dev/v1alpha1
kind: Agent
metadata: {name: image-check}
spec:
  model: {modelRef: {name: unreachable}}
EOF
chmod 0644 "$work/agent.yaml"
mkdir -p "$work/secrets"
port="$(free_port)"
# No --embedding-model-dir: the default (/models/all-MiniLM-L6-v2) must hold the model.
start "$RUNTIME_IMAGE" "$work/runtime.log" "-e RUST_LOG=info" \
  /usr/local/bin/agent-runtime run /check/agent.yaml --data-dir /tmp/agent-data --secrets-dir /check/secrets \
  --addr "127.0.0.1:$port"
wait_healthy runtime "$port" "$work/runtime.log"
check_user runtime
knowledge=""
deadline=$((SECONDS + TIMEOUT))
while ((SECONDS < deadline)); do
  knowledge="$(curl -sS --max-time 2 "http://127.0.0.1:$port/readyz" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["components"]["knowledge"]["state"])' 2>/dev/null || true)"
  [[ "$knowledge" != ready ]] || break
  sleep 0.5
done
stop
if [[ "$knowledge" != ready ]]; then
  cat "$work/runtime.log" >&2
  die "runtime: /readyz shows knowledge ${knowledge:-absent}, want ready (MiniLM loaded from /models/all-MiniLM-L6-v2)"
fi
echo "== runtime image: /healthz ok as uid 65532, knowledge ready (MiniLM loaded from the image)"
