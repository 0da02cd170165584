"""Schemas of uploaded source models."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class SourceModelPublic(BaseModel):
    id: str
    namespace: str
    name: str
    digest: str
    size_bytes: int
    unpacked_bytes: int
    file_count: int
    created_at: datetime


class SourceModelList(BaseModel):
    items: list[SourceModelPublic]
    total: int
    limit: int
    offset: int
