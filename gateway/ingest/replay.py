"""Recognising what a broker restored from an older snapshot sends again.

Mosquitto persists by snapshot (``autosave_interval``). Killed, it comes back
with the queue of the last snapshot: messages ingest has since stored and
acknowledged are delivered once more, as first deliveries — no DUP flag, new
packet ids — so the markers cannot catch them. Two records line them up:

- the **journal** (``ingest_journal``): per committed batch, an entry per
  QoS 1 delivery (copies included) in the order received: the device's
  topic key and the digest of topic and payload (:func:`entry`);
- the **watermark**: after the broker confirms it processed a batch's
  PUBACKs (the probe's UNSUBACK), the worker publishes the batch's journal
  number as a retained message on its own topic. A snapshot holds the
  watermark of its time, so after a restore the broker shows an older one.

On connecting, the worker reads its retained watermark (QoS 0, answered
before the connect probe's UNSUBACK) before it stores anything. If the
broker went back in time, two kinds of copies follow (:class:`Replay`):

1. **the snapshot's queue**: what was not acknowledged when it was saved,
   in order — a stretch of the journal after the watermark. The first
   deliveries are lined up with the place in the journal where most of
   them match in a row (the latest of equals); from there each delivery
   that matches the next entry is a copy, and the first that does not ends
   this part.
2. **devices' resends**: what the broker took from a device after the
   snapshot and passed on, but died before the device had its PUBACK. The
   device sends it again, as the first thing it sends after reconnecting,
   and the broker (which lost it) passes it on as new. So a device's
   *first* delivery that is not part of 1 is a copy if it equals one of
   that device's last :data:`RESEND_WINDOW` entries after the watermark,
   and so are its next deliveries while they continue that device's
   entries in order; the first that does not ends it for that device.

A mismatch only ever ends recognising early (a copy stored twice). A new
message is taken for a copy only when it is byte for byte a message of the
same device in that short stretch, in the same order (docs/ingest.md).
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime
from functools import lru_cache

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from gateway.db.models import IngestJournal

log = logging.getLogger(__name__)

TOPIC_CHARS = 8
ENTRY_CHARS = 32
RESEND_WINDOW = 20
"""How many unacknowledged messages a device may have in flight: Mosquitto's
``max_inflight_messages`` default, which it also grants MQTT 5 devices as
their Receive Maximum (and paho's default)."""


@lru_cache(maxsize=65_536)
def _topic_key(topic: str) -> str:
    return hashlib.sha256(topic.encode()).hexdigest()[:TOPIC_CHARS]


def entry(topic: str, digest: str) -> str:
    """A delivery's journal entry: its device's topic key, then its digest."""
    return _topic_key(topic) + digest[: ENTRY_CHARS - TOPIC_CHARS]


class Replay:
    """One connection's deliveries lined up with the journal after the
    watermark; the worker asks :meth:`mark` batch by batch, in order."""

    def __init__(self, entries: list[str]) -> None:
        self._entries = entries
        self._next: int | None = None
        """Where the snapshot's queue is in the journal (None: not lined up yet)."""
        self._queue_over = not entries
        positions: dict[str, list[int]] = {}
        for i, e in enumerate(entries):
            positions.setdefault(e[:TOPIC_CHARS], []).append(i)
        self._resends = {key: at[-RESEND_WINDOW:] for key, at in positions.items()}
        """Per device: positions of the entries its first resend may start at."""
        self._resending: dict[str, list[int]] = {}
        """Per device that began resending: the positions of its entries still to come."""
        self._settled: set[str] = set()
        """Devices whose first delivery after the queue was seen."""
        self.recognised = 0

    @property
    def queue_over(self) -> bool:
        return self._queue_over

    @property
    def done(self) -> bool:
        """Nothing more can be a copy: the queue is over, every device settled."""
        return self._queue_over and not self._resending and self._settled >= set(self._resends)

    def mark(self, batch: list[str | None]) -> list[bool]:
        """Which of a batch's deliveries (their entries; None for QoS 0) are copies."""
        if self._next is None and not self._queue_over:
            self._line_up([e for e in batch if e is not None])
        out = []
        for e in batch:
            copy = e is not None and (self._in_queue(e) or self._resent(e))
            self.recognised += copy
            out.append(copy)
        return out

    def _line_up(self, batch: list[str]) -> None:
        """Find the snapshot's queue in the journal by the batch's first deliveries."""
        if not batch:
            return
        best, best_run = None, 0
        for start, e in enumerate(self._entries):
            if e != batch[0]:
                continue
            run = 0
            while (
                run < len(batch)
                and start + run < len(self._entries)
                and self._entries[start + run] == batch[run]
            ):
                run += 1
            if run >= best_run:
                best, best_run = start, run
        if best is None:
            self._queue_over = True
        else:
            self._next = best

    def _in_queue(self, e: str) -> bool:
        if self._queue_over or self._next is None:
            return False
        if self._next < len(self._entries) and self._entries[self._next] == e:
            self._next += 1
            self._queue_over = self._next == len(self._entries)
            return True
        self._queue_over = True
        return False

    def _resent(self, e: str) -> bool:
        key = e[:TOPIC_CHARS]
        if key in self._resending:
            todo = self._resending[key]
            if self._entries[todo[0]] == e:
                del todo[0]
                if not todo:
                    del self._resending[key]
                return True
            del self._resending[key]
            return False
        if key in self._settled:
            return False
        self._settled.add(key)
        starts = self._resends.get(key, [])
        for n, at in enumerate(starts):
            if self._entries[at] == e:
                if todo := starts[n + 1 :]:
                    self._resending[key] = todo
                return True
        return False


def parse_watermark(payload: bytes) -> int | None:
    """A retained watermark's journal number (``None``: cleared or not ours)."""
    text = payload.decode("ascii", "replace").strip()
    return int(text) if text.isascii() and text.isdecimal() else None


def last_seq(session: Session, name: str) -> int:
    """The newest journal number of the ingest session ``name`` (0 if none)."""
    newest = session.scalar(
        select(func.max(IngestJournal.seq)).where(IngestJournal.session == name)
    )
    return int(newest or 0)


def after(session: Session, name: str, seq: int) -> list[str]:
    """The entries journalled after batch ``seq``, in the order received."""
    rows = session.scalars(
        select(IngestJournal.digests)
        .where(IngestJournal.session == name, IngestJournal.seq > seq)
        .order_by(IngestJournal.seq)
    )
    text = "".join(rows)
    return [text[i : i + ENTRY_CHARS] for i in range(0, len(text), ENTRY_CHARS)]


_APPEND = insert(IngestJournal)


def append(session: Session, name: str, seq: int, entries: list[str], at: datetime) -> None:
    session.execute(
        _APPEND, {"session": name, "seq": seq, "digests": "".join(entries), "written_at": at}
    )


def prune(session: Session, name: str, before: datetime) -> None:
    """Forget batches written before ``before``: no snapshot that old comes back
    (the broker saves every second; see docs/ingest.md for the margin)."""
    session.execute(
        delete(IngestJournal).where(
            IngestJournal.session == name, IngestJournal.written_at < before
        )
    )


class Watermarks:
    """The worker's watermark: what it last published, and what each connection
    found retained in the broker; decides whether a connection replays."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.published: int | None = None
        """Set once this process has published one. Equal to the broker's
        retained value does not mean nothing comes again: the watermark lags
        the PUBACKs, and a snapshot may hold messages acknowledged since."""
        self._found: dict[int, int | None] = {}

    def found(self, epoch: int, payload: bytes) -> None:
        """The retained watermark delivered on connection ``epoch`` (network thread)."""
        self._found[epoch] = parse_watermark(payload)

    def replay_for(self, epoch: int, session: Session) -> Replay | None:
        """What the connection ``epoch`` will be sent again, once its connect
        probe is answered (so a retained watermark has arrived, if any)."""
        retained = self._found.pop(epoch, None)
        self._found.clear()
        newest = last_seq(session, self.name)
        if retained is None:
            # No watermark: a broker that never saved one, or lost everything
            # (then it has no queue either). Only a broker that had one from
            # this process and came back without it went back in time.
            if self.published is None:
                return None
            retained = 0
        if retained >= newest:
            return None
        log.warning(
            "ingest %s: the broker's watermark is batch %d, the journal's newest %d: "
            "recognising what the broker sends again",
            self.name,
            retained,
            newest,
        )
        return Replay(after(session, self.name, retained))
