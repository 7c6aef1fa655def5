"""Contact details from billing, password change, reset by a code through a
real SMTP server (aiosmtpd) and the SMS provider stand-in, and the support
desk's reset — on both databases, through the API and the outbox."""

from __future__ import annotations

import queue
import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from gateway.db.models import Contract, LoginFailure, utcnow
from gateway.db.people_models import AuditEntry, ResetCode
from gateway.errors import InvalidCredentials
from gateway.people.access import CODE_TRIES, CODE_TTL, confirm_reset
from tests.conftest import Gateway
from tests.security_support import MailSink, mail
from tests.test_notify_transports import Provider, provider

__all__ = ["mail", "provider"]  # fixtures

API = "/api/v1"
PHONE, EMAIL = "+79130000001", "owner@example.org"
NEW = "a new password 2"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _reset_gateway(
    gateway_factory: Any, mail: tuple[MailSink, int], provider: Provider, **overrides: Any
) -> Gateway:
    gw: Gateway = gateway_factory(
        smtp_host="127.0.0.1",
        smtp_port=mail[1],
        sms_url=provider.url,
        sms_api_key="provider-key-1",
        alarms_poll_s=0.2,
        reset_max_requests_per_login=3,
        **overrides,
    )
    gw.start_alarms()
    return gw


def _code_of(text: str) -> str:
    found = re.search(r"\b([0-9]{6})\b", text)
    assert found, text
    return found.group(1)


def _audit(gw: Gateway) -> list[tuple[str, str, str]]:
    with gw.ctx.db.session() as session:
        rows = session.scalars(select(AuditEntry).order_by(AuditEntry.id))
        return [(r.actor_kind, r.actor, r.action) for r in rows]


def test_billing_sets_and_changes_contact_details(gateway: Gateway) -> None:
    r = gateway.http.post(
        f"{API}/admin/contracts",
        json={"number": "7001", "password": "correct horse 1", "address": "A", "phone": PHONE},
        headers=gateway.admin,
    )
    assert r.status_code == 201 and r.json()["phone"] == PHONE and r.json()["email"] is None
    r = gateway.http.put(
        f"{API}/admin/contracts/7001/contacts",
        json={"phone": None, "email": EMAIL},
        headers=gateway.admin,
    )
    assert r.status_code == 200
    got = gateway.http.get(f"{API}/admin/contracts/7001", headers=gateway.admin).json()
    assert (got["phone"], got["email"]) == (None, EMAIL)
    for bad in ({"phone": "89130000001", "email": None}, {"phone": None, "email": "no-at"}, {}):
        r = gateway.http.put(
            f"{API}/admin/contracts/7001/contacts", json=bad, headers=gateway.admin
        )
        assert r.status_code == 422, bad
    r = gateway.http.put(
        f"{API}/admin/contracts/7999/contacts",
        json={"phone": PHONE, "email": None},
        headers=gateway.admin,
    )
    assert r.status_code == 404
    token = gateway.login("7001")
    r = gateway.http.put(
        f"{API}/admin/contracts/7001/contacts", json={"phone": PHONE, "email": None}, headers=token
    )
    assert r.status_code == 401  # a subscriber is not billing
    assert _audit(gateway) == [("admin", "admin", "contacts_changed")] * 2


def test_password_change_ends_every_other_session(gateway: Gateway) -> None:
    gateway.create_contract("7002")
    phone, laptop = gateway.login("7002"), gateway.login("7002")
    r = gateway.http.post(
        f"{API}/me/password",
        json={"old_password": "wrong one", "new_password": NEW},
        headers=laptop,
    )
    assert r.status_code == 403
    r = gateway.http.post(
        f"{API}/me/password",
        json={"old_password": "correct horse 1", "new_password": NEW},
        headers=laptop,
    )
    assert r.status_code == 200
    fresh = _bearer(r.json()["access_token"])
    assert gateway.http.get(f"{API}/me", headers=phone).status_code == 401
    assert gateway.http.get(f"{API}/me", headers=laptop).status_code == 401
    assert gateway.http.get(f"{API}/me", headers=fresh).status_code == 200
    old = gateway.http.post(
        f"{API}/auth/login", json={"contract": "7002", "password": "correct horse 1"}
    )
    assert old.status_code == 401
    gateway.login("7002", NEW)
    with gateway.ctx.db.session() as session:
        stored = session.scalars(select(Contract).where(Contract.number == "7002")).one()
        assert stored.password_hash.startswith("$argon2id$")
        reasons = list(session.scalars(select(LoginFailure.reason).order_by(LoginFailure.id)))
    assert reasons == ["bad_password", "bad_password"]  # the wrong old one counts like a login
    assert ("owner", "7002", "password_changed") in _audit(gateway)


def test_wrong_current_passwords_are_throttled(gateway_factory: Any) -> None:
    gw: Gateway = gateway_factory(login_max_failures_per_pair=2, login_window_s=600)
    gw.create_contract("7003")
    token = gw.login("7003")
    body = {"old_password": "guess guess", "new_password": NEW}
    for _ in range(2):
        assert gw.http.post(f"{API}/me/password", json=body, headers=token).status_code == 403
    r = gw.http.post(
        f"{API}/me/password", json={**body, "old_password": "correct horse 1"}, headers=token
    )
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1


def test_reset_by_email_through_a_real_smtp_server(
    gateway_factory: Any, mail: tuple[MailSink, int], provider: Provider
) -> None:
    gw = _reset_gateway(gateway_factory, mail, provider)
    gw.create_contract("7004")
    gw.http.put(
        f"{API}/admin/contracts/7004/contacts",
        json={"phone": None, "email": EMAIL},
        headers=gw.admin,
    )
    before = gw.login("7004")
    r = gw.http.post(f"{API}/auth/password-reset", json={"login": "7004"})
    assert r.status_code == 202
    message = mail[0].expect()
    assert message["To"] == EMAIL
    body = message.get_payload(decode=True)
    assert isinstance(body, bytes)
    code = _code_of(body.decode())
    with gw.ctx.db.session() as session:
        stored = session.scalars(select(ResetCode)).one()
        assert stored.code_hash.startswith("$argon2id$") and code not in stored.code_hash
    wrong = "000000" if code != "000000" else "111111"
    confirm = {"login": "7004", "code": wrong, "new_password": NEW}
    r = gw.http.post(f"{API}/auth/password-reset/confirm", json=confirm)
    assert r.status_code == 401
    r = gw.http.post(f"{API}/auth/password-reset/confirm", json={**confirm, "code": code})
    assert r.status_code == 200
    assert gw.http.get(f"{API}/me", headers=_bearer(r.json()["access_token"])).status_code == 200
    assert gw.http.get(f"{API}/me", headers=before).status_code == 401  # every session ended
    gw.login("7004", NEW)
    again = gw.http.post(f"{API}/auth/password-reset/confirm", json={**confirm, "code": code})
    assert again.status_code == 401  # a code works once
    actions = [a for _, _, a in _audit(gw)]
    assert actions[-2:] == ["password_reset_requested", "password_reset"]
    assert provider.requests.empty()


def test_reset_by_sms_through_the_provider(
    gateway_factory: Any, mail: tuple[MailSink, int], provider: Provider
) -> None:
    gw = _reset_gateway(gateway_factory, mail, provider)
    gw.create_contract("7005")
    gw.http.put(
        f"{API}/admin/contracts/7005/contacts",
        json={"phone": PHONE, "email": EMAIL},
        headers=gw.admin,
    )
    assert gw.http.post(f"{API}/auth/password-reset", json={"login": "7005"}).status_code == 202
    _path, headers, body = provider.requests.get(timeout=10)
    assert body["to"] == PHONE and headers["Idempotency-Key"].startswith("reset-")
    assert headers["Authorization"] == "Bearer provider-key-1"
    code = _code_of(body["text"])
    r = gw.http.post(
        f"{API}/auth/password-reset/confirm",
        json={"login": "7005", "code": code, "new_password": NEW},
    )
    assert r.status_code == 200
    # Asked for e-mail explicitly, the owner gets the code there.
    r = gw.http.post(f"{API}/auth/password-reset", json={"login": "7005", "channel": "email"})
    assert r.status_code == 202
    assert mail[0].expect()["To"] == EMAIL


def test_the_answer_never_tells_whether_a_contract_exists(
    gateway_factory: Any, mail: tuple[MailSink, int], provider: Provider
) -> None:
    gw = _reset_gateway(gateway_factory, mail, provider)
    gw.create_contract("7006")  # exists, but billing gave no phone or e-mail
    gw.create_contract("7007")
    gw.http.put(
        f"{API}/admin/contracts/7007/contacts",
        json={"phone": None, "email": EMAIL},
        headers=gw.admin,
    )
    answers = [
        gw.http.post(f"{API}/auth/password-reset", json={"login": login})
        for login in ("7006", "7007", "7999", "+79139999999", "who@example.org")
    ]
    assert {(r.status_code, r.text) for r in answers} == {(202, answers[0].text)}
    assert mail[0].expect()["To"] == EMAIL  # only 7007's
    with pytest.raises(queue.Empty):
        mail[0].expect(timeout=1.5)
    assert provider.requests.empty()
    # Confirming for an unknown login looks like a wrong code.
    bodies = [
        gw.http.post(
            f"{API}/auth/password-reset/confirm",
            json={"login": login, "code": "123456", "new_password": NEW},
        )
        for login in ("7006", "7999")
    ]
    assert [r.status_code for r in bodies] == [401, 401] and bodies[0].text == bodies[1].text


def test_wrong_codes_are_throttled_like_logins(
    gateway_factory: Any, mail: tuple[MailSink, int], provider: Provider
) -> None:
    gw = _reset_gateway(gateway_factory, mail, provider, login_max_failures_per_pair=2)
    confirm = {"login": "7011", "code": "123456", "new_password": NEW}
    for _ in range(2):
        assert gw.http.post(f"{API}/auth/password-reset/confirm", json=confirm).status_code == 401
    r = gw.http.post(f"{API}/auth/password-reset/confirm", json=confirm)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1


def test_reset_requests_are_capped_per_login_and_per_address(
    gateway_factory: Any, mail: tuple[MailSink, int], provider: Provider
) -> None:
    gw = _reset_gateway(gateway_factory, mail, provider)
    for login in ("7008", "7998"):  # known and unknown alike
        for _ in range(3):
            assert (
                gw.http.post(f"{API}/auth/password-reset", json={"login": login}).status_code == 202
            )
        r = gw.http.post(f"{API}/auth/password-reset", json={"login": login})
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    # Ten from one address in the window, whatever the logins.
    for n in range(4):
        gw.http.post(f"{API}/auth/password-reset", json={"login": f"76{n}"})
    r = gw.http.post(f"{API}/auth/password-reset", json={"login": "7700"})
    assert r.status_code == 429


def test_a_code_lives_ten_minutes_and_five_tries(
    gateway_factory: Any, mail: tuple[MailSink, int], provider: Provider
) -> None:
    # Room for more wrong codes than a code takes (login throttling is tested apart).
    gw = _reset_gateway(gateway_factory, mail, provider, login_max_failures_per_pair=20)
    gw.create_contract("7009")
    gw.http.put(
        f"{API}/admin/contracts/7009/contacts",
        json={"phone": PHONE, "email": None},
        headers=gw.admin,
    )

    def code() -> str:
        assert gw.http.post(f"{API}/auth/password-reset", json={"login": "7009"}).status_code == 202
        return _code_of(provider.requests.get(timeout=10)[2]["text"])

    first = code()
    wrong = "000000" if first != "000000" else "111111"
    for _ in range(CODE_TRIES):
        r = gw.http.post(
            f"{API}/auth/password-reset/confirm",
            json={"login": "7009", "code": wrong, "new_password": NEW},
        )
        assert r.status_code == 401
    r = gw.http.post(
        f"{API}/auth/password-reset/confirm",
        json={"login": "7009", "code": first, "new_password": NEW},
    )
    assert r.status_code == 401  # the fifth wrong try ended it
    with gw.ctx.db.session() as session:
        used = session.scalars(select(ResetCode)).one()
        assert used.attempts == CODE_TRIES and used.used_at is not None

    second = code()
    late = utcnow() + CODE_TTL + timedelta(seconds=1)
    with pytest.raises(InvalidCredentials):
        confirm_reset(
            gw.ctx.db,
            gw.ctx.throttle,
            login="7009",
            code=second,
            new_password=NEW,
            address="192.0.2.1",
            now=late,
        )
    in_time = utcnow() + CODE_TTL - timedelta(seconds=5)
    principal = confirm_reset(
        gw.ctx.db,
        gw.ctx.throttle,
        login="7009",
        code=second,
        new_password=NEW,
        address="192.0.2.1",
        now=in_time,
    )
    assert principal.contract_number == "7009"
    gw.login("7009", NEW)


def test_support_desk_resets_the_owners_password(gateway: Gateway) -> None:
    gateway.create_contract("7010")
    token = gateway.login("7010")
    url = f"{API}/admin/contracts/7010/password"
    assert gateway.http.post(url, json={"password": NEW}, headers=token).status_code == 401
    assert (
        gateway.http.post(url, json={"password": "short"}, headers=gateway.admin).status_code == 422
    )
    r = gateway.http.post(url, json={"password": NEW}, headers=gateway.admin)
    assert r.status_code == 204
    assert gateway.http.get(f"{API}/me", headers=token).status_code == 401
    gateway.login("7010", NEW)
    r = gateway.http.post(
        f"{API}/admin/contracts/7999/password", json={"password": NEW}, headers=gateway.admin
    )
    assert r.status_code == 404
    assert _audit(gateway) == [("admin", "admin", "password_reset_by_support")]


def test_a_members_code_goes_to_their_own_login(
    gateway_factory: Any, mail: tuple[MailSink, int], provider: Provider
) -> None:
    gw = _reset_gateway(gateway_factory, mail, provider)
    gw.create_contract("7012")
    gw.http.put(
        f"{API}/admin/contracts/7012/contacts",
        json={"phone": PHONE, "email": EMAIL},
        headers=gw.admin,
    )
    owner = gw.login("7012")
    r = gw.http.post(
        f"{API}/members",
        json={"login": "son@example.org", "password": "son password 1"},
        headers=owner,
    )
    assert r.status_code == 201
    son = gw.login("son@example.org", "son password 1")
    assert (
        gw.http.post(f"{API}/auth/password-reset", json={"login": "son@example.org"}).status_code
        == 202
    )
    message = mail[0].expect()
    assert message["To"] == "son@example.org"  # not the owner's e-mail or phone
    body = message.get_payload(decode=True)
    assert isinstance(body, bytes)
    confirm = {"login": "son@example.org", "code": _code_of(body.decode()), "new_password": NEW}
    r = gw.http.post(f"{API}/auth/password-reset/confirm", json=confirm)
    assert r.status_code == 200
    assert gw.http.get(f"{API}/me", headers=son).status_code == 401
    assert gw.http.get(f"{API}/me", headers=owner).status_code == 200  # the owner's untouched
    gw.login("son@example.org", NEW)
    assert provider.requests.empty()
