"""Recognising what a broker restored from an older snapshot sends again.

Mosquitto persists by snapshot (``autosave_interval``). Killed, it comes back
with the queue of the last snapshot: messages ingest has since stored and
acknowledged are delivered once more, as first deliveries — no DUP flag, new
packet ids — so the markers cannot catch them. Two records line them up:

- the **journal** (``ingest_journal``): per committed batch, the digests of
  its QoS 1 deliveries in the order they were received;
- the **watermark**: after the broker confirms it processed a batch's
  PUBACKs (the probe's UNSUBACK), the worker publishes the batch's journal
  number as a retained message on its own topic. A snapshot holds the
  watermark of its time, so after a restore the broker shows an older one.

On connecting, the worker reads its retained watermark (QoS 0, answered
before the connect probe's UNSUBACK) before it stores anything. If the
broker went back in time, the deliveries that follow are the snapshot's
queue: everything not acknowledged by then, in order, which is a stretch of
the journal after the watermark followed by what ingest never stored. The
first delivery is looked up in that stretch; from there each delivery that
matches the next journal entry is a replay (acknowledged, not stored), and
the first that does not ends the replay. A mismatch only ever ends it early
(a copy stored twice, as before); a new message is taken for a replay only
if it is byte for byte the message that followed in the journal, which the
broker lost (docs/ingest.md).
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from gateway.db.models import IngestJournal

log = logging.getLogger(__name__)

DIGEST_CHARS = 32


class Replay:
    """One connection's deliveries lined up with the journal after the watermark."""

    def __init__(self, digests: list[str]) -> None:
        self._digests = digests
        self._next: int | None = None
        self.done = not digests
        self.recognised = 0

    def recognise(self, digest: str) -> bool:
        """Whether this delivery (the next QoS 1 one, in order) is a replay."""
        if self.done:
            return False
        if self._next is None:
            try:
                self._next = self._digests.index(digest)
            except ValueError:
                self.done = True
                return False
        if self._next < len(self._digests) and self._digests[self._next] == digest:
            self._next += 1
            self.recognised += 1
            self.done = self._next == len(self._digests)
            return True
        self.done = True
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
    """The digests journalled after batch ``seq``, in the order received."""
    rows = session.scalars(
        select(IngestJournal.digests)
        .where(IngestJournal.session == name, IngestJournal.seq > seq)
        .order_by(IngestJournal.seq)
    )
    text = "".join(rows)
    return [text[i : i + DIGEST_CHARS] for i in range(0, len(text), DIGEST_CHARS)]


_APPEND = insert(IngestJournal)


def append(session: Session, name: str, seq: int, digests: list[str], at: datetime) -> None:
    session.execute(
        _APPEND, {"session": name, "seq": seq, "digests": "".join(digests), "written_at": at}
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
