"""gunicorn processes as the bench runs them: 1 worker x 4 threads on 127.0.0.1 (what
`make dev` runs), started, timed from process start to the first 200, measured (RSS of the
worker that serves), and stopped."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from devstack.__main__ import gunicorn_argv

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def python_env(extra: Mapping[str, str]) -> dict[str, str]:
    paths = os.pathsep.join([str(REPO_ROOT / "functions"), str(REPO_ROOT / "hack")])
    return os.environ | {"PYTHONPATH": paths, "LOG_LEVEL": "WARNING"} | dict(extra)


def status_of(port: int, method: str, path: str, body: bytes | None = None,
              headers: Mapping[str, str] | None = None, timeout: float = 5.0) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=dict(headers or {}))
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


@dataclass
class Server:
    name: str
    port: int
    proc: subprocess.Popen
    started: float

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_for(self, method: str = "GET", path: str = "/health", body: bytes | None = None,
                 headers: Mapping[str, str] | None = None, timeout: float = 60.0) -> float:
        """Seconds from process start until the request answers 200."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}")
            try:
                if status_of(self.port, method, path, body, headers) == 200:
                    return time.monotonic() - self.started
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name}: no 200 on {path} within {timeout:.0f} s")
            time.sleep(0.005)

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [int(pid) for pid in children.read_text().split()]

    def rss_mb(self) -> tuple[float, float]:
        """(the serving worker's RSS, the master's) in MB."""
        (worker, *_) = self.worker_pids()
        return rss_mb(worker), rss_mb(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def start(name: str, app: str, env: Mapping[str, str], log_dir: Path) -> Server:
    """gunicorn 1 worker x 4 threads serving `app` (a gunicorn app spec) on a free port."""
    port = free_port()
    log_dir.mkdir(parents=True, exist_ok=True)
    with (log_dir / f"{name}.log").open("ab") as log:
        started = time.monotonic()
        proc = subprocess.Popen(gunicorn_argv(app, port), env=python_env(env), cwd=REPO_ROOT,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return Server(name, port, proc, started)
