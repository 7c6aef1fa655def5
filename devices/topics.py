"""The MQTT topic layout, defined and parsed in this one place.

    <root>/<home>/<device>                state and events (device publishes)
    <root>/<home>/<device>/availability   {"state": "online"|"offline"}, retained, last will
    <root>/<home>/<device>/set            commands (device subscribes)

``<root>/<home>`` is exactly a Zigbee2MQTT ``base_topic``: with the device's
id as its friendly name, a stock Zigbee2MQTT bridge publishes where we listen.
Home and device ids are opaque random strings, so topics leak nothing about
contracts or addresses.

``<device>`` may span several levels: a home's bridge publishes under the
friendly name, and Zigbee2MQTT allows ``/`` in one (``kitchen/leak``,
``AV2010/29A``) and publishes on the nested topic. :func:`name_problem` keeps
names unambiguous: no empty level, no last level ``availability`` or ``set``,
nothing under ``bridge``, no ``/<digits>`` ending (Zigbee2MQTT reads that as
an endpoint).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

AVAILABILITY = "availability"
SET = "set"
BRIDGE = "bridge"
"""Zigbee2MQTT's own topics live under ``<base>/bridge/…``; no device may be called so."""


class Channel(StrEnum):
    STATE = "state"
    AVAILABILITY = "availability"
    SET = "set"
    BRIDGE = "bridge"
    """A Zigbee2MQTT bridge's own topic; ``ParsedTopic.device`` holds the rest."""


@dataclass(frozen=True)
class DeviceTopics:
    root: str
    home: str
    device: str

    @property
    def base(self) -> str:
        """The Zigbee2MQTT ``base_topic`` for this device's home."""
        return f"{self.root}/{self.home}"

    @property
    def state(self) -> str:
        return f"{self.base}/{self.device}"

    @property
    def availability(self) -> str:
        return f"{self.state}/{AVAILABILITY}"

    @property
    def set(self) -> str:
        return f"{self.state}/{SET}"

    @property
    def publishes(self) -> list[str]:
        return [self.state, self.availability]

    @property
    def listens(self) -> list[str]:
        return [self.set]


def bridge_topics(root: str, home: str) -> tuple[str, str]:
    """(filter of everything a Zigbee2MQTT bridge publishes about itself, its state topic)."""
    base = f"{root}/{home}/{BRIDGE}"
    return f"{base}/#", f"{base}/state"


@dataclass(frozen=True)
class ParsedTopic:
    home: str
    device: str
    channel: Channel


def parse(root: str, topic: str) -> ParsedTopic | None:
    """Map a topic back to (home, device, channel); ``None`` if outside the layout."""
    parts = topic.split("/")
    if len(parts) < 3 or parts[0] != root or not parts[1] or not parts[2]:
        return None
    home, device = parts[1], parts[2:]
    if device[0] == BRIDGE:
        return ParsedTopic(home, "/".join(device[1:]), Channel.BRIDGE)
    channel = Channel.STATE
    if len(device) > 1 and device[-1] in (AVAILABILITY, SET):
        channel = Channel(device.pop())
    if not all(device):
        return None
    return ParsedTopic(home, "/".join(device), channel)


_ENDPOINT = re.compile(r".*/[0-9]+")


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a device's name (its friendly name in a
    Zigbee2MQTT bridge, and so a topic's device levels), or ``None``."""
    levels = name.split("/")
    if not all(levels):
        return "a name must not start or end with '/' or hold '//'"
    if levels[0] == BRIDGE:
        return f"{BRIDGE!r} is reserved for Zigbee2MQTT's own topics"
    if len(levels) > 1 and levels[-1] in (AVAILABILITY, SET):
        return f"a name must not end with '/{levels[-1]}': that level is a channel"
    if _ENDPOINT.fullmatch(name):
        return "a name must not end with '/' and digits: Zigbee2MQTT reads that as an endpoint"
    return None


def events_notice_topic(root: str) -> str:
    """Where ingest announces committed events to API processes.

    Two levels deep, so no device filter (``<root>/+/+/#``) ever matches it.
    """
    return f"{root}/_events"


def ingest_watermark_topic(root: str, session: str) -> str:
    """Where an ingest session keeps its retained watermark (gateway.ingest.replay);
    two levels deep, like the notices, so no device filter matches it."""
    return f"{root}/_watermark.{session}"


def all_devices_filter(root: str) -> str:
    """The subscription filter that covers every device topic."""
    return f"{root}/+/+/#"
