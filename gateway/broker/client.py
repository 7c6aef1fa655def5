"""The gateway's own MQTT clients (admin, live hub, ingest) are made one way."""

from __future__ import annotations

import ssl

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


def new_client(
    client_id: str,
    username: str,
    password: str,
    *,
    manual_ack: bool = False,
    tls: ssl.SSLContext | None = None,
) -> mqtt.Client:
    """An MQTT v5 client with credentials and a 1–5 s reconnect backoff;
    over TLS with ``tls`` (``gateway.broker.tls.client_tls``: an mqtts:// URL)."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5,
        manual_ack=manual_ack,
    )
    client.username_pw_set(username, password)
    client.reconnect_delay_set(1, 5)
    if tls is not None:
        client.tls_set_context(tls)
    return client
