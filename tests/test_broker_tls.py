"""MQTT over TLS: the embedded broker's TLS listener with its self-signed
certificate, the gateway's own clients (broker admin, live hub, ingest) on an
mqtts:// URL, a device (the simulator) over TLS end to end into the database,
and what must fail: clear text on the TLS port, a client that does not trust
the certificate."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode
from sqlalchemy import func, select

from devices.kinds import DeviceKind
from devices.simulator import SimSpec, SimulatedDevice
from gateway.api.app import create_app
from gateway.broker.tls import broker_pair, client_context
from gateway.db.models import Event
from gateway.runtime import start_context
from gateway.settings import Settings
from tests.conftest import Gateway
from tests.support import device_connect, free_port, mqtt_connect
from tests.test_ingest import wait_until


def _start(tmp_path: Path, db_url: str, **settings: Any) -> Iterator[Gateway]:
    with ExitStack() as stack:
        ctx = start_context(
            Settings(
                var_dir=tmp_path / "var", database_url=db_url, http_port=free_port(), **settings
            ),
            stack,
        )
        yield Gateway(ctx, stack.enter_context(TestClient(create_app(ctx))), stack)


@pytest.fixture
def tls_gateway(tmp_path: Path, db_url: str) -> Iterator[Gateway]:
    """A gateway whose broker speaks only TLS, and whose clients use mqtts://."""
    yield from _start(tmp_path, db_url, mqtt_url=f"mqtts://127.0.0.1:{free_port()}")


def tls_connect(port: int, username: str, password: str, context: ssl.SSLContext) -> bool:
    """Whether an MQTT v5 client over TLS gets a successful CONNACK."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=username, protocol=mqtt.MQTTv5)
    client.username_pw_set(username, password)
    client.tls_set_context(context)
    accepted = threading.Event()

    def on_connect(_c: Any, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        if not reason.is_failure:
            accepted.set()

    client.on_connect = on_connect
    try:
        client.connect("127.0.0.1", port, keepalive=10)
    except (OSError, ssl.SSLError):
        return False
    client.loop_start()
    try:
        return accepted.wait(5)
    finally:
        client.disconnect()
        client.loop_stop()


def test_gateway_and_devices_over_tls(tls_gateway: Gateway) -> None:
    gw = tls_gateway
    settings = gw.settings
    cert = broker_pair(settings)[0]
    assert cert.exists(), "a self-signed pair was made for the broker"
    assert gw.http.get("/api/v1/health").json()["broker"] != "down"  # admin link over TLS
    ingest = gw.start_ingest()  # its own MQTT client, over TLS
    gw.create_contract("7001")
    creds = gw.ctx.provisioner.create_device("7001", DeviceKind.MOTION, "hall")
    spec = SimSpec(
        DeviceKind.MOTION, "hall", creds.device.mqtt_username, creds.password, creds.topics
    )
    device = SimulatedDevice(
        spec, "127.0.0.1", settings.mqtt_port, period_s=0.2, tls=client_context(cert)
    )
    device.start()
    try:

        def stored() -> int:
            with gw.ctx.db.session() as session:
                query = select(func.count()).where(Event.device_id == creds.device.id)
                return int(session.scalar(query) or 0)

        wait_until(lambda: stored() >= 3, 20)
    finally:
        device.stop()
    assert ingest.ready.is_set()
    # The same password in clear text, on the TLS port: no session.
    plain = mqtt_connect(settings.mqtt_port, spec.username, spec.password, spec.username, 2)
    assert not plain.connected.is_set()
    # A client that does not trust the broker's certificate refuses it.
    assert not tls_connect(
        settings.mqtt_port, spec.username, spec.password, ssl.create_default_context()
    )
    assert tls_connect(settings.mqtt_port, spec.username, spec.password, client_context(cert))


def test_a_tls_listener_besides_the_plain_one(tmp_path: Path) -> None:
    """``MOYDOM_MQTT_TLS_PORT``: devices on TLS, the gateway's clients on the
    plain loopback listener."""
    tls_port = free_port()
    for gw in _start(tmp_path, f"sqlite:///{tmp_path / 'm.db'}", mqtt_tls_port=tls_port):
        gw.create_contract("7002")
        dev = gw.create_device("7002", "leak", "bath")
        cert = broker_pair(gw.settings)[0]
        assert tls_connect(tls_port, dev["username"], dev["password"], client_context(cert))
        assert not tls_connect(tls_port, dev["username"], "wrong-password", client_context(cert))
        assert device_connect(gw.mqtt_port, dev).connected.is_set()
