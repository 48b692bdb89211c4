#!/usr/bin/env bash
# Checks the deployment manifests offline:
#   * helm lint of charts/agent-operator,
#   * helm template with default values and with watchNamespace / serviceMonitor /
#     podDisruptionBudget variants, CRDs included,
#   * kubectl kustomize charts/kustomize,
# and validates every rendered object with scripts/validate_manifests.py against
# the Kubernetes 1.34 schemas (strict) and the agent-operator.dev CRDs in crds/yaml.
# It also checks that charts/kustomize is equivalent to the chart's default
# render and that the RBAC stays least-privilege.
#
# Installs its tools first with scripts/install-tools.sh (cached; set
# AGENT_SKIP_INSTALL_TOOLS=1 to use kubectl/helm from PATH as they are).
# Exit status: 0 when every step passed, 1 otherwise.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export AGENT_TOOLS_DIR="${AGENT_TOOLS_DIR:-${HOME:-/tmp}/.cache/agent-operator/tools}"
PYTHON="${PYTHON:-python3}"
CHART="$ROOT/charts/agent-operator"
KUSTOMIZE_DIR="$ROOT/charts/kustomize"
CRD_DIR="$ROOT/crds/yaml"
VALIDATE=("$PYTHON" "$ROOT/scripts/validate_manifests.py" --crds "$CRD_DIR" --require-docs
  --skip-unknown-group monitoring.coreos.com)
RELEASE=agent-operator
NAMESPACE=agent-operator

if [[ "${AGENT_SKIP_INSTALL_TOOLS:-0}" != 1 ]]; then
  bash "$ROOT/scripts/install-tools.sh"
fi
export PATH="$AGENT_TOOLS_DIR/bin:$PATH"
for tool in helm kubectl; do
  command -v "$tool" >/dev/null || { echo "check-deploy: $tool not found (run scripts/install-tools.sh)" >&2; exit 1; }
done

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

failed=()
steps=0
step() { # step NAME CMD...: runs CMD, records NAME as failed when it fails
  local name="$1"
  shift
  steps=$((steps + 1))
  echo "== $name"
  if ! "$@"; then
    echo "-- FAILED: $name"
    failed+=("$name")
  fi
}

# render NAME CMD...: CMD's stdout goes to $TMP/NAME.yaml, then is validated.
render_and_validate() {
  local name="$1"
  shift
  if ! "$@" >"$TMP/$name.yaml" 2>"$TMP/$name.err"; then
    cat "$TMP/$name.err" >&2
    echo "check-deploy: '$*' failed" >&2
    return 1
  fi
  "${VALIDATE[@]}" --stdin <"$TMP/$name.yaml"
}

helm_template() { # helm_template EXTRA_ARGS...
  helm template "$RELEASE" "$CHART" --namespace "$NAMESPACE" --include-crds "$@"
}

step "helm lint" helm lint --strict "$CHART"
step "helm lint (watchNamespace=team-a)" helm lint --strict "$CHART" --set watchNamespace=team-a
step "helm template (defaults)" render_and_validate helm-default helm_template
step "helm template (watchNamespace=team-a)" \
  render_and_validate helm-watch helm_template --set watchNamespace=team-a
step "helm template (serviceMonitor.enabled=true)" \
  render_and_validate helm-sm helm_template --set serviceMonitor.enabled=true
step "helm template (all options)" \
  render_and_validate helm-all helm_template --set watchNamespace=team-a \
  --set serviceMonitor.enabled=true --set podDisruptionBudget.enabled=true \
  --set agentPodMonitor.enabled=true --set 'modelKeyReaders={team-a,team-b}' \
  --set dashboards.enabled=true --set prometheusRule.enabled=true \
  --set tracing.endpoint=http://otel-collector.observability.svc:4318 --set tracing.samplerArg=0.5 \
  --set tracing.sampler=parentbased_traceidratio --set tracing.captureContent=true \
  --set leaderElection.enabled=false --set replicaCount=1
step "kubectl kustomize charts/kustomize" \
  render_and_validate kustomize kubectl kustomize "$KUSTOMIZE_DIR"

# Cross-checks of the renders (only when they all exist).
cross_check() {
  local f
  for f in helm-default helm-watch helm-all kustomize; do
    [[ -s "$TMP/$f.yaml" ]] || { echo "check-deploy: no $f render to compare"; return 1; }
  done
  "$PYTHON" - "$TMP" "$NAMESPACE" <<'PY'
import difflib
import sys
from pathlib import Path

import yaml

tmp, namespace = Path(sys.argv[1]), sys.argv[2]
CRD_NAMES = {f"{p}.agent-operator.dev" for p in ("agents", "models", "recipes")}
problems = []


def load(name):
    docs = [d for d in yaml.safe_load_all((tmp / f"{name}.yaml").read_text()) if d]
    return {(d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"]): d for d in docs}


def normalize(doc):
    doc = yaml.safe_load(yaml.safe_dump(doc))
    for meta in (doc.get("metadata", {}), doc.get("spec", {}).get("template", {}).get("metadata", {})):
        labels = meta.get("labels") or {}
        labels.pop("helm.sh/chart", None)
        labels.pop("app.kubernetes.io/managed-by", None)
    return doc


helm = {name: load(name) for name in ("helm-default", "helm-watch", "helm-all")}
kust = load("kustomize")

# 1. Both carry the three CRDs, identical (chart crds/ and crds/yaml both come from crdgen).
for name, objs in list(helm.items()) + [("kustomize", kust)]:
    crds = {k[2] for k in objs if k[0] == "CustomResourceDefinition"}
    if crds != CRD_NAMES:
        problems.append(f"{name}: CRDs {sorted(crds)} != {sorted(CRD_NAMES)}")
for key, doc in helm["helm-default"].items():
    if key[0] == "CustomResourceDefinition" and key in kust and doc != kust[key]:
        problems.append(f"CRD {key[2]}: charts/agent-operator/crds differs from crds/yaml (rerun crdgen)")

# 2. charts/kustomize == chart defaults (labels helm.sh/chart and managed-by aside).
def workload(objs):
    return {k: normalize(d) for k, d in objs.items() if k[0] not in ("CustomResourceDefinition", "Namespace")}

h, k = workload(helm["helm-default"]), workload(kust)
for key in sorted(set(h) | set(k)):
    if key not in k:
        problems.append(f"{key[0]}/{key[2]}: in the chart's default render, missing from charts/kustomize")
    elif key not in h:
        problems.append(f"{key[0]}/{key[2]}: in charts/kustomize, missing from the chart's default render")
    elif h[key] != k[key]:
        diff = difflib.unified_diff(
            yaml.safe_dump(h[key]).splitlines(), yaml.safe_dump(k[key]).splitlines(),
            "helm template (defaults)", "charts/kustomize", lineterm="", n=2,
        )
        problems.append(
            f"{key[0]}/{key[2]}: charts/kustomize differs from the chart's default render:\n    "
            + "\n    ".join(list(diff)[:40])
        )
if ("Namespace", "", namespace) not in kust:
    problems.append(f"charts/kustomize has no Namespace {namespace}")

# 2b. Traces: the operator gets the standard OTEL_* variables only when an endpoint is set.
def operator_env(objs):
    deployments = [d for k, d in objs.items() if k[0] == "Deployment"]
    containers = deployments[0]["spec"]["template"]["spec"]["containers"] if deployments else []
    return {e["name"]: e.get("value") for c in containers for e in c.get("env") or []}

if any(n.startswith("OTEL_") for n in operator_env(helm["helm-default"])):
    problems.append("helm-default: OTEL_* variables set without tracing.endpoint")
expected_otel = {
    "OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel-collector.observability.svc:4318",
    "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
    "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
    "OTEL_TRACES_SAMPLER_ARG": "0.5",
    "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true",
    "OTEL_SERVICE_NAME": "agent-operator",
}
got_otel = {n: v for n, v in operator_env(helm["helm-all"]).items() if n.startswith("OTEL_")}
if got_otel != expected_otel:
    problems.append(f"helm-all: operator OTEL_* variables {got_otel} != {expected_otel}")

# 3. Least privilege in every render.
ALLOWED_CLUSTER_SCOPED_WITH_WATCH_NS = {
    ("apiextensions.k8s.io", "customresourcedefinitions"),
    ("resource.k8s.io", "resourceslices"),
}
THIRD_PARTY_CRD_NAMES = {"scaledobjects.keda.sh", "leaderworkersets.leaderworkerset.x-k8s.io"}
DELETABLE = {
    ("agent-operator.dev", "agents"),
    ("rbac.authorization.k8s.io", "roles"),
    ("rbac.authorization.k8s.io", "rolebindings"),
    # A served Model's autoscaler, removed when its autoscaling is turned off.
    ("autoscaling", "horizontalpodautoscalers"),
    ("keda.sh", "scaledobjects"),
    # A served Model's workload of the kind it no longer runs (serve.nodes crossed 1).
    ("apps", "deployments"),
    ("leaderworkerset.x-k8s.io", "leaderworkersets"),
}
for name, objs in list(helm.items()) + [("kustomize", kust)]:
    for key, doc in objs.items():
        if key[0] not in ("Role", "ClusterRole"):
            continue
        for rule in doc.get("rules") or []:
            for field in ("apiGroups", "resources", "verbs"):
                if "*" in (rule.get(field) or []):
                    problems.append(f"{name}: {key[0]}/{key[2]} uses a wildcard in {field}")
            verbs = set(rule.get("verbs") or [])
            if "deletecollection" in verbs or "escalate" in verbs or "bind" in verbs:
                problems.append(f"{name}: {key[0]}/{key[2]} grants {sorted(verbs)}")
            # delete only where the operator needs it: Agents (it grants delete to delegating
            # agents' Roles, and RBAC lets it grant only what it holds), the per-agent
            # Roles/RoleBindings it manages and served Models' autoscalers.
            deletable = {(g, r) for g in rule.get("apiGroups") or [] for r in rule.get("resources") or []}
            if "delete" in verbs and not deletable <= DELETABLE:
                problems.append(f"{name}: {key[0]}/{key[2]} grants delete on {sorted(deletable - DELETABLE)}")
            if "secrets" in (rule.get("resources") or []) and verbs - {"get"}:
                problems.append(f"{name}: {key[0]}/{key[2]} grants {sorted(verbs)} on secrets (only get)")
            # Secret reads only where a person opted in (modelKeyReaders), never cluster-wide.
            if "secrets" in (rule.get("resources") or []) and (
                key[0] == "ClusterRole" or not key[2].endswith("-model-keys")
            ):
                problems.append(f"{name}: {key[0]}/{key[2]} reads Secrets outside a modelKeyReaders Role")
            # The operator's own CRDs, KEDA's (how a Model autoscales) and LWS's (whether a
            # multi-node Model can be built).
            if "customresourcedefinitions" in (rule.get("resources") or []) and (
                verbs != {"get"} or set(rule.get("resourceNames") or []) != CRD_NAMES | THIRD_PARTY_CRD_NAMES
            ):
                problems.append(f"{name}: {key[0]}/{key[2]}: CRDs must be get-only, by name")
            if (
                name != "helm-default" and name != "kustomize"
                and key[0] == "ClusterRole"
                and any((g, r) not in ALLOWED_CLUSTER_SCOPED_WITH_WATCH_NS
                        for g in rule.get("apiGroups") or [] for r in rule.get("resources") or [])
            ):
                problems.append(f"{name}: with watchNamespace, ClusterRole/{key[2]} grants {rule}")
    if name in ("helm-watch", "helm-all"):
        roles = [k for k in objs if k[0] == "Role" and k[1] == "team-a"]
        if not roles:
            problems.append(f"{name}: no Role in the watched namespace team-a")

for p in problems:
    print(f"FAIL {p}")
if not problems:
    print("OK  CRDs identical in chart and crds/yaml; charts/kustomize equals chart defaults; RBAC least-privilege")
sys.exit(1 if problems else 0)
PY
}
step "cross-checks (CRDs, kustomize vs chart, RBAC)" cross_check

if ((${#failed[@]})); then
  echo "check-deploy: ${#failed[@]} of $steps steps FAILED:"
  printf '  - %s\n' "${failed[@]}"
  exit 1
fi
echo "check-deploy: all $steps steps OK"
