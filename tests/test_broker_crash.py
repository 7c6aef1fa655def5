"""A broker that crashes: killed with SIGKILL, Mosquitto comes back with its
last snapshot and sends its queue of that moment again — messages ingest has
since stored and acknowledged, as first deliveries with new packet ids. They
must be recognised (gateway.ingest.replay), not stored twice.

The snapshot is taken on purpose (SIGUSR1 makes Mosquitto save) with the
periodic one turned off, so the test knows what the broker brings back."""

from __future__ import annotations

import json
import os
import queue
import signal
import time
from typing import Any

import pytest
from sqlalchemy import select

from devices.topics import ingest_watermark_topic
from gateway.db.models import Event
from tests.conftest import Gateway
from tests.support import device_connect, mqtt_connect
from tests.test_ingest import wait_until


def _broker_pid(gw: Gateway) -> int:
    assert gw.ctx.broker is not None
    pid = gw.ctx.broker.pid
    assert pid is not None
    return pid


def _watermark(gw: Gateway, worker: str = "w1") -> int | None:
    """The retained watermark the broker holds for the worker's session."""
    topic = ingest_watermark_topic(gw.settings.mqtt_topic_root, f"moydom-ingest-{worker}")
    peer = mqtt_connect(gw.mqtt_port, *gw.service_credentials())
    try:
        peer.subscribe(topic)
        message = peer.expect(topic, timeout=1.0)
    except queue.Empty:
        return None
    finally:
        peer.close()
    return int(message.payload)


def _seqs(gw: Gateway) -> list[int]:
    with gw.ctx.db.session() as s:
        return sorted(body["seq"] for body in s.scalars(select(Event.body)))


def _restart_broker(gw: Gateway) -> None:
    """SIGKILL; the gateway's supervisor starts it again from its snapshot."""
    assert gw.ctx.broker is not None
    before = gw.ctx.broker.restarts
    os.kill(_broker_pid(gw), signal.SIGKILL)
    wait_until(lambda: gw.ctx.broker is not None and gw.ctx.broker.restarts > before)


@pytest.mark.parametrize("ingest_killed_too", [False, True])
def test_what_a_restored_snapshot_sends_again_is_not_stored_twice(
    gateway_factory: Any, ingest_killed_too: bool
) -> None:
    gw: Gateway = gateway_factory(mosquitto_autosave_interval_s=3600)
    gw.create_contract("8101")
    motion = gw.create_device("8101", "motion", "hall")
    topic = motion["topics"]["state"]
    device = device_connect(gw.mqtt_port, motion)

    def publish(seqs: range) -> None:
        for n in seqs:
            device.publish(topic, {"occupancy": n % 2 == 0, "seq": n})

    worker = gw.start_ingest()
    publish(range(1))
    wait_until(lambda: _seqs(gw) == [0] and _watermark(gw) is not None)
    worker.stop()
    publish(range(1, 51))  # queued for the ingest session
    time.sleep(0.5)
    os.kill(_broker_pid(gw), signal.SIGUSR1)  # the snapshot: 50 queued, watermark 1
    time.sleep(0.5)
    worker = gw.start_ingest()
    wait_until(lambda: _seqs(gw) == list(range(51)))
    wait_until(lambda: (_watermark(gw) or 0) > 1)  # the broker has processed the PUBACKs
    if ingest_killed_too:
        worker.stop()  # the next worker knows nothing but the database
    _restart_broker(gw)
    if ingest_killed_too:
        worker = gw.start_ingest()
    device.close()
    device = device_connect(gw.mqtt_port, motion)
    wait_until(worker.ready.is_set, timeout=20)
    publish(range(51, 61))  # new messages after the restart are stored
    wait_until(lambda: len(_seqs(gw)) >= 61)
    time.sleep(1.0)  # anything more would be a copy
    assert _seqs(gw) == list(range(61))
    device.close()


def test_a_broker_that_lost_nothing_sends_nothing_again(gateway_factory: Any) -> None:
    """The watermark is the broker's current one after a plain reconnect: no
    replay is looked for, and identical messages are stored each time."""
    gw: Gateway = gateway_factory()
    gw.create_contract("8102")
    leak = gw.create_device("8102", "leak", "bath")
    device = device_connect(gw.mqtt_port, leak)
    worker = gw.start_ingest()
    same = json.dumps({"water_leak": False, "battery": 90}).encode()
    device.publish(leak["topics"]["state"], same)
    wait_until(lambda: _watermark(gw) is not None)
    worker.stop()
    worker = gw.start_ingest()
    for _ in range(3):
        device.publish(leak["topics"]["state"], same)
    with gw.ctx.db.session() as s:
        wait_until(lambda: len(list(s.scalars(select(Event.id)))) == 4)
    device.close()
