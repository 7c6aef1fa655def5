"""The operator view in Debian's Chromium against a real gateway (broker, ingest, database):
the admin-token login and its error, devices of every contract with their health and the
offline / silent / low-battery filters, a malformed MQTT message in the rejected list with its
reason, the recorders and metrics sections. Checked at 360 px and with axe-core; screenshots."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from gateway.db.models import Event, RejectedMessage
from tests.browser import PHONE, accessible, browser, fits_phone, screenshot
from tests.conftest import Gateway
from tests.support import device_connect
from tests.test_hardening_http import serving
from tests.test_ingest import count, publish, wait_until
from tests.test_operator_health import HOURS_3, report_from, seen_ago

pytestmark = pytest.mark.slow


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """SQLite only: the page uses the same API on both backends, which the API tests cover."""
    return f"sqlite:///{tmp_path / 'moydom.db'}"


@pytest.fixture
def phone(tmp_path: Path) -> Iterator[BrowserContext]:
    with browser(tmp_path / "profile", PHONE) as context:
        yield context


def checked(page: Page, name: str) -> None:
    fits_phone(page)
    accessible(page)
    screenshot(page, name)


def row(page: Page, device: dict[str, Any]) -> Any:
    return page.locator(f"#devices tr[data-device='{device['id']}']")


def test_operator_sees_health_filters_and_rejected_messages(
    gateway: Gateway, phone: BrowserContext
) -> None:
    gw = gateway
    gw.create_contract("6201", address="Новосибирск, ул. Ленина, 1")
    gw.create_contract("6202", address="Бердск, ул. Ленина, 2")
    hall = gw.create_device("6201", "motion", "hall")
    bath = gw.create_device("6201", "leak", "bath")
    door = gw.create_device("6201", "contact", "door")
    yard = gw.create_device("6202", "gate", "yard")
    porch = gw.create_device("6202", "camera", "porch", rtsp_url="rtsp://127.0.0.1:9/porch")
    gw.start_ingest()
    report_from(gw, hall, {"occupancy": False, "battery": 90, "linkquality": 120})
    report_from(gw, bath, {"water_leak": False, "battery": 10, "linkquality": 70})
    report_from(gw, door, {"contact": True, "battery": 80})
    report_from(gw, yard, {"state": "offline"}, "availability")
    peer = device_connect(gw.mqtt_port, hall)
    publish(peer, hall["topics"]["state"], b"{not json")  # malformed: stored aside
    peer.close()
    wait_until(lambda: count(gw, Event) == 4 and count(gw, RejectedMessage) == 1)
    seen_ago(gw, door, HOURS_3)

    host, port = gw.stack.enter_context(serving(gw.ctx))
    url = f"http://{host}:{port}"
    page = phone.new_page()
    page.goto(f"{url}/operator/")
    expect(page).to_have_url(re.compile(r"/operator/login\?next="))
    token = page.get_by_label("Токен администратора")
    token.fill("not-the-admin-token")
    page.get_by_role("button", name="Войти").click()
    expect(page.get_by_role("status")).to_have_text("Неверный токен администратора")
    checked(page, "operator-login-error")
    token.fill(gw.ctx.secrets.admin_token)
    page.get_by_role("button", name="Войти").click()
    expect(page).to_have_url(f"{url}/operator/")

    expect(row(page, hall)).to_contain_text("В норме")
    expect(row(page, hall)).to_contain_text("90 %")
    expect(row(page, hall)).to_contain_text("120 из 255")
    expect(row(page, bath)).to_contain_text("Слабая батарея")
    expect(row(page, door)).to_contain_text("Молчит")
    expect(row(page, yard)).to_contain_text("Не в сети")
    expect(row(page, yard)).to_contain_text("№ 6202")
    expect(row(page, porch)).to_contain_text("Ещё не на связи")  # never reported: not "healthy"
    rejected = page.locator("#rejected tr[data-reason='not_json']")
    expect(rejected).to_contain_text("не JSON")
    expect(rejected).to_contain_text(hall["topics"]["state"])
    expect(rejected).to_contain_text("{not json")
    expect(page.locator("#cameras")).to_contain_text("porch")
    expect(page.locator("#cameras")).to_contain_text("нет данных")
    expect(page.locator("#metrics")).to_contain_text("moydom_ingest_messages_total")
    checked(page, "operator-view")

    page.get_by_role("button", name="Молчат (1)").click()
    expect(page.get_by_role("button", name="Молчат (1)")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#devices tbody tr")).to_have_count(1)
    expect(row(page, door)).to_contain_text("Молчит")
    page.get_by_role("button", name="Слабая батарея (1)").click()
    expect(row(page, door)).to_have_count(0)
    expect(page.locator("#devices tbody tr")).to_have_count(1)
    expect(row(page, bath)).to_contain_text("10 %")
    page.get_by_role("button", name="Не в сети (1)").click()
    expect(page.locator("#devices tbody tr")).to_have_count(1)
    expect(row(page, yard)).to_be_visible()
    checked(page, "operator-filter-offline")
    page.get_by_role("button", name="Все (5)").click()
    expect(page.locator("#devices tbody tr")).to_have_count(5)

    page.get_by_role("button", name="Выйти").click()
    expect(page).to_have_url(re.compile(r"/operator/login"))
    page.goto(f"{url}/operator/")
    expect(page).to_have_url(re.compile(r"/operator/login\?next="))
