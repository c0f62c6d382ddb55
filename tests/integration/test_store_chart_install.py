"""store-chart on the real local API server: install with each values profile exactly as
the runner does (`helm upgrade --install --wait=watcher`), then uninstall.

The API server admits or refuses every object for real (schemas, ResourceQuota,
LimitRange, PodSecurity `restricted` on the namespace); KWOK makes the pods Ready and
completes the set-up hook Job's pod; the localkube provisioner binds the claims.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import storechart
import yaml
from kubernetes import client, dynamic
from kubernetes.client.exceptions import ApiException

from localkube.bootstrap import PROVISIONER
from storeplatform import manifests

pytestmark = pytest.mark.integration

PSA_RESTRICTED = {f"pod-security.kubernetes.io/{mode}": "restricted"
                  for mode in ("enforce", "audit", "warn")}
HELM_TIMEOUT = "4m"
HELM_TIMEOUT_SECONDS = 300
GONE_TIMEOUT = 90.0


@pytest.fixture(scope="module")
def helm() -> Path:
    found = storechart.find_helm()
    if not found:
        pytest.fail("helm not found: run `hack/controlplane/build.sh helm-kubectl`", pytrace=False)
    return found


@pytest.fixture(scope="module")
def storage_classes(admin_api: client.ApiClient) -> Iterator[None]:
    """Every StorageClass a profile names, served by the localkube provisioner, so the
    production values install unmodified (the default class covers the local profile)."""
    storage = client.StorageV1Api(admin_api)
    created = []
    for profile in storechart.PROFILES:
        values = yaml.safe_load(storechart.profile_values(profile).read_text())
        name = values.get("persistence", {}).get("storageClass")
        if not name:
            continue
        try:
            storage.create_storage_class({
                "metadata": {"name": name}, "provisioner": PROVISIONER,
                "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate"},
                _request_timeout=10)
            created.append(name)
        except ApiException as err:
            if err.status != 409:
                raise
    yield
    for name in created:
        storage.delete_storage_class(name, _request_timeout=10)


def manifest_objects(helm: Path, store: str, kubeconfig: str) -> list[dict[str, Any]]:
    result = storechart.run_helm(helm, ["get", "manifest", store, "--namespace", store],
                                 kubeconfig=kubeconfig)
    assert result.returncode == 0, result.stderr
    return storechart.documents(result.stdout)


def read_object(api: dynamic.DynamicClient, obj: dict[str, Any]) -> Any | None:
    resource = api.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
    try:
        return resource.get(name=obj["metadata"]["name"], namespace=obj["metadata"]["namespace"])
    except dynamic.exceptions.NotFoundError:
        return None


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(1)


@pytest.mark.parametrize("profile", storechart.PROFILES)
def test_install_then_uninstall_leaves_nothing(
        profile: str, helm: Path, cluster: Any, admin_api: client.ApiClient,
        new_namespace: Callable[..., str], storage_classes: None, tmp_path: Path) -> None:
    store = new_namespace("store", labels=PSA_RESTRICTED)
    core, apps = client.CoreV1Api(admin_api), client.AppsV1Api(admin_api)
    api = dynamic.DynamicClient(admin_api)
    # The Secret as the create function makes it: fresh random credentials.
    core.create_namespaced_secret(store, manifests.credentials_secret(store, "woocommerce"),
                                  _request_timeout=10)
    platform_values = tmp_path / "platform-values.yaml"
    platform_values.write_text(yaml.safe_dump(manifests.chart_values(store, "woocommerce", None)))

    install = storechart.run_helm(helm, [
        "upgrade", "--install", store, str(storechart.CHART_DIR), "--namespace", store,
        "--values", str(storechart.profile_values(profile)), "--values", str(platform_values),
        "--wait=watcher", "--timeout", HELM_TIMEOUT], kubeconfig=cluster.kubeconfig,
        timeout=HELM_TIMEOUT_SECONDS)
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    assert "PodSecurity" not in install.stderr, install.stderr

    objects = manifest_objects(helm, store, cluster.kubeconfig)
    assert len(objects) >= 18
    for obj in objects:
        assert read_object(api, obj) is not None, f"{obj['kind']}/{obj['metadata']['name']}"

    wordpress = apps.read_namespaced_deployment(f"{store}-wordpress", store, _request_timeout=10)
    assert wordpress.status.ready_replicas == wordpress.spec.replicas
    mysql = apps.read_namespaced_stateful_set(f"{store}-mysql", store, _request_timeout=10)
    assert mysql.status.ready_replicas == 1
    claims = core.list_namespaced_persistent_volume_claim(store, _request_timeout=10).items
    assert sorted(c.status.phase for c in claims) == ["Bound", "Bound"]
    # The post-install hook ran and succeeded: Helm deletes the Job only on success.
    jobs = client.BatchV1Api(admin_api).list_namespaced_job(store, _request_timeout=10).items
    assert [job.metadata.name for job in jobs] == []
    quota = core.read_namespaced_resource_quota(store, store, _request_timeout=10)
    assert int(quota.status.used["pods"]) == wordpress.spec.replicas + 1

    uninstall = storechart.run_helm(helm, [
        "uninstall", store, "--namespace", store, "--wait=watcher", "--timeout", HELM_TIMEOUT],
        kubeconfig=cluster.kubeconfig, timeout=HELM_TIMEOUT_SECONDS)
    assert uninstall.returncode == 0, uninstall.stderr

    def nothing_left() -> bool:
        pods = core.list_namespaced_pod(store, _request_timeout=10,
                                        label_selector=f"app.kubernetes.io/instance={store}")
        return not pods.items and all(read_object(api, obj) is None for obj in objects)

    wait_until(nothing_left, GONE_TIMEOUT, f"every object of {store} to be deleted")
