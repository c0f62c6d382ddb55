#!/usr/bin/env bash
# `make down`: undo `make up`, and touch nothing it was not pointed at.
#
# Without settings it deletes the kind cluster `make up` made (context kind-$CLUSTER_NAME)
# and nothing else: whatever the current kubectl context is, it is left alone. To remove the
# platform from another cluster, name its context: DOWN_CONTEXT=<context> make down. There
# only the platform goes: the objects of knative/, in reverse apply order (the storeplatform
# namespace with them); Knative, the ingress controller and the stores (namespaces labelled
# app.kubernetes.io/managed-by=storeplatform) stay, the stores unless DELETE_STORES=1.
# Every kubectl call names that context. Safe to rerun.
#
# Settings (environment): DOWN_CONTEXT (none), CLUSTER_NAME (storeplatform), DELETE_STORES (0).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${HOME}/.cache/storeplatform/bin"
CLUSTER_NAME="${CLUSTER_NAME:-storeplatform}"
DELETE_STORES="${DELETE_STORES:-0}"
DOWN_CONTEXT="${DOWN_CONTEXT:-}"
STORE_SELECTOR="app.kubernetes.io/managed-by=storeplatform"

SCRIPT_NAME="make down"
# shellcheck source=hack/lib.sh
source "${ROOT}/hack/lib.sh"

kind_cluster_exists() {
  [[ -n "${KIND}" ]] && command -v docker >/dev/null 2>&1 \
    && "${KIND}" get clusters 2>/dev/null | grep -qx "${CLUSTER_NAME}"
}

delete_kind_cluster() {
  step "Deleting kind cluster ${CLUSTER_NAME}"
  "${KIND}" delete cluster --name "${CLUSTER_NAME}"
}

remove_platform() {
  local context="$1"
  k() { "${KUBECTL}" --context "${context}" --request-timeout=30s "$@"; }
  step "Removing the platform from context ${context} (Knative and stores stay)"
  local files=() i
  for file in "${ROOT}"/knative/*.yaml; do
    files+=("${file}")
  done
  for ((i = ${#files[@]} - 1; i >= 0; i--)); do  # reverse apply order
    info "$(basename "${files[i]}")"
    k delete --ignore-not-found --wait=false -f "${files[i]}" >/dev/null \
      || info "warning: some objects of $(basename "${files[i]}") could not be deleted"
  done
  info "waiting for namespace storeplatform to go"
  k wait --for=delete namespace/storeplatform --timeout=300s >/dev/null 2>&1 || true

  local stores
  stores="$(k get namespaces -l "${STORE_SELECTOR}" -o name)"
  if [[ -z "${stores}" ]]; then
    return
  fi
  if [[ "${DELETE_STORES}" == 1 ]]; then
    step "Deleting the stores (DELETE_STORES=1)"
    k delete namespaces -l "${STORE_SELECTOR}" --wait=true --timeout=600s
  else
    info "stores left in place: ${stores//$'\n'/ }"
    info "delete them too with: DELETE_STORES=1 make down"
  fi
}

main() {
  KUBECTL="$(find_tool kubectl)"
  KIND="$(find_tool kind)"
  local current=""
  if [[ -n "${KUBECTL}" ]]; then
    current="$("${KUBECTL}" config current-context 2>/dev/null || true)"
  fi

  if [[ -n "${DOWN_CONTEXT}" && "${DOWN_CONTEXT}" != "kind-${CLUSTER_NAME}" ]]; then
    [[ -n "${KUBECTL}" ]] || die "kubectl not found"
    "${KUBECTL}" config get-contexts "${DOWN_CONTEXT}" >/dev/null 2>&1 \
      || die "no kubectl context ${DOWN_CONTEXT}"
    remove_platform "${DOWN_CONTEXT}"
  elif kind_cluster_exists; then
    delete_kind_cluster
  else
    step "Nothing to remove: no kind cluster ${CLUSTER_NAME}"
    if [[ -n "${current}" && "${current}" != "kind-${CLUSTER_NAME}" ]]; then
      info "the current kubectl context ${current} is left alone: make down touches no context"
      info "it is not pointed at. To remove the platform from it: DOWN_CONTEXT=${current} make down"
    fi
    return
  fi
  step "Done"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  main "$@"
fi
