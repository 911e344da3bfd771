{{/* Chart name, bounded to 63 characters. */}}
{{- define "stigmer-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: <release>-<chart>, or the release name when it already contains
the chart name. Kept to 52 characters so that suffixes such as "-metrics"
and "-store" still fit in a 63-character name.
*/}}
{{- define "stigmer-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* name-version, for the helm.sh/chart label. */}}
{{- define "stigmer-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels that never change for the life of a release (used in selectors). */}}
{{- define "stigmer-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "stigmer-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Standard labels on every object. */}}
{{- define "stigmer-operator.labels" -}}
helm.sh/chart: {{ include "stigmer-operator.chart" . }}
{{ include "stigmer-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: stigmer
{{- end }}

{{/* Name of the ServiceAccount the operator runs as. */}}
{{- define "stigmer-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "stigmer-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Image reference: repository@digest when a digest is given, else repository:tag. */}}
{{- define "stigmer-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* "true" when kopf peering is on (explicitly, or because replicaCount > 1), else "". */}}
{{- define "stigmer-operator.peeringEnabled" -}}
{{- if or .Values.peering.enabled (gt (int .Values.replicaCount) 1) }}true{{- end }}
{{- end }}

{{/* Name of the kopf peering object. */}}
{{- define "stigmer-operator.peeringName" -}}
{{- default (include "stigmer-operator.fullname" .) .Values.peering.name }}
{{- end }}

{{/* Name of the Deployment (and pod name prefix) of replica .index: <fullname>, <fullname>-1, ... */}}
{{- define "stigmer-operator.replicaName" -}}
{{- if eq (int .index) 0 }}
{{- include "stigmer-operator.fullname" .root }}
{{- else }}
{{- printf "%s-%d" (include "stigmer-operator.fullname" .root) (int .index) }}
{{- end }}
{{- end }}

{{/* Name of the store PersistentVolumeClaim of replica .index. */}}
{{- define "stigmer-operator.storeClaimName" -}}
{{- if and (eq (int .index) 0) .root.Values.persistence.existingClaim }}
{{- .root.Values.persistence.existingClaim }}
{{- else }}
{{- printf "%s-store" (include "stigmer-operator.replicaName" .) }}
{{- end }}
{{- end }}

{{/*
Rules the operator needs in every namespace it serves. Used by the
ClusterRole (cluster-wide) and by each Role (namespaced mode). `delete`
only on the per-instance ServiceAccounts, Roles and RoleBindings: they are
owned by their AgentInstance and removed by the garbage collector, but the
ones a deleted instance leaves behind are deleted by the operator when an
instance of the same name replaces it (uid precondition; cluster-wide, the
admission policy limits it to objects labelled managed-by the operator).
*/}}
{{- define "stigmer-operator.namespacedRules" -}}
# Agents and AgentInstances: watch them, create the default instance, patch
# status and kopf's progress annotations. Agents are never deleted; an
# AgentInstance only when it is the default instance a former same-named
# Agent left (uid precondition; cluster-wide, the admission policy admits
# only objects labelled managed-by the operator).
- apiGroups: ["agentic.stigmer.ai"]
  resources: ["agents"]
  verbs: ["get", "list", "watch", "create", "patch", "update"]
- apiGroups: ["agentic.stigmer.ai"]
  resources: ["agentinstances"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
- apiGroups: ["agentic.stigmer.ai"]
  resources: ["agents/status", "agentinstances/status"]
  verbs: ["get", "patch", "update"]
# Children carry blockOwnerDeletion; clusters with the
# OwnerReferencesPermissionEnforcement admission plugin (OpenShift) require
# `update` on the owner's finalizers subresource for that. No finalizer is
# ever written.
- apiGroups: ["agentic.stigmer.ai"]
  resources: ["agents/finalizers", "agentinstances/finalizers"]
  verbs: ["update"]
# Kubernetes Events on the objects it reconciles.
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
# Per-instance identity: a ServiceAccount, a Role and a RoleBinding owned by
# each AgentInstance; `delete` for those a former same-named instance left.
- apiGroups: [""]
  resources: ["serviceaccounts"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
- apiGroups: ["rbac.authorization.k8s.io"]
  resources: ["roles", "rolebindings"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
# RBAC escalation prevention: to create a Role granting `get` on the named
# Secrets/ConfigMaps of an instance, the operator must hold `get` itself.
# `get` only: no list, no watch, so it cannot enumerate them.
- apiGroups: [""]
  resources: ["secrets", "configmaps"]
  verbs: ["get"]
{{- end }}

{{/*
Namespaces: the org of an object is its Namespace's agentic.stigmer.ai/org
label, set by cluster admins. `get` only (a cached GET, no watch).
*/}}
{{- define "stigmer-operator.namespaceReadRule" -}}
# The org of an object is its Namespace's agentic.stigmer.ai/org label.
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["get"]
{{- end }}

{{/* Peering rule for the given resource (clusterkopfpeerings or kopfpeerings). */}}
{{- define "stigmer-operator.peeringRule" -}}
# kopf peering: keep-alives in the peering object's status.
- apiGroups: ["kopf.dev"]
  resources: [{{ . | quote }}]
  verbs: ["get", "list", "watch", "patch"]
{{- end }}

{{/* Fail early on value combinations that cannot work. */}}
{{- define "stigmer-operator.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) .Values.persistence.existingClaim }}
{{- fail "persistence.existingClaim cannot be shared by several replicas: each replica has its own store (set replicaCount: 1, or drop existingClaim to get one claim per replica)" }}
{{- end }}
{{- if and .Values.metrics.serviceMonitor.enabled (not .Values.metrics.service.enabled) }}
{{- fail "metrics.serviceMonitor.enabled requires metrics.service.enabled" }}
{{- end }}
{{- if eq (int .Values.operator.metricsPort) (int .Values.operator.healthPort) }}
{{- fail "operator.metricsPort and operator.healthPort must differ" }}
{{- end }}
{{- end }}
