"""`make dev` end to end over HTTP: gateway -> local Broker (the Triggers in knative/) ->
functions (as their own ServiceAccounts) -> runner Job -> real helm; dead letters; clean stop.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import STACK_STOP_TIMEOUT, launch, require_controlplane
from tests.helpers import encode

pytestmark = pytest.mark.integration


def http(method: str, url: str, body: bytes | None = None, headers: dict | None = None):
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def wait_for(gateway: str, predicate, timeout: float = 180.0):
    deadline = time.monotonic() + timeout
    answer = None
    while time.monotonic() < deadline:
        status, answer = http("GET", gateway + "/stores")
        assert status == 200, answer
        if predicate(answer):
            return answer
        time.sleep(1)
    raise AssertionError(f"condition not met; last answer: {answer}")


def store(answer: dict, name: str) -> dict | None:
    return next((s for s in answer["stores"] if s["name"] == name), None)


def test_store_lifecycle_through_the_gateway(devstack):
    gateway = devstack["gateway"]
    assert http("GET", gateway + "/health") == (200, {"status": "ok"})
    status, body = http("POST", gateway + "/stores/store-dev-e2e", b'{"engine": "woocommerce"}',
                        {"Content-Type": "application/json"})
    assert status == 202 and body["id"], body
    ready = wait_for(gateway, lambda a: (store(a, "store-dev-e2e") or {}).get("status")
                     in ("ready", "failed"))
    assert store(ready, "store-dev-e2e")["status"] == "ready", ready
    assert http("DELETE", gateway + "/stores/store-dev-e2e")[0] == 202
    wait_for(gateway, lambda a: store(a, "store-dev-e2e") is None)


def test_medusa_is_refused_at_the_gateway(devstack):
    status, body = http("POST", devstack["gateway"] + "/stores/store-dev-medusa",
                        b'{"engine": "medusa"}', {"Content-Type": "application/json"})
    assert status == 501 and "not available yet" in body["error"]["message"]


def test_event_sent_straight_to_the_broker_creates_a_store(devstack):
    """Any CloudEvent producer (here: curl-like, structured mode) can create a store."""
    headers, body = encode("io.storeplatform.store.create", {"name": "store-dev-ce"},
                           "structured", subject="store-dev-ce")
    request = urllib.request.Request(devstack["broker"], data=body, headers=headers,
                                     method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 202
    ready = wait_for(devstack["gateway"],
                     lambda a: (store(a, "store-dev-ce") or {}).get("status") == "ready")
    assert store(ready, "store-dev-ce")["storefrontUrl"] == "http://store-dev-ce.localhost/"
    assert http("DELETE", devstack["gateway"] + "/stores/store-dev-ce")[0] == 202
    wait_for(devstack["gateway"], lambda a: store(a, "store-dev-ce") is None)


def test_undeliverable_event_shows_as_a_dead_letter(devstack):
    """create-store refuses a bad name (400, not retried); the dead letter becomes visible."""
    headers, body = encode("io.storeplatform.store.create", {"name": "not-a-store"}, "binary",
                           event_id="dead-letter-probe")
    request = urllib.request.Request(devstack["broker"], data=body, headers=headers,
                                     method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 202
    answer = wait_for(devstack["gateway"], lambda a: any(
        d["id"] == "dead-letter-probe" for d in a["deadLetters"]), timeout=60)
    letter = next(d for d in answer["deadLetters"] if d["id"] == "dead-letter-probe")
    assert letter["type"] == "io.storeplatform.store.create"
    assert "400" in letter["error"]


def test_make_dev_stops_cleanly_leaving_no_process(tmp_path):
    require_controlplane()
    state_dir = tmp_path / "stack"
    proc, endpoints = launch(state_dir, tmp_path / "artifacts")
    assert set(endpoints) >= {"gateway", "broker", "create-store", "delete-store",
                              "list-stores", "dashboard", "kubeconfig"}
    assert Path(endpoints["kubeconfig"]).is_file()
    proc.terminate()
    assert proc.wait(STACK_STOP_TIMEOUT) == 0
    leftover = subprocess.run(["pgrep", "-f", str(state_dir)], capture_output=True, text=True,
                              check=False)
    assert leftover.stdout.strip() == "", f"processes left behind: {leftover.stdout}"
