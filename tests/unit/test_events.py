"""CloudEvents in and out, in both HTTP content modes."""

import pytest

from storeplatform import events
from storeplatform.errors import Kind, PlatformError
from tests.helpers import MODES, encode, free_port


@pytest.mark.parametrize("mode", MODES)
def test_both_modes_parse_to_the_same_event(mode):
    headers, body = encode("io.storeplatform.store.create", {"name": "store-a"}, mode,
                           subject="store-a", event_id="e-1")
    event = events.parse_event(headers, body)
    assert (event.get_id(), event.get_type(), event.get_subject(), event.get_data()) == (
        "e-1", "io.storeplatform.store.create", "store-a", {"name": "store-a"})


@pytest.mark.parametrize(("headers", "body", "code"), [
    ({"Content-Type": "application/json"}, b"{}", "not_a_cloudevent"),
    ({"Content-Type": "application/cloudevents+json"}, b"{not json", "invalid_cloudevent"),
    ({"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/t", "ce-type": "t",
      "Content-Type": "application/json"}, b"not json", "invalid_data"),
])
def test_what_is_no_usable_cloudevent_is_invalid(headers, body, code):
    with pytest.raises(PlatformError) as err:
        events.parse_event(headers, body)
    assert (err.value.kind, err.value.code) == (Kind.INVALID, code)


def test_new_events_get_an_id_a_time_and_json_data():
    event = events.new_event("t", "/s", None, {"a": 1})
    assert event.get_id() and event.get_time()
    assert event.get_subject() is None
    assert event.get_datacontenttype() == "application/json"


def test_an_event_response_is_binary_mode():
    body, status, headers = events.event_response(events.new_event("t", "/s", "x", {"a": 1}))
    assert status == 200 and headers["ce-type"] == "t" and body == b'{"a": 1}'


def test_only_http_receivers():
    with pytest.raises(ValueError, match="http"):
        events.send_event("file:///etc/passwd", events.new_event("t", "/s", None, {}), 1.0)


def test_a_receiver_that_never_answers_is_a_timeout_that_may_still_apply(silent_server):
    """Knative's channel answers only once the subscriber did: no answer is not "nothing"."""
    with pytest.raises(PlatformError) as err:
        events.send_event(silent_server, events.new_event("t", "/s", None, {}), 0.3)
    assert (err.value.kind, err.value.code) == (Kind.UPSTREAM_TIMEOUT, "sink_timeout")
    assert "may still be applied" in err.value.message and "safe" in err.value.message


def test_a_closed_port_is_unavailable_and_nothing_was_changed():
    with pytest.raises(PlatformError) as err:
        events.send_event(f"http://127.0.0.1:{free_port()}/",
                          events.new_event("t", "/s", None, {}), 1.0)
    assert (err.value.kind, err.value.code) == (Kind.UPSTREAM_UNAVAILABLE, "sink_unavailable")
    assert "nothing was changed" in err.value.message
