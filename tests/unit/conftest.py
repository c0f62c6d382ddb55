import pytest


class Untouchable:
    """Stands in for the Kubernetes clients where a request must be refused before any API call."""

    timeout = 1.0

    def __getattr__(self, name):
        raise AssertionError(f"the Kubernetes API was called ({name}) for a request "
                             "that should have been rejected first")


@pytest.fixture
def untouchable():
    return Untouchable()
