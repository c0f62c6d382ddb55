"""The store cap (MAX_STORES) on the real API server: two create-store replicas racing for
the last place, as their own ServiceAccount, with the API server's optimistic concurrency
deciding (lifecycle/capacity.py)."""

from __future__ import annotations

import threading
import time

import pytest
from kubernetes import client

from storeplatform import contract
from tests.helpers import error_of
from tests.integration.test_platform_flow import Platform, send

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def platform(cluster, tmp_path_factory):
    made = Platform(cluster, tmp_path_factory.mktemp("capacity"))
    yield made
    made.close()


def settled_store_count(core: client.CoreV1Api, timeout: float = 180.0) -> int:
    """The store namespaces once none of the session's earlier stores is still going away
    (a namespace that vanishes during the race would free a place)."""
    deadline = time.monotonic() + timeout
    while True:
        namespaces = core.list_namespace(label_selector=contract.MANAGED_SELECTOR).items
        if not any(ns.status.phase == "Terminating" for ns in namespaces):
            return sum(1 for ns in namespaces if (ns.metadata.labels or {}).get(
                contract.LABEL_STORE) == ns.metadata.name)
        assert time.monotonic() < deadline, "store namespaces still terminating"
        time.sleep(1)


def test_two_replicas_racing_for_the_last_place_make_one_store(platform):
    core = client.CoreV1Api(platform.admin)
    cap = settled_store_count(core) + 1  # room for exactly one more
    replicas = [platform.create_app(MAX_STORES=cap, JOB_BACKOFF_LIMIT=0) for _ in range(2)]
    names = ["store-cap-a", "store-cap-b"]
    answers: dict[str, object] = {}
    start = threading.Barrier(2)

    def create(app, name):
        start.wait()
        answers[name] = send(app, contract.CREATE, {"name": name})

    threads = [threading.Thread(target=create, args=pair) for pair in zip(replicas, names,
                                                                            strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    # A replica that lost the write race answers 503 (retry): its retry then finds no room.
    for name in names:
        while answers[name].status_code == 503:
            answers[name] = send(replicas[names.index(name)], contract.CREATE, {"name": name})
    statuses = sorted(answers[name].status_code for name in names)
    assert statuses == [202, 409], {n: answers[n].data for n in names}
    (refused,) = [n for n in names if answers[n].status_code == 409]
    assert error_of(answers[refused])["code"] == "store_limit_reached"
    made = {ns.metadata.name for ns in core.list_namespace(
        label_selector=contract.MANAGED_SELECTOR).items}
    assert refused not in made
    (accepted,) = [n for n in names if n != refused]
    assert accepted in made
    # Deleting it frees the place again.
    assert send(platform.delete_app(), contract.DELETE, {"name": accepted}).status_code == 202
    platform.wait_for(accepted, lambda s: s is None, timeout=180)
    settled_store_count(core)
    assert send(replicas[0], contract.CREATE, {"name": refused}).status_code == 202
    assert send(platform.delete_app(), contract.DELETE, {"name": refused}).status_code == 202
    platform.wait_for(refused, lambda s: s is None, timeout=180)
