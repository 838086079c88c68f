{{- define "planstream.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "planstream.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "planstream.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "planstream.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "planstream.selectorLabels" -}}
app.kubernetes.io/name: {{ include "planstream.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "planstream.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "planstream.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
The name of one component's objects, at most 63 characters with the component kept whole (a
Service name is a DNS label); takes (dict "ctx" $ "component" NAME).
*/}}
{{- define "planstream.componentName" -}}
{{- $prefix := include "planstream.fullname" .ctx | trunc (int (sub 62 (len .component))) | trimSuffix "-" }}
{{- printf "%s-%s" $prefix .component }}
{{- end }}

{{/* The selector labels of one component; takes (dict "ctx" $ "component" NAME). */}}
{{- define "planstream.componentLabels" -}}
{{ include "planstream.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
Settings (name: value, named as in planstream/settings.py) as PLANSTREAM_<NAME> entries of a
ConfigMap's data or a Secret's stringData. Empty values are left out, so planstream's defaults
apply. Numbers go through toJson: Helm reads them as floats, which toString would print as 4.8e+07.
*/}}
{{- define "planstream.envData" -}}
{{- $env := dict }}
{{- range $name, $value := . }}
{{- if not (or (kindIs "invalid" $value) (eq (toString $value) "")) }}
{{- $_ := set $env (printf "PLANSTREAM_%s" (upper $name)) (ternary $value (toJson $value) (kindIs "string" $value)) }}
{{- end }}
{{- end }}
{{- toYaml $env }}
{{- end }}

{{/*
The name of the ConfigMap and chart-made Secret. Regular resources are created after the
pre-install hooks run, so the hook Jobs read a copy made as a hook; takes (dict "ctx" $ "hook" BOOL).
*/}}
{{- define "planstream.settingsName" -}}
{{- if .hook }}
{{- include "planstream.componentName" (dict "ctx" .ctx "component" "hook") }}
{{- else }}
{{- include "planstream.fullname" .ctx }}
{{- end }}
{{- end }}

{{/* Annotations of those hook copies: made before the Jobs, deleted once they succeed. */}}
{{- define "planstream.settingsHookAnnotations" -}}
helm.sh/hook: pre-install,pre-upgrade
helm.sh/hook-weight: "-10"
helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
{{- end }}

{{/* Rolls the pods when a setting changes. */}}
{{- define "planstream.settingsChecksum" -}}
{{- toJson (list .Values.config .Values.secret .Values.ingress.port .Values.metrics.port) | sha256sum }}
{{- end }}

{{/*
The ServiceAccount of the pods; takes (dict "ctx" $ "hook" BOOL): the hook Jobs run before the
regular resources exist, so the chart makes them a copy that is itself a hook (like the settings).
*/}}
{{- define "planstream.serviceAccountName" -}}
{{- if .ctx.Values.serviceAccount.create }}
{{- $name := .ctx.Values.serviceAccount.name | default (include "planstream.fullname" .ctx) }}
{{- ternary (printf "%s-hook" $name) $name .hook }}
{{- else }}
{{- .ctx.Values.serviceAccount.name | default "default" }}
{{- end }}
{{- end }}

{{/* Pod-level fields shared by every Deployment and Job; takes (dict "ctx" $ "hook" BOOL). */}}
{{- define "planstream.podSpec" -}}
{{- $values := .ctx.Values -}}
serviceAccountName: {{ include "planstream.serviceAccountName" . }}
# No Kubernetes API token in the pods: planstream never calls the API server.
automountServiceAccountToken: false
securityContext:
  {{- toYaml $values.podSecurityContext | nindent 2 }}
{{- with $values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
# Writable scratch space under the read-only root filesystem.
volumes:
  - name: work
    emptyDir: {}
  - name: tmp
    emptyDir: {}
  {{- with $values.kafkaTls.secretName }}
  - name: kafka-tls
    secret:
      secretName: {{ . }}
      defaultMode: 0444
  {{- end }}
{{- end }}

{{/*
The Secret's variables one process needs, as a JSON list; takes the process name. The same table
as planstream/credentials.py's NEEDS (a deploy check holds them equal): the model key only to the
workers that call the model, the old function's token only to the legacy bridge, the token key
only to the ingress, PostgreSQL's password to every process that opens it.
*/}}
{{- define "planstream.secretVariables" -}}
{{- $postgres := list "PLANSTREAM_POSTGRES_DSN" "PLANSTREAM_POSTGRES_PASSWORD" }}
{{- $kafka := list "PLANSTREAM_KAFKA_SASL_PASSWORD" }}
{{- $step := concat $postgres $kafka (list "PLANSTREAM_S3_ACCESS_KEY_ID" "PLANSTREAM_S3_SECRET_ACCESS_KEY") }}
{{- $model := concat $step (list "PLANSTREAM_MODEL_API_KEY") }}
{{- $needs := dict
    "ingress" (concat $step (list "PLANSTREAM_AUTH_HS256_SECRET"))
    "image_io" $step
    "info_worker" $model
    "comparison_worker" $model
    "supervisor" $model
    "render_worker" $model
    "legacy_bridge" (concat $step (list "PLANSTREAM_LEGACY_AUTH_TOKEN"))
    "decisions_sink" (concat $postgres $kafka)
    "sweeper" $step
    "migrate" $postgres
    "topics" $kafka }}
{{- if not (hasKey $needs .) }}
{{- fail (printf "no secrets are listed for the process %s (templates/_helpers.tpl)" .) }}
{{- end }}
{{- get $needs . | sortAlpha | toJson }}
{{- end }}

{{/*
Container fields shared by every Deployment and Job; takes (dict "ctx" $ "hook" BOOL "process"
NAME). Settings come from the ConfigMap; from the Secret only the keys this process needs, each
optional (a missing one is named by the process itself when PLANSTREAM_DEPLOYMENT=production).
*/}}
{{- define "planstream.container" -}}
{{- $values := .ctx.Values -}}
{{- $secret := $values.secret.existingSecret | default (include "planstream.settingsName" .) -}}
image: {{ printf "%s:%s" $values.image.repository ($values.image.tag | default .ctx.Chart.AppVersion) | quote }}
imagePullPolicy: {{ $values.image.pullPolicy }}
securityContext:
  {{- toYaml $values.securityContext | nindent 2 }}
envFrom:
  - configMapRef:
      name: {{ include "planstream.settingsName" . }}
env:
  {{- range $name := include "planstream.secretVariables" .process | fromJsonArray }}
  - name: {{ $name }}
    valueFrom:
      secretKeyRef:
        name: {{ $secret }}
        key: {{ $name }}
        optional: true
  {{- end }}
volumeMounts:
  # The image's working directory, where Faust keeps its table data.
  - name: work
    mountPath: /var/lib/planstream
  - name: tmp
    mountPath: /tmp
  {{- if $values.kafkaTls.secretName }}
  # The Kafka CA, client certificate and key, for config.kafka_ssl_cafile/certfile/keyfile.
  - name: kafka-tls
    mountPath: {{ $values.kafkaTls.mountPath }}
    readOnly: true
  {{- end }}
{{- end }}

{{/*
The components whose pods run a planstream process with a metrics port, as
app.kubernetes.io/component values: the ingress and every worker, replicas 0 included.
*/}}
{{- define "planstream.processComponents" -}}
{{- $components := list "ingress" }}
{{- range $service, $_ := .Values.workers }}
{{- $components = append $components ($service | replace "_" "-") }}
{{- end }}
{{- toJson $components }}
{{- end }}

{{/*
A Deployment of one planstream process; takes (dict "ctx" $ "component" NAME "process" NAME
"args" LIST "replicas" N "resources" MAP "grace" SECONDS "extra" YAML), where process is the
service's own name (the `process` label of its metrics), replicas is left out when an HPA owns
it (nil), grace is optional and extra holds more container fields.
*/}}
{{- define "planstream.deployment" -}}
{{- $labels := dict "ctx" .ctx "component" .component -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "planstream.componentName" $labels }}
  labels:
    {{- include "planstream.labels" .ctx | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
spec:
  {{- if not (kindIs "invalid" .replicas) }}
  replicas: {{ .replicas }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "planstream.componentLabels" $labels | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "planstream.componentLabels" $labels | nindent 8 }}
        # The PodMonitor copies it into the `process` label of every series.
        planstream.io/process: {{ .process }}
      annotations:
        checksum/settings: {{ include "planstream.settingsChecksum" .ctx }}
    spec:
      {{- with .grace }}
      terminationGracePeriodSeconds: {{ . }}
      {{- end }}
      {{- include "planstream.podSpec" (dict "ctx" .ctx "hook" false) | nindent 6 }}
      containers:
        - name: {{ .component }}
          {{- include "planstream.container" (dict "ctx" .ctx "hook" false "process" .process) | nindent 10 }}
          args: {{ toJson .args }}
          ports:
            {{- with .ports }}
            {{- . | nindent 12 }}
            {{- end }}
            - name: metrics
              containerPort: {{ .ctx.Values.metrics.port }}
          {{- with .extra }}
          {{- . | trim | nindent 10 }}
          {{- end }}
          resources:
            {{- toYaml .resources | nindent 12 }}
{{- end }}

{{/*
A PodDisruptionBudget for one component; takes (dict "ctx" $ "component" NAME "budget" MAP)
with budget.maxUnavailable or budget.minAvailable (maxUnavailable wins when both are set).
*/}}
{{- define "planstream.pdb" -}}
{{- $labels := dict "ctx" .ctx "component" .component -}}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "planstream.componentName" $labels }}
  labels:
    {{- include "planstream.labels" .ctx | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
spec:
  {{- if not (kindIs "invalid" .budget.maxUnavailable) }}
  maxUnavailable: {{ .budget.maxUnavailable | toJson }}
  {{- else if not (kindIs "invalid" .budget.minAvailable) }}
  minAvailable: {{ .budget.minAvailable | toJson }}
  {{- else }}
  {{- fail (printf "%s: podDisruptionBudget needs maxUnavailable or minAvailable" .component) }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "planstream.componentLabels" $labels | nindent 6 }}
{{- end }}
