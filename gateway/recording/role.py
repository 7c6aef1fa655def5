"""The recorder role: one ``CameraRecorder`` per live camera, the archive
index, and the retention sweep with the free-space floor.

Cameras are read from the database every ``REFRESH_S``: a camera provisioned
meanwhile starts recording, a deleted one stops. Each camera is reconciled
with the disk before it records, so what a crash (kill -9, power loss) left
— a finished file without its row, a half-written segment — is indexed or
salvaged first.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import threading
import time
from dataclasses import dataclass
from typing import Any

from prometheus_client import Gauge
from sqlalchemy import select

from devices.kinds import DeviceKind
from gateway.broker.client import new_client
from gateway.broker.tls import client_tls
from gateway.db.engine import Database
from gateway.db.models import Device, Home, utcnow
from gateway.notices import Notice, paho_send, publisher_for
from gateway.recording.disk import DiskUse, alert_key, measure, report
from gateway.recording.index import CameraRef, IndexWriter
from gateway.recording.sweep import Floor, sweep
from gateway.settings import Settings
from recorder.camera import CameraRecorder
from recorder.layout import SegmentInfo
from recorder.motion import MotionConfig
from recorder.retention import FloorWatch, RetentionPlan, RetentionPolicy
from recorder.source import CameraStatus

log = logging.getLogger(__name__)

REFRESH_S = 10.0
RECORDING = Gauge("moydom_recorder_cameras", "Cameras being recorded")
PAUSED = Gauge("moydom_recorder_paused_cameras", "Cameras paused: the archive disk is full")
BELOW_FLOOR = Gauge(
    "moydom_archive_below_floor",
    "1 from a sweep that had to evict until free space is back above the floor (+10 %)",
)
PAUSED_REASON = "paused: archive disk full"


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
                # An intercom with a camera is recorded like a camera.
                Device.kind.in_([DeviceKind.CAMERA.value, DeviceKind.INTERCOM.value]),
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
            f"moydom-recorder-{secrets.token_hex(4)}",
            settings.mqtt_username,
            mqtt_password,
            tls=client_tls(settings),
        )
        self._notices = publisher_for(db, settings.mqtt_topic_root, paho_send(self._client))
        self.cameras: dict[str, CameraSpec] = {}
        self.index = IndexWriter(db, self.archive, {}, self._announce)
        self.recorders: dict[str, CameraRecorder] = {}
        self.paused: set[str] = set()
        self._seen: set[str] = set()  # cameras set up since this role started
        self.watch = FloorWatch()
        self.alert_key = alert_key()
        self._low = threading.Event()  # a segment cut found the disk below its floor
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._supervise, name="recorder", daemon=True)
        self.ready = threading.Event()

    def _announce(self, events: list[tuple[int, int]]) -> None:
        self._notices.publish(Notice(events=events))

    def start(self) -> None:
        self._client.connect_async(self.settings.mqtt_host, self.settings.mqtt_port, keepalive=30)
        self._client.loop_start()
        self.index.start()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(30)
        for recorder in self.recorders.values():
            recorder.stop()
        self.index.stop()
        self._client.disconnect()
        self._client.loop_stop()

    def _supervise(self) -> None:
        """Cameras every ``REFRESH_S``, a sweep every ``retention_sweep_s`` —
        and sooner when a segment cut finds the disk below its floor, at most
        once a segment length: between sweeps the cameras can write no more
        than that (docs/archive.md: the floor's lower bound)."""
        next_refresh = next_sweep = last_sweep = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            try:
                if now >= next_refresh:
                    self._refresh()
                    self.ready.set()
                    next_refresh = now + REFRESH_S
                if now >= next_sweep:
                    self._low.clear()
                    last_sweep = now
                    self._sweep()
                    next_sweep = now + self.settings.retention_sweep_s
            except Exception:
                log.exception("recorder: supervision step failed")
            if self._low.is_set():
                next_sweep = min(next_sweep, last_sweep + self.settings.recorder_segment_s)
            self._wake.wait(max(0.0, min(next_refresh, next_sweep) - time.monotonic()))
            self._wake.clear()

    def _segment_cut(self, info: SegmentInfo) -> None:
        """Index the segment, and ask for a sweep if the disk is below its floor."""
        self.index.put(info)
        try:
            usage = shutil.disk_usage(self.archive)
        except OSError:
            return
        if usage.free < self.floor.bytes_for(usage.total) and not self._low.is_set():
            self._low.set()
            self._wake.set()

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
                if (mark := self.index.mark_downtime(uid)) is not None:
                    log.warning("camera %s: not recorded since %s (restart)", uid, mark.at)
                self._seen.add(uid)  # after the mark: a failed write is tried again
            recorder = CameraRecorder(
                uid,
                spec.url,
                self.archive,
                segment_s=self.settings.recorder_segment_s,
                detect_url=spec.settings.get("detect_url"),
                motion=spec.motion(self.settings.recorder_motion),
                on_segment=self._segment_cut,
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
            below = self.watch.update(result)
            use = measure(session, self.archive, result.floor_bytes) if below else None
        BELOW_FLOOR.set(int(below))
        paused = self._pause_or_resume(result, below)
        text = self._alert_text(result, use)
        if text is not None and paused:
            log.error("%s", text)
        report(self.db, self.alert_key, text, use, utcnow())
        PAUSED.set(len(self.paused))

    def _alert_text(self, result: RetentionPlan, use: DiskUse | None) -> str | None:
        """The operator alert's text while the archive is at its floor, else None."""
        if use is None:
            return None
        if not (result.held_only or self.paused):
            return (
                "archive disk at its free-space floor: footage is evicted before its "
                f"retention ({use.summary()})"
            )
        text = f"archive disk full: {use.why_full()}"
        if self.paused:
            text += f"; recording of camera(s) {', '.join(sorted(self.paused))} paused"
        return f"{text} ({use.summary()})"

    def _pause_or_resume(self, result: RetentionPlan, below: bool) -> bool:
        """Pause the least important camera if the floor cannot be reached;
        resume all once it is regained. Returns whether one was paused now."""
        if result.held_only and self.recorders:
            victim = min(self.recorders, key=self._importance)
            self.recorders.pop(victim).stop()
            self.paused.add(victim)
            self.index.put(CameraStatus(victim, online=False, at=utcnow(), reason=PAUSED_REASON))
            return True
        if not below and self.paused:
            log.warning("archive above its floor again: cameras %s resume", sorted(self.paused))
            self.paused.clear()
        return False
