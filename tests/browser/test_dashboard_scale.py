"""The dashboard with 500 stores, in headless Chromium against `make dev`: counts that filter,
search, order, the compact layout, a retry, polling that costs a 304, and how long a render
takes (printed and kept in artifacts/browser/render-500.json; never asserted on).

The 500 stores are synthetic (tests/synthetic.py): made straight in the API with the
platform's labels and the runner's annotations, so list-stores derives their status for real.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import statistics
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator

import pytest

from tests import synthetic
from tests.browser.conftest import ARTIFACTS, ROOT
from tests.browser.sync_api import Page, expect

pytestmark = pytest.mark.browser

DOCS_SCREENSHOT = ROOT / "docs" / "screenshots" / "dashboard-500.png"
COUNT = 500
READY_TIMEOUT_S = 300  # 350 storefront Deployments for KWOK and the controllers
RETRY_READY_TIMEOUT_MS = 300_000


def listed(gateway: str, token: str) -> list[dict]:
    request = urllib.request.Request(gateway + "/stores",
                                     headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["stores"]


@pytest.fixture(scope="module")
def fleet(devstack: dict[str, str]) -> Iterator[dict[str, str]]:
    """500 synthetic stores, their derived statuses settled: {name: status}."""
    from kubernetes import config

    api = config.new_client_from_config(config_file=devstack["kubeconfig"])
    prefix = f"store-s{secrets.token_hex(2)}-"
    expected = synthetic.create(api, COUNT, prefix)
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            seen = {s["name"]: s["status"] for s in listed(devstack["gateway"], devstack["token"])
                    if s["name"].startswith(prefix)}
            if seen == expected:
                break
            assert time.monotonic() < deadline, (
                f"statuses not settled: {Counter(seen.values())} vs {Counter(expected.values())}")
            time.sleep(3)
        yield expected
    finally:
        synthetic.delete(api, expected)


def open_dashboard(page: Page, url: str) -> None:
    page.goto(url)
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    expect(page.locator("#stores-loading")).to_be_hidden()


def visible_names(page: Page) -> list[str]:
    return page.locator("#store-list > li.store").evaluate_all(
        "rows => rows.map(r => r.dataset.name)")


def test_five_hundred_stores(page: Page, devstack: dict[str, str], fleet: dict[str, str]):
    stores = listed(devstack["gateway"], devstack["token"])
    counts = Counter(s["status"] for s in stores)
    responses: list[tuple[int, str, str]] = []
    page.on("response", lambda r: responses.append(
        (r.status, r.request.headers.get("if-none-match", ""), r.headers.get("etag", "")))
        if r.url.endswith("/stores") and r.request.method == "GET" else None)
    started = time.monotonic()
    open_dashboard(page, devstack["dashboard"])
    expect(page.locator("#stores-count")).to_have_text(f"{len(stores)} stores")
    first_view_s = time.monotonic() - started

    # Compact by default at this size: one line per store.
    listing = page.locator("#store-list")
    expect(listing).to_have_attribute("data-view", "compact")
    assert len(visible_names(page)) == len(stores)
    heights = listing.locator("li.store").evaluate_all(
        "rows => rows.slice(0, 50).map(r => r.getBoundingClientRect().height)")
    assert max(heights) < 45, heights

    # Counts by status are the filters.
    for status in ("provisioning", "ready", "failed", "deleting"):
        chip = page.locator(f'#status-filter button[data-status="{status}"]')
        expect(chip.locator(".chip__count")).to_have_text(str(counts[status]))
    failed = page.locator('#status-filter button[data-status="failed"]')
    failed.click()
    expect(failed).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#stores-count")).to_have_text(
        f"{counts['failed']} of {len(stores)} stores")
    # textContent: rows off screen skip rendering (content-visibility), so no innerText.
    badges = listing.locator("li.store .badge__text").evaluate_all(
        "els => els.map(e => e.textContent)")
    assert badges == ["failed"] * counts["failed"]
    failed.click()  # pressed again: all stores
    expect(page.locator("#stores-count")).to_have_text(f"{len(stores)} stores")

    # Search by name (with the order kept), then nothing matches, then clear.
    one = sorted(fleet)[42]
    page.locator("#store-search").fill(one[-6:])
    assert visible_names(page) == [one]
    page.locator("#store-search").fill("no-such-store")
    expect(page.locator("#stores-no-match")).to_be_visible()
    page.locator("#clear-filters").click()
    expect(page.locator("#store-search")).to_have_value("")
    assert len(visible_names(page)) == len(stores)

    # A stable order: by name, and newest first (ties by name), kept across polls.
    page.locator("#store-sort").select_option("name")
    by_name = visible_names(page)
    assert by_name == sorted(s["name"] for s in stores)
    page.locator("#store-sort").select_option("newest")
    newest = visible_names(page)
    assert newest == [s["name"] for s in sorted(
        stores, key=lambda s: (-_epoch(s["createdAt"]), s["name"]))]
    page.wait_for_timeout(4_500)  # two polls later, the same order
    assert visible_names(page) == newest

    # Polling costs a 304 once nothing changes: the ETag goes back as If-None-Match.
    deadline = time.monotonic() + 30
    while not any(status == 304 for status, _, _ in responses):
        assert time.monotonic() < deadline, responses[-5:]
        page.wait_for_timeout(1_000)
    index = next(i for i, (status, _, _) in enumerate(responses) if status == 304)
    assert responses[index][1] and responses[index][1] == responses[index - 1][2]

    # How long a render of all rows takes (each poll renders, a 304 too: times move on).
    durations = page.evaluate(
        "performance.getEntriesByName('storeplatform-render').map(e => e.duration)")
    report = {"stores": len(stores), "renders": len(durations),
              "first_render_ms": round(durations[0], 1),
              "median_render_ms": round(statistics.median(durations[1:] or durations), 1),
              "max_render_ms": round(max(durations), 1),
              "first_view_s": round(first_view_s, 2)}
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "render-500.json").write_text(json.dumps(report, indent=2))
    print(f"\ndashboard at {len(stores)} stores: {report}")

    # The cards layout, the failure's reason and advice, and a retry that really recreates.
    page.locator('#view-toggle button[data-view="cards"]').click()
    expect(listing).to_have_attribute("data-view", "cards")
    name = next(n for n, s in sorted(fleet.items()) if s == "failed")
    page.locator("#store-search").fill(name)
    row = listing.locator(f'li.store[data-name="{name}"]')
    expect(row.locator(".store__reason-text")).to_have_text(re.compile("failed"))
    expect(row.locator(".store__next-text")).to_have_text(re.compile("Retry"))
    expect(row.locator('.timeline__step[data-state="failed"]')).to_have_count(1)
    save_screenshot(page, "failed-store.png")
    with page.expect_request(lambda r: r.method == "POST") as sent:
        row.locator(".store__retry").click()
    assert sent.value.url.endswith(f"/stores/{name}")
    expect(row.locator(".badge__text")).to_have_text("provisioning")
    expect(row.locator(".badge__text")).to_have_text(re.compile("ready|failed"),
                                                     timeout=RETRY_READY_TIMEOUT_MS)
    assert row.locator(".badge__text").inner_text() == "ready", row.inner_text()

    page.locator("#store-search").fill("")
    page.locator('#view-toggle button[data-view="compact"]').click()
    page.evaluate("window.scrollTo(0, 0)")
    save_screenshot(page, "dashboard-500.png", docs=True)


def _epoch(text: str | None) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() if text else -1e18


def save_screenshot(page: Page, name: str, docs: bool = False) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.mouse.move(0, 0)
    page.evaluate("document.activeElement?.blur()")
    shot = ARTIFACTS / name
    page.screenshot(path=str(shot), clip={"x": 0, "y": 0, "width": 1100, "height": 760})
    if docs and os.environ.get("UPDATE_DOCS_SCREENSHOT") == "1":
        DOCS_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, DOCS_SCREENSHOT)
