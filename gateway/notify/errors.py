"""The one error a notification transport raises."""

from __future__ import annotations


class NotificationError(Exception):
    """A notification was not handed over.

    ``permanent`` means this message can never succeed as it is (the recipient
    does not exist, the provider refuses the content): the outbox records the
    failure and stops. Otherwise the fault is elsewhere (network, a busy
    server, our own credentials or configuration) and the same message is
    worth sending again later.
    """

    def __init__(self, reason: str, permanent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
