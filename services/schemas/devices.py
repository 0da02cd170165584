"""Schemas of edge devices and their heartbeats."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from services.naming import NAME_MAX_LENGTH, NAME_PATTERN


class DeviceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    namespace: str | None = Field(None, pattern=NAME_PATTERN, max_length=NAME_MAX_LENGTH)
    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    model: str | None = Field(None, max_length=512, description="Reference HOST/NAMESPACE/MODEL:TAG it serves.")
    hardware: dict[str, Any] = Field(default_factory=dict, description="Total memory, CPU, accelerator, ...")


class HeartbeatCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rate: float = Field(ge=0.0, lt=1.0, description="Pruning rate the device serves now.")
    bands: list[int] = Field(default_factory=list, max_length=1024, description="Band indices present on the device.")
    available_memory_bytes: int = Field(ge=0, le=1 << 60)
    tokens_per_second: float | None = Field(None, ge=0.0, le=1e9)
    model: str | None = Field(None, max_length=512)


class HeartbeatPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    created_at: datetime
    model: str | None = Field(validation_alias="model_reference")
    rate: float
    bands: list[int]
    available_memory_bytes: int
    tokens_per_second: float | None


class DevicePublic(BaseModel):
    id: str
    namespace: str
    name: str
    model: str | None
    hardware: dict[str, Any]
    registered_at: datetime
    last_seen_at: datetime | None
    last_heartbeat: HeartbeatPublic | None


class DeviceList(BaseModel):
    items: list[DevicePublic]
    total: int
    limit: int
    offset: int


class HeartbeatList(BaseModel):
    items: list[HeartbeatPublic]
    next_after: int
