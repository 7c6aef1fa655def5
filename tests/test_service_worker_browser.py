"""The cabinet's service worker (cabinet/sw.js) in Debian's Chromium against a real gateway:
it keeps the shell, serves it when the network is gone, shows «Нет связи» for a page it never
had, and never keeps or answers /api/. Its push handler cannot be driven here: headless
Chromium delivers no real push without a push service on the Internet, so what is pushed is
tested on the sending side (tests/test_web_push.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser import PHONE, accessible, browser, fits_phone, screenshot
from tests.conftest import Gateway
from tests.test_hardening_http import serving

pytestmark = pytest.mark.slow

REGISTER = """async () => {
  await navigator.serviceWorker.register('/app/sw.js', {scope: '/app/'});
  await navigator.serviceWorker.ready;
  return true;
}"""
CACHED = """async () => {
  const names = await caches.keys();
  const paths = [];
  for (const name of names) {
    for (const request of await (await caches.open(name)).keys()) {
      paths.push(new URL(request.url).pathname);
    }
  }
  return paths;
}"""
API_FETCH = """async () => {
  try { return (await fetch('/api/v1/health')).status; } catch { return 'failed'; }
}"""


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """SQLite only: the worker never reaches the database."""
    return f"sqlite:///{tmp_path / 'moydom.db'}"


@pytest.fixture
def phone(tmp_path: Path) -> Iterator[BrowserContext]:
    with browser(tmp_path / "profile", PHONE) as context:
        yield context


def controlled(page: Page, url: str) -> None:
    """Open the offline page, register the worker as the shell does, wait until it controls."""
    page.goto(f"{url}/app/offline")
    assert page.evaluate(REGISTER) is True
    page.reload()
    page.wait_for_function("navigator.serviceWorker.controller !== null")


def test_the_shell_works_offline_and_the_api_is_never_cached(
    gateway: Gateway, phone: BrowserContext
) -> None:
    host, port = gateway.stack.enter_context(serving(gateway.ctx))
    url = f"http://{host}:{port}"
    page = phone.new_page()
    controlled(page, url)
    assert page.evaluate(API_FETCH) == 200
    cached = set(page.evaluate(CACHED))
    assert {"/app/", "/app/offline", "/app/login", "/static/api.js", "/app/shell.js"} <= cached
    assert not any(path.startswith("/api/") for path in cached), cached
    assert "/app/no-such-page" not in cached

    phone.set_offline(True)
    # A page of the shell comes from the cache…
    page.goto(f"{url}/app/login?next=%2Fapp%2Fhistory")
    expect(page.get_by_label("Пароль")).to_be_visible()
    # …one it never had is «Нет связи», and the API is not answered from anywhere.
    page.goto(f"{url}/app/no-such-page")
    expect(page.get_by_role("heading", name="Нет связи")).to_be_visible()
    expect(page.get_by_role("link", name="Повторить")).to_have_attribute("href", "/app/")
    assert page.evaluate(API_FETCH) == "failed"
    fits_phone(page)
    accessible(page)
    screenshot(page, "cabinet-offline")

    phone.set_offline(False)
    page.goto(f"{url}/app/no-such-page")
    assert page.get_by_role("heading", name="Нет связи").count() == 0  # the server's own 404


def test_push_module_reports_off_until_enabled(gateway: Gateway, phone: BrowserContext) -> None:
    """push.js loads under the page's CSP and says "off" for a browser not subscribed (enabling
    would subscribe at Google's push service, which a test may not reach)."""
    host, port = gateway.stack.enter_context(serving(gateway.ctx))
    url = f"http://{host}:{port}"
    page = phone.new_page()
    controlled(page, url)
    state = page.evaluate("async () => (await import('/app/push.js')).pushState()")
    assert state == "off"
