"""Commit notices on both transports (LISTEN/NOTIFY on PostgreSQL, the broker
on SQLite): heard once the transaction commits, never for a rollback, never
before the commit, and whole however many ids one carries."""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator

import pytest

from gateway.broker.client import new_client
from gateway.notices import Notice, NoticePublisher, paho_send, publisher_for, subscriber_for
from tests.conftest import Gateway

Heard = queue.Queue[Notice]


@pytest.fixture
def link(gateway: Gateway) -> Iterator[tuple[NoticePublisher, Heard]]:
    """A publisher and what a subscriber of its own (a separate client) hears."""
    db, root = gateway.ctx.db, gateway.settings.mqtt_topic_root
    username, password = gateway.service_credentials()
    sender, listener = (new_client(name, username, password) for name in ("n-pub", "n-sub"))
    heard: Heard = queue.Queue()
    subscriber = subscriber_for(db, root, listener)
    subscriber.start(heard.put)
    for client in (sender, listener):
        client.connect("127.0.0.1", gateway.mqtt_port)
        client.loop_start()
    publisher = publisher_for(db, root, paho_send(sender))
    _wait_until_heard(publisher, heard)
    yield publisher, heard
    subscriber.stop()
    for client in (sender, listener):
        client.disconnect()
        client.loop_stop()


def _wait_until_heard(publisher: NoticePublisher, heard: Heard) -> None:
    """The subscription is asynchronous: announce a marker until it comes back."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        publisher.publish(Notice(cases=[-1]))
        try:
            heard.get(timeout=0.3)
        except queue.Empty:
            continue
        time.sleep(0.3)
        while not heard.empty():
            heard.get()
        return
    raise AssertionError("the subscriber never heard a notice")


def _drain(heard: Heard, wait: float) -> list[Notice]:
    got: list[Notice] = []
    deadline = time.monotonic() + wait
    while (left := deadline - time.monotonic()) > 0:
        try:
            got.append(heard.get(timeout=left))
        except queue.Empty:
            break
    return got


def test_heard_after_commit_never_before_and_never_for_a_rollback(
    gateway: Gateway, link: tuple[NoticePublisher, Heard]
) -> None:
    publisher, heard = link
    with pytest.raises(RuntimeError), gateway.ctx.db.transaction() as session:
        publisher.within(session, Notice(events=[(1, 7)], outbox=True))
        raise RuntimeError("rolled back")
    with gateway.ctx.db.transaction() as session:
        publisher.within(session, Notice(events=[(2, 7)], alerts=[(3, 7)], cases=[4]))
        assert _drain(heard, 0.7) == [], "heard before the commit"
    assert _drain(heard, 1.0) == [Notice(events=[(2, 7)], alerts=[(3, 7)], cases=[4])]


def test_a_large_notice_arrives_whole(
    gateway: Gateway, link: tuple[NoticePublisher, Heard]
) -> None:
    publisher, heard = link
    sent = Notice(events=[(i, 100 + i % 5) for i in range(3000)], cases=[1, 2], outbox=True)
    with gateway.ctx.db.transaction() as session:
        publisher.within(session, sent)
    got = Notice()
    for notice in _drain(heard, 2.0):
        got.merge(notice)
    assert got == sent


def test_an_unreadable_notice_is_dropped_and_newer_fields_are_ignored() -> None:
    assert Notice.decode(b"[1, 2]") is None
    assert Notice.decode(b'{"events": "x"}') is None
    newer = Notice.decode(b'{"events": [[5, 6]], "from_a_newer_release": [9]}')
    assert newer == Notice(events=[(5, 6)])
    assert Notice.decode(Notice(alerts=[(1, 2)], outbox=True).encode()) == Notice(
        alerts=[(1, 2)], outbox=True
    )
