{{/* Chart name, overridable with nameOverride. */}}
{{- define "agent-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified name of the release's resources. */}}
{{- define "agent-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* chart label value */}}
{{- define "agent-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels selecting the operator pods. */}}
{{- define "agent-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "agent-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of every resource. */}}
{{- define "agent-operator.labels" -}}
helm.sh/chart: {{ include "agent-operator.chart" . }}
{{ include "agent-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: agent-operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* ServiceAccount the operator runs as. */}}
{{- define "agent-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "agent-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Operator image reference. */}}
{{- define "agent-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
RBAC rules for the objects the operator reconciles. They go into a ClusterRole
when the operator watches all namespaces, into a Role in the watched namespace
otherwise. Keep in sync with charts/kustomize/rbac.yaml.
*/}}
{{- define "agent-operator.workloadRules" -}}
# Watch the operator's own custom resources; it never creates, edits or deletes Models
# or Recipes.
- apiGroups: ["agent-operator.dev"]
  resources: ["models", "recipes"]
  verbs: ["get", "list", "watch"]
# Agents: besides watching them, the operator grants each agent's Role `agents` get (its
# own) and, for a delegating agent, create/get/list/watch/delete; RBAC lets a Role grant
# only what its creator holds (no `escalate`), so the operator holds those verbs too.
# delete and patch also serve its own handling of children (ttlSecondsAfterFinished).
- apiGroups: ["agent-operator.dev"]
  resources: ["agents"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# Report observed state: status is written with server-side apply (patch). Each agent's
# Role grants it `agents/status` get+patch on its own Agent (runtime-reported status).
- apiGroups: ["agent-operator.dev"]
  resources: ["agents/status", "models/status", "recipes/status"]
  verbs: ["get", "patch"]
# Each Agent gets a Role and RoleBinding for its pod's ServiceAccount (see above),
# applied with server-side apply (patch); owner references garbage-collect them and
# delete lets the operator remove one itself.
- apiGroups: ["rbac.authorization.k8s.io"]
  resources: ["roles", "rolebindings"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# Objects generated for each Agent (config, its Service, its pod identity), created
# and updated by server-side apply (patch); owner references garbage-collect them.
- apiGroups: [""]
  resources: ["configmaps", "services", "serviceaccounts"]
  verbs: ["get", "list", "watch", "create", "patch"]
# Each Agent runs as a StatefulSet (stable identity + memory volume); each served
# Model as a Deployment of its engine, deleted when the Model goes multi-node.
- apiGroups: ["apps"]
  resources: ["statefulsets"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# A multi-node served Model (serve.nodes > 1) is a LeaderWorkerSet where LWS is installed,
# deleted when the Model goes back to one node.
- apiGroups: ["leaderworkerset.x-k8s.io"]
  resources: ["leaderworkersets"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# A served Model's cache is filled once by a download Job.
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create", "patch"]
# A served Model claims its GPUs through a DRA ResourceClaimTemplate; the claims made
# from it (one per pod) are only read, to report whether they are allocated.
- apiGroups: ["resource.k8s.io"]
  resources: ["resourceclaimtemplates"]
  verbs: ["get", "list", "watch", "create", "patch"]
# Claims are made from the templates by Kubernetes; the operator creates only a Model's
# shared claim (accelerator.sharedClaimName), when it does not exist, and never changes it.
- apiGroups: ["resource.k8s.io"]
  resources: ["resourceclaims"]
  verbs: ["get", "list", "watch", "create"]
# A served Model's pods are read, to report why they are pending; a pod holding a tainted or
# unhealthy device is evicted (the eviction API honours PodDisruptionBudgets), never deleted.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch"]
- apiGroups: [""]
  resources: ["pods/eviction"]
  verbs: ["create"]
# A served Model with serve.autoscaling gets an HPA (or, where KEDA is installed, a KEDA
# ScaledObject), applied with server-side apply and deleted when autoscaling is turned off.
- apiGroups: ["autoscaling"]
  resources: ["horizontalpodautoscalers"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["keda.sh"]
  resources: ["scaledobjects"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# Each Agent gets a NetworkPolicy limiting its egress/ingress.
- apiGroups: ["networking.k8s.io"]
  resources: ["networkpolicies"]
  verbs: ["get", "list", "watch", "create", "patch"]
# No Secrets: agent pods mount the Secrets their Agent names and the runtime reloads
# them; the Model controller probes an endpoint without its key unless `modelKeyReaders`
# grants it Secret reads in a namespace (see rbac.yaml).
# A served Model's cache volume is created and watched; an agent's memory volume
# is grown when its Agent asks for more storage.
- apiGroups: [""]
  resources: ["persistentvolumeclaims"]
  verbs: ["get", "list", "watch", "create", "patch"]
# Emit Kubernetes Events about reconciliation on Agents and Models.
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}
