"""Latest intent wins, on the fake verbs: the issue's sequences S1-S3, duplicates, ties,
racing deliveries, the lease, and the sweep of expired records.
"""

import json
from datetime import UTC, datetime, timedelta

import pytest

from storeplatform import contract, intent
from storeplatform.errors import Kind, PlatformError
from storeplatform.intent import Intent
from storeplatform.lifecycle import deprovision, intents, provision
from tests.unit.fakekube import FakeKube

NS = "storeplatform"
T0 = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)
INSTALL, DELETE_JOB = "helm-install-store-a", "helm-delete-store-a"


class Clock:
    """Wall time the test moves by hand."""

    def __init__(self, start: datetime = T0 + timedelta(minutes=1)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def settings(create_settings):
    return create_settings


def event(action, seconds, event_id=None):
    return Intent(action, T0 + timedelta(seconds=seconds), event_id or f"{action}-{seconds}",
                  "/tests")


def create(kube, at, settings, clock, event_id=None):
    return provision.create(kube, "store-a", "woocommerce",
                            event(intent.CREATE, at, event_id), settings, clock)


def delete(kube, at, settings, clock, event_id=None):
    return deprovision.delete(kube, "store-a", event(intent.DELETE, at, event_id), settings,
                              clock)


def record(kube) -> dict:
    return kube.get("ConfigMap", "intent-store-a", NS)


def delete_finished(kube):
    """What the delete runner leaves: its Job finished, the namespace gone, and with it all
    in it and what it owns (the store's runner account)."""
    kube.set_job_state(DELETE_JOB, NS, "succeeded")
    owned = ("ServiceAccount", NS, contract.runner_account("store-a"))
    for key in [k for k in kube.objects
                if k[1] == "store-a" or k[0] == "Namespace" or k == owned]:
        del kube.objects[key]


def test_s1_a_delete_before_its_create_leaves_no_store(fake_kube, settings, clock):
    assert str(delete(fake_kube, 2, settings, clock)) == "store does not exist; nothing to do"
    outcome = create(fake_kube, 1, settings, clock)
    assert outcome.job is None and outcome.note.startswith("stale create at")
    assert "latest intent: delete at 2026-05-01T12:00:02.000000Z" in outcome.note
    assert fake_kube.of_kind("Namespace") == [] and fake_kube.of_kind("Job") == []
    assert record(fake_kube)["data"]["action"] == "delete"


def test_s2_a_retried_old_create_does_not_bring_a_deleted_store_back(fake_kube, settings,
                                                                      clock):
    create(fake_kube, 1, settings, clock)
    fake_kube.set_job_state(INSTALL, NS, "succeeded")
    delete(fake_kube, 2, settings, clock)
    delete_finished(fake_kube)
    assert create(fake_kube, 1, settings, clock).note.startswith("stale")
    assert fake_kube.of_kind("Namespace") == []
    assert [j["metadata"]["name"] for j in fake_kube.of_kind("Job")] == [DELETE_JOB]


def test_s3_a_retried_old_delete_does_not_destroy_the_store_made_again(fake_kube, settings,
                                                                       clock):
    create(fake_kube, 1, settings, clock)
    delete(fake_kube, 2, settings, clock)
    delete_finished(fake_kube)
    created = create(fake_kube, 3, settings, clock)
    assert created.created  # the store is made again ...
    assert delete(fake_kube, 2, settings, clock).note.startswith("stale delete at")
    namespace = fake_kube.get("Namespace", "store-a")  # ... and the old delete changed nothing
    assert contract.ANNOTATION_PHASE not in namespace["metadata"]["annotations"]
    assert [j["metadata"]["name"] for j in fake_kube.of_kind("Job")] == [INSTALL]


def test_a_create_removes_the_finished_delete_job_but_the_record_keeps_the_delete(
        fake_kube, settings, clock):
    delete(fake_kube, 2, settings, clock, event_id="d-1")
    fake_kube.add({"apiVersion": "batch/v1", "kind": "Job", "metadata": {
        "name": DELETE_JOB, "namespace": NS, "labels": contract.store_labels("store-a")}})
    fake_kube.set_job_state(DELETE_JOB, NS, "succeeded")
    create(fake_kube, 3, settings, clock)
    assert [j["metadata"]["name"] for j in fake_kube.of_kind("Job")] == [INSTALL]
    data = record(fake_kube)["data"]
    assert (data["action"], data["eventId"]) == ("create", "create-3")
    assert json.loads(data["previous"]) == {"action": "delete", "eventId": "d-1",
                                            "eventTime": "2026-05-01T12:00:02.000000Z"}


def test_the_same_event_again_is_applied_again_idempotently(fake_kube, settings, clock):
    first = create(fake_kube, 1, settings, clock, event_id="c-1")
    again = create(fake_kube, 1, settings, clock, event_id="c-1")
    assert (first.created, again.created, str(again)) == (True, False, f"job {INSTALL} kept")
    assert len(fake_kube.of_kind("Job")) == 1


def test_equal_times_are_ordered_by_event_id(fake_kube, settings, clock):
    create(fake_kube, 1, settings, clock, event_id="b")
    assert delete(fake_kube, 1, settings, clock, event_id="a").note.startswith("stale")
    assert delete(fake_kube, 1, settings, clock, event_id="c").job == DELETE_JOB


def test_an_applied_create_is_released_and_kept_a_delete_keeps_expiring(fake_kube, settings,
                                                                         clock):
    create(fake_kube, 1, settings, clock)
    meta, data = record(fake_kube)["metadata"], record(fake_kube)["data"]
    assert data["leaseUntil"] == "" and intent.LABEL_EXPIRES not in meta["labels"]
    delete(fake_kube, 2, settings, clock)
    assert record(fake_kube)["metadata"]["labels"][intent.LABEL_EXPIRES] == "true"


def test_a_failed_apply_keeps_the_claim_so_older_events_stay_stale(fake_kube, settings, clock):
    fake_kube.add({"apiVersion": "batch/v1", "kind": "Job", "metadata": {
        "name": DELETE_JOB, "namespace": NS, "labels": contract.store_labels("store-a")}})
    with pytest.raises(PlatformError) as err:  # the delete Job is still running
        create(fake_kube, 5, settings, clock)
    assert err.value.code == "store_deleting"
    data = record(fake_kube)["data"]
    assert (data["action"], data["leaseUntil"]) == ("create", "")  # claimed, released
    assert record(fake_kube)["metadata"]["labels"][intent.LABEL_EXPIRES] == "true"
    assert delete(fake_kube, 4, settings, clock).note.startswith("stale")


def test_a_newer_event_waits_while_another_delivery_holds_the_record(fake_kube, settings,
                                                                     clock):
    held = intent.record_object("store-a", event(intent.CREATE, 1), NS, clock(),
                                lease_until=clock() + timedelta(seconds=30), expires=True)
    fake_kube.add(held)
    with pytest.raises(PlatformError) as err:
        delete(fake_kube, 2, settings, clock)
    assert (err.value.kind, err.value.code) == (Kind.RETRY_LATER, "store_busy")
    clock.advance(31)  # the holder died: its lease ends by itself
    assert str(delete(fake_kube, 2, settings, clock)) == "store does not exist; nothing to do"


class RacingKube(FakeKube):
    """Lets a rival delivery write the record just before this one's first write of it
    (after its read, or, for a create, which writes first, before its create)."""

    def __init__(self, rival):
        super().__init__()
        self.rival = rival

    def _race(self, obj):
        if obj["kind"] == "ConfigMap" and self.rival:
            rival, self.rival = self.rival, None
            rival(self)

    def create_or_keep(self, obj):
        self._race(obj)
        return super().create_or_keep(obj)

    def replace(self, obj):
        self._race(obj)
        return super().replace(obj)


@pytest.mark.parametrize(("rival_at", "mine_at", "verdict"), [
    (5, 3, "stale"),  # the rival is newer: mine is judged against it and ignored
    (3, 5, "busy"),  # the rival is older but holds the record: mine waits for it
])
def test_two_racing_deliveries_cannot_both_win(settings, clock, rival_at, mine_at, verdict):
    def rival(kube):
        intents.claim(kube, "store-a", event(intent.DELETE, rival_at), settings, clock)

    kube = RacingKube(rival)
    if verdict == "stale":
        assert create(kube, mine_at, settings, clock).note.startswith("stale")
    else:
        with pytest.raises(PlatformError) as err:
            create(kube, mine_at, settings, clock)
        assert err.value.code == "store_busy"
    assert record(kube)["data"]["eventId"] == f"delete-{rival_at}"  # the rival's claim stands
    assert kube.of_kind("Namespace") == []


class SlowKube(FakeKube):
    """Every call takes `seconds` of the test clock."""

    def __init__(self, clock, seconds):
        super().__init__()
        self.clock, self.seconds = clock, seconds

    def read_or_none(self, *args, **kwargs):
        self.clock.advance(self.seconds)
        return super().read_or_none(*args, **kwargs)


def test_a_delivery_stops_acting_once_its_lease_is_nearly_over(settings, clock):
    kube = SlowKube(clock, 8)  # lease 45 s, margin 2 x 10 s + 1: no call after 24 s
    with pytest.raises(PlatformError) as err:
        create(kube, 1, settings, clock)
    assert err.value.code == "lease_expired"
    assert kube.of_kind("Job") == []  # it gave up before starting the runner
    assert record(kube)["data"]["leaseUntil"] == ""


@pytest.mark.parametrize("mode", ["binary", "structured"])
def test_the_functions_answer_a_stale_event_with_an_empty_202(fake_kube, mode):
    from storeplatform import create_store, delete_store
    from tests.helpers import encode
    from tests.unit.conftest import RUNNER

    later = {"time": "2030-01-01T00:00:00Z"}
    headers, body = encode("io.storeplatform.store.delete", {"name": "store-a"}, mode,
                           subject="store-a", event_id="d-1")
    headers, body = _with_time(headers, body, mode, later["time"])
    app = delete_store.create_app(RUNNER | {"MAX_CLOCK_SKEW_SECONDS": 10 ** 9}, kube=fake_kube)
    assert app.test_client().post("/", headers=headers, data=body).status_code == 202
    headers, body = encode("io.storeplatform.store.create", {"name": "store-a"}, mode,
                           subject="store-a", event_id="c-1")  # time: now, before 2030
    answer = create_store.create_app(RUNNER, kube=fake_kube).test_client().post(
        "/", headers=headers, data=body)
    assert (answer.status_code, answer.data) == (202, b"")
    assert fake_kube.of_kind("Namespace") == []


def _with_time(headers, body, mode, time):
    if mode == "binary":
        return headers | {"ce-time": time}, body
    event = json.loads(body)
    event["time"] = time
    return headers, json.dumps(event).encode()


def test_an_event_too_far_in_the_future_is_refused_and_records_nothing(fake_kube, settings,
                                                                       clock):
    with pytest.raises(PlatformError) as err:
        create(fake_kube, 3600, settings, clock)
    assert err.value.code == "event_time_in_future"
    assert fake_kube.objects == {}


def tombstone(kube, store, updated, expires=True, lease_until=None):
    obj = intent.record_object(store, Intent(intent.DELETE, updated, f"d-{store}", "/t"), NS,
                               updated, lease_until=lease_until, expires=expires)
    return kube.add(obj)


def test_the_sweep_removes_expired_records_of_stores_that_are_gone(fake_kube, settings, clock):
    old = clock() - timedelta(seconds=settings["INTENT_TTL_SECONDS"] + 1)
    tombstone(fake_kube, "store-gone", old)
    tombstone(fake_kube, "store-young", clock() - timedelta(seconds=60))
    tombstone(fake_kube, "store-standing", old, expires=False)  # an applied create
    tombstone(fake_kube, "store-failed-delete", old)
    fake_kube.add({"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": "store-failed-delete", "labels": contract.store_labels("store-failed-delete")}})
    assert intents.sweep(fake_kube, settings, clock) == ["intent-store-gone"]
    left = sorted(o["metadata"]["name"] for o in fake_kube.of_kind("ConfigMap"))
    assert left == ["intent-store-failed-delete", "intent-store-standing", "intent-store-young"]


def test_the_sweep_leaves_a_record_that_changed_since_it_was_listed(settings, clock):
    class Rewriting(FakeKube):
        def read_or_none(self, kind, name, namespace=None):
            if kind == "Namespace":  # a new delete arrives while the sweep looks
                self.patch("ConfigMap", "intent-store-gone", {"data": {"eventId": "d-new"}}, NS)
            return super().read_or_none(kind, name, namespace)

    kube = Rewriting()
    tombstone(kube, "store-gone", clock() - timedelta(days=2))
    assert intents.sweep(kube, settings, clock) == []
    assert record_named(kube, "intent-store-gone")["data"]["eventId"] == "d-new"


def record_named(kube, name):
    return kube.get("ConfigMap", name, NS)


def test_a_delete_event_sweeps_after_it_is_applied(fake_kube, settings, clock):
    tombstone(fake_kube, "store-old", clock() - timedelta(days=2))
    delete(fake_kube, 2, settings, clock)
    names = sorted(o["metadata"]["name"] for o in fake_kube.of_kind("ConfigMap"))
    assert names == ["intent-store-a"]


def test_a_new_stores_create_writes_its_record_without_reading_it(settings, clock):
    kube = FakeKube()
    create(kube, 1, settings, clock)
    intent_calls = [verb for verb, kind, name in kube.calls
                    if kind == "ConfigMap" and name == intent.record_name("store-a")]
    assert intent_calls == ["create", "replace"]  # claimed, then released
    delete(kube, 2, settings, clock)  # a delete reads its create's record first
    assert [verb for verb, kind, name in kube.calls
            if kind == "ConfigMap" and name == intent.record_name("store-a")][2:4] == [
        "read", "replace"]
