#!/usr/bin/env bash
# `make up`: the platform on a real Kubernetes cluster with Knative.
#
# With no cluster configured (and Docker running) it creates a kind cluster with
# ingress-nginx (stores) and Knative Serving + Kourier + Eventing, builds the two images,
# loads them into the cluster, applies knative/ in order, waits until everything is ready
# and prints the dashboard URL. With a cluster configured (current kubectl context) it
# deploys there instead. Safe to rerun: every step converges. See docs/knative.md.
#
# A kubectl context make up did not create itself is never deployed to silently: in auto
# mode make up asks first (and refuses without a terminal to ask on); UP_TARGET=current
# deploys there without asking. Contexts make up created are kept in
# ~/.cache/storeplatform/up-created-contexts.
#
# Settings (environment):
#   UP_TARGET        auto | kind | current   (auto: current context if it answers and you
#                    confirm, else kind; current: the current context, no question)
#   CLUSTER_NAME     kind cluster name (storeplatform)
#   FUNCTIONS_IMAGE  image of the four Knative Services (storeplatform/functions:dev)
#   RUNNER_IMAGE     image of the Helm runner Jobs (storeplatform/helm-runner:dev)
#   PUSH_IMAGES      1: docker push both images (needed for a cluster that is not kind)
#   SKIP_BUILD       1: use the images as they are (already built / pushed)
#   HTTP_PORT        host port of the stores' ingress on kind (80)
#   KNATIVE_PORT     host port of Kourier, i.e. the dashboard, on kind (8080)
#   INSTALL_KNATIVE  auto | 1 | 0  (auto: install Serving / Eventing where its CRDs are missing)
set -euo pipefail

# ---------------------------------------------------------------- pinned versions
KIND_VERSION="v0.31.0"                     # its default node image is Kubernetes v1.35.0
# Knative Serving, Eventing and net-kourier release; the Go modules pinned in
# hack/knative-crds/go.mod (v0.50.0) are the same release, whose CRDs the tests validate.
KNATIVE_VERSION="1.23.0"
INGRESS_NGINX_VERSION="controller-v1.15.1"  # the project's last release (retired 2026-03)

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${HOME}/.cache/storeplatform"
BIN="${CACHE}/bin"
DOWNLOADS="${CACHE}/manifests"

UP_TARGET="${UP_TARGET:-auto}"
CLUSTER_NAME="${CLUSTER_NAME:-storeplatform}"
FUNCTIONS_IMAGE="${FUNCTIONS_IMAGE:-storeplatform/functions:dev}"
RUNNER_IMAGE="${RUNNER_IMAGE:-storeplatform/helm-runner:dev}"
PUSH_IMAGES="${PUSH_IMAGES:-0}"
SKIP_BUILD="${SKIP_BUILD:-0}"
HTTP_PORT="${HTTP_PORT:-80}"
KNATIVE_PORT="${KNATIVE_PORT:-8080}"
INSTALL_KNATIVE="${INSTALL_KNATIVE:-auto}"

PLATFORM_NS="storeplatform"
KOURIER_NODE_PORT=31080
PLACEHOLDER_FUNCTIONS="storeplatform/functions:dev"
PLACEHOLDER_RUNNER="storeplatform/helm-runner:dev"

SERVING_URL="https://github.com/knative/serving/releases/download/knative-v${KNATIVE_VERSION}"
EVENTING_URL="https://github.com/knative/eventing/releases/download/knative-v${KNATIVE_VERSION}"
KOURIER_URL="https://github.com/knative-extensions/net-kourier/releases/download/knative-v${KNATIVE_VERSION}"
INGRESS_NGINX_URL="https://raw.githubusercontent.com/kubernetes/ingress-nginx/${INGRESS_NGINX_VERSION}/deploy/static/provider/kind/deploy.yaml"

CREATED_CONTEXTS="${CACHE}/up-created-contexts"

SCRIPT_NAME="make up"
# shellcheck source=hack/lib.sh
source "${ROOT}/hack/lib.sh"

k() { "${KUBECTL}" --context "${CONTEXT}" "$@"; }

have_docker() { command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; }

ensure_kind() {
  KIND="$(find_tool kind)"
  if [[ -z "${KIND}" ]]; then
    command -v go >/dev/null 2>&1 || die "kind not found and no Go toolchain to build it (go install sigs.k8s.io/kind@${KIND_VERSION})"
    step "Building kind ${KIND_VERSION} into ${BIN}"
    mkdir -p "${BIN}"
    GOBIN="${BIN}" go install "sigs.k8s.io/kind@${KIND_VERSION}"
    KIND="${BIN}/kind"
  fi
  local version
  version="$("${KIND}" version | awk '{print $2}')"
  if [[ "${version}" != "${KIND_VERSION}" ]]; then
    info "note: using kind ${version} from ${KIND} (pinned: ${KIND_VERSION})"
  fi
}

retry() {
  # retry <attempts> <command...>: for applies that race a webhook still starting.
  local attempts="$1" n=1
  shift
  until "$@"; do
    if ((n >= attempts)); then return 1; fi
    info "retrying in $((n * 5)) s ($n/${attempts})"
    sleep $((n * 5))
    n=$((n + 1))
  done
}

fetch() {
  # fetch <url> <name>: download once into the cache; print the local path.
  local url="$1" file="${DOWNLOADS}/$2"
  if [[ ! -s "${file}" ]]; then
    mkdir -p "${DOWNLOADS}"
    curl -fsSL --retry 3 --connect-timeout 15 --max-time 300 -o "${file}.part" "${url}" \
      || die "could not download ${url}"
    mv "${file}.part" "${file}"
  fi
  printf '%s\n' "${file}"
}

# ---------------------------------------------------------------- target cluster

current_context_answers() {
  local context
  context="$("${KUBECTL}" config current-context 2>/dev/null)" || return 1
  [[ -n "${context}" ]] || return 1
  "${KUBECTL}" --context "${context}" --request-timeout=5s get --raw /readyz >/dev/null 2>&1
}

# created_here CONTEXT: make up made this context (its kind cluster), now or on an earlier run.
created_here() {
  [[ "$1" == "kind-${CLUSTER_NAME}" ]] || grep -qxF -- "$1" "${CREATED_CONTEXTS}" 2>/dev/null
}

remember_created() {
  mkdir -p "${CACHE}"
  created_here "$1" || printf '%s\n' "$1" >> "${CREATED_CONTEXTS}"
}

# confirm_context CONTEXT: true when the person at the terminal says yes. Without a
# terminal (CI, a pipe) nobody can say yes: false.
confirm_context() {
  local context="$1" server answer
  server="$("${KUBECTL}" config view --minify --context "${context}" \
    -o jsonpath='{.clusters[0].cluster.server}' 2>/dev/null || true)"
  if [[ ! -t 0 ]]; then
    return 1
  fi
  printf '\nmake up did not create kubectl context %s (%s).\n' "${context}" "${server:-server unknown}"
  printf 'Deploy the store platform there (namespace %s, Knative if missing)? [y/N] ' "${PLATFORM_NS}"
  read -r answer || answer=""
  [[ "${answer}" == [yY] || "${answer}" == [yY][eE][sS] ]]
}

choose_target() {
  case "${UP_TARGET}" in
    kind) MODE=kind ;;
    current)
      current_context_answers || die "UP_TARGET=current but the current kubectl context does not answer"
      MODE=current ;;
    auto)
      local context
      context="$("${KUBECTL}" config current-context 2>/dev/null || true)"
      if current_context_answers && { created_here "${context}" || confirm_context "${context}"; }; then
        MODE=current
      elif current_context_answers; then
        die "not deploying to kubectl context ${context}: make up did not create it and nobody confirmed (no terminal, or not 'y'). To deploy there, run UP_TARGET=current make up; for a kind cluster of its own, UP_TARGET=kind make up; for everything on 127.0.0.1, make dev"
      elif have_docker; then
        MODE=kind
      else
        MODE=embedded  # nothing to deploy to: run the platform locally instead
      fi ;;
    *) die "UP_TARGET must be auto, kind or current (got ${UP_TARGET})" ;;
  esac
  if [[ "${MODE}" == embedded ]]; then
    CONTEXT=""
  elif [[ "${MODE}" == current ]]; then
    CONTEXT="$("${KUBECTL}" config current-context)"
    # A kind cluster counts as kind: images are loaded, not pushed.
    if [[ "${CONTEXT}" == kind-* ]]; then
      MODE=kind
      CLUSTER_NAME="${CONTEXT#kind-}"
    fi
  else
    CONTEXT="kind-${CLUSTER_NAME}"
  fi
}

kind_config() {
  cat <<EOF
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
  - role: control-plane
    labels:
      ingress-ready: "true"
    extraPortMappings:
      # ingress-nginx: the stores (http://<store>.localhost/)
      - containerPort: 80
        hostPort: ${HTTP_PORT}
        listenAddress: 127.0.0.1
      # Kourier: the Knative Services, i.e. the gateway and dashboard
      - containerPort: ${KOURIER_NODE_PORT}
        hostPort: ${KNATIVE_PORT}
        listenAddress: 127.0.0.1
EOF
}

ensure_kind_cluster() {
  ensure_kind
  have_docker || die "Docker is not running: kind needs it"
  if "${KIND}" get clusters 2>/dev/null | grep -qx "${CLUSTER_NAME}"; then
    step "kind cluster ${CLUSTER_NAME} exists: reusing it"
    "${KIND}" export kubeconfig --name "${CLUSTER_NAME}" >/dev/null
  else
    step "Creating kind cluster ${CLUSTER_NAME} (stores on 127.0.0.1:${HTTP_PORT}, dashboard on 127.0.0.1:${KNATIVE_PORT})"
    kind_config | "${KIND}" create cluster --name "${CLUSTER_NAME}" --config=- --wait 120s
    remember_created "kind-${CLUSTER_NAME}"
  fi
  k wait --for=condition=Ready nodes --all --timeout=180s >/dev/null
}

# ---------------------------------------------------------------- add-ons

install_ingress_nginx() {
  step "Installing ingress-nginx ${INGRESS_NGINX_VERSION}"
  local file
  file="$(fetch "${INGRESS_NGINX_URL}" "ingress-nginx-${INGRESS_NGINX_VERSION}-kind.yaml")"
  retry 3 k apply -f "${file}" >/dev/null
  k -n ingress-nginx rollout status deployment/ingress-nginx-controller --timeout=300s
  # The chart names className nginx; default too, for Ingresses that name none.
  k annotate ingressclass nginx --overwrite ingressclass.kubernetes.io/is-default-class=true >/dev/null
}

wait_deployments() {
  info "waiting for the deployments in $1"
  k -n "$1" wait --for=condition=Available deployment --all --timeout=600s >/dev/null
}

apply_release() {
  # apply_release <url> <cache name>: an upstream release file, as its docs apply it.
  local file
  file="$(fetch "$1" "$2")"
  retry 5 k apply -f "${file}" >/dev/null
}

has_crd() { k get crd "$1" >/dev/null 2>&1; }

install_serving() {
  step "Installing Knative Serving ${KNATIVE_VERSION} with Kourier"
  apply_release "${SERVING_URL}/serving-crds.yaml" "serving-crds-${KNATIVE_VERSION}.yaml"
  k wait --for=condition=Established crd -l knative.dev/crd-install=true --timeout=120s >/dev/null
  apply_release "${SERVING_URL}/serving-core.yaml" "serving-core-${KNATIVE_VERSION}.yaml"
  wait_deployments knative-serving
  apply_release "${KOURIER_URL}/kourier.yaml" "kourier-${KNATIVE_VERSION}.yaml"
  wait_deployments kourier-system
  retry 5 k -n knative-serving patch configmap/config-network --type merge \
    -p '{"data":{"ingress-class":"kourier.ingress.networking.knative.dev"}}' >/dev/null
}

install_eventing() {
  step "Installing Knative Eventing ${KNATIVE_VERSION} (in-memory channel, MT channel broker)"
  apply_release "${EVENTING_URL}/eventing-crds.yaml" "eventing-crds-${KNATIVE_VERSION}.yaml"
  k wait --for=condition=Established crd -l knative.dev/crd-install=true --timeout=120s >/dev/null
  apply_release "${EVENTING_URL}/eventing-core.yaml" "eventing-core-${KNATIVE_VERSION}.yaml"
  wait_deployments knative-eventing
  apply_release "${EVENTING_URL}/in-memory-channel.yaml" "in-memory-channel-${KNATIVE_VERSION}.yaml"
  apply_release "${EVENTING_URL}/mt-channel-broker.yaml" "mt-channel-broker-${KNATIVE_VERSION}.yaml"
  wait_deployments knative-eventing
}

ensure_knative() {
  # INSTALL_KNATIVE=auto installs what is missing; on a cluster that already runs Knative
  # Serving (with whatever networking layer) nothing of it is touched.
  if [[ "${INSTALL_KNATIVE}" == 1 ]] || { [[ "${INSTALL_KNATIVE}" == auto ]] && ! has_crd services.serving.knative.dev; }; then
    install_serving
  else
    step "Knative Serving is installed"
  fi
  if [[ "${INSTALL_KNATIVE}" == 1 ]] || { [[ "${INSTALL_KNATIVE}" == auto ]] && ! has_crd brokers.eventing.knative.dev; }; then
    install_eventing
  else
    step "Knative Eventing is installed"
  fi
  if [[ "${INSTALL_KNATIVE}" == 0 ]] && ! { has_crd services.serving.knative.dev && has_crd brokers.eventing.knative.dev; }; then
    die "INSTALL_KNATIVE=0 but Knative Serving/Eventing is missing on context ${CONTEXT}"
  fi
}

configure_knative_for_kind() {
  step "Exposing Kourier on 127.0.0.1:${KNATIVE_PORT}, Knative URLs under *.localhost"
  k -n kourier-system patch service kourier \
    -p "{\"spec\":{\"type\":\"NodePort\",\"ports\":[{\"port\":80,\"nodePort\":${KOURIER_NODE_PORT}}]}}" >/dev/null
  # <service>.<namespace>.localhost resolves to 127.0.0.1 without any DNS set-up.
  retry 5 k -n knative-serving patch configmap/config-domain --type merge \
    -p '{"data":{"localhost":""}}' >/dev/null
  # Images loaded with `kind load` exist in no registry, so Knative must not try to resolve
  # their tags to digests. Unqualified names live in Docker's default index; ask Docker
  # which host that is rather than spelling it here.
  local index
  index="$(docker info --format '{{.IndexServerAddress}}' 2>/dev/null | sed -E 's#^[a-z]+://##; s#/.*$##')"
  if [[ -n "${index}" ]]; then
    local skip
    skip="$(k -n knative-serving get configmap config-deployment \
      -o jsonpath='{.data.registries-skipping-tag-resolving}')"
    skip="${skip:-kind.local,ko.local,dev.local}"
    if [[ ",${skip}," != *",${index},"* ]]; then
      retry 5 k -n knative-serving patch configmap/config-deployment --type merge \
        -p "{\"data\":{\"registries-skipping-tag-resolving\":\"${skip},${index}\"}}" >/dev/null
    fi
  else
    info "warning: could not ask Docker for its default registry; if revisions fail with"
    info "'Unable to fetch image', add it to registries-skipping-tag-resolving in"
    info "configmap knative-serving/config-deployment"
  fi
}

# ---------------------------------------------------------------- images

build_images() {
  if [[ "${SKIP_BUILD}" == 1 ]]; then
    info "SKIP_BUILD=1: using ${FUNCTIONS_IMAGE} and ${RUNNER_IMAGE} as they are"
    return
  fi
  have_docker || die "Docker is needed to build the images (or set SKIP_BUILD=1 with pushed images)"
  step "Building ${FUNCTIONS_IMAGE} and ${RUNNER_IMAGE} (the first build takes a few minutes)"
  docker build -q -f "${ROOT}/functions/Dockerfile" -t "${FUNCTIONS_IMAGE}" "${ROOT}" >/dev/null
  docker build -q -f "${ROOT}/functions/runner.Dockerfile" -t "${RUNNER_IMAGE}" "${ROOT}" >/dev/null
}

deliver_images() {
  if [[ "${MODE}" == kind ]]; then
    step "Loading the images into kind cluster ${CLUSTER_NAME}"
    ensure_kind
    "${KIND}" load docker-image --name "${CLUSTER_NAME}" "${FUNCTIONS_IMAGE}" "${RUNNER_IMAGE}"
  elif [[ "${PUSH_IMAGES}" == 1 ]]; then
    step "Pushing ${FUNCTIONS_IMAGE} and ${RUNNER_IMAGE}"
    docker push -q "${FUNCTIONS_IMAGE}" >/dev/null
    docker push -q "${RUNNER_IMAGE}" >/dev/null
  elif [[ "${MODE}" == current && "${FUNCTIONS_IMAGE}" == "${PLACEHOLDER_FUNCTIONS}" ]]; then
    die "the cluster of context ${CONTEXT} cannot pull local images: set FUNCTIONS_IMAGE and RUNNER_IMAGE to a registry you can push to, and PUSH_IMAGES=1"
  fi
}

# ---------------------------------------------------------------- the platform

image_id() { docker image inspect --format '{{.Id}}' "$1" 2>/dev/null || true; }

render_manifests() {
  # knative/ with the image placeholders replaced; print the directory. The local image ID
  # goes into each revision template, so a rerun after a rebuild (same tag) rolls out a
  # new revision, and a rerun without changes none.
  local out build=""
  out="$(mktemp -d)"
  if have_docker; then
    build="$(image_id "${FUNCTIONS_IMAGE}")"
  fi
  for file in "${ROOT}"/knative/*.yaml; do
    sed -e "s#${PLACEHOLDER_FUNCTIONS}#${FUNCTIONS_IMAGE}#g" \
        -e "s#${PLACEHOLDER_RUNNER}#${RUNNER_IMAGE}#g" "${file}" \
      | awk -v build="${build}" '{ print }
          build != "" && /autoscaling\.knative\.dev\/max-scale:/ {
            match($0, /^ */)
            printf "%sstoreplatform.io/image-id: \"%s\"\n", substr($0, 1, RLENGTH), build
          }' > "${out}/$(basename "${file}")"
  done
  printf '%s\n' "${out}"
}

# waits_after <file>: the file's objects are Knative objects to wait for right after it is
# applied. SinkBindings are not: they report SubjectMissing until the Services they bind
# (later files) exist, so they are waited for after the last file. devstack/deploy.py
# applies the same rule; the file order makes every wait end (docs/knative.md).
waits_after() {
  grep -q '^apiVersion: [a-z.]*knative\.dev/' "$1" && ! grep -q '^kind: SinkBinding$' "$1"
}

enable_oidc() {
  # The platform's events are authenticated (docs/security.md): senders present OIDC tokens,
  # the Broker enforces its EventPolicies (knative/315), the functions check the Broker's.
  # This is Eventing's cluster-wide feature flag: it stays on for every Broker here.
  step "Turning on Knative Eventing's OIDC sender identity (authentication-oidc: enabled)"
  retry 5 k -n knative-eventing patch configmap/config-features --type merge \
    -p '{"data":{"authentication-oidc":"enabled"}}' >/dev/null
}

ensure_gateway_token() {
  # The gateway refuses to start without a token: make one, once, never printed. A rerun
  # keeps it (rotate by deleting the Secret and rerunning `make up`).
  if k -n "${PLATFORM_NS}" get secret storeplatform-gateway >/dev/null 2>&1; then
    info "gateway token: kept (Secret ${PLATFORM_NS}/storeplatform-gateway)"
    return
  fi
  head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' \
    | k -n "${PLATFORM_NS}" create secret generic storeplatform-gateway \
        --from-file=token=/dev/stdin >/dev/null
  info "gateway token: created (Secret ${PLATFORM_NS}/storeplatform-gateway)"
}

token_command() {
  printf '%s' "${KUBECTL} --context ${CONTEXT} -n ${PLATFORM_NS} get secret storeplatform-gateway -o jsonpath='{.data.token}' | base64 -d"
}

apply_platform() {
  step "Applying knative/ (namespace ${PLATFORM_NS})"
  local dir
  dir="$(render_manifests)"
  # shellcheck disable=SC2064 # expand now: the directory is known now
  trap "rm -rf '${dir}'" EXIT
  for file in "${dir}"/*.yaml; do
    info "$(basename "${file}")"
    retry 3 k apply --server-side --force-conflicts --field-manager=storeplatform \
      -f "${file}" >/dev/null
    if [[ "$(basename "${file}")" == 100-namespace.yaml ]]; then
      ensure_gateway_token
    fi
    if grep -q '^kind: SinkBinding$' "${file}"; then
      # The webhook intercepts only the kinds its configuration names, and adds a kind
      # when it sees the first binding of it: Services applied sooner get no K_SINK.
      # (Our bindings bind Knative Services only, so that is the one rule.)
      k wait --for=jsonpath='{.webhooks[0].rules[0].resources[0]}'='services/*' \
        mutatingwebhookconfiguration sinkbindings.webhook.sources.knative.dev \
        --timeout=120s >/dev/null
    fi
    if waits_after "${file}"; then
      k wait --for=condition=Ready --timeout=600s -f "${file}" >/dev/null
    fi
  done
  step "Waiting for the SinkBindings"
  k -n "${PLATFORM_NS}" wait --for=condition=Ready sinkbinding --all --timeout=300s >/dev/null
  check_bound
}

# check_bound: every SinkBinding's Service carries K_SINK = the binding's sink. One that
# does not is nudged (annotated) once, so the SinkBinding reconciler binds it again.
check_bound() {
  local name subject sink env tries
  while read -r name subject sink; do
    for tries in $(seq 1 60); do
      env="$(k -n "${PLATFORM_NS}" get ksvc "${subject}" \
        -o jsonpath='{.spec.template.spec.containers[0].env[?(@.name=="K_SINK")].value}')"
      [[ "${env}" == "${sink}" ]] && break
      if ((tries == 10)); then
        info "SinkBinding ${name}: ${subject} has no K_SINK yet; nudging the binding"
        k -n "${PLATFORM_NS}" annotate --overwrite sinkbinding "${name}" \
          "storeplatform.io/rebind-at=$(date +%s)" >/dev/null
      fi
      sleep 1
    done
    [[ "${env}" == "${sink}" ]] || die "SinkBinding ${name}: ${subject} has no K_SINK=${sink}"
  done < <(k -n "${PLATFORM_NS}" get sinkbinding -o jsonpath='{range .items[*]}{.metadata.name} {.spec.subject.name} {.status.sinkUri}{"\n"}{end}')
}

dashboard_url() {
  if [[ "${MODE}" == kind ]]; then
    printf 'http://gateway.%s.localhost:%s/\n' "${PLATFORM_NS}" "${KNATIVE_PORT}"
  else
    k -n "${PLATFORM_NS}" get ksvc gateway -o jsonpath='{.status.url}'
    printf '/\n'
  fi
}

check_gateway() {
  local url="$1" host port
  [[ "${MODE}" == kind ]] || return 0
  host="gateway.${PLATFORM_NS}.localhost"
  port="${KNATIVE_PORT}"
  if curl -fsS --max-time 10 --resolve "${host}:${port}:127.0.0.1" "${url}health" >/dev/null; then
    info "gateway answers: ${url}health"
  else
    info "warning: ${url}health does not answer yet (Kourier may need a few more seconds)"
  fi
}

run_embedded() {
  step "No cluster configured and no Docker: running the embedded platform (make dev) instead"
  info "for the Knative deployment, start Docker (kind) or configure a kubectl context"
  exec make -C "${ROOT}" dev
}

main() {
  KUBECTL="$(find_tool kubectl)"
  if [[ -z "${KUBECTL}" ]] && [[ "${UP_TARGET}" == auto ]] && ! have_docker; then
    run_embedded
  fi
  [[ -n "${KUBECTL}" ]] || die "kubectl not found: install it, or run \`make controlplane\` (puts one in ${BIN})"
  choose_target
  [[ "${MODE}" != embedded ]] || run_embedded
  step "Target: ${MODE} (context ${CONTEXT})"
  if [[ "${MODE}" == kind ]]; then
    ensure_kind_cluster
  fi
  build_images
  deliver_images

  if [[ "${MODE}" == kind ]]; then
    if k -n ingress-nginx get deployment ingress-nginx-controller >/dev/null 2>&1; then
      step "ingress-nginx is installed"
    else
      install_ingress_nginx
    fi
  elif ! k get ingressclass nginx >/dev/null 2>&1; then
    info "warning: no IngressClass nginx here; stores' Ingresses (store-chart className) will not be served"
  fi

  ensure_knative
  if [[ "${MODE}" == kind ]]; then
    configure_knative_for_kind
  fi
  enable_oidc

  apply_platform

  local url
  url="$(dashboard_url)"
  check_gateway "${url}"
  step "Ready"
  info "dashboard: ${url}"
  if [[ "${MODE}" == kind ]]; then
    info "stores:    http://<store-name>.localhost$([[ "${HTTP_PORT}" == 80 ]] || printf ':%s' "${HTTP_PORT}")/"
  fi
  info "token:     the dashboard asks for it; read it with"
  info "           $(token_command)"
  info "kubectl:   kubectl --context ${CONTEXT} -n ${PLATFORM_NS} get ksvc,broker,trigger"
  if created_here "${CONTEXT}"; then
    info "remove:    make down"
  else
    info "remove:    DOWN_CONTEXT=${CONTEXT} make down   (make down touches no context it is not pointed at)"
  fi
}

# Sourcing the script (tests) defines the functions without running anything.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  main "$@"
fi
