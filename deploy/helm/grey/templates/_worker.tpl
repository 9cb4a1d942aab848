{{/* One worker Deployment: pass (dict "root" $ "name" suffix "file" config key "replicas" n "pool" pool-or-empty) */}}
{{- define "grey.workerDeployment" -}}
{{- $ := .root -}}
{{- $v := $.Values -}}
{{- $p := .pool -}}
{{- $fullname := include "grey.fullname" $ -}}
{{- $component := printf "worker-%s" .name | trimSuffix "-" -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $fullname }}-{{ $component }}
  labels: {{- include "grey.labels" $ | nindent 4 }}
    app.kubernetes.io/component: {{ $component }}
spec:
  {{- if not (and (not $p) $v.workers.autoscaling.enabled) }}
  replicas: {{ .replicas }}
  {{- end }}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxUnavailable: 0
      maxSurge: 1
  selector:
    matchLabels: {{- include "grey.selector" (list $ $component) | nindent 6 }}
  template:
    metadata:
      labels: {{- include "grey.labels" $ | nindent 8 }}
        app.kubernetes.io/component: {{ $component }}
        {{- if eq $v.cloud.provider "azure" }}
        azure.workload.identity/use: "true"
        {{- end }}
        {{- with $v.workers.podLabels }}{{ toYaml . | nindent 8 }}{{ end }}
      annotations:
        checksum/config: {{ include "grey.workerFile" (list $ (dict "concurrency" 1)) | sha256sum }}
        {{- with $v.workers.podAnnotations }}{{ toYaml . | nindent 8 }}{{ end }}
    spec:
      serviceAccountName: {{ include "grey.serviceAccountName" $ }}
      automountServiceAccountToken: false
      enableServiceLinks: false
      terminationGracePeriodSeconds: {{ $v.workers.terminationGracePeriodSeconds }}
      {{- include "grey.podSecurity" $ | nindent 6 }}
      {{- with $v.imagePullSecrets }}
      imagePullSecrets: {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with (ternary $p.nodeSelector $v.workers.nodeSelector (not (empty $p))) }}
      nodeSelector: {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with (ternary $p.tolerations $v.workers.tolerations (not (empty $p))) }}
      tolerations: {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.workers.affinity }}
      affinity: {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - name: greyd
          image: {{ include "grey.image" $ }}
          imagePullPolicy: {{ $v.image.pullPolicy }}
          command: ["/greyd"]
          args:
            - --config=/etc/grey/config/{{ .file }}
            - --node-id=$(POD_NAME)
            - --data-dir=/var/lib/grey
          env:
            {{- include "grey.env" $ | nindent 12 }}
          ports:
            - name: metrics
              containerPort: {{ $v.servers.ports.metrics }}
          readinessProbe:
            httpGet:
              path: /metrics
              port: metrics
            periodSeconds: 10
          livenessProbe:
            httpGet:
              path: /metrics
              port: metrics
            periodSeconds: 20
            failureThreshold: 6
            timeoutSeconds: 5
          {{- $res := deepCopy $v.workers.resources }}
          {{- if $p }}{{ $res = mergeOverwrite $res (deepCopy (default dict $p.resources)) }}{{ end }}
          {{- if $p }}
          {{- $lim := default dict $res.limits }}
          {{- $req := default dict $res.requests }}
          {{- $_ := set $lim $p.resourceName (toString (default 1 $p.resourceCount)) }}
          {{- $_ := set $req $p.resourceName (toString (default 1 $p.resourceCount)) }}
          {{- $_ := set $res "limits" $lim }}
          {{- $_ := set $res "requests" $req }}
          {{- end }}
          resources: {{- toYaml $res | nindent 12 }}
          {{- include "grey.containerSecurity" $ | nindent 10 }}
          volumeMounts:
            - name: data
              mountPath: /var/lib/grey
            - name: config
              mountPath: /etc/grey/config
              readOnly: true
            {{- if not $v.tls.enabled }}
            - name: secrets
              mountPath: /etc/grey/secrets
              readOnly: true
            {{- end }}
            - name: tmp
              mountPath: /tmp
            {{- if $v.tls.enabled }}
            - name: tls
              mountPath: /etc/grey/tls
              readOnly: true
            {{- end }}
      volumes:
        - name: data
          emptyDir:
            sizeLimit: 1Gi
        - name: config
          configMap:
            name: {{ $fullname }}-config
        - name: tmp
          emptyDir:
            sizeLimit: 256Mi
        {{- if not $v.tls.enabled }}
        - name: secrets
          secret:
            defaultMode: 0400
            {{- if $v.auth.workerApiKeySecret }}
            secretName: {{ $v.auth.workerApiKeySecret }}
            items:
              - key: {{ $v.auth.workerApiKeyKey }}
                path: {{ $v.auth.workerApiKeyKey }}
            {{- else }}
            secretName: {{ $v.auth.adminTokenSecret }}
            items:
              - key: {{ $v.auth.adminTokenKey }}
                path: {{ $v.auth.adminTokenKey }}
            {{- end }}
        {{- end }}
        {{- if $v.tls.enabled }}
        - name: tls
          secret:
            secretName: {{ $v.tls.existingSecret }}
            defaultMode: 0400
            items:
              - {key: ca.crt, path: ca.crt}
              - {key: worker.crt, path: worker.crt}
              - {key: worker.key, path: worker.key}
        {{- end }}
{{- end -}}
