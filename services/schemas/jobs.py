"""Schemas of compression jobs and their progress events."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.naming import ID_PATTERN, NAME_MAX_LENGTH, NAME_PATTERN, TAG_PATTERN

JobState = Literal["queued", "running", "succeeded", "failed", "cancelled"]
StageState = Literal["pending", "running", "done", "failed"]


class JobCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    namespace: str | None = Field(
        None, pattern=NAME_PATTERN, max_length=NAME_MAX_LENGTH, description="Default: the token's namespace."
    )
    source_model_id: str = Field(pattern=ID_PATTERN, description="Id of an uploaded source model.")
    model: str = Field(
        pattern=NAME_PATTERN, max_length=NAME_MAX_LENGTH, description="Registry model name the artifact is published as."
    )
    tag: str = Field("latest", pattern=TAG_PATTERN, description="Registry tag the artifact is published as.")
    config: dict[str, Any] = Field(
        default_factory=dict, description="Pipeline settings, validated by uniql.pipeline.CompressConfig.from_dict."
    )


class JobStagePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    state: StageState
    attempts: int
    started_at: datetime | None
    finished_at: datetime | None
    metrics: dict[str, Any] | None
    error: str | None


class JobPublic(BaseModel):
    id: str
    namespace: str
    source_model_id: str
    model: str
    tag: str
    reference: str = Field(description="Registry reference NAMESPACE/MODEL:TAG the job publishes.")
    config: dict[str, Any]
    state: JobState
    current_stage: str | None
    progress: float = Field(description="Fraction of the pipeline done, 0 to 1.")
    cancel_requested: bool
    error: str | None
    retry_count: int
    manifest_digest: str | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    stages: list[JobStagePublic]


class JobList(BaseModel):
    items: list[JobPublic]
    total: int
    limit: int
    offset: int


class JobEventPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    created_at: datetime
    kind: str = Field(description="progress, log, stage or state.")
    stage: str | None
    fraction: float | None
    message: str
    metrics: dict[str, Any] | None


class JobEventList(BaseModel):
    items: list[JobEventPublic]
    next_after: int = Field(description="Pass as 'after' to get the events that follow.")
