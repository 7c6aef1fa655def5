"""The cabinet's history page in Debian's Chromium against a real gateway (broker, database,
ingest, alarms role): sensor events published through MQTT appear on top without a reload,
«Показать ещё» pages back with the API's cursors in the API's order, the kind and date filters
(dates in the home's zone) narrow it, alerts, gate commands and the audit trail have their
views, and a second contract sees none of it. 360 px, axe-core, a screenshot per journey."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.conftest import Gateway
from tests.security_support import SecuredHome, secure
from tests.test_cabinet_people_browser import checked, db_url, log_in, phone, recorder, site
from tests.test_calls import entrance, ring
from tests.test_ingest import wait_until

__all__ = ["db_url", "phone"]  # fixtures
pytestmark = pytest.mark.slow
API = "/api/v1"
ZONE = ZoneInfo("Asia/Novosibirsk")  # the homes' zone (none is set)


@pytest.fixture
def secured(gateway_factory: Any) -> Iterator[SecuredHome]:
    gw: Gateway = gateway_factory(command_wait_s=0.2, command_deadline_s=1, alarms_poll_s=0.2)
    home = secure(gw, "5701")
    yield home
    home.close()


def event_ids(secured: SecuredHome, **filters: str) -> list[int]:
    r = secured.gw.http.get(
        f"{API}/events",
        params={"home": secured.home, "limit": "500", **filters},
        headers=secured.owner,
    )
    assert r.status_code == 200, r.text
    return [e["id"] for e in r.json()["items"]]


def shown_ids(page: Page) -> list[int]:
    return [
        int(i) for i in page.locator("#history li").evaluate_all("ls => ls.map(l => l.dataset.id)")
    ]


def test_history_pages_back_filters_and_updates_live(
    secured: SecuredHome, phone: BrowserContext
) -> None:
    gw = secured.gw
    for i in range(45):
        secured.send("hall", {"occupancy": i % 2 == 1, "battery": 90})
    wait_until(lambda: len(event_ids(secured, event="motion")) == 45, timeout=30)
    url = site(gw)
    page = phone.new_page()
    log_in(page, url, "5701", path="/app/history")
    form = page.locator("#filters")
    form.get_by_label("Что показать").select_option("events")
    everything = event_ids(secured)
    assert len(everything) > 40
    more = page.get_by_role("button", name="Показать ещё")
    expect(page.locator("#history li")).to_have_count(20)
    assert shown_ids(page) == everything[:20]
    checked(page)
    more.click()
    expect(page.locator("#history li")).to_have_count(40)
    more.click()
    expect(page.locator("#history li")).to_have_count(len(everything))
    expect(more).to_be_hidden()
    assert shown_ids(page) == everything  # the API's order, no entry twice
    expect(page.locator("#history li").first).to_contain_text("Движение прекратилось")

    # A new event through MQTT goes on top without a reload.
    secured.send("hall", {"occupancy": True})
    newest = wait_until(lambda: (ids := event_ids(secured)) and ids[0] > everything[0] and ids)
    expect(page.locator("#history li").first).to_have_attribute("data-id", str(newest[0]))
    expect(page.locator("#history li").first).to_contain_text("Движение")
    expect(page.locator("#history li").first).to_contain_text("hall")
    expect(page.locator("#history li")).to_have_count(len(newest))

    # Dates are the home's days: from tomorrow there is nothing, today has everything.
    today = datetime.now(ZONE).date()
    form.get_by_label("С даты").fill((today + timedelta(days=1)).isoformat())
    expect(page.locator("#history-empty")).to_be_visible()
    expect(page.locator("#history li")).to_have_count(0)
    form.get_by_label("С даты").fill(today.isoformat())
    expect(page.locator("#history li")).to_have_count(20)
    form.get_by_label("По дату").fill((today - timedelta(days=1)).isoformat())
    expect(page.locator("#history-empty")).to_be_visible()
    form.get_by_label("По дату").fill(today.isoformat())
    expect(page.locator("#history li")).to_have_count(20)
    # One class of event: only the sensor's own classes are there.
    form.get_by_label("Какие события").select_option(label="Протечка")
    expect(page.locator("#history-empty")).to_be_visible()
    form.get_by_label("Какие события").select_option(label="Движение")
    expect(page.locator("#history li")).to_have_count(20)
    assert shown_ids(page) == event_ids(secured, event="motion")[:20]
    checked(page, "cabinet-history")


def test_alerts_commands_and_audit_views(secured: SecuredHome, phone: BrowserContext) -> None:
    gw = secured.gw
    gate = gw.create_device("5701", "gate", "Ворота во двор")
    r = gw.http.post(
        f"{API}/homes/{secured.home}/devices/{gate['id']}/commands",
        json={"action": "open"},
        headers=secured.owner,
    )
    assert r.status_code == 201, r.text
    url = site(gw)
    page = phone.new_page()
    log_in(page, url, "5701", path="/app/history")
    form = page.locator("#filters")
    items = page.locator("#history li")
    form.get_by_label("Что показать").select_option("commands")
    expect(items).to_have_count(1)
    expect(items.first).to_contain_text("Открытие:")
    expect(items.first).to_contain_text("Ворота во двор")
    expect(items.first).to_contain_text("кто: 5701")
    form.get_by_label("Что показать").select_option("audit")
    expect(page.locator("#history li[data-kind='audit']").first).to_be_visible()
    expect(page.locator("#history")).to_contain_text("Добавлен код охраны")
    expect(page.locator("#history")).to_contain_text("Команда устройству")
    form.get_by_label("Что показать").select_option("alerts")
    # The gate that did not answer is an alert of its own.
    expect(items).to_have_count(1)
    expect(items.first).to_contain_text("Не открылось «Ворота во двор»")
    # A leak is an always-on alarm: the alert arrives on the stream and goes on top.
    secured.send("bath", {"water_leak": True})
    expect(items).to_have_count(2, timeout=20_000)
    expect(items.first).to_have_attribute("data-kind", "alert")
    expect(items.first).to_contain_text("Протечка")
    checked(page, "cabinet-history-alerts")
    form.get_by_label("Что показать").select_option("all")
    expect(page.locator("#history li[data-kind='alert']")).not_to_have_count(0)
    expect(page.locator("#history li[data-kind='event']")).not_to_have_count(0)
    expect(page.locator("#history li[data-kind='audit']")).not_to_have_count(0)


def test_a_second_contract_sees_nothing_of_the_first_in_history(
    secured: SecuredHome, phone: BrowserContext
) -> None:
    gw = secured.gw
    secured.send("hall", {"occupancy": True})
    secured.send("bath", {"water_leak": True})
    wait_until(lambda: event_ids(secured, event="leak"), timeout=20)
    gw.create_contract("5702", address="Бердск, ул. Своя, 2")
    own = gw.create_device("5702", "gate", "own-gate")
    r = gw.http.post(
        f"{API}/homes/{own['home']}/devices/{own['id']}/commands",
        json={"action": "open"},
        headers=gw.login("5702"),
    )
    assert r.status_code == 201, r.text
    url = site(gw)
    page = phone.new_page()
    bodies = recorder(page)
    log_in(page, url, "5702", path="/app/history")
    form = page.locator("#filters")
    expect(page.locator("#history li").first).to_be_visible()  # its own command and audit
    secured.send("hall", {"occupancy": False})  # the first contract's, while B watches
    secured.send("bath", {"water_leak": False})
    wait_until(lambda: len(event_ids(secured, event="leak")) == 2, timeout=20)
    for kind in ("events", "alerts", "calls", "commands", "audit", "all"):
        form.get_by_label("Что показать").select_option(kind)
        expect(page.locator("#history li, #history-empty").first).to_be_visible()
    checked(page, "cabinet-history-second-contract")
    first = [secured.home, *(d["id"] for d in secured.devices.values()), "hall", "bath", "anna"]
    assert any(own["id"] in b for _, b in bodies)
    for marker in first:
        assert marker not in page.content()
        assert [u for u, b in bodies if marker in b] == [], marker


def test_intercom_calls_appear_and_change_live(gateway_factory: Any, phone: BrowserContext) -> None:
    gw: Gateway = gateway_factory(call_ring_timeout_s=3.0, alarms_poll_s=0.2)
    site_ = entrance(gw)
    gw.start_alarms()
    url = site(gw)
    page = phone.new_page()
    log_in(page, url, "4312", path="/app/history")
    page.locator("#filters").get_by_label("Что показать").select_option("calls")
    expect(page.locator("#history-empty")).to_be_visible()
    ring(gw, site_["panel"], {"event": "call", "call_id": "h1", "apartment": "12"})
    call = page.locator("#history li[data-kind='call']")
    expect(call).to_have_count(1)
    expect(call).to_contain_text("Звонок домофона: звонит")
    expect(call).to_contain_text("квартира 12")
    # Nobody answers: the same entry turns into a missed call, without a reload.
    expect(call).to_contain_text("Звонок домофона: пропущен", timeout=20_000)
    expect(call).to_have_count(1)
    checked(page, "cabinet-history-calls")
    # «Всё» shows the call's history lines among the events.
    page.locator("#filters").get_by_label("Что показать").select_option("all")
    expect(page.locator("#history")).to_contain_text("Звонок домофона: пропущен")
