"""Schemas of the model registry: models, tags and garbage collection."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from services.naming import DIGEST_PATTERN


class TagPublic(BaseModel):
    name: str
    digest: str = Field(description="Digest of the manifest the tag points to.")
    reference: str = Field(description="NAMESPACE/MODEL:TAG")
    updated_at: datetime


class TagUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    digest: str = Field(
        pattern=DIGEST_PATTERN, description="Digest of a manifest already stored in the model (sha256:<64 hex digits>)."
    )


class ModelPublic(BaseModel):
    namespace: str
    name: str
    created_at: datetime
    tags: list[TagPublic]


class ModelList(BaseModel):
    items: list[ModelPublic]


class TagList(BaseModel):
    items: list[TagPublic]


class GarbageCollectionPublic(BaseModel):
    manifests_deleted: int
    blobs_deleted: int
    bytes_freed: int
