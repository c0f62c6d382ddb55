"""The dashboard in headless Chromium against `make dev`: create, watch, delete, errors, token."""

from __future__ import annotations

import os
import re
import secrets
import shutil
from pathlib import Path

import pytest

from tests.browser.sync_api import Page, expect
from tests.helpers import standin_accepts

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "browser"

READY_TIMEOUT_MS = 300_000  # helm install on the local control plane, Job and all
GONE_TIMEOUT_MS = 240_000
DOCS_SCREENSHOT = ROOT / "docs" / "screenshots" / "dashboard-ready.png"


def unique_name(prefix: str) -> str:
    return f"store-{prefix}-{secrets.token_hex(3)}"


def store_row(page: Page, name: str):
    return page.locator(f'li.store[data-name="{name}"]')


def open_dashboard(page: Page, url: str) -> None:
    page.goto(url)
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    expect(page.locator("#stores-loading")).to_be_hidden()


def changes_sent(page: Page) -> list[str]:
    """Record every POST/DELETE the page sends from now on."""
    sent: list[str] = []
    page.on("request", lambda r: sent.append(f"{r.method} {r.url}")
            if r.method in ("POST", "DELETE") else None)
    return sent


def test_create_then_delete_store(page: Page, devstack: dict[str, str]) -> None:
    name = unique_name("e2e")
    open_dashboard(page, devstack["dashboard"])

    # Create, with the keyboard only.
    page.locator("#store-name").focus()
    page.keyboard.type(name)
    page.keyboard.press("Enter")
    expect(page.locator("#create-result")).to_have_text(re.compile(f"^{name} requested"))
    row = store_row(page, name)
    expect(row).to_have_count(1)
    badge = row.locator(".badge")
    expect(badge).to_have_text(re.compile("provisioning|ready"))
    if badge.text_content() == "provisioning":
        expect(row.locator(".store__elapsed")).to_have_text(re.compile(r"elapsed$"))

    # It reaches ready by itself (polling), with its links and creation time.
    # (Stop waiting at "failed" too, and show its reason, rather than sit out the timeout.)
    expect(badge).to_have_text(re.compile("ready|failed"), timeout=READY_TIMEOUT_MS)
    assert badge.inner_text().strip() == "ready", row.inner_text()
    expect(row.locator(".store__storefront")).to_have_attribute("href", re.compile("^https?://"))
    expect(row.locator(".store__admin")).to_have_attribute("href", re.compile("^https?://"))
    expect(row.locator("time.store__created")).to_have_attribute("datetime", re.compile("Z$"))
    expect(row.locator(".store__progress")).to_be_hidden()
    # The provisioning steps, as the runner recorded them, each done, with how long it took.
    steps = row.locator(".timeline__step")
    expect(steps).to_have_count(5)
    assert steps.evaluate_all("s => s.map(e => e.dataset.step)") == [
        "queued", "install", "setup", "test", "ready"]
    assert set(steps.evaluate_all("s => s.map(e => e.dataset.state)")) == {"done"}
    expect(row.locator('.timeline__step[data-step="ready"] .timeline__time')).to_have_text(
        re.compile(r"^total \d+ (s|min)"))
    expect(row.locator('.timeline__step[data-step="install"] .timeline__time')).to_have_text(
        re.compile(r"^\d+ (s|min)"))
    expect(page.locator('#status-filter [data-count="ready"]')).not_to_have_text("0")
    save_ready_screenshot(page)

    reset_admin_password(page, devstack, row, name)

    # Delete: the dialog names the store; Escape cancels, then confirm with the keyboard.
    row.locator(".store__delete").click()
    dialog = page.locator("#delete-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#delete-title")).to_have_text(f"Delete {name}?")
    expect(page.locator("#delete-cancel")).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(badge).to_have_text("ready")

    sent = changes_sent(page)
    row.locator(".store__delete").click()
    expect(page.locator("#delete-cancel")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.locator("#delete-confirm")).to_have_text(f"Delete {name}")
    page.keyboard.press("Enter")
    expect(dialog).to_be_hidden()
    assert sent == [f"DELETE {devstack['gateway']}/stores/{name}"]
    expect(row).to_have_count(0, timeout=GONE_TIMEOUT_MS)


def reset_admin_password(page: Page, devstack: dict[str, str], row, name: str) -> None:
    """The owner's way in: a new password through the platform, shown once, and it is the one
    WordPress's side (make dev's wp-cli stand-in) was given."""
    row.locator(".store__reset").click()
    dialog = page.locator("#reset-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#reset-name")).to_have_text(name)
    expect(page.locator("#reset-cancel")).to_be_focused()
    with page.expect_response(lambda r: r.url.endswith(f"/stores/{name}/admin-password")
                              and r.request.method == "POST") as asked:
        page.locator("#reset-confirm").click()
    reset_id = asked.value.json()["id"]
    password_box = page.locator("#reset-password")
    expect(password_box).not_to_have_value("", timeout=120_000)
    expect(password_box).to_be_focused()
    expect(page.locator("#reset-user")).to_have_text("admin")
    password = password_box.input_value()
    assert len(password) >= 20
    assert standin_accepts(devstack, name, "admin", password)
    page.screenshot(path=str(ARTIFACTS / "admin-password-reset.png"))
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert password_box.input_value() == ""  # closing forgets it
    # Shown once: the same reset cannot be revealed again, not even by the same page.
    again = page.evaluate("""async ([name, id, token]) => {
        const r = await fetch(`/stores/${name}/admin-password/${id}`, {method: "POST",
            headers: {"Authorization": `Bearer ${token}`, "Content-Type": "application/json"},
            body: "{}"});
        return [r.status, (await r.json()).error.code];
    }""", [name, reset_id, devstack["token"]])
    assert again == [410, "already_shown"]
    # Every log of the stack (functions, runner pods, control plane, Knative), and the
    # metrics: never the password. (etcd holds Secrets as Kubernetes does; not a log.)
    state = Path(devstack["state_dir"])
    places = [state / "logs", state / "metrics", state / "cluster" / "logs",
              state / "cluster" / "pods", state / "cluster" / "knative"]
    leaked = [str(p) for place in places for p in place.rglob("*")
              if p.is_file() and password.encode() in p.read_bytes()]
    assert leaked == [], f"the new password was written to {leaked}"


def save_ready_screenshot(page: Page) -> None:
    """The artifact always; the docs copy only when asked (UPDATE_DOCS_SCREENSHOT=1)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.mouse.move(0, 0)  # no hover or focus effects in the picture
    page.evaluate("document.activeElement?.blur()")
    shot = ARTIFACTS / "dashboard-ready.png"
    page.screenshot(path=str(shot), clip={"x": 0, "y": 0, "width": 1100, "height": 700})
    if os.environ.get("UPDATE_DOCS_SCREENSHOT") == "1":
        DOCS_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, DOCS_SCREENSHOT)


@pytest.mark.parametrize(("bad_name", "message"), [
    ("Store_Bad", "store name must start with 'store-'"),
    ("store-Bad", "store name may contain only lowercase letters, digits and '-', "
                  "and must end with a letter or digit"),
    ("store-" + "a" * 35, "store name must be at most 40 characters (got 41)"),
])
def test_bad_name_rejected_inline(page: Page, devstack: dict[str, str], bad_name: str,
                                  message: str) -> None:
    open_dashboard(page, devstack["dashboard"])
    sent = changes_sent(page)
    name = page.locator("#store-name")
    name.fill(bad_name)
    page.locator("#create-button").click()

    error = page.locator("#store-name-error")
    expect(error).to_have_text(message)
    expect(error).to_have_attribute("aria-live", "polite")
    expect(name).to_have_attribute("aria-invalid", "true")
    expect(name).to_have_attribute("aria-describedby", re.compile(r"\bstore-name-error\b"))
    expect(name).to_be_focused()
    assert sent == [], "a name the server would reject must not be sent"

    # Fixing the name clears the message as you type.
    name.fill("store-fixed")
    expect(error).to_have_text("")
    expect(name).to_have_attribute("aria-invalid", "false")


def test_medusa_shows_the_servers_message(page: Page, devstack: dict[str, str]) -> None:
    open_dashboard(page, devstack["dashboard"])
    name = unique_name("medusa")
    page.locator("#store-name").fill(name)
    page.locator("#store-engine").select_option(label="MedusaJS")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.locator("#create-button").click()
    response = answer.value
    assert response.status == 501
    server_message = response.json()["error"]["message"]

    result = page.locator("#create-result")
    expect(result).to_have_text(server_message)
    expect(result).to_have_attribute("data-kind", "error")
    expect(store_row(page, name)).to_have_count(0)


def test_gateway_unreachable_banner_clears_when_back(page: Page,
                                                     devstack: dict[str, str]) -> None:
    open_dashboard(page, devstack["dashboard"])
    banner = page.locator("#banner")
    expect(banner).to_be_hidden()

    # The browser loses the gateway (connection refused), then gets it back.
    page.route("**/stores", lambda route: route.abort("connectionrefused"))
    expect(banner).to_be_visible(timeout=10_000)
    expect(page.locator("#banner-title")).to_have_text("Cannot reach gateway…")
    expect(page.locator("#connection")).to_have_attribute("data-state", "down")
    page.screenshot(path=str(ARTIFACTS / "gateway-unreachable.png"))
    page.unroute("**/stores")
    expect(banner).to_be_hidden(timeout=10_000)
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")


def test_token_is_asked_for_and_sent(page: Page, token_gateway: dict[str, str]) -> None:
    page.goto(token_gateway["url"])
    dialog = page.locator("#token-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#token-input")).to_be_focused()

    # A wrong token: the gateway's 401 message, word for word, and the prompt again.
    with page.expect_response(lambda r: r.url.endswith("/stores")) as answer:
        page.keyboard.type("not-the-token")
        page.keyboard.press("Enter")
    assert answer.value.status == 401
    server_message = answer.value.json()["error"]["message"]
    expect(page.locator("#banner-message")).to_have_text(server_message)
    expect(dialog).to_be_visible()

    with page.expect_request(lambda r: r.url.endswith("/stores")) as sent:
        page.locator("#token-input").fill(token_gateway["token"])
        page.keyboard.press("Enter")
    assert sent.value.headers["authorization"] == f"Bearer {token_gateway['token']}"
    expect(page.locator("#banner")).to_be_hidden()
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    assert page.evaluate("sessionStorage.length") == 1
