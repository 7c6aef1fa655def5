"""Admin: selling the security service for a home (its Contact ID account,
timings, zone overrides) and the dispatchers' accounts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status
from sqlalchemy import select

from gateway.api.deps import AdminDep, CtxDep, SessionDep
from gateway.api.schemas import HomeIdPath, errors
from gateway.api.security_schemas import DispatcherCreate, DispatcherOut, SecuritySettings
from gateway.db.models import Home, utcnow
from gateway.db.security_models import AlarmPanel, Dispatcher
from gateway.errors import Conflict, Invalid, NotFound
from gateway.passwords import hash_password
from gateway.security.home import load_home
from gateway.security.panel import initial_state
from gateway.security.zones import build_config

router = APIRouter(prefix="/admin", tags=["admin"], responses=errors(401, 404))


@router.put("/homes/{home_id}/security", response_model=SecuritySettings, responses=errors(422))
def put_security(
    home_id: HomeIdPath, body: SecuritySettings, _admin: AdminDep, ctx: CtxDep
) -> SecuritySettings:
    """Create or change a home's panel. Its arm state and deadlines are kept;
    a zone override that names no device of the home is a 422."""
    settings: dict[str, Any] = body.model_dump(
        mode="json", exclude={"account", "monitored"}, exclude_none=True
    )
    settings["zones"] = {
        zone.device: zone.model_dump(mode="json", exclude_none=True, exclude={"device"})
        for zone in body.zones
    }
    with ctx.db.transaction() as session:
        home = session.scalars(select(Home).where(Home.uid == home_id)).first()
        if home is None:
            raise NotFound(f"no home {home_id}")
        panel = session.get(AlarmPanel, home.id)
        if panel is None:
            panel = AlarmPanel(
                home_id=home.id,
                contract_id=home.contract_id,
                state=initial_state(),
                status="disarmed",
                updated_at=utcnow(),
            )
            session.add(panel)
        panel.account, panel.monitored, panel.settings = body.account, body.monitored, settings
        session.flush()
        view = load_home(session, panel)
        unknown = set(settings["zones"]) - {d.uid for d in view.devices}
        if unknown:
            raise Invalid(f"no such devices in this home: {', '.join(sorted(unknown))}")
        try:
            build_config(settings, view.devices)
        except ValueError as exc:
            raise Invalid(f"invalid panel settings: {exc}") from exc
    return body


@router.get("/homes/{home_id}/security", response_model=SecuritySettings)
def get_security(home_id: HomeIdPath, _admin: AdminDep, session: SessionDep) -> SecuritySettings:
    home = session.scalars(select(Home).where(Home.uid == home_id)).first()
    panel = session.get(AlarmPanel, home.id) if home else None
    if panel is None:
        raise NotFound(f"no security service for home {home_id}")
    zones = [{"device": uid, **zone} for uid, zone in panel.settings.get("zones", {}).items()]
    return SecuritySettings.model_validate(
        {**panel.settings, "zones": zones, "account": panel.account, "monitored": panel.monitored}
    )


@router.post(
    "/dispatchers",
    response_model=DispatcherOut,
    status_code=status.HTTP_201_CREATED,
    responses=errors(409, 422),
)
def create_dispatcher(body: DispatcherCreate, _admin: AdminDep, ctx: CtxDep) -> DispatcherOut:
    with ctx.db.transaction() as session:
        if session.scalar(select(Dispatcher.id).where(Dispatcher.login == body.login)) is not None:
            raise Conflict(f"dispatcher {body.login} exists")
        account = Dispatcher(
            login=body.login, name=body.name, password_hash=hash_password(body.password)
        )
        session.add(account)
        session.flush()
        return DispatcherOut(id=account.id, login=account.login, name=account.name)


@router.get("/dispatchers", response_model=list[DispatcherOut])
def list_dispatchers(_admin: AdminDep, session: SessionDep) -> list[DispatcherOut]:
    rows = session.scalars(select(Dispatcher).where(Dispatcher.active).order_by(Dispatcher.id))
    return [DispatcherOut(id=d.id, login=d.login, name=d.name) for d in rows]


@router.delete("/dispatchers/{login}", status_code=status.HTTP_204_NO_CONTENT)
def disable_dispatcher(login: str, _admin: AdminDep, ctx: CtxDep) -> None:
    """Disabled, not deleted: case timelines name who did what. Open streams
    of the account close at their next credential check."""
    with ctx.db.transaction() as session:
        account = session.scalars(select(Dispatcher).where(Dispatcher.login == login)).first()
        if account is None or not account.active:
            raise NotFound(f"no dispatcher {login}")
        account.active = False
