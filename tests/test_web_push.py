"""Web Push to a closed app (issue 16): the subscription API, and what the
gateway sends, seen by a push service the test runs on loopback. That service
decrypts each message with http-ece (aes128gcm) using the private key the
test generated for the "browser", verifies the VAPID token (RFC 8292: ES256
over the gateway's public key; aud, exp, sub) and reads TTL, Topic, Urgency."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import http_ece  # type: ignore[import-untyped]
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from gateway.api.routes.push import check_endpoint
from gateway.errors import Invalid
from gateway.outbox.transports import Push
from gateway.settings import Settings
from tests.conftest import Gateway
from tests.security_support import secure
from tests.test_calls import entrance, ring
from tests.test_ingest import wait_until

API = "/api/v1"
SUBJECT = "mailto:push-test@example.org"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Browser:
    """A subscriber's browser: its own key pair and auth secret, as RFC 8291 has it."""

    endpoint: str
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    auth: bytes = field(default_factory=lambda: os.urandom(16))

    def subscription(self) -> dict[str, Any]:
        point = self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        keys = {"p256dh": b64(point), "auth": b64(self.auth)}
        return {"endpoint": self.endpoint, "expirationTime": None, "keys": keys}


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class PushService:
    """A push service on loopback: records what it is sent, per endpoint path,
    and answers each path with the status the test sets (201 by default)."""

    def __init__(self) -> None:
        self.received: queue.Queue[Received] = queue.Queue()
        self.status: dict[str, int] = {}
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                service.received.put(Received(self.path, headers, body))
                self.send_response(service.status.get(self.path, 201))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def browser(self, name: str) -> Browser:
        return Browser(f"{self.origin}/push/{name}")

    def next(self, timeout: float = 20.0) -> Received:
        return self.received.get(timeout=timeout)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def push_service() -> Iterator[PushService]:
    service = PushService()
    yield service
    service.close()


@pytest.fixture
def pushing(gateway_factory: Any) -> Gateway:
    gw: Gateway = gateway_factory(
        push_allow_http_loopback=True, push_subject=SUBJECT, alarms_poll_s=0.2
    )
    return gw


def subscribe(gw: Gateway, login: dict[str, str], browser: Browser) -> int:
    r = gw.http.post(f"{API}/push/subscriptions", json=browser.subscription(), headers=login)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def opened(
    gw: Gateway, login: dict[str, str], service: PushService, browser: Browser, got: Received
) -> dict[str, Any]:
    """Check the VAPID token and encryption of ``got``; the message it carries."""
    assert got.path == browser.endpoint.removeprefix(service.origin)
    scheme, _, params = got.headers["authorization"].partition(" ")
    assert scheme == "vapid"
    fields = dict(part.split("=", 1) for part in params.split(","))
    key = gw.http.get(f"{API}/push/key", headers=login).json()
    assert fields["k"] == key["application_server_key"]
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64(fields["k"]))
    head, claims, signature = fields["t"].split(".")
    raw = unb64(signature)
    der = encode_dss_signature(int.from_bytes(raw[:32]), int.from_bytes(raw[32:]))
    public.verify(der, f"{head}.{claims}".encode(), ec.ECDSA(hashes.SHA256()))
    assert json.loads(unb64(head)) == {"typ": "JWT", "alg": "ES256"}
    token = json.loads(unb64(claims))
    assert token["aud"] == service.origin and token["sub"] == SUBJECT
    assert time.time() < token["exp"] <= time.time() + 24 * 3600
    assert got.headers["content-encoding"] == "aes128gcm"
    plain = http_ece.decrypt(
        got.body, private_key=browser.key, auth_secret=browser.auth, version="aes128gcm"
    )
    message: dict[str, Any] = json.loads(plain)
    assert message["topic"] == got.headers["topic"]
    return message


def test_endpoint_rule() -> None:
    strict = Settings()
    tests = strict.model_copy(update={"push_allow_http_loopback": True})
    check_endpoint("https://fcm.googleapis.com/fcm/send/abc", strict)
    check_endpoint("http://127.0.0.1:8099/push/a", tests)
    for bad, settings in [
        ("http://127.0.0.1:8099/push/a", strict),
        ("http://push.example.org/a", tests),
        ("https://user:pw@push.example.org/a", strict),
        ("ftp://push.example.org/a", strict),
        ("https:///nohost", strict),
    ]:
        with pytest.raises(Invalid):
            check_endpoint(bad, settings)


def test_subscriptions_belong_to_their_login(pushing: Gateway, push_service: PushService) -> None:
    gw = pushing
    gw.create_contract("7101")
    gw.create_contract("7102")
    a, b = gw.login("7101"), gw.login("7102")
    assert gw.http.get(f"{API}/push/key").status_code == 401
    key = gw.http.get(f"{API}/push/key", headers=a).json()["application_server_key"]
    assert len(unb64(key)) == 65 and unb64(key)[0] == 4
    browser = push_service.browser("a")
    good = browser.subscription()
    for broken in (
        {**good, "endpoint": "http://push.example.org/x"},
        {**good, "keys": {**good["keys"], "p256dh": b64(b"\x04" + b"1" * 30)}},
        {**good, "keys": {**good["keys"], "auth": b64(b"short")}},
        {**good, "keys": {"p256dh": good["keys"]["p256dh"]}},
        {**good, "endpoint": "not a url"},
    ):
        r = gw.http.post(f"{API}/push/subscriptions", json=broken, headers=a)
        assert r.status_code == 422 and "detail" in r.json(), r.text
    subscribe(gw, a, browser)
    again = subscribe(gw, a, browser)  # the same browser again: one row
    listed = gw.http.get(f"{API}/push/subscriptions", headers=a).json()
    assert [s["id"] for s in listed] == [again]
    # The other contract sees none of it and cannot delete it.
    assert gw.http.get(f"{API}/push/subscriptions", headers=b).json() == []
    r = gw.http.delete(f"{API}/push/subscriptions/{again}", headers=b)
    assert r.status_code == 404 and "detail" in r.json()
    assert gw.http.delete(f"{API}/push/subscriptions/{again}", headers=a).status_code == 204
    assert gw.http.delete(f"{API}/push/subscriptions/{again}", headers=a).status_code == 404
    assert gw.http.get(f"{API}/push/subscriptions", headers=a).json() == []
    prefs = gw.http.get(f"{API}/me/notifications", headers=a).json()["channels"]
    assert "push" in prefs["alarm"] and "push" in prefs["intercom"]


def test_a_leak_is_pushed_to_its_home_only(pushing: Gateway, push_service: PushService) -> None:
    gw = pushing
    home = secure(gw, "7201")
    gw.create_contract("7202")
    mine, theirs = push_service.browser("mine"), push_service.browser("theirs")
    subscribe(gw, home.owner, mine)
    subscribe(gw, gw.login("7202"), theirs)
    home.send("bath", {"water_leak": True})
    got = push_service.next()
    message = opened(gw, home.owner, push_service, mine, got)
    assert message["kind"] == "alarm"
    assert message["title"] == "Протечка воды: bath"
    assert message["body"].startswith("Novosibirsk, ")
    assert message["url"] == "/app/history" and isinstance(message["alert"], int)
    assert got.headers["urgency"] == "high"
    assert got.headers["topic"] == f"alert-{message['alert']}"
    assert 5 * 3600 < int(got.headers["ttl"]) <= 6 * 3600
    # Nothing of the first contract reached the second's browser.
    with pytest.raises(queue.Empty):
        push_service.next(timeout=2)
    home.close()


def test_a_call_is_pushed_while_it_rings_and_410_unsubscribes(
    gateway_factory: Any, push_service: PushService
) -> None:
    gw: Gateway = gateway_factory(
        push_allow_http_loopback=True,
        push_subject=SUBJECT,
        alarms_poll_s=0.2,
        call_ring_timeout_s=20.0,
    )
    site = entrance(gw)
    gw.start_alarms()
    flat12, flat14 = gw.login("4312"), gw.login("4314")
    phone, gone = push_service.browser("phone"), push_service.browser("gone")
    neighbour = push_service.browser("neighbour")
    subscribe(gw, flat12, phone)
    gone_id = subscribe(gw, flat12, gone)
    subscribe(gw, flat14, neighbour)
    push_service.status["/push/gone"] = 410
    ring(gw, site["panel"], {"event": "call", "call_id": "p1", "apartment": "12"})
    got = {r.path: r for r in (push_service.next(), push_service.next())}
    assert set(got) == {"/push/phone", "/push/gone"}, "the neighbour's browser got flat 12's call"
    message = opened(gw, flat12, push_service, phone, got["/push/phone"])
    call = message["call"]
    assert message["kind"] == "call" and message["title"] == "Вызов домофона, кв. 12"
    assert message["url"] == "/app/"
    headers = got["/push/phone"].headers
    assert (headers["topic"], headers["urgency"]) == (f"call-{call}", "high")
    assert 0 < int(headers["ttl"]) <= 20, "a call's push must not outlive its ring"
    # The push service said 410: that subscription is gone, the other stays.

    def listed() -> list[int]:
        return [s["id"] for s in gw.http.get(f"{API}/push/subscriptions", headers=flat12).json()]

    wait_until(lambda: gone_id not in listed(), 10)
    assert len(listed()) == 1
    # Declining ends the ring where it was sent: a quiet push with the call's topic
    # replaces it (the gone browser is unsubscribed by now; one subscribed after the
    # ring never showed it and gets no end either).
    (sub,) = gw.http.get(f"{API}/push/subscriptions", headers=flat12).json()
    subscribe(gw, flat12, push_service.browser("after"))
    assert gw.http.post(f"{API}/calls/{call}/decline", headers=flat12).status_code == 200
    got_end = push_service.next()
    assert got_end.path == "/push/phone"
    end = opened(gw, flat12, push_service, phone, got_end)
    assert (end["kind"], end["title"]) == ("call_end", "Вызов домофона отклонён")
    assert got_end.headers["topic"] == f"call-{call}"
    # Once the call is over, what is still queued for its ring is not sent at all.
    late = {
        "subscription": sub["id"],
        "message": message,
        "topic": f"call-{call}",
        "urgency": "high",
        "ringing_call": call,
        "expires_at": None,
    }
    asyncio.run(Push(gw.settings, gw.ctx.db)("late", late))
    with pytest.raises(queue.Empty):
        push_service.next(timeout=2)
    # Answering ends the ring on every phone it rang, the answering one's included.
    ring(gw, site["panel"], {"event": "call", "call_id": "p2", "apartment": "12"})
    rings = {r.path: r for r in (push_service.next(), push_service.next())}
    assert set(rings) == {"/push/phone", "/push/after"}
    second = opened(gw, flat12, push_service, phone, rings["/push/phone"])["call"]
    assert gw.http.post(f"{API}/calls/{second}/answer", headers=flat12).status_code == 200
    ends = {r.path: r for r in (push_service.next(), push_service.next())}
    assert set(ends) == {"/push/phone", "/push/after"}
    answered = opened(gw, flat12, push_service, phone, ends["/push/phone"])
    assert (answered["kind"], answered["title"]) == ("call_end", "Вызов домофона принят")
    assert ends["/push/phone"].headers["topic"] == f"call-{second}"
