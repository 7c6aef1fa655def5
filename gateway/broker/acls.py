"""What each broker account may do: the ACLs moydom gives devices, a home's
Zigbee2MQTT bridge and the gateway itself — in one place, so a reviewer can
check them all in one read."""

from __future__ import annotations

from devices.topics import AVAILABILITY, DeviceTopics, bridge_topics
from gateway.broker.dynsec import Acl
from gateway.db.models import Device, Home

SERVICE_ROLE = "moydom-service"


def device_role(username: str) -> str:
    return f"role-{username}"


def device_acls(topics: DeviceTopics) -> list[Acl]:
    """A device may publish only to its own topics and subscribe only to its commands."""
    return [
        Acl("publishClientSend", topics.state),
        Acl("publishClientSend", topics.availability),
        Acl("subscribePattern", topics.set),
    ]


def speaks_for(base: str, device: Device) -> list[Acl]:
    """What a home's Zigbee2MQTT bridge may publish for one Zigbee device: under
    the device's id or its name, whichever is the friendly name in the bridge."""
    return [
        Acl("publishClientSend", topic)
        for ident in dict.fromkeys((device.uid, device.name))
        for topic in (f"{base}/{ident}", f"{base}/{ident}/{AVAILABILITY}")
    ]


def bridge_acls(root: str, home: Home, zigbee_devices: list[Device]) -> list[Acl]:
    """A bridge publishes its own ``bridge/…`` topics and for the home's Zigbee
    devices only — never as a gate, intercom or panel — and subscribes to the
    home's base topic, as Zigbee2MQTT does (``<base>/#``)."""
    own, _ = bridge_topics(root, home.uid)
    base = f"{root}/{home.uid}"
    acls = [Acl("publishClientSend", own), Acl("subscribePattern", f"{base}/#")]
    for device in zigbee_devices:
        acls += speaks_for(base, device)
    return acls


def service_acls(root: str) -> list[Acl]:
    """The gateway's own bus account: everything under the topic root."""
    everything = f"{root}/#"
    return [
        Acl("publishClientSend", everything),
        Acl("publishClientReceive", everything),
        Acl("subscribePattern", everything),
        Acl("subscribePattern", f"$share/+/{everything}"),
        Acl("unsubscribePattern", "#"),
    ]
