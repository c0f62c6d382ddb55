"""Browser tests: the Debian `chromium` package, driven by Playwright, against `make dev`.

No browser is ever downloaded: Playwright is pointed at /usr/bin/chromium. Without Chromium,
Playwright or a working local stack these tests skip with a reason; under CI=true they fail.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import unavailable

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
def token_gateway(devstack: dict[str, str]) -> dict[str, str]:
    """The stack's own gateway, which (closed by default) requires the token `make dev`
    printed; a test that uses this fixture starts without the token in the tab."""
    return {"url": devstack["dashboard"], "token": devstack["token"]}


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh tab; a screenshot of how it ended goes to artifacts/browser/<test>.png.

    Any uncaught JavaScript error or Content-Security-Policy violation fails the test.
    """
    context = browser.new_context(viewport=VIEWPORT)
    if "devstack" in request.fixturenames and "token_gateway" not in request.fixturenames:
        # The person already entered the gateway token in this tab (the dashboard keeps it in
        # sessionStorage); test_token_is_asked_for_and_sent covers the prompt itself.
        token = request.getfixturevalue("devstack")["token"]
        context.add_init_script(
            f"sessionStorage.setItem('storeplatform.gatewayToken', {json.dumps(token)});")
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
