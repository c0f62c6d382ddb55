# Dashboard (dashboard/): browser tests in headless Chromium against `make dev`.
# `make test` runs them too; these targets run only them.

.PHONY: test-browser
test-browser: venv ## browser tests only (Debian chromium + Playwright, against a fresh make dev)
	$(PY) -m pytest -m browser tests/browser $(PYTEST_ARGS)

.PHONY: dashboard-screenshot
dashboard-screenshot: venv ## refresh docs/screenshots/dashboard-ready.png and dashboard-500.png from real browser runs
	UPDATE_DOCS_SCREENSHOT=1 $(PY) -m pytest -m browser tests/browser -k "create_then_delete or five_hundred" $(PYTEST_ARGS)
