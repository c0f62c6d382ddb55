# Dashboard (dashboard/): browser tests in headless Chromium against `make dev`.
# `make test` runs them too; these targets run only them.

.PHONY: test-browser
test-browser: venv ## browser tests only (Debian chromium + Playwright, against a fresh make dev)
	$(PY) -m pytest -m browser tests/browser $(PYTEST_ARGS)

.PHONY: dashboard-screenshot
dashboard-screenshot: venv ## refresh docs/screenshots/dashboard-ready.png from a real browser run
	UPDATE_DOCS_SCREENSHOT=1 $(PY) -m pytest -m browser tests/browser -k create_then_delete $(PYTEST_ARGS)
