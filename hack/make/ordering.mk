# The ordering state machine (tests/integration/test_ordering_machine.py): CI runs a few
# examples with a fixed seed; this runs as many as asked, randomly, shrinking a failure.
EXAMPLES ?= 50

.PHONY: test-ordering
test-ordering: venv ## hypothesis state machine of event ordering, EXAMPLES=n examples (CI: 6)
	ORDERING_EXAMPLES=$(EXAMPLES) $(PY) -m pytest -m integration -s \
		tests/integration/test_ordering_machine.py $(PYTEST_ARGS)
