"""The dashboard's store-name check says exactly what the server's check says, name by name.

Runs names.js in Chromium and validate_store_name in Python; needs no stack, only the static
files (served from dashboard/ on a loopback port for the duration of the test).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from storeplatform.contract import validate_store_name
from storeplatform.errors import PlatformError

pytestmark = pytest.mark.browser

DASHBOARD = Path(__file__).resolve().parents[2] / "dashboard"

NAMES = [
    "", "store", "store-", "store-a", "store-1", "store--a", "store-a-b-c", "store-0a",
    "Store-a", "store-A", "store_a", "store-a_b", "store-a.b", "store-a-", "store-a ",
    " store-a", "store-ä", "store-😀", "store-a\t", "store-a\n",
    "store-" + "a" * 34,  # 40 characters: the longest allowed
    "store-" + "a" * 35,  # 41
    "store-" + "a" * 33 + "-",  # 40, bad ending
    "store-" + "é" * 35,  # too long and not ASCII: length is checked first
    "store-" + "😀" * 35,  # code points, not UTF-16 units
    "xstore-a", "store-a/b", "store-%41",
]


def server_answer(name: str) -> str | None:
    try:
        validate_store_name(name)
    except PlatformError as err:
        return err.message
    return None


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def static_dashboard() -> Iterator[str]:
    handler = functools.partial(QuietHandler, directory=str(DASHBOARD))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_name_messages_match_the_server(browser, static_dashboard: str) -> None:
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{static_dashboard}favicon.svg")
        answers = page.evaluate(
            """async ([url, names]) => {
                const { storeNameProblem } = await import(url);
                return names.map((name) => storeNameProblem(name));
            }""",
            [f"{static_dashboard}js/names.js", NAMES],
        )
    finally:
        context.close()
    expected = [server_answer(name) for name in NAMES]
    mismatches = [(n, a, e) for n, a, e in zip(NAMES, answers, expected, strict=True) if a != e]
    assert not mismatches, f"(name, dashboard, server): {mismatches}"
