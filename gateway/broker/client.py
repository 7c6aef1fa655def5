"""The gateway's own MQTT clients (admin, live hub, ingest) are made one way."""

from __future__ import annotations

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


def new_client(
    client_id: str, username: str, password: str, *, manual_ack: bool = False
) -> mqtt.Client:
    """An MQTT v5 client with credentials and a 1–5 s reconnect backoff."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5,
        manual_ack=manual_ack,
    )
    client.username_pw_set(username, password)
    client.reconnect_delay_set(1, 5)
    return client
