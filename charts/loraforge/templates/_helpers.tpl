{{- define "loraforge.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "loraforge.serviceAccountName" -}}
{{- default (include "loraforge.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{- define "loraforge.labels" -}}
app.kubernetes.io/name: loraforge-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "loraforge.selectorLabels" -}}
app.kubernetes.io/name: loraforge-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
