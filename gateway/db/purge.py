"""Purging a terminated contract once its grace period is over (152-FZ:
personal data is deleted when the purpose ends), and the report of it.

What belongs to a contract is read from the schema, not listed by hand: a
row is the contract's if it is the contract, or if one of its foreign keys
points at a row that is the contract's (homes, devices, members, cases, and
whatever a later migration hangs off them); and, for the few tables that
name the contract by value rather than by key: the audit trail
(``contract_id``), failed logins (the owner's number and the members'
logins), rejected device messages (the topic names the home) and the
outbox (its payload names the home, the device or the address it goes to).

The order is chosen so a crash cannot turn into a lie:

1. the contract is claimed (status ``purging``, which is also what lets
   the audit trail's trigger allow its entries' deletion, migration 0012);
2. its media files are deleted: the archive of each of its cameras, its
   exports and playback files (a crash here leaves index rows of missing
   files of a contract nobody can reach any more; the next sweep goes on);
3. its rows are deleted, children first, and the report written, in one
   transaction.

A purge resumed after a crash in step 2 reports only the media it deleted
itself. The report names the contract by an HMAC of its number under the
gateway's secret key: the ISP can tell whether contract N was purged, the
report alone tells nobody whose it was."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import ColumnElement, Table, Text, cast, delete, or_, select
from sqlalchemy.orm import Session

import gateway.db  # noqa: F401 — every model module, so the metadata holds every table
from gateway.db.engine import Database
from gateway.db.intercom_models import Call
from gateway.db.media_models import Export
from gateway.db.models import Base, Contract, ContractStatus, Device, Home, PurgeReport
from gateway.db.people_models import Member

log = logging.getLogger(__name__)

_ENDED = (ContractStatus.TERMINATED, ContractStatus.PURGING)
_NOT_OWNED = frozenset({"contracts", PurgeReport.__tablename__, "alembic_version"})


def contract_ref(key: str, number: str) -> str:
    """How a report names a contract: HMAC-SHA256 of its number, hex."""
    return hmac.new(key.encode(), f"purge:{number}".encode(), hashlib.sha256).hexdigest()


@dataclass
class _Facts:
    """What the purge needs to know of the contract before its rows go."""

    contract_id: int
    number: str
    terminated_at: datetime
    purge_after: datetime
    homes: list[str] = field(default_factory=list)
    devices: list[tuple[int, str]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    contacts: list[str] = field(default_factory=list)
    exports: list[str] = field(default_factory=list)
    calls: list[int] = field(default_factory=list)


def due(session: Session, now: datetime) -> list[int]:
    """Terminated contracts whose grace period is over (and purges cut short)."""
    return list(
        session.scalars(
            select(Contract.id)
            .where(Contract.status.in_(_ENDED), Contract.purge_after <= now)
            .order_by(Contract.purge_after)
        )
    )


def purge_due(db: Database, dirs: MediaDirs, key: str, now: datetime) -> list[PurgeReport]:
    """Purge every contract that is due; one failing does not stop the others."""
    with db.session() as session:
        ids = due(session, now)
    reports = []
    for contract_id in ids:
        try:
            report = purge_contract(db, dirs, key, contract_id, now)
        except Exception:
            log.exception("purge of contract id %s failed; the next sweep retries", contract_id)
            continue
        if report is not None:
            reports.append(report)
    return reports


@dataclass(frozen=True)
class MediaDirs:
    """Where a contract's media lies: the archive (``<archive>/<camera uid>/``)
    and the API's playback cache and exports (under ``var``)."""

    archive: Path
    var: Path


def purge_contract(
    db: Database, dirs: MediaDirs, key: str, contract_id: int, now: datetime
) -> PurgeReport | None:
    """Purge one contract if it is due; None if it is not (or no longer there)."""
    facts = _claim(db, contract_id, now)
    if facts is None:
        return None
    files, size = _delete_media(dirs, facts)
    with db.transaction() as session:
        locked = session.scalars(
            select(Contract.id)
            .where(Contract.id == contract_id, Contract.status == ContractStatus.PURGING)
            .with_for_update()
        ).first()
        if locked is None:
            return None  # another sweep finished it meanwhile
        rows = _delete_rows(session, facts)
        report = PurgeReport(
            contract_ref=contract_ref(key, facts.number),
            terminated_at=facts.terminated_at,
            purge_after=facts.purge_after,
            purged_at=now,
            rows=rows,
            media_files=files,
            media_bytes=size,
        )
        session.add(report)
    log.info("purged a terminated contract: %s rows, %s files", sum(rows.values()), files)
    return report


def _claim(db: Database, contract_id: int, now: datetime) -> _Facts | None:
    with db.transaction() as session:
        contract = session.scalars(
            select(Contract)
            .where(
                Contract.id == contract_id,
                Contract.status.in_(_ENDED),
                Contract.purge_after <= now,
            )
            .with_for_update()
        ).first()
        if contract is None or contract.terminated_at is None or contract.purge_after is None:
            return None
        contract.status = ContractStatus.PURGING
        facts = _Facts(contract.id, contract.number, contract.terminated_at, contract.purge_after)
        facts.homes = list(session.scalars(select(Home.uid).where(Home.contract_id == contract.id)))
        facts.devices = [
            (row.id, row.uid)
            for row in session.execute(
                select(Device.id, Device.uid).where(Device.contract_id == contract.id)
            )
        ]
        members = select(Member.login).where(Member.contract_id == contract.id)
        facts.logins = [contract.number, *session.scalars(members)]
        facts.contacts = [c for c in (contract.phone, contract.email) if c] + facts.logins[1:]
        facts.exports = [
            p
            for p in session.scalars(select(Export.path).where(Export.contract_id == contract.id))
            if p
        ]
        facts.calls = list(session.scalars(select(Call.id).where(Call.contract_id == contract.id)))
    return facts


# --- media ----------------------------------------------------------------


def _delete_media(dirs: MediaDirs, facts: _Facts) -> tuple[int, int]:
    """Delete the contract's media files; how many and their bytes."""
    paths: list[Path] = [Path(p) for p in facts.exports]
    playback = dirs.var / "playback"
    prefixes = tuple(f"{device_id}-" for device_id, _ in facts.devices)
    prefixes += tuple(f"call-{call}-" for call in facts.calls)
    if playback.is_dir() and prefixes:
        paths += [p for p in playback.iterdir() if p.name.startswith(prefixes)]
    cameras = [
        dirs.archive / uid
        for _id, uid in facts.devices
        if uid not in ("", ".", "..") and "/" not in uid and (dirs.archive / uid).is_dir()
    ]
    for camera in cameras:
        for top, subdirs, names in os.walk(camera):  # symlinks are not followed
            paths += [Path(top, name) for name in names]
            paths += [Path(top, name) for name in subdirs if Path(top, name).is_symlink()]
    files = size = 0
    for path in paths:
        try:
            found = path.lstat().st_size
            path.unlink()
        except FileNotFoundError:
            continue
        files += 1
        size += found
    for camera in cameras:
        shutil.rmtree(camera, ignore_errors=True)  # the empty day directories
    return files, size


# --- rows -----------------------------------------------------------------

_ByValue = Callable[[Table, _Facts], list[ColumnElement[bool]]]


def _audit(table: Table, facts: _Facts) -> list[ColumnElement[bool]]:
    return [table.c.contract_id == facts.contract_id]


def _login_failures(table: Table, facts: _Facts) -> list[ColumnElement[bool]]:
    return [table.c.contract_number.in_(facts.logins)]


def _rejected(table: Table, facts: _Facts) -> list[ColumnElement[bool]]:
    return [table.c.topic.contains(f"/{home}/", autoescape=True) for home in facts.homes]


def _outbox(table: Table, facts: _Facts) -> list[ColumnElement[bool]]:
    text = cast(table.c.payload, Text)
    named = [uid for _id, uid in facts.devices] + facts.homes
    return [text.contains(uid, autoescape=True) for uid in named] + [
        text.contains(f'"{value}"', autoescape=True) for value in facts.contacts
    ]


_BY_VALUE: dict[str, _ByValue] = {
    "audit_entries": _audit,
    "login_failures": _login_failures,
    "rejected_messages": _rejected,
    "outbox": _outbox,
}
"""Tables that name a contract by value; the rest are found by their keys."""


class _Owner:
    """The condition selecting a table's rows of the contract, None if it has none."""

    def __init__(self, facts: _Facts) -> None:
        self.contract_id = facts.contract_id
        self.facts = facts
        self._memo: dict[str, ColumnElement[bool] | None] = {}

    def of(self, table: Table, seen: frozenset[str] = frozenset()) -> ColumnElement[bool] | None:
        if table.name in self._memo:
            return self._memo[table.name]
        if table.name == "contracts":
            return table.c.id == self.contract_id
        parts: list[ColumnElement[bool]] = []
        for fk in sorted(table.foreign_keys, key=lambda f: f.parent.name):
            parent = fk.column.table
            if parent.name in seen or parent is table:
                continue
            if parent.name == "contracts":
                parts.append(fk.parent == self.contract_id)
                continue
            condition = self.of(parent, seen | {table.name})
            if condition is not None:
                parts.append(fk.parent.in_(select(fk.column).where(condition)))
        rule = _BY_VALUE.get(table.name)
        if rule is not None:
            parts += rule(table, self.facts)
        result = or_(*parts) if parts else None
        self._memo[table.name] = result
        return result


def _delete_rows(session: Session, facts: _Facts) -> dict[str, int]:
    """Delete the contract's rows, children first and the contract last."""
    owner = _Owner(facts)
    counts: dict[str, int] = {}
    contracts = Base.metadata.tables["contracts"]
    steps = [
        (t, owner.of(t)) for t in reversed(Base.metadata.sorted_tables) if t.name not in _NOT_OWNED
    ]
    # The contract goes last: the audit trail's trigger asks for it, purging.
    steps.append((contracts, contracts.c.id == facts.contract_id))
    for table, condition in steps:
        if condition is None:
            continue
        gone = session.execute(delete(table).where(condition))
        if gone.rowcount:  # type: ignore[attr-defined]
            counts[table.name] = gone.rowcount  # type: ignore[attr-defined]
    return counts
