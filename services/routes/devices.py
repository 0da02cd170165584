"""Edge devices: register, send heartbeats, list, and read the heartbeat history for plots."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from services.auth import (
    Principal,
    PullPrincipal,
    accessible_namespace_ids,
    resolve_namespace,
)
from services.db.base import utcnow
from services.db.models import Device, DeviceHeartbeat
from services.deps import SessionDep, SettingsDep
from services.errors import NotFoundError
from services.naming import ID_PATTERN, NAME_MAX_LENGTH, NAME_PATTERN
from services.schemas.devices import (
    DeviceCreate,
    DeviceList,
    DevicePublic,
    HeartbeatCreate,
    HeartbeatList,
    HeartbeatPublic,
)

router = APIRouter(prefix="/devices", tags=["devices"])

DeviceId = Annotated[str, Path(pattern=ID_PATTERN)]


def _latest_heartbeat(session: Session, device_id: str) -> DeviceHeartbeat | None:
    return session.scalar(
        select(DeviceHeartbeat).where(DeviceHeartbeat.device_id == device_id).order_by(DeviceHeartbeat.id.desc()).limit(1)
    )


def to_public(session: Session, device: Device) -> DevicePublic:
    latest = _latest_heartbeat(session, device.id)
    return DevicePublic(
        id=device.id, namespace=device.namespace.name, name=device.name, model=device.model_reference,
        hardware=device.hardware, registered_at=device.registered_at, last_seen_at=device.last_seen_at,
        last_heartbeat=HeartbeatPublic.model_validate(latest) if latest else None,
    )


def get_device(session: Session, principal: Principal, device_id: str) -> Device:
    device = session.get(Device, device_id)
    if device is None or not principal.can_access(device.namespace_id):
        raise NotFoundError(f"device {device_id} not found; register it with POST /v1/devices")
    return device


@router.post("", response_model=DevicePublic, status_code=201,
             responses={200: {"model": DevicePublic, "description": "The device was registered before"}})
def register_device(body: DeviceCreate, session: SessionDep, principal: PullPrincipal) -> JSONResponse:
    """Register a device by name; registering the same name again updates it and keeps its id."""
    namespace = resolve_namespace(session, principal, body.namespace)
    device = session.scalar(select(Device).where(Device.namespace_id == namespace.id, Device.name == body.name))
    created = device is None
    if device is None:
        device = Device(namespace_id=namespace.id, name=body.name)
        session.add(device)
    device.model_reference = body.model
    device.hardware = body.hardware
    session.commit()
    public = to_public(session, device)
    return JSONResponse(public.model_dump(mode="json"), status_code=201 if created else 200)


@router.post("/{device_id}/heartbeats", response_model=HeartbeatPublic, status_code=201)
def create_heartbeat(
    device_id: DeviceId, body: HeartbeatCreate, session: SessionDep, settings: SettingsDep, principal: PullPrincipal
) -> DeviceHeartbeat:
    """Record the device's rate, bands, free memory and throughput; old heartbeats beyond the limit are dropped."""
    device = get_device(session, principal, device_id)
    heartbeat = DeviceHeartbeat(
        device_id=device.id, model_reference=body.model or device.model_reference, rate=body.rate,
        bands=sorted(set(body.bands)), available_memory_bytes=body.available_memory_bytes,
        tokens_per_second=body.tokens_per_second,
    )
    session.add(heartbeat)
    device.last_seen_at = utcnow()
    session.flush()
    _trim_history(session, device.id, settings.heartbeat_history_limit)
    session.commit()
    return heartbeat


def _trim_history(session: Session, device_id: str, limit: int) -> None:
    oldest_kept = session.scalar(
        select(DeviceHeartbeat.id).where(DeviceHeartbeat.device_id == device_id)
        .order_by(DeviceHeartbeat.id.desc()).offset(limit - 1).limit(1)
    )
    if oldest_kept is not None:
        session.execute(
            delete(DeviceHeartbeat).where(DeviceHeartbeat.device_id == device_id, DeviceHeartbeat.id < oldest_kept)
        )


@router.get("", response_model=DeviceList)
def list_devices(
    session: SessionDep,
    principal: PullPrincipal,
    namespace: Annotated[str | None, Query(pattern=NAME_PATTERN, max_length=NAME_MAX_LENGTH)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> DeviceList:
    """List devices with their latest heartbeat, most recently seen first."""
    query = select(Device)
    namespace_ids = accessible_namespace_ids(session, principal, namespace)
    if namespace_ids is not None:
        query = query.where(Device.namespace_id.in_(namespace_ids))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(Device.last_seen_at.desc().nulls_last(), Device.id).limit(limit).offset(offset)
    )
    return DeviceList(items=[to_public(session, row) for row in rows], total=total, limit=limit, offset=offset)


@router.get("/{device_id}", response_model=DevicePublic)
def read_device(device_id: DeviceId, session: SessionDep, principal: PullPrincipal) -> DevicePublic:
    return to_public(session, get_device(session, principal, device_id))


@router.get("/{device_id}/heartbeats", response_model=HeartbeatList)
def list_heartbeats(
    device_id: DeviceId,
    session: SessionDep,
    principal: PullPrincipal,
    after: Annotated[int, Query(ge=0, le=2**62, description="Return heartbeats with an id above this.")] = 0,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> HeartbeatList:
    """Return the heartbeat history, oldest first (for plots of tokens/s and rate over time)."""
    get_device(session, principal, device_id)
    rows = list(session.scalars(
        select(DeviceHeartbeat).where(DeviceHeartbeat.device_id == device_id, DeviceHeartbeat.id > after)
        .order_by(DeviceHeartbeat.id).limit(limit)
    ))
    return HeartbeatList(
        items=[HeartbeatPublic.model_validate(row) for row in rows], next_after=rows[-1].id if rows else after
    )
