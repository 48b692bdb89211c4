#!/usr/bin/env bash
# Builds the operator and agent-runtime images with buildah from images/*.Containerfile, and
# prints their sizes. Idempotent: installs buildah (Debian package) when it is missing, and
# rebuilds an image only when its inputs (Containerfile, binary, model files, base) changed.
#
#   scripts/build-images.sh                 # release binaries (cargo build --release), local base
#   scripts/build-images.sh --bin-dir DIR   # binaries already built in DIR (the test uses debug ones)
#   scripts/build-images.sh --also-without-model   # also the runtime without MiniLM, to measure it
#
# The base is a build argument of the Containerfiles. A release uses
# gcr.io/distroless/cc-debian12:nonroot (IMAGE_BASE=<that image>, pulled); by default
# (IMAGE_BASE=local) this script builds a local stand-in first, because no registry can be
# reached here: images/local-base.Containerfile, FROM scratch plus exactly the shared libraries
# `ldd` lists for the two binaries, CA certificates, zoneinfo and a nonroot (65532) user. Same
# Containerfiles, same layout as distroless, no network needed.
#
# Binaries are stripped into the build context (the release workflow strips through
# CARGO_PROFILE_RELEASE_STRIP), so debug binaries (350-800 MB with debug info) stay small.
#
# Env:
#   IMAGE_BASE         `local` (default) or a base image reference to pull
#   OPERATOR_IMAGE     default ghcr.io/agent-operator/agent-operator:<workspace version>
#   RUNTIME_IMAGE      default ghcr.io/agent-operator/agent-runtime:<workspace version>
#   MINILM_DIR         folder with model.safetensors, tokenizer.json, config.json
#                      (default: from scripts/install-llm.sh's env file)
#   IMAGE_STATE_DIR    context and build stamps (default $CARGO_TARGET_DIR/images)
#   BUILDAH_STORAGE_DRIVER  default vfs (works without overlay or fuse)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

bin_dir=""
also_without_model=0
while (($#)); do
  case "$1" in
    --bin-dir) bin_dir="$2"; shift 2 ;;
    --also-without-model) also_without_model=1; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-images.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

die() { echo "build-images.sh: error: $*" >&2; exit 1; }

VERSION="$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)"
[[ -n "$VERSION" ]] || die "no version in [workspace.package] of Cargo.toml"
REVISION="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
OPERATOR_IMAGE="${OPERATOR_IMAGE:-ghcr.io/agent-operator/agent-operator:$VERSION}"
RUNTIME_IMAGE="${RUNTIME_IMAGE:-ghcr.io/agent-operator/agent-runtime:$VERSION}"
IMAGE_BASE="${IMAGE_BASE:-local}"
LOCAL_BASE_IMAGE="localhost/agent-operator/base:cc-debian12"
BUILDAH=(buildah --storage-driver "${BUILDAH_STORAGE_DRIVER:-vfs}")

# ---- tools -----------------------------------------------------------------------------------
if ! command -v buildah >/dev/null 2>&1; then
  command -v apt-get >/dev/null 2>&1 || die "buildah is missing and there is no apt-get: install buildah first"
  SUDO=()
  [[ "$(id -u)" -eq 0 ]] || SUDO=(sudo)
  echo "== installing buildah (Debian package)"
  "${SUDO[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq buildah >/dev/null
fi

# ---- inputs ----------------------------------------------------------------------------------
if [[ -z "$bin_dir" ]]; then
  # shellcheck source=scripts/target-dir.sh
  source "$ROOT/scripts/target-dir.sh"
  echo "== cargo build --release (agent-operator, agent-runtime)"
  cargo build --release --locked -p agent-operator --bin agent-operator -p agent-runtime --bin agent-runtime
  bin_dir="$CARGO_TARGET_DIR/release"
fi
for binary in agent-operator agent-runtime; do
  [[ -x "$bin_dir/$binary" ]] || die "no $bin_dir/$binary (build it first, or drop --bin-dir)"
done
if [[ -z "${MINILM_DIR:-}" ]]; then
  llm_env="${AGENT_LLM_DIR:-${HOME:-/tmp}/.cache/agent-operator/llm}/env"
  [[ -f "$llm_env" ]] || bash "$ROOT/scripts/install-llm.sh"
  # shellcheck disable=SC1090
  source "$llm_env"
fi
for file in model.safetensors tokenizer.json config.json; do
  [[ -f "$MINILM_DIR/$file" ]] || die "no $MINILM_DIR/$file (scripts/install-llm.sh fetches all-MiniLM-L6-v2)"
done

STATE_DIR="${IMAGE_STATE_DIR:-${CARGO_TARGET_DIR:-${HOME:-/tmp}/.cache/agent-operator/target}/images}"
CONTEXT="$STATE_DIR/context"
rm -rf "$CONTEXT"
mkdir -p "$CONTEXT/bin" "$CONTEXT/models/all-MiniLM-L6-v2" "$CONTEXT/models/none" "$STATE_DIR/stamps"

# Only the three files the runtime reads, world-readable in a traversable folder.
for file in model.safetensors tokenizer.json config.json; do
  install -m 0644 "$MINILM_DIR/$file" "$CONTEXT/models/all-MiniLM-L6-v2/$file"
done
for binary in agent-operator agent-runtime; do
  if command -v strip >/dev/null 2>&1; then
    strip -o "$CONTEXT/bin/$binary" "$bin_dir/$binary"
  else
    cp "$bin_dir/$binary" "$CONTEXT/bin/$binary"
  fi
  chmod 0755 "$CONTEXT/bin/$binary"
done

# build IMAGE CONTAINERFILE "INPUT_FILES..." BUD_ARGS...: builds unless the stamp says the image
# built from these inputs (files, build arguments, base image) is still there.
build() {
  local image="$1" containerfile="$2" inputs="$3"; shift 3
  local key stamp="$STATE_DIR/stamps/${image//[\/:]/_}" id
  # shellcheck disable=SC2086 # the inputs are paths without spaces, split on purpose
  key="$({
    printf '%s\n' "$image" "$base_id" "$@"
    find "$containerfile" $inputs -type f -print0 | sort -z | xargs -0 sha256sum | sed "s|$CONTEXT||"
  } | sha256sum | cut -d' ' -f1)"
  id="$(image_id "$image" || true)"
  if [[ -n "$id" && -f "$stamp" && "$(cat "$stamp")" == "$key $id" ]]; then
    echo "== $image: up to date"
    return
  fi
  echo "== building $image"
  "${BUILDAH[@]}" bud --isolation chroot --pull-never --quiet -f "$containerfile" -t "$image" "$@" "$CONTEXT" >/dev/null
  printf '%s %s\n' "$key" "$(image_id "$image")" >"$stamp"
}

image_id() { "${BUILDAH[@]}" inspect --type image --format '{{.FromImageID}}' "$1" 2>/dev/null; }

# ---- the local base ---------------------------------------------------------------------------
if [[ "$IMAGE_BASE" == local ]]; then
  rootfs="$CONTEXT/rootfs"
  mkdir -p "$rootfs/etc/ssl/certs" "$rootfs/usr/share" "$rootfs/tmp" "$CONTEXT/home"
  chmod 1777 "$rootfs/tmp"
  chmod 0700 "$CONTEXT/home"
  # Exactly what the dynamic loader needs for both binaries, at the paths ldd resolves them to.
  ldd "$CONTEXT/bin/agent-operator" "$CONTEXT/bin/agent-runtime" \
    | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// && $1 !~ /:$/ {print $1}' | sort -u \
    | while read -r lib; do
        mkdir -p "$rootfs$(dirname "$lib")"
        cp -L "$lib" "$rootfs$lib"
      done
  [[ -e "$rootfs/lib64/ld-linux-x86-64.so.2" || -n "$(find "$rootfs" -name 'ld-linux*' -print -quit)" ]] \
    || die "ldd listed no dynamic loader for the binaries"
  cp -L /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/" 2>/dev/null \
    || die "no /etc/ssl/certs/ca-certificates.crt (apt-get install ca-certificates)"
  [[ -d /usr/share/zoneinfo ]] && cp -a /usr/share/zoneinfo "$rootfs/usr/share/"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' \
    >"$rootfs/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' >"$rootfs/etc/group"
  printf 'hosts: files dns\n' >"$rootfs/etc/nsswitch.conf"
  base_id=""
  build "$LOCAL_BASE_IMAGE" images/local-base.Containerfile "$rootfs $CONTEXT/home"
  BASE_REF="$LOCAL_BASE_IMAGE"
else
  "${BUILDAH[@]}" pull --quiet "$IMAGE_BASE" >/dev/null
  BASE_REF="$IMAGE_BASE"
fi
base_id="$(image_id "$BASE_REF")"

# ---- the images --------------------------------------------------------------------------------
common=(--build-arg "BASE_IMAGE=$BASE_REF" --build-arg "VERSION=$VERSION" --build-arg "REVISION=$REVISION")
build "$OPERATOR_IMAGE" images/operator.Containerfile "$CONTEXT/bin/agent-operator" \
  "${common[@]}" --build-arg BINARY=bin/agent-operator
build "$RUNTIME_IMAGE" images/runtime.Containerfile "$CONTEXT/bin/agent-runtime $CONTEXT/models/all-MiniLM-L6-v2" \
  "${common[@]}" --build-arg BINARY=bin/agent-runtime --build-arg MODEL_DIR=models/all-MiniLM-L6-v2
sized=("$OPERATOR_IMAGE" "$RUNTIME_IMAGE")
if ((also_without_model)); then
  build "$RUNTIME_IMAGE-without-model" images/runtime.Containerfile "$CONTEXT/bin/agent-runtime" \
    "${common[@]}" --build-arg BINARY=bin/agent-runtime --build-arg MODEL_DIR=models/none
  sized+=("$RUNTIME_IMAGE-without-model")
fi

# ---- sizes ---------------------------------------------------------------------------------------
# Uncompressed size of all layers (what a node stores; a registry serves them compressed), from
# the layer sizes in the image's own manifest.
echo "== image sizes (uncompressed, all layers including the base)"
for image in "${sized[@]}"; do
  "${BUILDAH[@]}" inspect --type image --format '{{.Manifest}}' "$image" | python3 -c '
import json, sys
total = sum(layer["size"] for layer in json.load(sys.stdin)["layers"])
print("%-64s %8.1f MiB" % (sys.argv[1], total / 1048576))' "$image"
done
rm -rf "$CONTEXT"
