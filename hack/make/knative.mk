# Knative: the real-cluster deployment (make up / make down) and the pinned CRDs the
# server-side validation tests install (docs/knative.md).
KNATIVE_SCRIPTS := hack/up.sh hack/down.sh hack/knative-crds/fetch.sh

.PHONY: up
up: ## kind (or the current kubectl context) + ingress-nginx + Knative; build, load, deploy knative/
	hack/up.sh

.PHONY: down
down: ## delete the kind cluster of make up (on another cluster: only the platform's objects)
	hack/down.sh

.PHONY: knative-crds
knative-crds: ## copy the pinned Knative Serving/Eventing CRDs into ~/.cache/storeplatform/knative-crds
	hack/knative-crds/fetch.sh

.PHONY: knative-check
knative-check: venv knative-crds ## shellcheck the scripts, manifest invariants, server-side dry-run of knative/
	shellcheck $(KNATIVE_SCRIPTS)
	$(PY) -m pytest tests/unit/test_knative_manifests.py tests/unit/test_knative_scripts.py \
		tests/unit/test_broker.py tests/integration/test_knative_validation.py $(PYTEST_ARGS)
