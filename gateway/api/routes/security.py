"""The subscriber's alarm panel: status, arming and disarming from the app,
the people who may use the keypad (their PINs stored hashed)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, status
from sqlalchemy import select

from alarms import (
    ArmRefused,
    ArmRequest,
    CodeCheck,
    DisarmRequest,
    Effect,
    Event,
    PanelState,
    Source,
)
from gateway.api.deps import CtxDep, OwnedHome, RowId, SessionDep
from gateway.api.schemas import errors
from gateway.api.security_schemas import (
    ActionOut,
    AlarmUserCreate,
    AlarmUserOut,
    ArmBody,
    DisarmBody,
    PanelOut,
    ZoneOut,
)
from gateway.context import AppContext
from gateway.db.models import Home, utcnow
from gateway.db.security_models import AlarmPanel, AlarmUser
from gateway.errors import Conflict, Forbidden, NotFound
from gateway.passwords import hash_password
from gateway.security.home import load_home
from gateway.security.zones import build_config

router = APIRouter(
    prefix="/homes/{home_id}/security", tags=["security"], responses=errors(401, 404)
)
APP = Source(kind="app")
_REFUSALS = {"wrong_code": Forbidden, "locked_out": Forbidden}


def _panel(session: SessionDep, home: Home) -> AlarmPanel:
    panel = session.get(AlarmPanel, home.id)
    if panel is None:
        raise NotFound("no security service for this home")
    return panel


@router.get("", response_model=PanelOut)
def get_panel(home: OwnedHome, session: SessionDep) -> PanelOut:
    panel = _panel(session, home)
    view = load_home(session, panel)
    config = build_config(panel.settings, view.devices)
    state = PanelState.model_validate(panel.state)
    return PanelOut(
        home=home.uid,
        status=state.status.value,
        armed_mode=state.armed_mode.value if state.armed_mode else None,
        deadline=state.deadline,
        monitored=panel.monitored,
        zones=[
            ZoneOut(
                id=z.id,
                name=z.name,
                type=z.type.value,
                open=z.id in state.open_zones,
                bypassed=z.id in state.bypassed,
                offline=z.id in state.offline,
            )
            for z in config.zones.values()
        ],
    )


def _act(
    ctx: AppContext, home: Home, make: Callable[[Callable[[str | None], CodeCheck]], Event]
) -> ActionOut:
    """Step the panel with one request, commit, announce, then report."""
    with ctx.db.transaction() as session:
        done = ctx.security.apply(session, home.id, make, utcnow())
        if done is None:
            raise NotFound("no security service for this home")
        effects, changes = done
        after = session.get_one(AlarmPanel, home.id).status
    if ctx.hub is not None:
        ctx.hub.announce(changes)
    return _outcome(after, effects)


def _outcome(after: str, effects: list[Effect]) -> ActionOut:
    refused = next((e for e in effects if isinstance(e, ArmRefused)), None)
    if refused is None or refused.reason == "already_disarmed":
        return ActionOut(status=after)
    error = _REFUSALS.get(refused.reason, Conflict)
    zones = ", ".join(refused.open_zones)
    raise error(f"refused: {refused.reason}" + (f" ({zones})" if zones else ""))


@router.post("/arm", response_model=ActionOut, responses=errors(403, 409, 422))
def arm(body: ArmBody, home: OwnedHome, ctx: CtxDep) -> ActionOut:
    """Arm in a mode. 409 names the open zones unless ``force``; 403 for a
    wrong code (codes are counted: too many lock the panel's keypads out)."""

    def make(check: Callable[[str | None], CodeCheck]) -> Event:
        return ArmRequest(
            mode=body.mode,
            code=check(body.code),
            source=APP,
            force=body.force,
            bypass=frozenset(body.bypass),
        )

    return _act(ctx, home, make)


@router.post("/disarm", response_model=ActionOut, responses=errors(403, 422))
def disarm(body: DisarmBody, home: OwnedHome, ctx: CtxDep) -> ActionOut:
    """Disarm with a user's code (also cancels a pending or sounding alarm)."""

    def make(check: Callable[[str | None], CodeCheck]) -> Event:
        return DisarmRequest(code=check(body.code), source=APP)

    return _act(ctx, home, make)


@router.get("/users", response_model=list[AlarmUserOut])
def list_users(home: OwnedHome, session: SessionDep) -> list[AlarmUserOut]:
    _panel(session, home)
    users = session.scalars(
        select(AlarmUser).where(AlarmUser.home_id == home.id).order_by(AlarmUser.id)
    )
    return [
        AlarmUserOut(id=u.id, name=u.name, has_duress_code=u.duress_hash is not None) for u in users
    ]


@router.post(
    "/users",
    response_model=AlarmUserOut,
    status_code=status.HTTP_201_CREATED,
    responses=errors(409, 422),
)
def add_user(body: AlarmUserCreate, home: OwnedHome, ctx: CtxDep) -> AlarmUserOut:
    """A person who may use the keypad. The duress code must differ from the code."""
    if body.duress_code is not None and body.duress_code == body.code:
        raise Conflict("the duress code must differ from the code")
    with ctx.db.transaction() as session:
        _panel(session, home)
        taken = session.scalar(
            select(AlarmUser.id).where(AlarmUser.home_id == home.id, AlarmUser.name == body.name)
        )
        if taken is not None:
            raise Conflict(f"a user named {body.name} exists")
        user = AlarmUser(
            home_id=home.id,
            name=body.name,
            code_hash=hash_password(body.code),
            duress_hash=hash_password(body.duress_code) if body.duress_code else None,
        )
        session.add(user)
        session.flush()
        return AlarmUserOut(
            id=user.id, name=user.name, has_duress_code=user.duress_hash is not None
        )


@router.delete("/users/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_user(user_id: RowId, home: OwnedHome, ctx: CtxDep) -> None:
    with ctx.db.transaction() as session:
        user = session.get(AlarmUser, user_id)
        if user is None or user.home_id != home.id:
            raise NotFound(f"no user {user_id}")
        session.delete(user)
