"""Latest intent wins, as a property: hypothesis stateful testing against the real control
plane, the real functions over HTTP (gunicorn, their own ServiceAccounts) and the real runner
(helm against the API server, run by the job executor).

Each example drives one store through a random mix of steps: a new create, a new delete, a
duplicate delivery, an old event redelivered, two new events delivered in reverse order, two
delivered at the same moment, and pauses that let the runner Jobs finish. Deliveries retry
what the Broker retries (503 while a delete runs, or while another delivery holds the store).
After every step the intent record holds the latest intent; after every example:
- the final state equals the latest intent (ready, or no store at all);
- nothing is left over beyond what the cleanup rule keeps (docs/contract.md "Ordering");
- no store is stuck (settled: nothing provisioning or deleting, nothing failed).

CI runs a bounded number of examples (ORDERING_EXAMPLES, default 6, with a fixed seed);
`make test-ordering EXAMPLES=200` runs more, randomly, with shrinking.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from tests.integration.platform import CREATE, DELETE, Event, Functions, now, running

pytestmark = pytest.mark.integration

CI_EXAMPLES = 6  # about 1.5 min on 2 cores
EXAMPLES = int(os.environ.get("ORDERING_EXAMPLES", str(CI_EXAMPLES)))
LONG = EXAMPLES > CI_EXAMPLES
settings.register_profile(
    "ordering", max_examples=EXAMPLES, stateful_step_count=10, deadline=None,
    derandomize=not LONG, database=None, print_blob=True,
    phases=[Phase.explicit, Phase.generate, *([Phase.shrink] if LONG else [])],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
MODES = st.sampled_from(["binary", "structured"])
KINDS = st.sampled_from([CREATE, DELETE])
RUN = secrets.token_hex(2)


class OrderingMachine(RuleBasedStateMachine):
    """One store, many deliveries; the model is the list of events acknowledged so far."""

    functions: Functions
    examples = 0
    steps = 0

    def __init__(self) -> None:
        super().__init__()
        OrderingMachine.examples += 1
        self.store = f"store-hm-{RUN}-{OrderingMachine.examples}"
        self.base = now()
        self.clock = 0
        self.acknowledged: list[Event] = []

    # ---------------------------------------------------------------- helpers
    def new_event(self, kind: str) -> Event:
        self.clock += 1  # a millisecond apart: strictly later than every event before
        return Event(kind, self.store, f"{self.store}-{self.clock}",
                     self.base + timedelta(milliseconds=self.clock))

    def deliver(self, event: Event, mode: str = "binary") -> None:
        OrderingMachine.steps += 1
        status, body, _ = self.functions.deliver(event, mode)
        assert (status, body) == (202, b""), (event, status, body)
        self.acknowledged.append(event)

    def latest(self) -> Event | None:
        return max(self.acknowledged, key=lambda e: (e.time, e.id), default=None)

    # ---------------------------------------------------------------- steps
    @rule(mode=MODES)
    def create(self, mode: str) -> None:
        self.deliver(self.new_event(CREATE), mode)

    @rule(mode=MODES)
    def delete(self, mode: str) -> None:
        self.deliver(self.new_event(DELETE), mode)

    @precondition(lambda self: self.acknowledged)
    @rule(mode=MODES)
    def duplicate(self, mode: str) -> None:
        self.deliver(self.acknowledged[-1], mode)

    @precondition(lambda self: self.acknowledged)
    @rule(pick=st.integers(min_value=0, max_value=10_000), mode=MODES)
    def redeliver_old(self, pick: int, mode: str) -> None:
        self.deliver(self.acknowledged[pick % len(self.acknowledged)], mode)

    @rule(first=KINDS, second=KINDS, mode=MODES)
    def reorder(self, first: str, second: str, mode: str) -> None:
        earlier, later = self.new_event(first), self.new_event(second)
        self.deliver(later, mode)
        self.deliver(earlier, mode)

    @rule(first=KINDS, second=KINDS)
    def at_once(self, first: str, second: str) -> None:
        events = [self.new_event(first), self.new_event(second)]
        failures: list[BaseException] = []

        def deliver(event: Event) -> None:
            try:
                self.deliver(event)
            except BaseException as err:  # re-raised below, in the machine's thread
                failures.append(err)

        threads = [threading.Thread(target=deliver, args=(e,)) for e in events]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(240)
        if failures:
            raise failures[0]

    @rule()
    def let_the_runner_work(self) -> None:
        self.functions.settle([self.store])

    # ---------------------------------------------------------------- properties
    @invariant()
    def the_record_holds_the_latest_intent(self) -> None:
        latest, record = self.latest(), self.functions.intent(self.store)
        if latest is None:
            assert record is None
            return
        assert record is not None
        assert (record["action"], record["eventId"]) == (latest.action, latest.id), record
        assert record["leaseUntil"] == ""  # every delivery has answered: none holds it

    def teardown(self) -> None:
        try:
            self.check_the_end()
        finally:
            if self.acknowledged:  # leave nothing for the next example
                self.functions.deliver(Event(DELETE, self.store, f"{self.store}-end", now()))
                self.functions.settle([self.store])

    def check_the_end(self) -> None:
        latest = self.latest()
        if latest is None:
            return
        view = self.functions.settle([self.store])[self.store]  # no store stuck
        name = self.store
        if latest.type == CREATE:
            assert view is not None and view["status"] == "ready", view
            expected = {"namespaces": [name], "jobs": [f"helm-install-{name}"],
                        "secrets": [f"helm-install-{name}"],
                        "runner accounts": [f"storeplatform-runner-{name}"],
                        "intent records": [f"intent-{name}"],
                        "role bindings": [f"{name}/storeplatform-runner"]}
            allowed_jobs = {f"helm-install-{name}"}
        else:
            assert view is None, view
            expected = {"namespaces": [], "jobs": [], "secrets": [], "runner accounts": [],
                        "intent records": [f"intent-{name}"], "role bindings": []}
            allowed_jobs = {f"helm-delete-{name}"}  # a finished one, until its TTL
        left = converged(self.functions, name, expected, allowed_jobs)
        assert left == expected, left


def converged(functions: Functions, name: str, expected: dict, allowed_jobs: set[str],
              timeout: float = 60.0) -> dict:
    """The leftovers once garbage collection caught up (a Job's Secret goes after it);
    finished Jobs of `allowed_jobs` and their pods are set aside (they go at their TTL)."""
    deadline = time.monotonic() + timeout
    while True:
        left = functions.leftovers([name])
        jobs = [j for j in left["jobs"] if j not in allowed_jobs or j in expected["jobs"]]
        pods = [p for p in left["runner pods"]
                if not any(p.startswith(j + "-") for j in allowed_jobs)]
        view = {k: v for k, v in left.items() if k != "runner pods"} | {"jobs": jobs}
        if (view == expected and not pods) or time.monotonic() > deadline:
            return view | ({"runner pods": pods} if pods else {})
        time.sleep(1)


@pytest.fixture(scope="module")
def functions(cluster, tmp_path_factory):
    with running(cluster, tmp_path_factory.mktemp("machine")) as running_functions:
        yield running_functions


def test_the_final_state_is_the_latest_intent(functions):
    OrderingMachine.functions = functions
    started = time.monotonic()
    run_state_machine_as_test(OrderingMachine, settings=settings.get_profile("ordering"))
    took = time.monotonic() - started
    print(f"\nordering state machine: {OrderingMachine.examples} examples, "
          f"{OrderingMachine.steps} deliveries, {took:.0f} s")
    assert OrderingMachine.examples >= min(EXAMPLES, 1)
