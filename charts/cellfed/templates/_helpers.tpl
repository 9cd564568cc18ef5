{{/* Name of the release's objects. */}}
{{- define "cellfed.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The webhook Service: the federated CRDs' conversion and the admission config point at it. */}}
{{- define "cellfed.webhookService" -}}
{{- printf "%s-webhook" (include "cellfed.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The controller and the webhook run under separate ServiceAccounts (different rights). */}}
{{- define "cellfed.controllerServiceAccount" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (printf "%s-controller" (include "cellfed.fullname" .)) .Values.serviceAccount.controllerName -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.controllerName -}}
{{- end -}}
{{- end -}}

{{- define "cellfed.webhookServiceAccount" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "cellfed.webhookService" .) .Values.serviceAccount.webhookName -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.webhookName -}}
{{- end -}}
{{- end -}}

{{- define "cellfed.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "cellfed.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "cellfed.selector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* With apiserver.enabled, the controller and the webhook use the in-chart apiserver's Service
through the kubeconfig in its -pki Secret instead of the in-cluster host apiserver. */}}
{{- define "cellfed.apiserverArgs" -}}
- --kubeconfig=/apiserver/kubeconfig
{{- end -}}

{{- define "cellfed.apiserverMount" -}}
- name: apiserver-kubeconfig
  mountPath: /apiserver
  readOnly: true
{{- end -}}

{{- define "cellfed.apiserverVolume" -}}
- name: apiserver-kubeconfig
  secret:
    secretName: {{ printf "%s-apiserver" (include "cellfed.fullname" .) | trunc 63 | trimSuffix "-" }}-pki
    items:
      - key: kubeconfig
        path: kubeconfig
{{- end -}}
