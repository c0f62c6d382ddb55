"""traceparent (tracing.py): parsing by the W3C rules, continuing a trace, the event extension."""

import pytest

from storeplatform import tracing
from storeplatform.events import new_event

VALID = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_a_valid_traceparent_is_parsed():
    trace = tracing.parse(VALID)
    assert trace == tracing.Trace("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", "01")
    assert trace.header() == VALID


@pytest.mark.parametrize("value", [
    None, "", 42, "garbage",
    "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # all-zero trace id
    "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  # all-zero span id
    "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  # forbidden version
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",  # v00 has 4 fields
    "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",  # short trace id
])
def test_invalid_values_are_refused(value):
    assert tracing.parse(value) is None


def test_a_later_version_with_more_fields_is_read_by_its_first_four():
    assert tracing.parse(VALID.replace("00-", "01-", 1) + "-what-comes").trace_id == \
        "4bf92f3577b34da6a3ce929d0e0e4736"


def test_continuing_keeps_the_trace_and_makes_a_new_span():
    child = tracing.continued(VALID)
    assert child.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert child.span_id != "00f067aa0ba902b7" and len(child.span_id) == 16


def test_without_a_valid_parent_a_new_trace_starts():
    first, second = tracing.continued("nonsense"), tracing.continued(None)
    assert first.trace_id != second.trace_id
    assert tracing.parse(first.header()) == first


def test_events_carry_it_as_the_traceparent_extension():
    event = new_event("t", "/s", None, {}, traceparent=VALID)
    assert event.get_extension("traceparent") == VALID
    assert tracing.of_event(event).trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert tracing.of_event(new_event("t", "/s", None, {})) is None
