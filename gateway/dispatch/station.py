"""The outbox's transport to the central station: which link a Contact ID
event goes on, and what its outcome means to people (``watch``).

The line-account rule (SIA DC-09 carries the account twice): the frame's
header names the *line* account, by which the receiver picks the key and
accepts or refuses the connection; the data block names the *home's* account,
by which the station's software finds the subscriber. With
``MOYDOM_CENTRAL_STATION_ACCOUNT`` set, it is the line account of every frame
and each panel's account stays in the data; unset, each panel's account is
both (one link per account).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from gateway.db.models import utcnow
from gateway.dispatch.contactid import ContactIdEvent
from gateway.dispatch.sia import CentralStationError, CentralStationLink
from gateway.dispatch.watch import StationWatch
from gateway.settings import Settings

log = logging.getLogger(__name__)

RETRY_CAP_S = 10.0
"""The longest wait between two attempts of one alarm: once the receiver
answers again, an alarm held back by an outage reaches it within this."""


class CentralStation:
    """Sends one outbox row; raises ``CentralStationError`` unless it is ACKed."""

    def __init__(self, settings: Settings, watch: StationWatch | None = None) -> None:
        assert settings.central_station_host is not None
        self.settings = settings
        self.watch = watch
        self.links: dict[str, CentralStationLink] = {}

    def line_account(self, home_account: str) -> str:
        """The frame header's account for an event of ``home_account``."""
        return (self.settings.central_station_account or home_account).upper()

    def _link(self, account: str) -> CentralStationLink:
        s = self.settings
        if account not in self.links:
            key = s.central_station_key.get_secret_value() if s.central_station_key else None
            self.links[account] = CentralStationLink(
                s.central_station_host or "",
                s.central_station_port,
                account,
                key=key,
                key_encoding=s.central_station_key_encoding,
                receiver=s.central_station_receiver,
                line=s.central_station_line,
                ack_timeout_s=s.central_station_ack_timeout_s,
            )
        return self.links[account]

    async def __call__(self, key: str, payload: dict[str, Any]) -> None:
        event = ContactIdEvent(
            account=payload["account"] or self.settings.central_station_account,
            code=payload["code"],
            qualifier=payload["qualifier"],
            partition=payload["partition"],
            zone=payload["zone"],
        )
        try:
            await self._link(self.line_account(event.account)).send(event)
        except CentralStationError as exc:
            await self._record(key, exc)
            raise
        await self._record(key, None)

    async def _record(self, key: str, error: CentralStationError | None) -> None:
        """Tell the watch; its own failure (the database away) must neither
        lose the outcome's retry nor turn an ACKed event into a re-send."""
        watch = self.watch
        if watch is None:
            return
        try:
            if error is None:
                await asyncio.to_thread(watch.delivered, key, utcnow())
            else:
                await asyncio.to_thread(watch.failed, key, error, utcnow())
        except Exception:
            log.exception("central station: cannot record the outcome of %s", key)

    async def close(self) -> None:
        for link in self.links.values():
            await link.close()
