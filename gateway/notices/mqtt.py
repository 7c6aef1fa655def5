"""Notices over the broker: published at QoS 0 after the commit, on
``<root>/_events``. Works with any database (SQLite included); a lost notice
loses nothing stored — roles poll, streams resume from the database."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from sqlalchemy import event
from sqlalchemy.orm import Session

from devices.topics import events_notice_topic
from gateway.notices.model import Notice
from gateway.notices.transport import Listener

Send = Callable[[str, bytes], object]
"""Publish a payload on a topic at QoS 0 (a paho client's or ingest's link's)."""


def paho_send(client: mqtt.Client) -> Send:
    return lambda topic, payload: client.publish(topic, payload, qos=0)


class MqttPublisher:
    def __init__(self, root: str, send: Send) -> None:
        self._topic = events_notice_topic(root)
        self._send = send

    def within(self, session: Session, notice: Notice) -> None:
        if notice:
            event.listen(session, "after_commit", lambda _s: self.publish(notice), once=True)

    def publish(self, notice: Notice) -> None:
        if notice:
            self._send(self._topic, notice.encode())


class MqttSubscriber:
    """Listens on a paho client the caller owns (and connects): subscribes at
    every connect, after the caller's own ``on_connect``."""

    def __init__(self, root: str, client: mqtt.Client) -> None:
        self._topic = events_notice_topic(root)
        self._client = client

    def start(self, listener: Listener) -> None:
        previous = self._client.on_connect

        def on_connect(client: mqtt.Client, *args: Any) -> None:
            if previous is not None:
                previous(client, *args)
            if not args[2].is_failure:  # (userdata, flags, reason, properties)
                client.subscribe(self._topic, qos=0)

        def on_message(_c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
            if (notice := Notice.decode(msg.payload)) is not None:
                listener(notice)

        self._client.on_connect = on_connect
        self._client.message_callback_add(self._topic, on_message)

    def stop(self) -> None:
        self._client.message_callback_remove(self._topic)
