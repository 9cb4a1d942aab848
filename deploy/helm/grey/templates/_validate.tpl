{{- define "grey.validate" -}}
{{- /*
Refusals of values that would break quorum, lose backups or never schedule:
each names the value and the reason. (values.schema.json checks types and
enums first.)
*/ -}}
{{- $v := .Values -}}
{{- $n := int $v.servers.replicas -}}
{{- if eq (mod $n 2) 0 -}}
{{- if eq $v.servers.podManagementPolicy "OrderedReady" -}}
{{- fail (printf "servers.replicas is %d with podManagementPolicy OrderedReady: an even number of Raft voters tolerates no more failures than %d (a majority of %d is %d), and OrderedReady deadlocks joins after a full stop (pod 1 waits for pod 0, which cannot be ready without a quorum); use servers.replicas 3 or 5 with podManagementPolicy Parallel" $n (sub $n 1) $n (add (div $n 2) 1)) -}}
{{- end -}}
{{- fail (printf "servers.replicas is %d: an even number of Raft voters tolerates no more failures than %d (a majority of %d is %d) and risks split votes; use %d or %d" $n (sub $n 1) $n (add (div $n 2) 1) (sub $n 1) (add $n 1)) -}}
{{- end -}}
{{- if and (gt $n 1) (eq $v.servers.podManagementPolicy "OrderedReady") -}}
{{- fail (printf "servers.podManagementPolicy OrderedReady is unsafe with %d servers: after a full stop pod 1 waits for pod 0 to be ready, and pod 0 cannot be ready (/readyz needs a Raft leader) without a quorum; use Parallel (joins retry until ordinal 0 answers)" $n) -}}
{{- end -}}
{{- $cloud := $v.cloud.provider -}}
{{- $store := dict "aws" "an S3 bucket" "gcp" "a GCS bucket" "azure" "an Azure Blob container" -}}
{{- if and (ne $cloud "none") (not $v.storage.bucket) -}}
{{- fail (printf "storage.bucket is required with cloud.provider %s: Raft snapshot backups go to %s (set storage.bucket to its name)" $cloud (index $store $cloud)) -}}
{{- end -}}
{{- if and (eq $cloud "aws") (not $v.identity.aws.roleArn) -}}
{{- fail "identity.aws.roleArn is required with cloud.provider aws: the IRSA role (eks.amazonaws.com/role-arn) that may read and write the S3 bucket" -}}
{{- end -}}
{{- if and (eq $cloud "gcp") (not $v.identity.gcp.serviceAccount) -}}
{{- fail "identity.gcp.serviceAccount is required with cloud.provider gcp: the Google service account bound through Workload Identity (iam.gke.io/gcp-service-account) that may use the GCS bucket" -}}
{{- end -}}
{{- if eq $cloud "azure" -}}
{{- if not $v.identity.azure.clientId -}}
{{- fail "identity.azure.clientId is required with cloud.provider azure: the managed identity's client id for workload identity (azure.workload.identity/client-id)" -}}
{{- end -}}
{{- if not $v.cloud.azureStorageAccount -}}
{{- fail "cloud.azureStorageAccount is required with cloud.provider azure: the storage account of the Blob container in storage.bucket" -}}
{{- end -}}
{{- end -}}
{{- if not $v.auth.adminTokenSecret -}}
{{- fail "auth.adminTokenSecret is required: the Secret holding http.admin_token (kubectl create secret generic grey-admin --from-literal=admin-token=$(openssl rand -hex 24))" -}}
{{- end -}}
{{- if and (has "oidc" $v.auth.mode) (not (or $v.auth.oidc.issuer $v.auth.oidc.provider)) -}}
{{- fail "auth.oidc.issuer is required when auth.mode includes oidc" -}}
{{- end -}}
{{- if and $v.tls.enabled (not $v.tls.existingSecret) -}}
{{- fail "tls.existingSecret is required when tls.enabled: the Secret with ca.crt, tls.crt, tls.key and each server's node certificate" -}}
{{- end -}}
{{- if and $v.workers.autoscaling.enabled (not $v.workers.autoscaling.prometheusAddress) -}}
{{- fail "workers.autoscaling.prometheusAddress is required when workers.autoscaling.enabled: KEDA reads grey_queue_depth from that Prometheus" -}}
{{- end -}}
{{- if lt (int $v.servers.terminationGracePeriodSeconds) 20 -}}
{{- fail "servers.terminationGracePeriodSeconds must be at least 20: greyd drains within it minus 10s" -}}
{{- end -}}
{{- $names := dict -}}
{{- range $v.workers.teePools -}}
{{- if hasKey $names .name -}}
{{- fail (printf "workers.teePools: the name %q is used twice" .name) -}}
{{- end -}}
{{- $_ := set $names .name true -}}
{{- if not .resourceName -}}
{{- fail (printf "workers.teePools[%s] (tee %s) has no resourceName: a %s worker needs the device plugin's extended resource (e.g. %s) or it lands on a node without the TEE device and every attestation fails" .name .tee .tee (index (dict "sgx" "sgx.intel.com/epc" "sev-snp" "amd.com/sev-snp" "tdx" "tdx.intel.com/tdx-guest") .tee)) -}}
{{- end -}}
{{- if not .nodeSelector -}}
{{- fail (printf "workers.teePools[%s] has no nodeSelector: name the confidential-computing node pool (see values-tee.yaml)" .name) -}}
{{- end -}}
{{- end -}}

{{- end -}}
