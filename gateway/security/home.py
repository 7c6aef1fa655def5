"""What the security service needs to know of one home, loaded once per use."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from devices.kinds import DeviceKind
from gateway.db.models import Device, Home
from gateway.db.security_models import AlarmPanel
from gateway.security.zones import ZoneDevice


@dataclass(frozen=True)
class HomeView:
    home_id: int
    uid: str
    contract_id: int
    address: str
    account: str
    monitored: bool
    devices: tuple[ZoneDevice, ...]

    def of_kind(self, kind: DeviceKind) -> list[ZoneDevice]:
        return [d for d in self.devices if d.kind is kind]

    def device(self, uid: str | None) -> ZoneDevice | None:
        return next((d for d in self.devices if d.uid == uid), None)


def load_home(session: Session, panel: AlarmPanel) -> HomeView:
    home = session.get_one(Home, panel.home_id)
    rows = session.execute(
        select(Device.id, Device.uid, Device.name, Device.kind)
        .where(Device.home_id == panel.home_id, Device.deleted_at.is_(None))
        .order_by(Device.id)
    )
    return HomeView(
        home_id=home.id,
        uid=home.uid,
        contract_id=home.contract_id,
        address=home.address,
        account=panel.account,
        monitored=panel.monitored,
        devices=tuple(ZoneDevice(r.id, r.uid, r.name, DeviceKind(r.kind)) for r in rows),
    )
