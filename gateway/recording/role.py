"""The recorder role: one ``CameraRecorder`` per live camera, the archive
index, and the retention sweep with the free-space floor.

Cameras are read from the database every ``REFRESH_S``: a camera provisioned
meanwhile starts recording, a deleted one stops. Each camera is reconciled
with the disk before it records, so what a crash (kill -9, power loss) left
— a finished file without its row, a half-written segment — is indexed or
salvaged first.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from prometheus_client import Gauge
from sqlalchemy import select

from devices.kinds import DeviceKind
from devices.topics import events_notice_topic
from gateway.broker.client import new_client
from gateway.db.engine import Database
from gateway.db.models import Device, Home, utcnow
from gateway.recording.index import CameraRef, IndexWriter
from gateway.recording.sweep import Floor, sweep
from gateway.settings import Settings
from recorder.camera import CameraRecorder
from recorder.motion import MotionConfig
from recorder.retention import RetentionPolicy

log = logging.getLogger(__name__)

REFRESH_S = 10.0
RECORDING = Gauge("moydom_recorder_cameras", "Cameras being recorded")
PAUSED = Gauge("moydom_recorder_paused_cameras", "Cameras paused: only held footage left")


@dataclass(frozen=True)
class CameraSpec:
    uid: str
    url: str
    ref: CameraRef
    settings: dict[str, Any]

    @property
    def priority(self) -> int:
        return int(self.settings.get("priority", 0))

    def motion(self, default_on: bool) -> MotionConfig | None:
        motion = dict(self.settings.get("motion", {}))
        if not motion.pop("enabled", default_on):
            return None
        if "mask" in motion:
            motion["mask"] = tuple(tuple(tuple(p) for p in poly) for poly in motion["mask"])
        return MotionConfig(**motion)

    def retention(self, days: float) -> RetentionPolicy:
        r = self.settings.get("retention", {})
        return RetentionPolicy(
            continuous_days=r.get("continuous_days", days),
            motion_days=r.get("motion_days", days),
            event_days=r.get("event_days", days),
        )


def load_cameras(db: Database) -> dict[str, CameraSpec]:
    with db.session() as session:
        rows = session.execute(
            select(Device, Home.contract_id)
            .join(Home, Home.id == Device.home_id)
            .where(
                Device.kind == DeviceKind.CAMERA.value,
                Device.deleted_at.is_(None),
                Device.rtsp_url.is_not(None),
            )
        )
        return {
            d.uid: CameraSpec(
                d.uid, d.rtsp_url or "", CameraRef(d.id, contract, d.home_id), d.settings or {}
            )
            for d, contract in rows
        }


class RecorderRole:
    def __init__(self, settings: Settings, db: Database, mqtt_password: str) -> None:
        self.settings = settings
        self.db = db
        self.archive = settings.archive_path().resolve()
        self.archive.mkdir(parents=True, exist_ok=True)
        self.floor = Floor(settings.archive_min_free_bytes, settings.archive_min_free_percent)
        self._client = new_client(
            f"moydom-recorder-{secrets.token_hex(4)}", settings.mqtt_username, mqtt_password
        )
        self._topic = events_notice_topic(settings.mqtt_topic_root)
        self.cameras: dict[str, CameraSpec] = {}
        self.index = IndexWriter(db, self.archive, {}, self._announce)
        self.recorders: dict[str, CameraRecorder] = {}
        self.paused: set[str] = set()
        self._seen: set[str] = set()  # cameras set up since this role started
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._supervise, name="recorder", daemon=True)
        self.ready = threading.Event()

    def _announce(self, events: list[tuple[int, int]]) -> None:
        self._client.publish(self._topic, json.dumps({"events": events}), qos=0)

    def start(self) -> None:
        self._client.connect_async(self.settings.mqtt_host, self.settings.mqtt_port, keepalive=30)
        self._client.loop_start()
        self.index.start()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)
        for recorder in self.recorders.values():
            recorder.stop()
        self.index.stop()
        self._client.disconnect()
        self._client.loop_stop()

    def _supervise(self) -> None:
        next_sweep = 0.0
        clock = 0.0
        while not self._stop.is_set():
            try:
                self._refresh()
                self.ready.set()
                if clock >= next_sweep:
                    self._sweep()
                    next_sweep = clock + self.settings.retention_sweep_s
            except Exception:
                log.exception("recorder: supervision step failed")
            step = min(REFRESH_S, self.settings.retention_sweep_s)
            self._stop.wait(step)
            clock += step

    def _refresh(self) -> None:
        wanted = load_cameras(self.db)
        for uid in set(self.recorders) - set(wanted):
            log.info("camera %s removed: recording stops", uid)
            self.recorders.pop(uid).stop()
        for uid in set(self.recorders) & set(wanted):
            if wanted[uid] != self.cameras.get(uid):
                log.info("camera %s: settings or address changed; recording restarts", uid)
                self.recorders.pop(uid).stop()
        self.cameras = wanted
        self.index.cameras.update({uid: spec.ref for uid, spec in wanted.items()})
        for uid, spec in wanted.items():
            if uid in self.recorders or uid in self.paused:
                continue
            indexed, dropped = self.index.reconcile(uid)
            if indexed or dropped:
                log.info("camera %s: reconciled (%d indexed, %d dropped)", uid, indexed, dropped)
            if uid not in self._seen:
                self._seen.add(uid)
                if (mark := self.index.mark_downtime(uid)) is not None:
                    log.warning("camera %s: not recorded since %s (restart)", uid, mark.at)
            recorder = CameraRecorder(
                uid,
                spec.url,
                self.archive,
                segment_s=self.settings.recorder_segment_s,
                detect_url=spec.settings.get("detect_url"),
                motion=spec.motion(self.settings.recorder_motion),
                on_segment=self.index.put,
                on_motion=self.index.put,
                on_status=self.index.put,
                preroll_s=self.settings.recorder_preroll_s,
            )
            recorder.start()
            self.recorders[uid] = recorder
        RECORDING.set(len(self.recorders))

    def _importance(self, uid: str) -> tuple[int, int]:
        """Lowest first: the camera's priority setting, then the newest camera."""
        spec = self.cameras[uid]
        return spec.priority, -spec.ref.device_id

    def _prune_media_cache(self) -> None:
        """Playback files are a cache (an hour); exports are kept a day."""
        var = self.settings.var_dir.resolve()
        for folder, keep_s in ((var / "playback", 3600.0), (var / "exports", 86400.0)):
            if not folder.is_dir():
                continue
            cutoff = time.time() - keep_s
            for path in folder.iterdir():
                if path.is_file() and path.stat().st_mtime < cutoff:
                    path.unlink(missing_ok=True)

    def _sweep(self) -> None:
        self._prune_media_cache()
        days = self.settings.retention_days
        policies = {uid: spec.retention(days) for uid, spec in self.cameras.items()}
        default = RetentionPolicy(days, days, days)
        with self.db.session() as session:
            result = sweep(
                session,
                self.archive,
                policies=policies,
                default=default,
                floor=self.floor,
                now=utcnow(),
            )
        if result.held_only and self.recorders:
            # Nothing left to evict but held footage: pause the least important camera.
            victim = min(
                self.recorders,
                key=lambda uid: (self.cameras[uid].priority, -self.cameras[uid].ref.device_id),
            )
            log.error(
                "archive below its free-space floor with only held footage left: "
                "recording of camera %s paused",
                victim,
            )
            self.recorders.pop(victim).stop()
            self.paused.add(victim)
        elif not result.below_floor and self.paused:
            log.warning("archive above its floor again: cameras %s resume", sorted(self.paused))
            self.paused.clear()
        PAUSED.set(len(self.paused))
