"""list-stores' watch cache against the real API server, as list-stores' own ServiceAccount:
a cold start lists everything, changes arrive by watch with no list call, a dropped
connection or an API server restart makes it list again (a version from before the restart
is 410 Gone), and what it answers is what the six list calls answer on the same objects.
The informer's answer to a 410 in the middle of a watch: tests/unit/test_watchcache.py.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import urllib3
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from devstack import bootstrap
from localkube import components, procs
from storeplatform import contract, deadletters, kube, manifests
from storeplatform.lifecycle import cluster as store_cluster
from storeplatform.watchcache import WatchCache

pytestmark = pytest.mark.integration

NS = "storeplatform"
TIMEOUT = 10


class Relay:
    """A TCP relay on 127.0.0.1 in front of the API server (TLS passes through), which can
    drop every connection and refuse new ones: a network fault with real parts."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.refusing = False
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            if self.refusing:
                conn.close()
                continue
            upstream = socket.create_connection(self.upstream, timeout=TIMEOUT)
            upstream.settimeout(None)
            with self._lock:
                self._conns += [conn, upstream]
            for src, dst in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def drop_all(self) -> None:
        with self._lock:
            conns, self._conns = self._conns, []
        for sock in conns:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self._listener.close()
        self.drop_all()


@pytest.fixture(scope="module")
def lister_kubeconfig(cluster, tmp_path_factory) -> Path:
    admin = cluster.api_client()
    bootstrap.apply(admin, bootstrap.platform_objects())
    return bootstrap.service_account_kubeconfig(
        admin, Path(cluster.kubeconfig), NS, "storeplatform-list-stores",
        tmp_path_factory.mktemp("watchcache") / "list.kubeconfig")


@pytest.fixture
def relayed_kubeconfig(lister_kubeconfig, tmp_path) -> Iterator[tuple[Path, Relay]]:
    """list-stores' kubeconfig, pointing at a Relay to the API server."""
    config = yaml.safe_load(lister_kubeconfig.read_text())
    server = config["clusters"][0]["cluster"]["server"]
    host, port = server.removeprefix("https://").rsplit(":", 1)
    relay = Relay((host, int(port)))
    config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{relay.port}"
    path = tmp_path / "relayed.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    try:
        yield path, relay
    finally:
        relay.close()


@pytest.fixture
def caches() -> Iterator:
    made: list[WatchCache] = []

    def make(kubeconfig: Path, **options) -> WatchCache:
        verbs = kube.connect({"KUBECONFIG": str(kubeconfig), "KUBE_TIMEOUT": 10.0})
        cache = WatchCache(verbs, store_cluster.selections(NS), **options)
        made.append(cache)
        return cache

    yield make
    for cache in made:
        cache.stop()


@pytest.fixture
def stores(admin_api) -> Iterator:
    """Makes store-like objects straight in the API (several states); deletes them after."""
    core, apps = client.CoreV1Api(admin_api), client.AppsV1Api(admin_api)
    made: list[str] = []

    def make(phase: str | None = None, reason: str | None = None, replicas: int = 0,
             host: bool = True, tls: bool = False) -> str:
        name = f"store-wc-{uuid.uuid4().hex[:6]}"
        namespace = manifests.namespace(name, "woocommerce", datetime.now(UTC))
        if phase:
            namespace["metadata"]["annotations"] |= {contract.ANNOTATION_PHASE: phase,
                                                      contract.ANNOTATION_REASON: reason}
        core.create_namespace(namespace, _request_timeout=TIMEOUT)
        made.append(name)
        apps.create_namespaced_deployment(name, deployment(name, replicas),
                                          _request_timeout=TIMEOUT)
        if host:
            client.NetworkingV1Api(admin_api).create_namespaced_ingress(
                name, ingress(name, tls), _request_timeout=TIMEOUT)
        return name

    yield make
    for name in made:
        try:
            core.delete_namespace(name, _request_timeout=TIMEOUT)
        except ApiException as err:
            if err.status != 404:  # a test deleted it
                raise
    # Gone, not just going: store namespaces count against the platform's store cap, which
    # the tests that come after run into.
    eventually(lambda: not [name for name in made if _exists(core, name)], timeout=120)


def _exists(core, name: str) -> bool:
    try:
        core.read_namespace(name, _request_timeout=TIMEOUT)
    except ApiException as err:
        if err.status == 404:
            return False
        raise
    return True


def deployment(store: str, replicas: int) -> dict:
    labels = {contract.LABEL_STORE: store, contract.LABEL_COMPONENT: "wordpress",
              "app.kubernetes.io/instance": store}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": f"{store}-wordpress", "labels": labels},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                         {"name": "wordpress", "image": "wordpress:6"}]}}}}


def ingress(store: str, tls: bool) -> dict:
    host = f"{store}.localhost"
    spec: dict = {"rules": [{"host": host, "http": {"paths": [{
        "path": "/", "pathType": "Prefix", "backend": {"service": {
            "name": f"{store}-wordpress", "port": {"number": 80}}}}]}}]}
    if tls:
        spec["tls"] = [{"hosts": [host], "secretName": f"{store}-tls"}]
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": store, "labels": {contract.LABEL_STORE: store}}, "spec": spec}


def runner_objects(admin_api, store: str) -> None:
    """A suspended install Job (running, to the view) and its runner pod that ended, its
    status written as the kubelet would."""
    labels = {contract.LABEL_COMPONENT: contract.RUNNER_COMPONENT, contract.LABEL_STORE: store}
    name = contract.job_name(contract.ACTION_INSTALL, store)
    client.BatchV1Api(admin_api).create_namespaced_job(NS, {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "labels": labels},
        "spec": {"suspend": True, "backoffLimit": 2, "template": {
            "metadata": {"labels": labels}, "spec": {"restartPolicy": "Never", "containers": [
                {"name": "runner", "image": "storeplatform/helm-runner:dev"}]}}}},
        _request_timeout=TIMEOUT)
    core = client.CoreV1Api(admin_api)
    core.create_namespaced_pod(NS, {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"{name}-x", "labels": labels | {"job-name": name}},
        "spec": {"schedulerName": "not-scheduled", "restartPolicy": "Never",
                 "securityContext": {"runAsNonRoot": True, "runAsUser": 65532,
                                     "seccompProfile": {"type": "RuntimeDefault"}},
                 "containers": [{"name": "runner", "image": "storeplatform/helm-runner:dev",
                                 "securityContext": {"allowPrivilegeEscalation": False,
                                                     "capabilities": {"drop": ["ALL"]}}}]}},
        _request_timeout=TIMEOUT)
    core.patch_namespaced_pod_status(f"{name}-x", NS, {"status": {
        "phase": "Failed", "containerStatuses": [{
            "name": "runner", "image": "storeplatform/helm-runner:dev", "imageID": "",
            "ready": False, "restartCount": 0, "state": {"terminated": {
                "exitCode": 1, "message": "helm: chart failed\n",
                "finishedAt": "2026-01-01T00:00:00Z"}}}]}}, _request_timeout=TIMEOUT)


def remove_runner_objects(admin_api, store: str) -> None:
    name = contract.job_name(contract.ACTION_INSTALL, store)
    client.BatchV1Api(admin_api).delete_namespaced_job(
        name, NS, propagation_policy="Background", _request_timeout=TIMEOUT)
    client.CoreV1Api(admin_api).delete_namespaced_pod(f"{name}-x", NS, grace_period_seconds=0,
                                                       _request_timeout=TIMEOUT)


def dead_letter(admin_api, subject: str) -> None:
    letter = {"id": f"e-{subject}", "type": contract.CREATE, "subject": subject,
              "time": "2026-01-01T00:00:00Z", "error": "HTTP 500"}
    client.CoreV1Api(admin_api).create_namespaced_event(
        NS, deadletters.kube_event(letter, NS), _request_timeout=TIMEOUT)


def listed_view(kubeconfig: Path) -> dict:
    """What the six list calls answer now."""
    verbs = kube.connect({"KUBECONFIG": str(kubeconfig), "KUBE_TIMEOUT": 10.0})
    return store_cluster.view(store_cluster.read_state(verbs, NS))


def cached_view(cache: WatchCache) -> dict:
    return store_cluster.view(cache.snapshot()[1])


def agree(cache: WatchCache, kubeconfig: Path, timeout: float = 15.0) -> dict:
    """Wait until the cache's view is the six lists' view (objects settle: controllers
    write status); return it."""
    deadline = time.monotonic() + timeout
    while True:
        listed, cached = listed_view(kubeconfig), cached_view(cache)
        if listed == cached:
            return cached
        assert time.monotonic() < deadline, (listed, cached)
        time.sleep(0.2)


def lists_made(cache: WatchCache) -> dict[str, int]:
    return {name: stat["lists"] for name, stat in cache.stats().items()}


def eventually(check, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "never happened"
        time.sleep(0.1)


def test_a_cold_start_lists_everything_and_answers_as_the_six_lists_do(
        admin_api, lister_kubeconfig, caches, stores):
    made = [stores(), stores(phase="ready", replicas=1, tls=True),
            stores(phase="failed", reason="helm: timed out"), stores(phase="deleting"),
            stores(host=False)]
    runner_objects(admin_api, made[0])
    dead_letter(admin_api, made[2])
    try:
        cache = caches(lister_kubeconfig)
        view = agree(cache, lister_kubeconfig)
        by_name = {s["name"]: s for s in view["stores"]}
        assert set(made) <= set(by_name)
        assert by_name[made[0]]["status"] == "provisioning"  # its Job is still on
        assert by_name[made[0]]["progress"] == ("helm install finished; recording the result "
                                                "(attempt 1 of 3)")  # from its runner pod
        assert by_name[made[2]]["reason"] == "helm: timed out"
        assert by_name[made[3]]["status"] == "deleting"
        assert by_name[made[1]]["storefrontUrl"].startswith("https://")
        assert by_name[made[4]]["storefrontUrl"] is None
        assert {d["subject"] for d in view["deadLetters"]} >= {made[2]}
        assert set(lists_made(cache).values()) == {1}
    finally:
        remove_runner_objects(admin_api, made[0])


def test_in_steady_state_a_read_makes_no_api_call(lister_kubeconfig, caches, stores):
    stores()
    verbs = kube.connect({"KUBECONFIG": str(lister_kubeconfig), "KUBE_TIMEOUT": 10.0})
    calls: list[str] = []
    api = verbs._apis["core"].api_client
    original = api.call_api
    api.call_api = lambda path, method, *a, **kw: calls.append(f"{method} {path}") or original(
        path, method, *a, **kw)
    cache = WatchCache(verbs, store_cluster.selections(NS))
    try:
        cache.snapshot()
        eventually(lambda: sum(s["watches"] for s in cache.stats().values()) == 6)
        before = len(calls)
        for _ in range(200):
            store_cluster.view(cache.snapshot()[1])
        assert calls[before:] == []
    finally:
        cache.stop()


def test_changes_arrive_by_watch_without_a_list(admin_api, lister_kubeconfig, caches, stores):
    kept, gone = stores(), stores(replicas=1)
    cache = caches(lister_kubeconfig)
    agree(cache, lister_kubeconfig)
    lists = lists_made(cache)
    core = client.CoreV1Api(admin_api)
    core.patch_namespace(kept, {"metadata": {"annotations": {
        contract.ANNOTATION_PHASE: "failed", contract.ANNOTATION_REASON: "changed"}}},
        _request_timeout=TIMEOUT)
    client.NetworkingV1Api(admin_api).delete_namespaced_ingress(gone, gone,
                                                                _request_timeout=TIMEOUT)
    added = stores(phase="ready")
    view = agree(cache, lister_kubeconfig)
    by_name = {s["name"]: s for s in view["stores"]}
    assert by_name[kept]["reason"] == "changed"
    assert by_name[gone]["storefrontUrl"] is None
    assert added in by_name
    assert lists_made(cache) == lists


def test_a_dropped_connection_makes_it_list_again(admin_api, relayed_kubeconfig, caches,
                                                  stores, lister_kubeconfig):
    kubeconfig, relay = relayed_kubeconfig
    before, during = stores(), None
    cache = caches(kubeconfig)
    agree(cache, lister_kubeconfig)
    relay.refusing = True
    relay.drop_all()
    # While it cannot reach the API server: one store goes, another comes.
    client.CoreV1Api(admin_api).delete_namespace(before, _request_timeout=TIMEOUT)
    during = stores()
    time.sleep(1.0)
    assert before in {s["name"] for s in cached_view(cache)["stores"]}  # not seen yet
    relay.refusing = False
    eventually(lambda: min(lists_made(cache).values()) >= 2)
    view = agree(cache, lister_kubeconfig)
    names = {s["name"] for s in view["stores"]}
    assert during in names
    assert before not in names or next(
        s for s in view["stores"] if s["name"] == before)["status"] == "deleting"


def restart_apiserver(cluster) -> None:
    """Stop kube-apiserver and start it again with the same command line: every watch
    breaks, and the new server's watch cache begins at the current resource version."""
    layout = components.Layout(Path(cluster.state_dir))
    pid_file = layout.pid_file("kube-apiserver")
    pid, _ = procs.read_pid(pid_file)
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    procs.stop(pid_file)
    procs.spawn([arg.decode() for arg in argv], layout.log_file("kube-apiserver"), pid_file,
                cwd=layout.state_dir)
    core = client.CoreV1Api(cluster.api_client())

    def serving() -> bool:
        try:
            core.list_namespace(limit=1, _request_timeout=2)
        except (ApiException, OSError, urllib3.exceptions.HTTPError):
            return False
        return True

    eventually(serving, timeout=60)


def test_after_an_api_server_restart_it_lists_again_and_old_versions_are_gone(
        cluster, lister_kubeconfig, caches, stores):
    verbs = kube.connect({"KUBECONFIG": str(lister_kubeconfig), "KUBE_TIMEOUT": 10.0})
    selection = store_cluster.selections(NS)["namespaces"]
    cache = caches(lister_kubeconfig)
    agree(cache, lister_kubeconfig)
    _, version = verbs.list_versioned(selection)
    stores()  # the cluster moves on after that version
    restart_apiserver(cluster)
    eventually(lambda: min(lists_made(cache).values()) >= 2, timeout=30)
    added = stores()
    view = agree(cache, lister_kubeconfig)
    assert added in {s["name"] for s in view["stores"]}
    # A watch from before the restart: the new watch cache does not reach back that far.
    with pytest.raises(kube.Expired):
        for _ in verbs.watch(selection, version, 5):
            pass
