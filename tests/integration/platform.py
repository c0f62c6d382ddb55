"""The store functions for real, over HTTP: create-store, delete-store and list-stores under
gunicorn on 127.0.0.1 (as `make dev` runs them), each with a kubeconfig holding only its own
ServiceAccount's token, so knative/ RBAC applies; the runner Jobs they start run for real in
the local job executor (real helm against the API server).

What the ordering scenarios, the fault tests and the state machine share: CloudEvents built
with chosen ids and times (that is how reordering and old-event redelivery are injected),
delivery with the Broker's retry rule, waiting for the cluster to settle, and the list of
everything a store can leave behind.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from cloudevents.core.bindings.http import to_binary_event, to_structured_event
from cloudevents.core.v1.event import CloudEvent
from kubernetes import client

from devstack import bootstrap
from devstack.__main__ import APPS, free_ports, gunicorn_argv, python_env
from localkube.kubeconfig import token_kubeconfig, write_private

ROOT = Path(__file__).resolve().parents[2]
NS = "storeplatform"
FUNCTIONS = ("create-store", "delete-store", "list-stores")
CREATE, DELETE = "io.storeplatform.store.create", "io.storeplatform.store.delete"
# Events are posted here directly, as no Broker would: the sender check is opted out of
# (EVENT_AUTH=none, docs/security.md); tests/integration/test_event_auth.py covers it.
DIRECT = {"EVENT_AUTH": "none"}
# Every module of the session shares one cluster and its stores: the cap (MAX_STORES) is
# tested on its own.
RUNNER = {"RUNNER_IMAGE": "storeplatform/helm-runner:dev", "PLATFORM_NAMESPACE": NS,
          "HELM_TIMEOUT": "3m"} | DIRECT
SETTINGS = {
    "create-store": RUNNER | {"RUNNER_CHART_PATH": str(ROOT / "store-chart"),
                              "STORE_VALUES_PROFILE": "local", "MAX_STORES": 1000},
    "delete-store": RUNNER,
    "list-stores": {"PLATFORM_NAMESPACE": NS} | DIRECT,
}
RETRIED = {404, 408, 409, 429}  # and every 5xx: what the Broker retries (docs/contract.md)


@dataclass(frozen=True)
class Event:
    """One create or delete request, with the id and time a producer gave it."""

    type: str
    store: str
    id: str
    time: datetime

    @property
    def action(self) -> str:
        return "create" if self.type == CREATE else "delete"

    def encode(self, mode: str = "binary") -> tuple[dict[str, str], bytes]:
        data: dict[str, Any] = {"name": self.store}
        if self.type == CREATE:
            data["engine"] = "woocommerce"
        event = CloudEvent(attributes={"type": self.type, "source": "/tests/ordering",
                                       "id": self.id, "subject": self.store, "time": self.time,
                                       "datacontenttype": "application/json"}, data=data)
        message = to_binary_event(event) if mode == "binary" else to_structured_event(event)
        return dict(message.headers), message.body


def http(method: str, url: str, body: bytes | None = None, headers: dict | None = None,
         timeout: float = 30.0) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def service_account_kubeconfig(admin: client.ApiClient, cluster, function: str, path: Path,
                               server: str | None = None) -> Path:
    """The function's own identity; `server` replaces the API server (the fault proxy)."""
    kubeconfig = bootstrap.service_account_kubeconfig(
        admin, Path(cluster.kubeconfig), NS, f"storeplatform-{function}", path)
    if server:
        config = yaml.safe_load(kubeconfig.read_text())
        token = config["users"][0]["user"]["token"]
        _, ca = bootstrap.cluster_endpoint(Path(cluster.kubeconfig))
        write_private(kubeconfig, token_kubeconfig(server, ca, f"{NS}:{function}", token))
    return kubeconfig


class Functions:
    """The three functions under gunicorn; `url[name]`, logs in `workdir/<name>.log`."""

    def __init__(self, cluster, workdir: Path, overrides: dict[str, dict[str, Any]] | None = None,
                 api_server: str | None = None) -> None:
        self.cluster = cluster
        self.admin = cluster.api_client()
        bootstrap.apply(self.admin, bootstrap.platform_objects())
        self.workdir = workdir
        self.procs: dict[str, subprocess.Popen] = {}
        ports = free_ports(len(FUNCTIONS))
        self.url = {name: f"http://127.0.0.1:{port}" for name, port in zip(FUNCTIONS, ports,
                                                                           strict=True)}
        for name, port in zip(FUNCTIONS, ports, strict=True):
            kubeconfig = service_account_kubeconfig(self.admin, cluster, name,
                                                    workdir / f"{name}.kubeconfig", api_server)
            env = {key: str(value) for key, value in
                   (SETTINGS[name] | (overrides or {}).get(name, {})).items()}
            env["KUBECONFIG"] = str(kubeconfig)
            out = (workdir / f"{name}.log").open("ab")
            self.procs[name] = subprocess.Popen(
                gunicorn_argv(APPS[name], port, workers=2, threads=4), env=python_env(env),
                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        for name in FUNCTIONS:
            self._wait_healthy(name)

    def _wait_healthy(self, name: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.procs[name].poll() is not None:
                raise RuntimeError(f"{name} exited: {self.log(name)[-2000:]}")
            try:
                if http("GET", self.url[name] + "/health", timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{name} not healthy after {timeout} s")

    def log(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text(errors="replace")

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self.admin.close()

    # ---------------------------------------------------------------- delivering events
    def send(self, event: Event, mode: str = "binary") -> tuple[int, bytes]:
        """One delivery, as the Broker makes it."""
        function = "create-store" if event.type == CREATE else "delete-store"
        headers, body = event.encode(mode)
        return http("POST", self.url[function], body, headers, timeout=60)

    def deliver(self, event: Event, mode: str = "binary", patience: float = 180.0,
                ) -> tuple[int, bytes, int]:
        """Deliver like the Broker, but patiently: retry what it retries, with backoff,
        until a final answer. (status, body, deliveries)."""
        deadline, delay, count = time.monotonic() + patience, 0.5, 0
        while True:
            status, body = self.send(event, mode)
            count += 1
            if status < 300 or (status < 500 and status not in RETRIED):
                return status, body, count
            if time.monotonic() > deadline:
                raise AssertionError(f"{event} still answered {status} {body[:300]!r} after "
                                     f"{count} deliveries")
            time.sleep(delay)
            delay = min(delay * 2, 5.0)

    # ---------------------------------------------------------------- reading the platform
    def stores(self) -> dict[str, dict[str, Any]]:
        headers, body = list_event()
        status, answer = http("POST", self.url["list-stores"], body, headers)
        assert status == 200, answer
        return {s["name"]: s for s in json.loads(answer)["stores"]}

    def settle(self, names: list[str], timeout: float = 240.0) -> dict[str, dict | None]:
        """Wait until no store of `names` is provisioning or deleting and no runner Job of
        theirs runs; their views (None: no such store)."""
        deadline = time.monotonic() + timeout
        while True:
            views = self.stores()
            current = {name: views.get(name) for name in names}
            busy = [n for n, v in current.items() if v and v["status"] in ("provisioning",
                                                                             "deleting")]
            running = [j.metadata.name for j in self.jobs(names) if not _finished(j)]
            if not busy and not running:
                return current
            if time.monotonic() > deadline:
                raise AssertionError(f"not settled after {timeout} s: busy {busy}, "
                                     f"running {running}; {current}")
            time.sleep(1.0)

    def jobs(self, names: list[str]) -> list[Any]:
        items = client.BatchV1Api(self.admin).list_namespaced_job(
            NS, label_selector="app.kubernetes.io/component=helm-runner",
            _request_timeout=10).items
        return [j for j in items if j.metadata.labels.get("storeplatform.io/store") in names]

    def leftovers(self, names: list[str]) -> dict[str, list[str]]:
        """Everything of these stores still on the cluster, by kind: what a test lists."""
        core, rbac = client.CoreV1Api(self.admin), client.RbacAuthorizationV1Api(self.admin)
        def ours(items):
            return sorted(i.metadata.name for i in items
                          if (i.metadata.labels or {}).get("storeplatform.io/store") in names)

        namespaces = [n.metadata.name for n in core.list_namespace(_request_timeout=10).items
                      if n.metadata.name in names]
        bindings = []
        for namespace in namespaces:
            bindings += [f"{namespace}/{b.metadata.name}" for b in
                         rbac.list_namespaced_role_binding(namespace, _request_timeout=10).items]
        accounts = [a.metadata.name for a in
                    core.list_namespaced_service_account(NS, _request_timeout=10).items
                    if a.metadata.name in {f"storeplatform-runner-{n}" for n in names}]
        return {
            "namespaces": sorted(namespaces),
            "jobs": sorted(j.metadata.name for j in self.jobs(names)),
            "secrets": ours(core.list_namespaced_secret(NS, _request_timeout=10).items),
            "runner accounts": sorted(accounts),
            "intent records": ours(core.list_namespaced_config_map(NS,
                                                                   _request_timeout=10).items),
            "role bindings": sorted(bindings),
            "runner pods": ours(core.list_namespaced_pod(NS, _request_timeout=10).items),
        }

    def intent(self, store: str) -> dict[str, str] | None:
        try:
            return client.CoreV1Api(self.admin).read_namespaced_config_map(
                f"intent-{store}", NS, _request_timeout=10).data
        except client.ApiException as err:
            if err.status == 404:
                return None
            raise


def _finished(job: Any) -> bool:
    return any(c.type in ("Complete", "Failed") and c.status == "True"
               for c in (job.status.conditions or []))


def list_event() -> tuple[dict[str, str], bytes]:
    event = CloudEvent(attributes={"type": "io.storeplatform.store.list", "source": "/tests",
                                   "datacontenttype": "application/json"}, data={})
    message = to_binary_event(event)
    return dict(message.headers), message.body


@contextmanager
def running(cluster, workdir: Path, **kwargs: Any) -> Iterator[Functions]:
    functions = Functions(cluster, workdir, **kwargs)
    try:
        yield functions
    finally:
        functions.stop()


def now() -> datetime:
    return datetime.now(UTC)
