"""The transactional outbox on both databases: one row per key, a claimed row
comes back after its lease (a sender that died mid-send), permanent refusals
stop, expired device commands are never sent; and an SMS alert through a
local provider that fails once arrives exactly once."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import select

from gateway.db.models import utcnow
from gateway.db.security_models import Outbox
from gateway.outbox.enqueue import Channel, command, enqueue
from gateway.outbox.sender import LEASE, ChannelPolicy, SendError, claim, settle
from gateway.outbox.transports import MqttCommands
from tests.conftest import Gateway
from tests.security_support import secure
from tests.test_ingest import wait_until
from tests.test_notify_transports import Provider, provider

__all__ = ["provider"]  # fixture


async def _never(_key: str, _payload: dict[str, Any]) -> None:
    raise AssertionError("not called")


POLICY = ChannelPolicy(_never, max_attempts=3)


def _rows(gw: Gateway) -> list[Outbox]:
    with gw.ctx.db.session() as session:
        return list(session.scalars(select(Outbox).order_by(Outbox.id)))


def test_one_row_per_key_and_a_lease_that_returns(gateway: Gateway) -> None:
    now = utcnow()
    for _ in range(2):
        with gateway.ctx.db.transaction() as session:
            enqueue(session, "alert-1-sms", Channel.SMS, {"to": "+70000000000", "text": "x"}, now)
    assert len(_rows(gateway)) == 1
    (first,) = claim(gateway.ctx.db, Channel.SMS, now)
    assert first.attempts == 1
    assert claim(gateway.ctx.db, Channel.SMS, now + LEASE / 2) == []  # someone is sending it
    # The sender died without recording the outcome: after the lease it is tried again.
    (again,) = claim(gateway.ctx.db, Channel.SMS, now + LEASE + timedelta(seconds=1))
    assert again.id == first.id and again.attempts == 2
    settle(gateway.ctx.db, Channel.SMS, again, POLICY, error=None, now=utcnow())
    assert _rows(gateway)[0].sent_at is not None
    assert claim(gateway.ctx.db, Channel.SMS, now + 10 * LEASE) == []


def test_permanent_refusal_and_attempt_limit_stop(gateway: Gateway) -> None:
    now = utcnow()
    with gateway.ctx.db.transaction() as session:
        enqueue(session, "a", Channel.EMAIL, {}, now)
        enqueue(session, "b", Channel.EMAIL, {}, now)
    a, b = claim(gateway.ctx.db, Channel.EMAIL, now)
    settle(
        gateway.ctx.db, Channel.EMAIL, a, POLICY, error=SendError("550", permanent=True), now=now
    )
    for attempt in range(1, 4):
        settle(gateway.ctx.db, Channel.EMAIL, b, POLICY, error=SendError("451"), now=now)
        rows = _rows(gateway)
        assert rows[0].failed_at is not None and rows[0].attempts == 1
        assert (rows[1].failed_at is not None) == (attempt == 3)
        if attempt < 3:
            assert rows[1].next_attempt_at > now  # backing off
            (b,) = claim(gateway.ctx.db, Channel.EMAIL, now + timedelta(hours=1))


def test_expired_command_is_not_sent(gateway: Gateway) -> None:
    past = utcnow() - timedelta(minutes=5)
    with gateway.ctx.db.transaction() as session:
        command(session, "cmd-1", "moydom/h/siren/set", {"warning": {"mode": "burglar"}}, past)
    (row,) = claim(gateway.ctx.db, Channel.MQTT, utcnow())
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    try:
        asyncio.run(MqttCommands(client)(row.key, row.payload))
    except SendError as exc:
        assert exc.permanent and "deadline" in str(exc)
    else:
        raise AssertionError("an expired command was sent")


def test_sms_alert_arrives_once_after_a_provider_failure(
    gateway_factory: Any, provider: Provider
) -> None:
    gw: Gateway = gateway_factory(sms_url=provider.url, sms_api_key="test-api-key-0123456789")
    home = secure(gw, "5401")
    r = gw.http.put(
        "/api/v1/me/notifications",
        json={"phone": "+79130000000", "channels": {"leak": ["sms", "app"]}},
        headers=home.owner,
    )
    assert r.status_code == 200 and r.json()["channels"]["leak"] == ["app", "sms"]
    provider.statuses = [503]
    home.send("bath", {"water_leak": True})
    first = provider.requests.get(timeout=15)
    second = provider.requests.get(timeout=15)
    assert first[1]["Idempotency-Key"] == second[1]["Idempotency-Key"]
    assert second[2]["to"] == "+79130000000" and "Протечка" in second[2]["text"]
    wait_until(lambda: all(r.sent_at for r in _rows(gw) if r.channel == "sms"), 10)
    assert provider.requests.empty()
    home.close()
