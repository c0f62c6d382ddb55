"""The platform core against the real control plane: real RBAC, real Jobs, real helm.

create-store, delete-store and list-stores run in-process (Flask test client) but talk to
the API server as their own ServiceAccounts, with the RBAC from knative/. The runner Job's
pod is run for real by the local job executor, as the runner ServiceAccount.
"""

from __future__ import annotations

import base64
import functools
import json
import subprocess
import time
from pathlib import Path

import pytest
from kubernetes import client

from devstack import bootstrap
from localkube.options import DEFAULT_BIN_DIR
from storeplatform import create_store, delete_store, list_stores
from tests.helpers import encode, error_of

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
NS = "storeplatform"
# The functions run in-process and are sent events directly, as no Broker would: the
# sender check is opted out of (EVENT_AUTH=none); test_event_auth.py covers it.
DIRECT = {"EVENT_AUTH": "none"}
# Every module of the session shares one cluster and its stores: the cap (MAX_STORES, 20 by
# default) is tested on its own (tests/unit/lifecycle/test_capacity.py, test_capacity.py).
RUNNER = {"RUNNER_IMAGE": "storeplatform/helm-runner:dev",
          "RUNNER_CHART_PATH": str(ROOT / "store-chart"), "STORE_VALUES_PROFILE": "local",
          "HELM_TIMEOUT": "3m", "MAX_STORES": 1000} | DIRECT


class Platform:
    def __init__(self, cluster, workdir: Path) -> None:
        self.cluster = cluster
        self.admin = cluster.api_client()
        bootstrap.apply(self.admin, bootstrap.platform_objects())
        admin_kubeconfig = Path(cluster.kubeconfig)
        self.kubeconfigs = {
            fn: str(bootstrap.service_account_kubeconfig(
                self.admin, admin_kubeconfig, NS, f"storeplatform-{fn}",
                workdir / f"{fn}.kubeconfig"))
            for fn in ("create-store", "delete-store", "list-stores")
        }

    def create_app(self, **overrides):
        settings = RUNNER | {"KUBECONFIG": self.kubeconfigs["create-store"]} | overrides
        return create_store.create_app(settings).test_client()

    def delete_app(self):
        return delete_store.create_app({"KUBECONFIG": self.kubeconfigs["delete-store"],
                                        "RUNNER_IMAGE": RUNNER["RUNNER_IMAGE"]} | DIRECT
                                       ).test_client()

    @functools.cached_property
    def list_app(self):
        """One list-stores for the module, as one runs in the cluster (it keeps a watch cache)."""
        return list_stores.create_app({"KUBECONFIG": self.kubeconfigs["list-stores"]} | DIRECT
                                      ).test_client()

    def close(self) -> None:
        """Stop the list-stores watch cache, if one was started (it ends with its user)."""
        if "list_app" in vars(self):
            self.list_app.application.extensions["watch_cache"].stop()

    def stores(self) -> dict[str, dict]:
        headers, body = encode("io.storeplatform.store.list", {}, "binary")
        response = self.list_app.post("/", headers=headers, data=body)
        assert response.status_code == 200, response.data
        return {s["name"]: s for s in json.loads(response.data)["stores"]}

    def wait_for(self, name: str, predicate, timeout: float = 240.0) -> dict | None:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = self.stores().get(name)
            if predicate(last):
                return last
            time.sleep(1)
        raise AssertionError(f"store {name} never got there; last seen: {last}")

    def jobs(self, name: str) -> list:
        return client.BatchV1Api(self.admin).list_namespaced_job(
            NS, label_selector=f"storeplatform.io/store={name}").items


@pytest.fixture(scope="module")
def platform(cluster, tmp_path_factory):
    made = Platform(cluster, tmp_path_factory.mktemp("platform"))
    yield made
    made.close()


def send(app, event_type, data, mode="binary", event_id=None):
    headers, body = encode(event_type, data, mode, subject=data.get("name"), event_id=event_id)
    return app.post("/", headers=headers, data=body)


def helm_releases(cluster, namespace: str) -> list[str]:
    out = subprocess.run([str(DEFAULT_BIN_DIR / "helm"), "list", "--namespace", namespace,
                          "--short", "--kubeconfig", cluster.kubeconfig],
                         capture_output=True, text=True, timeout=60, check=True)
    return out.stdout.split()


@pytest.mark.parametrize("mode", ["binary", "structured"])
def test_create_ready_delete_gone(platform, mode):
    name = f"store-flow-{mode[:3]}"
    create = platform.create_app()
    first = send(create, "io.storeplatform.store.create",
                 {"name": name, "engine": "woocommerce"}, mode, event_id=f"evt-{name}")
    assert (first.status_code, first.data) == (202, b""), first.data  # what the Broker wants

    # Exactly one Job, whose spec holds no password.
    jobs = platform.jobs(name)
    assert [j.metadata.name for j in jobs] == [f"helm-install-{name}"]
    assert jobs[0].metadata.annotations["storeplatform.io/event-id"] == f"evt-{name}"
    core = client.CoreV1Api(platform.admin)
    secret = core.read_namespaced_secret("store-credentials", name)
    job_text = json.dumps(platform.admin.sanitize_for_serialization(jobs[0]))
    leaked = [key for key, value in secret.data.items()  # names only: never print a secret
              if value in job_text or base64.b64decode(value).decode() in job_text]
    assert leaked == []
    values = core.read_namespaced_secret(f"helm-install-{name}", NS)
    assert [o.uid for o in values.metadata.owner_references] == [jobs[0].metadata.uid]

    # Duplicates (same id, then a new id) never make a second Job or new passwords.
    for event_id in (f"evt-{name}", f"evt-{name}-again"):
        again = send(create, "io.storeplatform.store.create",
                     {"name": name, "engine": "woocommerce"}, mode, event_id=event_id)
        assert (again.status_code, again.data) == (202, b"")
    assert [j.metadata.uid for j in platform.jobs(name)] == [jobs[0].metadata.uid]
    assert core.read_namespaced_secret("store-credentials", name).data == secret.data

    store = platform.wait_for(name, lambda s: s and s["status"] in ("ready", "failed"))
    assert store["status"] == "ready", store
    assert store["storefrontUrl"] == f"http://{name}.localhost/"
    assert store["adminUrl"] == f"http://{name}.localhost/wp-admin/"
    assert store["createdAt"]
    assert helm_releases(platform.cluster, name) == [name]

    gone = send(platform.delete_app(), "io.storeplatform.store.delete", {"name": name}, mode)
    assert (gone.status_code, gone.data) == (202, b""), gone.data
    assert [j.metadata.name for j in platform.jobs(name)] == [f"helm-delete-{name}"]
    platform.wait_for(name, lambda s: s is None)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            core.read_namespace(name)
        except client.ApiException as err:
            assert err.status == 404
            break
        time.sleep(1)
    else:
        raise AssertionError(f"namespace {name} still exists")


def test_delete_of_a_missing_store_is_a_no_op(platform):
    response = send(platform.delete_app(), "io.storeplatform.store.delete",
                    {"name": "store-never-was"})
    assert (response.status_code, response.data) == (202, b"")
    assert platform.jobs("store-never-was") == []
    with pytest.raises(client.ApiException) as err:
        client.CoreV1Api(platform.admin).read_namespace("store-never-was", _request_timeout=10)
    assert err.value.status == 404


def test_failed_install_shows_the_runner_reason(platform, tmp_path):
    name = "store-flow-broken"
    create = platform.create_app(RUNNER_CHART_PATH=str(tmp_path / "no-such-chart"),
                                 JOB_BACKOFF_LIMIT=0)
    assert send(create, "io.storeplatform.store.create", {"name": name}).status_code == 202
    store = platform.wait_for(name, lambda s: s and s["status"] == "failed", timeout=120)
    assert store["reason"].startswith("helm upgrade --install failed:"), store
    assert "no-such-chart" in store["reason"]
    # Creating while the delete is under way is refused as retryable.
    assert send(platform.delete_app(), "io.storeplatform.store.delete",
                {"name": name}).status_code == 202
    during = send(platform.create_app(), "io.storeplatform.store.create", {"name": name})
    assert during.status_code == 503
    assert error_of(during)["code"] == "store_deleting"
    platform.wait_for(name, lambda s: s is None, timeout=120)


def test_a_function_refused_by_rbac_says_what_was_refused(platform, tmp_path, caplog):
    """create-store running with the gateway's identity (no Kubernetes rights at all)."""
    gateway_kubeconfig = bootstrap.service_account_kubeconfig(
        platform.admin, Path(platform.cluster.kubeconfig), NS, "storeplatform-gateway",
        tmp_path / "gateway.kubeconfig")
    app = create_store.create_app(RUNNER | {"KUBECONFIG": str(gateway_kubeconfig)}).test_client()
    with caplog.at_level("WARNING", logger="storeplatform.kube"):
        response = send(app, "io.storeplatform.store.create", {"name": "store-flow-forbidden"})
    assert response.status_code == 500
    error = error_of(response)
    assert error["code"] == "kubernetes_forbidden"
    # Who was refused what is in the function's log; the answer (which travels as far as the
    # dashboard's dead letters) carries none of the API server's text.
    assert "storeplatform-gateway" in caplog.text
    assert "storeplatform-gateway" not in error["message"]
    assert platform.jobs("store-flow-forbidden") == []
