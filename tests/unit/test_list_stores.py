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
