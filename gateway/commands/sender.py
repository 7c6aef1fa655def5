"""Publishing commands on the broker: QoS 1, with the MQTT v5 Message Expiry
Interval, from the API process's own connection (one per process).

A command is published only while connected: a publish paho would queue for
a later reconnect is refused instead, so the caller can call it ``failed``
truthfully. Once published, its fate is the controller's answer or its
deadline; a missing PUBACK does not make it ``failed`` (the broker may have it).
"""

from __future__ import annotations

import json
import logging
import math
import secrets
import ssl
import threading
from datetime import datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from gateway.broker.client import new_client

log = logging.getLogger(__name__)


class NotSent(Exception):
    """The broker did not take the command (not connected, or it refused)."""


def expiry_interval(deadline: datetime, now: datetime) -> int:
    """Whole seconds left, rounded down (the broker drops it no later than the
    deadline), but at least 1: 0 would mean "no expiry". The payload's deadline
    covers the fraction of a second that rounding up to 1 can leave."""
    return max(1, math.floor((deadline - now).total_seconds()))


class CommandSender:
    """The API process's publisher of commands."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        password: str,
        *,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self._client = new_client(
            f"moydom-commands-{secrets.token_hex(4)}", username, password, tls=tls
        )
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._connected = threading.Event()
        self._host, self._port = host, port

    def start(self) -> None:
        self._client.connect_async(self._host, self._port, keepalive=30)
        self._client.loop_start()

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def send(
        self,
        topic: str,
        payload: dict[str, Any],
        deadline: datetime,
        now: datetime,
        timeout: float = 2.0,
    ) -> bool:
        """Publish; True once the broker acknowledged it, False if no PUBACK came
        within ``timeout`` (it may still arrive). Raises :class:`NotSent`."""
        if not self._connected.wait(min(timeout, 1.0)):
            raise NotSent("not connected to the broker")
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.MessageExpiryInterval = expiry_interval(deadline, now)
        info = self._client.publish(topic, json.dumps(payload), qos=1, properties=props)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise NotSent(mqtt.error_string(info.rc))
        try:
            info.wait_for_publish(timeout)
        except (RuntimeError, ValueError) as exc:
            raise NotSent(str(exc)) from exc
        return info.is_published()

    def _on_connect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        if reason.is_failure:
            log.warning("command sender: broker refused the connection: %s", reason)
            return
        self._connected.set()

    def _on_disconnect(
        self, _c: mqtt.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Any
    ) -> None:
        self._connected.clear()
