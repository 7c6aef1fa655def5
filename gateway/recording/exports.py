"""Archive reads for the playback API: which segments cover a range, and
export jobs that run in the API process's background threads with their
progress in the database (so any API process can answer for them)."""

from __future__ import annotations

import logging
import secrets
import threading
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.db.engine import Database
from gateway.db.media_models import Export, Recording
from gateway.db.models import Device, utcnow
from recorder.export import ExportError, Piece, export

log = logging.getLogger(__name__)


def pieces(
    session: Session, archive: Path, device_id: int, start: datetime, end: datetime
) -> list[Piece]:
    rows = session.scalars(
        select(Recording)
        .where(Recording.device_id == device_id, Recording.end > start, Recording.start < end)
        .order_by(Recording.start)
    )
    return [Piece(archive / r.path, r.start, r.end) for r in rows]


class Exporter:
    """Starts export jobs; the file lands in ``<var_dir>/exports/<id>.mp4``."""

    def __init__(self, db: Database, archive: Path, out_dir: Path) -> None:
        self.db = db
        self.archive = archive
        self.out_dir = out_dir

    def start(self, device: Device, start: datetime, end: datetime) -> str:
        job = secrets.token_hex(16)
        with self.db.transaction() as session:
            session.add(
                Export(
                    id=job,
                    device_id=device.id,
                    contract_id=device.contract_id,
                    start=start,
                    end=end,
                    status="running",
                    progress=0.0,
                    created_at=utcnow(),
                )
            )
        threading.Thread(
            target=self._run,
            args=(job, device.id, start, end),
            name=f"export-{job[:8]}",
            daemon=True,
        ).start()
        return job

    def _set(self, job: str, **fields: object) -> None:
        with self.db.transaction() as session:
            row = session.get_one(Export, job)
            for name, value in fields.items():
                setattr(row, name, value)

    def _run(self, job: str, device_id: int, start: datetime, end: datetime) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        out = self.out_dir / f"{job}.mp4"
        try:
            with self.db.session() as session:
                found = pieces(session, self.archive, device_id, start, end)
            export(found, start, end, out, lambda f: self._set(job, progress=round(f, 3)))
        except (ExportError, OSError, ValueError) as exc:
            log.warning("export %s failed: %s", job, exc)
            self._set(job, status="failed", error=str(exc)[:500])
            return
        self._set(job, status="done", progress=1.0, path=str(out))
