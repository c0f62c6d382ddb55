#!/bin/sh
# The store's scheduled job (templates/woocommerce/cron-cronjob.yaml), run with
# wp-cli every few minutes: WP-Cron's page-visit trigger is off (DISABLE_WP_CRON)
# because its loopback request cannot reach Apache from inside the store's pods.
#   1. delete helm test's checkout orders (php/delete-test-orders.php);
#   2. run every due WP-Cron event: WooCommerce's hooks, and Action Scheduler's queue
#      runner (stock holds, unpaid-order clean-up, webhooks, e-mails).
# Nothing runs before the first set-up has completed, or while an upgrade's set-up is
# moving plugin files (its marker is at most 30 minutes old).
#
# Environment (the CronJob): SCRIPTS_DIR, BILLING_EMAIL and ORDER_NOTE (helm test's
# order marks), and the WORDPRESS_* settings.
set -eu

log() { printf '[cron] %s\n' "$*"; }
wp() { command wp --no-color "$@"; }

if ! wp option get storeplatform_setup_completed >/dev/null 2>&1; then
  log "the store's first set-up has not completed yet: nothing to run"
  exit 0
fi
upgrading="$(wp option get storeplatform_upgrading 2>/dev/null || true)"
if [ -n "$upgrading" ] && [ $(($(date +%s) - upgrading)) -lt 1800 ]; then
  log "an upgrade's set-up is running: skipping this run"
  exit 0
fi

wp eval-file "$SCRIPTS_DIR/delete-test-orders.php"
wp cron event run --due-now
log "due events run"
