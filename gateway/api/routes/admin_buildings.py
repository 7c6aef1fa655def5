"""Admin: shared entrances. A building, the intercom panels at its entrances,
and which contract's home each flat number is — so a call a panel reports
for flat 12 rings flat 12's home and no other."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from gateway.api.call_schemas import (
    BuildingCreate,
    BuildingIdPath,
    BuildingOut,
    FlatOut,
    FlatPath,
    FlatSet,
    PanelAttach,
)
from gateway.api.deps import AdminDep, CtxDep
from gateway.api.schemas import DeviceIdPath, errors
from gateway.context import AppContext
from gateway.intercom import buildings
from gateway.intercom.buildings import BuildingView

router = APIRouter(prefix="/admin/buildings", tags=["admin"], responses=errors(401, 422))


def _out(view: BuildingView) -> BuildingOut:
    return BuildingOut(
        id=view.id,
        address=view.address,
        panels=view.panels,
        flats=[FlatOut(number=f.number, contract=f.contract, home=f.home) for f in view.flats],
    )


def _shown(ctx: AppContext, building_id: str) -> BuildingOut:
    with ctx.db.session() as session:
        return _out(buildings.view(session, buildings.get(session, building_id)))


@router.post("", status_code=status.HTTP_201_CREATED, response_model=BuildingOut)
def create_building(body: BuildingCreate, ctx: CtxDep, _: AdminDep) -> BuildingOut:
    with ctx.db.transaction() as session:
        building = buildings.create(session, body.address)
        return _out(buildings.view(session, building))


@router.get("/{building_id}", response_model=BuildingOut, responses=errors(404))
def get_building(building_id: BuildingIdPath, ctx: CtxDep, _: AdminDep) -> BuildingOut:
    return _shown(ctx, building_id)


@router.post("/{building_id}/panels", response_model=BuildingOut, responses=errors(404, 409))
def attach_panel(
    building_id: BuildingIdPath, body: PanelAttach, ctx: CtxDep, _: AdminDep
) -> BuildingOut:
    """Put an intercom at the building's entrance: the flat numbers it reports
    are routed through this building's flats. 409: not an intercom, or it
    serves another building."""
    with ctx.db.transaction() as session:
        buildings.attach_panel(session, buildings.get(session, building_id), body.device)
    return _shown(ctx, building_id)


@router.delete("/{building_id}/panels/{device_id}", status_code=204, responses=errors(404))
def detach_panel(
    building_id: BuildingIdPath, device_id: DeviceIdPath, ctx: CtxDep, _: AdminDep
) -> Response:
    with ctx.db.transaction() as session:
        buildings.detach_panel(session, buildings.get(session, building_id), device_id)
    return Response(status_code=204)


@router.put(
    "/{building_id}/flats/{number}",
    response_model=BuildingOut,
    responses={**errors(404), 201: {"model": BuildingOut, "description": "a new flat"}},
)
def set_flat(
    building_id: BuildingIdPath,
    number: FlatPath,
    body: FlatSet,
    ctx: CtxDep,
    _: AdminDep,
    response: Response,
) -> BuildingOut:
    """Flat ``number`` is this contract's home (201 when the flat is new, 200
    when it moves to another home)."""
    with ctx.db.transaction() as session:
        building = buildings.get(session, building_id)
        if buildings.set_flat(session, building, number, body.contract, body.home):
            response.status_code = status.HTTP_201_CREATED
    return _shown(ctx, building_id)


@router.delete("/{building_id}/flats/{number}", status_code=204, responses=errors(404))
def remove_flat(
    building_id: BuildingIdPath, number: FlatPath, ctx: CtxDep, _: AdminDep
) -> Response:
    with ctx.db.transaction() as session:
        buildings.remove_flat(session, buildings.get(session, building_id), number)
    return Response(status_code=204)
