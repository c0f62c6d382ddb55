# Store provisioning platform. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
export PYTHONPATH := $(CURDIR)/functions:$(CURDIR)/hack

.PHONY: help
help: ## list targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

# Every package, transitive ones included, comes from the lock file and must match its hash
# (requirements*.txt say what we depend on; `make lock` recomputes the locks from them).
$(VENV)/.installed: requirements.lock requirements-dev.lock
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --require-hashes -r requirements-dev.lock
	touch $@

.PHONY: venv
venv: $(VENV)/.installed ## create the virtualenv from the hash-pinned lock file

PIP_TOOLS_VENV := $(HOME)/.cache/storeplatform/pip-tools-venv
.PHONY: lock
lock: ## recompute requirements.lock and requirements-dev.lock (pip-compile --generate-hashes)
	test -x $(PIP_TOOLS_VENV)/bin/pip-compile || { $(PYTHON) -m venv $(PIP_TOOLS_VENV) && \
	  $(PIP_TOOLS_VENV)/bin/pip install -q pip-tools==7.6.2; }
	$(PIP_TOOLS_VENV)/bin/pip-compile -q --generate-hashes --allow-unsafe --strip-extras --no-emit-find-links \
	  --no-header -o requirements.lock requirements.txt
	$(PIP_TOOLS_VENV)/bin/pip-compile -q --generate-hashes --allow-unsafe --strip-extras --no-emit-find-links \
	  --no-header -o requirements-dev.lock requirements.txt requirements-dev.txt

include $(wildcard hack/make/*.mk)
