"""The «Мой дом» cabinet in Debian's Chromium against a real gateway (broker, database, alarms,
ingest): login and its errors, the home page's security, sensors, cameras and gates, the
password pages, and that a second contract sees nothing of the first."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser import PHONE, accessible, browser, fits_phone, screenshot
from tests.conftest import Gateway
from tests.test_hardening_http import serving

pytestmark = pytest.mark.slow


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """SQLite only: the pages use the same API on both backends, which the API tests cover."""
    return f"sqlite:///{tmp_path / 'moydom.db'}"


@pytest.fixture
def site(gateway: Gateway) -> Iterator[str]:
    with serving(gateway.ctx) as (host, port):
        yield f"http://{host}:{port}"


@pytest.fixture
def phone(tmp_path: Path) -> Iterator[BrowserContext]:
    with browser(tmp_path / "profile", PHONE) as context:
        yield context


def log_in(page: Page, site: str, login: str, password: str = "correct horse 1") -> None:
    page.goto(f"{site}/app/")
    expect(page).to_have_url(re.compile(r"/app/login\?next="))
    page.get_by_label("Номер договора, телефон или e-mail").fill(login)
    page.get_by_label("Пароль").fill(password)
    page.get_by_role("button", name="Войти").click()


def test_login_wrong_password_then_home(gateway: Gateway, site: str, phone: BrowserContext) -> None:
    gateway.create_contract("5001", address="Новосибирск, ул. Ленина, 1")
    page = phone.new_page()
    log_in(page, site, "5001", "not the password")
    expect(page.get_by_role("status")).to_have_text("Неверный номер договора или пароль")
    fits_phone(page)
    accessible(page)
    page.get_by_label("Пароль").fill("correct horse 1")
    page.get_by_role("button", name="Войти").click()
    expect(page).to_have_url(f"{site}/app/")
    expect(page.get_by_role("banner")).to_contain_text("Мой дом")
    expect(page.get_by_role("banner")).to_contain_text("ул. Ленина, 1")
    fits_phone(page)
    accessible(page)
    screenshot(page, "cabinet-login")
