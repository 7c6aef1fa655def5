"""Keyset (cursor) pagination, the one way every list endpoint pages: newest
first by id; the cursor is the id of the last item shown, and the next page
starts below it — stable while rows are added, and an index seek at any depth."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, TypeVar, TypeVarTuple

from fastapi import Query
from sqlalchemy import BigInteger, Select, literal
from sqlalchemy.orm import InstrumentedAttribute

CURSOR_PATTERN = r"^[0-9]{1,18}$"
Cursor = Annotated[str | None, Query(pattern=CURSOR_PATTERN)]
"""The ``cursor`` query parameter: ``next_cursor`` of the previous page."""

Ts = TypeVarTuple("Ts")
R = TypeVar("R")


def encode_cursor(item_id: int) -> str:
    return str(item_id)


def decode_cursor(cursor: str) -> int:
    return int(cursor)  # the pattern guarantees digits that fit a BIGINT


def keyset(
    query: Select[*Ts], key: InstrumentedAttribute[int], cursor: str | None, limit: int
) -> Select[*Ts]:
    """``query`` newest first below ``cursor``, one row more than a page (so
    :func:`page` can tell whether another follows)."""
    query = query.order_by(key.desc()).limit(limit + 1)
    if cursor is None:
        return query
    # A BIGINT literal: a cursor past an INTEGER column's range is no error
    return query.where(key < literal(decode_cursor(cursor), BigInteger()))


def page(rows: Sequence[R], limit: int, key: Callable[[R], int]) -> tuple[list[R], str | None]:
    """The rows of this page and the next page's cursor (None: this is the last)."""
    shown = list(rows[:limit])
    return shown, encode_cursor(key(shown[-1])) if len(rows) > limit else None
