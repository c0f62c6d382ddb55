#!/usr/bin/env bash
# End-to-end check of one store on a real cluster (kind, minikube, k3d, k3s or a cloud
# cluster) with an ingress controller: create the store, open the storefront, add the
# product to a cart, check out with Cash on Delivery, and find the order in wp-admin;
# then what a store needs after its first day: a scheduled action runs (the CronJob),
# an upgrade keeps an owner's change, and (PROFILE=production) the certificate is
# issued through cert-manager with a Let's Encrypt staging issuer.
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
#   ACME_EMAIL       PROFILE=production: the account e-mail for the staging issuer. The
#                    cluster needs cert-manager, and BASE_DOMAIN a public wildcard DNS
#                    record pointing at the ingress controller (the CA must reach it).
#   ISSUER           the ClusterIssuer to create or use (default letsencrypt-staging)
# Needs kubectl and curl, helm (direct mode), python3 or php (reading JSON), openssl.
# The upgrade and TLS checks need direct mode (helm here); in gateway mode they are
# reported as not run.
# PHP snippets are single-quoted on purpose: their $variables are PHP's, not the shell's.
# shellcheck disable=SC2016
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
issuer="${ISSUER:-letsencrypt-staging}"
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
  helm_install
}

# The chart with the profile and the platform's values, as the runner installs it;
# production certificates come from the staging issuer.
helm_install() {
  local values=(--values "$chart/values.$profile.yaml" --set "storeName=$store"
                --set existingSecret=store-credentials)
  [[ -n "${BASE_DOMAIN:-}" ]] && values+=(--set "ingress.baseDomain=$BASE_DOMAIN")
  [[ "$profile" == production ]] && values+=(--set "ingress.tls.clusterIssuer=$issuer")
  helm upgrade --install "$store" "$chart" --namespace "$store" "${values[@]}" \
    --wait --timeout "$timeout"
}

# A Let's Encrypt staging ClusterIssuer whose HTTP-01 solver fits a store namespace:
# a ClusterIP Service (the store quota allows no NodePort), the nginx class.
ensure_staging_issuer() {
  kubectl get crd certificates.cert-manager.io >/dev/null 2>&1 \
    || die "PROFILE=production needs cert-manager in the cluster"
  kubectl get clusterissuer "$issuer" >/dev/null 2>&1 && return
  [[ -n "${ACME_EMAIL:-}" ]] || die "set ACME_EMAIL (the staging issuer's account e-mail)"
  log "creating ClusterIssuer $issuer (Let's Encrypt staging, HTTP-01, ClusterIP solver)"
  kubectl apply -f - >/dev/null <<ISSUER
apiVersion: cert-manager.io/v1
kind: ClusterIssuer
metadata:
  name: $issuer
spec:
  acme:
    server: https://acme-staging-v02.api.letsencrypt.org/directory
    email: $ACME_EMAIL
    privateKeySecretRef:
      name: $issuer-account-key
    solvers:
      - http01:
          ingress:
            ingressClassName: nginx
            serviceType: ClusterIP
ISSUER
}

# wp_php CODE: PHP with WordPress and WooCommerce loaded, in the storefront pod.
wp_php() {
  kubectl -n "$store" exec -i "deploy/$store-wordpress" -c wordpress -- php -r \
    '$_SERVER["HTTP_HOST"] = "localhost"; require "/var/www/html/wp-load.php";
     eval(stream_get_contents(STDIN));' <<<"$1"
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
if [[ -z "${GATEWAY_URL:-}" && "$profile" == production ]]; then ensure_staging_issuer; fi
if [[ -n "${GATEWAY_URL:-}" ]]; then create_via_gateway; else create_with_helm; fi

# 1b. Production: cert-manager issues the store's certificate under the store's
#     default-deny policies (the chart admits the ingress controller to the solver).
curl_tls=()
tls_checked=""
if [[ "$profile" == production && -z "${GATEWAY_URL:-}" ]]; then
  log "waiting for certificate $store-tls from $issuer (HTTP-01 through the ingress)"
  if ! kubectl -n "$store" wait --for=condition=Ready "certificate/$store-tls" \
      --timeout=10m >/dev/null; then
    kubectl -n "$store" describe certificates,challenges >&2 || true
    die "certificate $store-tls was not issued"
  fi
  served_issuer="$(openssl s_client -connect "$address:$port" -servername "$host" </dev/null \
    2>/dev/null | openssl x509 -noout -issuer)"
  [[ "$served_issuer" == *STAGING* ]] || die "the ingress serves another certificate: $served_issuer"
  log "certificate issued and served: $served_issuer"
  curl_tls=(--insecure)  # a staging CA is not trusted, by design
  tls_checked=", staging certificate issued"
fi

# 2. In-cluster proof: the chart's own helm test buys through the storefront Service.
if command -v helm >/dev/null; then
  log "helm test: in-cluster checkout through the storefront Service"
  helm test "$store" --namespace "$store" --logs --timeout 5m
fi

# 3. Open the storefront through the ingress, as a visitor.
code="$(curl --silent --output "$work/home.html" --write-out '%{http_code}' --max-time 60 \
  "${curl_tls[@]}" --resolve "$resolve" "$url/")"
[[ "$code" == 200 ]] || die "storefront $url/ answered HTTP $code"
grep -qi 'woocommerce' "$work/home.html" || die "storefront does not look like a WooCommerce shop"
log "storefront $url/ is up"

# 4. Add to cart and check out with Cash on Delivery through the ingress (the same
#    script `helm test` runs, pointed at the public address).
log "buying through the ingress"
STOREFRONT="$scheme://$host:$port" STORE_HOST="$host" CURL_RESOLVE="$resolve" \
  CURL_INSECURE="$([[ ${#curl_tls[@]} -gt 0 ]] && echo 1 || echo 0)" \
  PRODUCT_SKU=STARTER-TSHIRT BILLING_EMAIL="e2e@example.com" ORDER_ID_FILE="$work/order-id" \
  sh "$chart/files/woocommerce/checkout-test.sh"
order_id="$(cat "$work/order-id")"

# 5. See the order in wp-admin, logged in as the store's admin.
admin_user="$(kubectl -n "$store" get secret store-credentials -o jsonpath='{.data.admin-user}' \
  | base64 -d)"
( umask 077; kubectl -n "$store" get secret store-credentials \
    -o jsonpath='{.data.admin-password}' | base64 -d > "$work/admin-password" )
admin_curl() {
  curl --silent --show-error --max-time 60 "${curl_tls[@]}" --resolve "$resolve" \
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

# 6. A scheduled action runs: WP-Cron is off on page visits, the CronJob runs the due
#    events, Action Scheduler's queue among them; it also deletes helm test's orders.
action_id="$(wp_php 'echo as_schedule_single_action(time() - 60, "woocommerce_cleanup_sessions",
  array(), "storeplatform-e2e");')"
[[ "$action_id" =~ ^[0-9]+$ ]] || die "could not schedule an action: $action_id"
log "scheduled action $action_id; running the CronJob now"
kubectl -n "$store" delete job "$store-cron-e2e" --ignore-not-found >/dev/null
kubectl -n "$store" create job "$store-cron-e2e" --from="cronjob/$store-cron" >/dev/null
if ! kubectl -n "$store" wait --for=condition=complete "job/$store-cron-e2e" \
    --timeout=5m >/dev/null; then
  kubectl -n "$store" logs "job/$store-cron-e2e" --all-containers >&2 || true
  die "the scheduled job did not complete"
fi
action_status="$(wp_php "echo ActionScheduler::store()->get_status($action_id);")"
[[ "$action_status" == complete ]] || die "scheduled action $action_id is $action_status"
test_orders="$(wp_php 'echo count(wc_get_orders(array("billing_email" =>
  "checkout-test@storeplatform.invalid", "limit" => -1, "return" => "ids")));')"
[[ "$test_orders" == 0 ]] || die "$test_orders helm test order(s) left in the shop"
log "scheduled action $action_id ran; no helm test order left in the shop"

# 7. An upgrade keeps the owner's choices: change the currency and unpublish the
#    starter product, upgrade, and find both as the owner left them; helm test still
#    buys (its hidden probe product does not depend on the owner's catalogue).
upgrade_checked=""
if [[ -z "${GATEWAY_URL:-}" ]]; then
  wp_php 'update_option("woocommerce_currency", "EUR");
    $p = wc_get_product(wc_get_product_id_by_sku("STARTER-TSHIRT"));
    $p->set_status("draft"); $p->save();' >/dev/null
  log "owner's change: currency EUR, starter product unpublished; upgrading"
  helm_install
  after="$(wp_php 'echo get_option("woocommerce_currency"), " ",
    wc_get_product(wc_get_product_id_by_sku("STARTER-TSHIRT"))->get_status();')"
  [[ "$after" == "EUR draft" ]] || die "the upgrade changed the owner's settings: $after"
  helm test "$store" --namespace "$store" --logs --timeout 5m
  log "upgrade kept the owner's change ($after) and the store still sells"
  upgrade_checked=", upgrade kept the owner's change"
else
  log "NOT RUN: upgrade check (gateway mode; run without GATEWAY_URL to upgrade with helm)"
fi

# 8. The owner's way in (docs/operations.md): a new admin password set by the real wp-cli
#     in a Job in the store's namespace, shown once; the old password stops working, the
#     new one logs in. Through the gateway when there is one; otherwise the runner's own
#     code does the same against this cluster with your kubectl credentials.
log "resetting the admin password with wp-cli (the platform's reset-admin-password)"
if [[ -n "${GATEWAY_URL:-}" ]]; then
  reset_id="$(gateway POST "/stores/$store/admin-password" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
  deadline=$((SECONDS + 600))
  while ((SECONDS < deadline)); do
    code="$(curl --silent --output "$work/reveal.json" --write-out '%{http_code}' --max-time 30 \
      -X POST ${GATEWAY_TOKEN:+-H "Authorization: Bearer $GATEWAY_TOKEN"} \
      "$GATEWAY_URL/stores/$store/admin-password/$reset_id")"
    [[ "$code" == 202 ]] || break
    sleep 5
  done
  [[ "$code" == 200 ]] || die "admin password reset answered HTTP $code: $(cat "$work/reveal.json")"
  ( umask 077; python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["password"], end="")' \
      "$work/reveal.json" > "$work/new-password" )
  rm -f "$work/reveal.json"
else
  python="$repo/.venv/bin/python"; [[ -x "$python" ]] || python=python3
  STORE_NAME="$store" RESET_ID="e2e-$(date +%s)" WP_CLI=job PYTHONPATH="$repo/functions" \
    KUBECONFIG="${KUBECONFIG:-$HOME/.kube/config}" \
    "$python" -c 'import os, storeplatform.runner as r, storeplatform.wpcli as w
from storeplatform.kube import connect
kube = connect({"KUBECONFIG": os.environ["KUBECONFIG"], "KUBE_TIMEOUT": 30.0})
w.reset_admin_password(os.environ, kube, w.choose_cli("job", kube, r.run_helm))' \
    || die "admin password reset failed"
  ( umask 077; kubectl -n "$store" get secret storeplatform-admin-password \
      -o jsonpath='{.data.password}' | base64 -d > "$work/new-password" )
  kubectl -n "$store" delete secret storeplatform-admin-password >/dev/null
fi
login_status() {  # login_status PASSWORD_FILE: wp-login's HTTP status (302: logged in)
  rm -f "$work/cookies"
  admin_curl --output /dev/null "$url/wp-login.php"
  admin_curl --output /dev/null --write-out '%{http_code}' \
    --data-urlencode "log=$admin_user" --data-urlencode "pwd@$1" \
    --data-urlencode "redirect_to=$url/wp-admin/" -d testcookie=1 -d wp-submit=Log+In \
    "$url/wp-login.php"
}
[[ "$(login_status "$work/admin-password")" != 302 ]] \
  || die "the old admin password still logs in after the reset"
code="$(login_status "$work/new-password")"
[[ "$code" == 302 ]] || die "the new admin password does not log in (HTTP $code)"
log "the new admin password logs in to wp-admin; the old one no longer does"

# 9. Clean up.
if [[ "${KEEP:-0}" == 1 ]]; then
  log "KEEP=1: store left running at $url/ (admin: $url/wp-admin/)"
else
  delete_store
fi
log "PASSED: $store created, storefront served, order $order_id placed and visible in admin," \
  "scheduled action ran$upgrade_checked$tls_checked, admin password reset with wp-cli"
