"""Which device a topic belongs to, cached: ingest asks for every message."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import select

from devices.kinds import DeviceKind
from devices.topics import BRIDGE
from gateway.db.engine import Database
from gateway.db.models import Device, Home


@dataclass(frozen=True)
class DeviceRef:
    id: int
    contract_id: int
    home_id: int
    kind: DeviceKind
    uid: str
    name: str


class DeviceDirectory:
    """(home uid, device uid) → device, from the database.

    Hits are kept until ``ttl_s`` passes (a deleted device's broker account is
    gone before its row changes, so it cannot publish meanwhile); misses are
    kept briefly so a flood from an unknown topic costs one query a second.
    """

    def __init__(self, db: Database, ttl_s: float = 60.0, miss_ttl_s: float = 1.0) -> None:
        self._db = db
        self._ttl = ttl_s
        self._miss_ttl = miss_ttl_s
        self._cache: dict[tuple[str, str], tuple[float, DeviceRef | None]] = {}

    def lookup(self, home: str, device: str) -> DeviceRef | None:
        """The live device called ``device`` (id or name) in ``home``; ``bridge``
        names the home's Zigbee2MQTT bridge."""
        key = (home, device)
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        # By id, else by name: a Zigbee2MQTT bridge publishes under the
        # friendly name, which installers set to either.
        query = (
            select(
                Device.id, Device.contract_id, Device.home_id, Device.kind, Device.uid, Device.name
            )
            .join(Home, Home.id == Device.home_id)
            .where(Home.uid == home, Device.deleted_at.is_(None))
        )
        with self._db.session() as session:
            row = session.execute(query.where(Device.uid == device)).first()
            if row is None and device == BRIDGE:
                row = session.execute(
                    query.where(Device.kind == DeviceKind.ZIGBEE_BRIDGE.value)
                ).first()
            elif row is None:
                row = session.execute(query.where(Device.name == device)).first()
        ref = (
            DeviceRef(row.id, row.contract_id, row.home_id, DeviceKind(row.kind), row.uid, row.name)
            if row
            else None
        )
        self._cache[key] = (now + (self._ttl if ref else self._miss_ttl), ref)
        return ref
