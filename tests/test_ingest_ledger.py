"""The redelivery ledger's rules (gateway.ingest.ledger), one by one, without a
broker or a database: connections, held deliveries, probes, the stale-marker
rule, deletions carried over a failed commit, and acknowledgements."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.ingest.classify import Received
from gateway.ingest.ledger import Cleanup, ProbeAnswered, RedeliveryLedger
from gateway.ingest.replay import Replay, entry

T0 = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)


def msg(
    packet_id: int, *, epoch: int = 1, dup: bool = False, n: int | None = None, at: datetime = T0
) -> Received:
    """A delivery; ``n`` names its content (default: the packet id)."""
    payload = f'{{"n": {packet_id if n is None else n}}}'.encode()
    return Received("moydom/h/d", payload, packet_id, dup, epoch=epoch, received_at=at)


def started(epoch: int = 1, at: datetime = T0, replay: Replay | None = None) -> RedeliveryLedger:
    """A ledger whose connection ``epoch`` began at ``at`` and was started."""
    ledger = RedeliveryLedger("moydom-ingest-t")
    connect_probe = ledger.connected(epoch, at)
    ledger.start(epoch, replay)
    ledger.intake([connect_probe])
    return ledger


def test_a_connection_s_deliveries_are_held_until_its_connect_probe_is_answered() -> None:
    ledger = RedeliveryLedger("moydom-ingest-t")
    connect_probe = ledger.connected(1, T0)
    assert connect_probe == ProbeAnswered(1, connect_probe=True)
    first, second = msg(1), msg(2)
    held = ledger.intake([first])
    assert held.held and held.items == [] and held.start is None
    answered = ledger.intake([second, connect_probe])
    assert answered.held and answered.start == 1
    assert ledger.start(1, None) == [first, second]  # in the order received
    after = ledger.intake([msg(3)])
    assert not after.held and [i.packet_id for i in after.items] == [3]


def test_deliveries_of_a_connection_that_dropped_are_never_taken() -> None:
    """They were never acknowledged: the broker sends them again, as DUP, on
    the new connection."""
    ledger = started(1)
    old = msg(5, epoch=1)
    ledger.connected(2, T0 + timedelta(seconds=1))
    assert ledger.intake([old]).items == []
    assert ledger.start(2, None) == []  # the held list drops them too
    assert [i.packet_id for i in ledger.intake([old, msg(5, epoch=2, dup=True)]).items] == [5]


def test_held_deliveries_of_an_earlier_connection_are_dropped_at_start() -> None:
    ledger = RedeliveryLedger("moydom-ingest-t")
    ledger.connected(1, T0)
    ledger.intake([msg(1, epoch=1)])  # held, never started
    probe = ledger.connected(2, T0 + timedelta(seconds=1))
    ledger.intake([msg(1, epoch=2, dup=True), probe])
    assert [(i.packet_id, i.epoch) for i in ledger.start(2, None)] == [(1, 2)]


def test_an_answered_probe_confirms_its_markers_for_the_next_commit() -> None:
    ledger = started(1)
    a, b = msg(1), msg(2)
    answer = ledger.acknowledgement([a, b])
    assert answer is not None
    ledger.intake([answer])
    assert ledger.cleanup() == Cleanup([(1, a.digest), (2, b.digest)])
    assert ledger.cleanup() == Cleanup()  # taken once


def test_an_earlier_connection_s_answered_probe_still_confirms_but_publishes_no_watermark() -> None:
    ledger = started(1)
    ledger.journalled(7)
    answer = ledger.acknowledgement([msg(1)])
    assert answer is not None and answer.seq == 7
    assert ledger.intake([answer]).watermarks == [7]
    ledger.connected(2, T0 + timedelta(seconds=1))
    late = ledger.intake([answer])
    assert late.watermarks == []
    assert [p for p, _ in ledger.cleanup().confirmed] == [1, 1]


def test_a_new_connection_forgets_the_old_one_s_probes() -> None:
    ledger = started(1)
    ledger.probe_sent(40, ProbeAnswered(1, acked=[(1, "d")]))
    ledger.probe_sent(41, ProbeAnswered(1, acked=[(2, "e")]))
    assert ledger.probe_answered(40) == ProbeAnswered(1, acked=[(1, "d")])
    assert ledger.probe_answered(40) is None  # one answer per probe
    ledger.connected(2, T0)
    assert ledger.probe_answered(41) is None
    ledger.probe_sent(42, ProbeAnswered(2))
    ledger.probe_lost(42)
    assert ledger.probe_answered(42) is None


def test_the_first_fresh_qos1_delivery_makes_earlier_connections_markers_stale() -> None:
    began = T0 + timedelta(minutes=1)
    ledger = started(2, at=began)
    dups = ledger.intake([msg(1, epoch=2, dup=True), msg(0, epoch=2)]).items  # DUP, QoS 0
    ledger.mark(dups)
    assert ledger.cleanup().stale_before is None
    fresh = ledger.intake([msg(2, epoch=2, dup=True), msg(3, epoch=2)]).items
    ledger.mark(fresh)
    assert ledger.cleanup().stale_before == began  # with the DUPs checked in the same commit
    ledger.mark(ledger.intake([msg(4, epoch=2)]).items)
    assert ledger.cleanup().stale_before is None  # once per connection


def test_no_stale_rule_for_a_connection_that_has_already_been_replaced() -> None:
    ledger = started(1)
    items = ledger.intake([msg(1)]).items
    ledger.connected(2, T0 + timedelta(seconds=1))
    ledger.mark(items)  # classified on the writer as connection 2 began
    assert ledger.cleanup().stale_before is None
    # Connection 2's own first fresh delivery still applies the rule.
    probe = ledger.connected(2, T0 + timedelta(seconds=1))
    ledger.intake([probe])
    ledger.mark(ledger.start(2, None) + ledger.intake([msg(2, epoch=2)]).items)
    assert ledger.cleanup().stale_before == T0 + timedelta(seconds=1)


def test_a_failed_batch_s_deletions_go_with_the_next_one() -> None:
    ledger = started(1)
    first = ledger.to_delete(Cleanup([(1, "a")], T0))
    assert first == Cleanup([(1, "a")], T0)
    # Not committed (an unexpected error): the next job carries it.
    second = ledger.to_delete(Cleanup([(2, "b")], T0 - timedelta(seconds=5)))
    assert second == Cleanup([(1, "a"), (2, "b")], T0)
    ledger.committed()
    assert ledger.to_delete(Cleanup()) == Cleanup()


def test_a_refused_clean_up_is_tried_once_more_then_left_to_the_stale_rule() -> None:
    ledger = started(1)
    refused = ledger.to_delete(Cleanup([(1, "a")]))
    ledger.cleanup_refused(refused.confirmed)  # the batch commits without it
    ledger.committed()
    again = ledger.to_delete(Cleanup([(2, "b")]))
    assert again.confirmed == [(1, "a"), (2, "b")]
    ledger.cleanup_refused(again.confirmed)  # refused again: the first refusal stands
    ledger.committed()
    assert ledger.to_delete(Cleanup()) == Cleanup()  # given up


def test_only_the_current_connection_s_qos1_deliveries_are_acknowledged() -> None:
    ledger = started(2)
    ledger.journalled(3)
    ledger.journalled(None)  # a batch that journalled nothing keeps the number
    current, qos0, old = msg(9, epoch=2), msg(0, epoch=2), msg(8, epoch=1)
    answer = ledger.acknowledgement([current, qos0, old])
    assert answer == ProbeAnswered(2, acked=[(9, current.digest)], seq=3)
    assert ledger.acknowledgement([qos0, old]) is None


def test_a_replay_marks_the_copies_and_ends_when_done() -> None:
    a1, a2, a3 = msg(1, n=1), msg(2, n=2), msg(3, n=3)
    replay = Replay([entry(i.topic, i.digest) for i in (a1, a2)])
    ledger = started(1, replay=replay)
    copies = [msg(50, n=1), msg(51, n=2)]
    assert ledger.mark(copies) is None  # not over: the device may still resend
    assert [i.replayed for i in copies] == [True, True]
    new = [msg(52, n=3)]
    assert ledger.mark(new) == 2  # over: two recognised in all
    assert not new[0].replayed and ledger.replay is None
    assert a3.replayed is False
