#!/usr/bin/env bash
# End-to-end check of one store on a real cluster (kind, minikube, k3d, k3s or a cloud
# cluster) with an ingress controller: create the store, open the storefront, add the
# product to a cart, check out with Cash on Delivery, and find the order in wp-admin.
#
#   hack/e2e-real-cluster.sh [STORE_NAME]          (default: store-e2e)
#
# Settings (environment):
#   PROFILE          local | production: which values.<profile>.yaml (default local)
#   BASE_DOMAIN      store host is <STORE_NAME>.<BASE_DOMAIN> (default: the profile's)
#   INGRESS_ADDRESS  where the ingress controller listens (default 127.0.0.1, as with
#                    kind's port mapping or `minikube tunnel`; `minikube ip` otherwise)
#   INGRESS_PORT     default 80, or 443 when the profile serves TLS
#   GATEWAY_URL      if set (e.g. http://127.0.0.1:8080), create and delete the store
#                    through the platform's gateway API instead of running helm here
#   GATEWAY_TOKEN    bearer token for the gateway, if it requires one
#   KEEP=1           leave the store running at the end
#   TIMEOUT          how long the store may take to become ready (default 15m)
# Needs kubectl and curl, helm (direct mode), python3 or php (reading JSON), openssl.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
chart="$repo/store-chart"
store="${1:-store-e2e}"
profile="${PROFILE:-local}"
timeout="${TIMEOUT:-15m}"
bin_dir="$HOME/.cache/storeplatform/bin"
PATH="$PATH:$bin_dir"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

log() { printf '[e2e] %s\n' "$*"; }
die() { printf '[e2e] FAILED: %s\n' "$*" >&2; exit 1; }

profile_value() {  # profile_value KEY: a top-level ingress key of values.<profile>.yaml
  sed -n "s/^  $1: *\\([^ #]*\\).*/\\1/p" "$chart/values.$profile.yaml" | head -n 1
}

[[ "$store" =~ ^store-[a-z0-9]([-a-z0-9]*[a-z0-9])?$ && ${#store} -le 40 ]] \
  || die "store name must be store-<dns label>, at most 40 characters: $store"
[[ -f "$chart/values.$profile.yaml" ]] || die "no values file for profile $profile"
base_domain="${BASE_DOMAIN:-$(profile_value baseDomain)}"
host="$store.$base_domain"
if [[ "$profile" == production ]]; then scheme=https; else scheme=http; fi
port="${INGRESS_PORT:-$([[ $scheme == https ]] && echo 443 || echo 80)}"
address="${INGRESS_ADDRESS:-127.0.0.1}"
url="$scheme://$host"
[[ "$port" == 80 || "$port" == 443 ]] || url="$url:$port"
resolve="$host:$port:$address"

for tool in kubectl curl openssl; do
  command -v "$tool" >/dev/null || die "$tool not found"
done
kubectl cluster-info >/dev/null || die "kubectl cannot reach a cluster"

gateway() {  # gateway METHOD PATH [BODY]
  local args=(--silent --show-error --fail-with-body --max-time 30 -X "$1"
              -H 'Content-Type: application/json')
  [[ -n "${GATEWAY_TOKEN:-}" ]] && args+=(-H "Authorization: Bearer $GATEWAY_TOKEN")
  [[ $# -ge 3 ]] && args+=(--data "$3")
  curl "${args[@]}" "$GATEWAY_URL$2"
}

create_via_gateway() {
  log "creating $store through the gateway"
  gateway POST "/stores/$store" '{"engine": "woocommerce"}' >/dev/null
  local deadline=$((SECONDS + 1800)) status=""
  while ((SECONDS < deadline)); do
    status="$(gateway GET /stores | python3 -c '
import json, sys
stores = {s["name"]: s for s in json.load(sys.stdin)["stores"]}
store = stores.get(sys.argv[1], {})
print(store.get("status", "missing"), store.get("progress") or store.get("reason") or "")' "$store")"
    case "$status" in
      ready*) log "gateway reports the store ready"; return ;;
      failed*) die "the platform reports: $status" ;;
    esac
    sleep 10
  done
  die "store not ready in time (last: $status)"
}

create_with_helm() {
  command -v helm >/dev/null || die "helm not found (hack/controlplane/build.sh helm-kubectl)"
  log "creating namespace $store (Pod Security restricted) and its credentials"
  kubectl create namespace "$store" --dry-run=client -o yaml \
    | kubectl label --local -f - -o yaml \
        pod-security.kubernetes.io/enforce=restricted \
        pod-security.kubernetes.io/audit=restricted \
        pod-security.kubernetes.io/warn=restricted \
        "storeplatform.io/store=$store" \
    | kubectl apply -f - >/dev/null
  if ! kubectl -n "$store" get secret store-credentials >/dev/null 2>&1; then
    # Random values in files, never on a command line; created once, like the platform.
    local dir="$work/credentials" key
    mkdir -m 700 "$dir"
    for key in mysql-root-password mysql-password admin-password \
        wordpress-auth-key wordpress-secure-auth-key wordpress-logged-in-key \
        wordpress-nonce-key wordpress-auth-salt wordpress-secure-auth-salt \
        wordpress-logged-in-salt wordpress-nonce-salt; do
      openssl rand -base64 33 | tr -d '\n/+=' > "$dir/$key"
    done
    printf admin > "$dir/admin-user"
    printf 'admin@%s.invalid' "$store" > "$dir/admin-email"
    kubectl -n "$store" create secret generic store-credentials --from-file="$dir" >/dev/null
  fi
  log "helm upgrade --install $store ($profile profile, host $host); first boot takes minutes"
  local values=(--values "$chart/values.$profile.yaml" --set "storeName=$store"
                --set existingSecret=store-credentials)
  [[ -n "${BASE_DOMAIN:-}" ]] && values+=(--set "ingress.baseDomain=$BASE_DOMAIN")
  helm upgrade --install "$store" "$chart" --namespace "$store" "${values[@]}" \
    --wait --timeout "$timeout"
}

delete_store() {
  if [[ -n "${GATEWAY_URL:-}" ]]; then
    log "deleting $store through the gateway"
    gateway DELETE "/stores/$store" >/dev/null
  else
    log "deleting $store"
    helm uninstall "$store" --namespace "$store" --wait --timeout 5m >/dev/null
    kubectl delete namespace "$store" --wait=true --timeout=5m >/dev/null
  fi
}

# 1. Create the store and wait until its first-boot set-up finished.
if [[ -n "${GATEWAY_URL:-}" ]]; then create_via_gateway; else create_with_helm; fi

# 2. In-cluster proof: the chart's own helm test buys through the storefront Service.
if command -v helm >/dev/null; then
  log "helm test: in-cluster checkout through the storefront Service"
  helm test "$store" --namespace "$store" --logs --timeout 5m
fi

# 3. Open the storefront through the ingress, as a visitor.
code="$(curl --silent --output "$work/home.html" --write-out '%{http_code}' --max-time 60 \
  --resolve "$resolve" "$url/")"
[[ "$code" == 200 ]] || die "storefront $url/ answered HTTP $code"
grep -qi 'woocommerce' "$work/home.html" || die "storefront does not look like a WooCommerce shop"
log "storefront $url/ is up"

# 4. Add to cart and check out with Cash on Delivery through the ingress (the same
#    script `helm test` runs, pointed at the public address).
log "buying through the ingress"
STOREFRONT="$scheme://$host:$port" STORE_HOST="$host" CURL_RESOLVE="$resolve" \
  BILLING_EMAIL="e2e@example.com" ORDER_ID_FILE="$work/order-id" \
  sh "$chart/files/woocommerce/checkout-test.sh"
order_id="$(cat "$work/order-id")"

# 5. See the order in wp-admin, logged in as the store's admin.
admin_user="$(kubectl -n "$store" get secret store-credentials -o jsonpath='{.data.admin-user}' \
  | base64 -d)"
( umask 077; kubectl -n "$store" get secret store-credentials \
    -o jsonpath='{.data.admin-password}' | base64 -d > "$work/admin-password" )
admin_curl() {
  curl --silent --show-error --max-time 60 --resolve "$resolve" \
    --cookie "$work/cookies" --cookie-jar "$work/cookies" "$@"
}
admin_curl --output /dev/null "$url/wp-login.php"
code="$(admin_curl --output /dev/null --write-out '%{http_code}' \
  --data-urlencode "log=$admin_user" --data-urlencode "pwd@$work/admin-password" \
  --data-urlencode "redirect_to=$url/wp-admin/" -d testcookie=1 -d wp-submit=Log+In \
  "$url/wp-login.php")"
[[ "$code" == 302 ]] || die "admin login answered HTTP $code (expected a redirect)"
admin_curl --output "$work/order.html" "$url/wp-admin/admin.php?page=wc-orders&action=edit&id=$order_id"
if ! grep -q "#$order_id" "$work/order.html"; then  # stores without HPOS keep orders as posts
  admin_curl --output "$work/order.html" "$url/wp-admin/post.php?post=$order_id&action=edit"
fi
grep -q "#$order_id" "$work/order.html" || die "order $order_id not found in wp-admin"
log "order $order_id is in wp-admin: $url/wp-admin/admin.php?page=wc-orders&action=edit&id=$order_id"

# 6. Clean up.
if [[ "${KEEP:-0}" == 1 ]]; then
  log "KEEP=1: store left running at $url/ (admin: $url/wp-admin/)"
else
  delete_store
fi
log "PASSED: $store created, storefront served, order $order_id placed and visible in admin"
