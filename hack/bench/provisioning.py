"""Benchmark: how fast the platform acknowledges, provisions, lists and deletes stores.

Runs the real functions (as their own ServiceAccounts) against the local control plane,
with real helm in runner Jobs (KWOK stands in for the pods). Prints numbers; asserts
nothing. Usage: `make bench` or `python hack/bench/provisioning.py --stores 10`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cloudevents.core.bindings.http import to_binary_event

import localkube
from devstack import bootstrap
from storeplatform import create_store, delete_store, list_stores
from storeplatform.events import new_event

ROOT = Path(__file__).resolve().parents[2]
NS = "storeplatform"


def summary(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return (f"min {ordered[0]:8.1f}  median {statistics.median(ordered):8.1f}  "
            f"p95 {p95:8.1f}  max {ordered[-1]:8.1f}")


def encode(event_type: str, data: dict, _mode: str) -> tuple[dict[str, str], bytes]:
    """A binary-mode CloudEvent, as the Broker delivers it."""
    message = to_binary_event(new_event(event_type, "/bench", data.get("name"), data))
    return message.headers, message.body


def timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stores", type=int, default=10)
    parser.add_argument("--list-calls", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        state = Path(tmp)
        started = time.perf_counter()
        cluster = localkube.start(localkube.ClusterOptions(state_dir=state / "cluster"))
        print(f"control plane ready in {time.perf_counter() - started:.1f} s")
        try:
            run(cluster, state, args.stores, args.list_calls)
        finally:
            localkube.stop(state / "cluster")


def run(cluster, state: Path, stores: int, list_calls: int) -> None:
    admin = cluster.api_client()
    bootstrap.apply(admin, bootstrap.platform_objects())
    kubeconfigs = {fn: str(bootstrap.service_account_kubeconfig(
        admin, Path(cluster.kubeconfig), NS, f"storeplatform-{fn}", state / f"{fn}.kc"))
        for fn in ("create-store", "delete-store", "list-stores")}
    runner = {"RUNNER_IMAGE": "storeplatform/helm-runner:dev", "LOG_LEVEL": "WARNING"}
    create = create_store.create_app(runner | {
        "KUBECONFIG": kubeconfigs["create-store"], "RUNNER_CHART_PATH": str(ROOT / "store-chart"),
        "STORE_VALUES_PROFILE": "local"}).test_client()
    delete = delete_store.create_app(runner | {"KUBECONFIG": kubeconfigs["delete-store"]}
                                     ).test_client()
    lister = list_stores.create_app({"KUBECONFIG": kubeconfigs["list-stores"],
                                     "LOG_LEVEL": "WARNING"}).test_client()

    def listing() -> dict[str, dict]:
        headers, body = encode("io.storeplatform.store.list", {}, "binary")
        answer = lister.post("/", headers=headers, data=body)
        return {s["name"]: s for s in json.loads(answer.data)["stores"]}

    names = [f"store-bench-{i}" for i in range(stores)]
    acks, submitted = [], {}
    for name in names:
        headers, body = encode("io.storeplatform.store.create", {"name": name}, "binary")
        acks.append(timed(lambda h=headers, b=body: create.post("/", headers=h, data=b)))
        submitted[name] = time.perf_counter()
    ready: dict[str, float] = {}
    deadline = time.perf_counter() + 900
    while len(ready) < stores and time.perf_counter() < deadline:
        for name, store in listing().items():
            if name in submitted and name not in ready and store["status"] == "ready":
                ready[name] = time.perf_counter() - submitted[name]
        time.sleep(0.5)
    list_ms = [timed(listing) for _ in range(list_calls)]
    gone_started = {}
    for name in names:
        headers, body = encode("io.storeplatform.store.delete", {"name": name}, "binary")
        delete.post("/", headers=headers, data=body)
        gone_started[name] = time.perf_counter()
    gone: dict[str, float] = {}
    deadline = time.perf_counter() + 900
    while len(gone) < stores and time.perf_counter() < deadline:
        present = listing()
        for name in names:
            if name not in present and name not in gone:
                gone[name] = time.perf_counter() - gone_started[name]
        time.sleep(0.5)

    print(f"stores: {stores} created back to back, {len(ready)} ready, {len(gone)} deleted")
    print(f"create-store acknowledgement (ms)      {summary(acks)}")
    if ready:
        print(f"create event -> ready (s)              {summary(list(ready.values()))}")
    print(f"list-stores, {stores:3d} stores (ms)        {summary(list_ms)}")
    if gone:
        print(f"delete event -> gone from the list (s) {summary(list(gone.values()))}")


if __name__ == "__main__":
    main()
