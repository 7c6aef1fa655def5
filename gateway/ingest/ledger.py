"""The redelivery ledger: ingest's exactly-once bookkeeping, in one place.

Every rule by which the worker tells a redelivery from a new message, and
decides when a marker may go, is a method here; the threads only call them.
Pure: no database, no socket — the worker does the I/O the answers ask for
(docs/ingest.md, section 3, has the argument for each rule).

- **Connections.** Each connection has a number (``epoch``). Deliveries of a
  connection that has since dropped are never stored: they were never
  acknowledged, and come again as DUP on the new one (storing both could put
  a message and its redelivery into one batch, before any marker exists).
- **Holding until the watermark is known.** A connection's deliveries are
  held until its connect probe is answered (the retained watermark arrives
  before that answer); the worker then decides the replay
  (gateway.ingest.replay) and the held deliveries are released in order.
- **Probes.** After acknowledging a batch the worker sends an UNSUBSCRIBE
  probe; its answer proves the broker processed the PUBACKs before it, so
  those markers are deleted in the next commit, and the batch's journal
  number is published as the watermark (for the current connection only).
  A new connection forgets the old one's probes: they are never answered.
- **Stale markers.** The broker sends what earlier connections left
  unacknowledged (DUP) ahead of any first delivery at QoS 1. So the batch
  holding a connection's first QoS 1 delivery without DUP checks its DUPs
  against the markers, then deletes every marker of a message received
  before the connection began, in the same commit.
- **Deletions carry over.** What a batch that failed to commit was to delete
  goes with the next one. A clean-up the database refuses is left out of the
  batch and tried once more with the next; what still fails is removed by
  the next connection's stale-marker rule.
- **Acknowledgements.** Only the current connection's QoS 1 deliveries are
  acknowledged: a packet id means something only on the connection that
  delivered it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime

from gateway.ingest.classify import Received
from gateway.ingest.replay import Replay, Watermarks, entry

Pair = tuple[int, str]
"""(packet id, digest) of a marker."""


@dataclass(frozen=True)
class ProbeAnswered:
    """Queued behind the messages that arrived before the probe's answer."""

    epoch: int
    acked: list[Pair] = field(default_factory=list)
    connect_probe: bool = False
    seq: int | None = None
    """The journal number of the newest batch among ``acked``."""


@dataclass(frozen=True)
class Cleanup:
    """The markers a commit deletes: these pairs, and those of messages received
    before ``stale_before``."""

    confirmed: list[Pair] = field(default_factory=list)
    stale_before: datetime | None = None


@dataclass(frozen=True)
class Intake:
    """What the writer does with one batch taken from the inbox."""

    items: list[Received]
    """The current connection's deliveries to classify now (empty while held)."""
    watermarks: list[int]
    """Journal numbers to publish as the watermark, in order."""
    start: int | None = None
    """A connection whose connect probe was answered: decide its replay, then
    call :meth:`RedeliveryLedger.start`."""
    held: bool = False
    """The connection's deliveries are held: nothing to classify or commit yet."""


class RedeliveryLedger:
    """One worker session's exactly-once state, shared by its three threads.

    The network thread reports connections, watermarks and probe answers;
    the writer passes each batch through :meth:`intake` and
    :meth:`mark`, and takes the clean-up it carries with :meth:`cleanup`; the
    committer merges clean-ups with :meth:`to_delete`, reports the outcome
    with :meth:`committed` or :meth:`cleanup_refused`, and asks what to
    acknowledge with :meth:`acknowledgement`.
    """

    def __init__(self, session_name: str) -> None:
        self.watermarks = Watermarks(session_name)
        # Network thread writes, the others read.
        self.epoch = 0
        self._connected: tuple[int, datetime] | None = None
        """(epoch, when that connection began), replaced as one."""
        self._probes: dict[int, ProbeAnswered] = {}
        self._probe_lock = threading.Lock()
        # Writer thread.
        self._started = 0
        """The connection whose deliveries the writer takes: its connect probe
        was answered. Until then they are held (a replay is decided first)."""
        self._held: list[Received] = []
        self._taking = 0
        """The connection the last :meth:`intake` (or :meth:`start`) took deliveries of."""
        self._fresh_epoch = 0
        """The last connection on which a first delivery (QoS 1, not DUP) was seen."""
        self.replay: Replay | None = None
        self._confirmed: list[Pair] = []
        self._stale_before: datetime | None = None
        # Committer thread.
        self._carried = Cleanup()
        self._retry: list[Pair] = []
        self._retried = False
        self.journal_seq: int | None = None
        """The newest journal number committed, for the next probe."""

    # --- network thread -------------------------------------------------------

    def connected(self, epoch: int, at: datetime) -> ProbeAnswered:
        """A new connection; returns the answer its connect probe will bring."""
        self._connected = (epoch, at)
        self.epoch = epoch
        with self._probe_lock:
            self._probes.clear()  # an older connection's probes are never answered
        return ProbeAnswered(epoch, connect_probe=True)

    def probe_sent(self, packet_id: int, answer: ProbeAnswered) -> None:
        """Register a probe before it goes out, so its answer cannot come first."""
        with self._probe_lock:
            self._probes[packet_id] = answer

    def probe_lost(self, packet_id: int) -> None:
        """The probe could not be sent (the connection is gone)."""
        with self._probe_lock:
            self._probes.pop(packet_id, None)

    def probe_answered(self, packet_id: int) -> ProbeAnswered | None:
        """The UNSUBACK for ``packet_id``: the answer to queue, if it was a probe."""
        with self._probe_lock:
            return self._probes.pop(packet_id, None)

    # --- writer thread --------------------------------------------------------

    def intake(self, batch: list[Received | ProbeAnswered]) -> Intake:
        """Sort a batch from the inbox: the current connection's deliveries (held
        until its connect probe is answered), the markers answered probes
        confirm, and the watermarks to publish."""
        epoch = self._taking = self.epoch
        items = [b for b in batch if isinstance(b, Received) and b.epoch == epoch]
        watermarks: list[int] = []
        answered = False
        for answer in (b for b in batch if isinstance(b, ProbeAnswered)):
            self._confirmed.extend(answer.acked)
            if answer.epoch == epoch and answer.seq is not None:
                watermarks.append(answer.seq)
            answered |= answer.connect_probe and answer.epoch == epoch
        if self._started == epoch:
            return Intake(items, watermarks)
        self._held = [i for i in self._held if i.epoch == epoch] + items
        return Intake([], watermarks, epoch if answered else None, held=True)

    def start(self, epoch: int, replay: Replay | None) -> list[Received]:
        """Take connection ``epoch``'s deliveries from now on, with what it will
        replay; returns those held until now."""
        self._started = self._taking = epoch
        self.replay = replay
        held, self._held = [i for i in self._held if i.epoch == epoch], []
        return held

    def mark(self, items: list[Received]) -> int | None:
        """Mark the batch's copies (``Received.replayed``) and apply the
        stale-marker rule; returns how many copies the replay recognised in
        all, once it is over (None while it goes on or without one)."""
        over = self._mark_replays(items)
        epoch = self._taking  # the items' connection, even if another began since
        if self._fresh_epoch != epoch and any(i.packet_id and not i.dup for i in items):
            self._fresh_epoch = epoch
            if self._connected is not None and self._connected[0] == epoch:
                self._stale_before = self._connected[1]
        return over

    def _mark_replays(self, items: list[Received]) -> int | None:
        replay = self.replay
        if replay is None:
            return None
        marks = replay.mark([entry(i.topic, i.digest) if i.packet_id else None for i in items])
        for item, copy in zip(items, marks, strict=True):
            item.replayed = copy
        if not replay.done:
            return None
        self.replay = None
        return replay.recognised

    def cleanup(self) -> Cleanup:
        """What the batch being handed to the committer deletes (taken once)."""
        taken = Cleanup(self._confirmed, self._stale_before)
        self._confirmed, self._stale_before = [], None
        return taken

    # --- committer thread -----------------------------------------------------

    def to_delete(self, job: Cleanup) -> Cleanup:
        """``job``'s clean-up, with what batches that failed before it were to delete."""
        carried = self._carried
        stale = [t for t in (carried.stale_before, job.stale_before) if t is not None]
        self._carried = Cleanup(carried.confirmed + job.confirmed, max(stale, default=None))
        return self._carried

    def cleanup_refused(self, confirmed: list[Pair]) -> None:
        """The database refused a batch with this clean-up: the batch goes
        without it, and it is tried once more with the next one."""
        if not self._retry:
            self._retry = list(confirmed)

    def journalled(self, seq: int | None) -> None:
        """A transaction committed with journal number ``seq`` (None: it journalled nothing)."""
        self.journal_seq = seq or self.journal_seq

    def committed(self) -> None:
        """A batch committed: its clean-up is done, or was refused and is
        scheduled once more."""
        self._carried = Cleanup()
        if self._retry and not self._retried:
            self._carried, self._retried = Cleanup(list(self._retry)), True
        else:
            self._retry, self._retried = [], False

    def acknowledgement(self, items: list[Received]) -> ProbeAnswered | None:
        """The committed batch's PUBACKs: its QoS 1 deliveries of the current
        connection (``acked``), and the probe to send after them."""
        epoch = self.epoch
        acked = [(i.packet_id, i.digest) for i in items if i.epoch == epoch and i.packet_id]
        if not acked:
            return None
        return ProbeAnswered(epoch, acked=acked, seq=self.journal_seq)
