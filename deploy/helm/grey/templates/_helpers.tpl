{{/* Names, labels and the grey.yaml of servers and workers. */}}

{{- define "grey.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "grey.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "grey.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "grey.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: grey
{{- end -}}

{{/* selector labels of one component: pass (list $ "server") */}}
{{- define "grey.selector" -}}
{{- $ := index . 0 -}}
app.kubernetes.io/name: {{ include "grey.name" $ }}
app.kubernetes.io/instance: {{ $.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "grey.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "grey.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "grey.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "grey.headless" -}}
{{- printf "%s-server-headless" (include "grey.fullname" .) -}}
{{- end -}}

{{/* The DNS name of server ordinal n: pass (list $ n) */}}
{{- define "grey.serverHost" -}}
{{- $ := index . 0 -}}
{{- printf "%s-server-%d.%s.%s.svc.%s" (include "grey.fullname" $) (int (index . 1)) (include "grey.headless" $) $.Release.Namespace $.Values.clusterDomain -}}
{{- end -}}

{{/* The Prometheus job of the ServiceMonitor: the rules' GreyScrapeDown matches job=~"grey.*". */}}
{{- define "grey.job" -}}
{{- $f := include "grey.fullname" . -}}
{{- if hasPrefix "grey" $f -}}{{ $f }}{{- else -}}{{ printf "grey-%s" $f }}{{- end -}}
{{- end -}}

{{/* The bucket URL of one bucket name: pass (list $ bucket) */}}
{{- define "grey.bucketURL" -}}
{{- $ := index . 0 -}}
{{- $v := $.Values -}}
{{- $q := list -}}
{{- if and (eq $v.cloud.provider "aws") $v.cloud.region }}{{ $q = append $q (printf "region=%s" $v.cloud.region) }}{{ end -}}
{{- if $v.storage.urlQuery }}{{ $q = append $q $v.storage.urlQuery }}{{ end -}}
{{- $scheme := dict "aws" "s3" "gcp" "gs" "azure" "azblob" -}}
{{- printf "%s://%s" (index $scheme $v.cloud.provider) (index . 1) -}}
{{- if $q }}?{{ join "&" $q }}{{ end -}}
{{- end -}}

{{/* Settings servers and workers share (YAML of grey.yaml). */}}
{{- define "grey.commonConfig" -}}
{{- $v := .Values -}}
log:
  level: {{ $v.logLevel }}
  format: json
monitoring:
  prometheus:
    enabled: true
    host: 0.0.0.0
    port: {{ $v.servers.ports.metrics }}
    pprof: false
{{- if ne $v.cloud.provider "none" }}
cloud:
  provider: {{ $v.cloud.provider }}
  {{- with $v.cloud.region }}
  region: {{ . }}
  {{- end }}
  {{- with $v.cloud.project }}
  project: {{ . }}
  {{- end }}
  {{- with $v.cloud.subscriptionId }}
  subscription_id: {{ . }}
  {{- end }}
  {{- with $v.cloud.environment }}
  environment: {{ . }}
  {{- end }}
  {{- with $v.cloud.costTags }}
  cost_tags: {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- end -}}

{{/* tls block of a server: pass (list $ n) */}}
{{- define "grey.serverTLS" -}}
{{- $ := index . 0 -}}
{{- if $.Values.tls.enabled }}
tls:
  cert_file: /etc/grey/tls/tls.crt
  key_file: /etc/grey/tls/tls.key
  ca_file: /etc/grey/tls/ca.crt
  node_cert_file: {{ printf "/etc/grey/tls/%s-server-%d.crt" (include "grey.fullname" $) (int (index . 1)) }}
  node_key_file: {{ printf "/etc/grey/tls/%s-server-%d.key" (include "grey.fullname" $) (int (index . 1)) }}
{{- end }}
{{- end -}}

{{/* Server settings that do not depend on the ordinal (YAML). */}}
{{- define "grey.serverConfig" -}}
{{- $v := .Values -}}
{{- $grace := sub (int $v.servers.terminationGracePeriodSeconds) 10 -}}
node:
  role: {{ $v.servers.role }}
  {{- with $v.servers.labels }}
  labels: {{- toYaml . | nindent 4 }}
  {{- end }}
http:
  admin_token: ${GREY_ADMIN_TOKEN}
  shutdown_grace: {{ $grace }}s
raft:
  heartbeat_timeout: {{ $v.servers.raft.heartbeatTimeout }}
  election_timeout: {{ $v.servers.raft.electionTimeout }}
  leader_lease_timeout: {{ $v.servers.raft.leaderLeaseTimeout }}
  snapshot_threshold: {{ $v.servers.raft.snapshotThreshold }}
  {{- if and (ne $v.cloud.provider "none") $v.storage.backups.enabled }}
  backup:
    url: {{ include "grey.bucketURL" (list . $v.storage.bucket) | quote }}
    interval: {{ $v.storage.backups.interval }}
    retain: {{ $v.storage.backups.retain }}
  {{- end }}
worker:
  shutdown_grace: {{ $grace }}s
{{- if and (ne $v.cloud.provider "none") $v.storage.taskDataBucket }}
tasks:
  data_url: {{ include "grey.bucketURL" (list . $v.storage.taskDataBucket) | quote }}
{{- end }}
{{- if and (ne $v.cloud.provider "none") $v.storage.modulesBucket }}
executors:
  wasm:
    module_url: {{ include "grey.bucketURL" (list . $v.storage.modulesBucket) | quote }}
{{- end }}
auth:
  mode: {{ toYaml $v.auth.mode | nindent 4 }}
  {{- if has "oidc" $v.auth.mode }}
  oidc:
    {{- with $v.auth.oidc.provider }}
    provider: {{ . | quote }}
    {{- end }}
    {{- with $v.auth.oidc.issuer }}
    issuer: {{ . | quote }}
    {{- end }}
    audience: {{- toYaml $v.auth.oidc.audience | nindent 6 }}
  {{- end }}
  {{- with $v.auth.claims }}
  claims: {{- toYaml . | nindent 4 }}
  {{- end }}
{{ include "grey.commonConfig" . }}
{{- end -}}

{{/* The whole grey.yaml of server ordinal n: pass (list $ n) */}}
{{- define "grey.serverFile" -}}
{{- $ := index . 0 -}}
{{- $n := int (index . 1) -}}
{{- $v := $.Values -}}
{{- $scheme := ternary "https" "http" $v.tls.enabled -}}
{{- $join := list -}}
{{- range $i := until (int $v.servers.replicas) -}}
{{- if ne $i $n -}}
{{- $join = append $join (printf "%s:%d" (include "grey.serverHost" (list $ $i)) (int $v.servers.ports.http)) -}}
{{- end -}}
{{- end -}}
{{- if eq $n 0 }}{{ $join = list }}{{ end -}}
{{- $own := printf "http:\n  advertise: %s://%s:%d\nraft:\n  advertise: %s:%d\n  bootstrap: %t\n  join: %s\n" $scheme (include "grey.serverHost" (list $ $n)) (int $v.servers.ports.http) (include "grey.serverHost" (list $ $n)) (int $v.servers.ports.raft) (eq $n 0) (toJson $join) -}}
{{- $cfg := mergeOverwrite (fromYaml (include "grey.serverConfig" $)) (fromYaml $own) (fromYaml (include "grey.serverTLS" (list $ $n))) (deepCopy $v.config) -}}
{{- toYaml $cfg -}}
{{- end -}}

{{/* The grey.yaml of a worker pool: pass (list $ pool) where pool is a dict (tee, labels, concurrency, kinds) */}}
{{- define "grey.workerFile" -}}
{{- $ := index . 0 -}}
{{- $p := index . 1 -}}
{{- $v := $.Values -}}
{{- $servers := list -}}
{{- range $i := until (int $v.servers.replicas) -}}
{{- $servers = append $servers (printf "%s:%d" (include "grey.serverHost" (list $ $i)) (int $v.servers.ports.http)) -}}
{{- end -}}
{{- $grace := sub (int $v.workers.terminationGracePeriodSeconds) 10 -}}
{{- $cred := dict "token_file" (printf "/etc/grey/secrets/%s" $v.auth.adminTokenKey) -}}
{{- if $v.auth.workerApiKeySecret -}}
{{- $cred = dict "api_key_file" (printf "/etc/grey/secrets/%s" $v.auth.workerApiKeyKey) -}}
{{- end -}}
{{- $node := dict "role" "worker" "servers" $servers -}}
{{- if not $v.tls.enabled }}{{ $_ := set $node "credentials" $cred }}{{ end -}}
{{- with $p.labels }}{{ $_ := set $node "labels" . }}{{ end -}}
{{- $worker := dict "concurrency" (int $p.concurrency) "shutdown_grace" (printf "%ds" $grace) -}}
{{- with $p.kinds }}{{ $_ := set $worker "kinds" . }}{{ end -}}
{{- $cfg := dict "node" $node "worker" $worker -}}
{{- if $p.tee }}{{ $_ := set $cfg "proofs" (dict "attester" $p.tee) }}{{ end -}}
{{- if $v.tls.enabled }}{{ $_ := set $cfg "tls" (dict "ca_file" "/etc/grey/tls/ca.crt" "node_cert_file" "/etc/grey/tls/worker.crt" "node_key_file" "/etc/grey/tls/worker.key") }}{{ end -}}
{{- $cfg = mergeOverwrite $cfg (fromYaml (include "grey.commonConfig" $)) -}}
{{- $extra := deepCopy $v.config -}}
{{- range $k := list "http" "raft" "auth" "tasks" "executors" "tenants" "archive" "database" "events" }}{{ $_ := unset $extra $k }}{{ end -}}
{{- toYaml (mergeOverwrite $cfg $extra) -}}
{{- end -}}

{{/* Pod security context and container security context. */}}
{{- define "grey.podSecurity" -}}
securityContext: {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- end -}}
