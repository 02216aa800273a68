{{/*
The operator's environment: every flag of `ssm-operator run` is read from its
environment variable. A list of EnvVars; the Deployment leaves out those that
`extraEnv` names (a strategic merge patch, as `helm upgrade` sends, would
merge two entries of one name into the first).
*/}}
{{- define "ssm-operator.env" -}}
- name: AWS_REGION
  value: {{ .Values.region | quote }}
{{- with .Values.watchNamespaces }}
- name: SSM_OPERATOR_WATCH_NAMESPACES
  value: {{ join "," . | quote }}
{{- end }}
- name: SSM_OPERATOR_LOG_FORMAT
  value: {{ .Values.logFormat | quote }}
- name: SSM_OPERATOR_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
- name: SSM_OPERATOR_BATCH_WINDOW
  value: {{ .Values.batchWindow | quote }}
- name: SSM_OPERATOR_AWS_READ_RATE
  value: {{ .Values.awsReadRate | quote }}
- name: SSM_OPERATOR_KUBE_API_QPS
  value: {{ .Values.kubeApiQps | quote }}
- name: SSM_OPERATOR_KUBE_API_BURST
  value: {{ .Values.kubeApiBurst | quote }}
- name: SSM_OPERATOR_SERVICE_ACCOUNT_IDENTITIES
  value: {{ .Values.serviceAccountIdentities | quote }}
- name: SSM_OPERATOR_OPERATOR_IDENTITY_NAMESPACES
  value: {{ join "," .Values.operatorIdentityNamespaces | quote }}
- name: SSM_OPERATOR_CLUSTER_ROLE_ARNS
  value: {{ join "," .Values.clusterRoleArns | quote }}
- name: SSM_OPERATOR_CHANGE_EVENT_QUEUES
  value: {{ join "," .Values.changeEventQueues | quote }}
- name: SSM_OPERATOR_AWS_SESSION_DURATION
  value: {{ .Values.awsSessionDuration | quote }}
- name: SSM_OPERATOR_HTTP_ADDR
  value: {{ printf "%s:%d" .Values.http.host (int .Values.http.port) | quote }}
- name: SSM_OPERATOR_LEADER_ELECT
  value: {{ .Values.leaderElection.enabled | quote }}
{{- if .Values.leaderElection.enabled }}
- name: SSM_OPERATOR_LEASE_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
# One Lease per release, so that several releases can share a namespace.
- name: SSM_OPERATOR_LEASE_NAME
  value: {{ include "ssm-operator.fullname" . | quote }}
{{- end }}
# The holder identity of the Lease, and the name in logs.
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
{{- end }}
