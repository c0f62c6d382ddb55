"""The local Kubernetes control plane for the integration tests (one per session).

`cluster` starts etcd, kube-apiserver, kube-controller-manager, kube-scheduler, KWOK
and the localkube agents (job executor, PV provisioner) in a temporary state
directory and stops them all at the end. Without the binaries the tests skip, naming
the command that builds them, except under CI=true, where that is a failure.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from localkube import Cluster, ClusterOptions, start, stop
from tests.conftest import require_controlplane


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A running local cluster: .kubeconfig (str), .api_client(), .state_dir, .server."""
    require_controlplane()
    running = start(ClusterOptions(state_dir=tmp_path_factory.mktemp("localkube")))
    try:
        yield running
    finally:
        stop(running.state_dir)


@pytest.fixture(scope="session")
def admin_api(cluster: Cluster) -> Iterator[client.ApiClient]:
    """One admin ApiClient shared by the session."""
    with cluster.api_client() as api:
        yield api


def create_namespace(core: client.CoreV1Api, prefix: str,
                     labels: dict[str, str] | None = None) -> str:
    """A uniquely named namespace, once pods can be made in it: the controller manager
    has made its default ServiceAccount (pods are refused until then)."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": name, "labels": labels or {}}},
                          _request_timeout=10)
    deadline = time.monotonic() + 30
    while True:
        try:
            core.read_namespaced_service_account("default", name, _request_timeout=10)
            return name
        except ApiException as err:
            if err.status != 404 or time.monotonic() > deadline:
                raise
        time.sleep(0.2)


@pytest.fixture
def new_namespace(admin_api: client.ApiClient) -> Iterator[Callable[..., str]]:
    """Creates uniquely named namespaces (optional labels); deletes them after the test."""
    core = client.CoreV1Api(admin_api)
    created: list[str] = []

    def make(prefix: str = "it", labels: dict[str, str] | None = None) -> str:
        name = create_namespace(core, prefix, labels)
        created.append(name)
        return name

    yield make
    for name in created:
        try:
            core.delete_namespace(name, _request_timeout=10)
        except ApiException as err:
            if err.status != 404:
                raise
