# store-chart targets: lint, render, schema, policy scan (checkov), the wp-cli scripts
# against the WordPress stand-in. The checks themselves live in
# tests/unit/test_store_chart*.py so `make test` runs them too.

CHART_DIR := store-chart
CHART_BIN_DIR := $(HOME)/.cache/storeplatform/bin
HELM := $(CHART_BIN_DIR)/helm
CHECKOV_VENV := $(HOME)/.cache/storeplatform/checkov-venv
CHECKOV := $(CHECKOV_VENV)/bin/checkov
CHART_RENDER_DIR := artifacts/chart

# The pinned helm (v4.1.4), built/extracted by the control-plane script when missing.
$(HELM):
	hack/controlplane/build.sh helm-kubectl

.PHONY: helm
helm: $(HELM) ## the pinned helm binary in ~/.cache/storeplatform/bin

# checkov gets its own virtualenv: its pins (packaging<24) conflict with pytest's.
$(CHECKOV_VENV)/.installed: hack/checkov/requirements.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install -q -r hack/checkov/requirements.txt
	touch $@

.PHONY: checkov-venv
checkov-venv: $(CHECKOV_VENV)/.installed ## checkov (pinned) in ~/.cache/storeplatform/checkov-venv

# `make test` runs the chart checks as part of the suite: give it the tools.
test: $(HELM) checkov-venv

.PHONY: chart-check
chart-check: venv $(HELM) checkov-venv ## store-chart: lint --strict, render, schema, sizing, policies, checkov, the wp-cli scripts
	$(PY) -m pytest tests/unit/test_store_chart.py tests/unit/test_store_chart_setup.py $(PYTEST_ARGS)

.PHONY: chart-render
chart-render: $(HELM) ## render store-chart per profile into artifacts/chart/ (as the platform installs it)
	@mkdir -p $(CHART_RENDER_DIR)
	@for profile in local production; do \
	  $(HELM) template store-ci $(CHART_DIR) --namespace store-ci \
	    --values $(CHART_DIR)/values.$$profile.yaml --values $(CHART_DIR)/ci/platform-values.yaml \
	    > $(CHART_RENDER_DIR)/$$profile.yaml && echo "$(CHART_RENDER_DIR)/$$profile.yaml"; \
	done

.PHONY: chart-scan
chart-scan: chart-render checkov-venv ## checkov over the rendered chart, human-readable
	$(CHECKOV) --config-file $(CHART_DIR)/.checkov.yaml --directory $(CHART_RENDER_DIR)

.PHONY: chart-test-install
chart-test-install: venv $(HELM) ## store-chart install, scheduled run, quota, ACME solver, upgrade, uninstall on the local control plane
	$(PY) -m pytest -m integration tests/integration/test_store_chart_install.py $(PYTEST_ARGS)
