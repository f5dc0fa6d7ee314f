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

{{- /*
The operator refuses to start unless requestTimeout < renewDeadline < leaseDuration and
retryPeriod < renewDeadline (operator/src/leader.ts); refuse the same values at render time,
naming them. float64: values.yaml gives floats, --set gives integers.
*/}}
{{- define "loraforge.checkLeaderElection" -}}
{{- $le := .Values.leaderElection -}}
{{- if $le.enabled -}}
{{- $lease := float64 $le.leaseDurationSeconds -}}
{{- $renew := float64 $le.renewDeadlineSeconds -}}
{{- $retry := float64 $le.retryPeriodSeconds -}}
{{- $request := divf $renew 2 -}}
{{- if $le.requestTimeoutSeconds }}{{ $request = float64 $le.requestTimeoutSeconds }}{{ end -}}
{{- if not (lt $renew $lease) -}}
{{- fail (printf "leaderElection.renewDeadlineSeconds (%v) must be less than leaderElection.leaseDurationSeconds (%v): otherwise a contender takes the Lease over while the leader still works" $le.renewDeadlineSeconds $le.leaseDurationSeconds) -}}
{{- end -}}
{{- if not (lt $retry $renew) -}}
{{- fail (printf "leaderElection.retryPeriodSeconds (%v) must be less than leaderElection.renewDeadlineSeconds (%v): otherwise the leader gets no second try before it steps down" $le.retryPeriodSeconds $le.renewDeadlineSeconds) -}}
{{- end -}}
{{- if not (lt $request $renew) -}}
{{- fail (printf "leaderElection.requestTimeoutSeconds (%v) must be less than leaderElection.renewDeadlineSeconds (%v): otherwise one hung Lease request outlasts the deadline" $le.requestTimeoutSeconds $le.renewDeadlineSeconds) -}}
{{- end -}}
{{- end -}}
{{- end -}}
