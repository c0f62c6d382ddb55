#!/bin/sh
# Set-up of a WooCommerce store, run by the set-up hook Job (wp-cli image) after every
# install and upgrade. Which of the two it does is decided by a marker in the
# database (option storeplatform_setup_completed), not by the hook type, because a
# failed first install is retried as an upgrade:
#
#   first boot (no marker yet): install WordPress, WooCommerce and Storefront at their
#     pins, configure the shop (coming soon off, guest checkout, Cash on Delivery,
#     country, currency, permalinks, pages), create the starter product, check that
#     the shop can sell, then set the marker. Every step looks before it acts, so a
#     retried Job converges.
#   upgrade (marker set): migrate only. `wp core update-db` (a new WordPress image),
#     WooCommerce moved up to its pin with WordPress's updater (never down, never a
#     forced reinstall) and `wp wc update` (its database migrations), Storefront moved
#     up if it is still installed. The owner's settings, theme choice and products are
#     left alone; only the checks the platform owns must pass.
#
# Both end by ensuring the platform's hidden checkout-probe product, which helm test
# buys, so that check never depends on the owner's catalogue.
#
# Environment (templates/woocommerce/setup-job.yaml): STORE_URL SITE_TITLE WC_VERSION
# STOREFRONT_VERSION STORE_COUNTRY STORE_CURRENCY PRODUCT_NAME PRODUCT_SKU PRODUCT_PRICE
# PROBE_SKU PROBE_PRICE CHART_VERSION SCRIPTS_DIR SECRETS_DIR, and the WORDPRESS_*
# settings. Secrets are read from files and never printed.
set -eu

log() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] FAILED: %s\n' "$*" >&2; exit 1; }
secret() { cat "$SECRETS_DIR/$1"; }
wp() { command wp --no-color "$@"; }
php_file() { printf '%s/%s' "$SCRIPTS_DIR" "$1"; }

# version_lt A B: true when dotted version A is older than B (10.9.1 < 10.10.0).
version_lt() {
  awk -v a="$1" -v b="$2" 'BEGIN {
    n = split(a, x, "."); m = split(b, y, "."); if (m > n) n = m
    for (i = 1; i <= n; i++) { if (x[i] + 0 < y[i] + 0) exit 0; if (x[i] + 0 > y[i] + 0) exit 1 }
    exit 1 }'
}

wait_for_database() {
  attempts=0
  until wp eval-file "$(php_file db-reachable.php)" --skip-wordpress; do
    attempts=$((attempts + 1))
    [ "$attempts" -lt 60 ] || die "database not reachable after 5 minutes"
    sleep 5
  done
  log "database reachable"
}

# The marker's value: the chart version that completed the first set-up.
setup_completed() { wp option get storeplatform_setup_completed >/dev/null 2>&1; }

# A store made by chart 0.1.0 has no marker, but its set-up ran to the end: it set the
# admin password early and created the starter product last. Adopt it as set up.
adopt_legacy_store() {
  if wp core is-installed 2>/dev/null \
      && [ "$(wp option get storeplatform_admin_password_set 2>/dev/null)" = "yes" ] \
      && wp plugin is-active woocommerce 2>/dev/null \
      && [ -n "$(product_id "$PRODUCT_SKU")" ]; then
    log "store set up by an earlier chart: adopting it (its settings are kept)"
    wp option add storeplatform_setup_completed "legacy" --autoload=no >/dev/null
  fi
}

# product_id SKU: the id of the product with that SKU (any status), or nothing.
product_id() {
  wp wc product list --user="$(secret admin-user)" --sku="$1" --status=any \
    --field=id 2>/dev/null | head -n 1
}

# ensure_plugin_version SLUG PIN: installed and at least PIN. An older release is moved
# up with WordPress's updater; a newer one (installed by the owner) is kept.
ensure_plugin_version() {
  if ! wp plugin is-installed "$1"; then
    log "installing plugin $1 $2"
    wp plugin install "$1" --version="$2"
    return
  fi
  installed="$(wp plugin get "$1" --field=version)"
  if version_lt "$installed" "$2"; then
    log "updating plugin $1 $installed -> $2"
    wp plugin update "$1" --version="$2"
  elif [ "$installed" != "$2" ]; then
    log "plugin $1 $installed is newer than the pin $2: kept"
  fi
}

install_wordpress() {
  if wp core is-installed 2>/dev/null; then
    log "WordPress already installed"
  else
    log "installing WordPress at $STORE_URL"
    # wp-cli generates a throwaway password (its output is discarded); the real one
    # is set from the Secret file below, so it never appears on a command line.
    wp core install --url="$STORE_URL" --title="$SITE_TITLE" \
      --admin_user="$(secret admin-user)" --admin_email="$(secret admin-email)" \
      --skip-email >/dev/null
    wp core is-installed || die "wp core install did not complete"
  fi
  wp eval-file "$(php_file set-admin-password.php)"
}

install_shop_software() {
  ensure_plugin_version woocommerce "$WC_VERSION"
  wp plugin is-active woocommerce || wp plugin activate woocommerce
  if ! wp theme is-installed storefront; then
    log "installing theme storefront $STOREFRONT_VERSION"
    wp theme install storefront --version="$STOREFRONT_VERSION"
  fi
  wp theme is-active storefront || wp theme activate storefront
}

configure_shop() {
  log "configuring the shop"
  wp option update woocommerce_coming_soon no
  wp option update woocommerce_store_pages_only no
  wp option update woocommerce_enable_guest_checkout yes
  wp option update woocommerce_default_country "$STORE_COUNTRY"
  wp option update woocommerce_currency "$STORE_CURRENCY"
  wp option update woocommerce_onboarding_profile '{"skipped":true}' --format=json
  wp option update woocommerce_cod_settings --format=json \
    '{"enabled":"yes","title":"Cash on delivery","description":"Pay with cash upon delivery.","instructions":"Pay with cash upon delivery.","enable_for_methods":[],"enable_for_virtual":"yes"}'
  wp rewrite structure '/%postname%/'
  wp rewrite flush
  # Shop, cart, checkout and my-account pages (WooCommerce's own tool; existing pages
  # are kept).
  wp wc tool run install_pages --user="$(secret admin-user)" >/dev/null
}

create_starter_product() {
  existing="$(product_id "$PRODUCT_SKU")"
  if [ -n "$existing" ]; then
    log "product $PRODUCT_SKU exists (id $existing)"
    return
  fi
  log "creating product $PRODUCT_SKU"
  # Virtual: sellable before the owner configures shipping zones.
  wp wc product create --user="$(secret admin-user)" --name="$PRODUCT_NAME" \
    --type=simple --status=publish --sku="$PRODUCT_SKU" \
    --regular_price="$PRODUCT_PRICE" --virtual=true --porcelain >/dev/null
}

# The platform's product: published, virtual, hidden from catalogue and search, at its
# price. Restored on every run, like any object the platform owns.
ensure_checkout_probe() {
  set -- --user="$(secret admin-user)" --name="Checkout test (store platform)" \
    --status=publish --catalog_visibility=hidden --virtual=true \
    --regular_price="$PROBE_PRICE"
  existing="$(product_id "$PROBE_SKU")"
  if [ -n "$existing" ]; then
    wp wc product update "$existing" "$@" >/dev/null
  else
    log "creating the checkout probe product $PROBE_SKU"
    wp wc product create --type=simple --sku="$PROBE_SKU" "$@" --porcelain >/dev/null
  fi
}

# verify KIND: the store can sell (first-boot: also everything the set-up configured).
verify() {
  result="$(STOREPLATFORM_CHECKS="$1" wp eval-file "$(php_file verify-store.php)")"
  [ "$result" = "ok" ] || die "store not ready to sell ($result)"
  log "store ready: $STORE_URL"
}

first_boot() {
  log "first set-up"
  install_wordpress
  install_shop_software
  configure_shop
  create_starter_product
  ensure_checkout_probe
  verify first-boot
  wp option add storeplatform_setup_completed "$CHART_VERSION" --autoload=no >/dev/null
  log "first set-up completed (chart $CHART_VERSION)"
}

upgrade() {
  log "store already set up: migrations only, the owner's settings are kept"
  # The scheduled job skips its runs while this is set (plugin files may be moving).
  wp option update storeplatform_upgrading "$(date +%s)" --autoload=no >/dev/null
  wp core update-db
  ensure_plugin_version woocommerce "$WC_VERSION"
  wp plugin is-active woocommerce || wp plugin activate woocommerce
  wp wc update
  if wp theme is-installed storefront; then
    installed="$(wp theme get storefront --field=version)"
    if version_lt "$installed" "$STOREFRONT_VERSION"; then
      log "updating theme storefront $installed -> $STOREFRONT_VERSION"
      wp theme update storefront --version="$STOREFRONT_VERSION"
    fi
  fi
  ensure_checkout_probe
  verify upgrade
  wp option delete storeplatform_upgrading >/dev/null
}

main() {
  wait_for_database
  setup_completed || adopt_legacy_store
  if setup_completed; then upgrade; else first_boot; fi
}

main "$@"
