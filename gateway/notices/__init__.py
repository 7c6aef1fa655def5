"""Commit notices between roles: one model (:class:`Notice`), one publisher
and one subscriber interface, and a transport per database — LISTEN/NOTIFY
on PostgreSQL, the broker's notice topic on SQLite (whose writers share no
server to notify through). Every role picks its transport with
:func:`publisher_for` and :func:`subscriber_for`, so all agree."""

from __future__ import annotations

import paho.mqtt.client as mqtt

from gateway.db.engine import Database
from gateway.notices.model import Notice
from gateway.notices.mqtt import MqttPublisher, MqttSubscriber, Send, paho_send
from gateway.notices.postgres import PostgresPublisher, PostgresSubscriber
from gateway.notices.transport import Listener, NoticePublisher, NoticeSubscriber

__all__ = [
    "Listener",
    "Notice",
    "NoticePublisher",
    "NoticeSubscriber",
    "paho_send",
    "publisher_for",
    "subscriber_for",
]


def publisher_for(db: Database, root: str, send: Send) -> NoticePublisher:
    """``send`` publishes on the broker, used only without PostgreSQL."""
    if db.engine.dialect.name == "postgresql":
        return PostgresPublisher(db.engine)
    return MqttPublisher(root, send)


def subscriber_for(db: Database, root: str, client: mqtt.Client) -> NoticeSubscriber:
    """``client``: the caller's paho client, used only without PostgreSQL."""
    if db.engine.dialect.name == "postgresql":
        return PostgresSubscriber(db.engine)
    return MqttSubscriber(root, client)
