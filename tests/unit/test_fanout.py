"""fanout.all_of: results in order, every call run to its end, the first error by order."""

import contextvars
import threading

import pytest

from storeplatform import fanout

FIELD = contextvars.ContextVar("field", default="unset")


def test_results_come_in_the_order_of_the_calls():
    assert fanout.all_of(lambda: 1, lambda: 2, lambda: 3) == [1, 2, 3]
    assert fanout.all_of(lambda: "alone") == ["alone"]
    assert fanout.all_of() == []


def test_the_calls_overlap():
    """Three calls that each wait for the other two can only end if they run together."""
    barrier = threading.Barrier(3, timeout=10)
    assert fanout.all_of(barrier.wait, barrier.wait, barrier.wait) is not None


def test_every_call_ends_and_the_first_error_by_order_is_raised():
    ended = []

    def fails(message):
        def call():
            ended.append(message)
            raise ValueError(message)
        return call

    with pytest.raises(ValueError, match="second"):
        fanout.all_of(lambda: ended.append("first"), fails("second"), fails("third"))
    assert sorted(ended) == ["first", "second", "third"]


def test_calls_see_the_callers_context():
    FIELD.set("event-1")
    assert fanout.all_of(FIELD.get, FIELD.get) == ["event-1", "event-1"]


def test_a_call_that_fans_out_again_runs_its_calls_in_turn():
    """No pool thread waits for the pool (with nested waits a full pool would deadlock)."""
    def inner():
        return [threading.current_thread().name for _ in fanout.all_of(lambda: 0, lambda: 0)]

    outer = fanout.all_of(lambda: "caller", inner)
    assert outer[0] == "caller"
    assert len(set(outer[1])) == 1 and outer[1][0].startswith("fanout")


def test_the_first_call_runs_in_the_callers_thread_and_may_fan_out():
    barrier = threading.Barrier(2, timeout=10)

    def first():
        return [threading.current_thread().name, *fanout.all_of(barrier.wait, barrier.wait)]

    assert fanout.all_of(first, lambda: 0)[0][0] == threading.current_thread().name
