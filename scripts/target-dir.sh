# Sourced by the scripts that build: points CARGO_TARGET_DIR at the shared cache and keeps it
# honest when checkouts at different paths share it. Cargo reuses a workspace crate built from
# another checkout when the sources here are not newer, and such a binary still carries that
# checkout's CARGO_MANIFEST_DIR (tests then read, or miss, the other checkout's files). So when
# the cache was last used from another path (or from an unknown one), this workspace's own
# crates are cleaned (their dependencies stay cached) before building.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/agent-operator/target}"
mkdir -p "$CARGO_TARGET_DIR"
__agent_last_root="$(cat "$CARGO_TARGET_DIR/.agent-operator-checkout" 2>/dev/null || true)"
if [[ "$__agent_last_root" != "$ROOT" ]] && compgen -G "$CARGO_TARGET_DIR/*/deps" >/dev/null; then
  echo "== the build cache was last used from ${__agent_last_root:-another checkout}; rebuilding this checkout's crates"
  cargo clean --quiet -p agent-crds -p agent-operator -p agent-runtime -p agent-tests
fi
printf '%s\n' "$ROOT" >"$CARGO_TARGET_DIR/.agent-operator-checkout"
unset __agent_last_root

# The runtime links llama.cpp (its in-process model): build it for this CPU's instruction sets,
# on both cores, never natively (scripts/cpu-isa.sh says why).
# shellcheck source=scripts/cpu-isa.sh
source "$(dirname "${BASH_SOURCE[0]}")/cpu-isa.sh"
export_cpu_isa_options
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
