"""store-chart on the real local API server, for each values profile: install exactly as
the runner does (`helm upgrade --install --wait=watcher`), then what a store's later
life needs, then uninstall.

The API server admits or refuses every object for real (schemas, ResourceQuota,
LimitRange, PodSecurity `restricted` on the namespace); KWOK makes the pods Ready and
completes Job pods (the set-up hook's, the scheduled job's); the localkube provisioner
binds the claims. No container runs, so what WordPress itself does on an upgrade is
shown by running the installed release's own hook script against the WordPress
stand-in (tests/unit/wordpress_standin), with the env Helm stored for each revision.
"""

from __future__ import annotations

import copy
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
from tests.integration.conftest import create_namespace
from tests.unit.wordpress_standin import (
    Store,
    container_env,
    ok,
    product,
    the_owner_changes_their_shop,
)

pytestmark = pytest.mark.integration

PSA_RESTRICTED = {f"pod-security.kubernetes.io/{mode}": "restricted"
                  for mode in ("enforce", "audit", "warn")}
HELM_TIMEOUT = "4m"
HELM_TIMEOUT_SECONDS = 300
GONE_TIMEOUT = 90.0
# An upgrade as an operator makes one: newer pins and a new WordPress image.
UPGRADE = ["--set", "woocommerce.version=11.2.0", "--set", "woocommerce.storefrontVersion=4.6.2",
           "--set", "wordpress.image.tag=7.2.0-php8.3-apache"]


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


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(1)


class Release:
    """One store installed from the chart, and the clients to look at it."""

    def __init__(self, profile: str, store: str, helm: Path, kubeconfig: str,
                 api: client.ApiClient, values_file: Path) -> None:
        self.profile, self.store, self.helm, self.kubeconfig = profile, store, helm, kubeconfig
        self.values_file = values_file
        self.core, self.apps = client.CoreV1Api(api), client.AppsV1Api(api)
        self.batch, self.dynamic = client.BatchV1Api(api), dynamic.DynamicClient(api)

    def helm_run(self, *args: str) -> str:
        result = storechart.run_helm(self.helm, list(args), kubeconfig=self.kubeconfig,
                                     timeout=HELM_TIMEOUT_SECONDS)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert "PodSecurity" not in result.stderr, result.stderr
        return result.stdout

    def install_or_upgrade(self, *extra: str) -> None:
        """What the runner runs: the profile, then the platform's values."""
        self.helm_run("upgrade", "--install", self.store, str(storechart.CHART_DIR),
                      "--namespace", self.store, "--values",
                      str(storechart.profile_values(self.profile)), "--values",
                      str(self.values_file), *extra, "--wait=watcher", "--timeout", HELM_TIMEOUT)

    def documents(self, what: str, revision: int | None = None) -> list[dict[str, Any]]:
        """`helm get manifest|hooks` of the release (or of one revision)."""
        args = ["get", what, self.store, "--namespace", self.store]
        if revision:
            args += ["--revision", str(revision)]
        return storechart.documents(self.helm_run(*args))

    def read(self, obj: dict[str, Any]) -> Any | None:
        resource = self.dynamic.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        try:
            return resource.get(name=obj["metadata"]["name"], namespace=self.store)
        except dynamic.exceptions.NotFoundError:
            return None

    def create(self, obj: dict[str, Any]) -> Any:
        resource = self.dynamic.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        return resource.create(body=obj, namespace=self.store)

    def quota(self) -> dict[str, str]:
        return self.core.read_namespaced_resource_quota(
            self.store, self.store, _request_timeout=10).status.used

    def running_pods(self) -> list[Any]:
        pods = self.core.list_namespaced_pod(self.store, _request_timeout=10).items
        return [p for p in pods if p.status.phase not in ("Succeeded", "Failed")
                and not p.metadata.deletion_timestamp]

    def delete_pods(self, label_selector: str) -> None:
        self.core.delete_collection_namespaced_pod(
            self.store, label_selector=label_selector, grace_period_seconds=0,
            _request_timeout=10)
        wait_until(lambda: not self.core.list_namespaced_pod(
            self.store, label_selector=label_selector, _request_timeout=10).items,
            GONE_TIMEOUT, f"pods {label_selector} to go")

    def suspend_cron(self, suspend: bool) -> None:
        self.batch.patch_namespaced_cron_job(f"{self.store}-cron", self.store,
                                             {"spec": {"suspend": suspend}}, _request_timeout=10)


def refusal(err: ApiException) -> str:
    """The API server's reason for refusing a request."""
    body = err.body
    return body.decode() if isinstance(body, bytes) else str(body)


@pytest.fixture(scope="module", params=storechart.PROFILES)
def release(request: pytest.FixtureRequest, helm: Path, cluster: Any,
            admin_api: client.ApiClient, storage_classes: None,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Release]:
    """A store installed with one profile; its namespace is removed at the end."""
    core = client.CoreV1Api(admin_api)
    store = create_namespace(core, "store", PSA_RESTRICTED)
    # The Secret as the create function makes it: fresh random credentials.
    core.create_namespaced_secret(store, manifests.credentials_secret(store, "woocommerce"),
                                  _request_timeout=10)
    values = tmp_path_factory.mktemp(store) / "platform-values.yaml"
    values.write_text(yaml.safe_dump(manifests.chart_values(store, "woocommerce", None)))
    installed = Release(request.param, store, helm, cluster.kubeconfig, admin_api, values)
    installed.install_or_upgrade()
    yield installed
    try:
        core.delete_namespace(store, _request_timeout=10)
    except ApiException as err:
        if err.status != 404:
            raise


# --- install ----------------------------------------------------------------------------

def test_every_object_is_admitted_and_the_store_is_ready(release: Release) -> None:
    objects = release.documents("manifest")
    kinds = {obj["kind"] for obj in objects}
    assert {"CronJob", "ResourceQuota", "NetworkPolicy", "StatefulSet", "Deployment"} <= kinds
    for obj in objects:
        assert release.read(obj) is not None, f"{obj['kind']}/{obj['metadata']['name']}"
    store = release.store
    wordpress = release.apps.read_namespaced_deployment(f"{store}-wordpress", store,
                                                        _request_timeout=10)
    assert wordpress.status.ready_replicas == wordpress.spec.replicas
    mysql = release.apps.read_namespaced_stateful_set(f"{store}-mysql", store, _request_timeout=10)
    assert mysql.status.ready_replicas == 1
    claims = release.core.list_namespaced_persistent_volume_claim(store, _request_timeout=10).items
    assert sorted(c.status.phase for c in claims) == ["Bound", "Bound"]
    # The post-install hook ran and succeeded: Helm deletes the set-up Job only on success.
    jobs = release.batch.list_namespaced_job(
        store, label_selector="app.kubernetes.io/component=setup", _request_timeout=10).items
    assert jobs == []
    assert int(release.quota()["pods"]) == len(release.running_pods())
    policies = {obj["metadata"]["name"] for obj in objects if obj["kind"] == "NetworkPolicy"}
    assert (f"{store}-acme-http01-solver" in policies) == (release.profile == "production")


# --- scheduled work -------------------------------------------------------------------

def test_a_scheduled_run_is_admitted_and_completes(release: Release) -> None:
    """A Job made from the CronJob's template, as the CronJob controller (or
    `kubectl create job --from=cronjob/...`) makes it: Pod Security restricted and the
    quota admit its pod, and it completes (KWOK stands in for the container)."""
    store = release.store
    cron = release.batch.read_namespaced_cron_job(f"{store}-cron", store, _request_timeout=10)
    assert cron.spec.concurrency_policy == "Forbid"
    job_template = client.ApiClient().sanitize_for_serialization(cron.spec.job_template)
    name = f"{store}-cron-now"
    release.batch.create_namespaced_job(store, {
        "metadata": {"name": name, "labels": job_template["metadata"]["labels"]},
        "spec": job_template["spec"]}, _request_timeout=10)

    def completed() -> bool:
        status = release.batch.read_namespaced_job_status(name, store, _request_timeout=10).status
        assert not status.failed, status
        return bool(status.succeeded)

    wait_until(completed, GONE_TIMEOUT, f"job {name} to complete")
    pods = release.core.list_namespaced_pod(store, label_selector=f"job-name={name}",
                                            _request_timeout=10).items
    assert len(pods) == 1
    spec = pods[0].spec
    assert spec.security_context.run_as_non_root and spec.security_context.run_as_user == 33
    assert spec.containers[0].command == ["/bin/sh", "/scripts/cron.sh"]
    release.batch.delete_namespaced_job(name, store, propagation_policy="Foreground",
                                        _request_timeout=10)


# --- quota: room for everything at once, and for nothing more -------------------------

def as_pod(template: dict[str, Any], store: str, name: str) -> dict[str, Any]:
    """A bare pod from a workload's pod template, relabelled so no controller adopts it."""
    pod = copy.deepcopy(template)
    pod["metadata"] = {"name": name, "namespace": store,
                       "labels": {"storeplatform.io/quota-probe": "true"}}
    pod["spec"]["restartPolicy"] = "Never"
    pod["spec"].pop("affinity", None)
    return {"apiVersion": "v1", "kind": "Pod", **pod}


def test_the_quota_has_room_for_every_pod_at_once_and_no_more(release: Release) -> None:
    """Next to the running WordPress and MySQL: a replacement WordPress pod (an eviction
    or drain starts it while the old one still terminates), the set-up Job's pod, a
    scheduled run, the helm test pod and, with HTTP-01, cert-manager's solver: all are
    admitted together. One pod more is refused."""
    store = release.store
    release.suspend_cron(True)
    try:
        manifest, hooks = release.documents("manifest"), release.documents("hooks")
        template = {obj["kind"]: obj for obj in manifest + hooks}
        probes = [
            as_pod(template["Deployment"]["spec"]["template"], store, "spare-wordpress"),
            as_pod(template["Job"]["spec"]["template"], store, "setup-now"),
            as_pod(template["CronJob"]["spec"]["jobTemplate"]["spec"]["template"], store,
                   "cron-now"),
            as_pod(template["Pod"], store, "test-now"),
        ]
        if release.profile == "production":
            solver = storechart.acme_solver_pod(store)
            solver["metadata"]["labels"]["storeplatform.io/quota-probe"] = "true"
            probes.append(solver)
        for pod in probes:
            release.create(pod)  # raises on a quota, LimitRange or Pod Security refusal
        used = release.quota()
        hard = release.core.read_namespaced_resource_quota(store, store,
                                                           _request_timeout=10).status.hard
        assert used["pods"] == hard["pods"]
        with pytest.raises(ApiException) as refused:
            release.create(as_pod(template["Deployment"]["spec"]["template"], store, "one-more"))
        assert refused.value.status == 403 and "exceeded quota" in refusal(refused.value)
    finally:
        release.delete_pods("storeplatform.io/quota-probe=true")
        release.suspend_cron(False)


# --- TLS: cert-manager's HTTP-01 solver in the store namespace --------------------------

def test_no_node_ports_and_cert_managers_solver_is_admitted(release: Release) -> None:
    """cert-manager's default solver Service type, NodePort, is refused
    (services.nodeports: 0) in every store, hence serviceType: ClusterIP in the
    ClusterIssuer (docs/store-chart.md). With HTTP-01 (production), the solver pod and
    its ClusterIP Service are admitted: Pod Security, LimitRange and quota."""
    store = release.store
    solver = storechart.acme_solver_pod(store)
    service = {"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "cm-acme-http-solver-svc", "namespace": store},
               "spec": {"type": "NodePort", "selector": solver["metadata"]["labels"],
                        "ports": [{"name": "http", "port": 8089, "targetPort": 8089}]}}
    with pytest.raises(ApiException) as refused:
        release.create(service)
    assert refused.value.status == 403 and "services.nodeports" in refusal(refused.value)
    if release.profile != "production":
        return
    service["spec"]["type"] = "ClusterIP"
    try:
        release.create(solver)
        release.create(service)
    finally:
        release.core.delete_namespaced_service("cm-acme-http-solver-svc", store,
                                               _request_timeout=10)
        release.delete_pods("acme.cert-manager.io/http01-solver=true")


# --- upgrade --------------------------------------------------------------------------

def test_an_upgrade_keeps_the_stores_data_and_the_owners_settings(
        release: Release, tmp_path: Path) -> None:
    store = release.store
    claims_before = {c.metadata.name: c.metadata.uid for c in
                     release.core.list_namespaced_persistent_volume_claim(
                         store, _request_timeout=10).items}
    secret_before = release.core.read_namespaced_secret("store-credentials", store,
                                                        _request_timeout=10).data
    # What the store's first set-up did, with revision 1's own hook and scripts.
    first = Store(tmp_path / "first", release.documents("manifest", 1) + release.documents(
        "hooks", 1))
    ok(first.setup())
    first.change(the_owner_changes_their_shop)

    release.install_or_upgrade(*UPGRADE)

    history = yaml.safe_load(release.helm_run("history", store, "--namespace", store,
                                              "--output", "yaml"))
    assert [h["status"] for h in history][-1] == "deployed" and len(history) == 2
    # The data volumes and the credentials are the same objects: nothing was recreated.
    assert {c.metadata.name: c.metadata.uid for c in
            release.core.list_namespaced_persistent_volume_claim(
                store, _request_timeout=10).items} == claims_before
    assert release.core.read_namespaced_secret("store-credentials", store,
                                               _request_timeout=10).data == secret_before
    # The upgrade's hook ran (and succeeded: Helm deleted it) with the new pins ...
    hooks = release.documents("hooks")
    job = next(obj for obj in hooks if obj["kind"] == "Job")
    env = container_env(job["spec"]["template"]["spec"]["containers"][0])
    assert (env["WC_VERSION"], env["STOREFRONT_VERSION"]) == ("11.2.0", "4.6.2")
    assert release.batch.list_namespaced_job(
        store, label_selector="app.kubernetes.io/component=setup", _request_timeout=10).items == []
    # ... and that hook, run on the store the owner changed, migrates and keeps it.
    upgraded = Store(tmp_path / "upgraded", release.documents("manifest") + hooks)
    upgraded.write(first.read())
    upgraded.change(lambda s: s.update(core_version="7.2.0"))
    ok(upgraded.setup())
    state = upgraded.read()
    assert state["options"]["woocommerce_currency"] == "EUR"
    assert state["active_theme"] == "twentytwentyfive"
    assert product(state, "STARTER-TSHIRT")["status"] == "draft"
    assert state["plugins"]["woocommerce"]["version"] == "11.2.0"
    assert (state["db_schema"], state["wc_db_version"]) == ("7.2.0", "11.2.0")
    assert not any("--force" in call for call in upgraded.calls())


# --- uninstall (last: it removes the release the tests above share) ----------------------

def test_uninstall_leaves_nothing(release: Release) -> None:
    objects = release.documents("manifest")
    release.helm_run("uninstall", release.store, "--namespace", release.store, "--wait=watcher",
                     "--timeout", HELM_TIMEOUT)

    def nothing_left() -> bool:
        pods = release.core.list_namespaced_pod(
            release.store, _request_timeout=10,
            label_selector=f"app.kubernetes.io/instance={release.store}")
        return not pods.items and all(release.read(obj) is None for obj in objects)

    wait_until(nothing_left, GONE_TIMEOUT, f"every object of {release.store} to be deleted")
