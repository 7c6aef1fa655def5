"""What a member may be allowed, per home, and which device kinds each covers.

The owner may do everything. A member may do, in each home, only what the
owner granted there: watch its cameras (live and archive), arm and disarm it
(the security panel and its sensors, keypads and sirens), answer its intercom
and open its doors, open its gates."""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from devices.kinds import DeviceKind
from gateway.db.people_models import MemberPermission


class Permission(StrEnum):
    CAMERAS = "cameras"
    ARM = "arm"
    INTERCOM = "intercom"
    GATES = "gates"


def for_kind(kind: str) -> Permission:
    """The permission a device of ``kind`` needs; sensors, keypads and sirens
    belong to the alarm panel, so to arm/disarm."""
    if kind == DeviceKind.CAMERA:
        return Permission.CAMERAS
    if kind == DeviceKind.INTERCOM:
        return Permission.INTERCOM
    if kind == DeviceKind.GATE:
        return Permission.GATES
    return Permission.ARM


def held(session: Session, member_id: int) -> dict[int, set[str]]:
    """The member's permissions: home id -> permissions there."""
    out: dict[int, set[str]] = {}
    rows = session.execute(
        select(MemberPermission.home_id, MemberPermission.permission).where(
            MemberPermission.member_id == member_id
        )
    )
    for home_id, permission in rows:
        out.setdefault(home_id, set()).add(permission)
    return out
