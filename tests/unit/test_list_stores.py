"""list-stores: the list event answered with a store.list.result event; the dead-letter sink."""

import base64
import time
from datetime import UTC, datetime

import pytest
from cloudevents.core.bindings.http import HTTPMessage, from_http_event

from storeplatform import contract, list_stores, manifests
from storeplatform.lifecycle import cluster
from tests.helpers import MODES, encode, error_of


def client(kube):
    return list_stores.create_app({}, kube=kube).test_client()


def listed(response) -> dict:
    assert response.status_code == 200, response.data
    return from_http_event(HTTPMessage(headers=dict(response.headers),
                                       body=response.data)).get_data()


@pytest.mark.parametrize("mode", MODES)
def test_list_with_data_fields_is_400(untouchable, mode):
    headers, body = encode("io.storeplatform.store.list", {"filter": "x"}, mode)
    response = client(untouchable).post("/", headers=headers, data=body)
    assert (response.status_code, error_of(response)["code"]) == (400, "unknown_field")


@pytest.mark.parametrize("mode", MODES)
def test_the_answer_is_a_list_result_event_with_the_view(fake_kube, mode):
    fake_kube.add(manifests.namespace("store-a", "woocommerce", datetime.now(UTC)))
    headers, body = encode("io.storeplatform.store.list", {}, mode)
    response = client(fake_kube).post("/", headers=headers, data=body)
    assert response.status_code == 200
    answer = from_http_event(HTTPMessage(headers=dict(response.headers), body=response.data))
    assert answer.get_type() == contract.LIST_RESULT == "io.storeplatform.store.list.result"
    assert answer.get_source() == contract.LIST_SOURCE
    assert answer.get_data() == cluster.view(cluster.read_state(fake_kube, "storeplatform"))


def test_a_dead_letter_is_kept_as_an_event_in_the_platform_namespace(fake_kube):
    headers, body = encode("io.storeplatform.store.delete", {"name": "store-a"}, "binary",
                           subject="store-a", event_id="e-9")
    headers |= {"ce-knativeerrorcode": "500", "ce-knativeerrordata":
                base64.b64encode(b"boom").decode()}
    response = client(fake_kube).post("/dead-letter", headers=headers, data=body)
    assert (response.status_code, response.data) == (202, b"")
    (event,) = fake_kube.of_kind("Event")
    assert event["metadata"]["namespace"] == "storeplatform"
    assert event["reason"] == contract.DEAD_LETTER_REASON
    assert '"id": "e-9"' in event["message"] and "HTTP 500 boom" in event["message"]


def test_a_dead_letter_that_is_no_store_event_is_400(untouchable):
    headers, body = encode("io.example.other", {}, "binary")
    response = client(untouchable).post("/dead-letter", headers=headers, data=body)
    assert (response.status_code, error_of(response)["code"]) == (400, "unexpected_event_type")


def test_lists_are_answered_from_memory_once_the_cache_is_synced(fake_kube):
    """Steady state: no API call per list event; a change shows in the next answer."""
    fake_kube.add(manifests.namespace("store-a", "woocommerce", datetime.now(UTC)))
    app = client(fake_kube)
    headers, body = encode("io.storeplatform.store.list", {}, "binary")
    assert [s["name"] for s in listed(app.post("/", headers=headers, data=body))["stores"]] \
        == ["store-a"]
    calls = len(fake_kube.calls)
    for _ in range(20):
        app.post("/", headers=headers, data=body)
    assert fake_kube.calls[calls:] == []
    fake_kube.add(manifests.namespace("store-b", "woocommerce", datetime.now(UTC)))
    deadline = time.monotonic() + 5
    while len(listed(app.post("/", headers=headers, data=body))["stores"]) < 2:
        assert time.monotonic() < deadline, "the new namespace never showed"
        time.sleep(0.01)
    assert {call[0] for call in fake_kube.calls[calls:]} <= {"watch"}


def test_a_cache_that_cannot_sync_answers_503(fake_kube):
    fake_kube.refuse_lists = True
    app = list_stores.create_app({"CACHE_SYNC_TIMEOUT": 0.2}, kube=fake_kube)
    headers, body = encode("io.storeplatform.store.list", {}, "binary")
    response = app.test_client().post("/", headers=headers, data=body)
    assert (response.status_code, error_of(response)["code"]) == (503, "cache_not_synced")


# ---------------------------------------------------------------- issue 15


def sample(name, **labels):
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.parametrize("mode", MODES)
def test_runner_outcomes_become_duration_samples_once_per_event(untouchable, mode):
    app = client(untouchable)
    count = sample("storeplatform_provisioning_duration_seconds_count", outcome="ready")
    headers, body = encode(contract.READY, {"name": "store-a", "action": "install",
                                            "durationSeconds": 73.5}, mode, subject="store-a",
                           event_id=f"ready-{mode}")
    for _ in range(2):  # a redelivery of the same event
        assert app.post("/lifecycle", headers=headers, data=body).status_code == 202
    assert sample("storeplatform_provisioning_duration_seconds_count", outcome="ready") == \
        count + 1


def test_a_lifecycle_event_without_a_duration_is_acknowledged_and_not_observed(untouchable):
    count = sample("storeplatform_deletion_duration_seconds_count", outcome="deleted")
    headers, body = encode(contract.DELETED, {"name": "store-a"}, "binary", subject="store-a")
    assert client(untouchable).post("/lifecycle", headers=headers, data=body).status_code == 202
    assert sample("storeplatform_deletion_duration_seconds_count", outcome="deleted") == count


def test_the_list_sets_the_stores_gauge_and_a_scrape_refreshes_it(fake_kube):
    app = client(fake_kube)
    fake_kube.add(manifests.namespace("store-a", "woocommerce", datetime.now(UTC)))
    headers, body = encode("io.storeplatform.store.list", {}, "binary")
    app.post("/", headers=headers, data=body)
    assert sample("storeplatform_stores", status="provisioning") == 1
    fake_kube.add(manifests.namespace("store-b", "woocommerce", datetime.now(UTC)))
    deadline = time.monotonic() + 5  # the scrape reads the watch cache, which sees it soon
    while b'storeplatform_stores{status="provisioning"} 2.0' not in app.get("/metrics").data:
        assert time.monotonic() < deadline, "the scrape never counted the new store"
        time.sleep(0.01)


def test_dead_letters_are_counted_by_type(fake_kube):
    before = sample("storeplatform_dead_letters_total", type=contract.CREATE)
    headers, body = encode(contract.CREATE, {"name": "x"}, "binary")
    assert client(fake_kube).post("/dead-letter", headers=headers, data=body).status_code == 202
    assert sample("storeplatform_dead_letters_total", type=contract.CREATE) == before + 1


@pytest.mark.parametrize("mode", MODES)
def test_a_reveal_is_answered_with_a_result_event(fake_kube, mode):
    headers, body = encode(contract.REVEAL_ADMIN_PASSWORD, {"name": "store-a", "id": "ev-1"},
                           mode)
    response = client(fake_kube).post("/admin-password", headers=headers, data=body)
    answer = from_http_event(HTTPMessage(headers=dict(response.headers), body=response.data))
    assert response.status_code == 200 and answer.get_type() == contract.REVEAL_RESULT
    assert answer.get_data()["state"] == "gone"  # no such store


@pytest.mark.parametrize("data", [{"name": "store-a"}, {"name": "store-a", "id": "a b"},
                                  {"name": "store-a", "id": "e", "extra": 1}, []])
def test_a_bad_reveal_is_400(untouchable, data):
    headers, body = encode(contract.REVEAL_ADMIN_PASSWORD, data, "binary")
    response = client(untouchable).post("/admin-password", headers=headers, data=body)
    assert response.status_code == 400
