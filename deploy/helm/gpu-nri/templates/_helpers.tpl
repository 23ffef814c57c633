{{- define "gpu-nri.name" -}}
gpu-nri
{{- end -}}

{{- define "gpu-nri.fullname" -}}
{{- if contains "gpu-nri" .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-gpu-nri" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "gpu-nri.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gpu-nri.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "gpu-nri.labels" -}}
{{ include "gpu-nri.selectorLabels" . }}
app.kubernetes.io/component: nri-plugin
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "gpu-nri.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "gpu-nri.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "gpu-nri.image" -}}
{{ .Values.image.repository }}:{{ default .Chart.AppVersion .Values.image.tag }}
{{- end -}}

{{/* The config.yaml the daemon reads: values.config, the policy profile, and the keys the chart
     owns because they must match the pod's mounts and ports. */}}
{{- define "gpu-nri.config" -}}
{{- $cfg := deepCopy .Values.config -}}
{{- if not (hasKey $cfg "policy") -}}
{{- $profile := .Values.policyProfile -}}
{{- if not (has $profile (list "standalone" "kubernetes-strict")) -}}
{{- fail (printf "policyProfile must be standalone or kubernetes-strict, got %q" $profile) -}}
{{- end -}}
{{- $cfg = mergeOverwrite $cfg (.Files.Get (printf "files/policy-%s.yaml" $profile) | fromYaml) -}}
{{- end -}}
{{- $owned := dict "host" (dict "root" "/host") "plugin" (dict "socket" "/var/run/nri/nri.sock") "injection" (dict "hookPath" (printf "%s/gpu-nri-hook" (trimSuffix "/" .Values.hookDir))) "metrics" (dict "address" (printf ":%d" (int .Values.metricsPort))) -}}
{{- $cfg = mergeOverwrite $cfg $owned -}}
{{- with .Values.libraryDir -}}
{{- $cfg = mergeOverwrite $cfg (dict "injection" (dict "libraryDir" .)) -}}
{{- end -}}
{{- if .Values.dra.enabled -}}
{{- $kubelet := trimSuffix "/" .Values.dra.kubeletDir -}}
{{- $dra := dict "dra" (dict "enabled" true "driverName" .Values.dra.driverName "kubeletRegistryDir" (printf "%s/plugins_registry" $kubelet) "pluginDir" (printf "%s/plugins/%s" $kubelet .Values.dra.driverName) "cdiSpecDir" "/var/run/cdi") -}}
{{- $cfg = mergeOverwrite $cfg $dra -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}
