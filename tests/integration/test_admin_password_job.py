"""The owner's admin-password reset as it runs on a real cluster (WP_CLI=job), on the local
API server: create-store starts the reset Job as its ServiceAccount; the job executor runs
the runner for real as the runner's ServiceAccount; the runner builds the wp-cli Job from the
chart's set-up hook of the real Helm release and creates it in the store's namespace, where
admission (Pod Security `restricted`, the store's ResourceQuota and LimitRange) decides for
real; KWOK plays the wp-cli container (no PHP runs here: hack/e2e-real-cluster.sh does it on
a real cluster). list-stores, as its ServiceAccount, hands the password over once and cannot
read the store's credentials.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from cloudevents.core.bindings.http import HTTPMessage, from_http_event
from kubernetes import client

from storeplatform import contract
from storeplatform.errors import PlatformError
from storeplatform.kube import Kube, api_client
from storeplatform.lifecycle import owner_access
from tests.helpers import encode
from tests.integration.test_platform_flow import Platform, send

pytestmark = pytest.mark.integration

NS = "storeplatform"


@pytest.fixture(scope="module")
def platform(cluster, tmp_path_factory):
    made = Platform(cluster, tmp_path_factory.mktemp("reset"))
    yield made
    made.close()


def reveal(platform: Platform, store: str, reset_id: str) -> dict:
    headers, body = encode(contract.REVEAL_ADMIN_PASSWORD, {"name": store, "id": reset_id},
                           "binary")
    response = platform.list_app.post("/admin-password", headers=headers, data=body)
    assert response.status_code == 200, response.data
    return from_http_event(HTTPMessage(headers=dict(response.headers),
                                       body=response.data)).get_data()


def test_the_wp_cli_job_is_admitted_in_the_store_and_the_password_is_handed_over_once(
        platform):
    name = "store-reset-job"
    create = platform.create_app(RUNNER_WP_CLI="job")
    assert send(create, contract.CREATE, {"name": name}).status_code == 202
    platform.wait_for(name, lambda s: s and s["status"] in ("ready", "failed"))
    assert platform.stores()[name]["status"] == "ready"

    headers, body = encode(contract.RESET_ADMIN_PASSWORD, {"name": name}, "binary",
                           subject=name, event_id="reset-job-1")
    assert create.post("/admin-password", headers=headers, data=body).status_code == 202
    batch, core = client.BatchV1Api(platform.admin), client.CoreV1Api(platform.admin)

    # The wp-cli Job in the store's namespace, as admission let it in.
    wp_job = None
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        state = reveal(platform, name, "reset-job-1")
        if state["state"] != "pending":
            break
        jobs = batch.list_namespaced_job(name, label_selector="app.kubernetes.io/component="
                                                              "admin-password").items
        wp_job = jobs[0] if jobs else wp_job
        time.sleep(0.5)
    assert state["state"] == "shown", state
    assert state["user"] == "admin" and len(state["password"]) >= 20
    assert reveal(platform, name, "reset-job-1")["code"] == "already_shown"

    assert wp_job is not None, "the wp-cli Job was never seen in the store's namespace"
    spec = wp_job.spec.template.spec
    (box,) = spec.containers
    assert "user update" in box.command[-1] and "--prompt=user_pass" in box.command[-1]
    assert spec.security_context.run_as_non_root is True
    assert box.security_context.allow_privilege_escalation is False
    volumes = {v.name: v for v in spec.volumes}
    assert volumes["admin-password"].secret.secret_name == contract.ADMIN_PASSWORD_SECRET
    assert spec.service_account_name == name  # the chart's own account, no API token
    # The runner Job ran as the runner's identity; it is done, the one-time Secret is gone.
    deadline = time.monotonic() + 60  # it still records and reports after the hand-over
    while (runner := batch.read_namespaced_job(f"admin-password-{name}", NS)).status.succeeded \
            != 1 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert runner.spec.template.spec.service_account_name == contract.runner_account(name)
    assert runner.status.succeeded == 1
    assert contract.ADMIN_PASSWORD_SECRET not in {
        s.metadata.name for s in core.list_namespaced_secret(name).items}


def test_list_stores_may_take_the_one_time_secret_but_not_the_credentials(platform):
    verbs = Kube(api_client(platform.kubeconfigs["list-stores"]), 10.0)
    with pytest.raises(PlatformError) as refused:
        verbs.read_or_none("Secret", contract.CREDENTIALS_SECRET, "store-reset-job")
    assert refused.value.code == "kubernetes_forbidden"
    answer = owner_access.reveal(verbs, "store-reset-job", "nothing-like-it", NS,
                                 datetime.now(UTC))
    assert answer["state"] == "pending"  # may look, finds no reset of that id
