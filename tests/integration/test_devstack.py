"""`make dev` end to end over HTTP: gateway -> the real Knative broker ingress, channel and
filter (the Triggers in knative/) -> functions (as their own ServiceAccounts) -> runner Job
-> real helm; retries and dead letters as the real dispatcher does them; clean stop.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from kubernetes import client, config

from devstack import bootstrap
from tests.conftest import STACK_STOP_TIMEOUT, launch, require_controlplane
from tests.helpers import MODES, encode

pytestmark = pytest.mark.integration


TOKEN: dict[str, str] = {}  # the stack's gateway token, set by the autouse fixture


@pytest.fixture(autouse=True)
def gateway_token(request):
    """Every call to the gateway carries the token `make dev` printed."""
    if "devstack" in request.fixturenames:
        TOKEN["value"] = request.getfixturevalue("devstack")["token"]
    yield
    TOKEN.clear()


def http(method: str, url: str, body: bytes | None = None, headers: dict | None = None,
         timeout: float = 20):
    headers = dict(headers or {})
    if TOKEN and "Authorization" not in headers:
        headers["Authorization"] = f"Bearer {TOKEN['value']}"
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
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


def deliveries(devstack: dict, function: str, event_id: str) -> int:
    """How many times the function received the event (one log line per delivery)."""
    log = Path(devstack["state_dir"]) / "logs" / f"{function}.log"
    return sum(1 for line in log.read_text().splitlines()
               if f"event {event_id} " in line)


def sender_token(devstack: dict) -> str:
    """The gateway's OIDC token for the Broker: a producer the Broker's EventPolicy admits."""
    return (Path(devstack["state_dir"]) / "tokens" / "gateway-broker").read_text()


def post_to_broker(devstack: dict, headers: dict, body: bytes, token: str | None = "") -> int:
    """POST to the real broker ingress, by default as the gateway (token=None: no token)."""
    headers = dict(headers)
    token = sender_token(devstack) if token == "" else token
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(devstack["broker"], data=body, headers=headers,
                                     method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def test_create_and_delete_reach_their_function_exactly_once(devstack):
    gateway = devstack["gateway"]
    assert http("GET", gateway + "/health") == (200, {"status": "ok"})
    status, body = http("POST", gateway + "/stores/store-dev-e2e", b'{"engine": "woocommerce"}',
                        {"Content-Type": "application/json"})
    assert status == 202 and body["id"], body
    ready = wait_for(gateway, lambda a: (store(a, "store-dev-e2e") or {}).get("status")
                     in ("ready", "failed"))
    assert store(ready, "store-dev-e2e")["status"] == "ready", ready
    assert deliveries(devstack, "create-store", body["id"]) == 1
    assert not [d for d in ready["deadLetters"] if d["subject"] == "store-dev-e2e"]

    status, gone = http("DELETE", gateway + "/stores/store-dev-e2e")
    assert status == 202, gone
    answer = wait_for(gateway, lambda a: store(a, "store-dev-e2e") is None)
    assert deliveries(devstack, "delete-store", gone["id"]) == 1
    assert not [d for d in answer["deadLetters"] if d["subject"] == "store-dev-e2e"]


def test_medusa_is_refused_at_the_gateway(devstack):
    status, body = http("POST", devstack["gateway"] + "/stores/store-dev-medusa",
                        b'{"engine": "medusa"}', {"Content-Type": "application/json"})
    assert status == 501 and "not available yet" in body["error"]["message"]


@pytest.mark.parametrize("mode", MODES)
def test_an_admitted_producer_creates_a_store_through_the_real_broker(devstack, mode):
    """A CloudEvent posted straight to the broker ingress, in either mode, by a sender the
    Broker's EventPolicy admits (here with the gateway's own OIDC token)."""
    name = f"store-dev-{mode[:3]}"
    headers, body = encode("io.storeplatform.store.create", {"name": name}, mode,
                           subject=name, event_id=f"producer-{mode}")
    assert post_to_broker(devstack, headers, body) == 202
    ready = wait_for(devstack["gateway"],
                     lambda a: (store(a, name) or {}).get("status") == "ready")
    assert store(ready, name)["storefrontUrl"] == f"http://{name}.localhost/"
    assert deliveries(devstack, "create-store", f"producer-{mode}") == 1
    assert http("DELETE", devstack["gateway"] + f"/stores/{name}")[0] == 202
    wait_for(devstack["gateway"], lambda a: store(a, name) is None)


def test_a_refused_event_goes_to_the_dead_letter_sink_without_retries(devstack):
    """create-store refuses a bad name with 400: the dispatcher does not retry a 400."""
    headers, body = encode("io.storeplatform.store.create", {"name": "not-a-store"}, "binary",
                           event_id="dead-letter-probe")
    assert post_to_broker(devstack, headers, body) == 202
    answer = wait_for(devstack["gateway"], lambda a: any(
        d["id"] == "dead-letter-probe" for d in a["deadLetters"]), timeout=60)
    letter = next(d for d in answer["deadLetters"] if d["id"] == "dead-letter-probe")
    assert letter["type"] == "io.storeplatform.store.create"
    assert "HTTP 400" in letter["error"]
    assert deliveries(devstack, "create-store", "dead-letter-probe") == 1


def test_a_failing_function_is_retried_as_its_trigger_says_then_dead_lettered(devstack):
    """create-store without its RBAC answers 500 (kubernetes_forbidden): the real dispatcher
    retries by the Trigger's policy, then the dead letter carries the filter's details."""
    api = config.new_client_from_config(config_file=devstack["kubeconfig"])
    rbac = client.RbacAuthorizationV1Api(api)
    binding = next(o for o in bootstrap.platform_objects() if o["kind"] == "ClusterRoleBinding"
                   and o["metadata"]["name"] == "storeplatform-create-store")
    trigger = client.CustomObjectsApi(api).get_namespaced_custom_object(
        "eventing.knative.dev", "v1", "storeplatform", "triggers", "create-store")
    retries = trigger["spec"]["delivery"]["retry"]
    rbac.delete_cluster_role_binding("storeplatform-create-store")
    try:
        headers, body = encode("io.storeplatform.store.create", {"name": "store-dev-500"},
                               "binary", subject="store-dev-500", event_id="retry-probe")
        assert post_to_broker(devstack, headers, body) == 202
        answer = wait_for(devstack["gateway"], lambda a: any(
            d["id"] == "retry-probe" for d in a["deadLetters"]), timeout=120)
    finally:
        bootstrap.apply(api, [binding])  # as knative/210-rbac.yaml has it
    assert deliveries(devstack, "create-store", "retry-probe") == retries + 1
    letter = next(d for d in answer["deadLetters"] if d["id"] == "retry-probe")
    # knativeerrorcode, knativeerrordest and knativeerrordata, as the real filter sets them.
    assert "HTTP 500" in letter["error"]
    assert "http://create-store.storeplatform.svc.cluster.local" in letter["error"]
    assert "kubernetes_forbidden" in letter["error"]
    assert store(answer, "store-dev-500") is None


def test_make_dev_stops_cleanly_leaving_no_process(tmp_path):
    require_controlplane()
    state_dir = tmp_path / "stack"
    proc, endpoints = launch(state_dir, tmp_path / "artifacts")
    assert set(endpoints) >= {"gateway", "broker", "create-store", "delete-store",
                              "list-stores", "dashboard", "kubeconfig"}
    assert endpoints["broker"].endswith("/storeplatform/default")
    assert Path(endpoints["kubeconfig"]).is_file()
    # Closed by default: the printed token opens it, nothing else does.
    assert len(endpoints["token"]) >= 32
    assert http("GET", endpoints["gateway"] + "/stores")[0] == 401
    assert http("GET", endpoints["gateway"] + "/stores",
                headers={"Authorization": f"Bearer {endpoints['token']}"})[0] == 200
    proc.terminate()
    assert proc.wait(STACK_STOP_TIMEOUT) == 0
    leftover = subprocess.run(["pgrep", "-f", str(state_dir)], capture_output=True, text=True,
                              check=False)
    assert leftover.stdout.strip() == "", f"processes left behind: {leftover.stdout}"
