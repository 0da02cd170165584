"""Dashboard pages of the device fleet: every device's latest state, and one device's history.

A device page plots throughput, available memory and pruning rate over the last
``HISTORY_LIMIT`` heartbeats, with time in seconds, minutes or hours before the latest one.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.dashboard.plots import Series, line_chart, sparkline
from services.dashboard.session import UserDep, render, render_error
from services.db.models import DeviceHeartbeat
from services.deps import SessionDep
from services.errors import ServiceError
from services.naming import ID_PATTERN
from services.routes.devices import get_device, list_devices, to_public

router = APIRouter()

DeviceId = Annotated[str, Path(pattern=ID_PATTERN)]
HISTORY_LIMIT = 500
SPARKLINE_HEARTBEATS = 30
GIGABYTE = 1_000_000_000


def history_charts(heartbeats: list[DeviceHeartbeat]) -> list[str]:
    """Plot tokens/s, available memory and rate against the time before the latest heartbeat."""
    seconds = [(beat.created_at - heartbeats[-1].created_at).total_seconds() for beat in heartbeats]
    unit, divisor = time_unit(-min(seconds, default=0.0))
    offsets = [value / divisor for value in seconds]
    x_label = f"{unit} before the latest heartbeat"
    throughput = [(offset, beat.tokens_per_second) for offset, beat in zip(offsets, heartbeats) if beat.tokens_per_second is not None]
    memory = [(offset, beat.available_memory_bytes / GIGABYTE) for offset, beat in zip(offsets, heartbeats)]
    rate = [(offset, beat.rate * 100) for offset, beat in zip(offsets, heartbeats)]
    return [
        line_chart("Throughput over time", x_label, "tokens/s", [Series("tokens/s", throughput)], y_from_zero=True),
        line_chart("Available memory over time", x_label, "available memory (GB)", [Series("memory", memory)],
                   y_from_zero=True),
        line_chart("Pruning rate over time", x_label, "pruning rate (%)", [Series("rate", rate)], y_from_zero=True),
    ]


def time_unit(span_seconds: float) -> tuple[str, float]:
    """Pick seconds, minutes or hours so that the time axis of a history spans a readable range."""
    if span_seconds < 120:
        return "seconds", 1.0
    if span_seconds < 7200:
        return "minutes", 60.0
    return "hours", 3600.0


@router.get("/devices", response_class=HTMLResponse)
def read_devices_page(
    request: Request,
    session: SessionDep,
    user: UserDep,
    fragment: Annotated[bool, Query(description="Return only the table, for polling.")] = False,
) -> HTMLResponse:
    devices = list_devices(session, user.principal, namespace=None, limit=200, offset=0)
    trends = {device.id: throughput_sparkline(session, device.id) for device in devices.items}
    template = "devices_table.html" if fragment else "devices.html"
    return render(request, template, user, devices=devices.items, total=devices.total, trends=trends)


def throughput_sparkline(session: Session, device_id: str) -> str:
    """Draw the tokens/s of the device's last ``SPARKLINE_HEARTBEATS`` heartbeats."""
    values = list(session.scalars(
        select(DeviceHeartbeat.tokens_per_second)
        .where(DeviceHeartbeat.device_id == device_id, DeviceHeartbeat.tokens_per_second.is_not(None))
        .order_by(DeviceHeartbeat.id.desc()).limit(SPARKLINE_HEARTBEATS)
    ))
    values.reverse()
    return sparkline(values, f"tokens/s over the last {len(values)} heartbeats")


@router.get("/devices/{device_id}", response_class=HTMLResponse)
def read_device_page(request: Request, device_id: DeviceId, session: SessionDep, user: UserDep) -> HTMLResponse:
    try:
        device = get_device(session, user.principal, device_id)
    except ServiceError as error:
        return render_error(request, user, error)
    heartbeats = list(session.scalars(
        select(DeviceHeartbeat).where(DeviceHeartbeat.device_id == device_id)
        .order_by(DeviceHeartbeat.id.desc()).limit(HISTORY_LIMIT)
    ))
    heartbeats.reverse()
    return render(
        request, "device.html", user, device=to_public(session, device), charts=history_charts(heartbeats),
        heartbeat_count=len(heartbeats),
    )
