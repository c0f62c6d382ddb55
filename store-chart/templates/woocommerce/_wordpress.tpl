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

{{/* store.woocommerce.wordpressEnv -- wp-config.php settings, identical for the
WordPress pods and the set-up Job. The image's wp-config-docker.php reads every
WORDPRESS_* variable, or the file named by WORDPRESS_*_FILE: secrets stay files. */}}
{{- define "store.woocommerce.wordpressEnv" -}}
- name: WORDPRESS_DB_HOST
  value: {{ printf "%s:3306" (include "store.componentName" (list . "mysql")) | quote }}
- name: WORDPRESS_DB_NAME
  value: {{ .Values.mysql.database | quote }}
- name: WORDPRESS_DB_USER
  value: {{ .Values.mysql.user | quote }}
- name: WORDPRESS_DB_PASSWORD_FILE
  value: /run/secrets/store/mysql-password
{{- range (include "store.woocommerce.saltKeys" . | fromYamlArray) }}
- name: {{ printf "WORDPRESS_%s_FILE" (. | upper | replace "-" "_") }}
  value: {{ printf "/run/secrets/store/wordpress-%s" . }}
{{- end }}
- name: WORDPRESS_CONFIG_EXTRA
  value: |
    define('WP_HOME', '{{ include "store.url" . }}');
    define('WP_SITEURL', '{{ include "store.url" . }}');
    define('DISALLOW_FILE_EDIT', true);
    define('WP_AUTO_UPDATE_CORE', false);
    define('FS_METHOD', 'direct');
{{- end -}}
