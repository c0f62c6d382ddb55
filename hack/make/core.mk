# Core targets: lint, test, dev. (Other parts add their own hack/make/*.mk.)

.PHONY: lint
lint: venv ## ruff over all Python code
	$(VENV)/bin/ruff check .

.PHONY: test
test: venv ## lint + every test suite (unit, chart, integration on a local control plane, browser)
	$(VENV)/bin/ruff check .
	@if [ "$$CI" = "true" ] || command -v go >/dev/null; then $(MAKE) --no-print-directory controlplane knative-crds; \
	 else echo "no Go toolchain: integration tests will skip (install Go, then: make controlplane)"; fi
	$(PY) -m pytest $(PYTEST_ARGS)

.PHONY: test-unit
test-unit: venv ## fast tests only (no control plane, no browser)
	$(PY) -m pytest -m "not integration and not browser" $(PYTEST_ARGS)

.PHONY: dev
dev: venv ## the whole platform on 127.0.0.1: control plane, Knative Eventing, functions, dashboard
	@if command -v go >/dev/null; then $(MAKE) --no-print-directory controlplane knative-crds; fi
	$(PY) -m devstack

.PHONY: bench
bench: venv ## every performance figure in one run, as ratios (docs/benchmarks.md); BENCH_ARGS=--help
	$(PY) -m bench $(BENCH_ARGS)
