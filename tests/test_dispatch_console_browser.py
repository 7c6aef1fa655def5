"""The dispatch console in Debian's Chromium against a real gateway (broker, database, ingest,
alarms role, recorder and an RTSP camera): a dispatcher logs in, a sensor tripped over MQTT in
an armed home brings a case into the open queue without a reload — with the chime and a
highlight, then escalated when it is re-sent — and the dispatcher opens it, plays its held clip
in the page, acknowledges, sends a team, adds a note and closes it. A subscriber's token opens
nothing of the console. Live view of the case's cameras is tested over the API
(tests/test_dispatch_media.py): Chromium gathers no loopback candidates."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect
from sqlalchemy import select

from gateway.db.media_models import Recording
from gateway.runtime import start_recorder
from tests.browser import DESKTOP, PHONE, accessible, browser, fits_phone, screenshot
from tests.conftest import Gateway
from tests.rtsp import RtspServer, scene
from tests.security_support import SecuredHome, central_station, secure
from tests.support import free_port
from tests.test_hardening_http import serving
from tests.test_ingest import wait_until
from tests.test_sia import Receiver

__all__ = ["central_station"]  # fixture
pytestmark = pytest.mark.slow
ADDRESS = "Бердск, ул. Ленина, 5, кв. 12"
TABLET: Any = {"width": 800, "height": 1100}


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """SQLite only: the pages use the same API on both backends, which the API tests cover."""
    return f"sqlite:///{tmp_path / 'moydom.db'}"


@pytest.fixture
def camera_server() -> Iterator[RtspServer]:
    with RtspServer(free_port(), {"/cam": scene(320, 180, 10, ball=True)}) as server:
        yield server


@pytest.fixture
def home(
    gateway_factory: Any, central_station: Receiver, camera_server: RtspServer, tmp_path: Path
) -> Iterator[tuple[SecuredHome, str]]:
    """An armed home with a recording camera; the console served on a port of its own."""
    gw: Gateway = gateway_factory(
        central_station_host="127.0.0.1",
        central_station_port=central_station.port,
        alarms_poll_s=0.2,
        dispatch_ack_timeout_s=3.0,
        archive_dir=tmp_path / "archive",
        recorder_segment_s=2.0,
        clip_before_s=1.0,
        clip_after_s=20.0,
    )
    number = "5401"
    gw.create_contract = partial(Gateway.create_contract, gw, address=ADDRESS)  # type: ignore[method-assign]
    a = secure(gw, number)
    gw.create_device(number, "camera", "porch", rtsp_url=camera_server.url("/cam"))
    recorder = start_recorder(gw.settings, gw.ctx.secrets, gw.ctx.db, gw.stack)
    assert recorder.ready.wait(20)
    host, port = gw.stack.enter_context(serving(gw.ctx))
    yield a, f"http://{host}:{port}"
    a.close()


@pytest.fixture
def desktop(tmp_path: Path) -> Iterator[BrowserContext]:
    with browser(tmp_path / "profile", DESKTOP) as context:
        yield context


def checked(page: Page, name: str) -> None:
    """Accessible, no sideways scroll at 360 px, a screenshot (at the desktop width)."""
    accessible(page)
    page.set_viewport_size(PHONE)
    fits_phone(page)
    page.set_viewport_size(TABLET)
    fits_phone(page)
    page.set_viewport_size(DESKTOP)
    screenshot(page, name)


def _recorded(gw: Gateway) -> int:
    with gw.ctx.db.session() as session:
        return len(session.scalars(select(Recording.id)).all())


def _clip_playable(a: SecuredHome, case_id: int) -> bool:
    r = a.gw.http.get(f"/api/v1/dispatch/cases/{case_id}/clips", headers=a.dispatcher)
    return bool(r.json()) and a.gw.http.get(r.json()[0]["recording"]).status_code == 200


def test_dispatcher_takes_a_case_from_the_queue_to_closed(
    home: tuple[SecuredHome, str], desktop: BrowserContext
) -> None:
    a, url = home
    page = desktop.new_page()
    page.goto(f"{url}/dispatch/")
    expect(page).to_have_url(re.compile(r"/dispatch/login\?next="))
    page.get_by_label("Логин").fill("desk5401")
    page.get_by_label("Пароль").fill("wrong password")
    page.get_by_role("button", name="Войти").click()
    expect(page.get_by_role("status")).to_have_text("Неверный логин или пароль")
    page.get_by_label("Пароль").fill("dispatch pass 1")
    page.get_by_role("button", name="Войти").click()
    expect(page).to_have_url(f"{url}/dispatch/")
    expect(page.locator("#link")).to_have_text("На связи")
    expect(page.locator("#empty")).to_be_visible()
    page.get_by_role("button", name="Включить звук").click()
    expect(page.locator("body")).to_have_attribute("data-chimes", "1")

    # The home is armed and its motion sensor trips: the case comes in without a reload.
    wait_until(lambda: _recorded(a.gw) >= 2, 30)
    assert a.arm().status_code == 200
    a.wait_status("armed_away")
    a.send("hall", {"occupancy": True})
    item = page.locator("#queue > li")
    expect(item).to_have_count(1, timeout=30_000)
    expect(item).to_contain_text(ADDRESS)
    expect(item).to_have_class(re.compile(r"\bfresh\b"))
    expect(item.locator(".fresh-mark")).to_have_text("Новая")
    expect(page.locator("body")).to_have_attribute("data-chimes", "2")
    # Nobody acknowledges it: it is re-sent, counted and shown stronger, with the chime again.
    expect(item).to_have_class(re.compile(r"\bescalated\b"), timeout=20_000)
    expect(item.locator(".resends")).to_contain_text("Повтор ×")
    expect(page.locator("body")).not_to_have_attribute("data-chimes", "2")
    checked(page, "dispatch-queue")

    case_id = int(item.get_attribute("data-case") or 0)
    wait_until(lambda: _clip_playable(a, case_id), 30)
    item.get_by_role("link").click()
    expect(page).to_have_url(f"{url}/dispatch/case?id={case_id}")
    page.go_back()  # seen now: no longer highlighted as new, still escalated until acknowledged
    expect(item).to_have_class(re.compile(r"\bescalated\b"))
    expect(item).not_to_have_class(re.compile(r"\bfresh\b"))
    page.go_forward()
    facts = page.locator("#facts")
    expect(facts).to_contain_text(ADDRESS)
    expect(facts).to_contain_text("hall")
    expect(facts).to_contain_text(re.compile(r"13[04] — "))
    expect(page.locator("#timeline")).to_contain_text("Тревога")
    # The held clip plays in the page: a frame of the camera is shown.
    clip = page.get_by_label(re.compile(r"^Запись камеры «porch»"))
    expect(clip).to_be_visible()
    clip.evaluate("video => video.play()")
    page.wait_for_function(
        "() => { const v = document.querySelector('#clips video');"
        " return v.readyState >= 2 && v.videoWidth === 320 && v.currentTime > 0; }",
        timeout=30_000,
    )
    expect(page.get_by_role("button", name="Смотреть «porch»")).to_be_visible()

    page.get_by_role("button", name="Принять тревогу").click()
    expect(page.get_by_role("status")).to_have_text("Тревога принята")
    expect(page.get_by_role("button", name="Тревога принята")).to_be_disabled()
    page.get_by_label("Группа быстрого реагирования").fill("ГБР-7")
    page.get_by_role("button", name="Направить группу").click()
    expect(page.get_by_role("status")).to_have_text("Группа «ГБР-7» направлена")
    page.get_by_label("Заметка").fill("Абонент не отвечает на звонок")
    page.get_by_role("button", name="Добавить заметку").click()
    expect(page.get_by_role("status")).to_have_text("Заметка добавлена")
    timeline = page.locator("#timeline")
    expect(timeline).to_contain_text("ГБР-7")
    expect(timeline).to_contain_text("Абонент не отвечает на звонок")
    checked(page, "dispatch-case")

    page.get_by_label("Итог").select_option("false_alarm")
    page.get_by_label("Комментарий к закрытию").fill("кошка")
    page.get_by_role("button", name="Закрыть тревогу").click()
    expect(page.get_by_role("status")).to_have_text("Тревога закрыта")
    expect(facts).to_contain_text("Закрыта: Ложная тревога")
    expect(page.locator("#clips video")).to_have_count(0)
    expect(page.locator("#no-clips")).to_have_text("Тревога закрыта: записи больше не доступны")
    (case,) = a.cases()
    assert case["status"] == "closed" and case["resolution"] == "false_alarm"
    kinds = {e["kind"] for e in case["timeline"]}
    assert {"acknowledged", "team_sent", "note", "closed"} <= kinds
    checked(page, "dispatch-case-closed")

    page.get_by_role("link", name="К очереди").click()
    expect(page.locator("#empty")).to_be_visible()
    expect(page.locator("#queue > li")).to_have_count(0)


def test_a_subscribers_token_opens_nothing_of_the_console(
    home: tuple[SecuredHome, str], desktop: BrowserContext
) -> None:
    a, url = home
    a.send("bath", {"water_leak": True})
    wait_until(lambda: len(a.cases("active")) == 1, 15)
    case_id = a.cases("active")[0]["id"]
    subscriber = a.owner["Authorization"].removeprefix("Bearer ")
    page = desktop.new_page()
    page.goto(f"{url}/dispatch/login")
    page.evaluate("t => localStorage.setItem('moydom-dispatch-token', t)", subscriber)
    for path in ("/dispatch/", f"/dispatch/case?id={case_id}"):
        page.goto(f"{url}{path}")
        expect(page).to_have_url(re.compile(r"/dispatch/login\?next="))
        expect(page.get_by_text(ADDRESS)).to_have_count(0)
        expect(page.locator("#queue > li")).to_have_count(0)
    assert page.evaluate("() => localStorage.getItem('moydom-dispatch-token')") is None
    checked(page, "dispatch-subscriber-refused")
