"""The store owner's way in (lifecycle/owner_access.py): the reset Job, the read-once reveal."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest

from storeplatform import config, contract, create_store, deadletters, manifests
from storeplatform.errors import Kind, PlatformError
from storeplatform.lifecycle import owner_access
from tests.unit.conftest import RUNNER

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
PLATFORM = "storeplatform"


@pytest.fixture
def settings():
    return config.load(create_store.SETTINGS, RUNNER | {"RUNNER_WP_CLI": "/opt/wp"}, environ={})


def store_namespace(fake_kube, phase="ready", reset: dict | None = None, name="store-a"):
    ns = manifests.namespace(name, "woocommerce", NOW)
    ns["metadata"]["annotations"][contract.ANNOTATION_PHASE] = phase
    if reset is not None:
        ns["metadata"]["annotations"][contract.ANNOTATION_ADMIN_RESET] = json.dumps(reset)
    return fake_kube.add(ns)


def env_of(job: dict) -> dict[str, str]:
    (box,) = job["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value") for e in box["env"]}


def test_reset_starts_a_runner_job_that_never_retries_by_itself(fake_kube, settings):
    store_namespace(fake_kube)
    outcome = owner_access.reset(fake_kube, "store-a", "ev-1", settings)
    assert outcome.created
    job = fake_kube.get("Job", "admin-password-store-a", PLATFORM)
    assert job["spec"]["backoffLimit"] == 0
    account = job["spec"]["template"]["spec"]["serviceAccountName"]
    assert account == contract.runner_account("store-a")
    (box,) = job["spec"]["template"]["spec"]["containers"]
    assert box["command"] == ["python", "-m", "storeplatform.runner", "reset-admin-password"]
    env = env_of(job)
    assert (env["RESET_ID"], env["WP_CLI"], env["STORE_NAME"]) == ("ev-1", "/opt/wp", "store-a")
    assert "password" not in json.dumps(job).lower().replace("admin-password", "")


def test_a_redelivery_keeps_the_job_and_a_new_request_replaces_it(fake_kube, settings):
    store_namespace(fake_kube)
    owner_access.reset(fake_kube, "store-a", "ev-1", settings)
    first = fake_kube.get("Job", "admin-password-store-a", PLATFORM)["metadata"]["uid"]
    assert not owner_access.reset(fake_kube, "store-a", "ev-1", settings).created
    assert owner_access.reset(fake_kube, "store-a", "ev-2", settings).created
    job = fake_kube.get("Job", "admin-password-store-a", PLATFORM)
    assert job["metadata"]["uid"] != first
    assert env_of(job)["RESET_ID"] == "ev-2"


@pytest.mark.parametrize(("phase", "present", "code"), [
    ("ready", False, "store_not_found"),
    ("deleting", True, "store_deleting"),
    (None, True, "store_not_ready"),
    ("failed", True, "store_not_ready"),
])
def test_a_reset_of_a_store_that_cannot_take_one_is_refused(fake_kube, settings, phase,
                                                            present, code):
    if present:
        store_namespace(fake_kube, phase=phase)
    with pytest.raises(PlatformError) as raised:
        owner_access.reset(fake_kube, "store-a", "ev-1", settings)
    assert (raised.value.kind, raised.value.code) == (Kind.INVALID, code)
    assert not fake_kube.of_kind("Job")


def one_time_secret(fake_kube, reset_id="ev-1", phase="applied",
                    expires="2026-01-01T12:15:00Z"):
    annotations = {contract.ANNOTATION_RESET_ID: reset_id, contract.ANNOTATION_PHASE: phase,
                   contract.ANNOTATION_EXPIRES_AT: expires}
    encoded = {k: base64.b64encode(v.encode()).decode()
               for k, v in {"user": "admin", "password": "s3cret-new"}.items()}
    return fake_kube.add({"apiVersion": "v1", "kind": "Secret", "metadata": {
        "name": contract.ADMIN_PASSWORD_SECRET, "namespace": "store-a",
        "annotations": annotations}, "data": encoded})


def reveal(fake_kube, reset_id="ev-1", now=NOW):
    return owner_access.reveal(fake_kube, "store-a", reset_id, PLATFORM, now)


def test_the_password_is_handed_over_once(fake_kube):
    store_namespace(fake_kube, reset={"id": "ev-1", "state": "applied"})
    one_time_secret(fake_kube)
    shown = reveal(fake_kube)
    assert shown == {"name": "store-a", "id": "ev-1", "state": "shown", "user": "admin",
                     "password": "s3cret-new"}
    assert not fake_kube.of_kind("Secret")
    again = reveal(fake_kube)
    assert (again["state"], again["code"]) == ("gone", "already_shown")
    assert "password" not in again


def test_of_two_callers_that_both_read_the_secret_only_the_one_that_deletes_it_wins(fake_kube):
    store_namespace(fake_kube, reset={"id": "ev-1", "state": "applied"})
    secret = one_time_secret(fake_kube)
    fake_kube.delete_exactly("Secret", secret["metadata"]["name"], "store-a",
                             secret["metadata"]["uid"])  # the other caller, just before
    fake_kube.add(secret)  # ... as this caller still sees it: same uid, deleted already
    fake_kube.objects[("Secret", "store-a", secret["metadata"]["name"])]["metadata"]["uid"] = \
        "recreated"  # what stands now is not the object this caller read
    lost = owner_access._hand_over(fake_kube, "store-a", secret, {"name": "store-a",
                                                                  "id": "ev-1"}, NOW)
    assert (lost["state"], lost["code"]) == ("gone", "already_shown")


def test_an_expired_password_is_discarded_not_shown(fake_kube):
    store_namespace(fake_kube, reset={"id": "ev-1", "state": "applied"})
    one_time_secret(fake_kube, expires="2026-01-01T11:59:00Z")
    answer = reveal(fake_kube)
    assert (answer["state"], answer["code"]) == ("gone", "expired")
    assert not fake_kube.of_kind("Secret")


def test_while_wp_cli_runs_the_answer_is_pending(fake_kube):
    store_namespace(fake_kube, reset={"id": "ev-1", "state": "running"})
    one_time_secret(fake_kube, phase="setting")
    assert reveal(fake_kube)["state"] == "pending"
    assert fake_kube.of_kind("Secret")  # not handed over half-done


def test_a_failed_reset_says_why(fake_kube):
    store_namespace(fake_kube, reset={"id": "ev-1", "state": "failed",
                                      "reason": "wp user update failed: no such user"})
    answer = reveal(fake_kube)
    assert answer == {"name": "store-a", "id": "ev-1", "state": "failed",
                      "code": "reset_failed", "message": "wp user update failed: no such user"}


def test_a_reset_not_started_yet_is_pending_and_a_dead_lettered_one_failed(fake_kube):
    store_namespace(fake_kube, reset={"id": "ev-0", "state": "applied"})
    assert reveal(fake_kube)["progress"] == "waiting for the reset job to start"
    letter = {"id": "ev-1", "type": contract.RESET_ADMIN_PASSWORD, "subject": "store-a",
              "time": "2026-01-01T12:00:00Z", "error": "HTTP 400 store_not_ready"}
    fake_kube.add(deadletters.kube_event(letter, PLATFORM) | {"metadata": {
        "name": "dead-letter-1", "namespace": PLATFORM}})
    answer = reveal(fake_kube)
    assert (answer["state"], answer["code"]) == ("failed", "undeliverable")
    assert "store_not_ready" in answer["message"]


def test_no_store_no_password(fake_kube):
    answer = reveal(fake_kube)
    assert (answer["state"], answer["code"]) == ("gone", "store_not_found")
