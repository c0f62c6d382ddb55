"""create-store's translation: which events it refuses before Kubernetes, and what it starts."""

from datetime import UTC, datetime

import pytest

from storeplatform import create_store, manifests
from tests.helpers import MODES, encode, error_of
from tests.unit.conftest import RUNNER

BAD_STORE_DATA = [
    ({"name": "shop-a"}, 400, "invalid_name"),
    ({"name": "store-A"}, 400, "invalid_name"),
    ({"name": "store-" + "x" * 40}, 400, "invalid_name"),
    ({"name": "store-a", "extra": 1}, 400, "unknown_field"),
    ({"engine": "woocommerce"}, 400, "invalid_name"),
    (["store-a"], 400, "invalid_data"),
    ({"name": "store-a", "engine": "shopify"}, 400, "invalid_engine"),
    ({"name": "store-a", "engine": "medusa"}, 501, "engine_not_available"),
]


def post(kube, data, mode="binary", subject=None, event_id=None):
    headers, body = encode("io.storeplatform.store.create", data, mode, subject=subject,
                           event_id=event_id)
    return create_store.create_app(RUNNER, kube=kube).test_client().post(
        "/", headers=headers, data=body)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("data", "status", "code"), BAD_STORE_DATA)
def test_bad_create_events_are_rejected_before_kubernetes(untouchable, mode, data, status, code):
    response = post(untouchable, data, mode)
    assert (response.status_code, error_of(response)["code"]) == (status, code)


def test_medusa_says_not_available_yet(untouchable):
    assert "not available yet" in error_of(post(untouchable, {"name": "store-a",
                                                              "engine": "medusa"}))["message"]


@pytest.mark.parametrize("mode", MODES)
def test_subject_must_match_the_name(untouchable, mode):
    response = post(untouchable, {"name": "store-a"}, mode, subject="store-b")
    assert error_of(response)["code"] == "subject_mismatch"


@pytest.mark.parametrize("mode", MODES)
def test_a_create_event_starts_the_install_job(fake_kube, mode):
    response = post(fake_kube, {"name": "store-a", "engine": "woocommerce"}, mode,
                    subject="store-a", event_id="e-1")
    assert response.status_code == 202
    (job,) = fake_kube.of_kind("Job")
    assert job["metadata"]["name"] == "helm-install-store-a"
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == RUNNER["RUNNER_IMAGE"]


def test_missing_runner_image_fails_at_start_naming_it(monkeypatch):
    monkeypatch.delenv("RUNNER_IMAGE", raising=False)
    with pytest.raises(Exception, match="RUNNER_IMAGE"):
        create_store.create_app({}, kube=object())


@pytest.mark.parametrize("mode", MODES)
def test_a_reset_event_on_its_own_route_starts_the_reset_job(fake_kube, mode):
    ns = manifests.namespace("store-a", "woocommerce", datetime.now(UTC))
    ns["metadata"]["annotations"]["storeplatform.io/phase"] = "ready"
    fake_kube.add(ns)
    app = create_store.create_app(RUNNER, kube=fake_kube).test_client()
    headers, body = encode("io.storeplatform.store.admin-password.reset", {"name": "store-a"},
                           mode, subject="store-a", event_id="reset-1")
    assert app.post("/admin-password", headers=headers, data=body).status_code == 202
    job = fake_kube.get("Job", "admin-password-store-a", "storeplatform")
    assert job["metadata"]["annotations"]["storeplatform.io/event-id"] == "reset-1"
    # ... and the create route does not take it.
    assert app.post("/", headers=headers, data=body).status_code == 400
