#!/usr/bin/env bash
# Copy the CustomResourceDefinitions of the pinned Knative Serving and Eventing releases
# (go.mod next to this script) into the cache, for the server-side validation tests.
#   hack/knative-crds/fetch.sh [dest]     dest defaults to ~/.cache/storeplatform/knative-crds
# `go mod download` verifies the modules against go.sum; nothing is compiled.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dest="${1:-${HOME}/.cache/storeplatform/knative-crds}"

module_dir() {
  # The verified, extracted module directory of $1 as pinned in go.mod.
  (cd "${here}" && GOFLAGS=-mod=mod go mod download -json "$1") \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p'
}

# The pins, and which files are copied (bumped when that changes, so caches refresh).
pins="$(sed -n 's/^\t\(knative.dev\/[a-z]*\) \(v[0-9.]*\)$/\1 \2/p' "${here}/go.mod")
files 2: CRDs, and Serving's podspecable-binding ClusterRole"
if [[ -f "${dest}/VERSIONS" && "$(cat "${dest}/VERSIONS")" == "${pins}" ]]; then
  echo "knative CRDs: ${dest} is up to date (${pins//$'\n'/, })"
  exit 0
fi

serving="$(module_dir knative.dev/serving)"
eventing="$(module_dir knative.dev/eventing)"
if [[ -z "${serving}" || -z "${eventing}" ]]; then
  echo "fetch.sh: go mod download did not report the module directories" >&2
  exit 1
fi

mkdir -p "$(dirname "${dest}")"
tmp="$(mktemp -d "$(dirname "${dest}")/.knative-crds.XXXXXX")"
trap 'rm -rf "${tmp}"' EXIT

# Serving: the serving.knative.dev (and autoscaling/networking) CRDs.
for f in "${serving}"/config/core/300-resources/*.yaml; do
  cp "${f}" "${tmp}/serving-$(basename "${f}")"
done
# Serving's release lets the SinkBinding reconciler patch Knative Services through an
# aggregated ClusterRole (label duck.knative.dev/podspecable); the local install applies it.
cp "${serving}/config/core/200-roles/podspecable-bindings-clusterrole.yaml" \
  "${tmp}/serving-podspecable-bindings-clusterrole.yaml"
# Eventing: Broker, Trigger, SinkBinding and the other eventing/sources/flows/messaging CRDs.
for f in "${eventing}"/config/core/resources/*.yaml; do
  cp "${f}" "${tmp}/eventing-$(basename "${f}")"
done
chmod 0755 "${tmp}" && chmod 0644 "${tmp}"/*.yaml
printf '%s\n' "${pins}" > "${tmp}/VERSIONS"

# Replace the cache atomically, so a concurrent test never sees half a directory.
rm -rf "${dest}.old"
if [[ -d "${dest}" ]]; then mv "${dest}" "${dest}.old"; fi
mv "${tmp}" "${dest}"
trap - EXIT
rm -rf "${dest}.old"
echo "knative CRDs: $(find "${dest}" -name '*.yaml' | wc -l) files in ${dest} (${pins//$'\n'/, })"
