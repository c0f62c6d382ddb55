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
from tests.helpers import MODES, encode, standin_accepts

pytestmark = pytest.mark.integration


TOKEN: dict[str, str] = {}  # the stack's gateway token, set by the autouse fixture
JSON = {"Content-Type": "application/json"}  # every write to the gateway is JSON


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


# ---------------------------------------------------------------- issue 15: watching the
# platform, following one request, the owner's way in


TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client.parser import text_string_to_metric_families

    # The gateway's /metrics wants its token (it tells how many stores there are).
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN['value']}"}
                                     if TOKEN else {})
    with urllib.request.urlopen(request, timeout=20) as response:
        text = response.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def json_lines(path: Path) -> list[dict]:
    records = []
    for line in path.read_text().splitlines():
        if line.strip():
            records.append(json.loads(line))  # every line is one JSON object
    return records


def runner_logs(devstack: dict, job: str) -> list[Path]:
    pods = Path(devstack["state_dir"]) / "cluster" / "pods" / "storeplatform"
    return sorted(pods.glob(f"{job}-*/container.log"))


def test_one_create_is_followed_by_its_trace_id_and_counted_in_the_metrics(devstack):
    """gateway -> real Broker -> create-store -> runner Job -> the runner's own event
    (list-stores /lifecycle): one trace id in every log; the metrics of each function
    scraped over HTTP say what happened."""
    gateway, name = devstack["gateway"], "store-dev-trace"
    before = {fn: scrape(devstack[f"metrics.{fn}"]) for fn in (
        "gateway", "create-store", "list-stores")}
    parent = f"00-{TRACE}-00f067aa0ba902b7-01"
    status, body = http("POST", gateway + f"/stores/{name}", b"{}",
                        {"Content-Type": "application/json", "traceparent": parent})
    assert status == 202, body
    answer = wait_for(gateway, lambda a: (store(a, name) or {}).get("status") == "ready")
    assert set(store(answer, name)["timeline"]) == {"queued", "install", "setup", "test",
                                                   "ready"}
    logs = Path(devstack["state_dir"]) / "logs"
    deadline = time.monotonic() + 30
    while True:  # the runner's ready event reaches list-stores just after the list says ready
        lifecycle = [r for r in json_lines(logs / "list-stores.log")
                     if r.get("trace_id") == TRACE and r.get("event_type") ==
                     "io.storeplatform.store.ready"]
        if lifecycle or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert lifecycle and lifecycle[0]["store"] == name
    for function in ("gateway", "create-store"):
        records = [r for r in json_lines(logs / f"{function}.log") if r.get("trace_id") == TRACE]
        assert records, f"no {function} log line carries trace id {TRACE}"
        assert {r.get("store") for r in records} == {name}
        assert body["id"] in {r.get("event_id") for r in records}
    (runner_log,) = runner_logs(devstack, f"helm-install-{name}")
    runner = json_lines(runner_log)
    assert runner and all(r["trace_id"] == TRACE and r["store"] == name for r in runner)
    assert {r["event_id"] for r in runner} == {body["id"]}

    after = {fn: scrape(devstack[f"metrics.{fn}"]) for fn in before}
    create = "io.storeplatform.store.create"

    def grew(fn: str, metric: str, **labels: str) -> float:
        return value(after[fn], metric, **labels) - value(before[fn], metric, **labels)

    assert grew("gateway", "storeplatform_events_published_total", type=create,
                outcome="accepted") == 1
    assert grew("create-store", "storeplatform_events_received_total", function="create-store",
                type=create, outcome="accepted") == 1
    assert grew("list-stores", "storeplatform_provisioning_duration_seconds_count",
                outcome="ready") == 1
    assert value(after["list-stores"], "storeplatform_stores", status="ready") >= 1
    assert http("DELETE", gateway + f"/stores/{name}")[0] == 202
    wait_for(gateway, lambda a: store(a, name) is None)
    deleted = scrape(devstack["metrics.list-stores"])
    assert value(deleted, "storeplatform_deletion_duration_seconds_count", outcome="deleted") \
        >= 1


def test_every_log_line_of_every_function_is_one_json_object(devstack):
    for function in ("gateway", "create-store", "delete-store", "list-stores"):
        path = Path(devstack["state_dir"]) / "logs" / f"{function}.log"
        records = json_lines(path)  # raises on any line that is not JSON
        assert records and {"time", "level", "logger", "message"} <= set(records[-1])


def test_dead_letters_and_kubernetes_errors_are_counted(devstack):
    before = scrape(devstack["metrics.list-stores"])
    headers, body = encode("io.storeplatform.store.create", {"name": "bad name"}, "binary",
                           event_id="dead-letter-metric")
    assert post_to_broker(devstack, headers, body) == 202
    wait_for(devstack["gateway"], lambda a: any(
        d["id"] == "dead-letter-metric" for d in a["deadLetters"]), timeout=60)
    after = scrape(devstack["metrics.list-stores"])
    create = "io.storeplatform.store.create"
    assert value(after, "storeplatform_dead_letters_total", type=create) == \
        value(before, "storeplatform_dead_letters_total", type=create) + 1


def test_the_owner_gets_a_new_admin_password_once_through_the_api(devstack):
    """POST reset -> Broker -> create-store -> runner Job (the store's runner identity) ->
    wp-cli (make dev's stand-in) -> one-time Secret -> list-stores hands it over once."""
    gateway, name = devstack["gateway"], "store-dev-owner"
    assert http("POST", gateway + f"/stores/{name}", b"{}",
                {"Content-Type": "application/json"})[0] == 202
    wait_for(gateway, lambda a: (store(a, name) or {}).get("status") == "ready")
    status, asked = http("POST", gateway + f"/stores/{name}/admin-password", b"{}", JSON)
    assert status == 202 and asked["status"] == "resetting"
    reveal = gateway + f"/stores/{name}/admin-password/{asked['id']}"
    deadline = time.monotonic() + 120
    while True:
        status, shown = http("POST", reveal, b"{}", JSON)
        if status != 202 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert status == 200, shown
    assert shown["user"] == "admin" and len(shown["password"]) >= 20
    assert standin_accepts(devstack, name, "admin", shown["password"])
    assert http("POST", reveal, b"{}", JSON) == (410, {"error": {
        "code": "already_shown",
        "message": "this password was shown already (or expired); reset again for a new one"}})
    # Nowhere else: not in the list, the events, the Job spec or any log.
    api = config.new_client_from_config(config_file=devstack["kubeconfig"])
    core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
    password = shown["password"]
    assert password not in json.dumps(http("GET", gateway + "/stores")[1])
    assert password not in str(core.list_event_for_all_namespaces().to_dict())
    assert password not in str(batch.read_namespaced_job(
        f"admin-password-{name}", "storeplatform").to_dict())
    state = Path(devstack["state_dir"])
    for place in (state / "logs", state / "cluster" / "logs", state / "cluster" / "pods"):
        for path in place.rglob("*"):
            if path.is_file():
                assert password.encode() not in path.read_bytes(), path
    # The runner worked as the store's runner identity, in the store's namespace only.
    (runner_log,) = runner_logs(devstack, f"admin-password-{name}")
    assert any("admin password of" in r["message"] for r in json_lines(runner_log))
    assert http("DELETE", gateway + f"/stores/{name}")[0] == 202
    wait_for(gateway, lambda a: store(a, name) is None)


def test_a_reset_of_a_store_that_does_not_exist_ends_as_a_failed_reveal(devstack):
    gateway = devstack["gateway"]
    status, asked = http("POST", gateway + "/stores/store-dev-nobody/admin-password", b"{}",
                         JSON)
    assert status == 202
    deadline = time.monotonic() + 60
    while True:
        status, answer = http("POST", gateway + f"/stores/store-dev-nobody/admin-password/"
                                                f"{asked['id']}", b"{}", JSON)
        if status != 202 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert (status, answer["error"]["code"]) == (410, "store_not_found")


def test_a_port_that_make_dev_needs_is_named_when_taken(tmp_path):
    """`python -m devstack` on a base whose port is in use: it says which and how to move,
    before it starts anything."""
    import socket
    import sys

    from tests.conftest import python_env

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "devstack", "--state-dir", str(tmp_path / "dev"),
             "--port-base", str(port)], capture_output=True, text=True, timeout=60,
            env=python_env(), check=False)
    assert result.returncode == 1
    assert f"port {port} (gateway) on 127.0.0.1 is already in use" in result.stderr
    assert "DEV_PORT_BASE=" in result.stderr and "--port-base" in result.stderr
    assert not (tmp_path / "dev").exists()
