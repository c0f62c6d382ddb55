#!/bin/sh
# First-boot set-up of a WooCommerce store, run by the set-up Job (wp-cli image)
# after every install and upgrade. Idempotent: each step looks before it acts, so a
# rerun (Job retry, `helm upgrade`) converges to the same store and changes nothing
# that is already right. Secrets are read from files and never printed.
#
# Environment (set by templates/woocommerce/setup-job.yaml):
#   STORE_URL SITE_TITLE WC_VERSION STOREFRONT_VERSION STORE_COUNTRY STORE_CURRENCY
#   PRODUCT_NAME PRODUCT_SKU PRODUCT_PRICE SECRETS_DIR, and the WORDPRESS_* settings.
# PHP snippets are single-quoted on purpose: their $variables are PHP's, not the shell's.
# shellcheck disable=SC2016
set -eu

log() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] FAILED: %s\n' "$*" >&2; exit 1; }
secret() { cat "$SECRETS_DIR/$1"; }

# wp-cli with enough memory for unpacking WooCommerce (the image's PHP default is 128M).
wp() { php -d memory_limit=512M /usr/local/bin/wp --no-color "$@"; }

# True once MySQL accepts the WordPress account (connects the way WordPress does).
db_reachable() {
  php -r '
    mysqli_report(MYSQLI_REPORT_OFF);
    $password = rtrim(file_get_contents(getenv("WORDPRESS_DB_PASSWORD_FILE")), "\r\n");
    $hostPort = explode(":", getenv("WORDPRESS_DB_HOST"), 2);
    $db = @mysqli_connect($hostPort[0], getenv("WORDPRESS_DB_USER"), $password,
                          getenv("WORDPRESS_DB_NAME"), (int) ($hostPort[1] ?? 3306));
    exit($db ? 0 : 1);
  '
}

wait_for_database() {
  attempts=0
  until db_reachable; do
    attempts=$((attempts + 1))
    [ "$attempts" -lt 60 ] || die "database not reachable after 5 minutes"
    sleep 5
  done
  log "database reachable"
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
  # Once only (marker option): later password changes by the owner are kept.
  wp eval '
    if (get_option("storeplatform_admin_password_set") === "yes") { return; }
    $dir = getenv("SECRETS_DIR");
    $user = get_user_by("login", trim(file_get_contents("$dir/admin-user")));
    if (!$user) { fwrite(STDERR, "admin user missing\n"); exit(1); }
    wp_set_password(rtrim(file_get_contents("$dir/admin-password"), "\r\n"), $user->ID);
    update_option("storeplatform_admin_password_set", "yes", false);
    echo "[setup] admin password set from the Secret\n";
  '
}

# ensure_plugin SLUG VERSION: installed at exactly VERSION and active.
ensure_plugin() {
  if ! wp plugin is-installed "$1" \
      || [ "$(wp plugin get "$1" --field=version)" != "$2" ]; then
    log "installing plugin $1 $2"
    wp plugin install "$1" --version="$2" --force
  fi
  wp plugin is-active "$1" || wp plugin activate "$1"
}

# ensure_theme SLUG VERSION: installed at exactly VERSION and the active theme.
ensure_theme() {
  if ! wp theme is-installed "$1" \
      || [ "$(wp theme get "$1" --field=version)" != "$2" ]; then
    log "installing theme $1 $2"
    wp theme install "$1" --version="$2" --force
  fi
  wp theme is-active "$1" || wp theme activate "$1"
}

configure_store() {
  log "configuring WooCommerce"
  wp wc update >/dev/null 2>&1 || true  # pending database migrations after an upgrade
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
  # Shop, cart, checkout and my-account pages; existing pages are kept.
  wp eval 'WC_Install::create_pages();'
}

ensure_product() {
  existing="$(wp eval 'echo wc_get_product_id_by_sku(getenv("PRODUCT_SKU"));')"
  if [ -n "$existing" ] && [ "$existing" != "0" ]; then
    log "product $PRODUCT_SKU exists (id $existing)"
    return
  fi
  log "creating product $PRODUCT_SKU"
  # Virtual: sellable before the owner configures shipping zones.
  wp wc product create --user="$(secret admin-user)" --name="$PRODUCT_NAME" \
    --type=simple --status=publish --sku="$PRODUCT_SKU" \
    --regular_price="$PRODUCT_PRICE" --virtual=true --porcelain >/dev/null
}

# The store must be able to sell now: check the state, not the commands' exit codes.
verify_store() {
  result="$(wp eval '
    $checks = [
      "coming soon off" => get_option("woocommerce_coming_soon") === "no",
      "guest checkout on" => get_option("woocommerce_enable_guest_checkout") === "yes",
      "cash on delivery on" => (get_option("woocommerce_cod_settings")["enabled"] ?? "") === "yes",
      "pretty permalinks" => (string) get_option("permalink_structure") !== "",
      "shop page" => wc_get_page_id("shop") > 0,
      "cart page" => wc_get_page_id("cart") > 0,
      "checkout page" => wc_get_page_id("checkout") > 0,
      "storefront theme" => get_stylesheet() === "storefront",
    ];
    $product = wc_get_product(wc_get_product_id_by_sku(getenv("PRODUCT_SKU")));
    $checks["published product with a price"] = $product && $product->get_status() === "publish"
      && $product->is_purchasable() && $product->get_price() !== "";
    $failed = array_keys(array_filter($checks, fn ($ok) => !$ok));
    echo $failed ? "missing: " . implode(", ", $failed) : "ok";
  ')"
  [ "$result" = "ok" ] || die "store not ready to sell ($result)"
  log "store ready: $STORE_URL"
}

main() {
  wait_for_database
  install_wordpress
  ensure_plugin woocommerce "$WC_VERSION"
  ensure_theme storefront "$STOREFRONT_VERSION"
  configure_store
  ensure_product
  verify_store
}

main "$@"
