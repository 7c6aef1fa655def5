"""The subscriber's alerts (alarms, leaks, troubles, the panel's status) and
how they want to be told of them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from gateway.api.deps import CtxDep, CurrentPrincipal, SessionDep, visible_homes
from gateway.api.pagination import Cursor, keyset, page
from gateway.api.schemas import errors
from gateway.api.security_schemas import AlertPage, Category, NotificationSettings
from gateway.api.shown import shown_alert
from gateway.db.security_models import Alert, NotificationPrefs
from gateway.security.alerts import DEFAULT_CHANNELS, channels_for
from gateway.security.views import alert_view

router = APIRouter(tags=["subscriber"], responses=errors(401))


@router.get("/alerts", response_model=AlertPage, responses=errors(422))
def list_alerts(
    *,
    principal: CurrentPrincipal,
    session: SessionDep,
    cursor: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    category: Category | None = None,
) -> AlertPage:
    """The caller's alerts, newest first; pass ``next_cursor`` back for older
    ones. A member sees the homes they hold a permission in."""
    query = keyset(
        alert_view().where(Alert.contract_id == principal.contract_id), Alert.id, cursor, limit
    )
    if (homes := visible_homes(session, principal)) is not None:
        query = query.where(Alert.home_id.in_(homes))
    if category is not None:
        query = query.where(Alert.category == category)
    rows, next_cursor = page(session.execute(query).all(), limit, lambda row: row[0].id)
    return AlertPage(items=[shown_alert(row) for row in rows], next_cursor=next_cursor)


@router.get("/me/notifications", response_model=NotificationSettings)
def get_notifications(principal: CurrentPrincipal, session: SessionDep) -> NotificationSettings:
    prefs = session.get(NotificationPrefs, principal.contract_id)
    return NotificationSettings(
        email=prefs.email if prefs else None,
        phone=prefs.phone if prefs else None,
        channels={c: channels_for(prefs, c) for c in DEFAULT_CHANNELS},
    )


@router.put("/me/notifications", response_model=NotificationSettings, responses=errors(422))
def put_notifications(
    body: NotificationSettings, principal: CurrentPrincipal, ctx: CtxDep
) -> NotificationSettings:
    """Where to send e-mail and SMS, and per category which channels
    (``app``, ``email``, ``sms``; an empty list: not told at all)."""
    with ctx.db.transaction() as session:
        prefs = session.get(NotificationPrefs, principal.contract_id)
        if prefs is None:
            prefs = NotificationPrefs(contract_id=principal.contract_id, channels={})
            session.add(prefs)
        prefs.email, prefs.phone = body.email, body.phone
        prefs.channels = {**prefs.channels, **{k: sorted(set(v)) for k, v in body.channels.items()}}
        return NotificationSettings(
            email=prefs.email,
            phone=prefs.phone,
            channels={c: channels_for(prefs, c) for c in DEFAULT_CHANNELS},
        )
