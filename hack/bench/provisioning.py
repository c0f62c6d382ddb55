"""Real creates on `make dev`: the gateway, the real Broker, create-store, runner Jobs with
real helm (KWOK runs the store's pods). What it measures: acknowledgements, time to ready,
stores per minute at a given concurrency, and the API server's load meanwhile."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from bench import apiserver, load

READY_TIMEOUT = 1800.0
POLL = 0.5


def post_create(gateway: str, name: str, auth: dict[str, str]) -> tuple[int, float]:
    """POST /stores/{name} on a connection of its own: (status, milliseconds)."""
    host, port = gateway.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=120)
    started = time.perf_counter()
    try:
        conn.request("POST", f"/stores/{name}", body=b'{"engine": "woocommerce"}',
                     headers={"Content-Type": "application/json"} | auth)
        response = conn.getresponse()
        response.read()
        return response.status, (time.perf_counter() - started) * 1000
    finally:
        conn.close()


class Watcher:
    """Polls GET /stores and notes when each store first shows as ready (or failed)."""

    def __init__(self, gateway: str, auth: dict[str, str]) -> None:
        self.client = load.Client(gateway)
        self.auth = auth
        self.ready: dict[str, float] = {}
        self.failed: dict[str, str] = {}

    def poll(self) -> None:
        status, body, _ = self.client.call("GET", "/stores", headers=self.auth)
        if status != 200:
            return
        now = time.monotonic()
        for store in json.loads(body)["stores"]:
            if store["status"] == "ready":
                self.ready.setdefault(store["name"], now)
            elif store["status"] == "failed":
                self.failed.setdefault(store["name"], store.get("reason") or "")

    def wait(self, names: list[str], timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.poll()
            if all(n in self.ready or n in self.failed for n in names):
                return
            time.sleep(POLL)
        missing = [n for n in names if n not in self.ready and n not in self.failed]
        raise RuntimeError(f"not ready after {timeout:.0f} s: {', '.join(missing)}")


@dataclass
class Batch:
    """`concurrency` creates at once (or one after the other, each waiting for the last to
    be ready, when concurrency is 1)."""

    concurrency: int
    names: list[str]
    acks_ms: list[float] = field(default_factory=list)
    to_ready_s: list[float] = field(default_factory=list)
    seconds: float = 0.0
    failed: dict[str, str] = field(default_factory=dict)
    timed_out: int = 0  # answered 504 sink_timeout: sent, no answer in time (still applied?)
    api_rate: float = 0.0  # requests per second the API server finished, over the batch
    api_peak: float = 0.0  # the highest over any 5 s of it
    apf_rejected: float = 0.0
    list_ms: list[float] = field(default_factory=list)  # GET /stores meanwhile

    @property
    def stores_per_minute(self) -> float:
        return 60 * len(self.names) / self.seconds


def run_batch(gateway: str, auth: dict[str, str], admin, concurrency: int,
              names: list[str]) -> Batch:
    """The batch through the gateway (auth: its Authorization header)."""
    batch = Batch(concurrency, names)
    watcher = Watcher(gateway, auth)
    sampling = _Sampling(admin, gateway, auth)
    submitted: dict[str, float] = {}
    started = time.monotonic()
    sampling.start()
    try:
        def one(name: str) -> tuple[int, float]:
            submitted[name] = time.monotonic()
            return post_create(gateway, name, auth)

        if concurrency == 1:
            answers = []
            for name in names:
                answers.append(one(name))
                watcher.wait([name])
        else:
            with ThreadPoolExecutor(concurrency) as pool:
                answers = list(pool.map(one, names))
            watcher.wait(names)  # a 504 may still be applied: it is waited for too
    finally:
        sampling.stop()
    unexpected = {status for status, _ in answers} - {202, 504}
    if unexpected:
        raise RuntimeError(f"creates answered HTTP {sorted(unexpected)}")
    batch.acks_ms = [took for _, took in answers]
    batch.timed_out = sum(status == 504 for status, _ in answers)
    ends = [watcher.ready[n] for n in names if n in watcher.ready]
    batch.seconds = (max(ends) if ends else time.monotonic()) - started
    batch.to_ready_s = [watcher.ready[n] - submitted[n] for n in names if n in watcher.ready]
    batch.failed = {n: watcher.failed[n] for n in names if n in watcher.failed}
    batch.api_rate, batch.api_peak, batch.apf_rejected = sampling.api()
    batch.list_ms = sampling.list_ms
    return batch


class _Sampling:
    """Meanwhile: the API server's counters every 5 s, and GET /stores 4 times a second."""

    def __init__(self, admin, gateway: str, auth: dict[str, str]) -> None:
        self.admin, self.gateway, self.auth = admin, gateway, auth
        self.samples: list[apiserver.Sample] = []
        self.list_ms: list[float] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._every, args=(5.0, self._metrics)),
                         threading.Thread(target=self._every, args=(0.25, self._list))]
        self._client = load.Client(gateway)

    def _every(self, seconds: float, action: Callable[[], None]) -> None:
        while not self._stop.is_set():
            action()
            self._stop.wait(seconds)

    def _metrics(self) -> None:
        self.samples.append(apiserver.sample(self.admin))

    def _list(self) -> None:
        self.list_ms.append(self._client.call("GET", "/stores", headers=self.auth)[2])

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)
        self._metrics()

    def api(self) -> tuple[float, float, float]:
        first, last = self.samples[0], self.samples[-1]
        peak = max((b.rate(a) for a, b in zip(self.samples, self.samples[1:], strict=False)),
                   default=0.0)
        return last.rate(first), peak, last.rejected - first.rejected
