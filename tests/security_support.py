"""A secured home on a running gateway, with the real far ends the security
service talks to: pysiaalarm's DC-09 receiver as the central station and
aiosmtpd as the mail server."""

from __future__ import annotations

import email
import json
import queue
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.conftest import Gateway
from tests.support import MqttPeer, device_connect, free_port
from tests.test_ingest import wait_until
from tests.test_sia import Receiver

ACCOUNT = "1234"
CODE, DURESS, WRONG = "1234", "9999", "0000"
OWNER_EMAIL = "owner@example.org"


class MailSink:
    """Collects every message the local SMTP server accepts."""

    def __init__(self) -> None:
        self.messages: queue.Queue[Message] = queue.Queue()

    async def handle_DATA(self, _server: SMTP, _session: Session, envelope: Envelope) -> str:
        content = envelope.content
        raw = content if isinstance(content, bytes) else str(content).encode()
        self.messages.put(email.message_from_bytes(raw))
        return "250 OK"

    def expect(self, timeout: float = 10.0) -> Message:
        return self.messages.get(timeout=timeout)


@pytest.fixture
def mail() -> Iterator[tuple[MailSink, int]]:
    sink = MailSink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    yield sink, port
    controller.stop()


@pytest.fixture
def central_station() -> Iterator[Receiver]:
    receiver = Receiver(free_port(), [ACCOUNT])
    receiver.start()
    yield receiver
    receiver.kill()


@dataclass
class SecuredHome:
    gw: Gateway
    home: str
    devices: dict[str, dict[str, Any]]
    owner: dict[str, str]
    dispatcher: dict[str, str]
    peers: dict[str, MqttPeer] = field(default_factory=dict)

    def peer(self, name: str) -> MqttPeer:
        """Connected as the device (one connection: the broker allows one per
        client id), subscribed to its ``/set`` topic."""
        if name not in self.peers:
            device = self.devices[name]
            peer = device_connect(self.gw.mqtt_port, device)
            peer.subscribe(device["topics"]["set"])
            self.peers[name] = peer
        return self.peers[name]

    def send(self, name: str, payload: dict[str, Any]) -> None:
        self.peer(name).publish(self.devices[name]["topics"]["state"], json.dumps(payload).encode())

    def panel(self) -> dict[str, Any]:
        r = self.gw.http.get(f"/api/v1/homes/{self.home}/security", headers=self.owner)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def wait_status(self, status: str, timeout: float = 10.0) -> None:
        wait_until(lambda: self.panel()["status"] == status, timeout)

    def arm(self, mode: str = "armed_away", **extra: Any) -> Any:
        return self.gw.http.post(
            f"/api/v1/homes/{self.home}/security/arm",
            json={"mode": mode, **extra},
            headers=self.owner,
        )

    def disarm(self, code: str) -> Any:
        return self.gw.http.post(
            f"/api/v1/homes/{self.home}/security/disarm", json={"code": code}, headers=self.owner
        )

    def cases(self, state: str = "all") -> list[dict[str, Any]]:
        r = self.gw.http.get(
            "/api/v1/dispatch/cases", params={"state": state}, headers=self.dispatcher
        )
        assert r.status_code == 200, r.text
        items: list[dict[str, Any]] = r.json()["items"]
        return items

    def close(self) -> None:
        for peer in self.peers.values():
            peer.close()


def expect_codes(receiver: Receiver, wanted: set[str], timeout: float = 15.0) -> dict[str, Any]:
    """The first event with a Contact ID code in ``wanted`` (others are skipped)."""
    while True:
        event = receiver.expect(timeout)
        if event["event_type"] in wanted:
            return event


def secured_gateway(
    gateway_factory: Any, central_station: Receiver, mail: tuple[MailSink, int], **overrides: Any
) -> Gateway:
    """A gateway wired to the test's central station and mail sink."""
    gw: Gateway = gateway_factory(
        central_station_host="127.0.0.1",
        central_station_port=central_station.port,
        smtp_host="127.0.0.1",
        smtp_port=mail[1],
        alarms_poll_s=0.2,
        **overrides,
    )
    return gw


def secure(
    gw: Gateway,
    number: str,
    timing: dict[str, Any] | None = None,
    start_roles: Callable[[], None] | None = None,
    **panel: Any,
) -> SecuredHome:
    """A contract with a sensor set, the security service sold, a user with a
    code and a duress code, e-mail notifications, and a dispatcher."""
    gw.create_contract(number)
    devices = {
        name: gw.create_device(number, kind, name)
        for name, kind in [
            ("hall", "motion"),
            ("door", "contact"),
            ("bath", "leak"),
            ("keypad", "keypad"),
            ("siren", "siren"),
        ]
    }
    home = devices["hall"]["home"]
    if start_roles is None:
        gw.start_ingest()
        gw.start_alarms()
    else:
        start_roles()
    body = {
        "account": ACCOUNT,
        "timing": timing
        or {"armed_away": {"exit_delay_s": 0, "entry_delay_s": 2, "trigger_time_s": 30}},
        **panel,
    }
    r = gw.http.put(f"/api/v1/admin/homes/{home}/security", json=body, headers=gw.admin)
    assert r.status_code == 200, r.text
    owner = gw.login(number)
    r = gw.http.post(
        f"/api/v1/homes/{home}/security/users",
        json={"name": "anna", "code": CODE, "duress_code": DURESS},
        headers=owner,
    )
    assert r.status_code == 201, r.text
    r = gw.http.put("/api/v1/me/notifications", json={"email": OWNER_EMAIL}, headers=owner)
    assert r.status_code == 200, r.text
    login = f"desk{number}"
    r = gw.http.post(
        "/api/v1/admin/dispatchers",
        json={"login": login, "name": "Desk", "password": "dispatch pass 1"},
        headers=gw.admin,
    )
    assert r.status_code == 201, r.text
    r = gw.http.post("/api/v1/dispatch/login", json={"login": login, "password": "dispatch pass 1"})
    assert r.status_code == 200, r.text
    dispatcher = {"Authorization": f"Bearer {r.json()['access_token']}"}
    return SecuredHome(gw, home, devices, owner, dispatcher)


def keypad_reply(peer: MqttPeer, topic: str, timeout: float = 10.0) -> dict[str, Any]:
    """The next ``arm_mode`` answer to a request (display updates carry no
    transaction and are skipped)."""
    while True:
        arm_mode: dict[str, Any] = json.loads(peer.expect(topic, timeout).payload)["arm_mode"]
        if "transaction" in arm_mode:
            return arm_mode
