"""The ordering rule as pure decisions: which intent is later, what is stale, busy or due."""

from datetime import UTC, datetime, timedelta

import pytest
from cloudevents.core.v1.event import CloudEvent

from storeplatform import intent
from storeplatform.errors import Kind, PlatformError
from storeplatform.intent import Intent, Verdict

T0 = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)
NS = "storeplatform"


def at(seconds: float, action: str = intent.CREATE, event_id: str = "e") -> Intent:
    return Intent(action, T0 + timedelta(seconds=seconds), event_id, "/tests")


def record_of(wanted: Intent, lease_until=None, updated=None, expires=True) -> intent.Record:
    obj = intent.record_object("store-a", wanted, NS, updated or wanted.time,
                               lease_until=lease_until, expires=expires)
    obj["metadata"]["resourceVersion"] = "7"
    return intent.read_record(obj)


@pytest.mark.parametrize(("recorded", "incoming", "verdict"), [
    (None, at(0), Verdict.APPLY),
    (at(0, intent.DELETE), at(-1, intent.CREATE), Verdict.STALE),  # S1: delete before create
    (at(5, intent.DELETE), at(0, intent.CREATE), Verdict.STALE),  # S2: old create retried
    (at(5, intent.CREATE), at(0, intent.DELETE), Verdict.STALE),  # S3: old delete retried
    (at(0, intent.CREATE), at(1, intent.DELETE), Verdict.APPLY),  # newer intent
    (at(0, intent.CREATE, "e-1"), at(0, intent.CREATE, "e-1"), Verdict.APPLY),  # redelivery
    (at(0, intent.CREATE, "b"), at(0, intent.DELETE, "a"), Verdict.STALE),  # tie: smaller id
    (at(0, intent.DELETE, "a"), at(0, intent.CREATE, "b"), Verdict.APPLY),  # tie: greater id
], ids=["nothing-recorded", "S1", "S2", "S3", "newer", "same-event", "tie-lower-id",
        "tie-higher-id"])
def test_latest_event_time_wins_ties_by_event_id(recorded, incoming, verdict):
    record = record_of(recorded) if recorded else None
    assert intent.judge(record, incoming, T0 + timedelta(minutes=5)) is verdict


def test_a_held_record_makes_a_newer_event_wait_but_a_stale_one_is_still_stale():
    held = record_of(at(0), lease_until=T0 + timedelta(seconds=30))
    assert intent.judge(held, at(1, intent.DELETE), T0 + timedelta(seconds=10)) is Verdict.BUSY
    assert intent.judge(held, at(-1, intent.DELETE), T0 + timedelta(seconds=10)) is (
        Verdict.STALE)
    # A lease ends by itself: a crashed delivery blocks the store for the lease at most.
    assert intent.judge(held, at(1, intent.DELETE), T0 + timedelta(seconds=31)) is (
        Verdict.APPLY)


def test_the_record_round_trips_and_remembers_what_it_superseded():
    delete = record_of(at(0, intent.DELETE, "d-1"))
    obj = intent.record_object("store-a", at(9, intent.CREATE, "c-1"), NS, T0, lease_until=None,
                               expires=False, previous=delete, resource_version="7")
    assert obj["metadata"]["name"] == "intent-store-a"
    assert obj["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "storeplatform",
                                         "storeplatform.io/store": "store-a",
                                         "app.kubernetes.io/component": "intent"}
    assert obj["metadata"]["resourceVersion"] == "7"
    assert obj["data"]["eventTime"] == "2026-05-01T12:00:09.000000Z"
    assert '"eventId": "d-1"' in obj["data"]["previous"]  # the delete is not forgotten
    back = intent.read_record(obj)
    assert back.intent == at(9, intent.CREATE, "c-1")
    assert (back.lease_until, back.expires) == (None, False)
    # Applying the same create again keeps what it superseded.
    again = intent.record_object("store-a", back.intent, NS, T0, lease_until=None,
                                 expires=False, previous=back)
    assert again["data"]["previous"] == obj["data"]["previous"]


@pytest.mark.parametrize("data", [
    {}, {"action": "upgrade", "eventTime": "2026-05-01T12:00:09.000000Z"},
    {"action": "create", "eventTime": "yesterday"}])
def test_anything_but_a_record_reads_as_no_record(data):
    assert intent.read_record(None) is None
    assert intent.read_record({"metadata": {"resourceVersion": "1"}, "data": data}) is None


def test_an_event_time_is_its_order_and_a_missing_time_is_the_receive_time():
    with_time = CloudEvent(attributes={"type": "t", "source": "/p", "id": "e-1",
                                       "time": T0 + timedelta(hours=2)}, data={})
    got = intent.of_event(intent.DELETE, with_time, received_at=T0)
    assert got == Intent(intent.DELETE, T0 + timedelta(hours=2), "e-1", "/p")
    # The SDK gives an event without `time` the moment it was parsed, i.e. received.
    before = datetime.now(UTC)
    without = CloudEvent(attributes={"type": "t", "source": "/p", "id": "e-2"}, data={})
    assert intent.of_event(intent.CREATE, without, received_at=T0).time >= before


def test_an_event_from_the_future_is_refused_beyond_the_allowed_skew():
    intent.check_clock(at(299), T0, 300)
    with pytest.raises(PlatformError) as err:
        intent.check_clock(at(301), T0, 300)
    assert (err.value.kind, err.value.code) == (Kind.INVALID, "event_time_in_future")
    assert "check the producer's clock" in err.value.message


def test_only_expiring_free_old_records_are_sweepable():
    now = T0 + timedelta(hours=25)
    assert intent.sweepable(record_of(at(0, intent.DELETE)), now, 86400)
    assert not intent.sweepable(record_of(at(0, intent.DELETE)), T0 + timedelta(hours=1), 86400)
    assert not intent.sweepable(record_of(at(0), expires=False), now, 86400)
    assert not intent.sweepable(record_of(at(0, intent.DELETE),
                                          lease_until=now + timedelta(seconds=5)), now, 86400)
