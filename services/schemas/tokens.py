"""Schemas of API tokens and namespaces."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services.naming import NAME_MAX_LENGTH, NAME_PATTERN

Scope = Literal["admin", "submit", "pull"]


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128)
    scopes: list[Scope] = Field(min_length=1, max_length=3)
    namespace: str | None = Field(
        None, pattern=NAME_PATTERN, max_length=NAME_MAX_LENGTH, description="Default: the caller's namespace."
    )
    expires_in_days: int | None = Field(None, ge=1, le=3650)


class TokenPublic(BaseModel):
    id: int
    name: str
    prefix: str = Field(description="First characters of the secret, to recognise it.")
    namespace: str | None
    scopes: list[Scope]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class TokenCreated(TokenPublic):
    secret: str = Field(description="The token itself; shown only in this response.")


class NamespaceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN, max_length=NAME_MAX_LENGTH)


class NamespacePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    created_at: datetime
