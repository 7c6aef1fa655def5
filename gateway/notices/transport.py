"""The publisher and subscriber interfaces every transport implements."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from sqlalchemy.orm import Session

from gateway.notices.model import Notice

Listener = Callable[[Notice], None]


class NoticePublisher(Protocol):
    def within(self, session: Session, notice: Notice) -> None:
        """Announce ``notice`` with the transaction ``session`` is in: others
        hear of it once it commits, never if it rolls back."""

    def publish(self, notice: Notice) -> None:
        """Announce what was committed already."""


class NoticeSubscriber(Protocol):
    def start(self, listener: Listener) -> None:
        """Call ``listener`` (on the transport's thread) with every notice."""

    def stop(self) -> None: ...
