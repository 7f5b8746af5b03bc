{{- define "fnhub.fullname" -}}
{{ .Release.Name }}-fnhub
{{- end }}

{{- define "fnhub.selectorLabels" -}}
app.kubernetes.io/name: fnhub
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "fnhub.labels" -}}
{{ include "fnhub.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end }}

{{- define "fnhub.secretName" -}}
{{ .Values.existingSecret | default (include "fnhub.fullname" .) }}
{{- end }}
