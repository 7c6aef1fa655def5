"""The archive's index, written from the recorder's callbacks.

Recorder threads must never wait on the database, so callbacks only queue;
one writer thread commits what arrived, retrying while the database is away
(the files are on disk meanwhile, and the start-up reconcile indexes any a
crash left unindexed). Camera availability and motion also become events,
announced on the commit notice like ingest's, so the cabinet's stream shows
them and the history keeps them."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from gateway.db.engine import Database
from gateway.db.media_models import MotionSpan, Recording
from gateway.db.models import DeviceHealth, Event
from gateway.db.upsert import upsert
from recorder.archive import reconcile, scan
from recorder.layout import SegmentInfo
from recorder.motion import MotionRange
from recorder.source import CameraStatus

#: The reason of the offline mark a restart puts where the recorder was away.
RECORDER_DOWN = "recorder was not running"

log = logging.getLogger(__name__)

Item = SegmentInfo | MotionRange | CameraStatus


@dataclass(frozen=True)
class _Marker:
    """Queued by ``flush``: set once everything before it is committed."""

    done: threading.Event


@dataclass(frozen=True)
class CameraRef:
    device_id: int
    contract_id: int
    home_id: int


class IndexWriter:
    def __init__(
        self,
        db: Database,
        archive_dir: Path,
        cameras: dict[str, CameraRef],
        announce: Callable[[list[tuple[int, int]]], None],
    ) -> None:
        self.db = db
        self.archive_dir = archive_dir
        self.cameras = cameras
        self.announce = announce
        self._queue: queue.Queue[Item | _Marker | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="archive-index", daemon=True)

    # Callbacks for CameraRecorder (any thread).
    def put(self, item: Item) -> None:
        self._queue.put(item)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(30)

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until what is queued now is committed (tests, shutdown)."""
        done = threading.Event()
        self._queue.put(_Marker(done))
        done.wait(timeout)

    def relative(self, path: Path) -> str:
        return str(path.relative_to(self.archive_dir))

    def reconcile(self, camera: str) -> tuple[int, int]:
        """Index what the disk holds and the index lacks, drop rows whose file
        is gone; returns (indexed, dropped). Call before the camera records."""
        ref = self.cameras[camera]
        on_disk = scan(self.archive_dir, camera)
        with self.db.transaction() as session:
            rows = session.scalars(
                select(Recording.path).where(Recording.device_id == ref.device_id)
            )
            indexed = {self.archive_dir / p for p in rows}
            to_index, missing = reconcile(on_disk, indexed)
            for info in to_index:
                self._segment(session, info)
            if missing:
                gone = [self.relative(p) for p in missing]
                session.execute(delete(Recording).where(Recording.path.in_(gone)))
        return len(to_index), len(missing)

    def mark_downtime(self, camera: str) -> CameraStatus | None:
        """At the recorder's start, close the timeline where it was away.

        A crashed (or stopped) recorder says nothing, so the camera's last
        state stays "online" over a gap with no footage. If it is, an offline
        mark goes where the footage ends (after ``reconcile`` indexed what
        the crash left); the camera's own "online" follows once it connects.
        Call before the camera records; returns the mark written, if any.
        """
        ref = self.cameras[camera]
        with self.db.transaction() as session:
            last = session.scalars(
                select(Event)
                .where(Event.device_id == ref.device_id, Event.event == "availability")
                .order_by(Event.id.desc())
                .limit(1)
            ).first()
            if last is None or last.body.get("state") != "online":
                return None
            footage_end = session.scalar(
                select(func.max(Recording.end)).where(Recording.device_id == ref.device_id)
            )
            at = max(filter(None, (footage_end, last.received_at)))
            mark = CameraStatus(camera, online=False, at=at, reason=RECORDER_DOWN)
            event = self._write(session, mark)
            session.flush()
            new = [(event.id, event.contract_id)] if event is not None else []
        if new:
            self.announce(new)
        return mark

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch: list[Any] = [item]
            while not self._queue.empty() and len(batch) < 500:
                nxt = self._queue.get()
                if nxt is None:
                    self._commit(batch)
                    return
                batch.append(nxt)
            self._commit(batch)

    def _commit(self, batch: list[Any]) -> None:
        items = [i for i in batch if not isinstance(i, _Marker)]
        backoff = 0.5
        while items:
            try:
                with self.db.transaction() as session:
                    events = [e for i in items if (e := self._write(session, i)) is not None]
                    session.flush()
                    new = [(e.id, e.contract_id) for e in events]
                if new:
                    self.announce(new)
                break
            except SQLAlchemyError:
                log.exception("archive index: cannot write; retrying in %.1f s", backoff)
                threading.Event().wait(backoff)
                backoff = min(backoff * 2, 10.0)
        for marker in batch:
            if isinstance(marker, _Marker):
                marker.done.set()

    def _write(self, session: Session, item: Item) -> Event | None:
        if isinstance(item, SegmentInfo):
            self._segment(session, item)
            return None
        ref = self.cameras.get(item.camera)
        if ref is None:
            return None  # a camera removed meanwhile
        if isinstance(item, MotionRange):
            # A range may end after the segments it covers were closed (and
            # indexed without the flag): mark them now, for retention.
            session.execute(
                update(Recording)
                .where(
                    Recording.device_id == ref.device_id,
                    Recording.start < item.end,
                    Recording.end > item.start,
                )
                .values(motion=True)
            )
            session.add(
                MotionSpan(
                    device_id=ref.device_id,
                    contract_id=ref.contract_id,
                    start=item.start,
                    end=item.end,
                )
            )
            body = {"event": "motion", "start": item.start.isoformat(), "end": item.end.isoformat()}
            event = self._event(ref, "motion", body, item.end)
        else:
            state = "online" if item.online else "offline"
            event = self._event(
                ref, "availability", {"state": state, "reason": item.reason}, item.at
            )
            upsert(
                session,
                DeviceHealth,
                [{"device_id": ref.device_id, "online": item.online, "last_seen_at": item.at}],
                ["device_id"],
            )
        session.add(event)
        return event

    @staticmethod
    def _event(ref: CameraRef, kind: str, body: dict[str, Any], at: Any) -> Event:
        return Event(
            contract_id=ref.contract_id,
            home_id=ref.home_id,
            device_id=ref.device_id,
            event=kind,
            body=body,
            received_at=at,
        )

    def _segment(self, session: Session, info: SegmentInfo) -> None:
        ref = self.cameras.get(info.camera)
        if ref is None:
            return
        path = self.relative(info.path)
        if session.scalar(select(Recording.id).where(Recording.path == path)) is not None:
            return  # indexed already (a reconcile racing a late callback)
        session.add(
            Recording(
                device_id=ref.device_id,
                contract_id=ref.contract_id,
                path=path,
                start=info.start,
                end=info.end,
                bytes=info.bytes,
                motion=info.motion,
            )
        )
