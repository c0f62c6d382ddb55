"""Faults as a person sees them in the dashboard (headless Chromium against `make dev`):

- list-stores goes down while the dashboard polls: the gateway answers a clear 503, the
  dashboard says so and keeps the list it had, and recovers by itself;
- a delete the real Broker gives up on (delete-store refused by RBAC, retried by the
  Trigger's policy, then dead-lettered) shows on its store as failed, and its Retry button
  sends the delete again (failedAction), which deletes the store once delete-store works.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from devstack import bootstrap
from tests.browser.conftest import free_port, wait_healthy
from tests.browser.sync_api import Page, expect

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "browser"
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))
READY_TIMEOUT_MS = 300_000


def serve(app: str, port: int, env: dict[str, str], log: Path) -> subprocess.Popen:
    full_env = os.environ | {"PYTHONPATH": f"{ROOT / 'functions'}{os.pathsep}{ROOT / 'hack'}"}
    with log.open("a") as out:
        return subprocess.Popen([GUNICORN, "--bind", f"127.0.0.1:{port}", "--workers", "1",
                                 "--threads", "4", app], cwd=ROOT, env=full_env | env,
                                stdout=out, stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


class ListStores:
    """A second, real list-stores (its own ServiceAccount's kubeconfig from `make dev`) that
    the test takes down and brings back on the same port."""

    def __init__(self, devstack: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # Sent list events by the gateway below, which has no OIDC token: no sender check.
        self.env = {"KUBECONFIG": str(Path(devstack["state_dir"]) / "list-stores.kubeconfig"),
                    "PLATFORM_NAMESPACE": "storeplatform", "EVENT_AUTH": "none"}
        self.proc: subprocess.Popen | None = None

    def up(self) -> None:
        self.proc = serve("storeplatform.list_stores:create_app()", self.port, self.env,
                          ARTIFACTS / "list-stores-2.log")
        wait_healthy(self.url, self.proc)

    def down(self) -> None:
        if self.proc is not None:
            stop(self.proc)
            self.proc = None


@pytest.fixture
def flaky_list(devstack: dict[str, str]) -> Iterator[dict[str, object]]:
    """A gateway (with the dashboard, open: GATEWAY_AUTH=none, a loopback-only test process)
    in front of the stack's Broker and ListStores."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    lister = ListStores(devstack)
    lister.up()
    port = free_port()
    gateway = serve("storeplatform.gateway:create_app()", port,
                    {"K_SINK": devstack["broker"], "LIST_URL": lister.url,
                     "DASHBOARD_DIR": str(ROOT / "dashboard"), "GATEWAY_AUTH": "none"},
                    ARTIFACTS / "gateway-2.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, gateway)
        yield {"url": f"{url}/", "api": url, "lister": lister}
    finally:
        stop(gateway)
        lister.down()


def test_list_stores_down_while_the_dashboard_polls(page: Page, flaky_list) -> None:
    lister: ListStores = flaky_list["lister"]  # type: ignore[assignment]
    page.goto(str(flaky_list["url"]))
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    before = page.locator("li.store").count()

    lister.down()
    with urllib.request.urlopen(str(flaky_list["api"]) + "/health", timeout=5) as health:
        assert health.status == 200  # the gateway itself is fine
    try:
        urllib.request.urlopen(str(flaky_list["api"]) + "/stores", timeout=20)
        raise AssertionError("GET /stores answered 2xx with list-stores down")
    except urllib.error.HTTPError as err:
        answer = json.loads(err.read())
        assert err.code == 503
        assert answer["error"]["code"] == "list_unavailable"

    banner = page.locator("#banner")
    expect(banner).to_be_visible(timeout=20_000)
    expect(page.locator("#banner-title")).to_have_text("The gateway answered HTTP 503")
    expect(page.locator("#banner-message")).to_have_text(answer["error"]["message"])
    expect(page.locator("#connection")).to_have_attribute("data-state", "degraded")
    assert page.locator("li.store").count() == before  # what was shown stays
    page.screenshot(path=str(ARTIFACTS / "list-stores-down.png"))

    lister.up()
    expect(banner).to_be_hidden(timeout=20_000)
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")


def rbac_of(api: client.ApiClient, function: str) -> list[dict]:
    return [o for o in bootstrap.platform_objects()
            if o["kind"] in ("ClusterRoleBinding", "RoleBinding")
            and o["metadata"]["name"] == f"storeplatform-{function}"]


def test_a_dead_lettered_delete_is_retried_from_the_dashboard(page: Page,
                                                              devstack: dict[str, str]) -> None:
    name = f"store-retry-{secrets.token_hex(3)}"
    request = urllib.request.Request(f"{devstack['gateway']}/stores/{name}", data=b"{}",
                                     method="POST",
                                     headers={"Content-Type": "application/json",
                                              "Authorization": f"Bearer {devstack['token']}"})
    with urllib.request.urlopen(request, timeout=60) as answer:
        assert answer.status == 202
    page.goto(devstack["dashboard"])
    row = page.locator(f'li.store[data-name="{name}"]')
    badge = row.locator(".badge")
    expect(badge).to_have_text(re.compile("ready|failed"), timeout=READY_TIMEOUT_MS)
    assert badge.inner_text().strip() == "ready", row.inner_text()

    api = config.new_client_from_config(config_file=devstack["kubeconfig"])
    rbac = client.RbacAuthorizationV1Api(api)
    bindings = rbac_of(api, "delete-store")
    rbac.delete_cluster_role_binding("storeplatform-delete-store", _request_timeout=10)
    rbac.delete_namespaced_role_binding("storeplatform-delete-store", "storeplatform",
                                        _request_timeout=10)
    try:
        row.locator(".store__delete").click()
        page.locator("#delete-confirm").click()
        # The in-memory channel answers the gateway only once delete-store has (retries
        # included), so the gateway's 5 s wait may end first: the dialog then shows that
        # answer, and the person closes it. Either way the event is in the Broker.
        dialog, error = page.locator("#delete-dialog"), page.locator("#delete-error")
        deadline = time.monotonic() + 30
        while dialog.is_visible() and time.monotonic() < deadline:
            if error.text_content():
                page.locator("#delete-cancel").click()
            page.wait_for_timeout(200)
        expect(dialog).to_be_hidden()
        # The Broker retries delete-store's 500s (1 + 5 deliveries, backoff 1..16 s), then
        # dead-letters the event; the store says so and offers the retry.
        expect(badge).to_have_text("failed", timeout=150_000)
        expect(row.locator(".store__reason-text")).to_have_text(
            re.compile(r"^delete was not delivered \(HTTP 500 .*kubernetes_forbidden.*\); "
                       r"delete again to retry$"))
        retry = row.locator(".store__retry")
        expect(retry).to_be_visible()
        expect(retry).to_have_attribute("aria-label", f"Retry deleting {name}")
        page.screenshot(path=str(ARTIFACTS / "retry-delete.png"))
    finally:
        bootstrap.apply(api, bindings)  # as knative/210-rbac.yaml has them
    time.sleep(2)  # RBAC caches in the API server catch up
    with page.expect_request(lambda r: r.method in ("DELETE", "POST")) as sent:
        retry.click()  # failedAction "delete": the retry is a delete, not a create
    assert (sent.value.method, sent.value.url) == ("DELETE",
                                                    f"{devstack['gateway']}/stores/{name}")
    expect(row).to_have_count(0, timeout=240_000)
