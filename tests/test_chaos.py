"""Invariant 1 under fire: a numbered QoS 1 stream while the ingest process is
SIGKILLed again and again, and the broker restarted once with a backlog.
Every message the broker acknowledged ends up in the database exactly once.

Then the broker itself is SIGKILLed: with ingest connected nothing may be
stored twice (what its snapshot brings back is recognised); with ingest away
what it accepted since its last snapshot is lost, at most about a second of
traffic (``autosave_interval 1``)."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import threading
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import select

from devices.kinds import DeviceKind
from gateway.broker.embedded import EmbeddedBroker
from gateway.db.engine import Database
from gateway.db.models import Event, RejectedMessage
from gateway.runtime import broker_config, start_context
from gateway.settings import BrokerMode, Settings
from tests.support import MoydomProcess, free_port, moydom_env

ADMIN_PASSWORD = "chaos-admin-password"
SERVICE_PASSWORD = "chaos-service-password"
KILLS = 12


class Publisher:
    """A device publishing {"seq": n} at QoS 1; remembers what the broker acked."""

    def __init__(self, port: int, device: Any) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=device.client_id, protocol=mqtt.MQTTv5
        )
        self.client.username_pw_set(device.username, device.password)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(1, 2)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.topic = device.topic
        self.sent: list[tuple[int, mqtt.MQTTMessageInfo]] = []
        self.seq = 0

    def burst(self, n: int) -> None:
        for _ in range(n):
            body = json.dumps({"occupancy": self.seq % 2 == 0, "seq": self.seq})
            self.sent.append((self.seq, self.client.publish(self.topic, body, qos=1)))
            self.seq += 1

    def settle(self, timeout: float = 30.0) -> None:
        """Wait until the broker acknowledged everything sent so far."""
        for _, info in self.sent:
            if info.rc == mqtt.MQTT_ERR_SUCCESS:  # the rest never left: not accepted
                with contextlib.suppress(RuntimeError):  # lost with a killed broker
                    info.wait_for_publish(timeout)

    def acked(self) -> list[int]:
        return [seq for seq, info in self.sent if _published(info)]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _published(info: mqtt.MQTTMessageInfo) -> bool:
    """Whether the broker acknowledged it (paho raises for one a broker lost)."""
    try:
        return info.is_published()
    except RuntimeError:
        return False


class Ingest(MoydomProcess):
    """``moydom run --role ingest`` as a real process, to be killed."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        super().__init__(env, cwd, ["ingest"], "ingest")
        self.metrics_port = 0
        self._connects_before = 0

    def start(self) -> None:
        # A port chosen just before each start: one chosen once and reused by
        # a dozen restarts can meanwhile be taken by any process's connection.
        self.metrics_port = free_port()
        self.env["MOYDOM_METRICS_PORT"] = str(self.metrics_port)
        self._connects_before = self._connects()
        super().start()

    def _connects(self) -> int:
        if not self.log.exists():
            return 0
        return self.log.read_text().count(" connected (session present")

    def wait_connected(self, timeout: float = 90.0) -> None:
        """Until the process started last has its MQTT session: a loaded
        machine can take seconds just to import it, which must not pass for
        a caught-up ingest that stores nothing more."""
        deadline = time.monotonic() + timeout
        while self._connects() <= self._connects_before:
            assert self.proc is not None and self.proc.poll() is None, "ingest exited"
            assert time.monotonic() < deadline, "ingest never connected"
            time.sleep(0.1)

    def redeliveries_recognised(self) -> int:
        lines = self.log.read_text().splitlines()
        return sum(
            int(line.split()[-4]) for line in lines if "redelivered messages recognised" in line
        )


class _Device:
    def __init__(self, creds: Any) -> None:
        self.username = creds.device.mqtt_username
        self.client_id = creds.device.mqtt_username
        self.password = creds.password
        self.topic = creds.topics.state


class Rig:
    """A broker of its own (supervised: a killed one comes back from its
    snapshot), a provisioned motion sensor publishing without pause, and
    ``moydom run --role ingest`` as a process to kill."""

    def __init__(self, db_url: str, tmp_path: Path, stack: ExitStack) -> None:
        port = free_port()
        self.settings = Settings(
            var_dir=tmp_path / "var",
            database_url=db_url,
            mqtt_url=f"mqtt://127.0.0.1:{port}",
            mqtt_broker=BrokerMode.EXTERNAL,
            mqtt_admin_password=ADMIN_PASSWORD,
            mqtt_password=SERVICE_PASSWORD,
            http_port=free_port(),
        )
        self.broker = self.new_broker(tmp_path / "broker")
        self.broker.start()
        stack.callback(lambda: self.broker.stop())  # noqa: PLW0108 (replaced by a restart)
        ctx = start_context(self.settings, stack)  # migrations, service account
        ctx.provisioner.create_contract("c1", "chaos-password", "somewhere")
        device = _Device(ctx.provisioner.create_device("c1", DeviceKind.MOTION, "m"))
        env = moydom_env(
            var_dir=str(self.settings.var_dir),
            database_url=db_url,
            mqtt_url=self.settings.mqtt_url,
            mqtt_broker="external",
            mqtt_password=SERVICE_PASSWORD,
            mqtt_admin_password=ADMIN_PASSWORD,
            auto_migrate="false",
            ingest_worker="chaos",
        )
        self.ingest = Ingest(env, tmp_path)
        stack.callback(self.ingest.stop)
        self.publisher = Publisher(port, device)
        stack.callback(self.publisher.close)
        self.db = Database(db_url)
        stack.callback(self.db.dispose)
        self._stop = threading.Event()
        self._loader: threading.Thread | None = None

    def new_broker(self, state_dir: Path) -> EmbeddedBroker:
        return EmbeddedBroker(
            broker_config(self.settings.model_copy(update={"var_dir": state_dir})),
            self.settings.mqtt_admin_username,
            ADMIN_PASSWORD,
            "mosquitto",
        )

    def stored(self) -> list[int]:
        with self.db.session() as s:
            return [body["seq"] for body in s.scalars(select(Event.body))]

    def start_load(self) -> None:
        def load() -> None:
            while not self._stop.is_set():
                self.publisher.burst(20)
                time.sleep(0.01)

        self._stop.clear()
        self._loader = threading.Thread(target=load)
        self._loader.start()

    def stop_load(self) -> None:
        self._stop.set()
        if self._loader is not None:
            self._loader.join()
        self.publisher.settle()

    def start_ingest(self) -> int:
        """Start ingest and wait for its first stored message; the seq of the
        first (a message accepted while no session existed was never owed)."""
        self.ingest.start()
        deadline = time.monotonic() + 20
        while not self.stored():
            assert time.monotonic() < deadline, "ingest never stored the first message"
            self.publisher.burst(1)
            time.sleep(0.2)
        return min(self.stored())

    def wait_for_publisher(self) -> None:
        deadline = time.monotonic() + 15
        while not self.publisher.client.is_connected():
            assert time.monotonic() < deadline, "publisher did not reconnect"
            time.sleep(0.05)

    def kill_broker(self) -> None:
        """SIGKILL; the supervisor starts it again from its last snapshot."""
        restarts = self.broker.restarts
        assert self.broker.pid is not None
        os.kill(self.broker.pid, signal.SIGKILL)
        deadline = time.monotonic() + 15
        while self.broker.restarts == restarts:
            assert time.monotonic() < deadline, "the broker did not come back"
            time.sleep(0.05)

    def drain(self, owed: int) -> list[int]:
        """What ingest stored once it caught up with ``owed`` messages (or
        stopped storing for 8 s: some may be lost), and a second more
        (anything beyond the count would be a copy)."""
        self.ingest.wait_connected()
        deadline = time.monotonic() + 120
        count, still_since = -1, time.monotonic()
        while (now := time.monotonic()) < deadline and count < owed:
            if len(seqs := self.stored()) != count:
                count, still_since = len(seqs), now
            elif now - still_since > 8.0:
                break
            time.sleep(0.5)
        time.sleep(1.0)
        return self.stored()


def _doubled_and_lost(seqs: list[int], acked: list[int]) -> tuple[list[int], list[int]]:
    counts = Counter(seqs)
    doubled = sorted(seq for seq, n in counts.items() if n > 1)
    return doubled, sorted(set(acked) - set(counts))


@pytest.mark.slow
def test_no_accepted_event_is_lost_or_doubled(db_url: str, tmp_path: Path) -> None:
    rng = random.Random(1234)
    with ExitStack() as stack:
        rig = Rig(db_url, tmp_path, stack)
        publisher, ingest = rig.publisher, rig.ingest
        # The ingest session must exist before the load: a message accepted
        # while no subscriber exists anywhere is dropped by MQTT's rules.
        first = rig.start_ingest()
        rig.start_load()
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.3, 1.5))
            ingest.kill()
            time.sleep(rng.uniform(0.0, 0.3))
            ingest.start()
        # The broker restarts holding a backlog for the (dead) ingest session.
        ingest.kill()
        time.sleep(0.5)
        rig.stop_load()
        rig.broker.stop()
        rig.broker = rig.new_broker(rig.broker.cfg.state_dir.parent)
        rig.broker.start()
        rig.wait_for_publisher()
        # Load on the restarted broker while ingest is still away: the
        # session's subscription must have survived the restart.
        rig.start_load()
        time.sleep(1.0)
        ingest.start()
        time.sleep(1.5)
        rig.stop_load()
        # Warm-up messages sent before the session existed were never owed.
        acked = [seq for seq in publisher.acked() if seq >= first]
        caught_up = time.monotonic()
        seqs = rig.drain(len(acked))
        with rig.db.session() as s:
            rejected = list(s.scalars(select(RejectedMessage.reason)))
        # An ingest-only process exports its own metrics.
        metrics = httpx.get(f"http://127.0.0.1:{ingest.metrics_port}/metrics", timeout=5).text
        assert 'moydom_ingest_messages_total{result="stored"}' in metrics
    recognised = ingest.redeliveries_recognised()
    doubled, lost = _doubled_and_lost(seqs, acked)
    print(
        f"published {publisher.seq}, acked {len(acked)}, stored {len(seqs)}, kills {KILLS}, "
        f"backlog drained in {time.monotonic() - caught_up:.1f}s, "
        f"redeliveries recognised {recognised}"
    )
    assert rejected == []
    assert doubled == [], f"{len(doubled)} stored twice, e.g. {doubled[:10]}"
    assert lost == [], f"{len(lost)} lost, e.g. {lost[:10]}"
    assert len(acked) > 5000
    # How many kills landed between a commit and its acknowledgement varies
    # from run to run (often hundreds, sometimes none); that path is proven
    # deterministically in test_ingest.py, here it is only reported.


BROKER_KILLS = 3


@pytest.mark.slow
def test_a_killed_broker_doubles_nothing_and_loses_at_most_a_second(
    db_url: str, tmp_path: Path
) -> None:
    rng = random.Random(4321)
    with ExitStack() as stack:
        rig = Rig(db_url, tmp_path, stack)
        first = rig.start_ingest()
        rig.start_load()
        # Ingest connected: what each restored snapshot sends again is known.
        for _ in range(BROKER_KILLS):
            time.sleep(rng.uniform(1.0, 3.0))
            rig.kill_broker()
            rig.wait_for_publisher()
        time.sleep(1.0)
        rig.stop_load()
        connected = [seq for seq in rig.publisher.acked() if seq >= first]
        seqs = rig.drain(len(connected))
        doubled, lost_connected = _doubled_and_lost(seqs, connected)
        assert doubled == [], f"{len(doubled)} stored twice, e.g. {doubled[:10]}"
        # Ingest away: the broker holds the backlog, then is killed.
        rig.start_load()
        time.sleep(1.0)
        rig.ingest.kill()
        time.sleep(rng.uniform(3.0, 5.0))
        before = len(rig.publisher.acked())
        time.sleep(1.0)
        per_second = len(rig.publisher.acked()) - before  # the traffic of the last second
        rig.kill_broker()
        rig.wait_for_publisher()
        time.sleep(1.0)
        rig.stop_load()
        rig.ingest.start()
        acked = [seq for seq in rig.publisher.acked() if seq >= first]
        seqs = rig.drain(len(acked))
        doubled, lost = _doubled_and_lost(seqs, acked)
    print(
        f"broker kills with ingest connected {BROKER_KILLS}: acked {len(connected)}, "
        f"lost {len(lost_connected)}, stored twice {len(doubled)}; "
        f"kill with ingest away: {per_second} msg/s, lost {len(lost)}, "
        f"stored twice {len(doubled)}"
    )
    assert doubled == [], f"{len(doubled)} stored twice, e.g. {doubled[:10]}"
    assert len(lost) <= per_second, (len(lost), per_second)  # at most a second of traffic
