"""The rules by which a restored broker's copies are told from new messages
(gateway.ingest.replay), one by one, without a broker: what the journal
holds and what arrives are written out as device letters and numbers."""

from __future__ import annotations

import hashlib

from gateway.ingest.replay import RESEND_WINDOW, Replay, entry


def e(name: str) -> str:
    """The entry of message ``name`` ("a7": device a's message 7)."""
    topic = f"moydom/home/{name[0]}"
    payload = name.encode()
    return entry(topic, hashlib.sha256(topic.encode() + b"\0" + payload).hexdigest()[:32])


def journal(*names: str) -> list[str]:
    return [e(n) for n in names]


def copies(replay: Replay, *names: str) -> list[str]:
    """Which of these deliveries (in one batch) the replay calls copies."""
    marks = replay.mark([e(n) for n in names])
    return [n for n, copy in zip(names, marks, strict=True) if copy]


def test_the_snapshots_queue_is_recognised_and_the_first_new_message_ends_it() -> None:
    replay = Replay(journal("a1", "a2", "b1", "a3"))
    assert copies(replay, "a1", "a2", "b1", "a3", "b2") == ["a1", "a2", "b1", "a3"]
    assert replay.queue_over and replay.recognised == 4


def test_what_was_acknowledged_before_the_snapshot_is_skipped() -> None:
    replay = Replay(journal("a1", "a2", "b1", "a3", "b2"))
    assert copies(replay, "b1", "a3", "b2", "a4") == ["b1", "a3", "b2"]


def test_a_mismatch_ends_the_queue_and_later_journal_entries_are_not_copies() -> None:
    replay = Replay(journal("a1", "b1", "a2", "b2"))
    assert copies(replay, "a1", "a9", "a2") == ["a1"]
    assert replay.queue_over


def test_a_first_delivery_the_journal_does_not_hold_means_no_queue() -> None:
    replay = Replay(journal("a1", "a2"))
    assert copies(replay, "c1", "c2") == []
    assert replay.queue_over


def test_a_device_resending_what_the_broker_lost_is_recognised() -> None:
    """The snapshot held a3-a5; a6-a8 reached ingest after it and the device
    had its PUBACK; the broker died before acknowledging a9 and a10, which
    the device sends again after the queue."""
    replay = Replay(journal(*(f"a{i}" for i in range(1, 11))))
    assert copies(replay, "a3", "a4", "a5") == ["a3", "a4", "a5"]
    assert copies(replay, "a9", "a10", "a11") == ["a9", "a10"]
    assert replay.done


def test_a_resend_of_the_queues_last_message_is_recognised_too() -> None:
    """Saved with a10 queued, killed before the device had a10's PUBACK:
    the broker sends a10 from its snapshot and the device sends it again."""
    replay = Replay(journal("a8", "a9", "a10"))
    assert copies(replay, "a9", "a10") == ["a9", "a10"]
    assert copies(replay, "a10", "a11") == ["a10"]


def test_resends_are_per_device_and_only_at_a_devices_first_message() -> None:
    replay = Replay(journal("a1", "b1", "a2", "b2", "a3"))
    assert copies(replay, "a1") == ["a1"]
    # b's first delivery after the queue is new, so its later b2 is new too.
    assert copies(replay, "b7", "a3", "b2") == ["a3"]
    assert copies(replay, "a3") == []  # a's resend ended with its last entry


def test_a_resend_must_continue_the_devices_entries_in_order() -> None:
    replay = Replay(journal("a1", "a2", "a3", "a4", "a5"))
    assert copies(replay, "b1") == []  # no queue
    assert copies(replay, "a2", "a4", "a5") == ["a2"]  # a3 was to follow a2


def test_an_old_message_outside_the_resend_window_is_new() -> None:
    names = [f"a{i}" for i in range(1, RESEND_WINDOW + 3)]
    replay = Replay(journal("b1", *names))
    assert copies(replay, "b2") == []  # no queue
    assert copies(replay, "a1") == []  # older than the device's last RESEND_WINDOW
    late = Replay(journal("b1", *names))
    copies(late, "b2")
    assert copies(late, names[-2], names[-1]) == names[-2:]


def test_after_a_second_restore_the_queue_is_found_where_the_broker_sent_it_last() -> None:
    """Killed twice: the journal holds the first connection's messages, among
    them x1, x2 the first restore lost, then what the second connection
    received (copies a5, a6 included). The second snapshot's queue follows
    the second connection's order."""
    replay = Replay(journal("a4", "a5", "a6", "x1", "x2", "a5", "a6", "g1", "g2"))
    assert copies(replay, "a5", "a6", "g1", "g2", "g3") == ["a5", "a6", "g1", "g2"]


def test_lining_up_takes_the_longest_run_then_the_latest() -> None:
    replay = Replay(journal("a1", "b1", "a1", "b2", "a2"))
    assert copies(replay, "a1", "b2", "a2") == ["a1", "b2", "a2"]
    tie = Replay(journal("a1", "b1", "a1", "b1"))
    assert copies(tie, "a1", "b1") == ["a1", "b1"]
    assert tie.queue_over  # lined up at the second a1: the journal ends there


def test_qos0_deliveries_are_never_copies_and_do_not_disturb_the_order() -> None:
    replay = Replay(journal("a1", "a2"))
    assert replay.mark([None, e("a1"), None, e("a2")]) == [False, True, False, True]


def test_an_empty_journal_recognises_nothing() -> None:
    replay = Replay([])
    assert copies(replay, "a1") == [] and replay.done
