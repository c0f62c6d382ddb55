"""list-stores reads a constant number of API calls however many stores exist."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from kubernetes import client

from devstack import bootstrap
from storeplatform import kube, manifests
from storeplatform.lifecycle import cluster as store_cluster

pytestmark = pytest.mark.integration


def count_calls(api: client.ApiClient) -> list[str]:
    calls: list[str] = []
    original = api.call_api

    def counting(resource_path, method, *args, **kwargs):
        calls.append(f"{method} {resource_path}")
        return original(resource_path, method, *args, **kwargs)

    api.call_api = counting
    return calls


def test_list_calls_do_not_grow_with_the_number_of_stores(cluster, tmp_path):
    admin = cluster.api_client()
    bootstrap.apply(admin, bootstrap.platform_objects())
    kubeconfig = bootstrap.service_account_kubeconfig(
        admin, Path(cluster.kubeconfig), "storeplatform",
        "storeplatform-list-stores", tmp_path / "list.kubeconfig")
    api = kube.api_client(str(kubeconfig))
    verbs = kube.Kube(api, 10.0)
    calls = count_calls(api)
    core = client.CoreV1Api(admin)
    counts = {}
    made = []
    for total in (2, 25):
        while len(made) < total:
            name = f"store-scale-{len(made)}"
            core.create_namespace(manifests.namespace(name, "woocommerce", datetime.now(UTC)))
            made.append(name)
        calls.clear()
        stores = store_cluster.view(store_cluster.read_state(verbs, "storeplatform"))["stores"]
        assert {s["name"] for s in stores} >= set(made)
        counts[total] = len(calls)
    for name in made:
        core.delete_namespace(name)
    assert counts[2] == counts[25] == 6, counts
