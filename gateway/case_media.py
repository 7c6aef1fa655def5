"""What a dispatcher may see of a case's home, and for how long: the held clips and the live
cameras of the home of a case that is not closed — nothing of a closed case, nothing of another
home. The API's dispatch media routes look everything up here; :func:`follow_case` ends a live
session as soon as its case closes (the hub's notice of the change, within a second; a re-read
every ``recheck_s`` without news, so a lost notice only delays it)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from devices.kinds import DeviceKind
from gateway.db.engine import Database
from gateway.db.media_models import Clip
from gateway.db.models import Device, Home
from gateway.db.security_models import Case, CaseStatus
from gateway.errors import Forbidden, NotFound
from gateway.live import DISPATCH, EventHub, LiveCase, Subscription
from recorder.live_rtc import LiveSessions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CaseHome:
    """An open case and the home it is about."""

    case_id: int
    contract_id: int
    home_id: int
    home: str


def open_case(session: Session, case_id: int) -> CaseHome:
    """The case, if it is not closed: 404 for no such case, 403 once it is closed."""
    row = session.execute(
        select(Case, Home.uid).join(Home, Home.id == Case.home_id).where(Case.id == case_id)
    ).first()
    if row is None:
        raise NotFound(f"no case {case_id}")
    case, home = row
    if case.status == CaseStatus.CLOSED:
        raise Forbidden(f"case {case_id} is closed: its cameras and clips are no longer shown")
    return CaseHome(case.id, case.contract_id, case.home_id, home)


def case_cameras(session: Session, case: CaseHome) -> list[Device]:
    """The live cameras of the case's home."""
    return list(
        session.scalars(
            select(Device)
            .where(
                Device.home_id == case.home_id,
                Device.contract_id == case.contract_id,
                Device.kind == DeviceKind.CAMERA.value,
                Device.deleted_at.is_(None),
            )
            .order_by(Device.id)
        )
    )


def case_camera(session: Session, case: CaseHome, device_uid: str) -> Device:
    """One camera of the case's home; any other device (another home's camera) is a 404."""
    for device in case_cameras(session, case):
        if device.uid == device_uid and device.rtsp_url:
            return device
    raise NotFound(f"no camera {device_uid} in the home of case {case.case_id}")


def case_clips(session: Session, case: CaseHome) -> list[tuple[Clip, Device]]:
    """The clips the case holds, oldest first, with their camera."""
    rows = session.execute(
        select(Clip, Device)
        .join(Device, Device.id == Clip.device_id)
        .where(Clip.case_id == case.case_id, Clip.contract_id == case.contract_id)
        .order_by(Clip.start, Clip.id)
    )
    return [(clip, device) for clip, device in rows]


def _is_open(db: Database, case_id: int) -> bool:
    with db.session() as session:
        status = session.scalar(select(Case.status).where(Case.id == case_id))
    return status is not None and status != CaseStatus.CLOSED


async def _closed(db: Database, case_id: int, sub: Subscription | None, recheck_s: float) -> bool:
    """Whether the case closed: told by the hub, or re-read after ``recheck_s`` without news."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + recheck_s
    while sub is not None and (left := deadline - loop.time()) > 0:
        try:
            item = await asyncio.wait_for(sub.queue.get(), left)
        except TimeoutError:
            break
        if isinstance(item, LiveCase) and item.case.id == case_id:
            return item.case.status == CaseStatus.CLOSED
    if sub is None:
        await asyncio.sleep(recheck_s)
    return not await asyncio.to_thread(_is_open, db, case_id)


async def follow_case(
    sessions: LiveSessions,
    session_id: str,
    case_id: int,
    *,
    db: Database,
    hub: EventHub | None,
    recheck_s: float,
) -> None:
    """End a dispatcher's live session when its case closes (run for the session's life)."""
    sub = hub.subscribe(DISPATCH) if hub is not None else None
    try:
        if await asyncio.to_thread(_is_open, db, case_id):  # after subscribing: no gap
            while not await _closed(db, case_id, sub, recheck_s):
                pass
        await sessions.terminate(session_id, f"case {case_id} closed")
    except Exception:  # fail closed: a session that cannot follow its case ends
        log.exception("case %s: following the case failed", case_id)
        await sessions.terminate(session_id, "following the case failed")
    finally:
        if hub is not None and sub is not None:
            hub.unsubscribe(sub)
