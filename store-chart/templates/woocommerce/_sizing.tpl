{{/*
Sizing of the woocommerce engine: every memory number Apache, PHP and MySQL run with
follows from the containers' memory limits here, and only here (the Apache, PHP and
MySQL config maps read the result). The rule is the worst case, not the average: when
every Apache worker runs a request that uses its whole PHP memory_limit, and MySQL has
every allowed connection open, the container still stays under its limit, so a burst
of traffic queues at Apache instead of OOM-killing the container.

WordPress (Apache prefork + mod_php: one PHP request per worker process)
  perWorker  = php.memoryLimit + 24Mi       a prefork child with PHP loaded, before its
                                            request allocates (measured ~15-20Mi RSS)
  reserved   = php.opcacheMemory + 64Mi     opcache is one shared segment; 64Mi for the
                                            Apache parent, shared libraries, slack
  workers    = floor((limit - reserved) / perWorker)   -> MaxRequestWorkers, ServerLimit
  The PHP limit is php_admin_value (a plugin's ini_set cannot raise it) and
  WP_MEMORY_LIMIT = WP_MAX_MEMORY_LIMIT = it, so admin pages cannot raise it either.

MySQL (one mysqld)
  bufferPool  = half the limit, down to a multiple of 128Mi (the chunk size), >= 128Mi
  tempTables  = limit / 16                  temptable_max_ram (global; beyond it temp
                                            tables go to disk) and tmp_table_size
  fixed       = 16Mi log buffer + 8Mi key buffer + 128Mi server (code, dictionary,
                table cache of 1000, thread cache) + 256Mi performance_schema if on
  perConn     = 4Mi                         sort/join/read buffers (~0.9Mi), 1Mi thread
                                            stack, ~2Mi network and packet buffers
  maxConnections = workers x WordPress pods (replicas + rolling surge) + 10
                                            (set-up, scheduled job, probes, an admin)
  must hold:  bufferPool + tempTables + fixed + maxConnections x perConn <= 90% limit

wp-cli pods (set-up Job, scheduled job): PHP memory_limit = container limit - 96Mi
  (the PHP binary, the wp-cli phar and its autoloader).
*/}}
{{- define "store.woocommerce.sizing" -}}
{{- $wpLimit := include "store.memMi" .Values.wordpress.resources.limits.memory | int -}}
{{- $php := include "store.memMi" .Values.wordpress.php.memoryLimit | int -}}
{{- $opcache := include "store.memMi" .Values.wordpress.php.opcacheMemory | int -}}
{{- $perWorker := add $php 24 -}}
{{- $reserved := add $opcache 64 -}}
{{- $workers := max 0 (div (sub $wpLimit $reserved) $perWorker) -}}
{{- $upload := include "store.memMi" .Values.wordpress.php.uploadMaxSize | int -}}
{{- $wpPods := int (include "store.wordpressPods" .) -}}
{{- $myLimit := include "store.memMi" .Values.mysql.resources.limits.memory | int -}}
{{- $bufferPool := max 128 (mul (div (div $myLimit 2) 128) 128) -}}
{{- $tempTables := div $myLimit 16 -}}
{{- $fixed := add 16 8 128 (ternary 256 0 .Values.mysql.performanceSchema) -}}
{{- $maxConnections := add (mul $workers $wpPods) 10 -}}
{{- $mysqlWorst := add $bufferPool $tempTables $fixed (mul $maxConnections 4) -}}
wordpress:
  limitMi: {{ $wpLimit }}
  phpMemoryMi: {{ $php }}
  opcacheMi: {{ $opcache }}
  perWorkerMi: {{ $perWorker }}
  reservedMi: {{ $reserved }}
  workers: {{ $workers }}
  worstCaseMi: {{ add $reserved (mul $workers $perWorker) }}
  uploadMi: {{ $upload }}
  postMaxMi: {{ add $upload 1 }}
mysql:
  limitMi: {{ $myLimit }}
  bufferPoolMi: {{ $bufferPool }}
  tempTablesMi: {{ $tempTables }}
  logBufferMi: 16
  keyBufferMi: 8
  fixedMi: {{ $fixed }}
  perConnectionMi: 4
  maxConnections: {{ $maxConnections }}
  worstCaseMi: {{ $mysqlWorst }}
  budgetMi: {{ div (mul $myLimit 9) 10 }}
cli:
  setupMemoryMi: {{ sub (include "store.memMi" .Values.setup.resources.limits.memory | int) 96 }}
  cronMemoryMi: {{ sub (include "store.memMi" .Values.cron.resources.limits.memory | int) 96 }}
{{- end -}}
