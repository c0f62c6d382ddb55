"""The local control plane is a real one: each test shows behaviour no mock would give."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from localkube import Cluster

pytestmark = pytest.mark.integration

RUNNER_LABELS = {"app.kubernetes.io/component": "helm-runner"}
RESTRICTED = {f"pod-security.kubernetes.io/{mode}": "restricted"
              for mode in ("enforce", "warn", "audit")}
TIMEOUT = 10


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 60.0) -> Any:
    """Polls probe until it returns something truthy; fails naming what never happened."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


def pod(name: str, **security: Any) -> dict[str, Any]:
    container = {"name": "main", "image": "registry.invalid/app:1",
                 "resources": {"requests": {"cpu": "100m", "memory": "64Mi"},
                               "limits": {"cpu": "100m", "memory": "64Mi"}}}
    if security:
        container["securityContext"] = security
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [container]}}


def restricted_security() -> dict[str, Any]:
    return {"runAsNonRoot": True, "runAsUser": 65532, "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}


def forbidden(call: Callable[[], Any]) -> str:
    """The message of the 403 the call must get."""
    with pytest.raises(ApiException) as caught:
        call()
    assert caught.value.status == 403, caught.value.body
    return json.loads(caught.value.body)["message"]


def runner_job(name: str, script: str, *, service_account: str = "default",
               deadline: int | None = None) -> dict[str, Any]:
    """A Job whose pod carries the helm-runner label, so the executor runs it for real."""
    spec: dict[str, Any] = {
        "backoffLimit": 0,
        "template": {
            "metadata": {"labels": RUNNER_LABELS},
            "spec": {
                "restartPolicy": "Never",
                "serviceAccountName": service_account,
                "containers": [{
                    "name": "helm", "image": "storeplatform/helm-runner:dev",
                    "command": ["python", "-c", script],
                    "env": [{"name": "GREETING",
                             "valueFrom": {"secretKeyRef": {"name": "greeting", "key": "text"}}},
                            {"name": "POD_NAME",
                             "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                    "terminationMessagePolicy": "FallbackToLogsOnError",
                }],
            },
        },
    }
    if deadline:
        spec["activeDeadlineSeconds"] = deadline
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}, "spec": spec}


def job_condition(batch: client.BatchV1Api, namespace: str, name: str) -> str | None:
    job = batch.read_namespaced_job(name, namespace, _request_timeout=TIMEOUT)
    for condition in job.status.conditions or []:
        if condition.type in ("Complete", "Failed") and condition.status == "True":
            return condition.type if condition.type == "Complete" else (
                f"Failed:{condition.reason}")
    return None


def terminated_state(core: client.CoreV1Api, namespace: str, job: str) -> Any:
    pods = core.list_namespaced_pod(namespace, label_selector=f"job-name={job}",
                                    _request_timeout=TIMEOUT).items
    assert len(pods) == 1, [p.metadata.name for p in pods]
    return pods[0].status.container_statuses[0].state.terminated


def test_version_is_the_pinned_release(admin_api):
    assert client.VersionApi(admin_api).get_code(_request_timeout=TIMEOUT).git_version == "v1.34.4"


def test_rbac_denies_a_service_account_an_unbound_verb(cluster: Cluster, admin_api,
                                                       new_namespace):
    ns = new_namespace("rbac")
    core, rbac = client.CoreV1Api(admin_api), client.RbacAuthorizationV1Api(admin_api)
    core.create_namespaced_service_account(ns, {"metadata": {"name": "reader"}})
    rbac.create_namespaced_role(ns, {
        "metadata": {"name": "read-configmaps"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]})
    rbac.create_namespaced_role_binding(ns, {
        "metadata": {"name": "reader"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                    "name": "read-configmaps"},
        "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": ns}]})
    token = core.create_namespaced_service_account_token("reader", ns, {
        "spec": {"audiences": [], "expirationSeconds": 600}}).status.token

    with cluster.token_client(token) as api:
        as_reader = client.CoreV1Api(api)
        wait_for("the Role to be effective",
                 lambda: as_reader.list_namespaced_config_map(ns, _request_timeout=TIMEOUT))
        denied = forbidden(lambda: as_reader.create_namespaced_config_map(
            ns, {"metadata": {"name": "x"}}, _request_timeout=TIMEOUT))
        forbidden(lambda: as_reader.list_namespaced_secret(ns, _request_timeout=TIMEOUT))
    assert f'User "system:serviceaccount:{ns}:reader" cannot create resource' in denied


def test_resource_quota_rejects_a_pod_over_quota(admin_api, new_namespace):
    ns = new_namespace("quota")
    core = client.CoreV1Api(admin_api)
    core.create_namespaced_resource_quota(ns, {
        "metadata": {"name": "small"},
        "spec": {"hard": {"requests.cpu": "150m", "limits.cpu": "150m", "pods": "5"}}})
    wait_for("the quota to be counted", lambda: (core.read_namespaced_resource_quota(
        "small", ns, _request_timeout=TIMEOUT).status.hard or {}))

    core.create_namespaced_pod(ns, pod("fits"), _request_timeout=TIMEOUT)
    denied = forbidden(lambda: core.create_namespaced_pod(ns, pod("too-much"),
                                                          _request_timeout=TIMEOUT))
    assert "exceeded quota: small" in denied


def test_pod_security_restricted_rejects_a_root_pod(admin_api, new_namespace):
    ns = new_namespace("psa", RESTRICTED)
    core = client.CoreV1Api(admin_api)

    denied = forbidden(lambda: core.create_namespaced_pod(
        ns, pod("root", runAsUser=0), _request_timeout=TIMEOUT))
    assert 'violates PodSecurity "restricted:latest"' in denied
    assert "runAsUser=0" in denied
    core.create_namespaced_pod(ns, pod("compliant", **restricted_security()),
                               _request_timeout=TIMEOUT)


def test_a_deployment_becomes_available(admin_api, new_namespace):
    ns = new_namespace("deploy")
    apps = client.AppsV1Api(admin_api)
    labels = {"app": "web"}
    apps.create_namespaced_deployment(ns, {
        "metadata": {"name": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": pod("web")["spec"]}}})

    def available() -> bool:
        status = apps.read_namespaced_deployment("web", ns, _request_timeout=TIMEOUT).status
        return status.available_replicas == 2 and any(
            c.type == "Available" and c.status == "True" for c in status.conditions or [])

    wait_for("Deployment web Available with 2 replicas", available)


@pytest.fixture
def runner_namespace(admin_api, new_namespace) -> str:
    """A namespace with the Secret the runner jobs read and a ServiceAccount `runner`."""
    ns = new_namespace("runner")
    core = client.CoreV1Api(admin_api)
    core.create_namespaced_secret(ns, {"metadata": {"name": "greeting"},
                                       "stringData": {"text": "hello from a Secret"}})
    core.create_namespaced_service_account(ns, {"metadata": {"name": "runner"}})
    return ns


RUNNER_SCRIPT = """
import os, sys, yaml
from kubernetes import client, config
kubeconfig = yaml.safe_load(open(os.environ["KUBECONFIG"]))
print("credentials:", sorted(kubeconfig["users"][0]["user"]))
api = config.new_client_from_config(config_file=os.environ["KUBECONFIG"])
review = client.AuthenticationV1Api(api).create_self_subject_review({"spec": {}})
print("user:", review.status.user_info.username)
print("pod:", os.environ["POD_NAME"], "greeting:", os.environ["GREETING"])
sys.exit(int(os.environ.get("EXIT_CODE", "3")))
"""


def test_a_runner_job_runs_the_real_command_and_fails_with_its_exit_code(
        admin_api, runner_namespace):
    ns = runner_namespace
    batch, core = client.BatchV1Api(admin_api), client.CoreV1Api(admin_api)
    batch.create_namespaced_job(ns, runner_job("fails", RUNNER_SCRIPT, service_account="runner"))

    assert wait_for("Job fails to finish",
                    lambda: job_condition(batch, ns, "fails")) == "Failed:BackoffLimitExceeded"
    state = terminated_state(core, ns, "fails")
    assert state.exit_code == 3
    assert state.reason == "Error"
    # FallbackToLogsOnError: the output tail is the termination message.
    assert "credentials: ['token']" in state.message
    assert f"user: system:serviceaccount:{ns}:runner" in state.message
    assert "greeting: hello from a Secret" in state.message


def test_a_runner_job_that_exits_zero_completes(admin_api, runner_namespace):
    ns = runner_namespace
    batch, core = client.BatchV1Api(admin_api), client.CoreV1Api(admin_api)
    job = runner_job("succeeds", RUNNER_SCRIPT)
    job["spec"]["template"]["spec"]["containers"][0]["env"].append(
        {"name": "EXIT_CODE", "value": "0"})
    batch.create_namespaced_job(ns, job)

    assert wait_for("Job succeeds to finish",
                    lambda: job_condition(batch, ns, "succeeds")) == "Complete"
    state = terminated_state(core, ns, "succeeds")
    assert (state.exit_code, state.reason, state.message) == (0, "Completed", None)


def _processes_with(marker: str) -> list[str]:
    found = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True,
                           check=False, timeout=TIMEOUT)
    return found.stdout.split()


def test_a_runner_past_its_deadline_is_killed(admin_api, runner_namespace):
    ns = runner_namespace
    batch = client.BatchV1Api(admin_api)
    marker = f"localkube-smoke-{uuid.uuid4().hex}"
    batch.create_namespaced_job(ns, runner_job(
        "sleeper", f"import time\ntime.sleep(600)  # {marker}", deadline=3))

    wait_for("the runner process to start", lambda: _processes_with(marker))
    assert wait_for("Job sleeper to fail", lambda: job_condition(batch, ns, "sleeper"),
                    timeout=60) == "Failed:DeadlineExceeded"
    wait_for("the runner process to be killed", lambda: not _processes_with(marker), timeout=45)


def test_an_ordinary_job_completes_under_kwok(admin_api, new_namespace):
    ns = new_namespace("job")
    batch = client.BatchV1Api(admin_api)
    batch.create_namespaced_job(ns, {
        "metadata": {"name": "plain"},
        "spec": {"backoffLimit": 0, "template": {"spec": {
            "restartPolicy": "Never", "containers": pod("x")["spec"]["containers"]}}}})
    assert wait_for("Job plain to finish", lambda: job_condition(batch, ns, "plain")) == "Complete"


def test_a_claim_gets_a_volume_and_releases_it(admin_api, new_namespace):
    ns = new_namespace("pvc")
    core = client.CoreV1Api(admin_api)
    core.create_namespaced_persistent_volume_claim(ns, {
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"],
                 "resources": {"requests": {"storage": "2Gi"}}}})

    def bound_claim() -> Any:
        claim = core.read_namespaced_persistent_volume_claim("data", ns, _request_timeout=TIMEOUT)
        return claim if claim.status.phase == "Bound" else None

    claim = wait_for("claim data to be Bound", bound_claim)
    assert claim.spec.storage_class_name == "standard"  # the default class
    assert claim.status.capacity["storage"] == "2Gi"
    volume = claim.spec.volume_name

    core.delete_namespaced_persistent_volume_claim("data", ns)

    def volume_gone() -> bool:
        try:
            core.read_persistent_volume(volume, _request_timeout=TIMEOUT)
        except ApiException as err:
            return err.status == 404
        return False

    wait_for(f"volume {volume} to be reclaimed", volume_gone)


def test_namespace_deletion_finishes(admin_api, new_namespace):
    ns = new_namespace("doomed")
    core, apps = client.CoreV1Api(admin_api), client.AppsV1Api(admin_api)
    core.create_namespaced_config_map(ns, {"metadata": {"name": "c"}, "data": {"k": "v"}})
    apps.create_namespaced_deployment(ns, {
        "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": pod("w")["spec"]}}})
    wait_for("a running pod", lambda: [p for p in core.list_namespaced_pod(ns).items
                                       if p.status.phase == "Running"])

    core.delete_namespace(ns)

    def gone() -> bool:
        try:
            core.read_namespace(ns, _request_timeout=TIMEOUT)
        except ApiException as err:
            return err.status == 404
        return False

    wait_for(f"namespace {ns} to be gone", gone, timeout=90)

