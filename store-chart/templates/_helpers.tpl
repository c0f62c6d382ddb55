{{/*
Shared named templates. Every name starts with "store.".
*/}}

{{/* store.name -- the chart name, used as app.kubernetes.io/name. */}}
{{- define "store.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* store.fullname -- prefix of every object name: the store name itself. */}}
{{- define "store.fullname" -}}
{{- required "storeName is required (set by the platform: the store's name)" .Values.storeName | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* store.componentName -- "<storeName>-<component>", cut to 63 characters.
Usage: include "store.componentName" (list $ "wordpress") */}}
{{- define "store.componentName" -}}
{{- $root := index . 0 -}}
{{- printf "%s-%s" (include "store.fullname" $root) (index . 1) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* store.chart -- chart name and version for the helm.sh/chart label. */}}
{{- define "store.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* store.selectorLabels -- the stable labels a selector may use.
Usage: include "store.selectorLabels" (list $ "wordpress") */}}
{{- define "store.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "store.name" $root }}
app.kubernetes.io/instance: {{ include "store.fullname" $root }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{/* store.labels -- every label an object or pod template carries.
Usage: include "store.labels" (list $ "wordpress") */}}
{{- define "store.labels" -}}
{{- $root := index . 0 -}}
{{ include "store.selectorLabels" . }}
app.kubernetes.io/version: {{ $root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
app.kubernetes.io/part-of: storeplatform
helm.sh/chart: {{ include "store.chart" $root }}
storeplatform.io/store: {{ include "store.fullname" $root }}
storeplatform.io/engine: {{ $root.Values.engine }}
{{- end -}}

{{/* store.metadata -- name, namespace and labels of one object.
Usage: include "store.metadata" (list $ "wordpress" "<name>") */}}
{{- define "store.metadata" -}}
{{- $root := index . 0 -}}
name: {{ index . 2 }}
namespace: {{ $root.Release.Namespace }}
labels:
  {{- include "store.labels" (list $root (index . 1)) | nindent 2 }}
{{- end -}}

{{/* store.image -- "repository:tag", or "repository:tag@digest" when a digest is pinned. */}}
{{- define "store.image" -}}
{{- if .digest -}}
{{- printf "%s:%s@%s" .repository .tag .digest -}}
{{- else -}}
{{- printf "%s:%s" .repository .tag -}}
{{- end -}}
{{- end -}}

{{/* store.host -- the storefront host name, <storeName>.<ingress.baseDomain>. */}}
{{- define "store.host" -}}
{{- printf "%s.%s" (include "store.fullname" .) .Values.ingress.baseDomain -}}
{{- end -}}

{{/* store.url -- the storefront URL WordPress is installed under (no trailing slash). */}}
{{- define "store.url" -}}
{{- printf "%s://%s" (ternary "https" "http" .Values.ingress.tls.enabled) (include "store.host" .) -}}
{{- end -}}

{{/* store.podSecurityContext -- Pod Security "restricted" for a pod running as uid/gid $id. */}}
{{- define "store.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ . }}
runAsGroup: {{ . }}
fsGroup: {{ . }}
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* store.containerSecurityContext -- Pod Security "restricted" for one container. */}}
{{- define "store.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ . }}
runAsGroup: {{ . }}
allowPrivilegeEscalation: false
privileged: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* store.cpuMilli -- a cpu quantity ("250m", "1", "1.5") in millicores. */}}
{{- define "store.cpuMilli" -}}
{{- $q := toString . -}}
{{- if hasSuffix "m" $q -}}
{{- trimSuffix "m" $q | int -}}
{{- else -}}
{{- mulf (float64 $q) 1000 | int -}}
{{- end -}}
{{- end -}}

{{/* store.memMi -- a memory or storage quantity ("512Mi", "2Gi", "1Ti") in Mi. */}}
{{- define "store.memMi" -}}
{{- $q := toString . -}}
{{- if hasSuffix "Ti" $q -}}
{{- mul (trimSuffix "Ti" $q | int) 1048576 -}}
{{- else if hasSuffix "Gi" $q -}}
{{- mul (trimSuffix "Gi" $q | int) 1024 -}}
{{- else -}}
{{- trimSuffix "Mi" $q | int -}}
{{- end -}}
{{- end -}}

{{/* store.wordpressPods -- most WordPress pods serving at once: replicas, plus one
surge pod when wp-content is ReadWriteMany and updates roll. */}}
{{- define "store.wordpressPods" -}}
{{- $surge := ternary 1 0 (eq .Values.persistence.wpContent.accessMode "ReadWriteMany") -}}
{{- add (int .Values.wordpress.replicas) $surge -}}
{{- end -}}

{{/* store.acmeSolver -- "true" when cert-manager solves HTTP-01 challenges in the
namespace (a solver pod and its Service live here while a certificate is issued). */}}
{{- define "store.acmeSolver" -}}
{{- if and .Values.ingress.enabled .Values.ingress.tls.enabled .Values.ingress.tls.clusterIssuer .Values.ingress.tls.acmeHttp01 -}}true{{- end -}}
{{- end -}}

{{/* store.podBudget -- every pod that may exist in the namespace at once, as
(component, count, resources), for the quota:
- wordpress: the serving pods (store.wordpressPods) plus one spare WordPress-sized
  slot: an evicted or drained pod's replacement starts while the old one is still
  terminating, and a one-off pod (a backup, a debug shell under the LimitRange
  defaults) fits in it without starving the store;
- mysql, the set-up hook Job, the scheduled job, the helm test pod;
- cert-manager's HTTP-01 solver while a certificate is issued (store.acmeSolver). */}}
{{- define "store.podBudget" -}}
{{- $pods := list -}}
{{- $pods = append $pods (dict "component" "wordpress" "count" (add1 (int (include "store.wordpressPods" .))) "resources" .Values.wordpress.resources) -}}
{{- $pods = append $pods (dict "component" "mysql" "count" 1 "resources" .Values.mysql.resources) -}}
{{- $pods = append $pods (dict "component" "setup" "count" 1 "resources" .Values.setup.resources) -}}
{{- $pods = append $pods (dict "component" "cron" "count" 1 "resources" .Values.cron.resources) -}}
{{- $pods = append $pods (dict "component" "test" "count" 1 "resources" .Values.tests.resources) -}}
{{- if include "store.acmeSolver" . -}}
{{- $pods = append $pods (dict "component" "acme-solver" "count" 1 "resources" .Values.ingress.tls.acmeSolverResources) -}}
{{- end -}}
{{- toYaml $pods -}}
{{- end -}}

{{/* store.quotaTotals -- sum of the pod budget: pods, cpu (m), memory (Mi) for
requests and limits, as YAML. */}}
{{- define "store.quotaTotals" -}}
{{- $t := dict "pods" 0 "requestsCpu" 0 "limitsCpu" 0 "requestsMemory" 0 "limitsMemory" 0 -}}
{{- range (include "store.podBudget" . | fromYamlArray) -}}
{{- $n := int .count -}}
{{- $_ := set $t "pods" (add $t.pods $n) -}}
{{- $_ := set $t "requestsCpu" (add $t.requestsCpu (mul $n (include "store.cpuMilli" .resources.requests.cpu | int))) -}}
{{- $_ := set $t "limitsCpu" (add $t.limitsCpu (mul $n (include "store.cpuMilli" .resources.limits.cpu | int))) -}}
{{- $_ := set $t "requestsMemory" (add $t.requestsMemory (mul $n (include "store.memMi" .resources.requests.memory | int))) -}}
{{- $_ := set $t "limitsMemory" (add $t.limitsMemory (mul $n (include "store.memMi" .resources.limits.memory | int))) -}}
{{- end -}}
{{- toYaml $t -}}
{{- end -}}

{{/* store.secretVolume -- the credentials Secret as read-only files, only the listed keys.
Usage: include "store.secretVolume" (list $ (list "mysql-password" ...)) */}}
{{- define "store.secretVolume" -}}
{{- $root := index . 0 -}}
- name: credentials
  secret:
    secretName: {{ $root.Values.existingSecret }}
    defaultMode: 0440
    items:
      {{- range index . 1 }}
      - key: {{ . }}
        path: {{ . }}
      {{- end }}
{{- end -}}

{{/* store.validateValues -- cross-field checks the schema cannot express. */}}
{{- define "store.validateValues" -}}
{{- $errors := list -}}
{{- if not .Values.existingSecret -}}
{{- $errors = append $errors "existingSecret is required: the chart has no default password; create the Secret store-credentials (docs/contract.md) and pass existingSecret" -}}
{{- end -}}
{{- if ne .Values.engine "woocommerce" -}}
{{- $errors = append $errors (printf "engine %q is not available yet (only woocommerce is implemented)" .Values.engine) -}}
{{- end -}}
{{- if ne .Release.Namespace .Values.storeName -}}
{{- $errors = append $errors (printf "namespace %q must equal storeName %q (one store per namespace)" .Release.Namespace .Values.storeName) -}}
{{- end -}}
{{- if and (gt (int .Values.wordpress.replicas) 1) (ne .Values.persistence.wpContent.accessMode "ReadWriteMany") -}}
{{- $errors = append $errors "wordpress.replicas > 1 needs persistence.wpContent.accessMode ReadWriteMany (all replicas share wp-content)" -}}
{{- end -}}
{{- if and .Values.ingress.tls.enabled (not .Values.ingress.enabled) -}}
{{- $errors = append $errors "ingress.tls.enabled needs ingress.enabled" -}}
{{- end -}}
{{- $maxCpu := include "store.cpuMilli" .Values.limitRange.max.cpu | int -}}
{{- $maxMem := include "store.memMi" .Values.limitRange.max.memory | int -}}
{{- range $component, $res := dict "wordpress" .Values.wordpress.resources "mysql" .Values.mysql.resources "setup" .Values.setup.resources "cron" .Values.cron.resources "tests" .Values.tests.resources "ingress.tls.acmeSolver" .Values.ingress.tls.acmeSolverResources -}}
{{- range $kind := list "requests" "limits" -}}
{{- $r := index $res $kind -}}
{{- if gt (include "store.cpuMilli" $r.cpu | int) $maxCpu -}}
{{- $errors = append $errors (printf "%s.resources.%s.cpu %v exceeds limitRange.max.cpu" $component $kind $r.cpu) -}}
{{- end -}}
{{- if gt (include "store.memMi" $r.memory | int) $maxMem -}}
{{- $errors = append $errors (printf "%s.resources.%s.memory %v exceeds limitRange.max.memory" $component $kind $r.memory) -}}
{{- end -}}
{{- end -}}
{{- if gt (include "store.cpuMilli" $res.requests.cpu | int) (include "store.cpuMilli" $res.limits.cpu | int) -}}
{{- $errors = append $errors (printf "%s.resources: cpu request above its limit" $component) -}}
{{- end -}}
{{- if gt (include "store.memMi" $res.requests.memory | int) (include "store.memMi" $res.limits.memory | int) -}}
{{- $errors = append $errors (printf "%s.resources: memory request above its limit" $component) -}}
{{- end -}}
{{- end -}}
{{- $maxStorage := include "store.memMi" .Values.limitRange.maxStorage | int -}}
{{- range $volume, $size := dict "mysql" .Values.persistence.mysql.size "wpContent" .Values.persistence.wpContent.size -}}
{{- if gt (include "store.memMi" $size | int) $maxStorage -}}
{{- $errors = append $errors (printf "persistence.%s.size %v exceeds limitRange.maxStorage" $volume $size) -}}
{{- end -}}
{{- end -}}
{{- if eq .Values.engine "woocommerce" -}}
{{- $sizing := include "store.woocommerce.sizing" . | fromYaml -}}
{{- if lt (int $sizing.wordpress.workers) 2 -}}
{{- $errors = append $errors (printf "wordpress.resources.limits.memory %v fits %d Apache workers of php.memoryLimit %v (+24Mi each) next to %dMi opcache and base; at least 2 are needed" .Values.wordpress.resources.limits.memory (int $sizing.wordpress.workers) .Values.wordpress.php.memoryLimit (int $sizing.wordpress.reservedMi)) -}}
{{- end -}}
{{- if gt (int $sizing.mysql.worstCaseMi) (int $sizing.mysql.budgetMi) -}}
{{- $errors = append $errors (printf "mysql.resources.limits.memory %v is too small: buffer pool, temp tables and %d connections (one per WordPress worker) need %dMi, more than 90%% of the limit" .Values.mysql.resources.limits.memory (int $sizing.mysql.maxConnections) (int $sizing.mysql.worstCaseMi)) -}}
{{- end -}}
{{- range $job := list "setup" "cron" -}}
{{- if lt (int (index $sizing.cli (printf "%sMemoryMi" $job))) 160 -}}
{{- $errors = append $errors (printf "%s.resources.limits.memory must be at least 256Mi (wp-cli loads WordPress and WooCommerce)" $job) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if and .Values.wordpress.allowedHosts (not .Values.networkPolicy.internetEgress.wordpress) -}}
{{- $errors = append $errors "wordpress.allowedHosts needs networkPolicy.internetEgress.wordpress: the egress policy would drop those calls" -}}
{{- end -}}
{{- if and .Values.mail.enabled (not .Values.mail.host) -}}
{{- $errors = append $errors "mail.enabled needs mail.host (the SMTP relay)" -}}
{{- end -}}
{{- if hasKey .Values.ingress.annotations "nginx.ingress.kubernetes.io/proxy-body-size" -}}
{{- $errors = append $errors "ingress.annotations must not set nginx.ingress.kubernetes.io/proxy-body-size: it follows from wordpress.php.uploadMaxSize" -}}
{{- end -}}
{{- if and .Values.ingress.tls.acmeHttp01 (not (and .Values.ingress.tls.enabled .Values.ingress.tls.clusterIssuer)) -}}
{{- $errors = append $errors "ingress.tls.acmeHttp01 needs ingress.tls.enabled and ingress.tls.clusterIssuer" -}}
{{- end -}}
{{- if $errors -}}
{{- fail (printf "\n\nstore-chart: invalid values:\n  - %s\n" (join "\n  - " $errors)) -}}
{{- end -}}
{{- end -}}
