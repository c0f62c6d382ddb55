import socket
import threading

import pytest
from cloudevents.core.bindings.http import to_binary_event
from werkzeug.wrappers import Response

from storeplatform import config, watchcache
from storeplatform.events import new_event
from storeplatform.lifecycle import deprovision, provision
from tests.helpers import Recorder, receiving
from tests.unit.fakekube import FakeKube

RUNNER = {"RUNNER_IMAGE": "storeplatform/helm-runner:dev"}
STORES = {"stores": [{"name": "store-a", "status": "ready"}], "deadLetters": []}


class Untouchable:
    """Stands in for the Kubernetes verbs where a request must be refused before any API call."""

    timeout = 1.0

    def __getattr__(self, name):
        raise AssertionError(f"the Kubernetes API was called ({name}) for a request "
                             "that should have been rejected first")


@pytest.fixture(autouse=True)
def open_harness(monkeypatch):
    """Unit tests drive the apps directly, as no Broker or browser would: the environment
    opts out of the sender checks (EVENT_AUTH=none) and the gateway token (GATEWAY_AUTH=none)
    the way docs/security.md documents. Tests of those checks set them explicitly."""
    monkeypatch.setenv("EVENT_AUTH", "none")
    monkeypatch.setenv("GATEWAY_AUTH", "none")


@pytest.fixture
def untouchable():
    return Untouchable()


@pytest.fixture(autouse=True)
def _stop_watch_caches():
    """A list-stores app made in a test keeps watching the fake verbs: end its threads."""
    yield
    for cache in watchcache.caches():
        cache.stop()


@pytest.fixture
def fake_kube():
    return FakeKube()


@pytest.fixture
def create_settings():
    """create-store's settings as it loads them, with no environment."""
    return config.load(provision.SETTINGS, RUNNER, environ={})


@pytest.fixture
def delete_settings():
    return config.load(deprovision.SETTINGS, RUNNER, environ={})


def list_reply(_request):
    """list-stores' answer: a store.list.result event carrying STORES."""
    message = to_binary_event(new_event("io.storeplatform.store.list.result", "/t", None, STORES))
    return Response(message.body, status=200, headers=message.headers)


@pytest.fixture
def broker():
    """A real HTTP receiver on 127.0.0.1 standing in for the Broker; answers 202."""
    with receiving(Recorder()) as recorder:
        yield recorder


@pytest.fixture
def lister():
    """A real HTTP receiver on 127.0.0.1 standing in for list-stores."""
    with receiving(Recorder(list_reply)) as recorder:
        yield recorder


@pytest.fixture
def silent_server():
    """A server on 127.0.0.1 that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held, stop = [], threading.Event()

    def accept():
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join(5)
    for conn in held:
        conn.close()
    listener.close()
