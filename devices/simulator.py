"""Simulated devices for the demo home: real MQTT clients that connect with the
credentials provisioning gave them and publish what such devices publish.

Sensor payloads follow Zigbee2MQTT's converters for common devices (Aqara
motion, leak and door sensors, a keypad that polls with ``occupancy``); gates,
intercoms, alarm panels and cameras speak the native schema (devices.native).
"""

from __future__ import annotations

import json
import logging
import random
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from devices.commands import FAULT, OPENED, CommandGuard
from devices.kinds import COMMANDABLE_KINDS, DeviceKind
from devices.topics import DeviceTopics

log = logging.getLogger(__name__)

Payload = dict[str, Any]


@dataclass(frozen=True)
class Visitor:
    """Someone at an intercom panel's door: dials ``flat`` ``first_s`` after
    the panel starts, then every ``every_s`` (or at once on
    :meth:`SimulatedDevice.visit_now`), and leaves ``waits_s`` after dialling —
    the panel then reports the call ended (the gateway's ring timeout has
    made an unanswered one missed by then)."""

    flat: str = "12"
    first_s: float = 15.0
    every_s: float = 60.0
    waits_s: float = 45.0


@dataclass(frozen=True)
class SimSpec:
    kind: DeviceKind
    name: str
    username: str
    password: str
    topics: DeviceTopics


def _motion(rng: random.Random, tick: int) -> Payload:
    return {
        "occupancy": rng.random() < 0.3,
        "illuminance": rng.randint(5, 400),
        "battery": 100,
        "voltage": 3005,
        "device_temperature": 22,
        "linkquality": rng.randint(90, 160),
    }


def _leak(rng: random.Random, tick: int) -> Payload:
    # An Aqara leak sensor's alarm carries only these two; battery and
    # voltage arrive in separate periodic reports.
    if tick % 3:
        return {"water_leak": False, "battery_low": False}
    return {
        "battery": 97,
        "voltage": 3015,
        "device_temperature": 21,
        "linkquality": rng.randint(60, 120),
    }


def _contact(rng: random.Random, tick: int) -> Payload:
    return {
        "contact": tick % 4 != 1,
        "battery": 91,
        "voltage": 2985,
        "linkquality": rng.randint(70, 130),
    }


def _keypad(rng: random.Random, tick: int) -> Payload:
    return {"occupancy": False, "battery": 88, "tamper": False, "linkquality": rng.randint(40, 90)}


def _siren(rng: random.Random, tick: int) -> Payload:
    return {"battery": 100, "linkquality": rng.randint(80, 140)}


def _gate(rng: random.Random, tick: int) -> Payload:
    return {"event": "state", "state": "closed", "ts": time.time()}


def _intercom(rng: random.Random, tick: int) -> Payload:
    # Its calls come from a visitor (SimulatedDevice's ``visitor``), not the clock.
    return {"event": "heartbeat", "uptime": tick, "ts": time.time()}


def _heartbeat(rng: random.Random, tick: int) -> Payload:
    return {"event": "heartbeat", "ts": time.time()}


REPORTS: dict[DeviceKind, Callable[[random.Random, int], Payload]] = {
    DeviceKind.MOTION: _motion,
    DeviceKind.LEAK: _leak,
    DeviceKind.CONTACT: _contact,
    DeviceKind.KEYPAD: _keypad,
    DeviceKind.SIREN: _siren,
    DeviceKind.GATE: _gate,
    DeviceKind.INTERCOM: _intercom,
    DeviceKind.CAMERA: _heartbeat,
    DeviceKind.ALARM_PANEL: _heartbeat,
}


OPENERS = frozenset({DeviceKind.GATE, DeviceKind.INTERCOM})
"""Kinds that open something on a command (docs/devices.md, "Commands")."""
SESSION_EXPIRY_S = 3600
"""Commandable devices keep their session this long offline, as a real
controller that must not miss a command during a short outage does."""


class SimulatedDevice:
    """One device's MQTT session: availability with a last will, periodic
    reports at QoS 1, and answers to commands on its ``/set`` topic.

    A gate controller and an intercom panel implement the command protocol
    (devices.commands): a persistent session, commands acknowledged (PUBACK)
    only after acting and answering, never acting late or twice. ``actions``
    lists the command ids it acted on, in order: what the tests count."""

    def __init__(
        self,
        spec: SimSpec,
        host: str,
        port: int,
        period_s: float = 5.0,
        *,
        tls: ssl.SSLContext | None = None,
        visitor: Visitor | None = None,
    ) -> None:
        """``tls``: connect over TLS (mqtts://), trusting that context's CAs;
        ``visitor``: an intercom panel's visitor who keeps dialling a flat."""
        self.spec = spec
        self._period = period_s
        self._rng = random.Random(spec.username)  # noqa: S311 - simulation, not security
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"sim-{spec.name}", daemon=True)
        self._visitor = visitor
        self._visit = threading.Event()
        self._visits = threading.Thread(target=self._visiting, name=f"visitor-{spec.name}")
        self._visits.daemon = True
        self.dialled: list[str] = []
        """The panel's ids of the calls its visitor made."""
        self.published = 0
        self.actions: list[str] = []
        self.commands_seen: list[str] = []
        """The ids of the commands delivered to it (late, repeated or not)."""
        self.set_messages = 0
        """Every message delivered on its ``/set`` topic."""
        self.fault = False
        """Answer ``fault`` instead of acting (a jammed motor)."""
        self._guard = CommandGuard(started=time.time()) if spec.kind in OPENERS else None
        self._lose_ack = threading.Event()
        self._commandable = spec.kind in COMMANDABLE_KINDS
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=spec.username,
            protocol=mqtt.MQTTv5,
            manual_ack=self._commandable,
        )
        self._client.username_pw_set(spec.username, spec.password)
        self._client.will_set(spec.topics.availability, json.dumps({"state": "offline"}), 1, True)
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._client.reconnect_delay_set(1, 10)
        if tls is not None:
            self._client.tls_set_context(tls)
        self._host, self._port = host, port

    def start(self) -> None:
        self._connect()
        self._client.loop_start()
        self._thread.start()
        if self._visitor is not None:
            if self.spec.kind is not DeviceKind.INTERCOM:
                raise TypeError(f"nobody dials a {self.spec.kind}")
            self._visits.start()

    def visit_now(self) -> None:
        """Have the visitor dial now (after the current call, if one rings)."""
        self._visit.set()

    def _visiting(self) -> None:
        assert self._visitor is not None
        wait = self._visitor.first_s
        while True:
            self._visit.wait(wait)
            self._visit.clear()
            if self._stop.is_set():
                return
            wait = self._visitor.every_s
            if not self._connected.is_set():
                continue
            try:
                call_id = self.dial(self._visitor.flat)
                self.dialled.append(call_id)
                if self._stop.wait(self._visitor.waits_s):
                    return
                self.end_call(call_id, "answered")
            except (RuntimeError, ValueError) as exc:  # paho: the publish failed
                log.warning("%s: the visitor's call was not sent: %s", self.spec.name, exc)

    def _connect(self) -> None:
        if not self._commandable:
            self._client.connect_async(self._host, self._port, keepalive=30)
            return
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = SESSION_EXPIRY_S
        self._client.connect_async(
            self._host, self._port, keepalive=30, clean_start=False, properties=props
        )

    def go_offline(self) -> None:
        """Leave the network (the session and its queued commands stay at the broker)."""
        self._connected.clear()
        self._client.disconnect()
        self._client.loop_stop()

    def go_online(self) -> None:
        """Come back: the broker delivers what the session queued meanwhile."""
        self._connect()
        self._client.loop_start()

    def wait_online(self, timeout: float = 10.0) -> bool:
        return self._connected.wait(timeout)

    def lose_next_ack(self) -> None:
        """Act on the next command, then drop off the network before its PUBACK
        (power or link lost at the worst moment): the broker sends it again."""
        self._lose_ack.set()

    def stop(self) -> None:
        self._stop.set()
        self._visit.set()
        if self._connected.is_set():
            info = self._client.publish(
                self.spec.topics.availability, json.dumps({"state": "offline"}), 1, True
            )
            info.wait_for_publish(2)
        self._client.disconnect()
        self._client.loop_stop()
        self._thread.join(2)
        if self._visits.is_alive():
            self._visits.join(2)

    def _on_connect(
        self, client: mqtt.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Any
    ) -> None:
        if reason.is_failure:
            log.warning("%s: broker refused connection: %s", self.spec.name, reason)
            return
        client.publish(self.spec.topics.availability, json.dumps({"state": "online"}), 1, True)
        if self.spec.kind in COMMANDABLE_KINDS:
            client.subscribe(self.spec.topics.set, qos=1)
        self._connected.set()

    def _on_message(self, client: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        self.set_messages += 1
        try:
            command = json.loads(msg.payload)
        except ValueError:
            command = None
        if self._guard is not None:
            if not self._command(client, command):
                return  # connection dropped before the PUBACK, on purpose
        elif isinstance(command, dict):
            self._reply(client, command)
        if self._commandable:
            client.ack(msg.mid, msg.qos)

    def _command(self, client: mqtt.Client, command: Any) -> bool:
        """The command protocol: act at most once, never late; answer. False:
        the connection was dropped before acknowledging (``lose_next_ack``)."""
        assert self._guard is not None
        now = time.time()
        decision = self._guard.decide(command, now)
        if decision.command_id is not None:
            self.commands_seen.append(decision.command_id)
        answer = decision.answer
        if decision.act and decision.command_id is not None:
            if self.fault:
                answer = self._guard.done(decision.command_id, FAULT, now, "motor overload")
            else:
                self.actions.append(decision.command_id)
                client.publish(self.spec.topics.state, json.dumps(self._opened(decision)), 1)
                answer = self._guard.done(decision.command_id, OPENED, now)
            if self._lose_ack.is_set():
                self._lose_ack.clear()
                threading.Thread(target=self.go_offline, daemon=True).start()
                return False
        if answer is not None:
            client.publish(self.spec.topics.state, json.dumps(answer), 1)
        return True

    def dial(self, apartment: str) -> str:
        """An intercom panel: a visitor dials ``apartment`` (its ``call``
        message, at QoS 1, acknowledged by the broker); the call's id."""
        if self.spec.kind is not DeviceKind.INTERCOM:
            raise TypeError(f"a {self.spec.kind} cannot dial")
        call_id = f"v{time.time_ns():x}"
        body = {"event": "call", "call_id": call_id, "apartment": apartment, "ts": time.time()}
        self._client.publish(self.spec.topics.state, json.dumps(body), 1).wait_for_publish(5)
        return call_id

    def end_call(self, call_id: str, outcome: str) -> None:
        """An intercom panel: the call ends at the door (``answered``, ``declined``
        or ``missed``: the visitor gave up)."""
        body = {"event": "call_ended", "call_id": call_id, "outcome": outcome, "ts": time.time()}
        self._client.publish(self.spec.topics.state, json.dumps(body), 1).wait_for_publish(5)

    def _opened(self, decision: Any) -> Payload:
        if self.spec.kind is DeviceKind.INTERCOM:
            return {"event": "door_opened", "by": "app", "command_id": decision.command_id}
        return {"event": "state", "state": "opening", "ts": time.time()}

    def _reply(self, client: mqtt.Client, command: Payload) -> None:
        reply: Payload | None = None
        if self.spec.kind is DeviceKind.SIREN and "warning" in command:
            reply = {"warning": command["warning"], "linkquality": 120}
        elif self.spec.kind is DeviceKind.KEYPAD and "arm_mode" in command:
            reply = {"arm_mode": command["arm_mode"]}
        if reply is not None:
            client.publish(self.spec.topics.state, json.dumps(reply), 1)

    def _run(self) -> None:
        report = REPORTS[self.spec.kind]
        tick = 0
        while not self._stop.is_set():
            if self._connected.is_set() and self._client.is_connected():
                payload = json.dumps(report(self._rng, tick))
                self._client.publish(self.spec.topics.state, payload, qos=1)
                self.published += 1
                tick += 1
            jitter = self._rng.uniform(0.5, 1.5)
            self._stop.wait(self._period * jitter if tick > 1 else 0.2)
