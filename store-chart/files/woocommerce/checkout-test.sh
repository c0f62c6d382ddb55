#!/bin/sh
# `helm test`: buy something. Through the storefront Service, as a guest, with the
# WooCommerce Store API: find the platform's hidden checkout-probe product by SKU (the
# owner's catalogue may hold anything, or nothing), add it to a cart, check out with
# Cash on Delivery, then read the order back. Passing means the store can take an
# order. If the owner has turned Cash on Delivery off (their choice; the set-up turns it
# on only at first boot), the cart is proven and no order is placed.
#
# Environment: STOREFRONT (http://<service>), STORE_HOST (the public host name,
# sent as Host so WordPress answers as the real site), PRODUCT_SKU, BILLING_EMAIL,
# ORDER_NOTE (the order's customer note: helm test's marker, by which the scheduled
# job deletes test orders). Optional, for running it from outside the cluster
# (hack/e2e-real-cluster.sh): CURL_RESOLVE (host:port:address, as curl --resolve),
# CURL_INSECURE=1 (accept a certificate from a staging CA) and ORDER_ID_FILE (receives
# the order id).
# Needs curl, and php or python3 for reading JSON.
# PHP snippets are single-quoted on purpose: their $variables are PHP's, not the shell's.
# shellcheck disable=SC2016
set -eu

api="$STOREFRONT/wp-json/wc/store/v1"
work="$(mktemp -d)"

log() { printf '[checkout-test] %s\n' "$*"; }
die() { printf '[checkout-test] FAILED: %s\n' "$*" >&2; exit 1; }

# request METHOD PATH [curl args...]: body to $work/body, headers to $work/headers;
# prints the HTTP status.
request() {
  method="$1" path="$2"; shift 2
  if [ -n "${CURL_RESOLVE:-}" ]; then set -- --resolve "$CURL_RESOLVE" "$@"; fi
  if [ "${CURL_INSECURE:-0}" = 1 ]; then set -- --insecure "$@"; fi
  curl --silent --show-error --max-time 60 --retry 3 --retry-connrefused \
    -X "$method" -H "Host: $STORE_HOST" -H "Accept: application/json" \
    -D "$work/headers" -o "$work/body" -w '%{http_code}' "$@" "$api$path"
}

# header NAME: value of a response header of the last request.
header() {
  awk -v name="$1" '
    tolower($0) ~ "^" tolower(name) ":" { sub(/^[^:]*:[ \t]*/, ""); sub(/\r$/, ""); print; exit }' \
    "$work/headers"
}

# field PATH: a value from the last JSON body ("0.id", "payment_result.payment_status").
field() {
  if command -v php >/dev/null; then
    php -r '
      $value = json_decode(file_get_contents($argv[1]), true);
      foreach (explode(".", $argv[2]) as $key) {
        if (!is_array($value) || !array_key_exists($key, $value)) { exit(1); }
        $value = $value[$key];
      }
      echo is_scalar($value) ? $value : json_encode($value);
    ' "$work/body" "$1"
  else
    python3 -c '
import json, sys
value = json.load(open(sys.argv[1]))
for key in sys.argv[2].split("."):
    try:
        value = value[int(key)] if isinstance(value, list) else value[key]
    except (KeyError, IndexError, ValueError, TypeError):
        sys.exit(1)
print(value if not isinstance(value, (dict, list)) else json.dumps(value), end="")
' "$work/body" "$1"
  fi
}

expect_status() {
  [ "$1" = "$2" ] || die "$3: HTTP $1, expected $2: $(head -c 400 "$work/body")"
}

status="$(request GET /products -G --data-urlencode "sku=$PRODUCT_SKU" \
  --data-urlencode catalog_visibility=any --data-urlencode per_page=1)"
expect_status "$status" 200 "find product $PRODUCT_SKU"
product_id="$(field 0.id)" || die "no published product with SKU $PRODUCT_SKU"
log "product $product_id: $(field 0.name)"

status="$(request GET /cart)"
expect_status "$status" 200 "open cart"
cart_token="$(header Cart-Token)"
nonce="$(header Nonce)"
[ -n "$cart_token" ] || die "no Cart-Token header from /cart"

status="$(request POST /cart/add-item -H "Cart-Token: $cart_token" -H "Nonce: $nonce" \
  -H 'Content-Type: application/json' --data "{\"id\": $product_id, \"quantity\": 1}")"
expect_status "$status" 201 "add to cart"
log "cart holds $(field items_count) item(s), total $(field totals.total_price) $(field totals.currency_code)"
case ",$(field payment_methods | tr -d '[]" ')," in
  *,cod,*) ;;
  *) log "cash on delivery is off (the owner's choice): cart works, no test order placed"
     exit 0 ;;
esac

address="{\"first_name\": \"Helm\", \"last_name\": \"Test\", \"address_1\": \"1 Test Street\",
  \"city\": \"San Francisco\", \"state\": \"CA\", \"postcode\": \"94103\", \"country\": \"US\",
  \"email\": \"$BILLING_EMAIL\", \"phone\": \"5550100\"}"
status="$(request POST /checkout -H "Cart-Token: $cart_token" -H "Nonce: $nonce" \
  -H 'Content-Type: application/json' \
  --data "{\"billing_address\": $address, \"shipping_address\": $address, \"payment_method\": \"cod\",
    \"customer_note\": \"${ORDER_NOTE:-}\"}")"
expect_status "$status" 200 "checkout"
order_id="$(field order_id)" || die "checkout answered without an order_id"
order_key="$(field order_key)"
log "checkout: order $order_id, status $(field status), payment $(field payment_result.payment_status)"
[ "$(field payment_result.payment_status)" = "success" ] || die "payment did not succeed"

status="$(request GET "/order/$order_id" -G --data-urlencode "key=$order_key" \
  --data-urlencode "billing_email=$BILLING_EMAIL")"
expect_status "$status" 200 "read order back"
[ "$(field id)" = "$order_id" ] || die "order read back has another id"
order_status="$(field status)"
case "$order_status" in
  processing|on-hold|pending|completed) ;;
  *) die "order $order_id has status $order_status" ;;
esac
if [ -n "${ORDER_ID_FILE:-}" ]; then printf '%s\n' "$order_id" > "$ORDER_ID_FILE"; fi
log "order $order_id exists with status $order_status: the store takes orders"
