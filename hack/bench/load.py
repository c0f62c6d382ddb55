"""Load and latency: wrk for throughput (2 threads x 8 connections x 10 s), and one
kept-alive client for latencies, request after request."""

from __future__ import annotations

import http.client
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

LUA_POST = """wrk.method = "POST"
wrk.body = '{"engine": "woocommerce"}'
wrk.headers["Content-Type"] = "application/json"
"""


def require_wrk() -> str:
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("make bench needs wrk (Debian: apt-get install -y wrk)")
    return found


@dataclass(frozen=True)
class Throughput:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(url: str, post: bool, duration: str = "10s") -> Throughput:
    """wrk 2 threads x 8 connections on url (POST with a JSON body, or GET)."""
    args = [require_wrk(), "-t2", "-c8", f"-d{duration}", "--latency"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        if post:
            script.write(LUA_POST)
            script.flush()
            args += ["-s", script.name]
        out = subprocess.run([*args, url], capture_output=True, text=True, check=True,
                             timeout=120).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                              r"timeout (\d+)", out)
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    return Throughput(rate, p50, p99, errors)


class Client:
    """One kept-alive connection; each call returns (status, body, milliseconds)."""

    def __init__(self, base_url: str, timeout: float = 60.0) -> None:
        host, port = base_url.removeprefix("http://").split("/")[0].split(":")
        self._conn = http.client.HTTPConnection(host, int(port), timeout=timeout)

    def call(self, method: str, path: str, body: bytes | None = None,
             headers: Mapping[str, str] | None = None) -> tuple[int, bytes, float]:
        started = time.perf_counter()
        try:
            self._conn.request(method, path, body=body, headers=dict(headers or {}))
            response = self._conn.getresponse()
            data = response.read()
        except (http.client.HTTPException, OSError):
            self._conn.close()  # the server closed it: once more on a new one
            self._conn.request(method, path, body=body, headers=dict(headers or {}))
            response = self._conn.getresponse()
            data = response.read()
        return response.status, data, (time.perf_counter() - started) * 1000

    def close(self) -> None:
        self._conn.close()


def timed(call: Callable[[], object], times: int) -> list[float]:
    """Milliseconds of each of `times` calls, one after the other."""
    took = []
    for _ in range(times):
        started = time.perf_counter()
        call()
        took.append((time.perf_counter() - started) * 1000)
    return took


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def median(values: list[float]) -> float:
    return statistics.median(values)

