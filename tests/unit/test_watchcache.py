"""The watch cache over the fake verbs: list, then follow changes; relist after 410 Gone or a
broken watch; wait for the first sync; refuse to answer when it lost track for too long.

The same against the real API server: tests/integration/test_watchcache.py.
"""

import multiprocessing
import threading
import time

import pytest

from storeplatform.errors import Kind, PlatformError
from storeplatform.kube import Selection
from storeplatform.watchcache import Derived, WatchCache, slim

NAMESPACES = Selection("Namespace", labels="team=a")
PODS = Selection("Pod", "work")


def ns(name, team="a", **extra):
    return {"kind": "Namespace", "metadata": {"name": name, "labels": {"team": team}}, **extra}


def pod(name, namespace="work", phase="Pending"):
    return {"kind": "Pod", "metadata": {"name": name, "namespace": namespace},
            "status": {"phase": phase}}


@pytest.fixture
def caches():
    made = []

    def make(kube, **options):
        cache = WatchCache(kube, {"namespaces": NAMESPACES, "pods": PODS}, **options)
        made.append(cache)
        return cache

    yield make
    for cache in made:
        cache.stop()


def names(snapshot, key):
    return [obj["metadata"]["name"] for obj in snapshot[key]]


def eventually(check, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "never happened"
        time.sleep(0.005)


def test_lists_what_the_selections_cover(fake_kube, caches):
    fake_kube.add(ns("a-1"))
    fake_kube.add(ns("b-1", team="b"))
    fake_kube.add(pod("p-1"))
    fake_kube.add(pod("p-2", namespace="elsewhere"))
    _, snapshot = caches(fake_kube).snapshot()
    assert (names(snapshot, "namespaces"), names(snapshot, "pods")) == (["a-1"], ["p-1"])


def test_follows_additions_changes_and_deletions(fake_kube, caches):
    fake_kube.add(pod("p-1"))
    cache = caches(fake_kube)
    first, _ = cache.snapshot()
    fake_kube.add(pod("p-2"))
    fake_kube.get("Pod", "p-1", "work")["status"]["phase"] = "Running"
    eventually(lambda: len(cache.snapshot()[1]["pods"]) == 2)
    eventually(lambda: cache.snapshot()[1]["pods"][0]["status"]["phase"] == "Running")
    del fake_kube.objects[("Pod", "work", "p-2")]
    eventually(lambda: names(cache.snapshot()[1], "pods") == ["p-1"])
    assert cache.generation() > first


def test_objects_come_in_the_api_server_s_list_order(fake_kube, caches):
    """Keys compare as namespace/name strings: "a-b/x" before "a/x", as etcd orders them."""
    for namespace, name in (("a", "x"), ("a-b", "x"), ("a", "w")):
        fake_kube.add(pod(name, namespace))
    cache = WatchCache(fake_kube, {"pods": Selection("Pod")})
    try:
        pods = cache.snapshot()[1]["pods"]
    finally:
        cache.stop()
    assert [(p["metadata"]["namespace"], p["metadata"]["name"]) for p in pods] == [
        ("a-b", "x"), ("a", "w"), ("a", "x")]


def test_no_api_call_per_read_in_steady_state(fake_kube, caches):
    fake_kube.add(ns("a-1"))
    cache = caches(fake_kube)
    cache.snapshot()
    eventually(lambda: sum(v["watches"] for v in cache.stats().values()) == 2)
    calls = len(fake_kube.calls)
    for _ in range(100):
        cache.snapshot()
    assert fake_kube.calls[calls:] == []


def test_an_expired_watch_lists_again(fake_kube, caches):
    fake_kube.add(pod("p-1"))
    cache = caches(fake_kube)
    cache.snapshot()
    fake_kube.expire_watches()
    fake_kube.add(pod("p-2"))
    eventually(lambda: cache.stats()["pods"]["lists"] == 2)
    eventually(lambda: names(cache.snapshot()[1], "pods") == ["p-1", "p-2"])


def test_a_broken_watch_lists_again_and_sees_what_went_meanwhile(fake_kube, caches):
    fake_kube.add(pod("p-1"))
    fake_kube.add(pod("p-2"))
    cache = caches(fake_kube)
    cache.snapshot()
    fake_kube.refuse_lists = True
    fake_kube.break_watches()
    del fake_kube.objects[("Pod", "work", "p-1")]
    eventually(lambda: cache.stats()["pods"]["lists"] >= 1 and any(
        call == ("list", "Pod", "work") for call in fake_kube.calls[-3:]))
    assert names(cache.snapshot()[1], "pods") == ["p-1", "p-2"]  # stale, but within bounds
    fake_kube.refuse_lists = False
    eventually(lambda: names(cache.snapshot()[1], "pods") == ["p-2"])
    assert cache.stats()["pods"]["lists"] >= 2


def test_lost_track_for_longer_than_max_stale_is_unavailable(fake_kube, caches):
    cache = caches(fake_kube, max_stale=0.2)
    cache.snapshot()
    fake_kube.refuse_lists = True
    fake_kube.break_watches()
    time.sleep(0.4)
    with pytest.raises(PlatformError) as err:
        cache.snapshot()
    assert (err.value.kind, err.value.code) == (Kind.UPSTREAM_UNAVAILABLE,
                                                "kubernetes_unavailable")
    fake_kube.refuse_lists = False
    eventually(lambda: _answers(cache))


def _answers(cache):
    try:
        cache.snapshot()
    except PlatformError:
        return False
    return True


class GatedLists:
    """The fake verbs, with list calls held until the test opens the gate."""

    def __init__(self, kube):
        self.kube, self.gate = kube, threading.Event()

    def list_versioned(self, selection):
        self.gate.wait(10)
        return self.kube.list_versioned(selection)

    def watch(self, *args):
        return self.kube.watch(*args)


def test_a_cold_start_waits_for_the_first_list(fake_kube, caches):
    fake_kube.add(ns("a-1"))
    gated = GatedLists(fake_kube)
    cache = caches(gated, sync_timeout=5.0)
    threading.Timer(0.2, gated.gate.set).start()
    started = time.monotonic()
    assert names(cache.snapshot()[1], "namespaces") == ["a-1"]
    assert time.monotonic() - started >= 0.15


def test_a_cold_start_that_cannot_list_in_time_is_unavailable(fake_kube, caches):
    gated = GatedLists(fake_kube)
    cache = caches(gated, sync_timeout=0.1)
    with pytest.raises(PlatformError) as err:
        cache.snapshot()
    assert err.value.code == "cache_not_synced" and "namespaces" in err.value.message
    gated.gate.set()


def _child_lists(cache, answers):
    answers.put((names(cache.snapshot()[1], "pods"), cache.stats()["pods"]["lists"]))


def test_a_forked_worker_starts_its_own_threads(fake_kube, caches):
    """As gunicorn with --preload: the parent's cache is warm, the child has no threads."""
    fake_kube.add(pod("p-1"))
    cache = caches(fake_kube)
    cache.snapshot()
    fork = multiprocessing.get_context("fork")
    answers = fork.Queue()
    child = fork.Process(target=_child_lists, args=(cache, answers))
    child.start()
    assert answers.get(timeout=20) == (["p-1"], 2)  # its own list, after the parent's one
    child.join(20)
    assert child.exitcode == 0


def test_stop_ends_every_watch(fake_kube):
    cache = WatchCache(fake_kube, {"pods": PODS})
    cache.snapshot()
    eventually(lambda: cache.stats()["pods"]["watches"] == 1)
    started = time.monotonic()
    cache.stop()
    assert time.monotonic() - started < 1
    assert not [t for t in cache._threads if t.is_alive()]


def test_derived_is_computed_once_per_change(fake_kube, caches):
    fake_kube.add(pod("p-1"))
    cache = caches(fake_kube)
    computed = []
    count = Derived(cache, lambda snapshot: computed.append(1) or len(snapshot["pods"]))
    assert [count() for _ in range(10)] == [1] * 10
    assert len(computed) == 1
    fake_kube.add(pod("p-2"))
    eventually(lambda: count() == 2)
    assert len(computed) == 2


def test_slim_drops_managed_fields_only():
    obj = {"kind": "Job", "metadata": {"name": "j", "managedFields": [{"manager": "x"}]},
           "status": {"failed": 1}}
    assert slim(obj) == {"kind": "Job", "metadata": {"name": "j"}, "status": {"failed": 1}}
    assert obj["metadata"]["managedFields"]  # the original is left alone
