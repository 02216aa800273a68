{{/* Name of the chart, or nameOverride. */}}
{{- define "ssm-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of the resources: fullnameOverride, or the release name when it
already contains the chart name, or "<release>-<chart>". 63 characters at most
(a DNS label).
*/}}
{{- define "ssm-operator.fullname" -}}
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

{{/* "<chart>-<version>" for the helm.sh/chart label. */}}
{{- define "ssm-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of every resource: the selector labels, the chart's, and commonLabels
(the chart's win on a clash). One map, so that no key appears twice.
*/}}
{{- define "ssm-operator.labels" -}}
{{- include "ssm-operator.labelsWith" (dict "context" . "extra" (dict)) }}
{{- end }}

{{/*
The labels of every resource plus more of a resource's own ("extra": podLabels,
serviceAccount.labels, serviceMonitor.labels), which never replace the chart's.
*/}}
{{- define "ssm-operator.labelsWith" -}}
{{- $context := .context }}
{{- $labels := include "ssm-operator.selectorLabels" $context | fromYaml }}
{{- $_ := set $labels "helm.sh/chart" (include "ssm-operator.chart" $context) }}
{{- $_ := set $labels "app.kubernetes.io/version" $context.Chart.AppVersion }}
{{- $_ := set $labels "app.kubernetes.io/managed-by" $context.Release.Service }}
{{- toYaml (merge $labels (default dict $context.Values.commonLabels) (default dict .extra)) }}
{{- end }}

{{/* Labels that select the operator's Pods; never change them (Deployment selectors are immutable). */}}
{{- define "ssm-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ssm-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Name of the operator's ServiceAccount. */}}
{{- define "ssm-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ssm-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The image reference: repository, then @digest or :tag (default: appVersion). */}}
{{- define "ssm-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
The PromQL label matchers of this release's series: prometheusRule.metricsSelector,
or the labels Prometheus gives the targets of the chart's ServiceMonitor (job:
the Service's name; namespace: the Service's).
*/}}
{{- define "ssm-operator.metricsSelector" -}}
{{- $service := printf "%s-metrics" (include "ssm-operator.fullname" .) }}
{{- default (printf "job=%q,namespace=%q" $service .Release.Namespace) .Values.prometheusRule.metricsSelector }}
{{- end }}

{{/*
Checks across values that the schema cannot express readably; they fail the
render with a message that says what to change.
*/}}
{{- define "ssm-operator.validate" -}}
{{- $_ := required "region is required: the AWS region of the parameters, e.g. --set region=ap-northeast-1" .Values.region }}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) }}
{{- fail "replicaCount > 1 requires leaderElection.enabled=true: operators without a Lease would write the same Secrets concurrently" }}
{{- end }}
{{- if and (eq .Values.rbac.scope "namespace") (empty .Values.watchNamespaces) }}
{{- fail "rbac.scope=namespace requires watchNamespaces: the namespaces to create a Role in" }}
{{- end }}
{{- if and .Values.serviceAccountIdentityNamespaces (not .Values.serviceAccountIdentities) }}
{{- fail "serviceAccountIdentityNamespaces requires serviceAccountIdentities=true: it names where tenant identities are used" }}
{{- end }}
{{- if .Values.watchNamespaces }}
{{- range .Values.serviceAccountIdentityNamespaces }}
{{- if not (has . $.Values.watchNamespaces) }}
{{- fail (printf "serviceAccountIdentityNamespaces: %s is not in watchNamespaces: the operator does not serve it" .) }}
{{- end }}
{{- end }}
{{- end }}
{{- if and .Values.metrics.serviceMonitor.enabled (not .Values.metrics.service.enabled) }}
{{- fail "metrics.serviceMonitor.enabled requires metrics.service.enabled: the ServiceMonitor selects that Service" }}
{{- end }}
{{- end }}
