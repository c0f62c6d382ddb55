"""Latest intent wins, on the real control plane: the functions under gunicorn as their own
ServiceAccounts, the runner Jobs run by the job executor with real helm. Events are built
here with chosen ids and times, which is how reordering and redelivery of an old event are
injected (the real Broker path is tests/integration/test_devstack.py).

Every scenario ends by listing what is left on the cluster (and appends it to
artifacts/ordering/leftovers.jsonl).
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from datetime import timedelta

import pytest

from localkube.options import DEFAULT_BIN_DIR
from tests.integration.platform import CREATE, DELETE, ROOT, Event, Functions, now, running

pytestmark = pytest.mark.integration

LEFTOVERS = ROOT / "artifacts" / "ordering" / "leftovers.jsonl"


@pytest.fixture(scope="module")
def functions(cluster, tmp_path_factory):
    LEFTOVERS.parent.mkdir(parents=True, exist_ok=True)
    LEFTOVERS.write_text("")
    with running(cluster, tmp_path_factory.mktemp("ordering")) as running_functions:
        yield running_functions


def listed(scenario: str, functions: Functions, names: list[str]) -> dict[str, list[str]]:
    """What is left of the stores, kept as an artifact and returned for the assertions."""
    left = functions.leftovers(names)
    LEFTOVERS.parent.mkdir(parents=True, exist_ok=True)
    with LEFTOVERS.open("a") as out:
        out.write(json.dumps({"scenario": scenario, "left": left}) + "\n")
    return left


def nothing_but(left: dict[str, list[str]], **kinds: list[str]) -> bool:
    """True when `left` holds exactly `kinds` (nothing of any other kind), a finished Job's
    pods counting as part of their Job (they go with it at its TTL)."""
    jobs = kinds.get("jobs", [])
    pods = [p for p in left["runner pods"] if not any(p.startswith(j + "-") for j in jobs)]
    expected = {"namespaces": [], "jobs": [], "secrets": [], "runner accounts": [],
                "intent records": [], "role bindings": []} | kinds
    return {k: v for k, v in left.items() if k != "runner pods"} == expected and pods == []


def acknowledged(functions: Functions, event: Event) -> None:
    status, body, _ = functions.deliver(event)
    assert (status, body) == (202, b""), (event, status, body)


def helm_status(functions: Functions, store: str) -> str:
    out = subprocess.run([str(DEFAULT_BIN_DIR / "helm"), "list", "--namespace", store,
                          "--output", "json", "--kubeconfig", functions.cluster.kubeconfig],
                         capture_output=True, text=True, timeout=60, check=False)
    releases = json.loads(out.stdout or "[]") if out.returncode == 0 else []
    return releases[0]["status"] if releases else "none"


def test_s1_a_delete_that_arrives_before_its_create_wins(functions):
    t = now()
    create = Event(CREATE, "store-ord-s1", "s1-create", t)
    delete = Event(DELETE, "store-ord-s1", "s1-delete", t + timedelta(seconds=1))
    acknowledged(functions, delete)  # the user's later delete overtook the create
    acknowledged(functions, create)
    assert functions.settle(["store-ord-s1"]) == {"store-ord-s1": None}
    assert "stale create" in functions.log("create-store")
    left = listed("S1", functions, ["store-ord-s1"])
    assert nothing_but(left, **{"intent records": ["intent-store-ord-s1"]}), left  # tombstone
    assert functions.intent("store-ord-s1")["action"] == "delete"


def test_s2_a_retried_old_create_does_not_bring_a_deleted_store_back(functions):
    t = now()
    create = Event(CREATE, "store-ord-s2", "s2-create", t)
    acknowledged(functions, create)
    assert functions.settle(["store-ord-s2"])["store-ord-s2"]["status"] == "ready"
    acknowledged(functions, Event(DELETE, "store-ord-s2", "s2-delete", t + timedelta(seconds=1)))
    assert functions.settle(["store-ord-s2"]) == {"store-ord-s2": None}
    acknowledged(functions, create)  # the Broker redelivers the old create
    assert functions.settle(["store-ord-s2"]) == {"store-ord-s2": None}
    left = listed("S2", functions, ["store-ord-s2"])
    # The finished delete Job stays until its TTL; nothing else of the store but its tombstone.
    assert nothing_but(left, jobs=["helm-delete-store-ord-s2"],
                       **{"intent records": ["intent-store-ord-s2"]}), left


def test_s3_a_retried_old_delete_does_not_destroy_the_store_made_again(functions):
    t = now()
    name = "store-ord-s3"
    acknowledged(functions, Event(CREATE, name, "s3-create-1", t))
    assert functions.settle([name])[name]["status"] == "ready"
    old_delete = Event(DELETE, name, "s3-delete", t + timedelta(seconds=1))
    acknowledged(functions, old_delete)
    assert functions.settle([name]) == {name: None}
    acknowledged(functions, Event(CREATE, name, "s3-create-2", t + timedelta(seconds=2)))
    assert functions.settle([name])[name]["status"] == "ready"
    acknowledged(functions, old_delete)  # the old delete, redelivered: data loss before
    time.sleep(3)  # anything it started would show by now
    assert functions.settle([name])[name]["status"] == "ready"
    assert helm_status(functions, name) == "deployed"
    # A create removes the finished delete Job; the intent record keeps the delete.
    record = functions.intent(name)
    assert (record["action"], record["eventId"]) == ("create", "s3-create-2")
    assert json.loads(record["previous"])["eventId"] == "s3-delete"
    left = listed("S3", functions, [name])
    assert nothing_but(left, namespaces=[name], jobs=[f"helm-install-{name}"],
                       secrets=[f"helm-install-{name}"],
                       **{"runner accounts": [f"storeplatform-runner-{name}"],
                          "intent records": [f"intent-{name}"],
                          "role bindings": [f"{name}/storeplatform-runner"]}), left
    acknowledged(functions, Event(DELETE, name, "s3-delete-2", now()))
    assert functions.settle([name]) == {name: None}


@pytest.mark.parametrize("mode", ["binary", "structured"])
def test_equal_times_are_ordered_by_event_id_in_either_order(functions, mode):
    name = f"store-ord-tie-{mode[:3]}"
    t = now()
    later_id = Event(DELETE, name, f"tie-{mode}-b", t)  # same time, greater id: it wins
    earlier_id = Event(CREATE, name, f"tie-{mode}-a", t)
    for event in (later_id, earlier_id):
        status, body = functions.send(event, mode)
        assert (status, body) == (202, b"")
    assert functions.settle([name]) == {name: None}
    left = listed(f"tie {mode}", functions, [name])
    assert nothing_but(left, **{"intent records": [f"intent-{name}"]}), left


def test_racing_deliveries_of_a_create_and_a_newer_delete_end_deleted(functions):
    """Both are delivered at the same moment, twice over (duplicates): the record's
    resourceVersion and lease let only the latest intent stand."""
    name = "store-ord-race"
    t = now()
    events = [Event(CREATE, name, "race-create", t),
              Event(DELETE, name, "race-delete", t + timedelta(milliseconds=5))] * 2
    answers: list[tuple[int, bytes, int]] = []
    threads = [threading.Thread(target=lambda e=e: answers.append(functions.deliver(e)))
               for e in events]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert sorted(a[:2] for a in answers) == [(202, b"")] * 4
    assert functions.settle([name]) == {name: None}
    record = functions.intent(name)
    assert (record["action"], record["eventId"], record["leaseUntil"]) == (
        "delete", "race-delete", "")
    left = listed("racing create and delete", functions, [name])
    assert left["namespaces"] == [] and left["secrets"] == [] and left["role bindings"] == []
    assert set(left["jobs"]) <= {f"helm-delete-{name}", f"helm-install-{name}"}


def test_a_stale_event_is_acknowledged_empty_and_logged(functions):
    name = "store-ord-stale"
    t = now()
    acknowledged(functions, Event(DELETE, name, "stale-delete", t))
    status, body = functions.send(Event(CREATE, name, "stale-create", t - timedelta(hours=1)))
    assert (status, body) == (202, b"")
    line = next(line for line in functions.log("create-store").splitlines()
                if "event stale-create " in line)
    assert "stale create at" in line and "latest intent: delete at" in line


def test_an_event_from_too_far_in_the_future_is_refused_for_the_dead_letter_sink(functions):
    status, body = functions.send(Event(CREATE, "store-ord-future", "future-create",
                                        now() + timedelta(hours=1)))
    assert status == 400 and json.loads(body)["error"]["code"] == "event_time_in_future"
    assert functions.intent("store-ord-future") is None


def test_expired_records_are_swept_once_their_store_is_gone(cluster, tmp_path):
    """A short TTL: tombstones of gone stores are swept by the next delete; the record of a
    store that stands is never swept."""
    names = ["store-ord-sweep-a", "store-ord-sweep-b", "store-ord-sweep-keep"]
    overrides = {"delete-store": {"INTENT_TTL_SECONDS": 2}}
    with running(cluster, tmp_path, overrides=overrides) as functions:
        t = now()
        acknowledged(functions, Event(CREATE, "store-ord-sweep-keep", "sweep-keep", t))
        for name in names[:2]:
            acknowledged(functions, Event(DELETE, name, f"sweep-{name}", t))
        assert sorted(functions.leftovers(names)["intent records"]) == [
            f"intent-{n}" for n in sorted(names)]
        time.sleep(3)
        acknowledged(functions, Event(DELETE, "store-ord-sweep-other", "sweep-trigger", now()))
        functions.settle(names)
        assert functions.leftovers(names)["intent records"] == ["intent-store-ord-sweep-keep"]
        assert "swept expired intent records" in functions.log("delete-store")
        acknowledged(functions, Event(DELETE, "store-ord-sweep-keep", "sweep-keep-gone", now()))
        assert functions.settle(names)["store-ord-sweep-keep"] is None
        time.sleep(3)
        acknowledged(functions, Event(DELETE, "store-ord-sweep-other", "sweep-again", now()))
        left = listed("sweep", functions, [*names, "store-ord-sweep-other"])
        # Only the last trigger's own young tombstone and finished delete Jobs (their TTL).
        assert left["intent records"] == ["intent-store-ord-sweep-other"]
        assert left["namespaces"] == [] and left["secrets"] == []
        assert set(left["jobs"]) <= {"helm-delete-store-ord-sweep-keep"}
