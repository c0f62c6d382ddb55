"""Browser tests: the Debian `chromium` package, driven by Playwright, against `make dev`.

No browser is ever downloaded: Playwright is pointed at /usr/bin/chromium. Without Chromium,
Playwright or a working local stack these tests skip with a reason; under CI=true they fail.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "browser"
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
LAUNCH_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
STACK_START_TIMEOUT = 300.0
STACK_STOP_TIMEOUT = 90.0
ENDPOINTS = ("gateway", "broker", "create-store", "delete-store", "list-stores", "dashboard",
             "kubeconfig")
VIEWPORT = {"width": 1100, "height": 760}


def unavailable(reason: str) -> None:
    """Skip locally (saying what to install or run); fail under CI, where all must be present."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"browser tests cannot run in CI: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Chromium from the distribution package."""
    if not CHROMIUM.exists():
        unavailable(f"no Chromium at {CHROMIUM}: apt-get install chromium (or set CHROMIUM)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("Playwright is missing: make venv (it is pinned in requirements-dev.txt)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


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
        if sep and name in ENDPOINTS:
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


@pytest.fixture(scope="session")
def devstack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """`make dev` for the session: {'gateway': url, ..., 'dashboard': url, 'kubeconfig': path}.

    Runs on free ports with its own state directory, so it can sit next to a developer's
    own `make dev`.
    """
    if not (ROOT / "hack" / "devstack" / "__main__.py").exists():
        unavailable("hack/devstack is missing, so there is no `make dev` to test against")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    stdout_copy, stderr_log = ARTIFACTS / "devstack.out", ARTIFACTS / "devstack.log"
    stdout_copy.write_text("")
    state_dir = tmp_path_factory.mktemp("devstack")
    env = os.environ | {"PYTHONPATH": f"{ROOT / 'functions'}{os.pathsep}{ROOT / 'hack'}",
                        "PYTHONUNBUFFERED": "1"}
    with stderr_log.open("w") as errors:
        proc = subprocess.Popen(
            [sys.executable, "-m", "devstack", "--state-dir", str(state_dir), "--port-base", "0"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=errors, text=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=read_endpoints, args=(proc.stdout, lines, stdout_copy),
                     daemon=True).start()
    try:
        endpoints = wait_until_ready(proc, lines, STACK_START_TIMEOUT)
    except RuntimeError as err:
        stop(proc, STACK_STOP_TIMEOUT)
        unavailable(f"`make dev` did not come up ({err}); run `make dev` to see why. "
                    f"Last lines of {stderr_log.relative_to(ROOT)}:\n{tail(stderr_log)}")
    try:
        yield endpoints
    finally:
        stop(proc, STACK_STOP_TIMEOUT)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gateway exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"gateway at {url} not healthy after {timeout:.0f} s")


@pytest.fixture(scope="session")
def token_gateway(devstack: dict[str, str]) -> Iterator[dict[str, str]]:
    """A second, real gateway in front of the same stack, this one requiring a token."""
    token = "browser-test-token"  # a throwaway credential for a loopback-only process
    port = free_port()
    env = os.environ | {
        "PYTHONPATH": f"{ROOT / 'functions'}{os.pathsep}{ROOT / 'hack'}",
        "K_SINK": devstack["broker"], "LIST_URL": devstack["list-stores"],
        "DASHBOARD_DIR": str(ROOT / "dashboard"), "GATEWAY_TOKEN": token,
    }
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    with (ARTIFACTS / "token-gateway.log").open("w") as out:
        proc = subprocess.Popen(
            [gunicorn, "--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", "4",
             "storeplatform.gateway:create_app()"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc)
        yield {"url": f"{url}/", "token": token}
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh tab; a screenshot of how it ended goes to artifacts/browser/<test>.png.

    Any uncaught JavaScript error or Content-Security-Policy violation fails the test.
    """
    context = browser.new_context(viewport=VIEWPORT)
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    errors: list[str] = []
    tab.on("pageerror", lambda err: errors.append(str(err)))
    # CSP and Trusted Types violations (say, an innerHTML slipping in) are console errors.
    tab.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" and any(
        word in msg.text for word in ("Content Security Policy", "TrustedHTML", "Trusted Type")
    ) else None)
    try:
        yield tab
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        name = request.node.name.replace("/", "_").replace("[", "-").rstrip("]")
        try:
            tab.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        except Exception as err:  # a screenshot must never hide the real failure
            log.warning("no screenshot for %s: %s", name, err)
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
