"""The audit trail at the API boundary, for actions whose domain code does not
write its own entry (yet another team's module): after a listed operation
answered 2xx, one entry names the caller, the home and device in its path,
a few harmless fields of its body (never a code or password) and the client
address.

The entry is written after the action's own transaction committed, in one of
its own: a crash between the two loses the entry, not the action. The
domain-level call (``gateway.audit.record`` in the action's transaction)
closes that gap; the report of issue 15 lists those hooks."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway import audit
from gateway.api.deps import endpoint_key
from gateway.context import AppContext
from gateway.db.models import Contract, Device, Home, utcnow
from gateway.tokens import TokenError, decode

log = logging.getLogger(__name__)

_BODY_LIMIT = 16 * 1024


@dataclass(frozen=True)
class Audited:
    action: str
    fields: tuple[str, ...] = ()
    """Body fields copied into the entry's detail."""


AUDITED: dict[str, Audited] = {
    "security.arm": Audited("armed", ("mode", "force", "bypass")),
    "security.disarm": Audited("disarmed"),
    "security.add_user": Audited("alarm_user_added", ("name",)),
    "security.delete_user": Audited("alarm_user_removed"),
    "commands.send_command": Audited("command_sent", ("action",)),
    "calls.answer": Audited("call_answered"),
    "calls.open_door": Audited("call_door_opened"),
    "archive.start_export": Audited("export_started", ("start", "end")),
    "live.whep_offer": Audited("live_view_started"),
    "call_media.call_whep_offer": Audited("call_media_started"),
    "alerts.put_notifications": Audited("notification_settings_changed"),
    "admin_devices.put_camera_settings": Audited("camera_settings_changed"),
    "admin_devices.create_device": Audited("device_added", ("kind", "name")),
    "admin_devices.delete_device": Audited("device_removed"),
    "admin_security.put_security": Audited("security_settings_changed"),
    "admin_contracts.suspend_contract": Audited("contract_suspended"),
    "admin_contracts.resume_contract": Audited("contract_resumed"),
    "dispatch.acknowledge": Audited("case_acknowledged"),
    "dispatch.send_team": Audited("case_team_sent"),
    "dispatch.close": Audited("case_closed"),
}
"""Endpoint (``<module>.<function>``) -> the entry its success writes."""


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization" and value[:7].lower() == b"bearer ":
            return str(value[7:].decode("latin-1"))
    return None


def _body_fields(body: bytes, fields: tuple[str, ...]) -> dict[str, Any]:
    if not fields or not body:
        return {}
    try:
        parsed = json.loads(body)
    except ValueError:
        return {}
    return {f: parsed[f] for f in fields if isinstance(parsed, dict) and f in parsed}


def write_entry(
    ctx: AppContext, scope: Scope, audited: Audited, body: bytes, token: str | None
) -> None:
    """The entry for one successful call (in a transaction of its own)."""
    params: dict[str, Any] = dict(scope.get("path_params", {}))
    client = scope.get("client")
    address = client[0] if client else None
    contract_id: int | None = None
    if str(scope.get("path", "")).startswith("/api/v1/admin/"):
        actor = audit.Actor(audit.ADMIN_KIND, "admin", address)
    else:
        try:
            principal = decode(token or "", ctx.secrets.secret_key)
        except TokenError:
            return  # a signed URL or no token: nobody to name
        actor = audit.Actor(principal.role, principal.who, address)
        contract_id = principal.contract_id if principal.role != "dispatcher" else None
    with ctx.db.transaction() as session:
        home = params.get("home_id")
        device = params.get("device_id")
        if device is not None:
            row = session.execute(
                select(Device.contract_id, Home.uid)
                .join(Home, Home.id == Device.home_id)
                .where(Device.uid == device)
            ).first()
            if row is not None:
                contract_id, home = contract_id or row[0], row[1]
        elif home is not None and contract_id is None:
            contract_id = session.scalars(select(Home.contract_id).where(Home.uid == home)).first()
        if contract_id is None and "number" in params:
            contract_id = session.scalars(
                select(Contract.id).where(Contract.number == params["number"])
            ).first()
        detail = _body_fields(body, audited.fields)
        detail.update({k: v for k, v in params.items() if k not in ("home_id", "device_id")})
        audit.record(
            session,
            actor,
            audited.action,
            at=utcnow(),
            contract_id=contract_id,
            home=home,
            device=device,
            detail=detail,
        )


class AuditTrail:
    """ASGI middleware: writes :data:`AUDITED` operations' entries after a 2xx."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        status = 0
        body = bytearray()

        async def receiving() -> Message:
            message = await receive()
            if message["type"] == "http.request" and len(body) < _BODY_LIMIT:
                body.extend(message.get("body", b"")[: _BODY_LIMIT - len(body)])
            return message

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, receiving, sending)
        if not 200 <= status < 300:
            return
        audited = AUDITED.get(endpoint_key_of(scope) or "")
        if audited is None:
            return
        ctx: AppContext = scope["app"].state.ctx
        try:
            await asyncio.to_thread(write_entry, ctx, scope, audited, bytes(body), _bearer(scope))
        except Exception:
            log.exception("audit: cannot record %s", audited.action)


def endpoint_key_of(scope: Scope) -> str | None:
    return endpoint_key(HTTPConnection(scope))
