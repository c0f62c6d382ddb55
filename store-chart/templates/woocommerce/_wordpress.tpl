{{/*
Named templates of the woocommerce engine (WordPress + WooCommerce on MySQL).
*/}}

{{/* store.woocommerce.wwwData -- uid/gid of www-data in the official WordPress image;
the wp-cli containers use it too so both write wp-content as the same owner. */}}
{{- define "store.woocommerce.wwwData" -}}33{{- end -}}

{{/* store.woocommerce.mysqlUid -- uid/gid of the mysql user in the official MySQL image. */}}
{{- define "store.woocommerce.mysqlUid" -}}999{{- end -}}

{{/* store.woocommerce.saltKeys -- Secret keys holding the WordPress keys and salts. */}}
{{- define "store.woocommerce.saltKeys" -}}
{{- toYaml (list "auth-key" "secure-auth-key" "logged-in-key" "nonce-key" "auth-salt" "secure-auth-salt" "logged-in-salt" "nonce-salt") -}}
{{- end -}}

{{/* store.woocommerce.wordpressSecretKeys -- what WordPress and wp-cli read from the Secret. */}}
{{- define "store.woocommerce.wordpressSecretKeys" -}}
{{- $keys := list "mysql-password" -}}
{{- range (include "store.woocommerce.saltKeys" . | fromYamlArray) -}}
{{- $keys = append $keys (printf "wordpress-%s" .) -}}
{{- end -}}
{{- toYaml $keys -}}
{{- end -}}

{{/* store.woocommerce.blockExternalHttp -- "true" when WordPress's outbound HTTP is
refused at once (WP_HTTP_BLOCK_EXTERNAL): without internet egress every call would
otherwise hang until the egress policy's drop times out (3-6 s per call in wp-admin).
With egress and a host list, only those hosts are allowed (WP_ACCESSIBLE_HOSTS). */}}
{{- define "store.woocommerce.blockExternalHttp" -}}
{{- if or (not .Values.networkPolicy.internetEgress.wordpress) .Values.wordpress.allowedHosts -}}true{{- end -}}
{{- end -}}

{{/* store.woocommerce.wordpressEnv -- wp-config.php settings of one component
("wordpress", "setup" or "cron"); the same database, keys and site URL for all. The
image's wp-config-docker.php reads every WORDPRESS_* variable, or the file named by
WORDPRESS_*_FILE: secrets stay files. Only the set-up may reach the internet over
HTTP (it downloads the pinned plugin and theme); the site and its scheduled job run
under wordpress.allowedHosts.
Usage: include "store.woocommerce.wordpressEnv" (list $ "wordpress") */}}
{{- define "store.woocommerce.wordpressEnv" -}}
{{- $root := index . 0 -}}
{{- $component := index . 1 -}}
{{- $sizing := include "store.woocommerce.sizing" $root | fromYaml -}}
- name: WORDPRESS_DB_HOST
  value: {{ printf "%s:3306" (include "store.componentName" (list $root "mysql")) | quote }}
- name: WORDPRESS_DB_NAME
  value: {{ $root.Values.mysql.database | quote }}
- name: WORDPRESS_DB_USER
  value: {{ $root.Values.mysql.user | quote }}
- name: WORDPRESS_DB_PASSWORD_FILE
  value: /run/secrets/store/mysql-password
{{- range (include "store.woocommerce.saltKeys" $root | fromYamlArray) }}
- name: {{ printf "WORDPRESS_%s_FILE" (. | upper | replace "-" "_") }}
  value: {{ printf "/run/secrets/store/wordpress-%s" . }}
{{- end }}
- name: WORDPRESS_CONFIG_EXTRA
  value: |
    define('WP_HOME', '{{ include "store.url" $root }}');
    define('WP_SITEURL', '{{ include "store.url" $root }}');
    define('DISALLOW_FILE_EDIT', true);
    define('WP_AUTO_UPDATE_CORE', false);
    define('AUTOMATIC_UPDATER_DISABLED', true);
    define('FS_METHOD', 'direct');
    define('DISABLE_WP_CRON', true);
    define('WP_MEMORY_LIMIT', '{{ $sizing.wordpress.phpMemoryMi }}M');
    define('WP_MAX_MEMORY_LIMIT', '{{ $sizing.wordpress.phpMemoryMi }}M');
    {{- if and (ne $component "setup") (include "store.woocommerce.blockExternalHttp" $root) }}
    define('WP_HTTP_BLOCK_EXTERNAL', true);
    {{- with $root.Values.wordpress.allowedHosts }}
    define('WP_ACCESSIBLE_HOSTS', '{{ join "," . }}');
    {{- end }}
    {{- end }}
{{- if ne $component "setup" }}
{{- include "store.woocommerce.mailEnv" $root }}
{{- end }}
{{- end -}}

{{/* store.woocommerce.mailEnv -- SMTP settings read by the storeplatform mu-plugin
(files/woocommerce/mu-plugins/storeplatform.php). The login is a mounted Secret. */}}
{{- define "store.woocommerce.mailEnv" }}
- {name: STOREPLATFORM_MAIL_ENABLED, value: {{ ternary "1" "0" .Values.mail.enabled | quote }}}
{{- if .Values.mail.enabled }}
- {name: STOREPLATFORM_SMTP_HOST, value: {{ .Values.mail.host | quote }}}
- {name: STOREPLATFORM_SMTP_PORT, value: {{ .Values.mail.port | quote }}}
- {name: STOREPLATFORM_SMTP_ENCRYPTION, value: {{ .Values.mail.encryption | quote }}}
- {name: STOREPLATFORM_MAIL_FROM, value: {{ .Values.mail.fromAddress | quote }}}
- {name: STOREPLATFORM_MAIL_FROM_NAME, value: {{ .Values.mail.fromName | quote }}}
{{- if .Values.mail.existingSecret }}
- {name: STOREPLATFORM_SMTP_SECRET_DIR, value: /run/secrets/smtp}
{{- end }}
{{- end }}
{{- end -}}

{{/* store.woocommerce.smtpMount / smtpVolume -- the relay login, when there is one. */}}
{{- define "store.woocommerce.smtpMount" -}}
{{- if and .Values.mail.enabled .Values.mail.existingSecret }}
- name: smtp
  mountPath: /run/secrets/smtp
  readOnly: true
{{- end }}
{{- end -}}
{{- define "store.woocommerce.smtpVolume" -}}
{{- if and .Values.mail.enabled .Values.mail.existingSecret }}
- name: smtp
  secret:
    secretName: {{ .Values.mail.existingSecret }}
    defaultMode: 0440
    items:
      - {key: smtp-username, path: smtp-username}
      - {key: smtp-password, path: smtp-password}
{{- end }}
{{- end -}}

{{/* store.woocommerce.wpContentMounts -- wp-content (the claim) and the platform's
read-only mu-plugin directory inside it, for every pod that runs WordPress code. */}}
{{- define "store.woocommerce.wpContentMounts" -}}
- name: wp-content
  mountPath: /var/www/html/wp-content
- name: mu-plugins
  mountPath: /var/www/html/wp-content/mu-plugins
  readOnly: true
{{- end -}}
{{- define "store.woocommerce.wpContentVolumes" -}}
- name: wp-content
  persistentVolumeClaim:
    claimName: {{ include "store.componentName" (list . "wp-content") }}
- name: mu-plugins
  configMap:
    name: {{ include "store.componentName" (list . "mu-plugins") }}
- name: php-config
  configMap:
    name: {{ include "store.componentName" (list . "php") }}
{{- end -}}

{{/* store.woocommerce.wpCliPod -- the pod template of a wp-cli run against the live
site: the set-up hook Job and the scheduled job. An init container copies the very
WordPress core the storefront runs from the WordPress image (no download) next to the
shared wp-content; wp-cli runs as www-data (uid 33) so what it writes belongs to the
same user as WordPress. Only the listed Secret keys are mounted.
Usage: include "store.woocommerce.wpCliPod" (dict "root" $ "component" "cron"
         "script" "cron.sh" "resources" .Values.cron.resources "secretKeys" (list ...)
         "env" (list (dict "name" ... "value" ...))) */}}
{{- define "store.woocommerce.wpCliPod" -}}
{{- $root := .root -}}
{{- $uid := include "store.woocommerce.wwwData" $root | int -}}
metadata:
  labels:
    {{- include "store.labels" (list $root .component) | nindent 4 }}
  annotations:
    checksum/scripts: {{ include (print $root.Template.BasePath "/woocommerce/setup-configmap.yaml") $root | sha256sum }}
    checksum/php: {{ include (print $root.Template.BasePath "/woocommerce/php-configmap.yaml") $root | sha256sum }}
spec:
  restartPolicy: Never
  serviceAccountName: {{ include "store.fullname" $root }}
  automountServiceAccountToken: false
  enableServiceLinks: false
  securityContext:
    {{- include "store.podSecurityContext" $uid | nindent 4 }}
  {{- if ne $root.Values.persistence.wpContent.accessMode "ReadWriteMany" }}
  # wp-content is ReadWriteOnce: run on the node that already has it attached.
  affinity:
    podAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        - topologyKey: kubernetes.io/hostname
          labelSelector:
            matchLabels:
              {{- include "store.selectorLabels" (list $root "wordpress") | nindent 14 }}
  {{- end }}
  initContainers:
    - name: wordpress-core
      image: {{ include "store.image" $root.Values.wordpress.image }}
      imagePullPolicy: {{ $root.Values.wordpress.image.pullPolicy }}
      command:
        - /bin/sh
        - -ec
        - |
          tar -C /usr/src/wordpress --exclude=./wp-content -cf - . \
            | tar -C /var/www/html -xf - --no-same-owner --no-overwrite-dir
          cp /usr/src/wordpress/wp-config-docker.php /var/www/html/wp-config.php
          mkdir -p /var/www/html/wp-content/plugins /var/www/html/wp-content/themes \
            /var/www/html/wp-content/uploads /var/www/html/wp-content/upgrade
      resources:
        {{- toYaml .resources | nindent 8 }}
      securityContext:
        {{- include "store.containerSecurityContext" $uid | nindent 8 }}
      volumeMounts:
        - name: html
          mountPath: /var/www/html
        - name: wp-content
          mountPath: /var/www/html/wp-content
  containers:
    - name: {{ .component }}
      image: {{ include "store.image" $root.Values.setup.image }}
      imagePullPolicy: {{ $root.Values.setup.image.pullPolicy }}
      command: ["/bin/sh", {{ printf "/scripts/%s" .script | quote }}]
      workingDir: /var/www/html
      env:
        {{- include "store.woocommerce.wordpressEnv" (list $root .component) | nindent 8 }}
        - {name: HOME, value: /tmp}
        - {name: WP_CLI_CACHE_DIR, value: /tmp/wp-cli-cache}
        - {name: SCRIPTS_DIR, value: /scripts}
        - {name: SECRETS_DIR, value: /run/secrets/store}
        {{- with .env }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      resources:
        {{- toYaml .resources | nindent 8 }}
      securityContext:
        {{- include "store.containerSecurityContext" $uid | nindent 8 }}
      volumeMounts:
        - name: html
          mountPath: /var/www/html
        {{- include "store.woocommerce.wpContentMounts" $root | nindent 8 }}
        - name: php-config
          mountPath: /usr/local/etc/php/conf.d/zz-storeplatform.ini
          subPath: {{ printf "%s.ini" .component }}
          readOnly: true
        - name: tmp
          mountPath: /tmp
        - name: scripts
          mountPath: /scripts
          readOnly: true
        - name: credentials
          mountPath: /run/secrets/store
          readOnly: true
        {{- if eq .component "cron" }}
        {{- include "store.woocommerce.smtpMount" $root | nindent 8 }}
        {{- end }}
  volumes:
    - name: html
      emptyDir:
        sizeLimit: 256Mi
    {{- include "store.woocommerce.wpContentVolumes" $root | nindent 4 }}
    - name: tmp
      emptyDir:
        sizeLimit: 512Mi
    - name: scripts
      configMap:
        name: {{ include "store.componentName" (list $root "setup") }}
        defaultMode: 0555
    {{- include "store.secretVolume" (list $root .secretKeys) | nindent 4 }}
    {{- if eq .component "cron" }}
    {{- include "store.woocommerce.smtpVolume" $root | nindent 4 }}
    {{- end }}
{{- end -}}

{{/* store.woocommerce.siteEgress -- egress rules of the pods that run the site's code
(WordPress, the scheduled job): MySQL; public https with internetEgress.wordpress; the
mail relay's port when mail is on. */}}
{{- define "store.woocommerce.siteEgress" -}}
- to:
    - podSelector:
        matchLabels:
          {{- include "store.selectorLabels" (list . "mysql") | nindent 10 }}
  ports:
    - {protocol: TCP, port: 3306}
{{- if .Values.networkPolicy.internetEgress.wordpress }}
- to:
    - ipBlock:
        cidr: {{ .Values.networkPolicy.internetEgress.cidr }}
        except:
          {{- toYaml .Values.networkPolicy.internetEgress.except | nindent 10 }}
  ports:
    - {protocol: TCP, port: 443}
{{- end }}
{{- if .Values.mail.enabled }}
- to:
    - ipBlock:
        cidr: {{ .Values.mail.egress.cidr }}
        except:
          {{- toYaml .Values.mail.egress.except | nindent 10 }}
  ports:
    - {protocol: TCP, port: {{ .Values.mail.port }}}
{{- end }}
{{- end -}}

{{/* store.woocommerce.testOrderEnv -- how helm test's orders are marked (billing
e-mail in the reserved .invalid domain, and a customer note), so that the scheduled
job deletes exactly those and never a customer's order. */}}
{{- define "store.woocommerce.testOrderEnv" -}}
- {name: BILLING_EMAIL, value: checkout-test@storeplatform.invalid}
- {name: ORDER_NOTE, value: storeplatform-checkout-test}
{{- end -}}
