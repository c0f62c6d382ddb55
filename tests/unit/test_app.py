"""What every CloudEvent function shares (app.py): decoding, JSON errors, the status of each
error kind, one log line per event, and Knative's delivery contract for 2xx answers.

Cases that must be rejected run with verbs that refuse to be used; the happy paths run on
the fake verbs here and against the real API server in tests/integration.
"""

import logging

import pytest

from storeplatform import app, create_store, delete_store, list_stores
from storeplatform.errors import Kind
from tests.helpers import MODES, encode, error_of
from tests.unit.conftest import RUNNER

APPS = {
    "create": (lambda kube: create_store.create_app(RUNNER, kube=kube),
               "io.storeplatform.store.create"),
    "delete": (lambda kube: delete_store.create_app(RUNNER, kube=kube),
               "io.storeplatform.store.delete"),
    "list": (lambda kube: list_stores.create_app({}, kube=kube), "io.storeplatform.store.list"),
}


@pytest.fixture(params=sorted(APPS))
def function(request, untouchable):
    make, event_type = APPS[request.param]
    return make(untouchable).test_client(), event_type


def test_every_error_kind_has_one_status():
    assert set(app.STATUS) == set(Kind)
    assert app.STATUS[Kind.RETRY_LATER] == app.STATUS[Kind.UPSTREAM_UNAVAILABLE] == 503


def test_health(function):
    client, _ = function
    assert client.get("/health").get_json() == {"status": "ok"}


@pytest.mark.parametrize(("headers", "body"), [
    ({"Content-Type": "application/json"}, b'{"name": "store-a"}'),
    ({}, b""),
    ({"Content-Type": "text/plain"}, b"hello"),
])
def test_not_a_cloudevent_is_400(function, headers, body):
    client, _ = function
    response = client.post("/", headers=headers, data=body)
    assert response.status_code == 400
    assert error_of(response)["code"] == "not_a_cloudevent"
    assert "binary mode" in error_of(response)["message"]


@pytest.mark.parametrize("mode", MODES)
def test_wrong_event_type_is_400(function, mode):
    client, _ = function
    headers, body = encode("io.storeplatform.store.explode", {"name": "store-a"}, mode)
    response = client.post("/", headers=headers, data=body)
    assert response.status_code == 400
    assert error_of(response)["code"] == "unexpected_event_type"


def test_structured_mode_with_broken_json_is_400(function):
    client, _ = function
    response = client.post("/", headers={"Content-Type": "application/cloudevents+json"},
                           data=b"{not json")
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_cloudevent"


def test_binary_mode_missing_required_attributes_is_400(function):
    client, _ = function
    response = client.post("/", headers={"ce-specversion": "1.0", "ce-id": "1",
                                         "Content-Type": "application/json"}, data=b"{}")
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_cloudevent"


def test_oversized_event_is_400(function):
    client, event_type = function
    headers, body = encode(event_type, {"name": "store-a", "pad": "x" * 70000}, "binary")
    response = client.post("/", headers=headers, data=body)
    assert response.status_code == 400
    assert error_of(response)["code"] == "body_too_large"


DEEP = 20_000  # well inside the 64 KiB limit, far past Python's recursion limit


@pytest.mark.parametrize(("headers", "body"), [
    ({"Content-Type": "application/cloudevents+json"}, b"[1, 2]"),
    ({"Content-Type": "application/cloudevents+json"}, b'"an event"'),
    ({"Content-Type": "application/cloudevents+json"}, b"42"),
    ({"Content-Type": "application/cloudevents+json"}, b"null"),
    ({"Content-Type": "application/cloudevents+json"}, b"[" * DEEP + b"]" * DEEP),
    ({"Content-Type": "application/cloudevents+json"},
     b'{"specversion": "1.0", "id": "1", "source": "/s", "type": "t", "data": '
     + b"[" * DEEP + b"]" * DEEP + b"}"),
    ({"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s", "ce-type": "t",
      "Content-Type": "application/json"}, b"[" * DEEP + b"]" * DEEP),
])
def test_deep_json_and_events_that_are_no_object_are_a_clean_400(function, headers, body):
    """A 500 would make the Broker retry a request that can never succeed."""
    client, _ = function
    response = client.post("/", headers=headers, data=body)
    assert response.status_code == 400, response.data
    assert error_of(response)["code"] in ("invalid_cloudevent", "invalid_json")
    assert "Traceback" not in response.get_data(as_text=True)


def test_errors_carry_no_parser_or_sdk_text(function):
    client, _ = function
    response = client.post("/", headers={"ce-specversion": "1.0", "ce-id": "1",
                                         "Content-Type": "application/json"}, data=b"{}")
    message = error_of(response)["message"]
    assert "KeyError" not in message and "'" not in message, message


def test_function_answers_say_nosniff(function):
    client, _ = function
    assert client.get("/health").headers["X-Content-Type-Options"] == "nosniff"
    assert client.post("/", data=b"x").headers["X-Content-Type-Options"] == "nosniff"


def test_an_unexpected_exception_is_a_500_without_its_text(untouchable):
    """The Untouchable verbs raise an AssertionError: its text must not reach the caller."""
    headers, body = encode("io.storeplatform.store.create", {"name": "store-a"}, "binary")
    response = APPS["create"][0](untouchable).test_client().post("/", headers=headers, data=body)
    assert response.status_code == 500
    assert error_of(response) == {"code": "internal",
                                  "message": "internal error; see the service log"}


# ---------------------------------------------------------------- Knative's delivery contract

DELIVERED = [
    ("create", "/", "io.storeplatform.store.create", {"name": "store-a"}),
    ("delete", "/", "io.storeplatform.store.delete", {"name": "store-a"}),
    ("delete", "/", "io.storeplatform.store.delete", {"name": "store-never-was"}),
    ("list", "/dead-letter", "io.storeplatform.store.create", {"name": "store-a"}),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("kind", "path", "event_type", "data"), DELIVERED)
def test_every_2xx_answer_to_the_broker_is_empty(fake_kube, kind, path, event_type, data,
                                                 mode):
    """The Broker answers 502 to a non-empty 2xx body that is no CloudEvent, and retries."""
    client = APPS[kind][0](fake_kube).test_client()
    for attempt in ("first", "redelivery"):
        headers, body = encode(event_type, data, mode, subject=data["name"], event_id="e-1")
        response = client.post(path, headers=headers, data=body)
        assert response.status_code == 202, (attempt, response.data)
        assert response.data == b"", attempt
        assert "ce-specversion" not in {key.lower() for key, _ in response.headers.items()}


def test_one_log_line_per_event_with_its_id_and_outcome(fake_kube, caplog):
    client = APPS["create"][0](fake_kube).test_client()
    headers, body = encode("io.storeplatform.store.create", {"name": "store-a"}, "binary",
                           event_id="e-42")
    with caplog.at_level(logging.INFO, logger="storeplatform.app"):
        client.post("/", headers=headers, data=body)
        client.post("/", headers=headers, data=body)
    lines = [r.getMessage() for r in caplog.records if r.name == "storeplatform.app"]
    assert lines == [
        "event e-42 io.storeplatform.store.create subject=None -> job helm-install-store-a "
        "created",
        "event e-42 io.storeplatform.store.create subject=None -> job helm-install-store-a kept",
    ]


def test_an_error_answer_keeps_its_json_body_and_is_logged(fake_kube, caplog):
    fake_kube.add({"kind": "Namespace", "metadata": {"name": "store-a"}})  # not the platform's
    headers, body = encode("io.storeplatform.store.create", {"name": "store-a"}, "binary",
                           event_id="e-7")
    with caplog.at_level(logging.INFO, logger="storeplatform.app"):
        response = APPS["create"][0](fake_kube).test_client().post("/", headers=headers,
                                                                    data=body)
    assert response.status_code == 422
    assert error_of(response)["code"] == "namespace_conflict"
    assert "event e-7 io.storeplatform.store.create subject=None -> 422 namespace_conflict" in (
        caplog.text)
