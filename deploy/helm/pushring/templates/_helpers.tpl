{{/* The chart name, or nameOverride. */}}
{{- define "pushring.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The object name prefix: fullnameOverride, or the release name with
the chart name unless the release name already holds it. */}}
{{- define "pushring.fullname" -}}
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

{{/* The headless Service: the gossip seed and the pods' DNS names. */}}
{{- define "pushring.peersName" -}}
{{- printf "%s-peers" (include "pushring.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "pushring.ttlRulesName" -}}
{{- printf "%s-ttl-rules" (include "pushring.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "pushring.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "pushring.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Labels that select the pods; they never change after install. */}}
{{- define "pushring.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pushring.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "pushring.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "pushring.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: pushring
{{- end }}

{{- define "pushring.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The Secret holding the gossip key. */}}
{{- define "pushring.gossipKeySecret" -}}
{{- .Values.security.gossipKey.existingSecret | default (printf "%s-gossip-key" (include "pushring.fullname" .) | trunc 63 | trimSuffix "-") -}}
{{- end }}

{{/* The ConfigMap holding --cluster.tls-config. */}}
{{- define "pushring.tlsConfigName" -}}
{{- printf "%s-tls-config" (include "pushring.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end }}

{{/* Probe settings shared by the three probes: headers for basic auth. */}}
{{- define "pushring.probeHeaders" -}}
{{- with .Values.probes.httpHeaders }}
httpHeaders:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
