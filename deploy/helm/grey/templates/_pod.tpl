{{/* Pieces both pod templates share. */}}

{{/* Environment of every greyd container. */}}
{{- define "grey.env" -}}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
{{- if eq .Values.cloud.provider "azure" }}
- name: AZURE_STORAGE_ACCOUNT
  value: {{ .Values.cloud.azureStorageAccount | quote }}
{{- end }}
{{- if and (eq .Values.cloud.provider "aws") .Values.cloud.region }}
- name: AWS_REGION
  value: {{ .Values.cloud.region | quote }}
{{- end }}
{{- if and (eq .Values.cloud.provider "gcp") .Values.cloud.project }}
- name: GOOGLE_PROJECT
  value: {{ .Values.cloud.project | quote }}
{{- end }}
{{- end -}}

{{- define "grey.containerSecurity" -}}
securityContext: {{- toYaml .Values.securityContext | nindent 2 }}
{{- end -}}
