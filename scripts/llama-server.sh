#!/usr/bin/env bash
# Runs llama.cpp's llama-server with Gemma 3 270M (Q4_K_M) in the foreground
# (exec: the caller's pid is the server's, so a test can start it and kill it).
#
#   scripts/llama-server.sh [--port N] [--embeddings] [extra llama-server args...]
#
# Listens on 127.0.0.1:N (default 8091, or $LLAMA_PORT); 2 threads, 4096-token
# context, --jinja. --embeddings also enables /v1/embeddings (with --pooling mean
# unless a --pooling is given). Extra args are passed on after these, so they
# override them.
# Installs the server and model first (scripts/install-llm.sh) when
# $AGENT_LLM_DIR/env is missing or stale.
#
# Gemma 3 270M is a BASE model: POST /v1/completions with a plain prompt
# ("Question: ...\nAnswer:") answers sensibly; /v1/chat/completions returns
# well-formed responses but their content is not useful.
# Ready when GET /health returns 200.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LLM_DIR="${AGENT_LLM_DIR:-${HOME:-/tmp}/.cache/agent-operator/llm}"
ENV_FILE="$LLM_DIR/env"

usage() { sed -n '2,18s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }

port="${LLAMA_PORT:-8091}"
extra=()
embeddings=0
pooling_set=0
while (($#)); do
  case "$1" in
    --port)
      (($# >= 2)) || { echo "llama-server.sh: --port needs a value" >&2; exit 2; }
      port="$2"
      shift 2
      ;;
    --port=*)
      port="${1#--port=}"
      shift
      ;;
    -h | --help)
      usage
      exit 0
      ;;
    --embeddings)
      embeddings=1
      extra+=("$1")
      shift
      ;;
    *)
      # Anything else goes to llama-server as it is.
      [[ "$1" == --pooling* ]] && pooling_set=1
      extra+=("$1")
      shift
      ;;
  esac
done
# Gemma's GGUF has no pooling type ("none"), which /v1/embeddings rejects
# ("Pooling type 'none' is not OAI compatible"): pool by mean unless told otherwise.
if ((embeddings && !pooling_set)); then
  extra+=(--pooling mean)
fi
[[ "$port" =~ ^[0-9]+$ ]] || { echo "llama-server.sh: bad port '$port'" >&2; exit 2; }

env_ok() {
  [[ -f "$ENV_FILE" ]] || return 1
  # shellcheck disable=SC1090
  source "$ENV_FILE"
  [[ -x "${LLAMA_SERVER:-}" && -s "${GEMMA_GGUF:-}" ]]
}

if ! env_ok; then
  bash "$HERE/install-llm.sh"
  env_ok || { echo "llama-server.sh: $ENV_FILE missing or broken after install" >&2; exit 1; }
fi

exec "$LLAMA_SERVER" -m "$GEMMA_GGUF" --host 127.0.0.1 --port "$port" -t 2 -c 4096 --jinja "${extra[@]}"
