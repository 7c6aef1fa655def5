"""Admin: provisioning devices of a contract (credentials go live in the broker)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from devices.kinds import CHECK_IN_S, DeviceKind, payload_format
from devices.topics import DeviceTopics
from gateway.api.admin_schemas import CheckInIn, CheckInOut
from gateway.api.deps import AdminDep, CtxDep, SessionDep
from gateway.api.schemas import (
    CameraCreate,
    DeviceCreate,
    DeviceCreated,
    DeviceIdPath,
    DeviceOut,
    HealthOut,
    IntercomCreate,
    NumberPath,
    TopicsOut,
    errors,
)
from gateway.api.security_schemas import CameraSettings
from gateway.db.models import Device, DeviceHealth
from gateway.errors import Invalid
from gateway.health.devices import CHECK_IN_KEY, check_in_of

router = APIRouter(
    prefix="/admin/contracts/{number}/devices", tags=["admin"], responses=errors(401, 404, 409, 503)
)


def device_out(
    device: Device, topics: DeviceTopics, health: DeviceHealth | None = None
) -> DeviceOut:
    return DeviceOut(
        id=device.uid,
        kind=device.kind,
        name=device.name,
        home=topics.home,
        username=device.mqtt_username,
        client_id=device.mqtt_username,
        payload_format=payload_format(DeviceKind(device.kind)),
        topics=TopicsOut(
            base_topic=topics.base,
            state=topics.state,
            availability=topics.availability,
            set=topics.set,
            publishes=topics.publishes,
            listens=topics.listens,
        ),
        rtsp_url=device.rtsp_url,
        created_at=device.created_at,
        health=HealthOut(
            online=health.online,
            last_seen_at=health.last_seen_at,
            battery=health.battery,
            battery_low=health.battery_low,
            linkquality=health.linkquality,
        )
        if health is not None
        else None,
    )


def _with_health(session: Session, listed: list[tuple[Device, DeviceTopics]]) -> list[DeviceOut]:
    ids = [d.id for d, _ in listed]
    rows = session.scalars(select(DeviceHealth).where(DeviceHealth.device_id.in_(ids)))
    health = {h.device_id: h for h in rows}
    return [device_out(d, t, health.get(d.id)) for d, t in listed]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=DeviceCreated)
def create_device(
    number: NumberPath, body: DeviceCreate, ctx: CtxDep, _: AdminDep
) -> DeviceCreated:
    """Provision a device: its broker account and ACL are live when this returns."""
    rtsp_url = body.rtsp_url if isinstance(body, CameraCreate | IntercomCreate) else None
    creds = ctx.provisioner.create_device(
        number, DeviceKind(body.kind), body.name, rtsp_url=rtsp_url, home_uid=body.home
    )
    out = device_out(creds.device, creds.topics)
    return DeviceCreated(**out.model_dump(), password=creds.password)


@router.get("", response_model=list[DeviceOut])
def list_devices(
    number: NumberPath, ctx: CtxDep, session: SessionDep, _: AdminDep
) -> list[DeviceOut]:
    """The contract's live devices with their health (online, last seen, battery)."""
    return _with_health(session, ctx.provisioner.list_devices(number))


@router.get("/{device_id}", response_model=DeviceOut)
def get_device(
    number: NumberPath, device_id: DeviceIdPath, ctx: CtxDep, session: SessionDep, _: AdminDep
) -> DeviceOut:
    contract = ctx.provisioner.get_contract(number, session)
    device = ctx.provisioner.get_device(session, contract.id, device_id)
    return _with_health(session, [(device, ctx.provisioner.topics_for(device))])[0]


@router.delete("/{device_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_device(
    number: NumberPath, device_id: DeviceIdPath, ctx: CtxDep, _: AdminDep
) -> Response:
    """Remove the device; its broker account goes first, dropping its connection."""
    ctx.provisioner.delete_device(number, device_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put("/{device_id}/settings", response_model=CameraSettings, responses=errors(422))
def put_camera_settings(
    number: NumberPath, device_id: DeviceIdPath, body: CameraSettings, ctx: CtxDep, _: AdminDep
) -> CameraSettings:
    """A camera's retention, motion detection, sub-stream and priority; the
    recorder applies them when it next (re)starts the camera."""
    with ctx.db.transaction() as session:
        contract = ctx.provisioner.get_contract(number, session)
        device = ctx.provisioner.get_device(session, contract.id, device_id)
        if device.kind != DeviceKind.CAMERA.value:
            raise Invalid("only cameras have recording settings")
        device.settings = body.model_dump(mode="json", exclude_none=True)
    return body


@router.get("/{device_id}/settings", response_model=CameraSettings)
def get_camera_settings(
    number: NumberPath, device_id: DeviceIdPath, ctx: CtxDep, session: SessionDep, _: AdminDep
) -> CameraSettings:
    contract = ctx.provisioner.get_contract(number, session)
    device = ctx.provisioner.get_device(session, contract.id, device_id)
    return CameraSettings.model_validate(device.settings or {})


@router.put("/{device_id}/check-in", response_model=CheckInOut, responses=errors(422))
def put_check_in(
    number: NumberPath, device_id: DeviceIdPath, body: CheckInIn, ctx: CtxDep, _: AdminDep
) -> CheckInOut:
    """The device's own check-in interval: past it without a message, the
    operator view marks the device silent (``null`` restores its kind's)."""
    with ctx.db.transaction() as session:
        contract = ctx.provisioner.get_contract(number, session)
        device = ctx.provisioner.get_device(session, contract.id, device_id)
        if device.kind == DeviceKind.CAMERA.value:
            raise Invalid("a camera's health comes from the recorder; it has no check-in")
        settings = {k: v for k, v in (device.settings or {}).items() if k != CHECK_IN_KEY}
        if body.check_in_s is not None:
            settings[CHECK_IN_KEY] = body.check_in_s
        device.settings = settings or None
        return CheckInOut(
            check_in_s=check_in_of(device), kind_default_s=CHECK_IN_S.get(DeviceKind(device.kind))
        )
