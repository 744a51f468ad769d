{{/* The service's name: every resource and the app.kubernetes.io/name label use it. */}}
{{- define "service.name" -}}
{{- default .Release.Name .Values.name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels must never change after the first install: a Deployment's selector is immutable. */}}
{{- define "service.selectorLabels" -}}
app.kubernetes.io/name: {{ include "service.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "service.labels" -}}
{{ include "service.selectorLabels" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
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

{{/* The Deployment's and its pods' labels: the common ones plus app.kubernetes.io/version from the
informational image.tag, cut to a valid label value (at most 63 characters, alphanumeric at both
ends). Never part of a selector: it changes with every release. */}}
{{- define "service.versionedLabels" -}}
{{ include "service.labels" . }}
{{- with .Values.image.tag | default "" | trunc 63 | trimAll "-_." }}
app.kubernetes.io/version: {{ . | quote }}
{{- end }}
{{- end -}}

{{/* repository@sha256:...; a tag is never used, so what runs is exactly what was built. */}}
{{- define "service.image" -}}
{{- $repository := required "image.repository is required (registry host[:port]/path, e.g. registry.local:5000/shop/cart)" .Values.image.repository -}}
{{- $digest := required "image.digest is required: the image is pinned by digest (sha256:<64 hex>), never by tag" .Values.image.digest -}}
{{- printf "%s@%s" $repository $digest -}}
{{- end -}}

{{- define "service.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "service.name" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}
