"""Faults, injected for real where a real part can produce them, on the real control plane:

- the API server answering 500, 429, timing out, or acting and losing its answer (the
  fault proxy of tests/faultproxy.py between the functions and the API server);
- helm killed in the middle of an install (SIGKILL), the next event repairing the
  pending-install release;
- the runner pod deleted, evicted (the Eviction API) or stopped at its Job deadline mid-run
  (the job executor passes SIGTERM like a kubelet), and the runner killed outright;
- a delete the Broker gives up on (dead-lettered), retried from the API.

Each ends with nothing lost (no second Job, credentials never regenerated, the store as the
latest intent says) and a status that says what happened. list-stores down while the
dashboard polls is tests/browser/test_faults.py.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import pytest
from kubernetes import client

from localkube import procs
from localkube.options import DEFAULT_BIN_DIR
from tests.faultproxy import FaultProxy, Rule
from tests.integration.platform import (
    CREATE,
    DELETE,
    NS,
    Event,
    Functions,
    http,
    now,
    running,
)

pytestmark = pytest.mark.integration

JOBS = r"/apis/batch/v1/namespaces/storeplatform/jobs"


@pytest.fixture(scope="module")
def proxy(cluster):
    from devstack import bootstrap

    server, ca = bootstrap.cluster_endpoint(Path(cluster.kubeconfig))
    with FaultProxy(server, ca) as fault_proxy:
        yield fault_proxy


@pytest.fixture(scope="module")
def functions(cluster, proxy, tmp_path_factory):
    """The functions talking to the API server through the fault proxy (2 s timeouts, so a
    held request times out quickly), with one runner attempt per Job."""
    quick = {"KUBE_TIMEOUT": 2, "JOB_BACKOFF_LIMIT": 0}
    overrides = {"create-store": quick, "delete-store": quick, "list-stores": {"KUBE_TIMEOUT": 2}}
    with running(cluster, tmp_path_factory.mktemp("faults"), overrides=overrides,
                 api_server=proxy.url) as running_functions:
        yield running_functions


@pytest.fixture(autouse=True)
def no_rules_left(proxy):
    yield
    proxy.clear()


def credentials(functions: Functions, store: str) -> dict[str, str]:
    secret = client.CoreV1Api(functions.admin).read_namespaced_secret(
        "store-credentials", store, _request_timeout=10)
    return dict(secret.data)


def job_uids(functions: Functions, store: str) -> list[str]:
    return [j.metadata.uid for j in functions.jobs([store])]


def ready(functions: Functions, store: str) -> dict:
    view = functions.settle([store])[store]
    assert view and view["status"] == "ready", view
    return view


def delete_and_settle(functions: Functions, store: str) -> None:
    status, body, _ = functions.deliver(Event(DELETE, store, f"{store}-cleanup", now()))
    assert status == 202, body
    assert functions.settle([store]) == {store: None}


# ---------------------------------------------------------------- the API server misbehaves
@pytest.mark.parametrize(("rule", "code"), [
    (Rule("POST", JOBS + r"\b", 500), "kubernetes_unavailable"),
    (Rule("POST", r"/api/v1/namespaces/storeplatform/configmaps", 429),
     "kubernetes_unavailable"),
    # urllib3 retries a timed-out idempotent GET once itself: hold two in a row.
    (Rule("GET", r"/api/v1/namespaces/store-flt-[a-z0-9-]+$", "timeout", times=2,
          hold_seconds=5), "kubernetes_unavailable"),
], ids=["500-on-job-create", "429-on-intent-record", "timeout-on-namespace-read"])
def test_a_create_the_api_server_fails_is_retried_and_makes_one_store(functions, proxy, rule,
                                                                      code):
    store = f"store-flt-{rule.method.lower()}-{rule.fault}"
    proxy.add(rule)
    event = Event(CREATE, store, f"{store}-1", now())
    status, body = functions.send(event)
    assert rule.hits, "the fault never happened"
    assert (status, json.loads(body)["error"]["code"]) == (503, code)  # the Broker retries
    assert functions.deliver(event)[:2] == (202, b"")
    view = ready(functions, store)
    assert len(job_uids(functions, store)) == 1
    assert view["reason"] is None
    delete_and_settle(functions, store)


def test_a_lost_answer_after_the_write_is_retried_without_a_second_anything(functions, proxy):
    """The API server made the namespace and the Job, but the answers never arrived."""
    store = "store-flt-lost"
    proxy.add(Rule("POST", r"/api/v1/namespaces$", "lost_reply"))
    proxy.add(Rule("POST", JOBS + r"\b", "lost_reply"))
    event = Event(CREATE, store, f"{store}-1", now())
    status, body, deliveries = functions.deliver(event)
    assert (status, body) == (202, b"") and deliveries >= 3
    assert all(rule.hits for rule in proxy.rules)
    first = job_uids(functions, store)
    assert len(first) == 1
    secret = credentials(functions, store)
    ready(functions, store)
    assert functions.deliver(event)[:2] == (202, b"")  # and a duplicate changes nothing
    assert job_uids(functions, store) == first
    assert credentials(functions, store) == secret
    proxy.add(Rule("POST", JOBS + r"\b", "lost_reply"))  # the delete Job too
    delete_and_settle(functions, store)


def test_list_stores_answers_from_its_cache_while_the_api_server_fails(functions, proxy):
    """Its watches cut and every new list or watch of namespaces refused for a while: the
    answers keep coming from memory (CACHE_MAX_STALE), then it lists again and catches up."""
    before = functions.stores()
    store = "store-flt-cache"
    refused = proxy.add(Rule("GET", r"/api/v1/namespaces\?", 500, times=4))
    assert proxy.break_watches() > 0, "list-stores had no watch open"
    deadline = time.monotonic() + 30
    while len(refused.hits) < refused.times:
        assert functions.stores() == before  # from memory, the API server refusing
        assert time.monotonic() < deadline, f"only {len(refused.hits)} lists refused"
        time.sleep(0.2)
    assert functions.deliver(Event(CREATE, store, f"{store}-1", now()))[:2] == (202, b"")
    assert ready(functions, store)["name"] == store  # listed again: changes arrive anew


# ---------------------------------------------------------------- the runner is stopped
def runner_pod(functions: Functions, store: str, action: str = "install") -> client.V1Pod:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        pods = client.CoreV1Api(functions.admin).list_namespaced_pod(
            NS, label_selector=f"job-name=helm-{action}-{store}", _request_timeout=10).items
        running_pods = [p for p in pods if p.status.phase == "Running"]
        if running_pods:
            return running_pods[0]
        time.sleep(0.1)
    raise AssertionError(f"no running runner pod for {store}")


def pod_dir(functions: Functions, pod: client.V1Pod) -> Path:
    return (Path(functions.cluster.state_dir) / "pods" / NS
            / f"{pod.metadata.name}-{pod.metadata.uid[:8]}")


def wait_in_log(path: Path, text: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text(errors="replace"):
            return
        time.sleep(0.05)
    raise AssertionError(f"{text!r} never appeared in {path}")


def runner_pid(directory: Path) -> int:
    """The pod's process (the executor's pid file)."""
    found = procs.read_pid(directory / "process.pid")
    assert found, f"no process for {directory}"
    return found[0]


def helm_child(runner_pid: int) -> int:
    """The helm process the runner (the pod's process) started."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == runner_pid and cmdline and cmdline[0].endswith(b"helm"):
            return int(entry.name)
    raise AssertionError(f"no helm child of {runner_pid}")


def mid_upgrade(functions: Functions, store: str) -> tuple[client.V1Pod, Path]:
    """The runner pod once its helm upgrade --install is running."""
    pod = runner_pod(functions, store)
    directory = pod_dir(functions, pod)
    wait_in_log(directory / "container.log", "helm upgrade --install")
    return pod, directory


def wait_for_release(functions: Functions, store: str, status: str,
                     timeout: float = 60.0) -> None:
    """Until helm's release record (a Secret in the store's namespace) has that status."""
    core = client.CoreV1Api(functions.admin)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        records = core.list_namespaced_secret(
            store, label_selector=f"owner=helm,name={store},status={status}",
            _request_timeout=10).items
        if records:
            return
        time.sleep(0.05)
    raise AssertionError(f"release {store} never was {status}")


def release_history(functions: Functions, store: str) -> list[dict]:
    out = subprocess.run([str(DEFAULT_BIN_DIR / "helm"), "history", store, "--namespace", store,
                          "--output", "json", "--kubeconfig", functions.cluster.kubeconfig],
                         capture_output=True, text=True, timeout=60, check=False)
    return json.loads(out.stdout) if out.returncode == 0 and out.stdout.strip() else []


def failed_with(functions: Functions, store: str, timeout: float = 120.0) -> dict:
    view = functions.settle([store], timeout)[store]
    assert view and view["status"] == "failed", view
    return view


def create_again_repairs(functions: Functions, store: str) -> None:
    """A new create (a later intent) starts a new runner, which repairs, installs, tests."""
    event = Event(CREATE, store, f"{store}-again", now())
    assert functions.deliver(event)[:2] == (202, b"")
    ready(functions, store)
    assert release_history(functions, store)[-1]["status"] == "deployed"


def test_helm_killed_mid_install_fails_the_store_then_the_next_event_repairs_it(functions):
    store = "store-flt-helm-killed"
    assert functions.deliver(Event(CREATE, store, f"{store}-1", now()))[:2] == (202, b"")
    _, directory = mid_upgrade(functions, store)
    wait_for_release(functions, store, "pending-install")  # helm wrote its record, is waiting
    os.kill(helm_child(runner_pid(directory)), signal.SIGKILL)  # what the OOM killer does to helm
    view = failed_with(functions, store)
    assert view["reason"] == ("helm upgrade --install was killed by SIGKILL (out of memory?); "
                              "the next run repairs the release")
    assert view["failedAction"] == "create"
    assert release_history(functions, store)[-1]["status"].startswith("pending-")
    secret = credentials(functions, store)
    create_again_repairs(functions, store)
    assert "is pending; repairing with helm" in _runner_logs(functions, store)
    assert credentials(functions, store) == secret  # nothing lost
    delete_and_settle(functions, store)


def _runner_logs(functions: Functions, store: str) -> str:
    base = Path(functions.cluster.state_dir) / "pods" / NS
    return "".join((d / "container.log").read_text(errors="replace")
                   for d in base.glob(f"helm-install-{store}-*"))


@pytest.mark.parametrize("how", ["delete", "evict"])
def test_a_runner_pod_stopped_mid_run_records_why_and_the_next_event_repairs(functions, how):
    """The executor SIGTERMs the pod's process group as a kubelet would; the runner passes
    it to helm, records the interruption, and exits within the grace period."""
    store = f"store-flt-pod-{how}"
    assert functions.deliver(Event(CREATE, store, f"{store}-1", now()))[:2] == (202, b"")
    pod, directory = mid_upgrade(functions, store)
    core = client.CoreV1Api(functions.admin)
    if how == "delete":
        core.delete_namespaced_pod(pod.metadata.name, NS, _request_timeout=10)
    else:
        core.create_namespaced_pod_eviction(pod.metadata.name, NS, {
            "apiVersion": "policy/v1", "kind": "Eviction",
            "metadata": {"name": pod.metadata.name, "namespace": NS}}, _request_timeout=10)
    view = failed_with(functions, store)
    assert view["reason"].startswith("interrupted by SIGTERM during helm upgrade"), view
    assert view["failedAction"] == "create"
    log = (directory / "container.log").read_text()
    assert "got SIGTERM: passing it to helm" in log
    create_again_repairs(functions, store)
    delete_and_settle(functions, store)


def test_a_runner_stopped_at_its_job_deadline_says_so(functions):
    store = "store-flt-deadline"
    assert functions.deliver(Event(CREATE, store, f"{store}-1", now()))[:2] == (202, b"")
    mid_upgrade(functions, store)
    # As if the deadline had been reached now: the Job controller stops the runner.
    client.BatchV1Api(functions.admin).patch_namespaced_job(
        f"helm-install-{store}", NS, {"spec": {"activeDeadlineSeconds": 1}}, _request_timeout=10)
    view = failed_with(functions, store)
    assert view["reason"].startswith("stopped at the Job deadline (1 s): interrupted by "
                                     "SIGTERM"), view
    create_again_repairs(functions, store)
    delete_and_settle(functions, store)


def test_a_runner_killed_outright_is_failed_also_once_its_job_is_gone(functions):
    """The whole container killed (SIGKILL to its processes, as an OOM kill of the container
    does): nothing could be recorded, the status still says what happened, and after the
    Job is gone (its TTL) too."""
    store = "store-flt-sigkill"
    assert functions.deliver(Event(CREATE, store, f"{store}-1", now()))[:2] == (202, b"")
    _, directory = mid_upgrade(functions, store)
    os.killpg(runner_pid(directory), signal.SIGKILL)
    view = failed_with(functions, store)
    assert view["reason"].startswith("the runner was killed (signal 9, exit 137)"), view
    client.BatchV1Api(functions.admin).delete_namespaced_job(
        f"helm-install-{store}", NS, propagation_policy="Background", _request_timeout=10)
    deadline = time.monotonic() + 30
    while functions.jobs([store]) and time.monotonic() < deadline:
        time.sleep(0.5)
    view = failed_with(functions, store)
    assert view["reason"].startswith("the install runner was killed before it recorded a "
                                     "result"), view
    create_again_repairs(functions, store)
    delete_and_settle(functions, store)


# ---------------------------------------------------------------- a delete dead-lettered
def dead_letter(functions: Functions, event: Event, code: int, error: str) -> None:
    """What the Broker posts to the dead-letter sink once it gives up on an event."""
    headers, body = event.encode()
    headers |= {"ce-knativeerrorcode": str(code),
                "ce-knativeerrordest": functions.url["delete-store"],
                "ce-knativeerrordata": base64.b64encode(error.encode()).decode()}
    status, _ = http("POST", functions.url["list-stores"] + "/dead-letter", body, headers)
    assert status == 202


def test_a_dead_lettered_delete_shows_on_its_store_and_a_new_delete_retries_it(functions,
                                                                              proxy):
    store = "store-flt-dead-delete"
    assert functions.deliver(Event(CREATE, store, f"{store}-1", now()))[:2] == (202, b"")
    ready(functions, store)
    # delete-store cannot mark the namespace: every delivery of the delete answers 503.
    rule = proxy.add(Rule("PATCH", rf"/api/v1/namespaces/{store}$", 500, times=6))
    delete = Event(DELETE, store, f"{store}-delete-1", now() + timedelta(milliseconds=1))
    answers = [functions.send(delete)[0] for _ in range(6)]  # the Trigger's 1 + 5 retries
    assert answers == [503] * 6 and len(rule.hits) == 6
    dead_letter(functions, delete, 503, '{"error": {"code": "kubernetes_unavailable"}}')
    view = functions.stores()[store]
    assert (view["status"], view["failedAction"]) == ("failed", "delete")
    assert view["reason"].startswith("delete was not delivered (HTTP 503")
    assert view["reason"].endswith("delete again to retry")
    # DELETE /stores/{name} again is a new, later delete event: it goes through.
    assert functions.deliver(Event(DELETE, store, f"{store}-delete-2", now()))[:2] == (202, b"")
    assert functions.settle([store]) == {store: None}
