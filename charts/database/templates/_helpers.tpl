{{/* Every resource is named like the release: the Service's DNS name is the database's host. */}}
{{- define "database.name" -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels never change after the first install: a StatefulSet's selector is immutable.
They also label the volume claims, which is how the claims are found again to delete them. */}}
{{- define "database.selectorLabels" -}}
app.kubernetes.io/name: {{ include "database.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: database
{{- end -}}

{{- define "database.labels" -}}
{{ include "database.selectorLabels" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
stageflow.dev/engine: {{ .Values.engine }}
{{- with .Values.app }}
app.kubernetes.io/part-of: {{ . }}
{{- end }}
{{- with .Values.stage }}
stageflow.dev/stage: {{ . }}
{{- end }}
{{- with .Values.labels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "database.port" -}}
{{- if eq .Values.engine "postgres" }}5432{{ else }}27017{{ end -}}
{{- end -}}

{{- define "database.image" -}}
{{- if eq .Values.engine "postgres" }}{{ .Values.image.postgres }}{{ else }}{{ .Values.image.mongodb }}{{ end -}}
{{- end -}}

{{/* The credentials' Secret: auth.existingSecret, by default the one named like the release. */}}
{{- define "database.secret" -}}
{{- default (include "database.name" .) .Values.auth.existingSecret -}}
{{- end -}}
