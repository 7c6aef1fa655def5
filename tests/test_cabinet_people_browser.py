"""The cabinet's family and guests, the guest's own page and the notification settings, in
Debian's Chromium against a real gateway (broker, database, ingest, a simulated gate
controller over MQTT): the owner invites a member who then sees only what they may, removes
them and their open page goes to login; a guest pass made in the page opens its gate from a
fresh profile until it is used up; settings are saved and read back; a second contract sees
nothing of the first. Each journey checks 360 px and axe-core and ends with a screenshot."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect
from playwright.sync_api import Error as PlaywrightError

from tests.browser import PHONE, accessible, browser, fits_phone, screenshot
from tests.conftest import Gateway
from tests.test_commands import controller
from tests.test_hardening_http import serving

pytestmark = pytest.mark.slow
PASSWORD = "correct horse 1"
API = "/api/v1"


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """SQLite only: the pages use the same API on both backends, which the API tests cover."""
    return f"sqlite:///{tmp_path / 'moydom.db'}"


@pytest.fixture
def phone(tmp_path: Path) -> Iterator[BrowserContext]:
    """The owner's phone. The cabinet's service worker is kept out: these journeys test the
    pages and the API, and a worker's copy must not stand in for the gateway's answer."""
    with browser(tmp_path / "profile", PHONE, service_workers="block") as context:
        yield context


@pytest.fixture
def other_phone(phone: BrowserContext) -> Iterator[BrowserContext]:
    """A second, fresh profile in the same Chromium (one Playwright per thread): its own
    localStorage, so its own login or none."""
    assert phone.browser is not None
    context = phone.browser.new_context(
        viewport=PHONE, locale="ru-RU", timezone_id="Asia/Novosibirsk", service_workers="block"
    )
    context.set_default_timeout(15_000)
    yield context
    context.close()


def site(gw: Gateway) -> str:
    host, port = gw.stack.enter_context(serving(gw.ctx))
    return f"http://{host}:{port}"


def log_in(page: Page, url: str, login: str, password: str = PASSWORD, path: str = "/app/") -> None:
    page.goto(f"{url}{path}")
    expect(page).to_have_url(re.compile(r"/app/login\?next="))
    page.get_by_label("Номер договора, телефон или e-mail").fill(login)
    page.get_by_label("Пароль").fill(password)
    page.get_by_role("button", name="Войти").click()
    expect(page).to_have_url(f"{url}{path}")


def checked(page: Page, name: str | None = None) -> None:
    """The phone layout and accessibility of the page as it is; a screenshot if named."""
    fits_phone(page)
    accessible(page)
    if name:
        screenshot(page, name)


def recorder(page: Page) -> list[tuple[str, str]]:
    """Every API response and WebSocket frame the page gets, as (url, text)."""
    bodies: list[tuple[str, str]] = []

    def record(response: Any) -> None:
        if "/api/" in response.url:
            try:
                bodies.append((response.url, response.text()))
            except PlaywrightError:  # a redirect or an aborted body has no text
                bodies.append((response.url, ""))

    page.on("response", record)
    page.on(
        "websocket", lambda ws: ws.on("framereceived", lambda f: bodies.append((ws.url, str(f))))
    )
    return bodies


def invite_in_page(page: Page, login: str, name: str, allowed: tuple[str, ...]) -> None:
    invite = page.locator("#invite")
    invite.get_by_label("Логин: телефон или e-mail").fill(login)
    invite.get_by_label("Имя").fill(name)
    invite.get_by_label("Пароль").fill("member password 1")
    for label in allowed:
        invite.get_by_label(label).check()
    invite.get_by_role("button", name="Пригласить").click()


@pytest.fixture
def family_home(gateway: Gateway) -> dict[str, Any]:
    gateway.create_contract("5601", address="Новосибирск, ул. Сибирская, 5")
    gateway.start_ingest()
    camera = gateway.create_device(
        "5601", "camera", "Камера в прихожей", rtsp_url="rtsp://127.0.0.1:9/x"
    )
    gateway.create_device("5601", "gate", "Ворота во двор")
    return {"gw": gateway, "home": camera["home"], "url": site(gateway)}


def test_owner_invites_changes_and_removes_a_member_whose_open_page_goes_to_login(
    family_home: dict[str, Any], phone: BrowserContext, other_phone: BrowserContext
) -> None:
    gw, home, url = family_home["gw"], family_home["home"], family_home["url"]
    owner = phone.new_page()
    log_in(owner, url, "5601", path="/app/family")
    invite_in_page(owner, "+79130005601", "Маша", ("Ворота и двери", "Домофон"))
    member_row = owner.locator("#members li", has_text="+79130005601")
    expect(member_row).to_contain_text("Маша")
    expect(member_row.get_by_label("Камеры")).not_to_be_checked()
    expect(member_row.get_by_label("Ворота и двери")).to_be_checked()
    checked(owner, "cabinet-family")
    listed = gw.http.get(f"{API}/members", headers=gw.login("5601")).json()
    assert [(m["login"], m["permissions"]) for m in listed] == [
        ("+79130005601", {home: ["gates", "intercom"]})
    ]
    # Change: everything allowed now.
    member_row.get_by_label("Камеры").check()
    member_row.get_by_label("Охрана").check()
    member_row.get_by_role("button", name="Сохранить права: Маша (+79130005601)").click()
    expect(owner.get_by_role("status")).to_have_text("Права сохранены: Маша (+79130005601)")
    listed = gw.http.get(f"{API}/members", headers=gw.login("5601")).json()
    assert listed[0]["permissions"] == {home: ["arm", "cameras", "gates", "intercom"]}

    # The member, in a profile of their own: the home's camera and gate; the family page is
    # not theirs.
    member = other_phone.new_page()
    log_in(member, url, "+79130005601", "member password 1", path="/app/family")
    expect(member.locator("#owner-only")).to_contain_text("только владелец договора")
    expect(member.locator("#invite")).to_have_count(0)
    checked(member, "cabinet-family-member")
    member.goto(f"{url}/app/")
    expect(member.get_by_text("Камера в прихожей")).to_be_visible()
    expect(member.get_by_role("button", name="Открыть: Ворота во двор")).to_be_visible()

    # Removing asks first; «Отмена» keeps the member.
    member_row.get_by_role("button", name="Удалить: Маша (+79130005601)").click()
    dialog = owner.get_by_role("dialog")
    expect(dialog).to_contain_text("Удалить Маша (+79130005601)?")
    checked(owner)
    dialog.get_by_role("button", name="Отмена").click()
    expect(member_row).to_be_visible()
    member_row.get_by_role("button", name="Удалить: Маша (+79130005601)").click()
    dialog.get_by_role("button", name="Удалить").click()
    expect(owner.locator("#members li")).to_have_count(0)
    expect(owner.locator("#members-empty")).to_be_visible()
    assert gw.http.get(f"{API}/members", headers=gw.login("5601")).json() == []
    # The member's open page hears its stream closed (4401) and goes to login.
    expect(member).to_have_url(re.compile(r"/app/login"), timeout=5_000)
    checked(owner, "cabinet-family-removed")


def test_a_member_sees_only_what_the_owner_allowed(
    family_home: dict[str, Any], phone: BrowserContext, other_phone: BrowserContext
) -> None:
    url = family_home["url"]
    owner = phone.new_page()
    log_in(owner, url, "5601", path="/app/family")
    invite_in_page(owner, "gates@example.org", "Курьер семьи", ("Ворота и двери",))
    expect(owner.locator("#members li", has_text="gates@example.org")).to_be_visible()
    member = other_phone.new_page()
    log_in(member, url, "gates@example.org", "member password 1")
    expect(member.get_by_role("button", name="Открыть: Ворота во двор")).to_be_visible()
    expect(member.get_by_text("Камера в прихожей")).to_have_count(0)
    member.goto(f"{url}/app/history")
    expect(member.locator("#history li, #history-empty").first).to_be_visible()
    expect(member).to_have_url(f"{url}/app/history")
    # The audit trail is the owner's: not offered, and nothing of it shown.
    expect(member.locator("#filters option[value='audit']")).to_have_count(0)
    expect(member.locator("#history li[data-kind='audit']")).to_have_count(0)
    expect(member.locator("#status")).to_be_empty()
    checked(member, "cabinet-member-limited")


def test_a_guest_pass_made_in_the_page_opens_its_gate_until_used_up(
    gateway_factory: Any, phone: BrowserContext, other_phone: BrowserContext
) -> None:
    gw: Gateway = gateway_factory(command_deadline_s=3, command_wait_s=3)
    gw.create_contract("5602")
    gw.start_ingest()
    yard = gw.create_device("5602", "gate", "Ворота во двор")
    garage = gw.create_device("5602", "gate", "Гараж")
    camera = gw.create_device("5602", "camera", "Камера двора", rtsp_url="rtsp://127.0.0.1:9/x")
    sim = controller(gw, yard)
    url = site(gw)
    owner = phone.new_page()
    log_in(owner, url, "5602", path="/app/family")
    form = owner.locator("#new-pass")
    form.get_by_label("Для кого").fill("курьер")
    form.get_by_label("Сколько раз").fill("2")
    form.get_by_label("Ворота во двор").check()
    form.get_by_role("button", name="Создать пропуск").click()
    link = owner.get_by_label("Ссылка для гостя")
    expect(link).to_have_value(
        re.compile(rf"^{re.escape(url)}/app/guest#t=[A-Za-z0-9_-]{{20,64}}$")
    )
    expect(owner.get_by_role("button", name="Копировать ссылку")).to_be_visible()
    row = owner.locator("#passes li", has_text="курьер")
    expect(row).to_contain_text("Осталось 2 из 2")
    checked(owner, "cabinet-pass-created")
    guest_link = link.input_value()

    guest = other_phone.new_page()
    bodies = recorder(guest)
    requested: list[str] = []
    guest.on("request", lambda r: requested.append(r.url))
    guest.goto(guest_link)
    expect(guest.locator("#uses-left")).to_have_text("Осталось открытий: 2")
    gates = guest.locator("#gates button")
    expect(gates).to_have_count(1)
    expect(gates).to_have_text("Открыть: Ворота во двор")
    checked(guest, "cabinet-guest")
    gates.click()
    expect(guest.get_by_role("status")).to_have_text("Ворота во двор: Открыто")
    expect(guest.locator("#uses-left")).to_have_text("Осталось открытий: 1")
    guest.get_by_role("button", name="Открыть: Ворота во двор").click()
    expect(guest.get_by_role("heading", name="Пропуск недействителен")).to_be_visible()
    expect(guest.get_by_role("status")).to_have_text("Ворота во двор: Открыто")
    assert len(sim.actions) == 2
    guest.reload()
    expect(guest.get_by_role("heading", name="Пропуск недействителен")).to_be_visible()
    checked(guest, "cabinet-guest-used-up")
    # The guest got nothing of the other gate or the camera, and the page's own address (the
    # fragment is never sent) carried no token.
    content = guest.content()
    for marker in (garage["id"], "Гараж", camera["id"], "Камера двора"):
        assert marker not in content
        assert [u for u, b in bodies if marker in b] == []
    token = guest_link.split("#t=")[1]
    assert [u for u in requested if "/app/" in u and token in u] == []
    assert any("/api/v1/guest/" in u for u in requested)

    owner.reload()
    expect(owner.locator("#passes li", has_text="курьер")).to_contain_text("Использован")
    expect(owner.locator("#passes li", has_text="курьер")).to_contain_text("Осталось 0 из 2")
    screenshot(owner, "cabinet-pass-used")


def test_a_revoked_pass_is_invalid_at_once(
    gateway: Gateway, phone: BrowserContext, other_phone: BrowserContext
) -> None:
    gateway.create_contract("5603")
    gateway.create_device("5603", "gate", "Шлагбаум")
    url = site(gateway)
    owner = phone.new_page()
    log_in(owner, url, "5603", path="/app/family")
    form = owner.locator("#new-pass")
    form.get_by_label("Для кого").fill("гости")
    form.get_by_label("Шлагбаум").check()
    form.get_by_role("button", name="Создать пропуск").click()
    guest_link = owner.get_by_label("Ссылка для гостя").input_value()
    guest = other_phone.new_page()
    guest.goto(guest_link)
    expect(guest.get_by_role("button", name="Открыть: Шлагбаум")).to_be_visible()
    owner.get_by_role("button", name="Отозвать пропуск: гости").click()
    owner.get_by_role("dialog").get_by_role("button", name="Отозвать").click()
    expect(owner.locator("#passes li", has_text="гости")).to_contain_text("Отозван")
    guest.get_by_role("button", name="Открыть: Шлагбаум").click()
    expect(guest.get_by_role("heading", name="Пропуск недействителен")).to_be_visible()
    guest.goto(f"{url}/app/guest#t=not-a-token")
    expect(guest.get_by_role("heading", name="Пропуск недействителен")).to_be_visible()
    checked(guest)


def test_notification_settings_are_saved_and_read_back(
    gateway: Gateway, phone: BrowserContext
) -> None:
    gateway.create_contract("5604")
    url = site(gateway)
    push = gateway.http.get("/app/push.js").status_code == 200  # Web Push served here
    page = phone.new_page()
    log_in(page, url, "5604", path="/app/settings")
    expect(page.get_by_label("Тревога: SMS")).to_be_checked()  # the defaults
    expect(page.get_by_label("Ворота и двери: E-mail")).not_to_be_checked()
    switch = page.get_by_label("Push-уведомления на этом устройстве")
    if push:
        expect(switch).to_be_visible()
        expect(switch).not_to_be_checked()
    else:
        expect(switch).to_be_hidden()
    checked(page)
    page.get_by_label("Тревога: SMS").uncheck()
    page.get_by_label("Ворота и двери: E-mail").check()
    for name in ("В приложении", "E-mail", "SMS", *(["Push"] if push else [])):
        page.get_by_label(f"Звонки домофона: {name}").uncheck()
    page.get_by_label("E-mail", exact=True).fill("owner@example.org")
    page.get_by_label("Телефон для SMS").fill("+79130005604")
    page.get_by_role("button", name="Сохранить").click()
    expect(page.get_by_role("status")).to_have_text("Настройки уведомлений сохранены")
    page.reload()
    expect(page.get_by_label("Тревога: SMS")).not_to_be_checked()
    expect(page.get_by_label("Тревога: E-mail")).to_be_checked()
    expect(page.get_by_label("Ворота и двери: E-mail")).to_be_checked()
    expect(page.locator(".none[data-category='intercom']")).to_have_text("не сообщать")
    expect(page.get_by_label("E-mail", exact=True)).to_have_value("owner@example.org")
    expect(page.get_by_role("link", name="Сменить пароль")).to_have_attribute(
        "href", "/app/password"
    )
    checked(page, "cabinet-settings")
    saved = gateway.http.get(f"{API}/me/notifications", headers=gateway.login("5604")).json()
    assert "sms" not in saved["channels"]["alarm"]
    assert {"app", "email"} <= set(saved["channels"]["alarm"])
    assert "email" in saved["channels"]["gate"]
    assert saved["channels"]["intercom"] == []
    assert (saved["email"], saved["phone"]) == ("owner@example.org", "+79130005604")


def test_a_second_contract_sees_nothing_of_the_first_in_these_pages(
    gateway: Gateway, phone: BrowserContext
) -> None:
    gw = gateway
    gw.create_contract("5605", address="Новосибирск, ул. Чистая, 1")
    gw.start_ingest()
    first_gate = gw.create_device("5605", "gate", "first-gate")
    a = gw.login("5605")
    r = gw.http.post(
        f"{API}/members",
        json={"login": "first@example.org", "password": PASSWORD, "name": "first-member"},
        headers=a,
    )
    assert r.status_code == 201, r.text
    r = gw.http.put(
        f"{API}/me/notifications",
        json={"email": "first-mail@example.org", "channels": {"alarm": ["sms"]}},
        headers=a,
    )
    assert r.status_code == 200, r.text
    gw.create_contract("5606", address="Бердск, ул. Своя, 2")
    own_gate = gw.create_device("5606", "gate", "own-gate")
    url = site(gw)
    page = phone.new_page()
    bodies = recorder(page)
    log_in(page, url, "5606", path="/app/family")
    expect(page.locator("#pass-gates")).to_contain_text("own-gate")
    # The first contract's pass, made while B watches, and B's own.
    r = gw.http.post(
        f"{API}/passes",
        json={
            "name": "first-pass",
            "devices": [first_gate["id"]],
            "valid_from": datetime.now(UTC).isoformat(),
            "valid_to": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
            "max_uses": 1,
        },
        headers=a,
    )
    assert r.status_code == 201, r.text
    page.reload()
    expect(page.locator("#passes-empty")).to_be_visible()
    for path, ready in (("/app/settings", "#notifications"), ("/app/history", "#filters")):
        page.goto(f"{url}{path}")
        expect(page.locator(ready)).to_be_visible()
        expect(page.get_by_role("banner")).to_contain_text("Бердск")
    page.locator("#filters").get_by_label("Что показать").select_option("commands")
    expect(page.locator("#history-empty")).to_be_visible()
    checked(page, "cabinet-second-contract-people")
    assert any(own_gate["id"] in b for _, b in bodies)
    for marker in (
        first_gate["id"],
        "first-gate",
        "first-member",
        "first@example.org",
        "first-mail@example.org",
        "first-pass",
        "Чистая",
    ):
        assert marker not in page.content()
        assert [u for u, b in bodies if marker in b] == [], marker
