"""delete-store's translation: which events it refuses before Kubernetes, and what it starts."""

import pytest

from storeplatform import delete_store
from tests.helpers import MODES, encode, error_of
from tests.unit.conftest import RUNNER


def post(kube, data, mode="binary", subject=None):
    headers, body = encode("io.storeplatform.store.delete", data, mode, subject=subject)
    return delete_store.create_app(RUNNER, kube=kube).test_client().post(
        "/", headers=headers, data=body)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("data", "code"), [
    ({"name": "shop-a"}, "invalid_name"),
    ({"name": "store-a", "extra": 1}, "unknown_field"),
    ({}, "invalid_name"),
    ("store-a", "invalid_data"),
])
def test_bad_delete_events_are_rejected_before_kubernetes(untouchable, mode, data, code):
    response = post(untouchable, data, mode)
    assert (response.status_code, error_of(response)["code"]) == (400, code)


def test_subject_must_match_the_name(untouchable):
    assert error_of(post(untouchable, {"name": "store-a"}, subject="store-b"))["code"] == (
        "subject_mismatch")


@pytest.mark.parametrize("mode", MODES)
def test_a_delete_event_may_name_any_engine_it_is_ignored(fake_kube, mode):
    response = post(fake_kube, {"name": "store-a", "engine": "medusa"}, mode)
    assert response.status_code == 202
    # No such store: nothing to do but remember the delete (the tombstone S1 needs).
    (record,) = fake_kube.objects.values()
    assert (record["kind"], record["metadata"]["name"], record["data"]["action"]) == (
        "ConfigMap", "intent-store-a", "delete")


def test_missing_runner_image_fails_at_start_naming_it(monkeypatch):
    monkeypatch.delenv("RUNNER_IMAGE", raising=False)
    with pytest.raises(Exception, match="RUNNER_IMAGE"):
        delete_store.create_app({}, kube=object())
