"""`make dev` as a test fixture: `python -m devstack` on free ports, read until `ready`.

Shared by the integration tests (the whole flow over HTTP) and the browser tests, which use
one stack per session. Without the control-plane binaries or a working stack the tests skip
with a reason; under CI=true they fail.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts"
STACK_START_TIMEOUT = 300.0
STACK_STOP_TIMEOUT = 90.0
ENDPOINTS = ("gateway", "broker", "create-store", "delete-store", "list-stores", "dashboard",
             "kubeconfig", "token")


def unavailable(reason: str) -> None:
    """Skip locally (saying what to install or run); fail under CI, where all must be present."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"cannot run in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def require_controlplane() -> None:
    """The built control-plane and Knative Eventing binaries, or a skip (a failure under CI)
    naming the build."""
    from localknative.install import BUILD_COMMAND as KNATIVE_BUILD
    from localknative.install import DEFAULT_CRDS_DIR
    from localknative.install import missing as knative_missing
    from localkube.options import BUILD_COMMAND, DEFAULT_BIN_DIR, missing_binaries

    missing = missing_binaries(DEFAULT_BIN_DIR)
    if missing:
        unavailable(f"control-plane binaries missing in {DEFAULT_BIN_DIR} "
                    f"({', '.join(missing)}): run `{BUILD_COMMAND}`")
    absent = knative_missing(DEFAULT_BIN_DIR, DEFAULT_CRDS_DIR)
    if absent:
        unavailable(f"Knative Eventing not built ({', '.join(absent)}): run `{KNATIVE_BUILD}`")


def python_env() -> dict[str, str]:
    # The session's `make dev` holds the stores of every test (500 in the dashboard's scale
    # test): the cap (MAX_STORES, 20 by default) is tested on its own.
    return {"MAX_STORES": "1000"} | os.environ | {
        "PYTHONPATH": f"{ROOT / 'functions'}{os.pathsep}{ROOT / 'hack'}", "PYTHONUNBUFFERED": "1"}


def read_endpoints(stdout: Any, lines: queue.Queue, transcript: Path) -> None:
    """Forward devstack's stdout lines to the queue, and keep a copy as an artifact."""
    with transcript.open("a") as copy:
        for line in stdout:
            copy.write(line)
            copy.flush()
            lines.put(line.rstrip("\n"))
    lines.put(None)


def wait_until_ready(proc: subprocess.Popen, lines: queue.Queue,
                     timeout: float) -> dict[str, str]:
    """Collect `name: url` lines until `ready`; raise RuntimeError on exit or timeout."""
    endpoints: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RuntimeError(f"no 'ready' line within {timeout:.0f} s")
        try:
            line = lines.get(timeout=min(remaining, 1.0))
        except queue.Empty:
            continue
        if line is None:
            raise RuntimeError(f"devstack exited with code {proc.wait()} before 'ready'")
        if line.strip() == "ready":
            missing = [name for name in ENDPOINTS if name not in endpoints]
            if missing:
                raise RuntimeError(f"devstack was ready without endpoint(s) {missing}")
            return endpoints
        name, sep, url = line.partition(": ")
        if sep and name == "metrics":  # `metrics: <function> <url>`, one line per function
            function, _, metrics_url = url.strip().partition(" ")
            endpoints[f"metrics.{function}"] = metrics_url
        elif sep and name in ENDPOINTS:
            endpoints[name] = url.strip()


def stop(proc: subprocess.Popen, timeout: float) -> None:
    """SIGTERM (devstack stops its services and control plane), then SIGKILL if stuck."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("devstack (pid %s) ignored SIGTERM for %.0f s; killing it",
                        proc.pid, timeout)
            proc.kill()
            proc.wait(10)


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def launch(state_dir: Path, artifacts: Path) -> tuple[subprocess.Popen, dict[str, str]]:
    """Start `python -m devstack` and wait for `ready`; RuntimeError if it does not come up."""
    artifacts.mkdir(parents=True, exist_ok=True)
    stdout_copy, stderr_log = artifacts / "devstack.out", artifacts / "devstack.log"
    stdout_copy.write_text("")
    with stderr_log.open("w") as errors:
        proc = subprocess.Popen(
            [sys.executable, "-m", "devstack", "--state-dir", str(state_dir), "--port-base", "0"],
            cwd=ROOT, env=python_env(), stdout=subprocess.PIPE, stderr=errors, text=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=read_endpoints, args=(proc.stdout, lines, stdout_copy),
                     daemon=True).start()
    try:
        return proc, wait_until_ready(proc, lines, STACK_START_TIMEOUT)
    except RuntimeError as err:
        stop(proc, STACK_STOP_TIMEOUT)
        raise RuntimeError(f"{err}; last lines of {stderr_log}:\n{tail(stderr_log)}") from err


@pytest.fixture(scope="session")
def devstack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """`make dev` for the session: {'gateway': url, ..., 'dashboard': url, 'kubeconfig': path,
    'token': the gateway's bearer token, 'metrics.<function>': its /metrics URL,
    'state_dir': its state directory (logs in <state_dir>/logs, the gateway's OIDC sender
    tokens in <state_dir>/tokens)}.

    Runs on free ports with its own state directory, so it can sit next to a developer's
    own `make dev`.
    """
    require_controlplane()
    state_dir = tmp_path_factory.mktemp("devstack")
    try:
        proc, endpoints = launch(state_dir, ARTIFACTS / "devstack")
    except RuntimeError as err:
        unavailable(f"`make dev` did not come up ({err}); run `make dev` to see why")
    try:
        yield endpoints | {"state_dir": str(state_dir)}
    finally:
        stop(proc, STACK_STOP_TIMEOUT)
